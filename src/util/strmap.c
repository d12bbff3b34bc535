#include "util/strmap.h"

#include <stdlib.h>
#include <string.h>

void strmap_init(strmap *m) {
  memset(m, 0, sizeof(*m));
  arena_init(&m->strings);
}

void strmap_release(strmap *m) {
  free(m->slots);
  for (int k = 0; k < STRMAP_CHUNKS; k++) free(m->chunk[k]);
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
    return;
  }
  uint64_t v = m->slots[i];
  if (!v || (uint32_t)(v >> 32) != h) return;
  uint32_t id = (uint32_t)v - 1;
  strmap_key_prefetch(m, id, stage - 2);
}

uint32_t strmap_guess(const strmap *m, uint32_t h) {
  if (!m->cap) return STRMAP_NONE;
  size_t mask = m->cap - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    uint64_t v = m->slots[i];
    if (!v) return STRMAP_NONE;
    if ((uint32_t)(v >> 32) == h) return (uint32_t)v - 1;
  }
}

uint32_t strmap_find_hashed(const strmap *m, const char *s, size_t len, uint32_t h) {
  if (!m->cap) return STRMAP_NONE;
  size_t mask = m->cap - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    uint64_t v = m->slots[i];
    if (!v) return STRMAP_NONE;
    if ((uint32_t)(v >> 32) != h) continue;
    uint32_t id = (uint32_t)v - 1;
    const strmap_ent *en = strmap__ent(m, id);
    if (en->len == len && !memcmp(en->key, s, len)) return id;
  }
}

static void grow(strmap *m) {
  size_t ncap = m->cap ? m->cap * 2 : 64;
  uint64_t *slots = xcalloc(ncap, sizeof(uint64_t));
  for (size_t i = 0; i < m->cap; i++) {
    uint64_t v = m->slots[i];
    if (!v) continue;
    size_t j = (uint32_t)(v >> 32) & (ncap - 1);
    while (slots[j]) j = (j + 1) & (ncap - 1);
    slots[j] = v;
  }
  free(m->slots);
  m->slots = slots;
  m->cap = ncap;
}

uint32_t strmap_intern(strmap *m, const char *s, size_t len, int *created) {
  if (created) *created = 0;
  uint32_t h = strmap_hash(s, len);
  uint32_t id = m->cap ? strmap_find_hashed(m, s, len, h) : STRMAP_NONE;
  if (id != STRMAP_NONE) return id;
  if ((m->count + 1) * 4 > m->cap * 3) grow(m);
  id = (uint32_t)m->count;
  int k;
  uint32_t at = strmap__where(id, &k);
  if (!m->chunk[k]) /* a new chunk, published before any of its ids is handed out */
    __atomic_store_n(&m->chunk[k], xmalloc(((size_t)STRMAP_BASE << k) * sizeof(strmap_ent)), __ATOMIC_RELEASE);
  m->chunk[k][at] = (strmap_ent){.key = arena_strndup(&m->strings, s, len), .len = (uint32_t)len};
  m->count++;
  size_t mask = m->cap - 1, i = h & mask;
  while (m->slots[i]) i = (i + 1) & mask;
  m->slots[i] = (uint64_t)h << 32 | (id + 1);
  if (created) *created = 1;
  return id;
}

size_t strmap_memory(const strmap *m) {
  size_t n = m->cap * sizeof(uint64_t);
  for (int k = 0; k < STRMAP_CHUNKS && m->chunk[k]; k++) n += ((size_t)STRMAP_BASE << k) * sizeof(strmap_ent);
  return n + arena_bytes(&m->strings);
}
