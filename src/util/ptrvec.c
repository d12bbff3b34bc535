#include "util/ptrvec.h"

#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

void ptrvec_init(ptrvec *v) { memset(v, 0, sizeof *v); }

void ptrvec_release(ptrvec *v) {
  for (size_t i = 0; i < PTRVEC_CHUNKS; i++) free(v->chunks[i]);
  memset(v, 0, sizeof *v);
}

int ptrvec_set(ptrvec *v, uint32_t id, void *p) {
  uint32_t c = id >> PTRVEC_CHUNK_BITS;
  if (c >= PTRVEC_CHUNKS) return -1;
  void **chunk = __atomic_load_n(&v->chunks[c], __ATOMIC_ACQUIRE);
  if (!chunk) { /* two writers may race to add the same chunk: one wins */
    void **fresh = xcalloc(PTRVEC_CHUNK, sizeof(void *)), **expected = NULL;
    if (__atomic_compare_exchange_n(&v->chunks[c], &expected, fresh, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
      chunk = fresh;
    } else {
      free(fresh);
      chunk = expected;
    }
  }
  __atomic_store_n(&chunk[id & (PTRVEC_CHUNK - 1)], p, __ATOMIC_RELEASE);
  return 0;
}

size_t ptrvec_memory(const ptrvec *v) {
  size_t n = 0;
  for (size_t i = 0; i < PTRVEC_CHUNKS; i++)
    if (__atomic_load_n(&v->chunks[i], __ATOMIC_ACQUIRE)) n += PTRVEC_CHUNK * sizeof(void *);
  return n;
}
