#include "model/covis.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/mem.h"
#include "util/u32map.h"

#define REBASE_HALF_LIVES 40.0
#define INDEX_MIN 16

covis_list *covis_new(int64_t t0) {
  covis_list *l = xcalloc(1, sizeof *l);
  l->t0 = t0;
  return l;
}

void covis_free(covis_list *l) {
  if (!l) return;
  free(l->e);
  free(l->h);
  free(l);
}

static void top_settle(covis_list *l);

static void rebase(covis_list *l, int64_t t, int64_t hl, int lazy) {
  float f = (float)exp2(-(double)(t - l->t0) / (double)hl);
  for (int i = 0; i < l->n; i++) {
    l->e[i].w *= f;
    l->e[i].err *= f;
  }
  l->norm *= f;
  l->floor *= f;
  l->t0 = t;
  if (!lazy) top_settle(l); /* rounding may have reordered near-equal guaranteed weights */
}

/* The index: hcap slots (a power of two), linear probing. A slot holds 0 when
 * empty, else (tag << b) | (entry index + 1) with b = log2(hcap): entries never
 * exceed 3/4 of hcap, so the index fits in b bits, and the other 16 - b bits
 * (at least 1) hold a tag, high bits of the hash. A probe compares the tag and
 * reads the entry only when it matches: a lookup of an absent neighbour (most
 * adds) touches the index alone, not one random entry per probed slot. */
static inline unsigned index_bits(const covis_list *l) { return (unsigned)__builtin_ctz(l->hcap); }

static inline uint32_t index_tag(uint32_t hash, unsigned b) { return hash >> (16 + b); }

static void index_put(covis_list *l, uint32_t iid, int idx) {
  uint32_t mask = l->hcap - 1u, hash = u32_hash(iid);
  unsigned b = index_bits(l);
  uint32_t s = hash & mask;
  while (l->h[s]) s = (s + 1) & mask;
  l->h[s] = (uint16_t)(index_tag(hash, b) << b | (uint32_t)(idx + 1));
}

static void index_build(covis_list *l, uint16_t hcap) {
  if (l->h && hcap == l->hcap) { /* after a prune: same size, cleared in place */
    memset(l->h, 0, hcap * sizeof *l->h);
  } else {
    free(l->h);
    l->hcap = hcap;
    l->h = xcalloc(hcap, sizeof *l->h);
  }
  for (int i = 0; i < l->n; i++) index_put(l, l->e[i].iid, i);
}

static int find(const covis_list *l, uint32_t iid) {
  if (!l->hcap) {
    for (int i = 0; i < l->n; i++)
      if (l->e[i].iid == iid) return i;
    return -1;
  }
  uint32_t mask = l->hcap - 1u, hash = u32_hash(iid);
  unsigned b = index_bits(l);
  uint32_t tag = index_tag(hash, b), low = mask;
  for (uint32_t s = hash & mask;; s = (s + 1) & mask) {
    uint16_t v = l->h[s];
    if (!v) return -1;
    if ((uint32_t)v >> b == tag && l->e[(v & low) - 1].iid == iid) return (int)(v & low) - 1;
  }
}

static void swap_ent(covis_ent *a, covis_ent *b) {
  covis_ent t = *a;
  *a = *b;
  *b = t;
}

static inline float guaranteed(const covis_ent *e) { return e->w - e->err; }

/* Partition so that e[0..keep) hold the `keep` heaviest entries (any order):
 * by stored weight w, or with `by_guaranteed` by w - err; equal weights by the
 * smaller id first, so which entries are kept does not depend on their order.
 * Each entry's rank is one 64-bit integer (the weight's bits, mapped so that
 * integer order is float order, above the id's complement; ids in a list are
 * distinct, so ranks are too): a quickselect over the ranks finds the keep-th
 * largest, then one pass moves the entries ranked at or above it to the
 * front. A quickselect over the 12-byte entries themselves, comparing weight
 * then id, took ~6% of an import's apply. */
static inline float sel_key(const covis_ent *e, int by_guaranteed) { return by_guaranteed ? guaranteed(e) : e->w; }

static inline uint64_t sel_rank(const covis_ent *e, int by_guaranteed) {
  float f = sel_key(e, by_guaranteed);
  uint32_t b;
  memcpy(&b, &f, sizeof b);
  b ^= (0u - (b >> 31)) | 0x80000000u; /* negative: all bits flipped; positive: the sign bit */
  return (uint64_t)b << 32 | (uint32_t)~e->iid;
}

