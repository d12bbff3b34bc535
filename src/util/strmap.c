#include "util/strmap.h"

#include <stdlib.h>
#include <string.h>

void strmap_init(strmap *m) {
  memset(m, 0, sizeof(*m));
  arena_init(&m->strings);
}

void strmap_release(strmap *m) {
  free(m->slots);
  free(m->hashes);
  free(m->keys);
  free(m->lens);
  arena_release(&m->strings);
  memset(m, 0, sizeof(*m));
}

uint32_t strmap_hash(const char *s, size_t len) {
  /* FNV-1a 64 folded to 32 */
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < len; i++) {
    h ^= (unsigned char)s[i];
    h *= 1099511628211ULL;
  }
  return (uint32_t)(h ^ (h >> 32));
}

uint32_t strmap_find(const strmap *m, const char *s, size_t len) {
  return m->cap ? strmap_find_hashed(m, s, len, strmap_hash(s, len)) : STRMAP_NONE;
}

void strmap_prefetch(const strmap *m, uint32_t h, int stage) {
  if (!m->cap) return;
  size_t i = h & (m->cap - 1);
  if (stage == 1) {
    __builtin_prefetch(&m->slots[i]);
    __builtin_prefetch(&m->hashes[i]);
    return;
  }
  uint32_t v = m->slots[i];
  if (!v || m->hashes[i] != h) return;
  if (stage == 2) {
    __builtin_prefetch(&m->lens[v - 1]);
    __builtin_prefetch(&m->keys[v - 1]);
  } else {
    __builtin_prefetch(m->keys[v - 1]);
  }
}

uint32_t strmap_find_hashed(const strmap *m, const char *s, size_t len, uint32_t h) {
  if (!m->cap) return STRMAP_NONE;
  size_t mask = m->cap - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    uint32_t v = m->slots[i];
    if (!v) return STRMAP_NONE;
    uint32_t id = v - 1;
    if (m->hashes[i] == h && m->lens[id] == len && !memcmp(m->keys[id], s, len)) return id;
  }
}

static void grow(strmap *m) {
  size_t ncap = m->cap ? m->cap * 2 : 64;
  uint32_t *slots = xcalloc(ncap, sizeof(uint32_t));
  uint32_t *hashes = xmalloc(ncap * sizeof(uint32_t));
  for (size_t i = 0; i < m->cap; i++) {
    if (!m->slots[i]) continue;
    uint32_t h = m->hashes[i];
    size_t j = h & (ncap - 1);
    while (slots[j]) j = (j + 1) & (ncap - 1);
    slots[j] = m->slots[i];
    hashes[j] = h;
  }
  free(m->slots);
  free(m->hashes);
  m->slots = slots;
  m->hashes = hashes;
  m->cap = ncap;
}

uint32_t strmap_intern(strmap *m, const char *s, size_t len, int *created) {
  if (created) *created = 0;
  uint32_t id = strmap_find(m, s, len);
  if (id != STRMAP_NONE) return id;
  if ((m->count + 1) * 4 > m->cap * 3) grow(m);
  if (m->count == m->keys_cap) {
    m->keys_cap = m->keys_cap ? m->keys_cap * 2 : 64;
    m->keys = xrealloc(m->keys, m->keys_cap * sizeof(*m->keys));
    m->lens = xrealloc(m->lens, m->keys_cap * sizeof(*m->lens));
  }
  id = (uint32_t)m->count++;
  m->keys[id] = arena_strndup(&m->strings, s, len);
  m->lens[id] = (uint32_t)len;
  uint32_t h = strmap_hash(s, len);
  size_t mask = m->cap - 1, i = h & mask;
  while (m->slots[i]) i = (i + 1) & mask;
  m->slots[i] = id + 1;
  m->hashes[i] = h;
  if (created) *created = 1;
  return id;
}

size_t strmap_memory(const strmap *m) {
  size_t n = m->cap * 8 + m->keys_cap * (sizeof(char *) + 4);
  for (size_t i = 0; i < m->count; i++) n += ((m->lens[i] + 1 + 15) & ~(size_t)15);
  return n;
}
