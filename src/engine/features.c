/* features.c — live features and catalog entries as JSON, exactly as the
 * recommender sees them now, plus the fixed-length numeric vectors for the
 * ranker. The vector layouts are documented in docs/api.md; change them only
 * together with that table. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_int.h"
#include "util/clock.h"
#include "util/decay.h"
#include "util/err.h"

static json_t *time_json(int64_t ms) {
  if (ms == INT64_MIN || ms == INT64_MAX) return json_null();
  char buf[40];
  clock_format_rfc3339(ms, buf, sizeof buf);
  return json_string(buf);
}

static json_t *vector_json(const char *const *names, const double *vals, size_t n) {
  json_t *nv = json_array(), *vv = json_array();
  for (size_t i = 0; i < n; i++) {
    json_array_append_new(nv, json_string(names[i]));
    json_array_append_new(vv, json_real(isfinite(vals[i]) ? vals[i] : 0));
  }
  return json_pack("{s:o,s:o}", "names", nv, "values", vv);
}

static json_t *counts_json(recd_engine *e, const uint32_t *counts) {
  json_t *o = json_object();
  for (int i = 0; i < e->ntypes; i++) json_object_set_new(o, e->types[i].name, json_integer(counts[i]));
  return o;
}

static const char *const user_vec_names[] = {
    "log1p_views", "log1p_clicks", "log1p_likes", "log1p_add_to_cart", "log1p_purchases", "log1p_total",
    "log1p_unique_items", "recency", "engagement_rate", "log1p_engagement_score", "days_since_first_seen",
    "days_since_last_seen", "top_category_share", "n_categories", "log1p_session_events"};
#define USER_VEC_N (sizeof user_vec_names / sizeof user_vec_names[0])

/* the user vector of a profile (caller holds the user's lock) */
static void user_vector(recd_engine *e, const userprof *p, int64_t now, double *v) {
  uint32_t clicks = p->counts[TYPE_CLICK], purchases = p->counts[TYPE_PURCHASE];
  double total_aff = 0, top = 0;
  for (int i = 0; i < p->naff; i++) {
    double a = userprof_affinity(p, i, now, e->cfg.affinity_half_life_ms);
    total_aff += a;
    if (a > top) top = a;
  }
  double escore = decay_read(p->eng_score, p->eng_t, now, e->cfg.engagement_half_life_ms);
  double vals[USER_VEC_N] = {log1p(p->counts[0]), log1p(p->counts[1]), log1p(p->counts[2]), log1p(p->counts[3]),
                             log1p(p->counts[4]), log1p(p->total), log1p(p->seen.count),
                             decay_factor(now - p->last_ts, e->cfg.recency_half_life_ms),
                             p->total ? (double)(clicks + purchases) / p->total : 0, log1p(escore),
                             (now - p->first_ts) / 86400000.0, (now - p->last_ts) / 86400000.0,
                             total_aff > 0 ? top / total_aff : 0, p->naff, log1p(p->session_events)};
  memcpy(v, vals, sizeof vals);
}

size_t engine__user_vector(recd_engine *e, uint32_t uid, int64_t now, float *out) {
  userprof *p = ptrvec_get(&e->uprof, uid);
  double v[USER_VEC_N];
  if (!p) return 0;
  pthread_mutex_t *l = engine__ulock(e, uid);
  pthread_mutex_lock(l);
  int have = p->total > 0;
  if (have) user_vector(e, p, now, v);
  pthread_mutex_unlock(l);
  if (!have) return 0;
  for (size_t i = 0; i < USER_VEC_N; i++) out[i] = (float)v[i];
  return USER_VEC_N;
}

const char *engine__user_vector_name(size_t i) { return i < USER_VEC_N ? user_vec_names[i] : NULL; }

