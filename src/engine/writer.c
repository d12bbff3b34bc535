/* writer.c — the writer: group commit and apply, as a two-stage pipeline.
 *
 * The store stage (thread `writer`) takes everything queued, interns ids, writes
 * it in one transaction and commits; the apply stage (thread `applier`) applies
 * each round to the live state; a round's ops complete (done()) once it is both
 * committed and applied, by whichever stage finishes second. Under load a round
 * is handed over as soon as it is written, so that its apply overlaps its own
 * commit and sync, and round N+1 is written while round N is applied. The
 * apply stage is a role, held through the `applying` flag: a small round
 * committed while the apply thread is idle and nothing waits is applied and
 * completed by the store thread itself (no thread wake-up on its
 * acknowledgement's path); the between-rounds work (snapshots, training) stays
 * on the apply thread.
 *
 * So readers may see an event shortly before it is durable (never before it is
 * in the open transaction), as with any write-behind store; its writer is
 * answered only after both. If that commit fails, the engine turns FATAL: it
 * refuses writes, writes no snapshot, and the next start has only what was
 * committed.
 *
 * Invariants:
 *  1. Only the store stage (or engine_open before it starts) interns ids and
 *     writes the store; only the apply stage mutates live state (profiles,
 *     statistics, lists, content index, trending) and creates profiles and
 *     lists. Item statistics are created by the store stage when it interns an
 *     item, before the round that names it is handed over.
 *  2. An op's done() is called only after the transaction holding it has
 *     committed (durable per the fsync setting) AND it has been applied to
 *     the live state: read-your-writes. Ops complete in queue order.
 *  3. All ops taken from the queue in one round share one transaction. If
 *     it fails, all of them fail and the engine becomes FATAL (sticky).
 *  4. Sequence numbers are assigned in queue order and never reused.
 *  5. The store stage runs at most PIPELINE_DEPTH rounds ahead of the apply
 *     stage; a round with catalog ops (which read item state set by apply)
 *     waits until every earlier round is applied, and is handed over only
 *     once committed.
 *  6. A snapshot starts between two rounds with the store stage parked
 *     (round_lock), when every round handed over is committed: its event is a
 *     committed one.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_int.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/jsonout.h"
#include "util/log.h"

#include <time.h>

userprof *engine__user_prof(recd_engine *e, uint32_t uid, int create) {
  userprof *p = ptrvec_get(&e->uprof, uid);
  if (!p && create) {
    p = userprof_new(e->ntypes);
    ptrvec_set(&e->uprof, uid, p);
  }
  return p;
}

itemstats *engine__item_stats(recd_engine *e, uint32_t iid, int create) {
  itemstats *s = ptrvec_get(&e->istats, iid);
  if (!s && create) {
    s = itemstats_new(e->ntypes);
    ptrvec_set(&e->istats, iid, s);
    engine__item_rule_set(e, iid, s);
  }
  return s;
}

void engine__item_rule_set(recd_engine *e, uint32_t iid, const itemstats *s) {
  uint64_t cat0 = s->ncats ? s->cats[0] : UINT32_MAX;
  uint64_t w = (itemstats_recommendable(s) ? IRULE_OK : 0) | cat0 << 32;
  ptrvec_set(&e->irule, iid, (void *)(uintptr_t)w);
}

static covis_list *item_covis(recd_engine *e, uint32_t iid, int64_t ts) {
  covis_list *l = ptrvec_get(&e->covis, iid);
  if (!l) {
    l = covis_new(ts);
    ptrvec_set(&e->covis, iid, l);
  }
  return l;
}

/* One event's effect on the live state, in three parts that touch disjoint
 * state: the item's statistics (item_part), the user's profile, which also
 * yields the event's co-visitation partners (user_part), and the co-visitation
 * lists of the item and of the partners (covis_part). Memory latency bounds
 * all three (a few dozen lists and records per event, spread over the whole
 * state), so what they touch is prefetched ahead, and big batches are applied
 * by two threads (apply_parallel). */
typedef struct {
  uint32_t iid;
  float w;          /* the strongest weight the user gave it in the window */
} partner;

static void item_part(recd_engine *e, const engine_apply_ev *ev) {
  pthread_mutex_t *il = engine__ilock(e, ev->iid);
  engine__stripe_lock(e, il);
  engine__keep_item(e, ev->iid);
  itemstats *is = engine__item_stats(e, ev->iid, 1);
  itemstats_apply(is, &e->ipp, ev->type, e->types[ev->type].weight, ev->ts);
  engine__stripe_unlock(e, il);
}

/* the engine clock and the write version, after the batch is applied (a
 * trending snapshot built meanwhile is then stale, and rebuilt) */
static void advance(recd_engine *e, const engine_apply_ev *ev, size_t n) {
  int64_t max = INT64_MIN;
  for (size_t i = 0; i < n; i++)
    if (ev[i].ts > max) max = ev[i].ts;
  int64_t now = atomic_load(&e->now_ms);
  while (max > now && !atomic_compare_exchange_weak(&e->now_ms, &now, max)) {
  }
  atomic_fetch_add(&e->version, n);
}

/* The user's recent distinct items close in time (before this event), then
 * the profile update. Returns how many partners were written to out (room for
 * covis_window), 0 if the (item, type) pair is not new for the user. */
static int user_part(recd_engine *e, const engine_apply_ev *ev, partner *out) {
  uint32_t uid = ev->uid, iid = ev->iid;
  int64_t ts = ev->ts;
  uint32_t cats[ITEM_MAX_CATS];
  /* no lock: only the apply stage changes an item's categories (catalog rounds,
   * never while events are applied); every interned item has statistics */
  itemstats *is = engine__item_stats(e, iid, 0);
  int ncats = is ? is->ncats : 0;
  if (ncats) memcpy(cats, is->cats, (size_t)ncats * sizeof *cats);

  int np = 0;
  pthread_mutex_t *ul = engine__ulock(e, uid);
  engine__stripe_lock(e, ul);
  engine__keep_user(e, uid); /* creating the profile changes the record too */
  userprof *p = engine__user_prof(e, uid, 1);
  for (int i = 0; np < e->cfg.covis_window; i++) {
    const recent_ev *r = userprof_recent(p, i);
    if (!r) break;
    if (r->iid == iid) continue;
    if (llabs(ts - r->ts) > e->cfg.covis_max_gap_ms) {
      if (p->ring_sorted && r->ts < ts) break; /* every older entry is further still */
      continue;
    }
    int dup = 0;
    for (int k = 0; k < np; k++)
      if (out[k].iid == r->iid) {
        dup = 1;
        if (e->types[r->type].weight > out[k].w) out[k].w = e->types[r->type].weight;
      }
    if (!dup) out[np++] = (partner){.iid = r->iid, .w = e->types[r->type].weight};
  }
  int fresh = userprof_apply(p, &e->upp, iid, ev->type, e->types[ev->type].weight, ts, cats, ncats, ev->session);
  engine__stripe_unlock(e, ul);
  return fresh ? np : 0;
}

/* the weight of one co-visitation add: the geometric mean of the event's
 * type weight and the partner's (both apply paths: the state must not
 * depend on which one ran) */
static inline double pair_weight(const recd_engine *e, int type, float pw) {
  return sqrt((double)e->types[type].weight * pw);
}

