/* recommend.c — candidates, blended scoring, business rules, reasons.
 *
 * A request copies what it needs from the live state under short per-stripe
 * locks (never holding two at once), builds candidates from each source into
 * one table, scores them as a weighted blend of per-source scores normalised
 * to [0, 1], filters them by the rules and fills up from trending. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/engine_int.h"
#include "model/ranker.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/stampmap.h"
#include "util/topkeys.h"
#include "util/u32map.h"

enum { SRC_COVIS, SRC_CONTENT, SRC_CATEGORY, SRC_TRENDING, SRC_NEW, SRC_MF, NSRC };

#define MF_CANDIDATES 50

#define MAX_ANCHORS 30     /* at most this many distinct recent items are anchors */
#define COVIS_PER_ANCHOR 50 /* strongest co-visited neighbours taken from each anchor */
#define CONTENT_ANCHORS 2
#define TOP_CATS 3
#define SCAN_CAP 200       /* postings scanned per category/tag, newest first */
#define CONTENT_HITS 30    /* content neighbours per anchor */
#define CAT_TRENDING 40    /* trending items per top category of the user's */
#define POP_TRENDING 100   /* trending items overall (or per filtered category) */
#define NEW_ARRIVALS 30
#define MAX_FILTER_CATS 64 /* categories a request may filter by */
/* the most candidates a request can gather: every source's bound added up */
#define MAX_CANDIDATES                                                                                    \
  (MAX_ANCHORS * COVIS_PER_ANCHOR + CONTENT_ANCHORS * CONTENT_HITS + MF_CANDIDATES + TOP_CATS * CAT_TRENDING + \
   MAX_FILTER_CATS * POP_TRENDING + NEW_ARRIVALS)
#define REASON_SHARE 0.15  /* a source is named when it gives this share of the score */

/* the sources whose reasons name an anchor (the first three): covis and
 * content the anchor item that gave the most, category the category */
#define NANCHORED 3

/* One line of cache: candidates are created and touched at random by the
 * sources (a thousand and more per request), then ordered by finish_list. */
typedef struct {
  uint32_t iid;
  float final;
  float s[NSRC];
  uint32_t anchor[NANCHORED];
  float anchor_w[NANCHORED];
  uint32_t cat0;           /* first category or UINT32_MAX (set when found eligible) */
  uint32_t normed;         /* s[] is normalised (cand_normalize) */
} cand;
_Static_assert(sizeof(cand) == 64, "a candidate is one cache line");

typedef struct {
  uint32_t iid;
  int type;
  float w;
  int64_t ts;              /* the user's latest event on it */
} anchor;

/* A request's working memory, reused by the next request instead of freed:
 * no allocation or clearing per request in the common case. */
typedef struct rec_scratch {
  stampmap idx;              /* iid -> cand index */
  stampmap percat;           /* finish_list: category -> items taken from it */
  cand *c;
  size_t cap;
  uint64_t *order;           /* finish_list: the candidates by score (see cand_order) */
  uint8_t *ok;               /* finish_list: per candidate, ELIG_* */
  size_t ocap;
  content_scratch content;
  unsigned thread;           /* the thread that used it last (thread_number) */
  struct rec_scratch *next;  /* in the engine's free list */
} rec_scratch;

/* a number for the calling thread, 1, 2, ... in order of first use */
static unsigned thread_number(void) {
  static _Atomic unsigned last;
  static _Thread_local unsigned mine;
  if (!mine) mine = atomic_fetch_add(&last, 1) + 1;
  return mine;
}

/* A thread takes back the scratch it used last when it is free: its index
 * (512 KiB at 100k items) and candidates are then in this CPU's cache. Taken
 * from the head of the list, scratches moved between the workers' CPUs with
 * every other request. */
static rec_scratch *scratch_get(recd_engine *e) {
  unsigned me = thread_number();
  pthread_mutex_lock(&e->scratch_lock);
  rec_scratch **at = &e->scratch;
  for (rec_scratch **p = at; *p; p = &(*p)->next)
    if ((*p)->thread == me) {
      at = p;
      break;
    }
  rec_scratch *s = *at;
  if (s) *at = s->next;
  pthread_mutex_unlock(&e->scratch_lock);
  if (!s) {
    s = xcalloc(1, sizeof *s);
    stampmap_init(&s->idx);
    stampmap_init(&s->percat);
    content_scratch_init(&s->content);
  }
  s->thread = me;
  stampmap_clear(&s->idx);
  stampmap_clear(&s->percat);
  return s;
}

static void scratch_put(recd_engine *e, rec_scratch *s) {
  pthread_mutex_lock(&e->scratch_lock);
  s->next = e->scratch;
  e->scratch = s;
  pthread_mutex_unlock(&e->scratch_lock);
}

void engine__scratch_free_all(recd_engine *e) {
  while (e->scratch) {
    rec_scratch *s = e->scratch;
    e->scratch = s->next;
    stampmap_release(&s->idx);
    stampmap_release(&s->percat);
    content_scratch_release(&s->content);
    free(s->c);
    free(s->order);
    free(s->ok);
    free(s);
  }
}

typedef struct {
  recd_engine *e;
  int64_t now;
  rec_scratch *scr;
  stampmap *idx; /* iid -> cand index (the scratch's) */
  cand *c;       /* the scratch's array: a run may grow it, cand_set_done hands it back */
  size_t n, cap;
  size_t zeroed; /* c[n, zeroed) are zero-filled, ready to be taken (cand_reserve) */
  float mx[NSRC]; /* each source's largest score so far (the blend normalises by it) */
  size_t ranked; /* after a rerank: c[0..ranked) are the reranked, out_score[0..ranked) their scores */
  float out_score[RANK_MAX_DEPTH];
  float ranked_lo; /* the lowest of them (the rest are shown below it) */
} cand_set;

static void cand_set_init(cand_set *cs, recd_engine *e, int64_t now, rec_scratch *scr) {
  *cs = (cand_set){.e = e, .now = now, .scr = scr, .idx = &scr->idx, .c = scr->c, .cap = scr->cap};
}

/* the candidate array (possibly grown by a run) goes back to the scratch */
static void cand_set_done(cand_set *cs) {
  cs->scr->c = cs->c;
  cs->scr->cap = cs->cap;
}

/* A source adds its candidates through a run: the candidate array, its count,
 * the index's slots and the source's largest score are copied into locals that
 * stay in registers for the source's loop, and written back by run_end. Read
 * through cs, the compiler reloaded them after every store to a candidate
 * (which might alias them). A run reserves room for as many new candidates as
 * it may add, zero-filled ahead (cand_set.zeroed), so an add is free of
 * branches: about half of a request's adds create a candidate, and a branch on
 * that was mispredicted every other add. Runs do not overlap. */
typedef struct {
  cand *c;
  stampmap_slot *slot;
  uint32_t n, gen, scap;
  float mx;
} cand_run;

static __attribute__((noinline)) void cand_reserve(cand_set *cs, size_t more) {
  size_t need = cs->n + more;
  if (need > cs->cap) {
    size_t cap = cs->cap ? cs->cap : 256;
    while (cap < need) cap *= 2;
    cs->c = xrealloc(cs->c, cap * sizeof *cs->c);
    cs->cap = cap;
  }
  if (cs->zeroed < cs->n) cs->zeroed = cs->n;
  memset(cs->c + cs->zeroed, 0, (need - cs->zeroed) * sizeof *cs->c);
  cs->zeroed = need;
}

/* a run of at most `adds` adds to source src */
static inline __attribute__((always_inline)) cand_run run_begin(cand_set *cs, int src, size_t adds) {
  if (cs->zeroed < cs->n + adds) cand_reserve(cs, adds);
  return (cand_run){.c = cs->c, .slot = cs->idx->s, .n = (uint32_t)cs->n, .gen = cs->idx->gen,
                    .scap = cs->idx->cap, .mx = cs->mx[src]};
}

static __attribute__((noinline)) stampmap_slot *index_grow(stampmap *m, uint32_t iid) {
  stampmap__grow(m, iid);
  return m->s;
}

static inline __attribute__((always_inline)) void run_end(const cand_run *r, cand_set *cs, int src) {
  cs->n = r->n;
  cs->mx[src] = r->mx;
}

/* inlined into each source's loop with a constant src (a call per candidate
 * was a third of its cost). A new candidate takes the next reserved (zeroed)
 * place; every store is made either way, with the values chosen by
 * conditional moves. */
