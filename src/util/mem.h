/* mem.h — allocation wrappers, an arena, and the process's resident size.
 * x* functions abort on out-of-memory: use them for internal sizes only.
 * Sizes that come from a request must be bounded before allocation.
 * Thread-safe. */
#ifndef RECD_UTIL_MEM_H
#define RECD_UTIL_MEM_H

#include <stddef.h>
#include <stdint.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Arena: bump allocator, freed whole. Not thread-safe. Pointers stay valid
 * until arena_release()/arena_reset(). */
typedef struct arena_block arena_block;
typedef struct {
  arena_block *head;
} arena;

void arena_init(arena *a);
void *arena_alloc(arena *a, size_t n);          /* 16-byte aligned */
char *arena_strndup(arena *a, const char *s, size_t n);
void arena_reset(arena *a);                     /* frees all but nothing stays valid */
void arena_release(arena *a);
size_t arena_bytes(const arena *a);

/* the process's resident set size in bytes (/proc/self/statm); 0 if unknown */
uint64_t mem_rss_bytes(void);             /* what its blocks take, headers included */

#endif