/* Add the pairs (item, partner) to both lists. */
static void covis_part(recd_engine *e, const engine_apply_ev *ev, const partner *pt, int np) {
  if (!np) return;
  uint32_t iid = ev->iid;
  int64_t ts = ev->ts;
  covis_list *pl[100];
  covis_list *own = ptrvec_get(&e->covis, iid); /* created under its lock below if new */
  /* the index slots were fetched an event ahead; now the entries they point
   * to. Hints only: nothing read decides anything */
  for (int k = 0; k < np; k++) {
    pl[k] = ptrvec_get(&e->covis, pt[k].iid);
    if (pl[k]) covis_prefetch(pl[k], iid, 2);
    if (own) covis_prefetch(own, pt[k].iid, 2);
  }
  for (int k = 0; k < np; k++) {
    pthread_mutex_t *l = engine__ilock(e, pt[k].iid);
    engine__stripe_lock(e, l);
    engine__keep_item(e, pt[k].iid);
    covis_add(pl[k] ? pl[k] : item_covis(e, pt[k].iid, ts), &e->cvp, iid, pair_weight(e, ev->type, pt[k].w), ts);
    engine__stripe_unlock(e, l);
  }
  pthread_mutex_t *il = engine__ilock(e, iid);
  engine__stripe_lock(e, il); /* the item's own list: one lock for all its new pairs */
  engine__keep_item(e, iid); /* (item_part kept it already; this does not rely on that order) */
  if (!own) own = item_covis(e, iid, ts);
  for (int k = 0; k < np; k++) covis_add(own, &e->cvp, pt[k].iid, pair_weight(e, ev->type, pt[k].w), ts);
  engine__stripe_unlock(e, il);
}

static void apply_one(recd_engine *e, const engine_apply_ev *ev) {
  partner pt[100];
  item_part(e, ev);
  int np = user_part(e, ev, pt);
  covis_part(e, ev, pt, np);
  advance(e, ev, 1);
}

/* Prefetch distances, in events: the id slots first, then the structures they
 * point to, then what inside those the event reads, then the co-visitation
 * lists of the user's recent items (its likely partners: the ring may still
 * change before the event is applied, which only makes a hint useless). */
#define AHEAD_SLOTS 12
#define AHEAD_STRUCTS 8
#define AHEAD_INSIDE 5
#define AHEAD_PARTNER_SLOTS 3
#define AHEAD_PARTNER_LISTS 2
#define AHEAD_PARTNER_INDEX 1

static void prefetch_user(recd_engine *e, const engine_apply_ev *a, int stage) {
  if (stage == 0) {
    ptrvec_prefetch(&e->uprof, a->uid);
    return;
  }
  userprof *p = ptrvec_get(&e->uprof, a->uid);
  if (!p) return;
  if (stage == 1) __builtin_prefetch(p);
  else userprof_prefetch(p, a->iid);
}

static void prefetch_item(recd_engine *e, const engine_apply_ev *a, int stage) {
  if (stage == 0) {
    ptrvec_prefetch(&e->istats, a->iid);
    ptrvec_prefetch(&e->covis, a->iid);
    return;
  }
  itemstats *s = ptrvec_get(&e->istats, a->iid);
  if (stage == 1) {
    covis_list *l = ptrvec_get(&e->covis, a->iid);
    if (s) {
      __builtin_prefetch(s);
      __builtin_prefetch(&s->pop_t);
      __builtin_prefetch(&s->counts[a->type]);
    }
    if (l) __builtin_prefetch(l);
  } else if (s && s->cats) {
    __builtin_prefetch(s->cats);
  }
}

/* The likely partners' lists (the user's recent items: the ring may still
 * change before the event is applied, which only makes a hint useless),
 * stage 0: their slots; 1: the lists; 2: the index slots the adds will probe,
 * in the partners' lists and in the item's own. */
static void prefetch_covis(recd_engine *e, const engine_apply_ev *a, int stage) {
  userprof *p = ptrvec_get(&e->uprof, a->uid);
  if (!p) return;
  covis_list *own = stage == 2 ? ptrvec_get(&e->covis, a->iid) : NULL;
  int n = e->cfg.covis_window;
  for (int i = 0; i < n; i++) {
    const recent_ev *r = userprof_recent(p, i);
    if (!r) break;
    if (r->iid == a->iid || llabs(a->ts - r->ts) > e->cfg.covis_max_gap_ms) {
      if (p->ring_sorted && r->ts < a->ts && r->iid != a->iid) break;
      n++;
      continue;
    }
    uint32_t nb = r->iid;
    if (stage == 0) {
      ptrvec_prefetch(&e->covis, nb);
      continue;
    }
    covis_list *l = ptrvec_get(&e->covis, nb);
    if (stage == 1) {
      if (l) __builtin_prefetch(l);
      continue;
    }
    if (l) covis_prefetch(l, a->iid, 1);
    if (own) covis_prefetch(own, nb, 1);
  }
}

static void apply_sequential(recd_engine *e, const engine_apply_ev *ev, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (i + AHEAD_SLOTS < n) {
      prefetch_user(e, &ev[i + AHEAD_SLOTS], 0);
      prefetch_item(e, &ev[i + AHEAD_SLOTS], 0);
    }
    if (i + AHEAD_STRUCTS < n) {
      prefetch_user(e, &ev[i + AHEAD_STRUCTS], 1);
      prefetch_item(e, &ev[i + AHEAD_STRUCTS], 1);
    }
    if (i + AHEAD_INSIDE < n) {
      prefetch_user(e, &ev[i + AHEAD_INSIDE], 2);
      prefetch_item(e, &ev[i + AHEAD_INSIDE], 2);
    }
    if (i + AHEAD_PARTNER_SLOTS < n) prefetch_covis(e, &ev[i + AHEAD_PARTNER_SLOTS], 0);
    if (i + AHEAD_PARTNER_LISTS < n) prefetch_covis(e, &ev[i + AHEAD_PARTNER_LISTS], 1);
    if (i + AHEAD_PARTNER_INDEX < n) prefetch_covis(e, &ev[i + AHEAD_PARTNER_INDEX], 2);
    apply_one(e, &ev[i]);
  }
}

/* ---- two apply threads ----
 *
 * A batch of at least PAR_MIN events is applied in two steps, each split
 * between the calling thread (part 0) and a helper thread (part 1):
 *  1. users: each part applies the events of the users it owns, in order,
 *     recording every event's partners;
 *  2. items: each part goes through all events in order and applies what
 *     touches the items it owns: statistics, and the adds to the lists it owns.
 *     The adds are not made as they come: each becomes a pair (list, neighbour,
 *     event), the pairs are sorted by list (stably: a list keeps its adds'
 *     order), and each list then takes all its adds of the batch in one run,
 *     under one lock, while it is in cache. Applied event by event, a batch's
 *     adds touch the lists in random order, and the same list (a popular
 *     item's, which takes most adds) misses the cache again at each of them.
 * Every profile, statistic and list thus sees exactly the updates it would
 * see applied one event at a time, in the same order: the state is identical
 * to apply_sequential's. The parts share only the stripe locks (which readers
 * take too) and the ptrvecs, whose slots may be set concurrently. */
#define PAR_MIN 4096

/* Which of the two threads owns a user's or an item's state: the upper or
 * lower half of the stripes (engine__ulock/ilock), so that the threads never
 * take each other's stripe locks. */
#define OWNER(id) ((int)(((id) * 2654435761u) >> 31))

typedef struct {
  uint32_t off;     /* into the owning part's partner buffer */
  uint16_t np;
} ev_partners;

/* one co-visitation add of step 2, waiting for its list's run: to `list`, of
 * neighbour `nb`, for event `ev` of the batch with partner weight `pw` (the
 * add's weight, pair_weight, and time are computed from these; 16 bytes,
 * where carrying them would take 24) */
typedef struct {
  uint32_t list, nb, ev;
  float pw;
} covis_pair;

/* what one part writes: kept apart (aligned) so the parts share no cache line */
typedef struct {
  _Alignas(64) ev_partners *ep; /* per event of the batch (only its users' are set) */
  size_t ep_cap;
  partner *buf;
  size_t len, cap;
  covis_pair *pairs, *sorted; /* step 2: in event order, then by list (radix sort's two buffers) */
  size_t npairs, pairs_cap;
} par_part;

