#include "eval/evaluate.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/engine.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/u32map.h"

#define TYPE_VIEW 0
#define TYPE_LIKE 2
#define ITEM_CATS_MAX 16 /* the engine keeps at most 16 categories per item */

int eval_config(const recd_config *base, const char *ov, recd_config *out, char *err, size_t errlen) {
  *out = *base;
  if (!ov || !*ov) return config_finish(out, err, errlen);
  char buf[2048];
  snprintf(buf, sizeof buf, "%s", ov);
  for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(tok, '=');
    if (!eq) {
      snprintf(err, errlen, "model option '%s' is not name=value", tok);
      return RECD_EINVAL;
    }
    *eq = 0;
    if (config_set(out, tok, eq + 1, err, errlen)) return RECD_EINVAL;
  }
  return config_finish(out, err, errlen);
}

static int cmp_ts(const void *a, const void *b, void *arg) {
  const eval_rating *r = arg;
  const size_t x = *(const size_t *)a, y = *(const size_t *)b;
  if (r[x].ts_ms != r[y].ts_ms) return r[x].ts_ms < r[y].ts_ms ? -1 : 1;
  return x < y ? -1 : x > y;
}

/* indexes of ratings with is_test == want, in time order */
static size_t ordered(const eval_data *d, const uint8_t *is_test, int want, size_t **out) {
  size_t n = 0, *o = xmalloc((d->n ? d->n : 1) * sizeof *o);
  for (size_t i = 0; i < d->n; i++)
    if (!!is_test[i] == want) o[n++] = i;
  qsort_r(o, n, sizeof *o, cmp_ts, d->r);
  *out = o;
  return n;
}

static recd_event to_event(const eval_data *d, const eval_rating *r, double like) {
  return (recd_event){.user_id = strmap_key(&d->users, r->user),
                      .item_id = strmap_key(&d->items, r->item),
                      .type = r->rating >= like ? TYPE_LIKE : TYPE_VIEW,
                      .ts_ms = r->ts_ms,
                      .value = r->rating,
                      .has_value = 1};
}

typedef struct {
  recd_engine *e;
  char dir[64];
} trained;

static void untrain(trained *t) {
  engine_free(t->e);
  t->e = NULL;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->dir);
  if (t->dir[0] && system(cmd) != 0) fprintf(stderr, "eval: could not remove %s\n", t->dir);
}

/* a fresh engine with the catalog and the training ratings */
static int train(const eval_data *d, const uint8_t *is_test, const recd_config *base, double like, trained *t,
                 char *err, size_t errlen) {
  memset(t, 0, sizeof *t);
  recd_config cfg = *base;
  snprintf(t->dir, sizeof t->dir, "/tmp/recd-eval-XXXXXX");
  if (!mkdtemp(t->dir)) {
    snprintf(err, errlen, "mkdtemp: %s", strerror(errno));
    t->dir[0] = 0;
    return -errno;
  }
  snprintf(cfg.data, sizeof cfg.data, "%s", t->dir);
  snprintf(cfg.fsync, sizeof cfg.fsync, "off");
  cfg.exclude_seen = 1;
  int rc = engine_open(&cfg, &t->e, err, errlen);
  if (rc) {
    untrain(t);
    return rc;
  }
  /* catalog: genres as categories, all items created at time 0 (no "new arrivals") */
  size_t ni = strmap_count(&d->items);
  recd_item *items = xcalloc(ni ? ni : 1, sizeof *items);
  const char **cats = xcalloc(ni * ITEM_CATS_MAX + 1, sizeof *cats);
  char **gcopy = xcalloc(ni ? ni : 1, sizeof *gcopy);
  for (size_t i = 0; i < ni; i++) {
    recd_item *it = &items[i];
    it->item_id = strmap_key(&d->items, (uint32_t)i);
    it->available = 1;
    it->created_at_ms = 0;
    it->categories = cats + i * ITEM_CATS_MAX;
    if (i < d->genres_cap && d->genres[i]) {
      gcopy[i] = xstrdup(d->genres[i]);
      for (char *save = NULL, *g = strtok_r(gcopy[i], "|", &save); g && it->ncategories < ITEM_CATS_MAX;
           g = strtok_r(NULL, "|", &save))
        cats[i * ITEM_CATS_MAX + it->ncategories++] = g;
    }
  }
  engine_op op = {.kind = OP_ITEMS, .items = items, .nitems = ni};
  rc = engine_submit_wait(t->e, &op);
  for (size_t i = 0; i < ni; i++) free(gcopy[i]);
  free(gcopy);
  free(cats);
  free(items);
  if (rc) {
    snprintf(err, errlen, "loading items: %s", recd_strerror(rc));
    untrain(t);
    return rc;
  }
  size_t *order, n = ordered(d, is_test, 0, &order);
  const size_t B = 20000;
  recd_event *evs = xmalloc(B * sizeof *evs);
  for (size_t s = 0; s < n && !rc; s += B) {
    size_t m = n - s < B ? n - s : B;
    for (size_t j = 0; j < m; j++) evs[j] = to_event(d, &d->r[order[s + j]], like);
    engine_op eo = {.kind = OP_EVENTS, .events = evs, .nevents = m};
    rc = engine_submit_wait(t->e, &eo);
  }
  free(evs);
  free(order);
  if (rc) {
    snprintf(err, errlen, "loading events: %s", recd_strerror(rc));
    untrain(t);
    return rc;
  }
  if (strcmp(cfg.model, "none") && cfg.w_mf > 0) { /* a learned model, trained on the training part */
    recd_train_request tr = {.kind = cfg.model, .promote = RECD_PROMOTE_ALWAYS};
    json_t *meta;
    recd_fail f;
    if ((rc = engine_train(t->e, &tr, &meta, &f))) {
      snprintf(err, errlen, "training %s: %s", cfg.model, f.message);
      untrain(t);
      return rc;
    }
    if (getenv("RECD_EVAL_META")) {
      char *txt = json_dumps(meta, JSON_INDENT(1));
      fprintf(stderr, "%s\n", txt);
      free(txt);
    }
    json_decref(meta);
  }
  return 0;
}

