/* engine.c — engine lifecycle: open the store, load the catalog and users,
 * replay the event log into the live state, start the writer; and the small
 * shared lookups. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/engine_int.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"


void recd_fail_set(recd_fail *f, int status, const char *code, long index, const char *field, const char *fmt,
                   ...) {
  f->status = status;
  snprintf(f->code, sizeof f->code, "%s", code);
  f->index = index;
  snprintf(f->field, sizeof f->field, "%s", field ? field : "");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(f->message, sizeof f->message, fmt, ap);
  va_end(ap);
}

const recd_config *engine_config(const recd_engine *e) { return &e->cfg; }

/* The user's profile is fetched while the key is compared: the profile
 * slot's miss overlaps the key entry's, the profile's the key bytes' (one
 * miss after another, the lookup and the profile were ~15% of a
 * recommendation at full size). */
uint32_t engine__find_user(recd_engine *e, const char *key, size_t len) {
  uint32_t h = strmap_hash(key, len);
  pthread_rwlock_rdlock(&e->users_lock);
  uint32_t guess = strmap_guess(&e->users, h);
  if (guess != STRMAP_NONE) {
    strmap_key_prefetch(&e->users, guess, 0);
    const char *p = ptrvec_get(&e->uprof, guess); /* its slot's miss beside the entry's */
    if (p) __builtin_prefetch(p);
  }
  uint32_t id = strmap_find_hashed(&e->users, key, len, h);
  pthread_rwlock_unlock(&e->users_lock);
  return id;
}

uint32_t engine__find_item(recd_engine *e, const char *key, size_t len) {
  pthread_rwlock_rdlock(&e->items_lock);
  uint32_t id = strmap_find(&e->items, key, len);
  pthread_rwlock_unlock(&e->items_lock);
  return id;
}

/* The engine clock: the latest event time, so that decays and windows work
 * the same on a live stream and on imported history; never ahead of the wall
 * clock (events may carry times up to 24 h ahead). */
int64_t engine__now(recd_engine *e) {
  int64_t t = atomic_load(&e->now_ms), wall = clock_now_ms();
  return t && t < wall ? t : wall;
}

/* ---- loading ---- */

static int load_type(void *arg, uint32_t tid, const char *name, size_t len) {
  recd_engine *e = arg;
  if (tid >= 256) return RECD_ECORRUPT;
  int idx = -1;
  for (int i = 0; i < e->ntypes; i++)
    if (strlen(e->types[i].name) == len && !memcmp(e->types[i].name, name, len)) idx = i;
  if (idx < 0) {
    if (e->ntypes >= RECD_MAX_TYPES) return RECD_ETOOBIG;
    idx = e->ntypes++;
    snprintf(e->types[idx].name, sizeof e->types[idx].name, "%.*s", (int)len, name);
    e->types[idx].weight = 1.0f;
    log_warn("event type '%s' is in the log but not configured: replayed with weight 1, new events of it are refused",
             e->types[idx].name);
  }
  e->type_tid[idx] = (int)tid;
  e->tid_type[tid] = idx;
  return 0;
}

static int load_user(void *arg, uint32_t uid, const char *key, size_t len) {
  recd_engine *e = arg;
  uint32_t id = strmap_intern(&e->users, key, len, NULL);
  if (id != uid) {
    log_error("users table is not dense: uid %u for '%s' loaded as %u", uid, key, id);
    return RECD_ECORRUPT;
  }
  return 0;
}

/* parse a JSON array of strings into a list (strings borrowed from `arr`) */
static size_t json_strings(json_t *arr, const char **out, size_t cap) {
  size_t n = 0, i;
  json_t *v;
  json_array_foreach(arr, i, v) {
    if (json_is_string(v) && n < cap) out[n++] = json_string_value(v);
  }
  return n;
}