struct apply_par {
  pthread_t helper;
  pthread_mutex_t m;
  pthread_cond_t c;
  uint64_t posted, done;  /* step generations */
  int stop;
  int step;               /* 1 or 2 */
  size_t keep_bytes;      /* see PAR_KEEP_BYTES */
  const engine_apply_ev *ev;
  size_t n;
  par_part part[2];
};

/* Sorts a part's pairs by list, stably: least significant digit first, in
 * as few passes of at most PAIR_DIGIT bits as the largest list id needs
 * (two of 9 bits at 100k items). Returns the buffer that holds the result. */
#define PAIR_DIGIT 11
static covis_pair *pairs_sort(par_part *pp) {
  covis_pair *a = pp->pairs, *b = pp->sorted;
  size_t n = pp->npairs;
  uint32_t max = 0;
  for (size_t i = 0; i < n; i++)
    if (a[i].list > max) max = a[i].list;
  unsigned bits = max ? 32u - (unsigned)__builtin_clz(max) : 1u;
  unsigned passes = (bits + PAIR_DIGIT - 1) / PAIR_DIGIT, digit = (bits + passes - 1) / passes;
  const uint32_t mask = (1u << digit) - 1;
  for (unsigned pass = 0, shift = 0; pass < passes; pass++, shift += digit) {
    size_t count[1u << PAIR_DIGIT] = {0};
    for (size_t i = 0; i < n; i++) count[a[i].list >> shift & mask]++;
    size_t at = 0;
    for (size_t d = 0; d <= mask; d++) {
      size_t c = count[d];
      count[d] = at;
      at += c;
    }
    for (size_t i = 0; i < n; i++) b[count[a[i].list >> shift & mask]++] = a[i];
    covis_pair *t = a;
    a = b;
    b = t;
  }
  return a;
}

/* The sorted pairs, a run per list: each list takes its adds in order, under
 * its stripe lock. What the adds touch is fetched a few pairs ahead: the
 * lists (a new run's list is a cache miss, a popular list's entries mostly
 * are not), then the index slots, then the entries they point to. */
#define RUN_AHEAD_LIST 12
#define RUN_AHEAD_SLOT 6
#define RUN_AHEAD_ENTRY 3
static void covis_runs(recd_engine *e, const engine_apply_ev *ev, const covis_pair *p, size_t n) {
  for (size_t i = 0; i < n;) {
    uint32_t id = p[i].list;
    pthread_mutex_t *l = engine__ilock(e, id);
    engine__stripe_lock(e, l);
    engine__keep_item(e, id);
    covis_list *cl = item_covis(e, id, ev[p[i].ev].ts);
    for (; i < n && p[i].list == id; i++) {
      if (i + RUN_AHEAD_LIST < n) {
        const covis_list *x = ptrvec_get(&e->covis, p[i + RUN_AHEAD_LIST].list);
        if (x) __builtin_prefetch(x);
        __builtin_prefetch(&ev[p[i + RUN_AHEAD_LIST].ev]);
      }
      if (i + RUN_AHEAD_SLOT < n) {
        const covis_list *x = ptrvec_get(&e->covis, p[i + RUN_AHEAD_SLOT].list);
        if (x) covis_prefetch(x, p[i + RUN_AHEAD_SLOT].nb, 1);
      }
      if (i + RUN_AHEAD_ENTRY < n) {
        const covis_list *x = ptrvec_get(&e->covis, p[i + RUN_AHEAD_ENTRY].list);
        if (x) covis_prefetch(x, p[i + RUN_AHEAD_ENTRY].nb, 2);
      }
      const engine_apply_ev *x = &ev[p[i].ev];
      covis_add(cl, &e->cvp, p[i].nb, pair_weight(e, x->type, p[i].pw), x->ts);
    }
    engine__stripe_unlock(e, l);
  }
}

static void par_step(recd_engine *e, struct apply_par *ap, int part) {
  const engine_apply_ev *ev = ap->ev;
  size_t n = ap->n;
  int win = e->cfg.covis_window;
  if (ap->step == 1) {
    par_part *pp = &ap->part[part];
    size_t len = 0;
    if (pp->ep_cap < n) {
      pp->ep_cap = n;
      pp->ep = xrealloc(pp->ep, n * sizeof *pp->ep);
    }
    for (size_t i = 0; i < n; i++) {
      for (int st = 0; st < 3; st++) { /* 12, 8, 4 events ahead; the item for its categories */
        size_t j = i + 12 - 4 * (size_t)st;
        if (j < n && OWNER(ev[j].uid) == part) {
          prefetch_user(e, &ev[j], st);
          prefetch_item(e, &ev[j], st);
        }
      }
      if (OWNER(ev[i].uid) != part) continue;
      if (len + (size_t)win > pp->cap) {
        pp->cap = (pp->cap + (size_t)win) * 2;
        pp->buf = xrealloc(pp->buf, pp->cap * sizeof *pp->buf);
      }
      int np = user_part(e, &ev[i], pp->buf + len);
      pp->ep[i] = (ev_partners){.off = (uint32_t)len, .np = (uint16_t)np};
      len += (size_t)np;
    }
    pp->len = len;
    return;
  }
#define EP(i) (ap->part[OWNER(ev[i].uid)].ep[i])
#define PT(i) (ap->part[OWNER(ev[i].uid)].buf + EP(i).off)
  par_part *pp = &ap->part[part];
  size_t np = 0;
  for (size_t i = 0; i < n; i++) {
    for (int st = 0; st < 2; st++) { /* 8, 4 events ahead */
      size_t j = i + 8 - 4 * (size_t)st;
      if (j < n && OWNER(ev[j].iid) == part) prefetch_item(e, &ev[j], st);
    }
    int own = OWNER(ev[i].iid) == part, m = EP(i).np;
    if (own) item_part(e, &ev[i]);
    if (!m) continue;
    if (np + 2 * (size_t)m > pp->pairs_cap) {
      pp->pairs_cap = (pp->pairs_cap + 2 * (size_t)m) * 2;
      pp->pairs = xrealloc(pp->pairs, pp->pairs_cap * sizeof *pp->pairs);
      free(pp->sorted); /* nothing in it to keep */
      pp->sorted = xmalloc(pp->pairs_cap * sizeof *pp->sorted);
    }
    /* in covis_part's order: the partners' lists, then the item's own */
    const partner *pt = PT(i);
    for (int k = 0; k < m; k++)
      if (OWNER(pt[k].iid) == part)
        pp->pairs[np++] = (covis_pair){.list = pt[k].iid, .nb = ev[i].iid, .ev = (uint32_t)i, .pw = pt[k].w};
    if (own)
      for (int k = 0; k < m; k++)
        pp->pairs[np++] = (covis_pair){.list = ev[i].iid, .nb = pt[k].iid, .ev = (uint32_t)i, .pw = pt[k].w};
  }
  pp->npairs = np;
  covis_runs(e, ev, pairs_sort(pp), np);
#undef PT
#undef EP
}

static void *helper_main(void *arg) {
  recd_engine *e = arg;
  struct apply_par *ap = e->par;
  pthread_setname_np(pthread_self(), "recd-apply2");
  uint64_t seen = 0;
  for (;;) {
    pthread_mutex_lock(&ap->m);
    while (ap->posted == seen && !ap->stop) pthread_cond_wait(&ap->c, &ap->m);
    int stop = ap->stop;
    seen = ap->posted;
    pthread_mutex_unlock(&ap->m);
    if (stop) break;
    par_step(e, ap, 1);
    pthread_mutex_lock(&ap->m);
    ap->done = seen;
    pthread_cond_broadcast(&ap->c);
    pthread_mutex_unlock(&ap->m);
  }
  return NULL;
}

