/* ptrvec.h — a growable array of pointers indexed by dense ids, whose slots
 * never move: readers on other threads may call ptrvec_get() while writers
 * call ptrvec_set() on other ids (slot pointers are published with release
 * stores; a new chunk by compare-and-swap).
 * Capacity: PTRVEC_CHUNKS * PTRVEC_CHUNK ids. Freeing the pointed-to objects is
 * the owner's job; ptrvec_release() frees only the chunks. */
#ifndef RECD_UTIL_PTRVEC_H
#define RECD_UTIL_PTRVEC_H

#include <stddef.h>
#include <stdint.h>

#define PTRVEC_CHUNK_BITS 16
#define PTRVEC_CHUNK (1u << PTRVEC_CHUNK_BITS)
#define PTRVEC_CHUNKS 4096

typedef struct {
  void **chunks[PTRVEC_CHUNKS];
} ptrvec;

void ptrvec_init(ptrvec *v);
void ptrvec_release(ptrvec *v);
/* NULL when never set */
static inline void *ptrvec_get(const ptrvec *v, uint32_t id) {
  uint32_t c = id >> PTRVEC_CHUNK_BITS;
  if (c >= PTRVEC_CHUNKS) return NULL;
  void **chunk = __atomic_load_n(&v->chunks[c], __ATOMIC_ACQUIRE);
  if (!chunk) return NULL;
  return __atomic_load_n(&chunk[id & (PTRVEC_CHUNK - 1)], __ATOMIC_ACQUIRE);
}
/* A hint that id's slot will be read soon; changes nothing. */
static inline void ptrvec_prefetch(const ptrvec *v, uint32_t id) {
  uint32_t c = id >> PTRVEC_CHUNK_BITS;
  if (c >= PTRVEC_CHUNKS) return;
  void **chunk = __atomic_load_n(&v->chunks[c], __ATOMIC_ACQUIRE);
  if (chunk) __builtin_prefetch(&chunk[id & (PTRVEC_CHUNK - 1)]);
}
/* writers may run concurrently on different ids (never on the same id);
 * returns -1 if id is beyond capacity */
int ptrvec_set(ptrvec *v, uint32_t id, void *p);
/* the bytes of its chunks (the pointed-to objects are the owner's) */
size_t ptrvec_memory(const ptrvec *v);

#endif