/* The k-th largest (k from 0) of the n distinct ranks in r; t has room for n.
 * A quickselect whose partitions write each rank to both ends of the other
 * buffer and move only the end it belongs to: no branch on the comparisons,
 * which a branch would mispredict about every other rank. Not inlined: gcc 12
 * then warns that the caller's stack buffers may be read before they are set. */
__attribute__((noinline)) static uint64_t kth_largest(uint64_t *r, uint64_t *t, int n, int k) {
  while (n > 1) {
    uint64_t a = r[0], b = r[n / 2], c = r[n - 1];
    uint64_t p = a > b ? (b > c ? b : a > c ? c : a) : (a > c ? a : b > c ? c : b); /* median of 3 */
    int g = 0, l = n - 1;
    for (int i = 0; i < n; i++) {
      uint64_t x = r[i];
      t[g] = x;
      t[l] = x;
      g += x > p;
      l -= x < p;
    }
    /* t[0..g) > p, t[g] is p's place, t[g+1..n) < p */
    if (k == g) return p;
    uint64_t *was = r;
    if (k < g) {
      r = t;
      n = g;
    } else {
      r = t + g + 1;
      n -= g + 1;
      k -= g + 1;
    }
    t = was;
  }
  return r[0];
}

/* Each entry's rank, and the k-th largest of them (ranks_kth), in buffers on
 * the stack for lists of up to RANKS_STACK entries (all but configurations
 * with max_neighbors over 341), else on the heap (ranks_release). */
#define RANKS_STACK 512
typedef struct {
  uint64_t *rank, *a, *b; /* the ranks by position; kth_largest's two buffers */
  uint64_t s_rank[RANKS_STACK], s_a[RANKS_STACK], s_b[RANKS_STACK];
} ranks;

static uint64_t ranks_kth(ranks *r, const covis_ent *e, int n, int by_guaranteed, int k) {
  r->rank = r->s_rank, r->a = r->s_a, r->b = r->s_b;
  if (n > RANKS_STACK) {
    r->rank = xmalloc((size_t)n * sizeof *r->rank);
    r->a = xmalloc((size_t)n * sizeof *r->a);
    r->b = xmalloc((size_t)n * sizeof *r->b);
  }
  for (int i = 0; i < n; i++) r->a[i] = r->rank[i] = sel_rank(&e[i], by_guaranteed);
  return kth_largest(r->a, r->b, n, k);
}

static void ranks_release(ranks *r) {
  if (r->rank == r->s_rank) return;
  free(r->rank);
  free(r->a);
  free(r->b);
}

static void select_by(covis_ent *e, int n, int keep, int by_guaranteed) {
  if (keep <= 0 || keep >= n) return;
  ranks r;
  uint64_t kth = ranks_kth(&r, e, n, by_guaranteed, keep - 1);
  covis_ent s_x[RANKS_STACK], *x = n > RANKS_STACK ? xmalloc((size_t)n * sizeof *x) : s_x;
  /* the same both-ends partition, of the entries: those ranked at or above
   * the keep-th to the front (exactly keep of them), the rest to the back */
  memcpy(x, e, (size_t)n * sizeof *e);
  for (int i = 0, g = 0, l = n - 1; i < n; i++) {
    e[g] = x[i];
    e[l] = x[i];
    g += r.rank[i] >= kth;
    l -= r.rank[i] < kth;
  }
  if (x != s_x) free(x);
  ranks_release(&r);
}

static void select_heaviest(covis_ent *e, int n, int keep) { select_by(e, n, keep, 0); }

/* ---- the top set (see covis.h) ---- */

/* the first smallest w - err of e[0..COVIS_TOP): two halves scanned side by
 * side (two short dependency chains instead of one long one), the first
 * half's on a tie, so the same entry as one scan in order */
static void topmin_scan(covis_list *l) {
  enum { HALF = COVIS_TOP / 2 };
  int a = 0, b = HALF;
  float ma = guaranteed(&l->e[0]), mb = guaranteed(&l->e[HALF]);
  for (int i = 1; i < HALF; i++) {
    float ga = guaranteed(&l->e[i]), gb = guaranteed(&l->e[HALF + i]);
    if (ga < ma) ma = ga, a = i;
    if (gb < mb) mb = gb, b = HALF + i;
  }
  for (int i = 2 * HALF; i < COVIS_TOP; i++) /* an odd COVIS_TOP's last entry */
    if (guaranteed(&l->e[i]) < mb) mb = guaranteed(&l->e[i]), b = i;
  if (mb < ma) ma = mb, a = b;
  l->topmin_at = (uint16_t)a;
  l->topmin = ma;
}