static void par_run(recd_engine *e, struct apply_par *ap, int step) {
  pthread_mutex_lock(&ap->m);
  ap->step = step;
  uint64_t gen = ++ap->posted;
  pthread_cond_broadcast(&ap->c);
  pthread_mutex_unlock(&ap->m);
  par_step(e, ap, 0);
  pthread_mutex_lock(&ap->m);
  while (ap->done != gen) pthread_cond_wait(&ap->c, &ap->m);
  pthread_mutex_unlock(&ap->m);
}

static void par_parts_free(struct apply_par *ap);

/* A serving engine keeps at most this much working memory of the two parts
 * between rounds (a round of 12,000 events needs 5 MB, of 30,000 22 MB; one
 * burst of huge rounds would otherwise hold its peak until the restart). A
 * bulk load (`solo`: import, replay) keeps what its batches need. Tests set
 * it with RECD_TEST_PAR_KEEP_BYTES. */
#define PAR_KEEP_BYTES (32u << 20)

static void apply_parallel(recd_engine *e, const engine_apply_ev *ev, size_t n) {
  struct apply_par *ap = e->par;
  ap->ev = ev;
  ap->n = n;
  par_run(e, ap, 1);
  par_run(e, ap, 2);
  advance(e, ev, n);
  size_t bytes = 0;
  for (int i = 0; i < 2; i++) {
    const par_part *pp = &ap->part[i];
    bytes += pp->ep_cap * sizeof *pp->ep + pp->cap * sizeof *pp->buf + 2 * pp->pairs_cap * sizeof *pp->pairs;
  }
  if (!e->solo && bytes > ap->keep_bytes) par_parts_free(ap);
}

int engine__apply_start(recd_engine *e) {
  struct apply_par *ap = xcalloc(1, sizeof *ap);
  const char *keep = getenv("RECD_TEST_PAR_KEEP_BYTES");
  ap->keep_bytes = keep ? (size_t)atoll(keep) : PAR_KEEP_BYTES;
  pthread_mutex_init(&ap->m, NULL);
  pthread_cond_init(&ap->c, NULL);
  e->par = ap;
  int rc = pthread_create(&ap->helper, NULL, helper_main, e);
  if (rc) { /* apply sequentially */
    pthread_mutex_destroy(&ap->m);
    pthread_cond_destroy(&ap->c);
    free(ap);
    e->par = NULL;
    log_warn("apply: no helper thread (%s); applying on one thread", strerror(rc));
  }
  return 0;
}

/* the two parts' working memory goes back (the next big batch allocates it
 * again) */
static void par_parts_free(struct apply_par *ap) {
  for (int i = 0; i < 2; i++) {
    par_part *pp = &ap->part[i];
    free(pp->ep);
    free(pp->buf);
    free(pp->pairs);
    free(pp->sorted);
    *pp = (par_part){0};
  }
}

void engine__apply_trim(recd_engine *e) {
  if (e->par) par_parts_free(e->par);
}

void engine__apply_stop(recd_engine *e) {
  struct apply_par *ap = e->par;
  if (!ap) return;
  pthread_mutex_lock(&ap->m);
  ap->stop = 1;
  pthread_cond_broadcast(&ap->c);
  pthread_mutex_unlock(&ap->m);
  pthread_join(ap->helper, NULL);
  pthread_mutex_destroy(&ap->m);
  pthread_cond_destroy(&ap->c);
  par_parts_free(ap);
  free(ap);
  e->par = NULL;
}

void engine__apply_events(recd_engine *e, const engine_apply_ev *ev, size_t n) {
  if (e->par && n >= PAR_MIN) apply_parallel(e, ev, n);
  else apply_sequential(e, ev, n);
}

void engine__apply_event(recd_engine *e, uint32_t uid, uint32_t iid, int type, int64_t ts, const char *session) {
  engine_apply_ev ev = {.uid = uid, .iid = iid, .type = type, .ts = ts, .session = session};
  apply_one(e, &ev);
}

void engine__apply_item(recd_engine *e, uint32_t iid, const char **cats, size_t ncats, const char **tags,
                        size_t ntags, int available, int deleted, int64_t created_at, const char *props) {
  uint32_t cid[ITEM_MAX_CATS], tid[ITEM_MAX_TAGS];
  size_t nc = 0, nt = 0;
  itemstats *is = engine__item_stats(e, iid, 0);
  if (!is) { /* (interning creates them; a snapshot must see the creation as a change) */
    pthread_mutex_lock(engine__ilock(e, iid));
    engine__keep_item(e, iid);
    is = engine__item_stats(e, iid, 1);
    pthread_mutex_unlock(engine__ilock(e, iid));
  }
  pthread_rwlock_wrlock(&e->content_lock);
  if (!deleted) {
    for (size_t i = 0; i < ncats && nc < ITEM_MAX_CATS; i++) {
      uint32_t id = content_category_id(&e->content, cats[i], strlen(cats[i]));
      int dup = 0;
      for (size_t k = 0; k < nc; k++) dup |= cid[k] == id;
      if (!dup) cid[nc++] = id;
    }
    for (size_t i = 0; i < ntags && nt < ITEM_MAX_TAGS; i++) {
      uint32_t id = content_tag_id(&e->content, tags[i], strlen(tags[i]));
      int dup = 0;
      for (size_t k = 0; k < nt; k++) dup |= tid[k] == id;
      if (!dup) tid[nt++] = id;
    }
  }
  /* the writer is the only mutator, so reading is->cats without the item lock is safe here */
  content_set(&e->content, iid, is->cats, is->ncats, is->tags, is->ntags, cid, (int)nc, tid, (int)nt);
  pthread_rwlock_unlock(&e->content_lock);

  uint32_t *ncid = nc ? xmalloc(nc * sizeof *ncid) : NULL, *ntid = nt ? xmalloc(nt * sizeof *ntid) : NULL;
  if (nc) memcpy(ncid, cid, nc * sizeof *ncid);
  if (nt) memcpy(ntid, tid, nt * sizeof *ntid);
  char *np = props && !deleted ? xstrdup(props) : NULL;
  pthread_mutex_t *il = engine__ilock(e, iid);
  pthread_mutex_lock(il);
  int was = is->in_catalog && !is->deleted;
  uint32_t *oc = is->cats, *ot = is->tags;
  char *op = is->properties;
  is->cats = ncid;
  is->ncats = (uint8_t)nc;
  is->tags = ntid;
  is->ntags = (uint8_t)nt;
  is->properties = np;
  is->in_catalog = 1;
  is->available = (uint8_t)(available != 0);
  is->deleted = (uint8_t)(deleted != 0);
  if (created_at != INT64_MIN) is->created_at = created_at;
  engine__item_rule_set(e, iid, is);
  pthread_mutex_unlock(il);
  free(oc);
  free(ot);
  free(op);
  int now = !deleted;
  if (now && !was) atomic_fetch_add(&e->n_catalog, 1);
  if (!now && was) atomic_fetch_sub(&e->n_catalog, 1);
  atomic_fetch_add(&e->content_version, 1); /* after the index and is->cats/tags: see src_content */
  atomic_fetch_add(&e->version, 1);
}

/* ---- the queue ---- */

/* an op's weight in a round: its events or items, else 1 */
static size_t op_units(const engine_op *op) {
  return op->kind == OP_EVENTS ? op->nevents : op->kind == OP_ITEMS ? op->nitems : 1;
}

