/* rankdata.c — the learned ranker's training data, point-in-time correct.
 *
 * The event log is replayed from the start into a replay engine (a second,
 * read-only connection to the store; the live engine is not touched). Just
 * before a sampled event is applied, the replay engine answers the sampled
 * event's user exactly as serving would (engine__rank_group: the same
 * sources, rules and feature code), so every feature is the value as of that
 * moment: nothing later has been applied yet. The group's labels come from
 * the user's events in the following `horizon` (the sampled event first): an
 * event on a candidate sets its label to the event type's weight (purchase 6
 * > add_to_cart 4 > like 3 > click 2 > view 1 by default; `event_weights`
 * changes them), the largest one counting.
 *
 * The retrieval model (iALS/EASE) whose scores are features is itself
 * point-in-time: it is trained on the replay state at the cut (the events
 * before the sampling window) and folds each user in as serving does.
 *
 * Invariant (tests/unit/engine/rankdata_test.c): a group's features depend
 * only on the events before it; appending events to the log changes no
 * feature of an earlier group. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_int.h"
#include "engine/rankdata.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/u32map.h"

/* trending lists at a sample are at most this old in event time (serving
 * rebuilds them every trending_refresh of wall time; lists of daily buckets
 * barely move in a minute, and a rebuild scans every item) */
#define TREND_EVERY_MS 60000

typedef struct {
  recd_engine *e;
  const rank_data_opts *o;
  rank_data *d;
  u32map head;        /* uid -> newest pending group + 1 */
  uint32_t *prev;     /* per group: the same user's previous group + 1 (0: none) */
  size_t prev_cap;
  int cut_done;
  int force_trend;
  int64_t trend_at;   /* engine time of the last trending rebuild */
  uint32_t *iids;
  float *rows;
  char *err;
  size_t errlen;
  int rc;
} builder;

static void grow(rank_data *d, size_t rows, size_t groups) {
  if (d->nrows + rows > d->cap_rows) {
    while (d->nrows + rows > d->cap_rows) d->cap_rows = d->cap_rows ? d->cap_rows * 2 : 4096;
    d->x = xrealloc(d->x, d->cap_rows * d->nfeat * sizeof *d->x);
    d->label = xrealloc(d->label, d->cap_rows * sizeof *d->label);
    d->iid = xrealloc(d->iid, d->cap_rows * sizeof *d->iid);
  }
  if (d->ngroups + groups > d->cap_groups) {
    d->cap_groups = d->cap_groups ? d->cap_groups * 2 : 256;
    d->gstart = xrealloc(d->gstart, d->cap_groups * sizeof *d->gstart);
    d->gsize = xrealloc(d->gsize, d->cap_groups * sizeof *d->gsize);
    d->gseq = xrealloc(d->gseq, d->cap_groups * sizeof *d->gseq);
    d->gts = xrealloc(d->gts, d->cap_groups * sizeof *d->gts);
    d->guid = xrealloc(d->guid, d->cap_groups * sizeof *d->guid);
  }
}

static void sample(builder *b, const store_event *ev) {
  recd_engine *e = b->e;
  rank_data *d = b->d;
  int64_t now = engine__now(e);
  if (b->force_trend || !e->trend || now - b->trend_at >= TREND_EVERY_MS) {
    engine__trending_rebuild(e);
    b->force_trend = 0;
    b->trend_at = now;
  }
  size_t n = engine__rank_group(e, ev->uid, b->o->depth, b->iids, b->rows);
  if (!n) return;
  grow(d, n, 1);
  size_t g = d->ngroups++;
  d->gstart[g] = d->nrows;
  d->gsize[g] = (uint32_t)n;
  d->gseq[g] = ev->seq;
  d->gts[g] = ev->ts_ms;
  d->guid[g] = ev->uid;
  memcpy(d->x + d->nrows * d->nfeat, b->rows, n * d->nfeat * sizeof *d->x);
  memcpy(d->iid + d->nrows, b->iids, n * sizeof *b->iids);
  for (size_t k = 0; k < n; k++) d->label[d->nrows + k] = 0;
  d->nrows += n;
  if (g >= b->prev_cap) {
    b->prev_cap = b->prev_cap ? b->prev_cap * 2 : 256;
    b->prev = xrealloc(b->prev, b->prev_cap * sizeof *b->prev);
  }
  uint32_t *h = u32map_put(&b->head, ev->uid, 0, NULL);
  b->prev[g] = *h;
  *h = (uint32_t)g + 1;
}

/* the event labels its user's pending groups within the horizon */
static void label(builder *b, const store_event *ev, int type) {
  rank_data *d = b->d;
  uint32_t *h = u32map_get(&b->head, ev->uid);
  if (!h) return;
  float w = roundf(b->e->types[type].weight);
  if (w < 1) w = 1;
  if (w > 31) w = 31;
  for (uint32_t *link = h; *link;) {
    size_t g = *link - 1;
    if (ev->ts_ms - d->gts[g] > b->o->horizon_ms) {
      *link = 0; /* this group and older ones are closed */
      break;
    }
    for (size_t k = d->gstart[g]; k < d->gstart[g] + d->gsize[g]; k++)
      if (d->iid[k] == ev->iid && d->label[k] < w) d->label[k] = w;
    link = &b->prev[g];
  }
}