static int load_item(void *arg, const store_item *it) {
  recd_engine *e = arg;
  uint32_t id = strmap_intern(&e->items, it->key ? it->key : "", it->key ? strlen(it->key) : 0, NULL);
  if (id != it->iid) {
    log_error("items table is not dense: iid %u loaded as %u", it->iid, id);
    return RECD_ECORRUPT;
  }
  engine__item_stats(e, id, 1);
  if (!it->in_catalog && !it->deleted) return 0;
  json_t *cats = it->categories_json ? json_loads(it->categories_json, 0, NULL) : NULL;
  json_t *tags = it->tags_json ? json_loads(it->tags_json, 0, NULL) : NULL;
  const char *cv[ITEM_MAX_CATS], *tv[ITEM_MAX_TAGS];
  size_t nc = cats ? json_strings(cats, cv, ITEM_MAX_CATS) : 0;
  size_t nt = tags ? json_strings(tags, tv, ITEM_MAX_TAGS) : 0;
  engine__apply_item(e, id, cv, nc, tv, nt, it->available, it->deleted, it->created_at_ms, it->properties_json);
  json_decref(cats);
  json_decref(tags);
  return 0;
}

/* Replay applies the log in chunks through engine__apply_events (which
 * prefetches across events); session ids are copied, as the store's strings
 * last only for the callback. */
#define REPLAY_CHUNK 131072

typedef struct {
  recd_engine *e;
  uint64_t n;
  int64_t t0;
  engine_apply_ev ev[REPLAY_CHUNK];
  size_t nev;
  arena strings;        /* the chunk's session ids */
} replay_ctx;

static void replay_flush(replay_ctx *r) {
  engine__apply_events(r->e, r->ev, r->nev);
  r->nev = 0;
  arena_reset(&r->strings);
}

static int replay_event(void *arg, const store_event *ev) {
  replay_ctx *r = arg;
  recd_engine *e = r->e;
  if (ev->tid < 0 || ev->tid >= 256 || e->tid_type[ev->tid] < 0) {
    log_error("event %llu has unknown type id %d", (unsigned long long)ev->seq, ev->tid);
    return RECD_ECORRUPT;
  }
  if (ev->uid >= strmap_count(&e->users) || ev->iid >= strmap_count(&e->items)) {
    log_error("event %llu names an unknown user or item", (unsigned long long)ev->seq);
    return RECD_ECORRUPT;
  }
  int type = e->tid_type[ev->tid];
  r->ev[r->nev++] = (engine_apply_ev){.uid = ev->uid,
                                      .iid = ev->iid,
                                      .type = type,
                                      .ts = ev->ts_ms,
                                      .session = ev->session ? arena_strndup(&r->strings, ev->session,
                                                                             strlen(ev->session))
                                                             : NULL};
  if (r->nev == REPLAY_CHUNK) replay_flush(r);
  atomic_fetch_add(&e->by_type[type], 1);
  e->next_seq = ev->seq;
  if (++r->n % 1000000 == 0)
    log_info("replayed %llu events (%.0f/s)", (unsigned long long)r->n,
             r->n / ((clock_mono_ns() - r->t0) / 1e9));
  return 0;
}