int engine_submit(recd_engine *e, engine_op *op) {
  if (atomic_load(&e->fatal)) return RECD_EFATAL;
  op->next = NULL;
  op->rc = 0;
  op->submit_ns = clock_mono_ns();
  pthread_mutex_lock(&e->q_lock);
  if (e->stopping) {
    pthread_mutex_unlock(&e->q_lock);
    return RECD_ECLOSED;
  }
  if (e->q_tail) e->q_tail->next = op;
  else e->q_head = op;
  e->q_tail = op;
  e->q_depth++;
  e->q_units += op_units(op);
  if (e->q_units >= e->q_wake_units) pthread_cond_broadcast(&e->q_cond);
  pthread_mutex_unlock(&e->q_lock);
  return 0;
}

typedef struct {
  pthread_mutex_t m;
  pthread_cond_t c;
  int done;
} waiter;

static void wake(void *arg, int rc) {
  waiter *w = arg;
  (void)rc;
  pthread_mutex_lock(&w->m);
  w->done = 1;
  pthread_cond_signal(&w->c);
  pthread_mutex_unlock(&w->m);
}

int engine_submit_wait(recd_engine *e, engine_op *op) {
  waiter w = {.done = 0};
  pthread_mutex_init(&w.m, NULL);
  pthread_cond_init(&w.c, NULL);
  op->done = wake;
  op->arg = &w;
  int rc = engine_submit(e, op);
  if (!rc) {
    pthread_mutex_lock(&w.m);
    while (!w.done) pthread_cond_wait(&w.c, &w.m);
    pthread_mutex_unlock(&w.m);
    rc = op->rc;
  }
  pthread_mutex_destroy(&w.m);
  pthread_cond_destroy(&w.c);
  return rc;
}

/* ---- writing ---- */

/* intern (creating rows for) the ids of an event; writer thread only */
static int intern_user(recd_engine *e, const char *key, size_t len, uint32_t h, uint32_t *out) {
  uint32_t id = strmap_find_hashed(&e->users, key, len, h);
  if (id == STRMAP_NONE) {
    pthread_rwlock_wrlock(&e->users_lock);
    id = strmap_intern(&e->users, key, len, NULL);
    pthread_rwlock_unlock(&e->users_lock);
    int rc = store_put_user(e->st, id, key, len);
    if (rc) return rc;
  }
  *out = id;
  return 0;
}

/* row: write the new item's bare row (an event's item); a catalog upsert
 * writes the whole row itself, right after */
static int intern_item(recd_engine *e, const char *key, size_t len, uint32_t h, int64_t ts, int row, uint32_t *out,
                       int *created) {
  uint32_t id = strmap_find_hashed(&e->items, key, len, h);
  *created = 0;
  if (id == STRMAP_NONE) {
    pthread_rwlock_wrlock(&e->items_lock);
    id = strmap_intern(&e->items, key, len, NULL);
    pthread_rwlock_unlock(&e->items_lock);
    engine__item_stats(e, id, 1);
    *created = 1;
    store_item it = {.iid = id, .key = key, .available = 1, .created_at_ms = ts, .updated_at_ms = ts};
    int rc = row ? store_put_item(e->st, &it) : 0;
    if (rc) return rc;
  }
  *out = id;
  return 0;
}

/* the ids as a JSON array, as json_dumps(JSON_COMPACT) writes it (an id that
 * is not UTF-8, which the parsers never let through, is left out, as
 * json_string refuses it); the jansson tree and dump cost 6.5k instructions a
 * list */
static char *json_list(const char **v, size_t n) {
  jsonout j;
  jsonout_init(&j);
  jsonout_raw(&j, "[", 1);
  for (size_t i = 0; i < n; i++) {
    size_t at = j.len;
    if (at > 1) jsonout_raw(&j, ",", 1);
    if (jsonout_str(&j, v[i])) j.len = at;
  }
  jsonout_raw(&j, "]", 1);
  char *s = xmalloc(j.len + 1);
  memcpy(s, j.p, j.len);
  s[j.len] = 0;
  jsonout_release(&j);
  return s;
}

typedef struct {
  engine_apply_ev *ev; /* per event of OP_EVENTS: what apply needs */
  uint32_t *item_ids;
  int64_t *created;  /* per item of OP_ITEMS: resolved created_at */
} op_scratch;

/* The keys of every event in a round, hashed up front: the id maps are large
 * (a million users is several cache and TLB misses per lookup), so each lookup
 * runs with the hash slots and keys of the events 16, 8 and 4 places ahead
 * already being fetched - across requests, since a round of single-event
 * POSTs is one event per op. */
typedef struct {
  uint32_t hu, hi, lu, li;
} key_hash;

typedef struct {
  key_hash *kh;
  size_t n, at; /* events in the round, and the next one write_op interns */
} round_keys;

static void round_keys_init(round_keys *rk, const engine_op *batch) {
  size_t n = 0;
  for (const engine_op *op = batch; op; op = op->next)
    if (op->kind == OP_EVENTS) n += op->nevents;
  rk->kh = xmalloc((n ? n : 1) * sizeof *rk->kh);
  rk->n = n;
  rk->at = 0;
  size_t k = 0;
  for (const engine_op *op = batch; op; op = op->next) {
    if (op->kind != OP_EVENTS) continue;
    for (size_t i = 0; i < op->nevents; i++, k++) {
      const recd_event *ev = &op->events[i];
      rk->kh[k].lu = (uint32_t)strlen(ev->user_id);
      rk->kh[k].li = (uint32_t)strlen(ev->item_id);
      rk->kh[k].hu = strmap_hash(ev->user_id, rk->kh[k].lu);
      rk->kh[k].hi = strmap_hash(ev->item_id, rk->kh[k].li);
    }
  }
}

static int write_op(recd_engine *e, engine_op *op, op_scratch *sc, round_keys *rk) {
  int rc = 0, created;
  int64_t now = clock_now_ms();
  switch (op->kind) {
    case OP_EVENTS:
      sc->ev = xmalloc((op->nevents ? op->nevents : 1) * sizeof *sc->ev);
      /* the rows, written after the ids are interned: several per statement */
      store_event *se = xmalloc((op->nevents ? op->nevents : 1) * sizeof *se);
      for (size_t i = 0; i < op->nevents && !rc; i++) {
        size_t g = rk->at++;
        for (int stage = 1; stage <= 3; stage++) {
          size_t j = g + (size_t)(16 >> (stage - 1)); /* 16, 8, 4 events ahead */
          if (j < rk->n) {
            strmap_prefetch(&e->users, rk->kh[j].hu, stage);
            strmap_prefetch(&e->items, rk->kh[j].hi, stage);
          }
        }
        const key_hash *kh = &rk->kh[g];
        const recd_event *ev = &op->events[i];
        engine_apply_ev *a = &sc->ev[i];
        if ((rc = intern_user(e, ev->user_id, kh->lu, kh->hu, &a->uid)) ||
            (rc = intern_item(e, ev->item_id, kh->li, kh->hi, ev->ts_ms, 1, &a->iid, &created)))
          break;
        a->type = ev->type;
        a->ts = ev->ts_ms;
        a->session = ev->session_id;
        se[i] = (store_event){.seq = ++e->next_seq,
                              .ts_ms = ev->ts_ms,
                              .uid = a->uid,
                              .iid = a->iid,
                              .tid = e->type_tid[ev->type],
                              .value = ev->value,
                              .has_value = ev->has_value,
                              .session = ev->session_id,
                              .rec_id = ev->rec_id};
      }
      if (!rc) rc = store_append_events(e->st, se, op->nevents);
      free(se);
      break;
    case OP_ITEMS:
      sc->item_ids = xmalloc((op->nitems ? op->nitems : 1) * sizeof *sc->item_ids);
      sc->created = xmalloc((op->nitems ? op->nitems : 1) * sizeof *sc->created);
      for (size_t i = 0; i < op->nitems && !rc; i++) {
        const recd_item *it = &op->items[i];
        size_t len = strlen(it->item_id);
        if ((rc = intern_item(e, it->item_id, len, strmap_hash(it->item_id, len), now, 0, &sc->item_ids[i], &created)))
          break;
        itemstats *is = engine__item_stats(e, sc->item_ids[i], 1);
        int64_t cat = it->created_at_ms;
        if (cat < 0) cat = (!created && is->created_at != INT64_MIN) ? is->created_at : now;
        sc->created[i] = cat;
        char *cj = json_list(it->categories, it->ncategories), *tj = json_list(it->tags, it->ntags);
        store_item si = {.iid = sc->item_ids[i],
                         .key = it->item_id,
                         .in_catalog = 1,
                         .available = it->available,
                         .deleted = 0,
                         .created_at_ms = cat,
                         .updated_at_ms = now,
                         .categories_json = cj,
                         .tags_json = tj,
                         .properties_json = it->properties_json};
        rc = store_put_item(e->st, &si);
        free(cj);
        free(tj);
      }
      break;
    case OP_SYNC: /* after the commit (store_main) */
      break;
    case OP_DELETE_ITEM: {
      uint32_t iid = strmap_find(&e->items, op->item_id, strlen(op->item_id));
      itemstats *is = iid == STRMAP_NONE ? NULL : engine__item_stats(e, iid, 0);
      op->found = is && !is->deleted;
      if (op->found) rc = store_delete_item(e->st, iid);
      sc->item_ids = xmalloc(sizeof *sc->item_ids);
      sc->item_ids[0] = iid;
      break;
    }
  }
  return rc;
}