static inline __attribute__((always_inline)) void run_add(cand_run *r, cand_set *cs, uint32_t iid, int src, float v,
                                                          uint32_t anchor_id) {
  if (!(v > 0)) return;
  if (iid >= r->scap) {
    r->slot = index_grow(cs->idx, iid);
    r->scap = cs->idx->cap;
  }
  stampmap_slot *sl = &r->slot[iid];
  _Static_assert(MAX_CANDIDATES <= STAMPMAP_MAX_VAL, "a candidate's index fits the index's 16 bits");
  /* selects by masks: with ?: the compiler branched on them again */
  uint32_t isnew = sl->stamp != r->gen, old = sl->val, at = old ^ ((old ^ r->n) & (0u - isnew));
  sl->stamp = (uint16_t)r->gen;
  sl->val = (uint16_t)at;
  r->n += isnew;
  cand *c = &r->c[at];
  c->iid = iid;
  float sum = c->s[src] + v;
  c->s[src] = sum;
  r->mx = sum > r->mx ? sum : r->mx;
  if (src < NANCHORED) {
    float aw = c->anchor_w[src];
    uint32_t more = 0u - (uint32_t)(v > aw), a = c->anchor[src];
    c->anchor[src] = a ^ ((a ^ anchor_id) & more);
    c->anchor_w[src] = v > aw ? v : aw;
  }
}

const char *engine__type_verb(const recd_engine *e, int type) {
  static const char *verbs[] = {"viewed", "clicked", "liked", "added to your cart", "bought"};
  return type >= 0 && type < 5 ? verbs[type] : "interacted with";
  (void)e;
}

trending *engine__trending(recd_engine *e);

static double window_days(const recd_engine *e, int64_t window_ms) {
  (void)e;
  return ceil((double)window_ms / 86400000.0);
}

/* buf = the strings concatenated, cut to bl - 1 bytes as snprintf would cut
 * "%s%s..."; NULL ends the list. Reasons are built with it for every item of
 * every list: a copy, without parsing a format each time. */
static void str_cat(char *buf, size_t bl, ...) {
  va_list ap;
  va_start(ap, bl);
  size_t n = 0;
  for (const char *p; (p = va_arg(ap, const char *)) != NULL;) {
    size_t l = strlen(p);
    if (l > bl - 1 - n) l = bl - 1 - n;
    memcpy(buf + n, p, l);
    n += l;
  }
  va_end(ap);
  buf[n] = 0;
}

static void window_words(int64_t window_ms, char *buf, size_t n) {
  int days = (int)ceil(window_ms / 86400000.0);
  /* runs per request: the usual words are copied, not printed */
  const char *w = days == 0 ? "overall" : days == 1 ? "today" : days == 7 ? "this week" : days == 30 ? "this month" : NULL;
  if (w) str_cat(buf, n, w, NULL);
  else snprintf(buf, n, "in the last %d days", days);
}

static void build_trending(recd_engine *e, trending *t, int64_t now, int64_t window_ms) {
  int days = (int)window_days(e, window_ms);
  pthread_rwlock_rdlock(&e->items_lock);
  size_t nitems = strmap_count(&e->items);
  pthread_rwlock_unlock(&e->items_lock);
  for (uint32_t iid = 0; iid < nitems; iid++) {
    itemstats *s = ptrvec_get(&e->istats, iid);
    if (!s) continue;
    uint32_t cats[ITEM_MAX_CATS];
    pthread_mutex_t *l = engine__ilock(e, iid);
    pthread_mutex_lock(l);
    int ok = itemstats_recommendable(s);
    double score = !ok ? 0
                   : days ? itemstats_window(s, now, days, e->cfg.popularity_half_life_ms)
                          : itemstats_popularity(s, now, e->cfg.popularity_half_life_ms);
    int ncats = s->ncats;
    if (ncats) memcpy(cats, s->cats, (size_t)ncats * sizeof *cats);
    int64_t created = s->created_at;
    double weight_total = s->weight_total;
    pthread_mutex_unlock(l);
    if (!ok) continue;
    float fresh = 0;
    if (created != INT64_MIN && created <= now && e->cfg.new_arrival_window_ms > 0 &&
        now - created < e->cfg.new_arrival_window_ms)
      fresh = (float)(1.0 - (double)(now - created) / (double)e->cfg.new_arrival_window_ms);
    if (fresh > 1) fresh = 1;
    /* a tiny share of all-time weight breaks ties among items quiet this window */
    trending_offer(t, iid, (float)(score + 1e-6 * weight_total), cats, ncats, fresh);
  }
}

/* Build a new snapshot and swap it in. One builder at a time. */
static void rebuild_trending(recd_engine *e) {
  pthread_mutex_lock(&e->trend_build);
  uint64_t v = atomic_load(&e->version);
  pthread_mutex_lock(&e->trend_lock);
  int fresh = e->trend && e->trend->version == v;
  pthread_mutex_unlock(&e->trend_lock);
  if (!fresh) {
    pthread_rwlock_rdlock(&e->content_lock);
    size_t ncat = content_ncategories(&e->content);
    pthread_rwlock_unlock(&e->content_lock);
    trending *nt = trending_new(ncat, 500, 200, 200);
    nt->version = v;
    nt->now = engine__now(e);
    nt->window_ms = e->cfg.trending_window_ms;
    build_trending(e, nt, nt->now, nt->window_ms);
    trending_finish(nt);
    atomic_store(&e->last_build_ms, clock_mono_ns() / 1000000);
    pthread_mutex_lock(&e->trend_lock);
    trending *old = e->trend;
    e->trend = nt;
    pthread_mutex_unlock(&e->trend_lock);
    trending_release(old);
  }
  pthread_mutex_unlock(&e->trend_build);
}

/* Requests only read the current snapshot (built by engine_warm before the
 * server listens, or by the first read when the catalog was empty then); the
 * apply stage (small catalogs) or the trending thread (large ones) rebuilds
 * it after writes, so no request pays for an O(items) pass. */
trending *engine__trending(recd_engine *e) {
  pthread_mutex_lock(&e->trend_lock);
  trending *t = e->trend ? trending_retain(e->trend) : NULL;
  pthread_mutex_unlock(&e->trend_lock);
  if (t) return t;
  rebuild_trending(e);
  pthread_mutex_lock(&e->trend_lock);
  t = trending_retain(e->trend);
  pthread_mutex_unlock(&e->trend_lock);
  return t;
}

/* Up to this many items the apply stage rebuilds trending after every round,
 * before its acks, so writes show in trending at once. Above it a rebuild is
 * an O(items) pass (tens of milliseconds at 100k items): a thread of its own
 * does it at most once per trending_refresh, and no ack waits for it. */
#define TRENDING_SYNC_ITEMS 2000

static int trending_stale(recd_engine *e) {
  pthread_mutex_lock(&e->trend_lock);
  int stale = e->trend != NULL && e->trend->version != atomic_load(&e->version);
  pthread_mutex_unlock(&e->trend_lock);
  return stale; /* nothing built yet (no reader) is not stale */
}

static size_t catalog_size(recd_engine *e) {
  pthread_rwlock_rdlock(&e->items_lock); /* the writer's store stage adds items */
  size_t n = strmap_count(&e->items);
  pthread_rwlock_unlock(&e->items_lock);
  return n;
}

/* who rebuilds: the trending thread, or (small catalogs, refresh 0) the apply stage */
static int rebuilt_by_thread(recd_engine *e) {
  return e->cfg.trending_refresh_ms > 0 && catalog_size(e) > TRENDING_SYNC_ITEMS;
}

void engine__trending_sync(recd_engine *e) {
  if (trending_stale(e) && !rebuilt_by_thread(e)) rebuild_trending(e);
}

static void *trend_main(void *arg) {
  recd_engine *e = arg;
  pthread_setname_np(pthread_self(), "recd-trend");
  int64_t refresh = e->cfg.trending_refresh_ms, checked = 0; /* last look that found nothing to do */
  pthread_mutex_lock(&e->tr_lock);
  while (!e->trender_stop) {
    int64_t built = atomic_load(&e->last_build_ms);
    int64_t due = (built > checked ? built : checked) + refresh - clock_mono_ns() / 1000000;
    if (due > 0) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_nsec += (long)(due % 1000) * 1000000L;
      ts.tv_sec += due / 1000 + ts.tv_nsec / 1000000000L;
      ts.tv_nsec %= 1000000000L;
      pthread_cond_timedwait(&e->tr_cond, &e->tr_lock, &ts);
      continue;
    }
    pthread_mutex_unlock(&e->tr_lock);
    if (trending_stale(e) && rebuilt_by_thread(e)) rebuild_trending(e);
    else checked = clock_mono_ns() / 1000000;
    pthread_mutex_lock(&e->tr_lock);
  }
  pthread_mutex_unlock(&e->tr_lock);
  return NULL;
}

int engine__trending_start(recd_engine *e) {
  if (e->cfg.trending_refresh_ms == 0) return 0; /* the apply stage rebuilds every time */
  int rc = pthread_create(&e->trender, NULL, trend_main, e);
  if (rc) return -rc;
  e->trender_started = 1;
  return 0;
}

void engine__trending_stop(recd_engine *e) {
  if (!e->trender_started) return;
  engine__signal_stop(&e->tr_lock, &e->tr_cond, &e->trender_stop);
  pthread_join(e->trender, NULL);
  e->trender_started = 0;
}

/* ---- request context ---- */