static recd_engine *engine_alloc(const recd_config *cfg) {
  recd_engine *e = xcalloc(1, sizeof *e);
  e->cfg = *cfg;
  e->started_ms = clock_now_ms();
  pthread_rwlock_init(&e->users_lock, NULL);
  pthread_rwlock_init(&e->items_lock, NULL);
  pthread_rwlock_init(&e->content_lock, NULL);
  for (int i = 0; i < NSTRIPES; i++) {
    pthread_mutex_init(&e->ustripe[i], NULL);
    pthread_mutex_init(&e->istripe[i], NULL);
  }
  pthread_mutex_init(&e->trend_lock, NULL);
  pthread_mutex_init(&e->models_lock, NULL);
  pthread_mutex_init(&e->train_lock, NULL);
  pthread_mutex_init(&e->trend_build, NULL);
  pthread_mutex_init(&e->tr_lock, NULL);
  pthread_cond_init(&e->tr_cond, NULL);
  pthread_mutex_init(&e->q_lock, NULL);
  pthread_mutex_init(&e->scratch_lock, NULL);
  pthread_mutex_init(&e->mem_lock, NULL);
  pthread_cond_init(&e->mem_cond, NULL);
  pthread_condattr_t ca; /* the store stage's commit delay waits on the monotonic clock */
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&e->q_cond, &ca);
  pthread_condattr_destroy(&ca);
  e->q_wake_units = 1;
  pthread_mutex_init(&e->a_lock, NULL);
  pthread_cond_init(&e->a_cond, NULL);
  pthread_mutex_init(&e->round_lock, NULL);
  strmap_init(&e->users);
  strmap_init(&e->items);
  ptrvec_init(&e->uprof);
  ptrvec_init(&e->istats);
  ptrvec_init(&e->covis);
  ptrvec_init(&e->irule);
  content_init(&e->content);
  memset(e->tid_type, 0xff, sizeof e->tid_type);
  memcpy(e->types, cfg->types, sizeof e->types);
  e->ntypes = cfg->ntypes;
  for (int i = 0; i < RECD_MAX_TYPES; i++) e->type_tid[i] = -1;

  e->upp = (userprof_params){.affinity_half_life_ms = cfg->affinity_half_life_ms,
                             .engagement_half_life_ms = cfg->engagement_half_life_ms,
                             .recent_cap = cfg->recent_items,
                             .click_type = TYPE_CLICK,
                             .purchase_type = TYPE_PURCHASE};
  e->ipp = (itemstats_params){.popularity_half_life_ms = cfg->popularity_half_life_ms};
  e->cvp = (covis_params){.max_neighbors = cfg->covis_max_neighbors, .half_life_ms = cfg->covis_half_life_ms};

  return e;
}

void engine__covis_each(recd_engine *e, void (*fn)(covis_list *)) {
  size_t n = strmap_count(&e->items);
  for (size_t i = 0; i < n; i++) {
    covis_list *l = ptrvec_get(&e->covis, (uint32_t)i);
    if (l) fn(l);
  }
}

/* solo: nothing but the writer reads the state (see engine_int.h); leaving it
 * settles the co-visitation lists its lazy apply left */
static void set_solo(recd_engine *e, int solo) {
  if (!solo && e->cvp.lazy) engine__covis_each(e, covis_settle);
  e->solo = solo;
  e->cvp.lazy = solo;
}

