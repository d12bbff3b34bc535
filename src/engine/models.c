/* models.c — learned models in the engine: training from the live state, a
 * versioned registry on disk, evaluation on a held-out recent slice,
 * promotion, rollback and the atomic swap serving reads from.
 *
 * Registry (DATA/models/):
 *   vN/model.bin   the model file (ials_save / ease_save: checksummed)
 *   vN/meta.json   kind, parameters, data range, metrics, stage, sizes, times
 *   PRODUCTION     the production version number
 * Stages: candidate -> production -> archived (a promoted version archives the
 * previous production and remembers it for rollback).
 *
 * Invariants:
 *  1. Serving reads `e->models` under models_lock only to retain it; a model
 *     set is immutable and freed by its last release, so a swap never fails or
 *     stalls a request.
 *  2. One training at a time (train_lock); it reads the live state under the
 *     usual stripe locks and never blocks the writer for long.
 *  3. A model file that fails its checks is refused; production stays as it was.
 */
#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/engine_int.h"
#include "model/ease.h"
#include "model/ials.h"
#include "model/ranker.h"
#include "engine/rankdata.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#define HOLDOUT_MAX 5000 /* users in the held-out recent slice */
#define EVAL_K 10

model_set *engine__models(recd_engine *e) {
  pthread_mutex_lock(&e->models_lock);
  model_set *m = e->models;
  if (m) __atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
  pthread_mutex_unlock(&e->models_lock);
  return m;
}

void engine__models_release(model_set *m) {
  if (!m || __atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL)) return;
  ials_free(m->ials);
  ease_free(m->ease);
  ranker_free(m->ranker);
  free(m->scan);
  json_decref(m->meta);
  free(m);
}

/* The items iALS scores per request, fixed when the set is made (trained or
 * loaded, never on the request path): every item (scan NULL), or for a
 * catalog over mf_scan_items the most popular ones by all-time event weight. */
static void set_scan(recd_engine *e, model_set *m) {
  size_t cap = e->cfg.mf_scan_items, nitems = m->ials ? (size_t)ials_nitems(m->ials) : 0;
  if (!cap || nitems <= cap) return;
  pop_list pl;
  pop_list_init(&pl, (uint32_t)cap);
  for (uint32_t iid = 0; iid < nitems; iid++) {
    itemstats *st = ptrvec_get(&e->istats, iid);
    if (!st) continue;
    pthread_mutex_t *l = engine__ilock(e, iid);
    pthread_mutex_lock(l);
    float w = st->weight_total;
    pthread_mutex_unlock(l);
    pop_list_offer(&pl, iid, w);
  }
  pop_list_sort(&pl);
  m->scan = xmalloc((pl.n ? pl.n : 1) * sizeof *m->scan);
  for (uint32_t i = 0; i < pl.n; i++) m->scan[i] = pl.e[i].iid;
  m->nscan = pl.n;
  pop_list_release(&pl);
}

static void model_dir(const recd_engine *e, uint64_t v, char *buf, size_t n) {
  snprintf(buf, n, "%s/models/v%llu", e->cfg.data, (unsigned long long)v);
}

static json_t *read_meta(const recd_engine *e, uint64_t v) {
  char path[1200];
  model_dir(e, v, path, sizeof path);
  strcat(path, "/meta.json");
  return json_load_file(path, 0, NULL);
}

static int write_meta(const recd_engine *e, uint64_t v, json_t *meta) {
  char path[1200], tmp[1210];
  model_dir(e, v, path, sizeof path);
  strcat(path, "/meta.json");
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  if (json_dump_file(meta, tmp, JSON_INDENT(2) | JSON_SORT_KEYS)) return RECD_EIO;
  return rename(tmp, path) ? -errno : 0;
}

static int write_production(const recd_engine *e, uint64_t v) {
  char path[1100], tmp[1110];
  snprintf(path, sizeof path, "%s/models/PRODUCTION", e->cfg.data);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) return -errno;
  fprintf(f, "%llu\n", (unsigned long long)v);
  if (fflush(f) || fsync(fileno(f))) {
    fclose(f);
    return RECD_EIO;
  }
  fclose(f);
  return rename(tmp, path) ? -errno : 0;
}

/* load a version's model file into a new model set (refs = 1); the previous
 * production set is still in memory (verified when it was loaded) and reused */