typedef struct {
  anchor anchors[MAX_ANCHORS];
  int nanchors;
  u32map seen;          /* anonymous requests: the given items (iid -> type mask) */
  uint32_t uid;         /* known user: their seen set is checked in place, under their lock */
  int has_uid;
  struct {
    uint32_t cat;
    float share;
  } cats[TOP_CATS];
  int ncats;
  int known;
  /* for the ranker's features (filled only when ranking) */
  struct {
    uint32_t cat;
    float share;
  } aff[USERPROF_MAX_AFF];
  int naff;
} user_ctx;

/* an anchor's recency weight: 0.85^k for the k-th newest distinct item, from a table (pow per anchor was 2% of a request) */
static float recency[MAX_ANCHORS];
static pthread_once_t recency_once = PTHREAD_ONCE_INIT;

static void recency_init(void) {
  for (int k = 0; k < MAX_ANCHORS; k++) recency[k] = (float)pow(0.85, k);
}

static float recency_weight(int k) {
  pthread_once(&recency_once, recency_init);
  return recency[k];
}

static void ctx_from_user(recd_engine *e, uint32_t uid, int64_t now, const char *session, user_ctx *u) {
  userprof *p = ptrvec_get(&e->uprof, uid);
  if (!p) return;
  pthread_mutex_t *l = engine__ulock(e, uid);
  pthread_mutex_lock(l);
  userprof_prefetch_read(p, MAX_ANCHORS);
  u->known = p->total > 0;
  int cur_session = session && p->session && !strcmp(session, p->session);
  for (int i = 0; u->nanchors < MAX_ANCHORS; i++) {
    const recent_ev *r = userprof_recent(p, i);
    if (!r) break;
    float w = e->types[r->type].weight * recency_weight(u->nanchors);
    if (cur_session && r->ts >= p->session_start) w *= 1.5f;
    int k;
    for (k = 0; k < u->nanchors; k++)
      if (u->anchors[k].iid == r->iid) break;
    if (k < u->nanchors) {
      if (e->types[r->type].weight > e->types[u->anchors[k].type].weight) u->anchors[k].type = r->type;
      continue;
    }
    u->anchors[u->nanchors++] = (anchor){.iid = r->iid, .type = r->type, .w = w, .ts = r->ts};
    ptrvec_prefetch(&e->covis, r->iid); /* its co-visitation slot, a miss src_covis would wait on */
  }
  u->uid = uid; /* no copy of a possibly large seen set: eligible_batch looks it up */
  u->has_uid = 1;
  double total = 0, sc[USERPROF_MAX_AFF];
  for (int i = 0; i < p->naff; i++) total += sc[i] = userprof_affinity(p, i, now, e->cfg.affinity_half_life_ms);
  for (int i = 0; i < p->naff && total > 0; i++) {
    u->aff[u->naff].cat = p->aff[i].cat;
    u->aff[u->naff++].share = (float)(sc[i] / total);
  }
  for (int k = 0; k < TOP_CATS && total > 0; k++) {
    int best = -1;
    for (int i = 0; i < p->naff; i++)
      if (sc[i] > 0 && (best < 0 || sc[i] > sc[best])) best = i;
    if (best < 0) break;
    u->cats[u->ncats].cat = p->aff[best].cat;
    u->cats[u->ncats++].share = (float)(sc[best] / total);
    sc[best] = -1;
  }
  pthread_mutex_unlock(l);
}

/* ---- sources ---- */

/* An item's content neighbours depend only on the catalog (the content index
 * and the item's own categories and tags), which changes far more rarely than
 * it is read: they are kept in the item's memo, tagged with the catalog
 * version they were computed at. The version is read before anything else and
 * bumped by the writer after a catalog change is fully applied (before it is
 * acknowledged), so a memo whose tag is current was computed from the catalog
 * as every acknowledged write left it; any other memo is recomputed. */
typedef struct {
  uint64_t version;
  uint32_t n;
  content_hit hits[CONTENT_HITS];
} content_memo;

size_t engine__memo_bytes(void) { return sizeof(content_memo); }

/* a hint that s's memo is read soon: its lines (the memo pointer is stored
 * atomically, so this may read it without the item's lock) */
static inline void content_memo_prefetch(const itemstats *s) {
  const char *p = __atomic_load_n(&s->memo, __ATOMIC_RELAXED);
  if (p)
    for (size_t off = 0; off < sizeof(content_memo); off += 64) __builtin_prefetch(p + off);
}

static void src_covis(cand_set *cs, const user_ctx *u, int content_next) {
  recd_engine *e = cs->e;
  int na = u->nanchors;
  /* At 100k items nearly every step to an anchor's neighbours is a cache (and
   * TLB) miss: its slot in the list vector, the list, its lock, its entries.
   * Each step is fetched for all anchors before the next, so the misses of
   * different anchors overlap instead of queueing one after another. */
  /* The content source's anchors' memos (src_content, next) come in the same
   * steps: statistics slot, statistics, memo. */
  const covis_list *xl[MAX_ANCHORS];
  const itemstats *xs[CONTENT_ANCHORS] = {0};
  int nc = content_next ? (na < CONTENT_ANCHORS ? na : CONTENT_ANCHORS) : 0;
  for (int a = 0; a < na; a++) ptrvec_prefetch(&e->covis, u->anchors[a].iid);
  for (int a = 0; a < nc; a++) ptrvec_prefetch(&e->istats, u->anchors[a].iid);
  for (int a = 0; a < na; a++) {
    if ((xl[a] = ptrvec_get(&e->covis, u->anchors[a].iid))) __builtin_prefetch(xl[a]);
    __builtin_prefetch(engine__ilock(e, u->anchors[a].iid), 1);
  }
  for (int a = 0; a < nc; a++)
    if ((xs[a] = ptrvec_get(&e->istats, u->anchors[a].iid))) __builtin_prefetch(xs[a]);
  for (int a = 0; a < na; a++)
    if (xl[a]) covis_prefetch_top(xl[a]);
  for (int a = 0; a < nc; a++)
    if (xs[a]) content_memo_prefetch(xs[a]);
  /* each anchor's top set is added in place, under the list's lock (a copy
   * out of it first was a tenth of this source) */
  _Static_assert(COVIS_PER_ANCHOR == COVIS_TOP, "an anchor's neighbours are its list's top set");
  for (int a = 0; a < na; a++) {
    uint32_t r = u->anchors[a].iid;
    pthread_mutex_t *l = engine__ilock(e, r);
    pthread_mutex_lock(l);
    covis_list *cl = ptrvec_get(&e->covis, r);
    if (cl && cl->n) {
      /* P(j | r): the share of r's co-visits that went to j (the guaranteed part w - err) */
      double scale = covis_scale(cl, cs->now, e->cfg.covis_half_life_ms), nr = cl->norm * scale;
      double f = u->anchors[a].w * scale / (nr > 0 ? nr : 1);
      const covis_ent *top;
      int n = covis_top_set(cl, &top);
      for (int k = 0; k < n; k++) stampmap_prefetch(cs->idx, top[k].iid);
      cand_run run = run_begin(cs, SRC_COVIS, (size_t)n);
      for (int k = 0; k < n; k++) {
        float g = top[k].w - top[k].err;
        run_add(&run, cs, top[k].iid, SRC_COVIS, (float)(f * g), r);
      }
      run_end(&run, cs, SRC_COVIS);
    }
    pthread_mutex_unlock(l);
  }
}

/* item r's content neighbours into hits (CONTENT_HITS at most): from its memo
 * when that is current, else computed and memoised; 0 for an unknown item or
 * one without categories and tags */
static size_t content_neighbours(recd_engine *e, uint32_t r, content_scratch *scr, content_hit *hits) {
  uint32_t cats[ITEM_MAX_CATS], tags[ITEM_MAX_TAGS];
  itemstats *s = ptrvec_get(&e->istats, r);
  if (!s) return 0;
  uint64_t ver = atomic_load(&e->content_version);
  pthread_mutex_t *l = engine__ilock(e, r);
  pthread_mutex_lock(l);
  int nc = s->ncats, nt = s->ntags;
  const content_memo *mm = s->memo;
  if (!nc && !nt) {
    pthread_mutex_unlock(l);
    return 0;
  }
  if (mm && mm->version == ver) {
    size_t nh = mm->n;
    memcpy(hits, mm->hits, nh * sizeof *hits);
    pthread_mutex_unlock(l);
    return nh;
  }
  if (nc) memcpy(cats, s->cats, (size_t)nc * 4);
  if (nt) memcpy(tags, s->tags, (size_t)nt * 4);
  pthread_mutex_unlock(l);
  pthread_rwlock_rdlock(&e->content_lock);
  size_t nh = content_similar(&e->content, cats, nc, tags, nt, r, CONTENT_HITS, SCAN_CAP, scr, hits);
  pthread_rwlock_unlock(&e->content_lock);
  pthread_mutex_lock(l);
  content_memo *w = s->memo;
  if (!w) {
    w = xmalloc(sizeof *w);
    w->version = 0;
    __atomic_store_n(&s->memo, w, __ATOMIC_RELEASE); /* content_memo_prefetch reads it unlocked */
  }
  if (w->version <= ver) { /* never replace a newer memo (another request's) by an older one */
    w->version = ver;
    w->n = (uint32_t)nh;
    memcpy(w->hits, hits, nh * sizeof *hits);
  }
  pthread_mutex_unlock(l);
  return nh;
}

