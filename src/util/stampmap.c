#include "util/stampmap.h"

#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

void stampmap_init(stampmap *m) { memset(m, 0, sizeof *m), m->gen = 1; }

void stampmap_release(stampmap *m) {
  free(m->s);
  stampmap_init(m);
}

void stampmap_clear(stampmap *m) {
  if (++m->gen > 65535) { /* the stamps wrap: old ones could look current */
    for (uint32_t i = 0; i < m->cap; i++) m->s[i].stamp = 0;
    m->gen = 1;
  }
}

void stampmap__grow(stampmap *m, uint32_t key) {
  uint32_t cap = m->cap ? m->cap : 1024;
  while (cap <= key && cap < UINT32_MAX) cap = cap > UINT32_MAX / 2 ? UINT32_MAX : cap * 2;
  m->s = xrealloc(m->s, (size_t)cap * sizeof *m->s);
  memset(m->s + m->cap, 0, (size_t)(cap - m->cap) * sizeof *m->s);
  m->cap = cap;
}