static model_set *load_set(recd_engine *e, uint64_t v, char *err, size_t errlen) {
  pthread_mutex_lock(&e->models_lock);
  model_set *p = e->prev_models && e->prev_models->version == v ? e->prev_models : NULL;
  if (p) __atomic_add_fetch(&p->refs, 1, __ATOMIC_RELAXED);
  pthread_mutex_unlock(&e->models_lock);
  if (p) {
    json_decref(p->meta); /* stages on disk may have changed since */
    json_t *meta = read_meta(e, v);
    p->meta = meta ? meta : json_object();
    return p;
  }
  json_t *meta = read_meta(e, v);
  if (!meta) {
    snprintf(err, errlen, "model v%llu: no readable meta.json", (unsigned long long)v);
    return NULL;
  }
  const char *kind = json_string_value(json_object_get(meta, "kind"));
  char path[1200];
  model_dir(e, v, path, sizeof path);
  strcat(path, "/model.bin");
  model_set *m = xcalloc(1, sizeof *m);
  m->refs = 1;
  m->version = v;
  m->meta = meta;
  char why[256] = "";
  const char *base = kind && !strcmp(kind, "ranker") ? json_string_value(json_object_get(meta, "base")) : kind;
  int ok = 1;
  if (base && !strcmp(base, "ials")) ok = (m->ials = ials_load(path, why, sizeof why)) != NULL;
  else if (base && !strcmp(base, "ease")) ok = (m->ease = ease_load(path, why, sizeof why)) != NULL;
  else if (!(kind && !strcmp(kind, "ranker") && base && !strcmp(base, "none")))
    ok = 0, snprintf(why, sizeof why, "unknown kind '%s'", kind ? kind : "?");
  if (ok && !strcmp(kind, "ranker")) {
    model_dir(e, v, path, sizeof path);
    strcat(path, "/ranker.bin");
    ok = (m->ranker = ranker_load(path, why, sizeof why)) != NULL;
    for (size_t i = 0; ok && i < engine__rank_nfeatures(); i++)
      if (ranker_feature_index(m->ranker, engine__rank_feature_names()[i]) != (int)i) {
        snprintf(why, sizeof why, "ranker features differ from this build's (feature %zu is not '%s')", i,
                 engine__rank_feature_names()[i]);
        ok = 0;
      }
    json_t *pr = json_object_get(json_object_get(json_object_get(meta, "ranker"), "params"), "prior");
    m->ranker_prior = pr ? (float)json_number_value(pr) : 0;
    if (ok && ranker_nfeatures(m->ranker) != engine__rank_nfeatures()) {
      snprintf(why, sizeof why, "ranker has %zu features, this build computes %zu", ranker_nfeatures(m->ranker),
               engine__rank_nfeatures());
      ok = 0;
    }
  }
  if (!ok) {
    snprintf(err, errlen, "model v%llu refused: %s", (unsigned long long)v, why);
    engine__models_release(m);
    return NULL;
  }
  snprintf(m->kind, sizeof m->kind, "%s", kind);
  set_scan(e, m);
  return m;
}

static void swap_in(recd_engine *e, model_set *m) {
  pthread_mutex_lock(&e->models_lock);
  model_set *old = e->models, *drop = NULL;
  e->models = m;
  if (old && old != m) { /* keep the one we replaced for a rollback */
    drop = e->prev_models;
    e->prev_models = old;
    old = NULL;
  }
  if (drop == m) drop = NULL, __atomic_sub_fetch(&m->refs, 1, __ATOMIC_RELAXED); /* it moved back to production */
  pthread_mutex_unlock(&e->models_lock);
  engine__models_release(old);
  engine__models_release(drop);
}

void engine__models_open(recd_engine *e) {
  char dir[1100], path[1200];
  snprintf(dir, sizeof dir, "%s/models", e->cfg.data);
  mkdir(dir, 0755);
  /* next version: one past the highest on disk */
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *de;
    while ((de = readdir(d))) {
      unsigned long long v;
      if (de->d_name[0] == 'v' && sscanf(de->d_name + 1, "%llu", &v) == 1 && v >= e->model_next_version)
        e->model_next_version = v + 1;
    }
    closedir(d);
  }
  if (!e->model_next_version) e->model_next_version = 1;
  snprintf(path, sizeof path, "%s/PRODUCTION", dir);
  FILE *f = fopen(path, "r");
  unsigned long long v;
  if (!f) return;
  int ok = fscanf(f, "%llu", &v) == 1;
  fclose(f);
  if (!ok) return;
  char err[512];
  model_set *m = load_set(e, v, err, sizeof err);
  if (!m) {
    log_error("models: %s; serving without a learned model", err);
    return;
  }
  swap_in(e, m);
  log_info("models: serving %s v%llu", m->kind, v);
}

/* ---- training data from the live state ---- */

typedef struct {
  uint32_t nusers, nitems;
  uint64_t *indptr;
  uint32_t *indices;
  float *values;
  /* held-out slice: each sampled user's most recent item */
  uint32_t *ho_user, *ho_item;
  size_t nho;
  uint64_t seq;
  int64_t max_ts, min_ts; /* min_ts: the earliest event of any user */
} train_data;

static void data_release(train_data *t) {
  free(t->indptr);
  free(t->indices);
  free(t->values);
  free(t->ho_user);
  free(t->ho_item);
}

static float strength(const recd_engine *e, uint32_t mask) {
  float r = 0;
  for (int t = 0; t < e->ntypes && t < 31; t++)
    if (mask & (1u << t)) r += e->types[t].weight;
  return r;
}