void eval_result_release(eval_result *r) {
  free(r->curve);
  r->curve = NULL;
}

void eval_replay_release(eval_replay_result *r) {
  free(r->hr_curve);
  r->hr_curve = NULL;
}

int eval_run(const eval_data *d, const uint8_t *is_test, const recd_config *cfg, const eval_opts *o,
             eval_result *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  int64_t t0 = clock_mono_ns();
  size_t K = o->max_k > o->k ? o->max_k : o->k;
  trained t;
  int rc = train(d, is_test, cfg, o->like_threshold, &t, err, errlen);
  if (rc) return rc;
  size_t nu = strmap_count(&d->users), ni = strmap_count(&d->items);
  u32map *rel = xcalloc(nu ? nu : 1, sizeof *rel);
  for (size_t i = 0; i < d->n; i++)
    if (is_test[i]) u32map_put(&rel[d->r[i].user], d->r[i].item, 1, NULL);
  u32map recommended;
  u32map_init(&recommended);
  uint8_t *hits = xcalloc(K, 1);
  out->curve = xcalloc(K + 1, sizeof *out->curve);
  out->max_k = K;
  for (size_t u = 0; u < nu; u++) {
    if (!rel[u].count) continue;
    /* the table's list has exactly k items (the diversity rule depends on n);
     * the curves come from one list of max_k items */
    for (int pass = 0; pass < (K > o->k ? 2 : 1); pass++) {
      size_t n = pass ? K : o->k;
      recd_rec_request rq = {.user_id = strmap_key(&d->users, (uint32_t)u), .n = n};
      recd_rec_result res;
      engine_recommend(t.e, &rq, &res);
      for (size_t j = 0; j < res.count; j++) {
        uint32_t iid = strmap_find(&d->items, res.items[j].item_id, strlen(res.items[j].item_id));
        hits[j] = iid != STRMAP_NONE && u32map_get(&rel[u], iid) != NULL;
        if (iid != STRMAP_NONE && !pass) u32map_put(&recommended, iid, 1, NULL);
      }
      eval_scores sc;
      if (!pass) {
        metrics_user(hits, res.count, o->k, rel[u].count, &sc);
        metrics_add(&out->mean, &sc);
      }
      if (pass || K == o->k)
        for (size_t c = 1; c <= K; c++) {
          metrics_user(hits, res.count, c, rel[u].count, &sc);
          metrics_add(&out->curve[c], &sc);
        }
      engine_result_release(&res);
    }
    out->users++;
  }
  if (out->users) {
    metrics_scale(&out->mean, 1.0 / (double)out->users);
    for (size_t c = 1; c <= K; c++) metrics_scale(&out->curve[c], 1.0 / (double)out->users);
  }
  out->users_total = nu;
  out->coverage = ni ? (double)recommended.count / (double)ni : 0;
  for (size_t u = 0; u < nu; u++) u32map_release(&rel[u]);
  free(rel);
  free(hits);
  u32map_release(&recommended);
  untrain(&t);
  out->seconds = (clock_mono_ns() - t0) / 1e9;
  return 0;
}