static void count_events(recd_engine *e, const engine_op *op) {
  for (size_t i = 0; i < op->nevents; i++) atomic_fetch_add(&e->by_type[op->events[i].type], 1);
  atomic_fetch_add(&e->n_events, op->nevents);
}

static void apply_op(recd_engine *e, engine_op *op, op_scratch *sc) {
  switch (op->kind) {
    case OP_EVENTS:
      engine__apply_events(e, sc->ev, op->nevents);
      count_events(e, op);
      break;
    case OP_ITEMS:
      for (size_t i = 0; i < op->nitems; i++) {
        const recd_item *it = &op->items[i];
        engine__apply_item(e, sc->item_ids[i], it->categories, it->ncategories, it->tags, it->ntags, it->available,
                           0, sc->created[i], it->properties_json);
      }
      break;
    case OP_SYNC:
      break;
    case OP_DELETE_ITEM:
      if (op->found) engine__apply_item(e, sc->item_ids[0], NULL, 0, NULL, 0, 0, 1, INT64_MIN, NULL);
      break;
  }
}

/* What replaying the events applied after `base` (an apply_ns reading) would
 * take, estimated by the time they took to apply here (the apply stage's wall
 * time: both its threads, as in the replay). 0 if base is later (a reader
 * outside the apply stage may see a snapshot end between its two loads). */
static uint64_t applied_since_ns(const recd_engine *e, uint64_t base) {
  uint64_t now = atomic_load(&e->apply_ns);
  return now > base ? now - base : 0;
}

uint64_t engine__replay_estimate_ns(const recd_engine *e) { return applied_since_ns(e, atomic_load(&e->snap_apply_ns)); }

/* A snapshot is due when the events applied since the last one reach both
 * snapshot_every and snapshot_growth x all events. Writing one costs in
 * proportion to the state (the snapshot thread serialises all of it: 3-4 s of
 * CPU at 1M users / 40M events, and the apply stage keeps a copy of each record
 * it changes first), so a fixed count would make ingest ever slower as the state
 * grows; the share keeps the cost per event flat and bounds restart's replay
 * to that share of the log.
 * It is also due once the replay estimate reaches half of
 * snapshot_max_replay: events that each pair with many recent items replayed
 * at ~250k/s against ~1M/s for the generated history (stop 19), so counts
 * alone let a crash's replay reach 8-13 s on the full state. */
static int snapshot_due(const recd_engine *e) {
  uint64_t since = e->applied_seq - e->last_snap_seq;
  if (!since) return 0;
  if (e->cfg.snapshot_max_replay_ms && engine__replay_estimate_ns(e) * 2 >= (uint64_t)e->cfg.snapshot_max_replay_ms * 1000000u)
    return 1;
  return since >= (uint64_t)e->cfg.snapshot_every && (double)since >= e->cfg.snapshot_growth * (double)e->applied_seq;
}

/* Writes wait while the events since the newest snapshot would take longer
 * than snapshot_max_replay to replay and a snapshot is being written (it ends
 * on its own; once it does, the estimate drops to the events since its
 * start): a crash's replay stays bounded under any write load, at the cost of
 * the writes' throughput only where they outrun the snapshots. Only events
 * applied since open count here: the tail this start replayed makes the first
 * snapshot due (snapshot_due), but does not stall the first writes. */
static int writes_held(const recd_engine *e) {
  uint64_t base = atomic_load(&e->snap_apply_ns);
  if (base < e->open_apply_ns) base = e->open_apply_ns;
  return e->snap && e->cfg.snapshot_max_replay_ms &&
         applied_since_ns(e, base) >= (uint64_t)e->cfg.snapshot_max_replay_ms * 1000000u;
}

/* no background snapshot runs, and one should start */
static int snapshot_start_due(const recd_engine *e) {
  return !e->snap && e->cfg.snapshot_every && e->opened && snapshot_due(e) && !atomic_load(&e->fatal);
}

/* end a finished background snapshot; start one when enough events were applied */
static void snapshot_tick(recd_engine *e) {
  if (engine__snapshot_done(e)) engine__snapshot_end(e, 0);
  if (snapshot_start_due(e)) {
    /* invariant 6: the store stage holds round_lock through a round's commit,
     * so once it is taken a round handed over early is committed, and the
     * snapshot's event is a committed one. (The header's id counts are the
     * applied rounds', see snapshot.c.) */
    pthread_mutex_lock(&e->round_lock);
    int rc = engine__snapshot_start(e, e->applied_seq, e->applied_users, e->applied_items);
    pthread_mutex_unlock(&e->round_lock);
    if (rc) log_error("snapshot: cannot start the background writer: %s", recd_strerror(rc));
  }
}

/* One write round, handed from the store stage to the apply stage. */
typedef struct write_round {
  engine_op *ops;
  size_t n;
  op_scratch *sc;
  int write_rc;         /* interning and INSERTs: 0, or the round is not applied */
  uint64_t last_seq;    /* the seq of its last event */
  uint64_t nusers, nitems; /* ids interned by the end of its writes (its own and earlier rounds') */
  /* under a_lock: */
  int rc;               /* the commit's result: 0, or every op fails with it */
  int sync_rc;          /* OP_SYNC ops' result when the commit succeeded */
  int applied, committed; /* the thread that sets the second completes the round */
  int64_t taken_ns, committed_ns; /* when the store stage took it, and committed it */
  struct write_round *next;
} write_round;

/* Apply a round to the live state. Run by the apply stage: the apply thread,
 * or the store thread for a small round while the apply thread is idle
 * (store_main). */