static int before_event(void *arg, const store_event *ev, int type, int current) {
  builder *b = arg;
  recd_engine *e = b->e;
  int at_cut = ev->seq > b->o->cut && !b->cut_done;
  int sampled = ev->seq > b->o->cut && (ev->seq - b->o->cut) % b->o->stride == 0;
  if ((at_cut || sampled) && !current) return ENGINE_REPLAY_NEED_STATE;
  if (at_cut) {
    b->cut_done = 1;
    if (b->o->base && strcmp(b->o->base, "none")) {
      int64_t t0 = clock_mono_ns();
      model_set *m = engine__model_train_retrieval(e, b->o->base, b->err, b->errlen);
      if (!m) return b->rc = RECD_EINVAL;
      e->models = m; /* the replay engine's own: freed with it */
      b->d->base_seconds = (clock_mono_ns() - t0) / 1e9;
    }
    b->force_trend = 1;
  }
  if (sampled) sample(b, ev);
  label(b, ev, type);
  return 0;
}

int engine__rank_data(recd_engine *live, const rank_data_opts *o, rank_data *d, char *err, size_t errlen) {
  memset(d, 0, sizeof *d);
  d->nfeat = engine__rank_nfeatures();
  recd_engine *e = engine__replay_open(live, err, errlen);
  if (!e) return RECD_ESTORE;
  int64_t t0 = clock_mono_ns();
  builder b = {.e = e, .o = o, .d = d, .err = err, .errlen = errlen};
  u32map_init(&b.head);
  b.iids = xmalloc(RANK_MAX_DEPTH * sizeof *b.iids);
  b.rows = xmalloc(RANK_MAX_DEPTH * d->nfeat * sizeof *b.rows);
  int rc = engine__replay_events(e, o->upto, before_event, &b);
  if (rc && !b.rc) snprintf(err, errlen, "replaying the event log: %s", recd_strerror(rc));
  if (!rc) rc = b.rc;
  /* keep the groups with at least one positive label */
  size_t g2 = 0, r2 = 0;
  for (size_t g = 0; g < d->ngroups && !rc; g++) {
    size_t s = d->gstart[g], n = d->gsize[g];
    int pos = 0;
    for (size_t k = s; k < s + n; k++) pos |= d->label[k] > 0;
    d->sampled++;
    if (!pos) continue;
    memmove(d->x + r2 * d->nfeat, d->x + s * d->nfeat, n * d->nfeat * sizeof *d->x);
    memmove(d->label + r2, d->label + s, n * sizeof *d->label);
    memmove(d->iid + r2, d->iid + s, n * sizeof *d->iid);
    d->gstart[g2] = r2;
    d->gsize[g2] = (uint32_t)n;
    d->gseq[g2] = d->gseq[g];
    d->gts[g2] = d->gts[g];
    d->guid[g2] = d->guid[g];
    g2++;
    r2 += n;
  }
  if (!rc) {
    d->ngroups = g2;
    d->nrows = r2;
  }
  d->replay_seconds = (clock_mono_ns() - t0) / 1e9;
  u32map_release(&b.head);
  free(b.prev);
  free(b.iids);
  free(b.rows);
  engine_free(e);
  if (rc) engine__rank_data_release(d);
  return rc;
}

void engine__rank_data_release(rank_data *d) {
  free(d->x);
  free(d->label);
  free(d->iid);
  free(d->gstart);
  free(d->gsize);
  free(d->gseq);
  free(d->gts);
  free(d->guid);
  memset(d, 0, sizeof *d);
}

/* nDCG@k of one group ordered by `score` (higher first; ties by position) */
double engine__rank_ndcg(const float *label, const float *score, size_t n, size_t k) {
  double dcg = 0, idcg = 0;
  uint8_t *used = xcalloc(n ? n : 1, 1);
  for (size_t r = 0; r < k && r < n; r++) {
    size_t best = n;
    for (size_t i = 0; i < n; i++)
      if (!used[i] && (best == n || score[i] > score[best])) best = i;
    used[best] = 1;
    dcg += (pow(2.0, label[best]) - 1) / log2((double)r + 2);
  }
  float *sorted = xmalloc((n ? n : 1) * sizeof *sorted);
  memcpy(sorted, label, n * sizeof *sorted);
  for (size_t r = 0; r < k && r < n; r++) {
    size_t best = r;
    for (size_t i = r + 1; i < n; i++)
      if (sorted[i] > sorted[best]) best = i;
    float t = sorted[r];
    sorted[r] = sorted[best];
    sorted[best] = t;
    idcg += (pow(2.0, sorted[r]) - 1) / log2((double)r + 2);
  }
  free(used);
  free(sorted);
  return idcg > 0 ? dcg / idcg : 0;
}
