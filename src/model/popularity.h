/* popularity.h — trending lists: the top items globally, per category and
 * among new arrivals, built by one pass over all items and then read-only.
 *
 * A built `trending` is immutable and reference-counted: the engine swaps a
 * new one in behind a lock and readers keep theirs alive with
 * trending_retain()/trending_release(). */
#ifndef RECD_MODEL_POPULARITY_H
#define RECD_MODEL_POPULARITY_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint32_t iid;
  float score;
} pop_ent;

typedef struct {
  pop_ent *e;
  uint32_t n, cap;   /* min-heap while building, sorted descending after */
} pop_list;

typedef struct trending {
  int refs;          /* atomic */
  int64_t now, window_ms;
  uint64_t version;  /* engine write version it was built from */
  pop_list global;
  pop_list fresh;    /* new arrivals, score = created_at-based freshness */
  pop_list *cat;     /* per category id */
  size_t ncat;
  float max_global;
} trending;

trending *trending_new(size_t ncat, size_t global_k, size_t cat_k, size_t fresh_k);
/* offer one item; cats may be empty */
void trending_offer(trending *t, uint32_t iid, float score, const uint32_t *cats, int ncats, float freshness);
/* sort all lists; call once after the last offer */
void trending_finish(trending *t);
trending *trending_retain(trending *t);
void trending_release(trending *t);   /* NULL is a no-op */
size_t trending_memory(const trending *t); /* the bytes it holds; 0 for NULL */

/* one-shot top-k for ad-hoc windows */
void pop_list_init(pop_list *l, uint32_t k);
void pop_list_offer(pop_list *l, uint32_t iid, float score);
void pop_list_sort(pop_list *l);
void pop_list_release(pop_list *l);

#endif