int eval_replay(const eval_data *d, const uint8_t *is_test, const recd_config *cfg, const eval_opts *o, int frozen,
                eval_replay_result *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  int64_t t0 = clock_mono_ns();
  size_t K = o->max_k > o->k ? o->max_k : o->k;
  trained t;
  int rc = train(d, is_test, cfg, o->like_threshold, &t, err, errlen);
  if (rc) return rc;
  size_t *order, n = ordered(d, is_test, 1, &order);
  size_t nu = strmap_count(&d->users);
  /* frozen: what each user consumed during the replay, excluded by request instead */
  u32map *consumed = frozen ? xcalloc(nu ? nu : 1, sizeof *consumed) : NULL;
  uint8_t *seen_user = xcalloc(nu ? nu : 1, 1);
  const char **excl = NULL;
  size_t excl_cap = 0;
  out->hr_curve = xcalloc(K + 1, sizeof *out->hr_curve);
  out->max_k = K;
  for (size_t i = 0; i < n && !rc; i++) {
    const eval_rating *r = &d->r[order[i]];
    if (r->rating >= o->like_threshold) {
      recd_rec_request rq = {.user_id = strmap_key(&d->users, r->user), .n = K};
      if (frozen && consumed[r->user].count) {
        if (consumed[r->user].count > excl_cap) {
          excl_cap = consumed[r->user].count * 2;
          excl = xrealloc(excl, excl_cap * sizeof *excl);
        }
        size_t m = 0;
        for (uint32_t s = 0; s < consumed[r->user].cap; s++)
          if (consumed[r->user].keys[s] != U32MAP_EMPTY) excl[m++] = strmap_key(&d->items, consumed[r->user].keys[s]);
        rq.exclude = excl;
        rq.nexclude = m;
      }
      const char *want = strmap_key(&d->items, r->item);
      /* a list of exactly k for the metrics, one of max_k for the curve (diversity depends on n) */
      for (int pass = 0; pass < (K > o->k ? 2 : 1); pass++) {
        rq.n = pass ? K : o->k;
        recd_rec_result res;
        engine_recommend(t.e, &rq, &res);
        size_t rank = 0;
        for (size_t j = 0; j < res.count && !rank; j++)
          if (!strcmp(res.items[j].item_id, want)) rank = j + 1;
        if (!pass && rank) {
          out->hr += 1;
          out->ndcg += 1.0 / log2((double)rank + 1.0);
          out->mrr += 1.0 / (double)rank;
        }
        if (pass || K == o->k)
          for (size_t c = rank ? rank : K + 1; c <= K; c++) out->hr_curve[c] += 1;
        engine_result_release(&res);
      }
      out->positives++;
      if (!seen_user[r->user]) out->users++;
      seen_user[r->user] = 1;
    }
    if (frozen) {
      u32map_put(&consumed[r->user], r->item, 1, NULL);
    } else {
      recd_event ev = to_event(d, r, o->like_threshold);
      engine_op op = {.kind = OP_EVENTS, .events = &ev, .nevents = 1};
      rc = engine_submit_wait(t.e, &op);
      if (rc) snprintf(err, errlen, "replaying events: %s", recd_strerror(rc));
    }
    out->events++;
  }
  if (out->positives) {
    double f = 1.0 / (double)out->positives;
    out->hr *= f;
    out->ndcg *= f;
    out->mrr *= f;
    for (size_t c = 1; c <= K; c++) out->hr_curve[c] *= f;
  }
  if (consumed) {
    for (size_t u = 0; u < nu; u++) u32map_release(&consumed[u]);
    free(consumed);
  }
  free(excl);
  free(seen_user);
  free(order);
  untrain(&t);
  out->seconds = (clock_mono_ns() - t0) / 1e9;
  return rc;
}