/* the index slot of the entry with this id, which is at position `at` (a
 * slot's low index_bits hold the position + 1, the bits above it a tag) */
static uint32_t index_slot(const covis_list *l, uint32_t iid, int at) {
  uint32_t mask = l->hcap - 1u, s = u32_hash(iid) & mask;
  while ((l->h[s] & mask) != (uint32_t)at + 1) s = (s + 1) & mask;
  return s;
}

/* swaps entries i and j, and their index slots' positions (each slot keeps
 * its own tag; both slots are found first: after one is rewritten, the
 * positions are ambiguous) */
static void swap_indexed(covis_list *l, int i, int j) {
  if (l->hcap) {
    uint32_t mask = l->hcap - 1u;
    uint32_t si = index_slot(l, l->e[i].iid, i), sj = index_slot(l, l->e[j].iid, j);
    l->h[si] = (uint16_t)((l->h[si] & ~mask) | (uint32_t)(j + 1));
    l->h[sj] = (uint16_t)((l->h[sj] & ~mask) | (uint32_t)(i + 1));
  }
  swap_ent(&l->e[i], &l->e[j]);
}

/* entry i (outside the top set, or just added) may now beat the top set's minimum */
static void top_offer(covis_list *l, int i) {
  if (l->n <= COVIS_TOP) return;
  if (i < COVIS_TOP) {
    if (i == l->topmin_at) topmin_scan(l); /* the minimum grew */
    return;
  }
  if (!(guaranteed(&l->e[i]) > l->topmin)) return;
  swap_indexed(l, i, l->topmin_at);
  topmin_scan(l);
}

static int top_valid(const covis_list *l) {
  float m = l->topmin;
  for (int i = 0; i < COVIS_TOP; i++)
    if (guaranteed(&l->e[i]) < m) return 0;
  for (int i = COVIS_TOP; i < l->n; i++)
    if (guaranteed(&l->e[i]) > m) return 0;
  return 1;
}

/* re-establish the top set from scratch where the index is rebuilt next
 * anyway (after a prune, at load) */
static void top_partition(covis_list *l) {
  if (l->n <= COVIS_TOP) return;
  topmin_scan(l);
  if (top_valid(l)) return;
  select_by(l->e, l->n, COVIS_TOP, 1);
  topmin_scan(l);
}

/* keep the `keep` heaviest entries; raise the floor to the heaviest dropped */
static void prune(covis_list *l, int keep, int lazy) {
  select_heaviest(l->e, l->n, keep);
  for (int i = keep; i < l->n; i++)
    if (l->e[i].w > l->floor) l->floor = l->e[i].w;
  l->n = (uint16_t)keep;
  if (!lazy) top_partition(l);
  if (l->hcap) index_build(l, l->hcap);
}

static uint16_t pow2_at_least(unsigned n) {
  unsigned c = 32;
  while (c < n) c *= 2;
  return (uint16_t)(c > 32768 ? 32768 : c);
}

int covis_load_cap(int n, int max_neighbors) {
  int limit = COVIS_LIMIT(max_neighbors), cap = 4;
  if (n >= max_neighbors) return limit + 1;
  while (cap < n) cap *= 2;
  return cap > limit + 1 ? limit + 1 : cap;
}