json_t *engine_user_features(recd_engine *e, const char *user_id) {
  uint32_t uid = engine__find_user(e, user_id, strlen(user_id));
  userprof *p = uid == STRMAP_NONE ? NULL : ptrvec_get(&e->uprof, uid);
  if (!p) return NULL;
  int64_t now = engine__now(e);
  json_t *o = json_object();
  pthread_mutex_t *l = engine__ulock(e, uid);
  pthread_mutex_lock(l);
  if (!p->total) {
    pthread_mutex_unlock(l);
    json_decref(o);
    return NULL;
  }
  uint32_t clicks = p->counts[TYPE_CLICK], purchases = p->counts[TYPE_PURCHASE];
  double recency = decay_factor(now - p->last_ts, e->cfg.recency_half_life_ms);
  double erate = (double)(clicks + purchases) / p->total;
  double escore = decay_read(p->eng_score, p->eng_t, now, e->cfg.engagement_half_life_ms);
  json_object_set_new(o, "user_id", json_string(user_id));
  json_object_set_new(o, "counts", counts_json(e, p->counts));
  json_object_set_new(o, "total", json_integer(p->total));
  json_object_set_new(o, "unique_items", json_integer(p->seen.count));
  json_object_set_new(o, "first_seen", time_json(p->first_ts));
  json_object_set_new(o, "last_seen", time_json(p->last_ts));
  json_object_set_new(o, "recency", json_real(recency));
  json_object_set_new(o, "engagement_rate", json_real(erate));
  json_object_set_new(o, "engagement_score", json_real(escore));
  json_t *recent = json_array();
  for (int i = 0;; i++) {
    const recent_ev *r = userprof_recent(p, i);
    if (!r) break;
    json_array_append_new(recent, json_pack("{s:s,s:s,s:o}", "item_id", engine__item_key(e, r->iid), "event_type",
                                            e->types[r->type].name, "timestamp", time_json(r->ts)));
  }
  json_object_set_new(o, "recent_items", recent);
  json_t *aff = json_object();
  double top = 0;
  pthread_rwlock_rdlock(&e->content_lock);
  for (int i = 0; i < p->naff; i++) {
    double a = userprof_affinity(p, i, now, e->cfg.affinity_half_life_ms);
    if (a > top) top = a;
    json_object_set_new(aff, content_category_name(&e->content, p->aff[i].cat), json_real(a));
  }
  pthread_rwlock_unlock(&e->content_lock);
  json_object_set_new(o, "category_affinity", aff);
  json_t *purchased = json_array();
  for (uint32_t i = 0; i < p->seen.cap; i++)
    if (p->seen.keys[i] != U32MAP_EMPTY && (p->seen.vals[i] & (1u << TYPE_PURCHASE)))
      json_array_append_new(purchased, json_string(engine__item_key(e, p->seen.keys[i])));
  json_object_set_new(o, "purchased", purchased);
  json_object_set_new(o, "session",
                      json_pack("{s:s?,s:o,s:o,s:i,s:i}", "session_id", p->session, "started", time_json(p->session_start),
                                "last_event", time_json(p->session_last), "events", (json_int_t)p->session_events,
                                "sessions", (json_int_t)p->sessions));
  double v[USER_VEC_N];
  user_vector(e, p, now, v);
  pthread_mutex_unlock(l);
  json_object_set_new(o, "vector", vector_json(user_vec_names, v, USER_VEC_N));
  return o;
}

static const char *const item_vec_names[] = {
    "log1p_views", "log1p_clicks", "log1p_likes", "log1p_add_to_cart", "log1p_purchases", "log1p_popularity",
    "ctr", "conversion", "age_days", "days_since_last_event", "log1p_events_in_window", "available"};
#define ITEM_VEC_N (sizeof item_vec_names / sizeof item_vec_names[0])

/* smoothing of click-through and conversion: Beta prior of 10 pseudo-views */
#define RATIO_K 10.0
#define CTR_PRIOR 0.1
#define CONV_PRIOR 0.02

static void cats_tags(recd_engine *e, const itemstats *s, json_t *o) {
  json_t *c = json_array(), *t = json_array();
  pthread_rwlock_rdlock(&e->content_lock);
  for (int i = 0; i < s->ncats; i++) json_array_append_new(c, json_string(content_category_name(&e->content, s->cats[i])));
  for (int i = 0; i < s->ntags; i++) json_array_append_new(t, json_string(content_tag_name(&e->content, s->tags[i])));
  pthread_rwlock_unlock(&e->content_lock);
  json_object_set_new(o, "categories", c);
  json_object_set_new(o, "tags", t);
}