static void collect(recd_engine *e, int holdout, train_data *t) {
  memset(t, 0, sizeof *t);
  pthread_rwlock_rdlock(&e->users_lock);
  t->nusers = (uint32_t)strmap_count(&e->users);
  pthread_rwlock_unlock(&e->users_lock);
  pthread_rwlock_rdlock(&e->items_lock);
  t->nitems = (uint32_t)strmap_count(&e->items);
  pthread_rwlock_unlock(&e->items_lock);
  t->seq = atomic_load(&e->committed_seq);
  t->max_ts = engine__now(e);
  t->min_ts = INT64_MAX;
  t->indptr = xcalloc((size_t)t->nusers + 1, sizeof *t->indptr);
  size_t cap = 1 << 16, n = 0;
  t->indices = xmalloc(cap * sizeof *t->indices);
  t->values = xmalloc(cap * sizeof *t->values);
  t->ho_user = xmalloc(HOLDOUT_MAX * sizeof *t->ho_user);
  t->ho_item = xmalloc(HOLDOUT_MAX * sizeof *t->ho_item);
  /* sample users for the held-out slice evenly over ids */
  uint32_t stride = t->nusers / HOLDOUT_MAX + 1;
  for (uint32_t u = 0; u < t->nusers; u++) {
    userprof *p = ptrvec_get(&e->uprof, u);
    t->indptr[u + 1] = n;
    if (!p) continue;
    pthread_mutex_t *l = engine__ulock(e, u);
    pthread_mutex_lock(l);
    if (p->total && p->first_ts < t->min_ts) t->min_ts = p->first_ts;
    uint32_t ho = UINT32_MAX;
    if (holdout && u % stride == 0 && p->seen.count >= 3 && t->nho < HOLDOUT_MAX) {
      const recent_ev *r = userprof_recent(p, 0);
      if (r) ho = r->iid;
    }
    if (n + p->seen.count > cap) {
      while (n + p->seen.count > cap) cap *= 2;
      t->indices = xrealloc(t->indices, cap * sizeof *t->indices);
      t->values = xrealloc(t->values, cap * sizeof *t->values);
    }
    for (uint32_t s = 0; s < p->seen.cap; s++) {
      uint32_t iid = p->seen.keys[s];
      if (iid == U32MAP_EMPTY || iid == ho || iid >= t->nitems) continue;
      t->indices[n] = iid;
      t->values[n++] = strength(e, p->seen.vals[s]);
    }
    pthread_mutex_unlock(l);
    if (ho != UINT32_MAX) {
      t->ho_user[t->nho] = u;
      t->ho_item[t->nho++] = ho;
    }
    t->indptr[u + 1] = n;
  }
}

/* ---- scoring with a model set (also used by recommend.c) ---- */

typedef struct {
  const uint32_t *items;
  size_t n;
} skip_list;

static int skip_own(void *arg, uint32_t item) {
  const skip_list *s = arg;
  for (size_t i = 0; i < s->n; i++)
    if (s->items[i] == item) return 1;
  return 0;
}

size_t engine__model_topk(const model_set *m, const uint32_t *among, size_t namong, const uint32_t *items,
                          const float *r, size_t n, size_t k, int (*skip)(void *arg, uint32_t item), void *arg,
                          uint32_t *out, float *scores) {
  if (m->ials) {
    float vec[1024];
    if (ials_fold_in(m->ials, items, r, n, vec)) return 0;
    if (among) return ials_topk_among(m->ials, vec, among, namong, k, skip, arg, out, scores);
    return ials_topk(m->ials, vec, k, skip, arg, out, scores);
  }
  if (m->ease) return ease_topk(m->ease, items, NULL, n, k, skip, arg, out, scores); /* trained binary */
  return 0;
}

/* HR@10 and nDCG@10 on the held-out slice: fold in each user's training items */
static void evaluate(const model_set *m, const train_data *t, double *hr, double *ndcg) {
  *hr = *ndcg = 0;
  if (!t->nho) return;
  uint32_t top[EVAL_K];
  float sc[EVAL_K];
  for (size_t h = 0; h < t->nho; h++) {
    uint32_t u = t->ho_user[h];
    const uint32_t *items = t->indices + t->indptr[u];
    size_t n = t->indptr[u + 1] - t->indptr[u];
    skip_list sl = {items, n};
    size_t k = engine__model_topk(m, NULL, 0, items, t->values + t->indptr[u], n, EVAL_K, skip_own, &sl, top, sc);
    for (size_t j = 0; j < k; j++)
      if (top[j] == t->ho_item[h]) {
        *hr += 1;
        *ndcg += 1.0 / log2((double)j + 2.0);
        break;
      }
  }
  *hr /= (double)t->nho;
  *ndcg /= (double)t->nho;
}

static int set_stage(recd_engine *e, model_set *m, uint64_t v, const char *stage, json_t *extra_key,
                     const char *key) {
  json_t *meta = m && m->version == v ? m->meta : read_meta(e, v);
  if (!meta) return RECD_ENOTFOUND;
  json_object_set_new(meta, "stage", json_string(stage));
  if (key) json_object_set(meta, key, extra_key ? extra_key : json_null());
  int rc = write_meta(e, v, meta);
  if (!(m && m->version == v)) json_decref(meta);
  return rc;
}