void covis_add(covis_list *l, const covis_params *p, uint32_t nb, double w, int64_t ts) {
  double ex = (double)(ts - l->t0) / (double)p->half_life_ms;
  int lazy = p->lazy;
  l->unsettled |= (uint8_t)lazy;
  if (ex > REBASE_HALF_LIVES) {
    rebase(l, ts, p->half_life_ms, lazy);
    ex = 0;
  }
  float sw = (float)(w * exp2(ex));
  l->norm += sw;
  int i = find(l, nb);
  if (i >= 0) {
    l->e[i].w += sw;
    if (!lazy) top_offer(l, i);
    return;
  }
  int limit = COVIS_LIMIT(p->max_neighbors);
  if (l->n == l->cap) {
    int ncap = l->cap ? l->cap * 2 : 4;
    if (ncap > limit + 1) ncap = limit + 1;
    covis_ent *ne = xrealloc(l->e, (size_t)ncap * sizeof *l->e);
    __atomic_store_n(&l->e, ne, __ATOMIC_RELAXED); /* read unlocked by covis_prefetch_top */
    l->cap = (uint16_t)ncap;
  }
  i = l->n++;
  l->e[i] = (covis_ent){.iid = nb, .w = l->floor + sw, .err = l->floor};
  if (l->n > limit) {
    prune(l, p->max_neighbors, lazy);
    return;
  }
  if (l->n > INDEX_MIN) {
    if (!l->hcap || (unsigned)l->n * 4 > l->hcap * 3) index_build(l, pow2_at_least((unsigned)l->n * 2));
    else index_put(l, nb, i);
  }
  if (lazy) return;
  if (l->n == COVIS_TOP + 1) topmin_scan(l); /* the top set starts to matter */
  top_offer(l, i);
}

/* The top set re-established in place, the index kept (after lazy adds, a
 * rebase): the COVIS_TOP entries ranked highest by guaranteed weight (then
 * id: sel_rank) are found, and only the misplaced ones are swapped into the
 * front (swap_indexed, as top_offer does). A selection that moves every
 * entry, then an index rebuilt from scratch, took twice as long (most of
 * ~0.45 s at 100k lists, at the end of an import or a replay). */
static void top_settle(covis_list *l) {
  int n = l->n;
  if (n <= COVIS_TOP) return;
  topmin_scan(l);
  if (top_valid(l)) return;
  ranks r;
  uint64_t kth = ranks_kth(&r, l->e, n, 1, COVIS_TOP - 1), *rank = r.rank;
  for (int i = 0, j = COVIS_TOP; i < COVIS_TOP; i++) {
    if (rank[i] >= kth) continue;
    while (rank[j] < kth) j++; /* as many belong in front as do not: j stays below n */
    swap_indexed(l, i, j);
    uint64_t t = rank[i];
    rank[i] = rank[j];
    rank[j++] = t;
  }
  topmin_scan(l);
  ranks_release(&r);
}

void covis_settle(covis_list *l) {
  if (!l->unsettled) return;
  l->unsettled = 0;
  top_settle(l);
}

/* by guaranteed weight, heaviest first, then by id */
static int canon_cmp(const void *a, const void *b) {
  const covis_ent *x = a, *y = b;
  float gx = guaranteed(x), gy = guaranteed(y);
  if (gx != gy) return gx > gy ? -1 : 1;
  return x->iid < y->iid ? -1 : x->iid > y->iid;
}

void covis_canonicalize(covis_list *l) {
  qsort(l->e, l->n, sizeof *l->e, canon_cmp); /* the first COVIS_TOP are a top set */
  if (l->n > COVIS_TOP) topmin_scan(l);
  if (l->hcap) index_build(l, l->hcap);
  l->unsettled = 0;
}

void covis_prefetch(const covis_list *l, uint32_t nb, int stage) {
  if (!l->hcap) {
    if (stage == 1 && l->e) __builtin_prefetch(l->e);
    return;
  }
  uint32_t mask = l->hcap - 1u, hash = u32_hash(nb);
  uint32_t s = hash & mask;
  if (stage == 1) {
    __builtin_prefetch(&l->h[s]);
    return;
  }
  /* the entry the probe will stop at, or the end where a newcomer goes */
  unsigned b = index_bits(l);
  uint32_t tag = index_tag(hash, b);
  for (int k = 0; k < 8; k++, s = (s + 1) & mask) {
    uint16_t v = l->h[s];
    if (!v) break;
    if ((uint32_t)v >> b == tag) {
      __builtin_prefetch(&l->e[(v & mask) - 1]);
      return;
    }
  }
  if (l->n < l->cap) __builtin_prefetch(&l->e[l->n]);
}

void covis_reindex(covis_list *l) {
  free(l->h);
  l->h = NULL;
  l->hcap = 0;
  top_partition(l);
  if (l->n > INDEX_MIN) index_build(l, pow2_at_least((unsigned)l->n * 2));
}

double covis_scale(const covis_list *l, int64_t now, int64_t half_life_ms) {
  return exp2(-(double)(now - l->t0) / (double)half_life_ms);
}

size_t covis_memory(const covis_list *l) {
  return sizeof *l + (size_t)l->cap * sizeof(covis_ent) + (size_t)l->hcap * sizeof(uint16_t);
}