static void src_content(cand_set *cs, const user_ctx *u) {
  recd_engine *e = cs->e;
  content_hit hits[CONTENT_HITS];
  for (int a = 0; a < u->nanchors && a < CONTENT_ANCHORS; a++) {
    uint32_t r = u->anchors[a].iid;
    size_t nh = content_neighbours(e, r, &cs->scr->content, hits);
    float w = u->anchors[a].w / e->types[u->anchors[a].type].weight; /* recency only */
    cand_run run = run_begin(cs, SRC_CONTENT, nh);
    for (size_t k = 0; k < nh; k++) run_add(&run, cs, hits[k].iid, SRC_CONTENT, w * hits[k].score, r);
    run_end(&run, cs, SRC_CONTENT);
  }
}

/* After a start no memo exists (they are not in the snapshot): the first
 * requests would compute their anchors' content neighbours themselves, ~40k
 * instructions each (the first 5 s of GETs on the full state ran at ~70% of
 * the rate of the next). A thread below the workers' priority fills them all
 * once, right after the start, and stops early when the engine does. */
static void *memo_warm_main(void *arg) {
  recd_engine *e = arg;
  pthread_setname_np(pthread_self(), "recd-warm");
  (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
  content_scratch scr;
  content_scratch_init(&scr);
  content_hit hits[CONTENT_HITS];
  size_t n = catalog_size(e), done = 0;
  int64_t t0 = clock_mono_ns();
  for (uint32_t iid = 0; iid < n && !atomic_load(&e->warm_stop); iid++, done++) content_neighbours(e, iid, &scr, hits);
  content_scratch_release(&scr);
  log_info("content: neighbours of %zu of %zu items memoised in the background in %.2f s", done, n,
           (clock_mono_ns() - t0) / 1e9);
  return NULL;
}

void engine__warm_stop(recd_engine *e) {
  if (!e->warmer_started) return;
  atomic_store(&e->warm_stop, 1);
  pthread_join(e->warmer, NULL);
  e->warmer_started = 0;
}

static void src_trending(cand_set *cs, const trending *t, const user_ctx *u, const uint32_t *fcats, size_t nfcats) {
  if (!t) return;
  for (int k = 0; k < u->ncats; k++) {
    uint32_t c = u->cats[k].cat;
    if (c >= t->ncat || !t->cat[c].n) continue;
    const pop_list *pl = &t->cat[c];
    cand_run run = run_begin(cs, SRC_CATEGORY, CAT_TRENDING);
    for (uint32_t i = 0; i < pl->n && i < CAT_TRENDING; i++)
      run_add(&run, cs, pl->e[i].iid, SRC_CATEGORY, u->cats[k].share * pl->e[i].score / pl->e[0].score, c);
    run_end(&run, cs, SRC_CATEGORY);
  }
  if (nfcats) { /* with a category filter, that category's trending stands in for global */
    for (size_t k = 0; k < nfcats; k++) {
      if (fcats[k] >= t->ncat || !t->cat[fcats[k]].n) continue;
      const pop_list *pl = &t->cat[fcats[k]];
      cand_run run = run_begin(cs, SRC_TRENDING, POP_TRENDING);
      for (uint32_t i = 0; i < pl->n && i < POP_TRENDING; i++)
        run_add(&run, cs, pl->e[i].iid, SRC_TRENDING, pl->e[i].score / pl->e[0].score, fcats[k]);
      run_end(&run, cs, SRC_TRENDING);
    }
  } else {
    cand_run run = run_begin(cs, SRC_TRENDING, POP_TRENDING);
    for (uint32_t i = 0; i < t->global.n && i < POP_TRENDING; i++)
      run_add(&run, cs, t->global.e[i].iid, SRC_TRENDING,
              t->global.e[i].score / (t->max_global > 0 ? t->max_global : 1), 0);
    run_end(&run, cs, SRC_TRENDING);
  }
  cand_run run = run_begin(cs, SRC_NEW, NEW_ARRIVALS);
  for (uint32_t i = 0; i < t->fresh.n && i < NEW_ARRIVALS; i++) run_add(&run, cs, t->fresh.e[i].iid, SRC_NEW, t->fresh.e[i].score, 0);
  run_end(&run, cs, SRC_NEW);
}

/* the production model (iALS folded in from the anchors, or EASE) */
typedef struct {
  recd_engine *e;
  const user_ctx *u;
} mf_skip_arg;

static int mf_skip(void *arg, uint32_t iid) {
  const mf_skip_arg *a = arg;
  const user_ctx *u = a->u;
  for (int i = 0; i < u->nanchors; i++)
    if (u->anchors[i].iid == iid) return 1;
  if (u32map_get(&u->seen, iid)) return 1;
  if (!u->has_uid || !a->e->cfg.exclude_seen) return 0;
  userprof *p = ptrvec_get(&a->e->uprof, u->uid);
  if (!p) return 0;
  pthread_mutex_t *l = engine__ulock(a->e, u->uid);
  pthread_mutex_lock(l);
  int seen = u32map_get(&p->seen, iid) != NULL;
  pthread_mutex_unlock(l);
  return seen;
}

#define MF_MAX_ITEMS 4096 /* a user's items folded in (all of them for most users) */

static void src_mf(cand_set *cs, const user_ctx *u, const model_set *m) {
  if (!m || !u->nanchors) return;
  recd_engine *e = cs->e;
  uint32_t *items = xmalloc(MF_MAX_ITEMS * sizeof *items), top[MF_CANDIDATES];
  float *r = xmalloc(MF_MAX_ITEMS * sizeof *r), sc[MF_CANDIDATES];
  size_t ni = 0;
  userprof *p = u->has_uid ? ptrvec_get(&e->uprof, u->uid) : NULL;
  if (p) { /* everything the user touched, strength = sum of the weights of the types used */
    pthread_mutex_t *l = engine__ulock(e, u->uid);
    pthread_mutex_lock(l);
    for (uint32_t s = 0; s < p->seen.cap && ni < MF_MAX_ITEMS; s++) {
      if (p->seen.keys[s] == U32MAP_EMPTY) continue;
      float w = 0;
      for (int t = 0; t < e->ntypes && t < 31; t++)
        if (p->seen.vals[s] & (1u << t)) w += e->types[t].weight;
      items[ni] = p->seen.keys[s];
      r[ni++] = w;
    }
    pthread_mutex_unlock(l);
  } else {
    for (int i = 0; i < u->nanchors; i++) {
      items[ni] = u->anchors[i].iid;
      r[ni++] = e->types[u->anchors[i].type].weight;
    }
  }
  mf_skip_arg a = {e, u};
  size_t n = engine__model_topk(m, m->scan, m->nscan, items, r, ni, MF_CANDIDATES, mf_skip, &a, top, sc);
  free(items);
  free(r);
  cand_run run = run_begin(cs, SRC_MF, n);
  for (size_t k = 0; k < n; k++)
    if (sc[k] > 0) run_add(&run, cs, top[k], SRC_MF, sc[k], UINT32_MAX);
  run_end(&run, cs, SRC_MF);
}

/* ---- rules ---- */

typedef struct {
  const user_ctx *u;
  const u32map *excl;
  const uint32_t *fcats;
  size_t nfcats;
  uint32_t self;
} rules;

#define ELIG_BATCH 16

/* Whether each of iids[0..n) (n <= ELIG_BATCH) may be recommended, into
 * yes[]; cat0[k] gets its first category (UINT32_MAX: none). A known user's
 * seen set is read under one lock for the whole batch: a lock per item was a
 * third of a check. */
static void eligible_batch(recd_engine *e, const rules *r, const uint32_t *iids, size_t n, uint8_t *yes,
                           uint32_t *cat0) {
  uint32_t mask[ELIG_BATCH] = {0};
  for (size_t k = 0; k < n; k++) ptrvec_prefetch(&e->irule, iids[k]); /* read after the seen sets */
  if (r->u) {
    for (size_t k = 0; k < n; k++) {
      const uint32_t *m = u32map_get(&r->u->seen, iids[k]);
      if (m) mask[k] = *m;
    }
    userprof *p = r->u->has_uid ? ptrvec_get(&e->uprof, r->u->uid) : NULL;
    if (p) {
      pthread_mutex_t *ul = engine__ulock(e, r->u->uid);
      pthread_mutex_lock(ul);
      for (size_t k = 0; k < n; k++) {
        const uint32_t *m = u32map_get(&p->seen, iids[k]);
        if (m) mask[k] = *m | 1u << 31;
      }
      pthread_mutex_unlock(ul);
    }
  }
  for (size_t k = 0; k < n; k++) {
    uint32_t iid = iids[k];
    yes[k] = 0;
    cat0[k] = UINT32_MAX;
    if (iid == r->self || u32map_get(r->excl, iid)) continue;
    if (mask[k] && e->cfg.exclude_seen) continue;
    if (e->cfg.exclude_purchased && (mask[k] & (1u << TYPE_PURCHASE))) continue;
    uint64_t rule = engine__item_rule(e, iid);
    if (!(rule & IRULE_OK)) continue;
    if (r->nfcats) { /* a category filter: all of the item's categories, under its lock */
      itemstats *s = ptrvec_get(&e->istats, iid);
      if (!s) continue;
      pthread_mutex_t *l = engine__ilock(e, iid);
      pthread_mutex_lock(l);
      int ok = 0;
      for (int i = 0; i < s->ncats && !ok; i++)
        for (size_t j = 0; j < r->nfcats; j++) ok |= s->cats[i] == r->fcats[j];
      pthread_mutex_unlock(l);
      if (!ok) continue;
    }
    yes[k] = 1;
    cat0[k] = (uint32_t)(rule >> 32);
  }
}

static int eligible(recd_engine *e, const rules *r, uint32_t iid) {
  uint8_t yes;
  uint32_t cat0;
  eligible_batch(e, r, &iid, 1, &yes, &cat0);
  return yes;
}

/* a candidate's source scores over each source's largest (see finish_list),
 * once: only the candidates a list shows or the ranker scores need them (the
 * blend folds the division into its weights) */
static void cand_normalize(cand *c, const float *mx) {
  if (c->normed) return;
  for (int s = 0; s < NSRC; s++)
    if (mx[s] > 0) c->s[s] /= mx[s];
  c->normed = 1;
}

typedef struct {
  int src;
  float v;
} src_share;

static int anchor_type(const user_ctx *u, uint32_t iid) {
  for (int i = 0; u && i < u->nanchors; i++)
    if (u->anchors[i].iid == iid) return u->anchors[i].type;
  return TYPE_VIEW;
}

static void reasons_for(recd_engine *e, const cand *c, const float *wsrc, const char *win, recd_rec_item *out,
                        const user_ctx *u, int anonymous) {
  src_share order[NSRC];
  int n = 0;
  for (int s = 0; s < NSRC; s++)
    if (c->s[s] > 0) order[n++] = (src_share){s, wsrc[s] * c->s[s]};
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && order[j].v > order[j - 1].v; j--) {
      src_share t = order[j];
      order[j] = order[j - 1];
      order[j - 1] = t;
    }
  out->nreasons = 0;
  for (int i = 0; i < n && out->nreasons < RECD_MAX_REASONS; i++) {
    if (i > 0 && order[i].v < REASON_SHARE * c->final) break;
    char *buf = out->reasons[out->nreasons];
    size_t bl = sizeof out->reasons[0];
    switch (order[i].src) {
      case SRC_COVIS:
        if (anonymous)
          str_cat(buf, bl, "people who viewed ", engine__item_key(e, c->anchor[SRC_COVIS]), " also viewed this", NULL);
        else
        {
          int at = anchor_type(u, c->anchor[SRC_COVIS]);
          if (at == TYPE_CART)
            str_cat(buf, bl, "because you added ", engine__item_key(e, c->anchor[SRC_COVIS]), " to your cart", NULL);
          else
            str_cat(buf, bl, "because you ", engine__type_verb(e, at), " ", engine__item_key(e, c->anchor[SRC_COVIS]), NULL);
        }
        break;
      case SRC_CONTENT:
        str_cat(buf, bl, "similar to ", engine__item_key(e, c->anchor[SRC_CONTENT]), NULL);
        break;
      case SRC_CATEGORY: {
        pthread_rwlock_rdlock(&e->content_lock);
        const char *cname = content_category_name(&e->content, c->anchor[SRC_CATEGORY]);
        str_cat(buf, bl, "trending in ", cname ? cname : "(null)", " ", win, NULL);
        pthread_rwlock_unlock(&e->content_lock);
        break;
      }
      case SRC_TRENDING: str_cat(buf, bl, "popular ", win, NULL); break;
      case SRC_NEW: str_cat(buf, bl, "new arrival", NULL); break;
      case SRC_MF:
        str_cat(buf, bl, anonymous ? "liked by people with similar taste" : "picked for your taste", NULL);
        break;
    }
    out->nreasons++;
  }
  if (!out->nreasons) str_cat(out->reasons[out->nreasons++], sizeof out->reasons[0], "popular ", win, NULL);
}