/* make version v production; `m` is its loaded set (consumed) */
static int promote_set(recd_engine *e, model_set *m, const char *why) {
  model_set *cur = engine__models(e);
  uint64_t prev = cur ? cur->version : 0;
  if (cur && cur->version == m->version) { /* promoting production again keeps its rollback target */
    json_t *p = json_object_get(cur->meta, "previous");
    prev = json_is_integer(p) ? (uint64_t)json_integer_value(p) : 0;
  }
  int rc = write_production(e, m->version);
  if (rc) {
    engine__models_release(cur);
    engine__models_release(m);
    return rc;
  }
  json_t *pv = prev ? json_integer((json_int_t)prev) : json_null();
  set_stage(e, m, m->version, "production", pv, "previous");
  json_decref(pv);
  char ts[40];
  clock_format_rfc3339(clock_now_ms(), ts, sizeof ts);
  json_object_set_new(m->meta, "promoted_at", json_string(ts));
  json_object_set_new(m->meta, "promotion", json_string(why));
  write_meta(e, m->version, m->meta);
  if (cur && cur->version != m->version) set_stage(e, cur, cur->version, "archived", NULL, NULL);
  engine__models_release(cur);
  swap_in(e, m);
  log_info("models: %s v%llu is production (%s)", m->kind, (unsigned long long)m->version, why);
  return 0;
}

/* a retrieval model (iALS or EASE) fitted to the training data; its
 * parameters go into `params` when given */
static model_set *fit(recd_engine *e, const char *kind, const train_data *t, json_t *params, char *err, size_t errlen) {
  model_set *m = xcalloc(1, sizeof *m);
  m->refs = 1;
  snprintf(m->kind, sizeof m->kind, "%s", kind);
  if (!strcmp(kind, "ials")) {
    ials_param p;
    ials_default_param(&p);
    p.factors = e->cfg.ials_factors;
    p.iterations = e->cfg.ials_iterations;
    p.reg = (float)e->cfg.ials_reg;
    p.alpha = (float)e->cfg.ials_alpha;
    p.threads = 2;
    ials_problem pr = {.nusers = t->nusers, .nitems = t->nitems, .indptr = t->indptr, .indices = t->indices, .values = t->values};
    m->ials = ials_train(&pr, &p, NULL, NULL, err, errlen);
    if (params) {
      json_object_set_new(params, "factors", json_integer(p.factors));
      json_object_set_new(params, "iterations", json_integer(p.iterations));
      json_object_set_new(params, "reg", json_real(p.reg));
      json_object_set_new(params, "alpha", json_real(p.alpha));
      json_object_set_new(params, "cg_steps", json_integer(p.cg_steps));
      json_object_set_new(params, "seed", json_integer((json_int_t)p.seed));
    }
  } else {
    ease_param p;
    ease_default_param(&p);
    p.lambda = (float)e->cfg.ease_lambda;
    p.threads = 2;
    /* binary X: on MovieLens it beats strength-weighted X at every lambda tried */
    ease_problem pr = {.nusers = t->nusers, .nitems = t->nitems, .indptr = t->indptr, .indices = t->indices, .values = NULL};
    m->ease = ease_train(&pr, &p, err, errlen);
    if (params) json_object_set_new(params, "lambda", json_real(p.lambda));
  }
  if (!m->ials && !m->ease) {
    free(m);
    return NULL;
  }
  set_scan(e, m);
  return m;
}

model_set *engine__model_train_retrieval(recd_engine *e, const char *kind, char *err, size_t errlen) {
  train_data t;
  collect(e, 0, &t);
  model_set *m = fit(e, kind, &t, NULL, err, errlen);
  data_release(&t);
  return m;
}

/* scores of the rows of one group by a ranker, or by the blend's order */
static double group_ndcg(const ranker *rk, float prior, const rank_data *d, size_t g, int blend_col) {
  size_t s = d->gstart[g], n = d->gsize[g];
  float *sc = xmalloc(n * sizeof *sc);
  if (!rk || ranker_predict(rk, d->x + s * d->nfeat, n, sc))
    for (size_t k = 0; k < n; k++) sc[k] = -d->x[(s + k) * d->nfeat + (size_t)blend_col];
  else
    for (size_t k = 0; k < n; k++) sc[k] += engine__rank_prior(d->x + (s + k) * d->nfeat, prior);
  double v = engine__rank_ndcg(d->label + s, sc, n, EVAL_K);
  free(sc);
  return v;
}

/* The ranker of a "ranker" version: point-in-time groups from the log, the
 * newest fifth of them held out; metrics on the held-out groups for the new
 * ranker, the blend's own order and production (its ranker, or the blend). */