static int open_engine(const recd_config *cfg, int use_snapshot, recd_engine **out, char *err, size_t errlen) {
  *out = NULL;
  recd_engine *e = engine_alloc(cfg);
  /* Nothing reads the state while it is loaded and the log replayed (the
   * server starts after engine_open), and a bulk load has no readers at all
   * (no server, no training job to start): the apply takes no stripe locks. */
  set_solo(e, 1);
  engine__apply_start(e);
  int rc = store_open(cfg->data, cfg->fsync, &e->st, err, errlen);
  if (rc) goto fail;
  if (cfg->bulk_load && (rc = store_bulk_begin(e->st))) goto store_fail;
  int64_t t0 = clock_mono_ns();
  if ((rc = store_load_types(e->st, load_type, e))) {
    snprintf(err, errlen, "loading event types from %s: %s", store_path(e->st), recd_strerror(rc));
    goto fail;
  }
  /* give configured types that the log has not seen yet a tid */
  int maxtid = -1;
  for (int i = 0; i < 256; i++)
    if (e->tid_type[i] >= 0) maxtid = i;
  if ((rc = store_begin(e->st))) goto store_fail;
  for (int i = 0; i < e->ntypes; i++) {
    if (e->type_tid[i] >= 0) continue;
    e->type_tid[i] = ++maxtid;
    e->tid_type[maxtid] = i;
    if ((rc = store_put_type(e->st, maxtid, e->types[i].name))) goto store_fail;
  }
  if ((rc = store_commit(e->st))) goto store_fail;
  if ((rc = store_load_users(e->st, load_user, e)) || (rc = store_load_items(e->st, load_item, e))) {
    snprintf(err, errlen, "loading %s: %s", store_path(e->st), recd_strerror(rc));
    goto fail;
  }
  if ((rc = store_last_seq(e->st, &e->next_seq_stored))) {
    snprintf(err, errlen, "reading %s: %s", store_path(e->st), recd_strerror(rc));
    goto fail;
  }
  /* the newest snapshot, then the log after it */
  uint64_t from = 0;
  char why[256] = "snapshots are off (snapshot_every = 0)";
  int snap = use_snapshot && cfg->snapshot_every ? engine__snapshot_load(e, &from, why, sizeof why) : 0;
  if (snap < 0) {
    log_warn("snapshot: %s; replaying the whole log instead", why);
    engine_free(e);
    return open_engine(cfg, 0, out, err, errlen);
  }
  if (snap) log_info("snapshot: loaded the state at event %llu in %.2f s", (unsigned long long)from, (clock_mono_ns() - t0) / 1e9);
  else if (e->next_seq_stored) log_info("snapshot: not used (%s); replaying the whole log", why);
  e->last_snap_seq = from;
  replay_ctx *r = xmalloc(sizeof *r);
  r->e = e;
  r->n = 0;
  r->nev = 0;
  r->t0 = clock_mono_ns();
  arena_init(&r->strings);
  rc = store_scan_events(e->st, from, replay_event, r);
  if (!rc) replay_flush(r);
  uint64_t replayed = r->n;
  e->open_apply_ns = (uint64_t)(clock_mono_ns() - r->t0); /* the tail no snapshot holds yet */
  atomic_store(&e->apply_ns, e->open_apply_ns);
  arena_release(&r->strings);
  free(r);
  engine__apply_trim(e); /* the replay's big chunks' working memory: rounds are smaller */
  store_release_memory(e->st); /* the id loads' and the replay's pages: commits need few */
  if (rc) {
    snprintf(err, errlen, "replaying the event log of %s: %s", store_path(e->st), recd_strerror(rc));
    goto fail;
  }
  set_solo(e, cfg->bulk_load && !cfg->train_every);
  atomic_fetch_add(&e->n_events, replayed);
  if (e->next_seq_stored > e->next_seq) e->next_seq = e->next_seq_stored;
  atomic_store(&e->committed_seq, e->next_seq);
  log_info("loaded %zu users, %zu items, %llu events (%llu replayed) from %s in %.2f s", strmap_count(&e->users),
           strmap_count(&e->items), (unsigned long long)atomic_load(&e->n_events), (unsigned long long)replayed,
           store_path(e->st), (clock_mono_ns() - t0) / 1e9);
  engine__models_open(e);
  e->last_train_seq = e->next_seq;
  e->opened = 1;
  if ((rc = engine__writer_start(e))) {
    snprintf(err, errlen, "cannot start the writer thread: %s", recd_strerror(rc));
    goto fail;
  }
  *out = e;
  return 0;
store_fail:
  snprintf(err, errlen, "writing %s: %s", store_path(e->st), recd_strerror(rc));
fail:
  engine_free(e);
  return rc ? rc : RECD_EINVAL;
}

/* A replay engine for replaying the log point-in-time (the ranker's training
 * data): the live engine's configuration, event types, users and catalog,
 * read through a second read-only connection; no events applied, no writer,
 * no snapshots, no models. The caller applies events with
 * engine__replay_events() and frees it with engine_free(). */
recd_engine *engine__replay_open(recd_engine *live, char *err, size_t errlen) {
  recd_engine *e = engine_alloc(&live->cfg);
  e->cfg.train_every = 0;
  e->cfg.snapshot_every = 0;
  memcpy(e->types, live->types, sizeof e->types);
  e->ntypes = live->ntypes;
  memcpy(e->type_tid, live->type_tid, sizeof e->type_tid);
  memcpy(e->tid_type, live->tid_type, sizeof e->tid_type);
  int rc = store_open_reader(live->cfg.data, &e->st, err, errlen);
  if (!rc && ((rc = store_load_users(e->st, load_user, e)) || (rc = store_load_items(e->st, load_item, e))))
    snprintf(err, errlen, "loading the catalog for a replay: %s", recd_strerror(rc));
  if (rc) {
    engine_free(e);
    return NULL;
  }
  return e;
}

