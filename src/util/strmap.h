/* strmap.h — string interning: maps byte strings to dense uint32 ids 0,1,2…
 * and back. Strings are copied into the map's own arena and stay valid (at
 * the same address) until strmap_release(). Not thread-safe: callers lock,
 * except around strmap_key (see there). */
#ifndef RECD_UTIL_STRMAP_H
#define RECD_UTIL_STRMAP_H

#include <stddef.h>
#include <stdint.h>

#include "util/mem.h"

#define STRMAP_NONE UINT32_MAX

/* one id's key: the length beside the pointer, so a lookup reads one line */
typedef struct {
  const char *key;     /* NUL-terminated, in `strings` */
  uint32_t len;
} strmap_ent;

/* the id -> key entries are in chunks of STRMAP_BASE, 2 x, 4 x ... entries:
 * a chunk never moves once allocated, so growing copies nothing and a key can
 * be read while ids are added (strmap_key) */
#define STRMAP_BASE 64
#define STRMAP_CHUNKS 27 /* STRMAP_BASE * (2^27 - 1) entries > 2^32 ids */

typedef struct {
  uint64_t *slots;     /* (hash << 32) | (id + 1), 0 = empty: the hash beside the id
                        * skips compares without another line */
  size_t cap;          /* power of two */
  strmap_ent *chunk[STRMAP_CHUNKS]; /* id -> key (strmap__ent); set with release */
  size_t count;
  arena strings;
} strmap;

void strmap_init(strmap *m);
void strmap_release(strmap *m);
uint32_t strmap_hash(const char *s, size_t len);
/* STRMAP_NONE when absent */
uint32_t strmap_find(const strmap *m, const char *s, size_t len);
/* strmap_find with h = strmap_hash(s, len) already computed */
uint32_t strmap_find_hashed(const strmap *m, const char *s, size_t len, uint32_t h);
/* A hint that strmap_find_hashed(m, ..., h) comes soon; changes nothing. Stage 1
 * fetches the key's slot; stage 2, issued once that is in cache, the id's
 * length and key pointer; stage 3 the key's bytes. Used to overlap the cache
 * misses of many lookups in a big map. */
void strmap_prefetch(const strmap *m, uint32_t h, int stage);
/* the id in the first slot whose hash is h (the likely answer of
 * strmap_find_hashed(m, ..., h), unverified), or STRMAP_NONE: for fetching
 * what belongs to that id while its key is compared */
uint32_t strmap_guess(const strmap *m, uint32_t h);
/* Existing id, or a new one (*created set to 1). */
uint32_t strmap_intern(strmap *m, const char *s, size_t len, int *created);
/* where id's entry is: chunk *k, which holds ids [STRMAP_BASE (2^k - 1),
 * STRMAP_BASE (2^(k+1) - 1)); returns the index in it */
static inline uint32_t strmap__where(uint32_t id, int *k) {
  *k = 31 - __builtin_clz(id / STRMAP_BASE + 1);
  return id - STRMAP_BASE * ((1u << *k) - 1);
}
/* id's entry */
static inline const strmap_ent *strmap__ent(const strmap *m, uint32_t id) {
  int k;
  uint32_t i = strmap__where(id, &k);
  return &__atomic_load_n(&m->chunk[k], __ATOMIC_ACQUIRE)[i];
}
/* id's key (id < count). Needs no lock for an id the caller learned after its
 * strmap_intern returned (through whatever ordered the two threads): its
 * entry is written before the id is handed out and never changes, and its
 * chunk never moves. */
static inline const char *strmap_key(const strmap *m, uint32_t id) { return strmap__ent(m, id)->key; }
/* a hint that strmap_key(m, id) and then its bytes are read soon: stage 0
 * fetches the entry, stage 1 (once that is in cache) the key's bytes */
static inline void strmap_key_prefetch(const strmap *m, uint32_t id, int stage) {
  const strmap_ent *en = strmap__ent(m, id);
  __builtin_prefetch(stage == 0 ? (const void *)en : (const void *)en->key);
}
static inline size_t strmap_count(const strmap *m) { return m->count; }
/* the bytes it holds: hash slots, id entries and the keys' arena (callers lock) */
size_t strmap_memory(const strmap *m);

#endif