static int fit_ranker(recd_engine *e, uint64_t upto, model_set *m, const model_set *prod, json_t *info,
                      double *ndcg, double *pndcg, char *err, size_t errlen) {
  rank_data_opts o = {.upto = upto,
                      .depth = e->cfg.ranker_depth ? (size_t)e->cfg.ranker_depth : 30,
                      .horizon_ms = e->cfg.ranker_horizon_ms,
                      .base = e->cfg.ranker_base};
  uint64_t window = (uint64_t)((double)upto * e->cfg.ranker_window);
  o.cut = upto - window;
  o.stride = window / e->cfg.ranker_max_groups + 1;
  rank_data d;
  int rc = engine__rank_data(e, &o, &d, err, errlen);
  if (rc) return rc;
  if (d.ngroups < 10) {
    snprintf(err, errlen,
             "only %zu of %zu sampled requests saw a candidate used within ranker_horizon; the ranker needs 10 "
             "(more events, or a longer ranker_horizon / ranker_window)", d.ngroups, d.sampled);
    engine__rank_data_release(&d);
    return RECD_EINVAL;
  }
  size_t nvalid = d.ngroups / 5 ? d.ngroups / 5 : 1, ntrain = d.ngroups - nvalid;
  size_t vrow = d.gstart[ntrain];
  ranker_param p;
  ranker_default_param(&p);
  p.rounds = e->cfg.ranker_rounds;
  p.max_depth = e->cfg.ranker_tree_depth;
  p.eta = (float)e->cfg.ranker_eta;
  p.threads = 2;
  p.early_stopping = 10;
  const char *const *names = engine__rank_feature_names();
  float prior = (float)e->cfg.ranker_prior;
  float *margin = NULL;
  if (prior > 0) {
    margin = xmalloc(d.nrows * sizeof *margin);
    for (size_t i = 0; i < d.nrows; i++) margin[i] = engine__rank_prior(d.x + i * d.nfeat, prior);
  }
  m->ranker_prior = prior;
  ranker_problem tr = {.nrows = vrow, .nfeatures = d.nfeat, .x = d.x, .label = d.label, .group_sizes = d.gsize,
                       .ngroups = ntrain, .feature_names = names, .base_margin = margin};
  ranker_problem va = {.nrows = d.nrows - vrow, .nfeatures = d.nfeat, .x = d.x + vrow * d.nfeat,
                       .label = d.label + vrow, .group_sizes = d.gsize + ntrain, .ngroups = nvalid,
                       .feature_names = names, .base_margin = margin ? margin + vrow : NULL};
  int64_t t0 = clock_mono_ns();
  m->ranker = ranker_train(&tr, &va, &p, NULL, NULL, err, errlen);
  double train_s = (clock_mono_ns() - t0) / 1e9;
  free(margin);
  if (!m->ranker) {
    engine__rank_data_release(&d);
    return RECD_EINVAL;
  }
  int blend_col = -1;
  for (size_t i = 0; i < d.nfeat; i++)
    if (!strcmp(names[i], "blend_rank")) blend_col = (int)i;
  double rn = 0, bn = 0, pn = 0;
  for (size_t g = ntrain; g < d.ngroups; g++) {
    rn += group_ndcg(m->ranker, prior, &d, g, blend_col);
    bn += group_ndcg(NULL, 0, &d, g, blend_col);
    pn += prod && prod->ranker ? group_ndcg(prod->ranker, prod->ranker_prior, &d, g, blend_col) : 0;
  }
  rn /= (double)nvalid;
  bn /= (double)nvalid;
  pn = prod && prod->ranker ? pn / (double)nvalid : bn;
  *ndcg = rn;
  *pndcg = pn;
  json_object_set_new(info, "ndcg_at_10", json_real(rn));
  json_object_set_new(info, "blend_ndcg_at_10", json_real(bn));
  json_object_set_new(info, "heldout", json_string("the newest fifth of the sampled requests, by log order"));
  json_object_set_new(info, "groups_train", json_integer((json_int_t)ntrain));
  json_object_set_new(info, "groups_heldout", json_integer((json_int_t)nvalid));
  json_object_set_new(info, "groups_sampled", json_integer((json_int_t)d.sampled));
  json_object_set_new(info, "rows", json_integer((json_int_t)d.nrows));
  json_object_set_new(info, "features", json_integer((json_int_t)d.nfeat));
  json_object_set_new(info, "first_sampled_seq", json_integer((json_int_t)(o.cut + 1)));
  json_object_set_new(info, "stride", json_integer((json_int_t)o.stride));
  json_object_set_new(info, "trees", json_integer(ranker_rounds(m->ranker)));
  json_object_set_new(info, "replay_seconds", json_real(d.replay_seconds));
  json_object_set_new(info, "base_at_cut_seconds", json_real(d.base_seconds));
  json_object_set_new(info, "train_seconds", json_real(train_s));
  json_object_set_new(info, "params", json_pack("{s:s,s:i,s:i,s:f,s:f,s:i,s:I,s:I,s:f,s:f}", "objective", p.objective,
                                                "rounds", p.rounds, "max_depth", p.max_depth, "eta", (double)p.eta,
                                                "subsample", (double)p.subsample, "early_stopping", p.early_stopping,
                                                "depth", (json_int_t)o.depth, "horizon_ms", (json_int_t)o.horizon_ms,
                                                "window", e->cfg.ranker_window, "prior", (double)prior));
  engine__rank_data_release(&d);
  return 0;
}