/* events are applied in chunks (the writer's prefetching batch path); the
 * caller's callback says when it needs the state up to an event, and the
 * chunk is applied first */
typedef struct {
  replay_ctx r;
  uint64_t upto;
  engine_replay_fn before;
  void *arg;
} replay_scan;

static int replay_scan_event(void *arg, const store_event *ev) {
  replay_scan *c = arg;
  recd_engine *e = c->r.e;
  if (ev->seq > c->upto) return RECD_ECANCELED;
  if (ev->tid < 0 || ev->tid >= 256 || e->tid_type[ev->tid] < 0 || ev->uid >= strmap_count(&e->users) ||
      ev->iid >= strmap_count(&e->items))
    return 0; /* users/items/types newer than the catalog read: past `upto` anyway */
  int type = e->tid_type[ev->tid];
  int rc = c->before ? c->before(c->arg, ev, type, 0) : 0;
  if (rc == ENGINE_REPLAY_NEED_STATE) {
    replay_flush(&c->r);
    rc = c->before(c->arg, ev, type, 1);
  }
  if (rc) return rc;
  c->r.ev[c->r.nev++] = (engine_apply_ev){
      .uid = ev->uid,
      .iid = ev->iid,
      .type = type,
      .ts = ev->ts_ms,
      .session = ev->session ? arena_strndup(&c->r.strings, ev->session, strlen(ev->session)) : NULL};
  if (c->r.nev == REPLAY_CHUNK) replay_flush(&c->r);
  e->next_seq = ev->seq;
  return 0;
}

int engine__replay_events(recd_engine *e, uint64_t upto, engine_replay_fn before, void *arg) {
  replay_scan *c = xcalloc(1, sizeof *c);
  c->r.e = e;
  arena_init(&c->r.strings);
  c->upto = upto;
  c->before = before;
  c->arg = arg;
  int rc = store_scan_events(e->st, 0, replay_scan_event, c);
  if (rc == RECD_ECANCELED) rc = 0;
  if (!rc) replay_flush(&c->r);
  arena_release(&c->r.strings);
  free(c);
  return rc;
}

int engine_open(const recd_config *cfg, recd_engine **out, char *err, size_t errlen) {
  return open_engine(cfg, 1, out, err, errlen);
}

/* stops every thread, writes the closing snapshot and closes the store */
static void shut_down(recd_engine *e) {
  engine__memory_stop(e);
  engine__warm_stop(e);
  engine__writer_stop(e);
  engine__apply_stop(e);
  engine__models_close(e);
  if (e->snap) engine__snapshot_end(e, 1); /* still running: the one below supersedes it */
  /* a clean stop leaves a snapshot of everything, so the next start replays nothing */
  if (e->opened && e->cfg.snapshot_every && !atomic_load(&e->fatal) && e->next_seq != e->last_snap_seq) {
    set_solo(e, 0); /* a bulk load's lists, settled before they are saved (the load would settle them too) */
    engine__snapshot_save(e);
  }
  store_close(e->st);
  e->st = NULL;
}

void engine_close(recd_engine *e) {
  if (!e) return;
#if defined(__SANITIZE_ADDRESS__)
  engine_free(e); /* leak checks see a clean exit, and the free path stays tested */
#else
  shut_down(e);
#endif
}

