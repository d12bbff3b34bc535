/* strmap.h — string interning: maps byte strings to dense uint32 ids 0,1,2…
 * and back. Strings are copied into the map's own arena and stay valid (at
 * the same address) until strmap_release(). Not thread-safe: callers lock. */
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

typedef struct {
  uint64_t *slots;     /* (hash << 32) | (id + 1), 0 = empty: the hash beside the id
                        * skips compares without another line */
  size_t cap;          /* power of two */
  strmap_ent *ents;    /* id -> key */
  size_t count, keys_cap;
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
/* Existing id, or a new one (*created set to 1). */
uint32_t strmap_intern(strmap *m, const char *s, size_t len, int *created);
static inline const char *strmap_key(const strmap *m, uint32_t id) { return m->ents[id].key; }
static inline size_t strmap_count(const strmap *m) { return m->count; }
size_t strmap_memory(const strmap *m);

#endif