const char *engine_model_kind(const char *s) {
  static const char *const kinds[] = {"ials", "ease", "ranker"};
  for (size_t i = 0; s && i < sizeof kinds / sizeof kinds[0]; i++)
    if (!strcmp(s, kinds[i])) return kinds[i];
  return NULL;
}

int engine_promote_mode(const char *s) {
  return !s ? -1
         : !strcmp(s, "if_better") ? RECD_PROMOTE_IF_BETTER
         : !strcmp(s, "always")    ? RECD_PROMOTE_ALWAYS
         : !strcmp(s, "never")     ? RECD_PROMOTE_NEVER
                                   : -1;
}

int engine_model_version(const char *s, uint64_t *out) {
  const char *d = s && (s[0] == 'v' || s[0] == 'V') ? s + 1 : s;
  if (!d || !*d || *d < '0' || *d > '9') return -1;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(d, &end, 10);
  if (*end || errno || !v) return -1;
  *out = v;
  return 0;
}

static int train_locked(recd_engine *e, const recd_train_request *rq, json_t **meta_out, recd_fail *fail);

/* Training allocates a lot and frees it all (the ranker's replay engine is a
 * second copy of the live state); give the freed memory back to the system
 * rather than keep the peak for the process's lifetime. */
int engine_train(recd_engine *e, const recd_train_request *rq, json_t **meta_out, recd_fail *fail) {
  int rc = train_locked(e, rq, meta_out, fail);
  malloc_trim(0);
  return rc;
}

