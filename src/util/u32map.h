/* u32map.h — open-addressing hash map from uint32 keys to uint32 values.
 * Key UINT32_MAX is reserved. Not thread-safe. */
#ifndef RECD_UTIL_U32MAP_H
#define RECD_UTIL_U32MAP_H

#include <stddef.h>
#include <stdint.h>

#define U32MAP_EMPTY UINT32_MAX

typedef struct {
  uint32_t *keys, *vals;
  uint32_t cap, count; /* cap is 0 or a power of two */
} u32map;

void u32map_init(u32map *m);
void u32map_release(u32map *m);
void u32map_clear(u32map *m);
/* make room for n keys without rehashing */
void u32map_reserve(u32map *m, uint32_t n);
/* pointer to the value slot for key, or NULL */
uint32_t *u32map_get(const u32map *m, uint32_t key);
/* pointer to the value slot, inserting it with value `init` if absent */
uint32_t *u32map_put(u32map *m, uint32_t key, uint32_t init, int *created);
size_t u32map_memory(const u32map *m);

static inline uint32_t u32_hash(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

#endif