/* "r-<ms, hex>-<counter, hex>" (written by hand: see str_cat) */
static void new_rec_id(recd_engine *e, recd_rec_result *out) {
  uint64_t v[2] = {(uint64_t)clock_now_ms(), atomic_fetch_add(&e->rec_counter, 1)};
  char *p = out->rec_id;
  *p++ = 'r';
  for (int k = 0; k < 2; k++) {
    *p++ = '-';
    char tmp[16];
    int n = 0;
    do tmp[n++] = "0123456789abcdef"[v[k] & 15];
    while (v[k] >>= 4);
    while (n) *p++ = tmp[--n];
  }
  *p = 0;
}

void engine_result_release(recd_rec_result *r) {
  free(r->items);
  r->items = NULL;
  r->count = 0;
}

static void resolve_ids(recd_engine *e, const char **ids, size_t n, u32map *out) {
  for (size_t i = 0; i < n; i++) {
    uint32_t iid = engine__find_item(e, ids[i], strlen(ids[i]));
    if (iid != STRMAP_NONE) u32map_put(out, iid, 1, NULL);
  }
}

static size_t resolve_cats(recd_engine *e, const char **names, size_t n, uint32_t *out, int *unknown) {
  size_t m = 0;
  *unknown = 0;
  pthread_rwlock_rdlock(&e->content_lock);
  for (size_t i = 0; i < n && m < MAX_FILTER_CATS; i++) {
    uint32_t c = content_find_category(&e->content, names[i], strlen(names[i]));
    if (c == STRMAP_NONE) (*unknown)++;
    else out[m++] = c;
  }
  pthread_rwlock_unlock(&e->content_lock);
  return m;
}

/* ---- the learned ranker's features ----
 * One row per candidate, the same code for serving and for the training data
 * (rankdata.c), so what the ranker learns from is what it scores. NAN is
 * "missing" (XGBoost learns a direction for it). Layout: */
static const char *const src_names[NSRC] = {"covis", "content", "category", "trending", "new", "mf"};
enum {
  RF_SRC = 0,                     /* src_<source>: the source's score, normalised to [0, 1] in the request */
  RF_RANK = RF_SRC + NSRC,        /* rank_<source>: 1-based rank by that source in the group, NAN if none */
  RF_BLEND = RF_RANK + NSRC,      /* blend_score */
  RF_BLEND_RANK,                  /* blend_rank: 1-based position in the blend's order */
  RF_COVIS_ANCHOR,                /* covis_anchor_pos: how recent the anchor is (0 = newest), NAN if none */
  RF_CONTENT_ANCHOR,              /* content_anchor_pos */
  RF_AFF_MAX,                     /* cat_affinity_max: the user's largest affinity share among the item's categories */
  RF_AFF_SUM,                     /* cat_affinity_sum */
  RF_CAT_DAYS,                    /* days_since_cat: since the user's last recent event in one of them, NAN if none */
  RF_NCATS,                       /* item_ncats */
  RF_USER,                        /* u_<user vector>, NAN for anonymous users */
  RF_ITEM = RF_USER + ENGINE_USER_VEC_N, /* i_<item vector> */
  RF_N = RF_ITEM + ENGINE_ITEM_VEC_N
};

static char rank_name_buf[RF_N][48];
static const char *rank_names[RF_N];
static pthread_once_t rank_names_once = PTHREAD_ONCE_INIT;

static void rank_names_init(void) {
  for (int i = 0; i < NSRC; i++) {
    snprintf(rank_name_buf[RF_SRC + i], 48, "src_%s", src_names[i]);
    snprintf(rank_name_buf[RF_RANK + i], 48, "rank_%s", src_names[i]);
  }
  static const char *fixed[] = {"blend_score",      "blend_rank",       "covis_anchor_pos", "content_anchor_pos",
                                "cat_affinity_max", "cat_affinity_sum", "days_since_cat",   "item_ncats"};
  for (int i = 0; i < RF_USER - RF_BLEND; i++) snprintf(rank_name_buf[RF_BLEND + i], 48, "%s", fixed[i]);
  for (int i = 0; i < ENGINE_USER_VEC_N; i++) snprintf(rank_name_buf[RF_USER + i], 48, "u_%s", engine__user_vector_name((size_t)i));
  for (int i = 0; i < ENGINE_ITEM_VEC_N; i++) snprintf(rank_name_buf[RF_ITEM + i], 48, "i_%s", engine__item_vector_name((size_t)i));
  for (int i = 0; i < RF_N; i++) rank_names[i] = rank_name_buf[i];
}

size_t engine__rank_nfeatures(void) { return RF_N; }

const char *const *engine__rank_feature_names(void) {
  pthread_once(&rank_names_once, rank_names_init);
  return rank_names;
}

float engine__rank_prior(const float *row, float prior) {
  return prior > 0 ? -prior * log2f(1 + row[RF_BLEND_RANK]) : 0;
}