void engine_free(recd_engine *e) {
  if (!e) return;
  shut_down(e);
  for (size_t i = 0; i < strmap_count(&e->users); i++) userprof_free(ptrvec_get(&e->uprof, (uint32_t)i));
  for (size_t i = 0; i < strmap_count(&e->items); i++) {
    itemstats_free(ptrvec_get(&e->istats, (uint32_t)i));
    covis_free(ptrvec_get(&e->covis, (uint32_t)i));
  }
  ptrvec_release(&e->uprof);
  ptrvec_release(&e->istats);
  ptrvec_release(&e->covis);
  ptrvec_release(&e->irule);
  strmap_release(&e->users);
  strmap_release(&e->items);
  content_release(&e->content);
  trending_release(e->trend);
  engine__models_release(e->models);
  engine__models_release(e->prev_models);
  pthread_mutex_destroy(&e->models_lock);
  pthread_mutex_destroy(&e->train_lock);
  pthread_rwlock_destroy(&e->users_lock);
  pthread_rwlock_destroy(&e->items_lock);
  pthread_rwlock_destroy(&e->content_lock);
  for (int i = 0; i < NSTRIPES; i++) {
    pthread_mutex_destroy(&e->ustripe[i]);
    pthread_mutex_destroy(&e->istripe[i]);
  }
  pthread_mutex_destroy(&e->trend_lock);
  pthread_mutex_destroy(&e->trend_build);
  pthread_mutex_destroy(&e->tr_lock);
  pthread_cond_destroy(&e->tr_cond);
  pthread_mutex_destroy(&e->q_lock);
  engine__scratch_free_all(e);
  pthread_mutex_destroy(&e->scratch_lock);
  pthread_mutex_destroy(&e->mem_lock);
  pthread_cond_destroy(&e->mem_cond);
  pthread_cond_destroy(&e->q_cond);
  pthread_mutex_destroy(&e->a_lock);
  pthread_cond_destroy(&e->a_cond);
  pthread_mutex_destroy(&e->round_lock);
  free(e);
}

const double engine_sync_buckets[ENGINE_SYNC_NBUCKETS] = {0.0005, 0.001, 0.002, 0.004, 0.008, 0.016,
                                                          0.032,  0.064, 0.128, 0.256, 0.512, 1.024};

void engine_hist_add(engine_hist *h, int64_t ns) {
  double s = ns / 1e9;
  int b = 0;
  while (b < ENGINE_SYNC_NBUCKETS && s > engine_sync_buckets[b]) b++;
  atomic_fetch_add(&h->b[b], 1);
  atomic_fetch_add(&h->count, 1);
  atomic_fetch_add(&h->sum_us, (uint64_t)(ns > 0 ? ns / 1000 : 0));
}

void engine_hist_read(engine_hist *h, recd_hist *out) {
  for (int i = 0; i <= ENGINE_SYNC_NBUCKETS; i++) out->b[i] = atomic_load(&h->b[i]);
  out->count = atomic_load(&h->count);
  out->sum_s = atomic_load(&h->sum_us) / 1e6;
}

void engine_stats(recd_engine *e, recd_stats *s) {
  memset(s, 0, sizeof *s);
  pthread_rwlock_rdlock(&e->users_lock);
  s->users = strmap_count(&e->users);
  pthread_rwlock_unlock(&e->users_lock);
  pthread_rwlock_rdlock(&e->items_lock);
  s->items = strmap_count(&e->items);
  pthread_rwlock_unlock(&e->items_lock);
  s->catalog_items = atomic_load(&e->n_catalog);
  s->events = atomic_load(&e->n_events);
  pthread_mutex_lock(&e->q_lock);
  s->queue_depth = e->q_depth;
  s->last_seq = atomic_load(&e->committed_seq);
  pthread_mutex_unlock(&e->q_lock);
  s->commits = atomic_load(&e->n_commits);
  s->commit_waits = atomic_load(&e->n_commit_waits);
  s->fatal = (uint64_t)atomic_load(&e->fatal);
  for (int i = 0; i < RECD_MAX_TYPES; i++) s->events_by_type[i] = atomic_load(&e->by_type[i]);
  engine_hist_read(&e->sync, &s->sync);
  engine_hist_read(&e->write_queue, &s->write_queue);
  engine_hist_read(&e->write_apply, &s->write_apply);
  s->now_ms = engine__now(e);
  s->snapshots_ok = atomic_load(&e->snap_ok);
  s->snapshots_failed = atomic_load(&e->snap_failed);
  s->snapshot_last_s = atomic_load(&e->snap_last_us) / 1e6;
  s->snapshot_running = atomic_load(&e->snap) != NULL;
  s->snapshot_seq = atomic_load(&e->last_snap_seq);
  s->snapshot_lag_s = engine__replay_estimate_ns(e) / 1e9;
  s->writes_held_s = atomic_load(&e->held_ns) / 1e9;
}