static int train_locked(recd_engine *e, const recd_train_request *rq, json_t **meta_out, recd_fail *fail) {
  *meta_out = NULL;
  const char *kind = rq->kind && *rq->kind ? rq->kind : e->cfg.model;
  if (!engine_model_kind(kind)) {
    recd_fail_set(fail, 400, "invalid_parameter", -1, "kind", "kind: '%.32s' is not ials, ease or ranker", kind);
    return RECD_EINVAL;
  }
  if (pthread_mutex_trylock(&e->train_lock)) {
    recd_fail_set(fail, 409, "training_busy", -1, "", "a training is already running; try again when it ends");
    return RECD_EEXISTS;
  }
  int is_ranker = !strcmp(kind, "ranker");
  const char *base = is_ranker ? e->cfg.ranker_base : kind;
  int64_t t0 = clock_mono_ns();
  train_data t;
  collect(e, 1, &t);
  int64_t t1 = clock_mono_ns();
  char err[512] = "";
  json_t *params = json_object();
  model_set *m = NULL;
  if (strcmp(base, "none")) {
    m = fit(e, base, &t, params, err, sizeof err);
  } else {
    m = xcalloc(1, sizeof *m);
    m->refs = 1;
  }
  model_set *prod = engine__models(e);
  double hr = 0, ndcg = 0, phr = 0, pndcg = 0, rndcg = 0, rpndcg = 0;
  json_t *rinfo = NULL;
  if (m) {
    snprintf(m->kind, sizeof m->kind, "%s", kind);
    if (is_ranker) {
      rinfo = json_object();
      int rc = fit_ranker(e, t.seq, m, prod, rinfo, &rndcg, &rpndcg, err, sizeof err);
      if (rc) {
        engine__models_release(m);
        m = NULL;
      }
    }
  }
  if (!m) {
    recd_fail_set(fail, 422, "training_failed", -1, "", "training %s failed: %s", kind, err);
    json_decref(params);
    json_decref(rinfo);
    engine__models_release(prod);
    data_release(&t);
    pthread_mutex_unlock(&e->train_lock);
    return RECD_EINVAL;
  }
  int64_t t2 = clock_mono_ns();
  if (m->ials || m->ease) evaluate(m, &t, &hr, &ndcg);
  if (prod && (prod->ials || prod->ease)) evaluate(prod, &t, &phr, &pndcg);

  pthread_mutex_lock(&e->models_lock);
  m->version = e->model_next_version++;
  pthread_mutex_unlock(&e->models_lock);
  char dir[1100], path[1200], ts[40], last[40];
  model_dir(e, m->version, dir, sizeof dir);
  mkdir(dir, 0755);
  snprintf(path, sizeof path, "%s/model.bin", dir);
  int rc = m->ials ? ials_save(m->ials, path) : m->ease ? ease_save(m->ease, path) : 0;
  struct stat st;
  json_int_t size = m->ials || m->ease ? (stat(path, &st) ? 0 : st.st_size) : 0;
  if (!rc && m->ranker) {
    snprintf(path, sizeof path, "%s/ranker.bin", dir);
    rc = ranker_save(m->ranker, path);
    size += stat(path, &st) ? 0 : st.st_size;
  }
  clock_format_rfc3339(clock_now_ms(), ts, sizeof ts);
  clock_format_rfc3339(t.max_ts, last, sizeof last);
  char first[40] = "";
  if (t.min_ts != INT64_MAX) clock_format_rfc3339(t.min_ts, first, sizeof first);
  uint64_t nnz = t.indptr[t.nusers];
  m->meta = json_pack("{s:I,s:s,s:o,s:s,s:{s:I,s:I,s:I,s:I,s:s},s:{s:f,s:f,s:I,s:s},s:f,s:f,s:I}", "version",
                      (json_int_t)m->version, "kind", kind, "params", params, "created_at", ts, "data", "events_seq",
                      (json_int_t)t.seq, "users", (json_int_t)t.nusers, "items", (json_int_t)t.nitems,
                      "interactions", (json_int_t)nnz, "latest_event", last, "metrics", "hr_at_10", hr, "ndcg_at_10",
                      ndcg, "holdout_users", (json_int_t)t.nho, "holdout",
                      "each sampled user's most recent item, held out of training", "train_seconds",
                      (t2 - t1) / 1e9, "collect_seconds", (t1 - t0) / 1e9, "size_bytes", size);
  json_object_set_new(m->meta, "stage", json_string("candidate"));
  /* the training data range: events 1..events_seq, first_event..latest_event */
  json_t *data = json_object_get(m->meta, "data");
  json_object_set_new(data, "events_seq_from", json_integer(t.seq ? 1 : 0));
  json_object_set_new(data, "first_event", first[0] ? json_string(first) : json_null());
  if (is_ranker) {
    json_object_set_new(m->meta, "base", json_string(base));
    json_object_set_new(m->meta, "ranker", rinfo);
    rinfo = NULL;
    /* a ranker version is judged (and promoted) by its ranker on held-out requests */
    ndcg = rndcg;
    pndcg = rpndcg;
    json_object_set_new(m->meta, "promotion_metric",
                        json_string(prod && prod->ranker ? "ranker.ndcg_at_10 vs production's ranker on the same requests"
                                                          : "ranker.ndcg_at_10 vs the blend's order on the same requests"));
  }
  if (prod)
    json_object_set_new(m->meta, "production_on_same_slice",
                        json_pack("{s:I,s:f,s:f}", "version", (json_int_t)prod->version, "hr_at_10", phr, "ndcg_at_10", pndcg));
  if (rc || write_meta(e, m->version, m->meta)) {
    recd_fail_set(fail, 500, "internal", -1, "", "could not save model v%llu in %s: %s", (unsigned long long)m->version,
                  dir, recd_strerror(rc ? rc : RECD_EIO));
    engine__models_release(m);
    engine__models_release(prod);
    data_release(&t);
    pthread_mutex_unlock(&e->train_lock);
    return rc ? rc : RECD_EIO;
  }
  /* promotion */
  char why[256];
  int promote = 0;
  if (rq->promote == RECD_PROMOTE_ALWAYS) {
    promote = 1;
    snprintf(why, sizeof why, "promoted on request");
  } else if (rq->promote == RECD_PROMOTE_IF_BETTER) {
    if (!prod) {
      promote = 1;
      snprintf(why, sizeof why, "no production model yet");
    } else if (ndcg > pndcg * (1 + e->cfg.promote_margin)) {
      promote = 1;
      snprintf(why, sizeof why, "nDCG@10 %.4f beats production v%llu's %.4f by more than %.0f%%", ndcg,
               (unsigned long long)prod->version, pndcg, e->cfg.promote_margin * 100);
    } else {
      snprintf(why, sizeof why, "kept as candidate: nDCG@10 %.4f does not beat production v%llu's %.4f by %.0f%%", ndcg,
               (unsigned long long)prod->version, pndcg, e->cfg.promote_margin * 100);
    }
  } else {
    snprintf(why, sizeof why, "kept as candidate: promotion not requested");
  }
  engine__models_release(prod);
  data_release(&t);
  if (!promote) {
    json_object_set_new(m->meta, "promotion", json_string(why));
    write_meta(e, m->version, m->meta);
    log_info("models: %s v%llu trained; %s", kind, (unsigned long long)m->version, why);
    *meta_out = json_deep_copy(m->meta);
    engine__models_release(m);
  } else {
    __atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
    promote_set(e, m, why);
    *meta_out = json_deep_copy(m->meta);
    engine__models_release(m);
  }
  pthread_mutex_unlock(&e->train_lock);
  return 0;
}

int engine_promote(recd_engine *e, uint64_t version, json_t **meta_out, recd_fail *fail) {
  *meta_out = NULL;
  json_t *meta = read_meta(e, version);
  if (!meta) {
    recd_fail_set(fail, 404, "not_found", -1, "version", "version: model v%llu does not exist", (unsigned long long)version);
    return RECD_ENOTFOUND;
  }
  json_decref(meta);
  char err[512];
  model_set *m = load_set(e, version, err, sizeof err);
  if (!m) {
    recd_fail_set(fail, 422, "model_corrupt", -1, "version", "version: %s; the current production model keeps serving", err);
    return RECD_ECORRUPT;
  }
  int rc = promote_set(e, m, "promoted on request");
  if (rc) {
    recd_fail_set(fail, 500, "internal", -1, "", "could not record the promotion: %s", recd_strerror(rc));
    return rc;
  }
  *meta_out = read_meta(e, version);
  return 0;
}