static int anchor_pos(const user_ctx *u, uint32_t iid) {
  for (int i = 0; i < u->nanchors; i++)
    if (u->anchors[i].iid == iid) return i;
  return -1;
}

/* rows for the candidates cs->c[idx[0..nd)] (scores already normalised) */
static void rank_rows(recd_engine *e, const cand_set *cs, const user_ctx *u, const size_t *idx, size_t nd,
                      float *rows) {
  int64_t now = cs->now;
  float uvec[ENGINE_USER_VEC_N];
  size_t nu = u && u->has_uid ? engine__user_vector(e, u->uid, now, uvec) : 0;
  /* the latest time the user touched each category, from the recent anchors */
  struct {
    uint32_t cat;
    int64_t ts;
  } last[64];
  int nlast = 0;
  for (int a = 0; u && a < u->nanchors; a++) {
    itemstats *s = ptrvec_get(&e->istats, u->anchors[a].iid);
    if (!s) continue;
    uint32_t cats[ITEM_MAX_CATS];
    pthread_mutex_t *l = engine__ilock(e, u->anchors[a].iid);
    pthread_mutex_lock(l);
    int nc = s->ncats;
    if (nc) memcpy(cats, s->cats, (size_t)nc * sizeof *cats);
    pthread_mutex_unlock(l);
    for (int k = 0; k < nc; k++) {
      int j;
      for (j = 0; j < nlast; j++)
        if (last[j].cat == cats[k]) break;
      if (j == nlast) {
        if (nlast == 64) continue;
        last[nlast].cat = cats[k];
        last[nlast++].ts = u->anchors[a].ts;
      } else if (u->anchors[a].ts > last[j].ts) {
        last[j].ts = u->anchors[a].ts;
      }
    }
  }
  for (size_t k = 0; k < nd; k++) {
    const cand *c = &cs->c[idx[k]];
    float *x = rows + k * RF_N;
    for (int s = 0; s < NSRC; s++) {
      x[RF_SRC + s] = c->s[s];
      if (!(c->s[s] > 0)) {
        x[RF_RANK + s] = NAN;
        continue;
      }
      int rank = 1;
      for (size_t j = 0; j < nd; j++) rank += cs->c[idx[j]].s[s] > c->s[s];
      x[RF_RANK + s] = (float)rank;
    }
    x[RF_BLEND] = c->final;
    x[RF_BLEND_RANK] = (float)(k + 1);
    int ap = c->s[SRC_COVIS] > 0 && u ? anchor_pos(u, c->anchor[SRC_COVIS]) : -1;
    x[RF_COVIS_ANCHOR] = ap >= 0 ? (float)ap : NAN;
    ap = c->s[SRC_CONTENT] > 0 && u ? anchor_pos(u, c->anchor[SRC_CONTENT]) : -1;
    x[RF_CONTENT_ANCHOR] = ap >= 0 ? (float)ap : NAN;
    for (size_t i = 0; i < ENGINE_USER_VEC_N; i++) x[RF_USER + i] = nu ? uvec[i] : NAN;
    uint32_t cats[ITEM_MAX_CATS];
    int nc = 0;
    itemstats *s = ptrvec_get(&e->istats, c->iid);
    if (s) {
      pthread_mutex_t *l = engine__ilock(e, c->iid);
      pthread_mutex_lock(l);
      engine__item_vector_locked(e, s, now, x + RF_ITEM);
      nc = s->ncats;
      if (nc) memcpy(cats, s->cats, (size_t)nc * sizeof *cats);
      pthread_mutex_unlock(l);
    } else {
      for (size_t i = 0; i < ENGINE_ITEM_VEC_N; i++) x[RF_ITEM + i] = NAN;
    }
    float amax = 0, asum = 0;
    int64_t lt = INT64_MIN;
    for (int i = 0; i < nc; i++) {
      for (int j = 0; u && j < u->naff; j++)
        if (u->aff[j].cat == cats[i]) {
          asum += u->aff[j].share;
          if (u->aff[j].share > amax) amax = u->aff[j].share;
        }
      for (int j = 0; j < nlast; j++)
        if (last[j].cat == cats[i] && last[j].ts > lt) lt = last[j].ts;
    }
    x[RF_AFF_MAX] = amax;
    x[RF_AFF_SUM] = asum;
    x[RF_CAT_DAYS] = lt == INT64_MIN ? NAN : (float)((double)(now - lt) / 86400000.0);
    x[RF_NCATS] = (float)nc;
  }
}

/* where the training-data builder wants a group's rows instead of a list */
typedef struct {
  size_t depth;
  uint32_t *iids;
  float *rows;
  size_t n;
} rank_sink;

typedef struct {
  float s;
  size_t i;
} scored_idx;

static int scored_cmp(const void *a, const void *b) {
  const scored_idx *x = a, *y = b;
  if (x->s != y->s) return x->s < y->s ? 1 : -1;
  return x->i < y->i ? -1 : x->i > y->i;
}

/* The candidates in the blend's order, sorted lazily. A list usually looks
 * at its first 20-40 candidates of several hundred (and the ranker at its
 * depth), so only a first chunk is sorted, and the next ones (each twice the
 * last) when the walk gets there. A key is topkeys_key(score, m-1-(the
 * candidate's index)): ties keep the order in which the sources added
 * candidates (trending lists add the most popular first). */
typedef struct {
  uint64_t *k;
  uint32_t m, sorted, chunk;
} cand_order;

static inline uint32_t order_cand(const cand_order *o, size_t pos) { return o->m - 1 - (uint32_t)o->k[pos]; }

/* positions [0, upto) in order (upto <= m) */
static inline void order_sort_to(cand_order *o, size_t upto) {
  while (o->sorted < upto) {
    uint32_t from = o->sorted;
    o->sorted += (uint32_t)topkeys_front(o->k + from, o->m - from, o->chunk);
    o->chunk *= 2;
  }
}

enum { ELIG_UNKNOWN, ELIG_YES, ELIG_NO, ELIG_TAKEN }; /* ok[], per candidate */

/* ok[] for the candidates at positions [from, from + ELIG_BATCH) that are
 * sorted already and not yet checked (position `from` is sorted) */
static void check_from(recd_engine *e, const rules *r, cand_set *cs, const cand_order *o, size_t from, uint8_t *ok) {
  uint32_t ci[ELIG_BATCH], iids[ELIG_BATCH], cat0[ELIG_BATCH];
  uint8_t yes[ELIG_BATCH];
  size_t n = 0, to = from + ELIG_BATCH < o->sorted ? from + ELIG_BATCH : o->sorted;
  for (size_t i = from; i < to; i++) {
    uint32_t c = order_cand(o, i);
    if (ok[c]) continue;
    ci[n] = c;
    iids[n++] = cs->c[c].iid;
  }
  if (!n) return;
  eligible_batch(e, r, iids, n, yes, cat0);
  for (size_t k = 0; k < n; k++) {
    ok[ci[k]] = yes[k] ? ELIG_YES : ELIG_NO;
    if (yes[k]) cs->c[ci[k]].cat0 = cat0[k];
  }
}

/* Rerank (or, with a sink, export) the first `depth` eligible candidates of
 * the first `pre` positions: they move to the front in the ranker's order,
 * the others of that span after them in their order. */
static void rerank(recd_engine *e, cand_set *cs, const rules *r, cand_order *o, size_t pre, uint8_t *ok,
                   const ranker *rk, float prior, size_t depth, rank_sink *sink) {
  if (depth > RANK_MAX_DEPTH) depth = RANK_MAX_DEPTH;
  size_t pos[RANK_MAX_DEPTH], idx[RANK_MAX_DEPTH], nd = 0;
  for (size_t i = 0; i < pre && nd < depth; i++) {
    order_sort_to(o, i + 1);
    uint32_t ci = order_cand(o, i);
    if (!ok[ci]) check_from(e, r, cs, o, i, ok);
    if (ok[ci] == ELIG_YES) pos[nd] = i, idx[nd++] = ci;
  }
  if (!nd) return;
  for (size_t k = 0; k < nd; k++) cand_normalize(&cs->c[idx[k]], cs->mx);
  float *rows = sink ? sink->rows : xmalloc(nd * RF_N * sizeof *rows);
  rank_rows(e, cs, r->u, idx, nd, rows);
  if (sink) {
    for (size_t k = 0; k < nd; k++) sink->iids[k] = cs->c[idx[k]].iid;
    sink->n = nd;
    return;
  }
  float sc[RANK_MAX_DEPTH];
  int rc = ranker_predict(rk, rows, nd, sc);
  for (size_t k = 0; k < nd && !rc; k++) sc[k] += engine__rank_prior(rows + k * RF_N, prior);
  free(rows);
  if (rc) return; /* logged by the ranker; the blend's order stands */
  scored_idx so[RANK_MAX_DEPTH];
  float lo = INFINITY;
  for (size_t k = 0; k < nd; k++) {
    so[k] = (scored_idx){sc[k], pos[k]};
    if (sc[k] < lo) lo = sc[k];
  }
  qsort(so, nd, sizeof *so, scored_cmp);
  /* only positions [0, span) move; everything after the span stays where it is */
  size_t span = pos[nd - 1] + 1;
  uint64_t *e2 = xmalloc(span * sizeof *e2);
  uint8_t *moved = xcalloc(span, 1);
  for (size_t k = 0; k < nd; k++) {
    e2[k] = o->k[so[k].i];
    cs->out_score[k] = so[k].s;
    moved[so[k].i] = 1;
  }
  size_t k = nd;
  for (size_t i = 0; i < span; i++)
    if (!moved[i]) e2[k++] = o->k[i];
  memcpy(o->k, e2, span * sizeof *e2);
  free(e2);
  free(moved);
  cs->ranked = nd;
  cs->ranked_lo = lo;
}

