#include "model/popularity.h"

#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

void pop_list_init(pop_list *l, uint32_t k) {
  l->e = k ? xmalloc(k * sizeof *l->e) : NULL;
  l->n = 0;
  l->cap = k;
}

void pop_list_release(pop_list *l) {
  free(l->e);
  l->e = NULL;
  l->n = l->cap = 0;
}

static int less(const pop_ent *a, const pop_ent *b) {
  /* ties: the larger id (newer item) counts as larger */
  return a->score < b->score || (a->score == b->score && a->iid < b->iid);
}

/* move h[i] down to its place: the smaller child moves up into the hole until
 * neither child is smaller (less() is a total order, so this is the same heap
 * the swap-with-the-smallest formulation gives) */
static void sift_down(pop_ent *h, uint32_t n, uint32_t i) {
  pop_ent x = h[i];
  for (;;) {
    uint32_t m = 2 * i + 1;
    if (m >= n) break;
    if (m + 1 < n && less(&h[m + 1], &h[m])) m++;
    if (!less(&h[m], &x)) break;
    h[i] = h[m];
    i = m;
  }
  h[i] = x;
}

void pop_list_offer(pop_list *l, uint32_t iid, float score) {
  if (!l->cap) return;
  pop_ent e = {.iid = iid, .score = score};
  if (l->n < l->cap) {
    uint32_t i = l->n++;
    l->e[i] = e;
    while (i > 0) {
      uint32_t p = (i - 1) / 2;
      if (!less(&l->e[i], &l->e[p])) break;
      pop_ent t = l->e[i];
      l->e[i] = l->e[p];
      l->e[p] = t;
      i = p;
    }
  } else if (less(&l->e[0], &e)) {
    l->e[0] = e;
    sift_down(l->e, l->n, 0);
  }
}

/* The list is a min-heap under less() (a total order: score, then id), so
 * popping the minimum to the end n-1 times leaves it in descending order:
 * heapsort's second half, without qsort's comparison callbacks. */
void pop_list_sort(pop_list *l) {
  for (uint32_t n = l->n; n > 1; n--) {
    pop_ent t = l->e[0];
    l->e[0] = l->e[n - 1];
    l->e[n - 1] = t;
    sift_down(l->e, n - 1, 0);
  }
}

trending *trending_new(size_t ncat, size_t global_k, size_t cat_k, size_t fresh_k) {
  trending *t = xcalloc(1, sizeof *t);
  t->refs = 1;
  pop_list_init(&t->global, (uint32_t)global_k);
  pop_list_init(&t->fresh, (uint32_t)fresh_k);
  t->ncat = ncat;
  t->cat = xcalloc(ncat ? ncat : 1, sizeof *t->cat);
  for (size_t i = 0; i < ncat; i++) pop_list_init(&t->cat[i], (uint32_t)cat_k);
  return t;
}

void trending_offer(trending *t, uint32_t iid, float score, const uint32_t *cats, int ncats, float freshness) {
  pop_list_offer(&t->global, iid, score);
  for (int i = 0; i < ncats; i++)
    if (cats[i] < t->ncat) pop_list_offer(&t->cat[cats[i]], iid, score);
  if (freshness > 0) pop_list_offer(&t->fresh, iid, freshness);
}

void trending_finish(trending *t) {
  pop_list_sort(&t->global);
  pop_list_sort(&t->fresh);
  for (size_t i = 0; i < t->ncat; i++) pop_list_sort(&t->cat[i]);
  t->max_global = t->global.n ? t->global.e[0].score : 0;
}

trending *trending_retain(trending *t) {
  __atomic_add_fetch(&t->refs, 1, __ATOMIC_RELAXED);
  return t;
}

void trending_release(trending *t) {
  if (!t || __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL)) return;
  pop_list_release(&t->global);
  pop_list_release(&t->fresh);
  for (size_t i = 0; i < t->ncat; i++) pop_list_release(&t->cat[i]);
  free(t->cat);
  free(t);
}

size_t trending_memory(const trending *t) {
  if (!t) return 0;
  size_t n = sizeof *t + ((size_t)t->global.cap + t->fresh.cap) * sizeof(pop_ent) + t->ncat * sizeof(pop_list);
  for (size_t i = 0; i < t->ncat; i++) n += (size_t)t->cat[i].cap * sizeof(pop_ent);
  return n;
}