int engine_rollback(recd_engine *e, json_t **meta_out, recd_fail *fail) {
  *meta_out = NULL;
  model_set *cur = engine__models(e);
  json_t *prev = cur ? json_object_get(cur->meta, "previous") : NULL;
  uint64_t v = prev && json_is_integer(prev) ? (uint64_t)json_integer_value(prev) : 0;
  engine__models_release(cur);
  if (!v) {
    recd_fail_set(fail, 409, "nothing_to_roll_back", -1, "", "there is no previous production model to roll back to");
    return RECD_ENOTFOUND;
  }
  return engine_promote(e, v, meta_out, fail);
}

json_t *engine_models(recd_engine *e) {
  json_t *list = json_array();
  model_set *cur = engine__models(e);
  for (uint64_t v = 1; v < e->model_next_version; v++) {
    json_t *meta = read_meta(e, v);
    if (meta) json_array_append_new(list, meta);
  }
  json_t *o = json_pack("{s:o,s:o,s:s}", "production", cur ? json_integer((json_int_t)cur->version) : json_null(),
                        "models", list, "default_kind", e->cfg.model);
  engine__models_release(cur);
  return o;
}

/* ---- background jobs ---- */

static void *job_main(void *arg) {
  recd_engine *e = arg;
  json_t *meta = NULL;
  recd_fail f = {.index = -1};
  int rc = engine_train(e, &e->job_rq, &meta, &f);
  json_t *res = rc ? json_pack("{s:i,s:s,s:s}", "status", f.status, "code", f.code, "message", f.message) : meta;
  pthread_mutex_lock(&e->models_lock);
  json_decref(e->job_result);
  e->job_result = res;
  e->job_status = rc ? 2 : 1;
  pthread_mutex_unlock(&e->models_lock);
  return NULL;
}

int engine_train_start(recd_engine *e, const recd_train_request *rq, uint64_t *job_id, recd_fail *fail) {
  pthread_mutex_lock(&e->models_lock);
  if (e->job_id && e->job_status == 0) {
    pthread_mutex_unlock(&e->models_lock);
    recd_fail_set(fail, 409, "training_busy", -1, "", "training job %llu is still running",
                  (unsigned long long)e->job_id);
    return RECD_EEXISTS;
  }
  int joinable = e->job_started;
  pthread_t old = e->job_thread;
  e->job_started = 0;
  pthread_mutex_unlock(&e->models_lock);
  if (joinable) pthread_join(old, NULL); /* finished already: status != running */
  const char *kind = rq->kind && *rq->kind ? rq->kind : e->cfg.model;
  if (!engine_model_kind(kind)) {
    recd_fail_set(fail, 400, "invalid_parameter", -1, "kind", "kind: '%.32s' is not ials, ease or ranker", kind);
    return RECD_EINVAL;
  }
  pthread_mutex_lock(&e->models_lock);
  e->job_rq = *rq;
  e->job_rq.kind = engine_model_kind(kind); /* static storage: the job outlives the request */
  e->job_status = 0;
  json_decref(e->job_result);
  e->job_result = NULL;
  *job_id = ++e->job_id;
  int rc = pthread_create(&e->job_thread, NULL, job_main, e);
  e->job_started = rc == 0;
  if (rc) e->job_status = 2;
  pthread_mutex_unlock(&e->models_lock);
  if (rc) {
    recd_fail_set(fail, 500, "internal", -1, "", "cannot start a training thread: %s", strerror(rc));
    return -rc;
  }
  return 0;
}

json_t *engine_train_job(recd_engine *e, uint64_t job_id) {
  pthread_mutex_lock(&e->models_lock);
  json_t *o = NULL;
  if (job_id && job_id == e->job_id) {
    static const char *st[] = {"running", "succeeded", "failed"};
    o = json_pack("{s:I,s:s}", "job_id", (json_int_t)job_id, "status", st[e->job_status]);
    if (e->job_status == 1) json_object_set(o, "model", e->job_result);
    if (e->job_status == 2 && e->job_result) json_object_set(o, "error", e->job_result);
  }
  pthread_mutex_unlock(&e->models_lock);
  return o;
}

void engine__models_close(recd_engine *e) {
  if (e->job_started) pthread_join(e->job_thread, NULL);
  e->job_started = 0;
  json_decref(e->job_result);
  e->job_result = NULL;
}

int engine__train_due(const recd_engine *e) {
  return e->cfg.train_every && strcmp(e->cfg.model, "none") && e->opened &&
         atomic_load(&e->committed_seq) - e->last_train_seq >= (uint64_t)e->cfg.train_every;
}

void engine__train_tick(recd_engine *e) {
  if (!engine__train_due(e)) return;
  uint64_t seq = atomic_load(&e->committed_seq);
  recd_train_request rq = {.kind = NULL, .promote = RECD_PROMOTE_IF_BETTER};
  uint64_t id;
  recd_fail f;
  if (!engine_train_start(e, &rq, &id, &f)) {
    e->last_train_seq = seq;
    log_info("models: automatic training job %llu started after %llu new events", (unsigned long long)id,
             (unsigned long long)e->cfg.train_every);
  }
}