/* Score, rule-filter, diversify and fill `out` from the candidate set.
 * Scores come from the sources alone (no locks); eligibility is checked
 * lazily in score order, so only about as many items as the list needs are
 * locked and looked at, however many candidates there are. */
static void finish_list(recd_engine *e, cand_set *cs, const rules *r, const trending *t, size_t n, const float *wsrc,
                        int anonymous, const ranker *rk, float prior, rank_sink *sink, recd_rec_result *out) {
  char win[32];
  window_words(e->cfg.trending_window_ms, win, sizeof win);
  /* the blend: each source's scores over that source's largest (the runs kept
   * it), weighted: one weight per source folds both, so a candidate costs six
   * multiply-adds and no division */
  const float *mx = cs->mx;
  float ws[NSRC];
  for (int s = 0; s < NSRC; s++) ws[s] = mx[s] > 0 ? wsrc[s] / mx[s] : 0;
  uint32_t m = (uint32_t)cs->n;
  rec_scratch *scr = cs->scr;
  if (m > scr->ocap) {
    scr->ocap = m > 2 * scr->ocap ? m : 2 * scr->ocap;
    scr->order = xrealloc(scr->order, scr->ocap * sizeof *scr->order);
    scr->ok = xrealloc(scr->ok, scr->ocap);
  }
  uint64_t *top = scr->order;
  uint8_t *ok = scr->ok;
  if (m) memset(ok, ELIG_UNKNOWN, m);
  _Static_assert(NSRC == 6, "the blend below names each source");
  for (uint32_t i = 0; i < m; i++) {
    const float *v = cs->c[i].s;
    float f = ws[0] * v[0];
    f += ws[1] * v[1];
    f += ws[2] * v[2];
    f += ws[3] * v[3];
    f += ws[4] * v[4];
    f += ws[5] * v[5];
    cs->c[i].final = f;
    top[i] = topkeys_key(f, m - 1 - i);
  }
  size_t depth = sink ? sink->depth : rk ? (size_t)e->cfg.ranker_depth : 0;
  size_t look = 2 * n + 16; /* the positions a list most likely looks at */
  size_t first = look > 2 * depth ? look : 2 * depth;
  cand_order o = {.k = top, .m = m, .chunk = first < m ? (uint32_t)first : m};
  if (look > m) look = m;
  order_sort_to(&o, look);
  /* their rule words, fetched for all of them before the first is read */
  for (size_t i = 0; i < look; i++) ptrvec_prefetch(&e->irule, cs->c[order_cand(&o, i)].iid);
  if (depth) {
    size_t want = 8 * n + 64 > 4 * depth ? 8 * n + 64 : 4 * depth;
    rerank(e, cs, r, &o, want < m ? want : m, ok, rk, prior, depth, sink);
    if (sink) return;
  }
  /* choose: positions in order, eligible ones, at most ceil(diversity * n) per
   * first category in a first pass, relaxed in a second if short */
  size_t *pos = xmalloc((n ? n : 1) * sizeof *pos);
  size_t count = 0;
  size_t maxper = (size_t)ceil(e->cfg.diversity * (double)n);
  if (maxper < 1) maxper = 1;
  stampmap *percat = &scr->percat;
  for (int pass = 0; pass < 2 && count < n; pass++) {
    for (size_t i = 0; i < m && count < n; i++) {
      order_sort_to(&o, i + 1);
      uint32_t ci = order_cand(&o, i);
      cand *c = &cs->c[ci];
      if (!ok[ci]) check_from(e, r, cs, &o, i, ok);
      if (ok[ci] != ELIG_YES) continue;
      if (pass == 0 && c->cat0 != UINT32_MAX) {
        uint16_t *k = stampmap_put(percat, c->cat0, 0, NULL); /* (counts <= n <= max_n <= 10,000) */
        if (*k >= maxper) continue;
        (*k)++;
      }
      ok[ci] = ELIG_TAKEN;
      pos[count++] = i;
    }
  }
  /* diversity may have pulled lower-ranked items forward: present the chosen
   * set in candidate order (the blend's score order, or the ranker's) */
  for (size_t i = 1; i < count; i++)
    for (size_t j = i; j > 0 && pos[j] < pos[j - 1]; j--) {
      size_t tp = pos[j];
      pos[j] = pos[j - 1];
      pos[j - 1] = tp;
    }
  /* the keys the answer and its reasons name (an item's, the anchors'), in
   * two steps for all of them: their entries, then their bytes (see src_covis) */
  for (int step = 0; step < 2; step++)
    for (size_t k = 0; k < count; k++) {
      const cand *c = &cs->c[order_cand(&o, pos[k])];
      uint32_t ids[3] = {c->iid, c->s[SRC_COVIS] > 0 ? c->anchor[SRC_COVIS] : c->iid,
                         c->s[SRC_CONTENT] > 0 ? c->anchor[SRC_CONTENT] : c->iid};
      for (int j = 0; j < 3; j++) strmap_key_prefetch(&e->items, ids[j], step);
    }
  out->items = xmalloc((n ? n : 1) * sizeof *out->items);
  out->count = count;
  for (size_t k = 0; k < count; k++) {
    size_t i = pos[k];
    cand *c = &cs->c[order_cand(&o, i)];
    cand_normalize(c, mx);
    recd_rec_item *it = &out->items[k];
    it->item_id = engine__item_key(e, c->iid);
    /* reranked: the ranker's score; after them, below the lowest, in candidate order */
    it->score = i < cs->ranked ? cs->out_score[i]
                : cs->ranked   ? cs->ranked_lo - 1e-3f * (float)(i - cs->ranked + 1)
                               : c->final;
    reasons_for(e, c, wsrc, win, it, r->u, anonymous);
  }
  /* fill: trending lists, then any eligible item (small catalogs only reach here) */
  if (out->count < n) {
    u32map taken;
    u32map_init(&taken);
    for (size_t k = 0; k < count; k++) u32map_put(&taken, cs->c[order_cand(&o, pos[k])].iid, 1, NULL);
    size_t nitems = catalog_size(e); /* (under items_lock: the writer interns items) */
    for (int stage = 0; stage < 2 && out->count < n; stage++) {
      size_t lim = stage == 0 ? (t ? t->global.n : 0) : nitems;
      for (size_t i = 0; i < lim && out->count < n; i++) {
        uint32_t iid = stage == 0 ? t->global.e[i].iid : (uint32_t)i;
        if (u32map_get(&taken, iid) || !eligible(e, r, iid)) continue;
        u32map_put(&taken, iid, 1, NULL);
        recd_rec_item *it = &out->items[out->count];
        it->score = out->count && out->items[out->count - 1].score < 0 ? out->items[out->count - 1].score : 0;
        out->count++;
        it->item_id = engine__item_key(e, iid);
        it->nreasons = 1;
        snprintf(it->reasons[0], sizeof it->reasons[0], stage == 0 ? "popular %s" : "from the catalog", win);
      }
    }
    u32map_release(&taken);
  }
  free(pos);
}

