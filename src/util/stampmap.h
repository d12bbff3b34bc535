/* stampmap.h — a map from dense uint32 keys (item ids) to 16-bit values for
 * per-request scratch: one slot per possible key, each tagged with the
 * generation that wrote it, so clearing is O(1) (the generation moves on,
 * and every 65,535th clear resets the stamps) and a lookup is one array
 * access, with no hashing or probing.
 *
 * Keys are below UINT32_MAX, values below 65,536 (a request's candidates,
 * content hits, per-category counts). Memory is 4 bytes per key up to the
 * largest key seen, rounded up to a power of two: 512 KiB at 100k items,
 * half what 32-bit values took, and at full size the request index is read
 * at random ~700 times a request (GET throughput +2% at full size from the
 * halving). Meant for scratch
 * objects reused across requests (see scratch_get in recommend.c), not for
 * one-offs. Not thread-safe. */
#ifndef RECD_UTIL_STAMPMAP_H
#define RECD_UTIL_STAMPMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint16_t stamp, val; /* together: one cache line per lookup */
} stampmap_slot;

#define STAMPMAP_MAX_VAL 65535

typedef struct {
  stampmap_slot *s;
  uint32_t cap, gen;
} stampmap;

void stampmap_init(stampmap *m);
void stampmap_release(stampmap *m);
/* forget every key (O(1) except once every 2^32 clears) */
void stampmap_clear(stampmap *m);
void stampmap__grow(stampmap *m, uint32_t key);

/* pointer to the value for key, or NULL */
static inline uint16_t *stampmap_get(const stampmap *m, uint32_t key) {
  return key < m->cap && m->s[key].stamp == m->gen ? &m->s[key].val : NULL;
}

/* pointer to the value slot, inserting it with value `init` if absent */
static inline uint16_t *stampmap_put(stampmap *m, uint32_t key, uint16_t init, int *created) {
  if (key >= m->cap) stampmap__grow(m, key);
  stampmap_slot *sl = &m->s[key];
  int c = sl->stamp != m->gen;
  if (c) {
    sl->stamp = (uint16_t)m->gen;
    sl->val = init;
  }
  if (created) *created = c;
  return &sl->val;
}

/* a hint that key is looked up soon; changes nothing */
static inline void stampmap_prefetch(const stampmap *m, uint32_t key) {
  if (key < m->cap) __builtin_prefetch(&m->s[key], 1);
}

#endif