static void apply_round(recd_engine *e, write_round *r) {
  if (!r->write_rc) {
    int64_t t0 = clock_mono_ns();
    size_t i = 0;
    for (engine_op *op = r->ops; op;) {
      /* consecutive event ops (many small POSTed batches) are applied as one
       * batch: big enough for the two apply threads */
      size_t i0 = i, total = 0, nops = 0;
      engine_op *first = op;
      for (; op && op->kind == OP_EVENTS; op = op->next, i++, nops++) total += op->nevents;
      if (nops > 1) {
        engine_apply_ev *all = xmalloc(total * sizeof *all), *p = all;
        for (size_t k = i0; k < i; k++) {
          memcpy(p, r->sc[k].ev, first->nevents * sizeof *p);
          p += first->nevents;
          count_events(e, first);
          first = first->next;
        }
        engine__apply_events(e, all, total);
        free(all);
      } else if (nops == 1) {
        apply_op(e, first, &r->sc[i0]);
      }
      if (op && op->kind != OP_EVENTS) {
        apply_op(e, op, &r->sc[i]);
        op = op->next;
        i++;
      }
    }
    atomic_fetch_add(&e->apply_ns, (uint64_t)(clock_mono_ns() - t0));
    e->applied_seq = r->last_seq;
    e->applied_users = r->nusers;
    e->applied_items = r->nitems;
    engine__trending_sync(e); /* before the acks: small catalogs see their writes in trending at once */
  }
}

/* The apply stage is done with a round; 1 if it is committed too, and the
 * caller now completes it (else the store stage will, once it is). */
static int round_applied(recd_engine *e, write_round *r) {
  pthread_mutex_lock(&e->a_lock);
  r->applied = 1;
  int committed = r->committed;
  pthread_mutex_unlock(&e->a_lock);
  return committed;
}

/* Complete a round that is committed and applied: its ops' done() callbacks,
 * in order; then free it, and count it out of a_pending if it was handed over.
 * Rounds complete in order: both stages take them in order, and a round is
 * completed by the later of the two. */
static void complete_round(recd_engine *e, write_round *r, int handed) {
  int64_t now = clock_mono_ns();
  size_t i = 0;
  for (engine_op *op = r->ops, *next; op; op = next, i++) {
    next = op->next; /* done() may free op */
    free(r->sc[i].ev);
    free(r->sc[i].item_ids);
    free(r->sc[i].created);
    op->rc = r->rc ? r->rc : op->kind == OP_SYNC ? r->sync_rc : 0;
    engine_hist_add(&e->write_queue, r->taken_ns - op->submit_ns);
    engine_hist_add(&e->write_apply, now - r->committed_ns);
    if (op->done) op->done(op->arg, op->rc);
  }
  free(r->sc);
  free(r);
  if (handed) {
    pthread_mutex_lock(&e->a_lock);
    e->a_pending--;
    pthread_cond_broadcast(&e->a_cond);
    pthread_mutex_unlock(&e->a_lock);
  }
}

/* The between-rounds work, by the apply thread only: it may take round_lock,
 * which the store stage holds for a whole round. Returns whether writes are
 * to be held now (writes_held; set with the caller's a_lock). */
static int apply_ticks(recd_engine *e) {
  snapshot_tick(e);
  engine__train_tick(e);
  return writes_held(e);
}

/* Whether the between-rounds work has anything to do now (after a round the
 * store stage applied): a snapshot to end or start, a training run to start. */
static int ticks_wanted(recd_engine *e) {
  return e->snap || snapshot_start_due(e) || engine__train_due(e);
}

/* The most events (and items) in a round the store stage applies itself when
 * the apply thread is idle and no write is queued. Such a round takes
 * microseconds to apply, and handing it over would cost a thread wake-up on the
 * acknowledgement's path: with both CPUs busy serving reads, that wait was a
 * p99 of ~2.5 ms. Bigger rounds, and any round while more writes wait, go to
 * the apply thread before their commit, so that the apply overlaps the sync
 * (applying them here after the commit cost single-event POSTs ~8% of their
 * throughput; handing them over only after it, ~11% at full). */
#define APPLY_HERE_MAX 16

static int round_small(const write_round *r) {
  size_t n = 0;
  for (const engine_op *op = r->ops; op; op = op->next) n += op_units(op);
  return n <= APPLY_HERE_MAX;
}

/* Commit the round's transaction. A test knob, RECD_TEST_FAIL_COMMIT_AFTER=N
 * (read at start), makes every commit after the first N fail as a full disk
 * would, so that tests can reach the failure path. */
static int commit_round(recd_engine *e) {
  if (e->test_commits_left >= 0 && e->test_commits_left-- == 0) {
    e->test_commits_left = 0;
    return RECD_EIO;
  }
  return store_commit(e->st);
}

/* no write waits in the queue */
static int queue_empty(recd_engine *e) {
  pthread_mutex_lock(&e->q_lock);
  int empty = !e->q_head;
  pthread_mutex_unlock(&e->q_lock);
  return empty;
}

/* nothing waits, and the apply thread has nothing to do */
static int idle_now(recd_engine *e) {
  if (!queue_empty(e)) return 0; /* q_lock and a_lock are never held together */
  pthread_mutex_lock(&e->a_lock);
  int idle = !e->a_head && !e->applying;
  pthread_mutex_unlock(&e->a_lock);
  return idle;
}

/* queue a round for the apply thread */
static void hand_over(recd_engine *e, write_round *r) {
  pthread_mutex_lock(&e->a_lock);
  if (e->a_tail) e->a_tail->next = r;
  else e->a_head = r;
  e->a_tail = r;
  e->a_pending++;
  pthread_cond_broadcast(&e->a_cond);
  pthread_mutex_unlock(&e->a_lock);
}

/* Rounds committed but not yet applied that the store stage may run ahead by:
 * while the apply stage works on round N, round N+1 is written and synced. */
#define PIPELINE_DEPTH 1

/* Group commit's delay. With fsync=full every commit costs a sync, whatever it
 * holds: ~80 us of CPU on the dev box (most of it the virtual disk's
 * notifications), ~35 us per event under a 90/10 GET/POST load, where a round
 * held 2.6 events. So while writes come from several clients at once (the last
 * round held more than one op), the store stage lets the queue fill before it
 * takes a round: until the oldest queued op has waited cfg.commit_delay_us, or
 * COMMIT_BATCH_UNITS events are queued, or the engine stops. One client's
 * writes, one after another, never wait (each round holds one op). Called and
 * returns with q_lock held and the queue not empty. */
#define COMMIT_BATCH_UNITS 8
static void commit_delay_wait(recd_engine *e, int64_t delay_ns) {
  int64_t until = e->q_head->submit_ns + delay_ns;
  struct timespec ts = {(time_t)(until / 1000000000), (long)(until % 1000000000)};
  atomic_fetch_add(&e->n_commit_waits, 1);
  e->q_wake_units = COMMIT_BATCH_UNITS; /* engine_submit wakes us only for a full round */
  while (!e->stopping && e->q_units < COMMIT_BATCH_UNITS && clock_mono_ns() < until)
    if (pthread_cond_timedwait(&e->q_cond, &e->q_lock, &ts) == ETIMEDOUT) break;
  e->q_wake_units = 1;
}

/* Store stage: take everything queued, intern ids, write it in one transaction,
 * commit, hand it to the apply stage. */