static int recommend(recd_engine *e, const recd_rec_request *req, rank_sink *sink, recd_rec_result *out) {
  memset(out, 0, sizeof *out);
  new_rec_id(e, out);
  int64_t now = engine__now(e);
  user_ctx u;
  memset(&u, 0, sizeof u);
  u32map_init(&u.seen);
  if (req->user_id) {
    uint32_t uid = engine__find_user(e, req->user_id, strlen(req->user_id));
    if (uid != STRMAP_NONE) ctx_from_user(e, uid, now, req->session_id, &u);
  } else {
    /* anonymous: the given items, newest last, act as views */
    for (size_t i = req->nitems; i-- > 0 && u.nanchors < MAX_ANCHORS;) {
      uint32_t iid = engine__find_item(e, req->items[i], strlen(req->items[i]));
      if (iid == STRMAP_NONE || u32map_get(&u.seen, iid)) continue;
      u32map_put(&u.seen, iid, 1u << TYPE_VIEW, NULL);
      int k = u.nanchors++;
      u.anchors[k] = (anchor){.iid = iid, .type = TYPE_VIEW, .w = recency_weight(k)};
    }
  }
  out->known_user = u.known;
  u32map excl;
  u32map_init(&excl);
  resolve_ids(e, req->exclude, req->nexclude, &excl);
  uint32_t fcats[MAX_FILTER_CATS];
  int unknown;
  size_t nf = resolve_cats(e, req->categories, req->ncategories, fcats, &unknown);
  trending *t = engine__trending(e);
  if (req->ncategories && !nf) { /* only unknown categories: nothing can match */
    out->items = xcalloc(1, sizeof *out->items);
    goto done;
  }
  rec_scratch *scr = scratch_get(e);
  cand_set cs;
  cand_set_init(&cs, e, now, scr);
  model_set *ms = engine__models(e);
  int mf = ms && (ms->ials || ms->ease) && e->cfg.w_mf > 0;
  float wsrc[NSRC] = {(float)e->cfg.w_covis,    (float)e->cfg.w_content, (float)e->cfg.w_category,
                      (float)e->cfg.w_trending, (float)e->cfg.w_new,     (float)(mf ? e->cfg.w_mf : 0)};
  if (wsrc[SRC_COVIS] > 0) src_covis(&cs, &u, wsrc[SRC_CONTENT] > 0);
  if (wsrc[SRC_CONTENT] > 0) src_content(&cs, &u);
  if (mf) src_mf(&cs, &u, ms);
  src_trending(&cs, t, &u, fcats, nf);
  rules r = {.u = &u, .excl = &excl, .fcats = fcats, .nfcats = nf, .self = UINT32_MAX};
  finish_list(e, &cs, &r, t, req->n, wsrc, req->user_id == NULL, ms && e->cfg.ranker_depth ? ms->ranker : NULL,
              ms ? ms->ranker_prior : 0, sink, out);
  engine__models_release(ms);
  cand_set_done(&cs);
  scratch_put(e, scr);
done:
  trending_release(t);
  u32map_release(&excl);
  u32map_release(&u.seen);
  return 0;
}

int engine_recommend(recd_engine *e, const recd_rec_request *req, recd_rec_result *out) {
  return recommend(e, req, NULL, out);
}

size_t engine__rank_group(recd_engine *e, uint32_t uid, size_t depth, uint32_t *iids, float *rows) {
  pthread_rwlock_rdlock(&e->users_lock);
  const char *key = uid < strmap_count(&e->users) ? strmap_key(&e->users, uid) : NULL;
  pthread_rwlock_unlock(&e->users_lock);
  if (!key) return 0;
  rank_sink sink = {.depth = depth > RANK_MAX_DEPTH ? RANK_MAX_DEPTH : depth, .iids = iids, .rows = rows};
  recd_rec_request rq = {.user_id = key, .n = 10};
  recd_rec_result res;
  recommend(e, &rq, &sink, &res);
  engine_result_release(&res);
  return sink.n;
}

int engine_similar(recd_engine *e, const char *item_id, size_t n, recd_rec_result *out) {
  memset(out, 0, sizeof *out);
  uint32_t iid = engine__find_item(e, item_id, strlen(item_id));
  itemstats *s = iid == STRMAP_NONE ? NULL : ptrvec_get(&e->istats, iid);
  if (!s) return RECD_ENOTFOUND;
  pthread_mutex_t *l = engine__ilock(e, iid);
  pthread_mutex_lock(l);
  int deleted = s->deleted;
  pthread_mutex_unlock(l);
  if (deleted) return RECD_ENOTFOUND;
  new_rec_id(e, out);
  int64_t now = engine__now(e);
  user_ctx u;
  memset(&u, 0, sizeof u);
  u32map_init(&u.seen);
  u.anchors[0] = (anchor){.iid = iid, .type = TYPE_VIEW, .w = 1};
  u.nanchors = 1;
  rec_scratch *scr = scratch_get(e);
  cand_set cs;
  cand_set_init(&cs, e, now, scr);
  src_covis(&cs, &u, 1);
  src_content(&cs, &u);
  trending *t = engine__trending(e);
  /* the item's own categories' trending items, as weak candidates */
  pthread_mutex_lock(l);
  for (int i = 0; i < s->ncats && u.ncats < TOP_CATS; i++) {
    u.cats[u.ncats].cat = s->cats[i];
    u.cats[u.ncats++].share = 1.0f / (float)s->ncats;
  }
  pthread_mutex_unlock(l);
  user_ctx cu = u;
  cu.nanchors = 0;
  src_trending(&cs, t, &cu, NULL, 0);
  float wsrc[NSRC] = {1.0f, 0.5f, 0.2f, 0.05f, 0.02f, 0.0f};
  u32map excl;
  u32map_init(&excl);
  rules r = {.u = NULL, .excl = &excl, .self = iid};
  finish_list(e, &cs, &r, t, n, wsrc, 1, NULL, 0, NULL, out);
  /* rephrase anchor reasons for item pages */
  for (size_t i = 0; i < out->count; i++)
    for (int k = 0; k < out->items[i].nreasons; k++) {
      char *rs = out->items[i].reasons[k];
      if (!strncmp(rs, "people who viewed", 17)) snprintf(rs, sizeof out->items[i].reasons[0], "often viewed together with %s", item_id);
    }
  cand_set_done(&cs);
  scratch_put(e, scr);
  u32map_release(&excl);
  u32map_release(&u.seen);
  trending_release(t);
  return 0;
}

int engine_popular(recd_engine *e, size_t n, const char **categories, size_t ncat, int64_t window_ms,
                   recd_rec_result *out, recd_fail *fail) {
  memset(out, 0, sizeof *out);
  new_rec_id(e, out);
  int is_default = !window_ms || window_ms == e->cfg.trending_window_ms;
  if (!window_ms) window_ms = e->cfg.trending_window_ms;
  if (!is_default && (window_ms < 86400000LL || window_ms > 30 * 86400000LL)) {
    recd_fail_set(fail, 400, "invalid_parameter", -1, "window",
                  "window: must be from 1d to 30d (popularity is kept in daily buckets)");
    return RECD_EINVAL;
  }
  uint32_t fcats[MAX_FILTER_CATS];
  int unknown;
  size_t nf = resolve_cats(e, categories, ncat, fcats, &unknown);
  out->items = xcalloc(n ? n : 1, sizeof *out->items);
  if (ncat && !nf) return 0;
  int64_t now = engine__now(e);
  int days = (int)window_days(e, window_ms);
  char win[32];
  window_words(window_ms, win, sizeof win);
  pop_list pl;
  pop_list_init(&pl, (uint32_t)n);
  if (is_default && nf <= 1) {
    /* the default window is served from the trending snapshot */
    trending *t = engine__trending(e);
    const pop_list *src = !t ? NULL : nf ? (fcats[0] < t->ncat ? &t->cat[fcats[0]] : NULL) : &t->global;
    for (uint32_t i = 0; src && i < src->n; i++)
      if (src->e[i].score > 1e-3 * src->e[0].score) pop_list_offer(&pl, src->e[i].iid, src->e[i].score);
    trending_release(t);
    goto sorted;
  }
  size_t nitems = catalog_size(e);
  for (uint32_t iid = 0; iid < nitems; iid++) {
    itemstats *s = ptrvec_get(&e->istats, iid);
    if (!s) continue;
    pthread_mutex_t *l = engine__ilock(e, iid);
    pthread_mutex_lock(l);
    int ok = itemstats_recommendable(s);
    if (ok && nf) {
      ok = 0;
      for (int i = 0; i < s->ncats && !ok; i++)
        for (size_t k = 0; k < nf; k++) ok |= s->cats[i] == fcats[k];
    }
    double score = !ok ? 0
                   : days ? itemstats_window(s, now, days, e->cfg.popularity_half_life_ms)
                          : itemstats_popularity(s, now, e->cfg.popularity_half_life_ms);
    pthread_mutex_unlock(l);
    if (ok && score > 0) pop_list_offer(&pl, iid, (float)score);
  }
sorted:
  pop_list_sort(&pl);
  for (uint32_t i = 0; i < pl.n; i++) {
    recd_rec_item *it = &out->items[out->count++];
    it->item_id = engine__item_key(e, pl.e[i].iid);
    it->score = pl.e[i].score;
    it->nreasons = 1;
    if (nf == 1) {
      pthread_rwlock_rdlock(&e->content_lock);
      snprintf(it->reasons[0], sizeof it->reasons[0], "trending in %s %s", content_category_name(&e->content, fcats[0]), win);
      pthread_rwlock_unlock(&e->content_lock);
    } else {
      snprintf(it->reasons[0], sizeof it->reasons[0], "popular %s", win);
    }
  }
  pop_list_release(&pl);
  return 0;
}

void engine__trending_rebuild(recd_engine *e) { rebuild_trending(e); }

void engine_warm(recd_engine *e) {
  size_t n = catalog_size(e);
  if (!n) return; /* nothing to build: the first read after items arrive builds it */
  int64_t t0 = clock_mono_ns();
  trending_release(engine__trending(e));
  log_info("trending: built %zu items' lists in %.0f ms", n, (clock_mono_ns() - t0) / 1e6);
  if (e->cfg.w_content > 0 && !e->warmer_started && !pthread_create(&e->warmer, NULL, memo_warm_main, e))
    e->warmer_started = 1;
}
