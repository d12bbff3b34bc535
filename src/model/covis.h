/* covis.h — item co-visitation: for each item a bounded list of the items
 * that the same users touched close in time, with decayed weights.
 *
 * Each list keeps weights relative to its own base time t0 (a weight w added
 * at time ts is stored as w * 2^((ts - t0) / half_life)); the list is rebased
 * when that exponent grows large, so an add costs O(1) amortised.
 *
 * Bounding (Lossy-Counting style): a list may grow to COVIS_LIMIT(max_neighbors)
 * = 1.5 x max_neighbors entries, then is pruned back to the max_neighbors
 * heaviest. The slack sets how often a list prunes (a quickselect and an index
 * rebuild: ~10% of a 20M-event import's CPU). 2 x halved that for ~6% more
 * memory, but moved the learned ranker's quality (BENCHMARKS.md, stop 15). The heaviest
 * weight ever pruned is the list's `floor`; a newcomer starts at floor + w
 * with err = floor, so w - err is always a guaranteed lower bound of the
 * weight it really received, and readers use that. Heavy pairs are never lost.
 * Lists with more than 16 entries carry a small open-addressing index whose
 * slots hold an entry number and a few hash bits (covis.c).
 *
 * Top set: when a list has more than COVIS_TOP entries, e[0..COVIS_TOP) are
 * kept as the COVIS_TOP entries with the largest guaranteed weight (w - err),
 * in no particular order, so a reader takes them without selecting. Writes keep
 * it up to date at O(1) per add (a weight only grows, so an entry can only move
 * into the top set; the top set's minimum is cached and rescanned only when it
 * changes).
 *
 * Lazy upkeep (covis_params.lazy): while nothing reads the lists (a bulk load,
 * the replay at open), adds and prunes skip the top set (~10% of a 20M-event
 * import's CPU) and mark the list unsettled; covis_settle re-establishes it
 * (one selection, the misplaced entries swapped in) before anything reads it.
 * The entries a list holds do not depend on the mode: a prune keeps the
 * heaviest by (w, then the smaller id), a total order, so ties are cut the
 * same way whatever order the entries are in. Only their order in e[] and,
 * among entries of exactly equal guaranteed weight, which of them are in the
 * top set, can differ (covis_canonicalize removes that for comparisons).
 *
 * Not thread-safe: the engine guards each list with the item's stripe lock. */
#ifndef RECD_MODEL_COVIS_H
#define RECD_MODEL_COVIS_H

#include <stddef.h>
#include <stdint.h>

#define COVIS_TOP 50 /* entries kept ahead as the top set (see above) */
/* the most entries a list holds before a prune back to max_neighbors */
#define COVIS_LIMIT(max_neighbors)                                                                        \
  ((max_neighbors) + (max_neighbors) / 2 > 65000 ? 65000 : (max_neighbors) + (max_neighbors) / 2)

typedef struct {
  int max_neighbors;
  int64_t half_life_ms;
  int lazy; /* skip the top set's upkeep: see "Lazy upkeep" above */
} covis_params;

typedef struct {
  uint32_t iid;
  float w;     /* stored weight, an over-estimate by at most err */
  float err;   /* the floor when the entry was (re)inserted */
} covis_ent;

typedef struct covis_list {
  int64_t t0;
  float norm;         /* sum of all weights added (same scale as w) */
  float floor;        /* heaviest weight pruned so far */
  float topmin;       /* n > COVIS_TOP: e[topmin_at].w - e[topmin_at].err, cached so an
                       * add outside the top set compares without reading that entry */
  uint16_t n, cap;
  uint16_t hcap;      /* index slots (power of two), 0 = no index */
  uint16_t topmin_at; /* n > COVIS_TOP: where in e[0..COVIS_TOP) the smallest w - err is */
  uint8_t unsettled;  /* changed by a lazy add: the top set and topmin are not kept */
  covis_ent *e;
  uint16_t *h;        /* slot -> entry index + 1, 0 = empty */
} covis_list;

covis_list *covis_new(int64_t t0);
/* The capacity for a list of n entries rebuilt from a snapshot: what adds
 * would have grown it to (4, doubled at each step), and COVIS_LIMIT + 1 from
 * max_neighbors entries on, where a list grows to that before its next
 * prune anyway (and stays there after one). Sized to n exactly, nearly every
 * list of a loaded state was moved by its next growth, and under a write load
 * after a restart the blocks they left behind (3-4.6 KB each, too small for
 * any grown list) held ~300 MB of the heap (BENCHMARKS.md, stop 22). */
int covis_load_cap(int n, int max_neighbors);
void covis_free(covis_list *l);
/* rebuild the index and the top set after entries were filled in directly
 * (snapshot load); an order that already has a valid top set is kept */
void covis_reindex(covis_list *l);
void covis_add(covis_list *l, const covis_params *p, uint32_t nb, double w, int64_t ts);
/* after lazy adds: the top set (and topmin) as eager adds keep them; a no-op on
 * a settled list */
void covis_settle(covis_list *l);
/* settled, and the entries in one order that depends only on what they are:
 * by guaranteed weight, heaviest first, then by id (two lists built by the
 * same adds in lazy and eager mode become byte for byte equal) */
void covis_canonicalize(covis_list *l);
/* the top set in place, for a reader holding the list's lock: *top = e, and
 * e[0..returned) are the min(n, COVIS_TOP) entries with the largest
 * guaranteed weight (w - err), in no order */
static inline int covis_top_set(const covis_list *l, const covis_ent **top) {
  *top = l->e;
  return l->n < COVIS_TOP ? l->n : COVIS_TOP;
}
/* Hints that covis_add(l, ..., nb, ...) comes soon (they change nothing): stage 1
 * fetches the index slot (or the first entries) for nb, stage 2, issued later
 * once that slot is in cache, fetches the entry it points to. Used to overlap
 * the cache misses of many adds. */
void covis_prefetch(const covis_list *l, uint32_t nb, int stage);
/* A hint that covis_top_set(l, ...) is read soon: fetches the top
 * set's entries. It may run without the list's lock: it reads only l->e, which
 * writers store atomically, and a stale pointer only fetches the wrong lines. */
static inline void covis_prefetch_top(const covis_list *l) {
  const char *p = (const char *)__atomic_load_n(&l->e, __ATOMIC_RELAXED);
  if (!p) return;
  for (size_t off = 0; off < COVIS_TOP * sizeof(covis_ent); off += 64) __builtin_prefetch(p + off);
}
/* decay multiplier turning stored weights into weights as of `now` */
double covis_scale(const covis_list *l, int64_t now, int64_t half_life_ms);
size_t covis_memory(const covis_list *l);

#endif