static void *store_main(void *arg) {
  recd_engine *e = arg;
  pthread_setname_np(pthread_self(), "recd-store");
  /* the delay only pays where commits sync one by one (not in a bulk load) */
  int64_t delay_ns = !strcmp(e->cfg.fsync, "full") && !e->cfg.bulk_load ? (int64_t)e->cfg.commit_delay_us * 1000 : 0;
  size_t last_ops = 0; /* ops in the last round */
  for (;;) {
    /* the apply stage is at most PIPELINE_DEPTH rounds behind */
    pthread_mutex_lock(&e->a_lock);
    while (e->a_pending > PIPELINE_DEPTH) pthread_cond_wait(&e->a_cond, &e->a_lock);
    if (e->hold_writes) {
      int64_t t0 = clock_mono_ns();
      while (e->hold_writes) pthread_cond_wait(&e->a_cond, &e->a_lock);
      atomic_fetch_add(&e->held_ns, (uint64_t)(clock_mono_ns() - t0));
    }
    pthread_mutex_unlock(&e->a_lock);

    pthread_mutex_lock(&e->q_lock);
    while (!e->q_head && !e->stopping) pthread_cond_wait(&e->q_cond, &e->q_lock);
    if (delay_ns && last_ops > 1 && e->q_head) commit_delay_wait(e, delay_ns);
    engine_op *batch = e->q_head;
    size_t n = e->q_depth;
    e->q_head = e->q_tail = NULL;
    e->q_depth = 0;
    e->q_units = 0;
    last_ops = n;
    int stop = e->stopping && !batch;
    pthread_mutex_unlock(&e->q_lock);
    if (stop) break;

    int catalog = 0, sync = 0;
    for (engine_op *op = batch; op; op = op->next) {
      catalog |= op->kind == OP_ITEMS || op->kind == OP_DELETE_ITEM;
      sync |= op->kind == OP_SYNC;
    }
    write_round *r = xcalloc(1, sizeof *r);
    r->taken_ns = clock_mono_ns();
    r->ops = batch;
    r->n = n;
    r->sc = xcalloc(n, sizeof *r->sc);
    pthread_mutex_lock(&e->round_lock);
    if (catalog) { /* catalog writes read item state (created_at, deleted) that earlier rounds set */
      pthread_mutex_lock(&e->a_lock);
      while (e->a_pending) pthread_cond_wait(&e->a_cond, &e->a_lock);
      pthread_mutex_unlock(&e->a_lock);
    }
    uint64_t seq0 = e->next_seq;
    int rc = atomic_load(&e->fatal) ? RECD_EFATAL : store_begin(e->st);
    size_t i = 0;
    round_keys rk;
    round_keys_init(&rk, batch);
    for (engine_op *op = batch; op && !rc; op = op->next, i++) rc = write_op(e, op, &r->sc[i], &rk);
    free(rk.kh);
    r->write_rc = rc;
    r->last_seq = e->next_seq;
    r->nusers = strmap_count(&e->users);
    r->nitems = strmap_count(&e->items);
    /* Hand the round over before its commit when the apply thread is busy or
     * more writes wait: its apply then overlaps its own fsync (POSTs at -c64
     * on the full state: +7-13%). An idle engine's small round is applied
     * here after the commit instead (no thread wake-up on its ack's path). A
     * catalog round is handed over only once committed. */
    int small = round_small(r);
    int early = !rc && !catalog && !(small && idle_now(e));
    if (early) hand_over(e, r);
    if (!rc) {
      int64_t t0 = clock_mono_ns();
      rc = commit_round(e);
      engine_hist_add(&e->sync, clock_mono_ns() - t0);
    }
    int sync_rc = !rc && sync ? store_sync(e->st) : 0;
    if (sync_rc && !atomic_exchange(&e->fatal, 1))
      log_error("writer: syncing the store failed (%s); refusing all writes until restart", recd_strerror(sync_rc));
    if (rc) {
      store_rollback(e->st);
      e->next_seq = seq0; /* nothing of this round was stored */
      if (!atomic_exchange(&e->fatal, 1))
        log_error("writer: the store failed (%s); refusing all writes until restart", recd_strerror(rc));
    } else {
      atomic_fetch_add(&e->n_commits, 1);
      atomic_store(&e->committed_seq, e->next_seq);
    }
    int64_t committed_ns = clock_mono_ns();
    pthread_mutex_lock(&e->a_lock);
    r->rc = rc;
    r->sync_rc = sync_rc;
    r->committed = 1;
    r->committed_ns = committed_ns;
    int done = r->applied; /* the apply stage finished first: complete it here */
    pthread_mutex_unlock(&e->a_lock);
    pthread_mutex_unlock(&e->round_lock);
    if (early) {
      if (done) complete_round(e, r, 1);
      continue;
    }

    int empty = queue_empty(e);
    pthread_mutex_lock(&e->a_lock);
    int here = empty && !e->a_head && !e->applying && small;
    if (here) e->applying = 1;
    pthread_mutex_unlock(&e->a_lock);
    if (!here) {
      hand_over(e, r);
      continue;
    }
    /* the apply stage is idle: be it for this round (see round_small) */
    apply_round(e, r);
    r->applied = 1; /* nobody else has it */
    complete_round(e, r, 0);
    int ticks = ticks_wanted(e);
    pthread_mutex_lock(&e->a_lock);
    e->applying = 0;
    if (ticks) {
      e->ticks_due = 1;
      pthread_cond_broadcast(&e->a_cond);
    }
    pthread_mutex_unlock(&e->a_lock);
  }
  engine__signal_stop(&e->a_lock, &e->a_cond, &e->a_stop);
  return NULL;
}

/* Apply stage: apply each round to the live state in order, then complete it
 * if it is committed (else the store stage will); between rounds, trending,
 * snapshots and training. */
static void *apply_main(void *arg) {
  recd_engine *e = arg;
  pthread_setname_np(pthread_self(), "recd-apply");
  for (;;) {
    pthread_mutex_lock(&e->a_lock);
    while (!e->a_head && !e->ticks_due && !e->a_stop) {
      if (e->snap) { /* wake to end the background snapshot */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&e->a_cond, &e->a_lock, &ts);
        if (!e->a_head && !e->a_stop) e->ticks_due = 1;
      } else {
        pthread_cond_wait(&e->a_cond, &e->a_lock);
      }
    }
    /* the store stage applies a round only while this thread is idle, and it
     * queues none meanwhile: never both at work */
    while (e->applying) pthread_cond_wait(&e->a_cond, &e->a_lock);
    write_round *r = e->a_head;
    if (r) {
      e->a_head = r->next;
      if (!e->a_head) e->a_tail = NULL;
    }
    int stop = !r && !e->ticks_due; /* stopped and drained */
    e->ticks_due = 0;
    e->applying = !stop;
    pthread_mutex_unlock(&e->a_lock);
    if (stop) break;

    if (r) {
      apply_round(e, r);
      if (round_applied(e, r)) complete_round(e, r, 1);
    }
    int hold = apply_ticks(e);
    pthread_mutex_lock(&e->a_lock);
    e->hold_writes = hold && !e->hold_off;
    e->applying = 0;
    pthread_cond_broadcast(&e->a_cond);
    pthread_mutex_unlock(&e->a_lock);
  }
  return NULL;
}

int engine__writer_start(recd_engine *e) {
  e->applied_seq = e->next_seq;
  e->applied_users = strmap_count(&e->users);
  e->applied_items = strmap_count(&e->items);
  const char *fail = getenv("RECD_TEST_FAIL_COMMIT_AFTER");
  e->test_commits_left = fail ? atoll(fail) : -1;
  int rc = engine__trending_start(e);
  if (rc) return rc;
  rc = pthread_create(&e->applier, NULL, apply_main, e);
  if (rc) {
    engine__trending_stop(e);
    return -rc;
  }
  if ((rc = pthread_create(&e->writer, NULL, store_main, e))) {
    engine__signal_stop(&e->a_lock, &e->a_cond, &e->a_stop);
    pthread_join(e->applier, NULL);
    engine__trending_stop(e);
    return -rc;
  }
  e->writer_started = 1;
  return 0;
}

void engine__writer_stop(recd_engine *e) {
  if (!e->writer_started) return;
  pthread_mutex_lock(&e->a_lock); /* a held store stage drains the queue now */
  e->hold_off = 1;
  e->hold_writes = 0;
  pthread_cond_broadcast(&e->a_cond);
  pthread_mutex_unlock(&e->a_lock);
  engine__signal_stop(&e->q_lock, &e->q_cond, &e->stopping);
  pthread_join(e->writer, NULL);  /* drains the queue, then tells the apply stage to stop */
  pthread_join(e->applier, NULL); /* applies and completes every committed round first */
  engine__trending_stop(e);
  e->writer_started = 0;
}
