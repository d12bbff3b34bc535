#include "util/u32map.h"

#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

void u32map_init(u32map *m) { memset(m, 0, sizeof(*m)); }

void u32map_release(u32map *m) {
  free(m->keys);
  free(m->vals);
  memset(m, 0, sizeof(*m));
}

void u32map_clear(u32map *m) {
  if (m->cap) memset(m->keys, 0xff, m->cap * sizeof(uint32_t));
  m->count = 0;
}

uint32_t *u32map_get(const u32map *m, uint32_t key) {
  if (!m->cap) return NULL;
  uint32_t mask = m->cap - 1;
  for (uint32_t i = u32_hash(key) & mask;; i = (i + 1) & mask) {
    if (m->keys[i] == key) return &m->vals[i];
    if (m->keys[i] == U32MAP_EMPTY) return NULL;
  }
}

static void grow(u32map *m) {
  uint32_t ncap = m->cap ? m->cap * 2 : 16;
  uint32_t *keys = xmalloc(ncap * sizeof(uint32_t)), *vals = xmalloc(ncap * sizeof(uint32_t));
  memset(keys, 0xff, ncap * sizeof(uint32_t));
  for (uint32_t i = 0; i < m->cap; i++) {
    if (m->keys[i] == U32MAP_EMPTY) continue;
    uint32_t j = u32_hash(m->keys[i]) & (ncap - 1);
    while (keys[j] != U32MAP_EMPTY) j = (j + 1) & (ncap - 1);
    keys[j] = m->keys[i];
    vals[j] = m->vals[i];
  }
  free(m->keys);
  free(m->vals);
  m->keys = keys;
  m->vals = vals;
  m->cap = ncap;
}

void u32map_reserve(u32map *m, uint32_t n) {
  if ((n + 1) * 4 <= m->cap * 3) return;
  if (!m->count) { /* empty: allocate the final size at once */
    uint32_t cap = 16;
    while ((n + 1) * 4 > cap * 3) cap *= 2;
    free(m->keys);
    free(m->vals);
    m->keys = xmalloc(cap * sizeof(uint32_t));
    m->vals = xmalloc(cap * sizeof(uint32_t));
    memset(m->keys, 0xff, cap * sizeof(uint32_t));
    m->cap = cap;
    return;
  }
  while ((n + 1) * 4 > m->cap * 3) grow(m);
}

uint32_t *u32map_put(u32map *m, uint32_t key, uint32_t init, int *created) {
  if (created) *created = 0;
  if ((m->count + 1) * 4 > m->cap * 3) grow(m);
  uint32_t mask = m->cap - 1;
  uint32_t i = u32_hash(key) & mask;
  for (;; i = (i + 1) & mask) {
    if (m->keys[i] == key) return &m->vals[i];
    if (m->keys[i] == U32MAP_EMPTY) break;
  }
  m->keys[i] = key;
  m->vals[i] = init;
  m->count++;
  if (created) *created = 1;
  return &m->vals[i];
}

size_t u32map_memory(const u32map *m) { return (size_t)m->cap * 8; }
