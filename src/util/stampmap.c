#include "util/stampmap.h"

#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

void stampmap_init(stampmap *m) { memset(m, 0, sizeof *m), m->gen = 1; }

void stampmap_release(stampmap *m) {
  free(m->stamp);
  free(m->val);
  stampmap_init(m);
}

void stampmap_clear(stampmap *m) {
  if (++m->gen == 0) { /* wrapped: old stamps could look current */
    if (m->cap) memset(m->stamp, 0, m->cap * sizeof *m->stamp);
    m->gen = 1;
  }
}

void stampmap__grow(stampmap *m, uint32_t key) {
  uint32_t cap = m->cap ? m->cap : 1024;
  while (cap <= key && cap < UINT32_MAX) cap = cap > UINT32_MAX / 2 ? UINT32_MAX : cap * 2;
  m->stamp = xrealloc(m->stamp, (size_t)cap * sizeof *m->stamp);
  m->val = xrealloc(m->val, (size_t)cap * sizeof *m->val);
  memset(m->stamp + m->cap, 0, (size_t)(cap - m->cap) * sizeof *m->stamp);
  m->cap = cap;
}