/* the item vector of a stats entry (caller holds the item's lock) */
static void item_vector(recd_engine *e, const itemstats *s, int64_t now, double *v) {
  uint32_t views = s->counts[TYPE_VIEW];
  double pop = itemstats_popularity(s, now, e->cfg.popularity_half_life_ms);
  int64_t born = s->created_at != INT64_MIN ? s->created_at : s->first_ts;
  double vals[ITEM_VEC_N] = {log1p(s->counts[0]), log1p(s->counts[1]), log1p(s->counts[2]), log1p(s->counts[3]),
                             log1p(s->counts[4]), log1p(pop),
                             itemstats_ratio(s->counts[TYPE_CLICK], views, CTR_PRIOR, RATIO_K),
                             itemstats_ratio(s->counts[TYPE_PURCHASE], views, CONV_PRIOR, RATIO_K),
                             born == INT64_MAX || born > now ? 0 : (now - born) / 86400000.0,
                             s->last_ts == INT64_MIN ? -1 : (now - s->last_ts) / 86400000.0,
                             log1p(itemstats_window(s, now, (int)(e->cfg.trending_window_ms / 86400000), 0)),
                             s->available};
  memcpy(v, vals, sizeof vals);
}

void engine__item_vector_locked(recd_engine *e, const itemstats *s, int64_t now, float *out) {
  double v[ITEM_VEC_N];
  item_vector(e, s, now, v);
  for (size_t i = 0; i < ITEM_VEC_N; i++) out[i] = (float)v[i];
}

const char *engine__item_vector_name(size_t i) { return i < ITEM_VEC_N ? item_vec_names[i] : NULL; }

json_t *engine_item_features(recd_engine *e, const char *item_id) {
  uint32_t iid = engine__find_item(e, item_id, strlen(item_id));
  itemstats *s = iid == STRMAP_NONE ? NULL : ptrvec_get(&e->istats, iid);
  if (!s) return NULL;
  int64_t now = engine__now(e);
  json_t *o = json_object();
  pthread_mutex_t *l = engine__ilock(e, iid);
  pthread_mutex_lock(l);
  if (s->deleted) {
    pthread_mutex_unlock(l);
    json_decref(o);
    return NULL;
  }
  uint32_t views = s->counts[TYPE_VIEW];
  double pop = itemstats_popularity(s, now, e->cfg.popularity_half_life_ms);
  double ctr = itemstats_ratio(s->counts[TYPE_CLICK], views, CTR_PRIOR, RATIO_K);
  double conv = itemstats_ratio(s->counts[TYPE_PURCHASE], views, CONV_PRIOR, RATIO_K);
  int64_t born = s->created_at != INT64_MIN ? s->created_at : s->first_ts;
  double age = born == INT64_MAX || born > now ? 0 : (now - born) / 86400000.0;
  double win = itemstats_window(s, now, (int)(e->cfg.trending_window_ms / 86400000), 0);
  json_object_set_new(o, "item_id", json_string(item_id));
  json_object_set_new(o, "counts", counts_json(e, s->counts));
  json_object_set_new(o, "popularity", json_real(pop));
  json_object_set_new(o, "events_in_window", json_real(win));
  json_object_set_new(o, "ctr", json_real(ctr));
  json_object_set_new(o, "conversion", json_real(conv));
  json_object_set_new(o, "first_event", time_json(s->first_ts));
  json_object_set_new(o, "last_event", time_json(s->last_ts));
  json_object_set_new(o, "age_days", json_real(age));
  json_object_set_new(o, "available", json_boolean(s->available));
  json_object_set_new(o, "in_catalog", json_boolean(s->in_catalog));
  cats_tags(e, s, o);
  double v[ITEM_VEC_N];
  item_vector(e, s, now, v);
  pthread_mutex_unlock(l);
  json_object_set_new(o, "vector", vector_json(item_vec_names, v, ITEM_VEC_N));
  return o;
}

json_t *engine_item_get(recd_engine *e, const char *item_id) {
  uint32_t iid = engine__find_item(e, item_id, strlen(item_id));
  itemstats *s = iid == STRMAP_NONE ? NULL : ptrvec_get(&e->istats, iid);
  if (!s) return NULL;
  json_t *o = json_object();
  pthread_mutex_t *l = engine__ilock(e, iid);
  pthread_mutex_lock(l);
  if (s->deleted) {
    pthread_mutex_unlock(l);
    json_decref(o);
    return NULL;
  }
  json_object_set_new(o, "item_id", json_string(item_id));
  cats_tags(e, s, o);
  json_object_set_new(o, "available", json_boolean(s->available));
  json_object_set_new(o, "created_at", time_json(s->created_at));
  json_object_set_new(o, "properties", s->properties ? json_loads(s->properties, 0, NULL) : json_object());
  json_object_set_new(o, "in_catalog", json_boolean(s->in_catalog));
  pthread_mutex_unlock(l);
  return o;
}
