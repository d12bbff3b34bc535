/* engine_int.h — the engine's private state, shared by the files of src/engine.
 *
 * Locking (never nested except where stated, so no lock order can deadlock):
 *  - users_lock / items_lock (rwlock): the id maps. Only the writer thread
 *    inserts (under the write lock); everybody else looks up under the read lock.
 *  - ustripe[h(uid)] guards that user's profile; istripe[h(iid)] guards the
 *    item's stats, catalog entry and co-visitation list.
 *  - content_lock (rwlock) guards the content index.
 *  - trend_lock guards the `trend` pointer only; a trending snapshot is
 *    immutable and reference-counted. trend_build serialises rebuilds.
 *  - q_lock guards the write queue; a_lock the committed rounds between the
 *    writer's two stages; round_lock is held by the store stage for a whole
 *    round (the apply stage takes it only to fork a snapshot). q_lock and
 *    a_lock are never held together; round_lock may be held while taking a_lock.
 * Profiles, stats and lists are created by the writer and never freed before
 * engine_free(), so a pointer from ptrvec_get() stays valid. */
#ifndef RECD_ENGINE_ENGINE_INT_H
#define RECD_ENGINE_ENGINE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "engine/engine.h"
#include "feature/itemstats.h"
#include "feature/userprof.h"
#include "model/content.h"
#include "model/covis.h"
#include "model/popularity.h"
#include "store/store.h"
#include "util/ptrvec.h"
#include "util/strmap.h"

#define NSTRIPES 1024
#define TYPE_VIEW 0
#define TYPE_CLICK 1
#define TYPE_LIKE 2
#define TYPE_CART 3
#define TYPE_PURCHASE 4

/* an immutable, reference-counted production model (models.c) */
typedef struct model_set {
  int refs;                       /* atomic */
  uint64_t version;
  char kind[16];                  /* "ials" | "ease" | "ranker" */
  struct ials_model *ials;        /* the retrieval model: one of ials, ease */
  struct ease_model *ease;
  struct ranker *ranker;          /* kind "ranker": reranks the blend's top candidates */
  float ranker_prior;             /* the prior strength it was trained with (meta ranker.params.prior) */
  /* the items iALS scores per request, fixed when the set is made: NULL for
   * all of them, or for a catalog over mf_scan_items the most popular */
  uint32_t *scan;
  size_t nscan;
  json_t *meta;
} model_set;

struct recd_engine {
  recd_config cfg;
  store *st;
  int64_t started_ms;

  /* event types: cfg.types first, then retired types found only in the log */
  recd_event_type types[RECD_MAX_TYPES];
  int ntypes;
  int type_tid[RECD_MAX_TYPES];  /* type index -> store tid */
  int tid_type[256];             /* store tid -> type index, -1 unknown */

  pthread_rwlock_t users_lock, items_lock;
  strmap users, items;
  ptrvec uprof, istats, covis;
  ptrvec irule; /* per item: its rule word, an integer in a pointer's slot (engine__item_rule) */
  pthread_mutex_t ustripe[NSTRIPES], istripe[NSTRIPES];

  pthread_rwlock_t content_lock;
  content_index content;

  pthread_mutex_t trend_lock, trend_build;
  trending *trend;
  _Atomic uint64_t version;      /* bumped by every applied write */
  _Atomic int64_t last_build_ms;
  /* large catalogs: trending is rebuilt by a thread of its own (recommend.c) */
  pthread_t trender;
  int trender_started, trender_stop;
  pthread_t warmer;               /* engine_warm's content-memo thread (recommend.c) */
  int warmer_started;
  _Atomic int warm_stop;
  pthread_mutex_t tr_lock;
  pthread_cond_t tr_cond;

  userprof_params upp;
  itemstats_params ipp;
  covis_params cvp;

  /* writer: two threads in a pipeline (writer.c). The store stage (`writer`)
   * writes and commits round N+1 while the apply stage (`applier`) applies
   * round N and completes its ops. */
  pthread_t writer, applier;
  int writer_started;
  pthread_mutex_t q_lock;
  pthread_cond_t q_cond;
  engine_op *q_head, *q_tail;
  size_t q_depth;
  size_t q_units;                 /* events, items and other ops queued (op_units) */
  size_t q_wake_units;            /* engine_submit wakes the store stage once q_units reaches
                                   * this: 1, or COMMIT_BATCH_UNITS while it waits out a
                                   * commit delay (writer.c) */
  int stopping;
  _Atomic int fatal;
  uint64_t next_seq;              /* store stage only (after open) */
  uint64_t next_seq_stored;       /* last seq in the database at open */
  uint64_t applied_seq;           /* apply stage only (see `applying`): last seq applied to the live state */
  uint64_t applied_users, applied_items; /* apply stage only: the ids interned by the rounds up to applied_seq */
  pthread_mutex_t a_lock;         /* guards the committed rounds below */
  pthread_cond_t a_cond;
  struct write_round *a_head, *a_tail;  /* committed (or failed), not yet applied and completed */
  int a_pending;                  /* rounds handed over and not yet completed */
  int applying;                   /* the apply stage is at work (a round, or the ticks after
                                   * rounds): whoever set it is the apply stage until it clears it */
  int ticks_due;                  /* a round was applied by the store stage: the apply thread
                                   * runs the between-rounds work (snapshot_tick, train_tick) */
  int a_stop;                     /* the store stage has exited */
  int hold_writes;                /* the store stage takes no new round: the events since the
                                   * newest snapshot would take longer than snapshot_max_replay
                                   * to replay, and a snapshot is being written (writer.c) */
  int hold_off;                   /* stopping: no more holds */
  long long test_commits_left;    /* store stage: commits before they fail (a test knob); -1: off */
  pthread_mutex_t round_lock;     /* held by the store stage during a round; a fork takes it */
  struct apply_par *par;          /* the apply helper thread (writer.c), NULL if none */
  int solo;                       /* nothing but the writer reads the live state (a bulk load
                                   * that starts no training): the apply takes no stripe locks
                                   * (its two threads own disjoint stripes anyway), and the
                                   * co-visitation lists' top sets are settled only at its end
                                   * (cvp.lazy; set_solo in engine.c) */
  /* snapshots: written by the apply stage only; the atomics are read by
   * engine_stats too */
  struct snap_marks *_Atomic snap; /* running background snapshot (snapshot.c), NULL if none: set and
                                   * cleared by the apply stage between rounds */
  _Atomic uint64_t last_snap_seq; /* the newest snapshot's event */
  _Atomic uint64_t apply_ns;      /* time spent applying events since open (the replay's included):
                                   * the estimate of what replaying them would take */
  _Atomic uint64_t snap_apply_ns; /* apply_ns when the newest snapshot's event had been applied */
  uint64_t open_apply_ns;         /* apply_ns at the end of open: the replay's time */
  _Atomic uint64_t held_ns;       /* time the store stage held writes (hold_writes) */
  _Atomic uint64_t snap_ok, snap_failed, snap_last_us;
  int opened;                     /* engine_open finished: state is whole */
  _Atomic uint64_t committed_seq; /* last durable seq, for readers */

  /* learned models */
  pthread_mutex_t models_lock;    /* guards the `models` pointer and version numbers */
  pthread_mutex_t train_lock;     /* one training at a time */
  model_set *models;              /* production, or NULL */
  model_set *prev_models;         /* the previous production, kept loaded for an instant rollback */
  uint64_t model_next_version;
  pthread_t job_thread;           /* the background training job, if any */
  int job_started;                /* a thread to join */
  uint64_t job_id;                /* last job started (0: none) */
  int job_status;                 /* 0 running, 1 succeeded, 2 failed */
  json_t *job_result;             /* meta or error, under models_lock */
  recd_train_request job_rq;
  uint64_t last_train_seq;

  /* counters */
  _Atomic uint64_t n_events, n_commits, n_catalog;
  _Atomic uint64_t n_commit_waits; /* rounds that waited for more writes (commit_delay_wait) */
  _Atomic uint64_t by_type[RECD_MAX_TYPES];
  engine_hist sync, write_queue, write_apply; /* see recd_stats */
  _Atomic int64_t now_ms;        /* latest event time seen */
  _Atomic uint64_t rec_counter;

  /* bumped after every catalog change is applied (content index and the item's
   * categories/tags): content-similarity memos older than it are recomputed */
  _Atomic uint64_t content_version;
  /* the memory walks' thread and its last result (memory.c), under mem_lock */
  pthread_mutex_t mem_lock;
  pthread_cond_t mem_cond;
  pthread_t mem_thread;
  int mem_started, mem_want;
  _Atomic int mem_stop;
  recd_memory mem_last;
  /* request working memory (recommend.c): a free list reused by request threads */
  pthread_mutex_t scratch_lock;
  struct rec_scratch *scratch;
};

static inline pthread_mutex_t *engine__ulock(recd_engine *e, uint32_t uid) {
  return &e->ustripe[(uid * 2654435761u) >> 22 & (NSTRIPES - 1)];
}
static inline pthread_mutex_t *engine__ilock(recd_engine *e, uint32_t iid) {
  return &e->istripe[(iid * 2654435761u) >> 22 & (NSTRIPES - 1)];
}
/* An item's rule word: what a recommendation's rule check reads for every
 * candidate it looks at, in one dense array, without the item's lock or a
 * pointer to follow (the statistics behind istats cost two dependent cache
 * misses per candidate): IRULE_OK when the item is available and not deleted
 * (0 before it exists), and its first category (or UINT32_MAX) in the high 32
 * bits. The writer stores it (release) after the fields it mirrors, before
 * the write is acknowledged. */
#define IRULE_OK 1u
_Static_assert(sizeof(void *) == sizeof(uint64_t), "a rule word fits a pointer's slot");
static inline uint64_t engine__item_rule(const recd_engine *e, uint32_t iid) {
  return (uint64_t)(uintptr_t)ptrvec_get(&e->irule, iid);
}
void engine__item_rule_set(recd_engine *e, uint32_t iid, const itemstats *s);

/* tell a thread that waits on (l, c) to end: its stop flag set under l */
static inline void engine__signal_stop(pthread_mutex_t *l, pthread_cond_t *c, int *flag) {
  pthread_mutex_lock(l);
  *flag = 1;
  pthread_cond_broadcast(c);
  pthread_mutex_unlock(l);
}
/* fn on every co-visitation list: covis_settle when a lazy apply ends,
 * covis_canonicalize in tests that compare snapshots of states built lazily
 * and eagerly. Nothing else may run. */
void engine__covis_each(recd_engine *e, void (*fn)(covis_list *));

/* a stripe lock as the event apply takes it: none while e->solo, unless a
 * background snapshot reads the state (e->snap only changes between rounds) */
static inline void engine__stripe_lock(const recd_engine *e, pthread_mutex_t *m) {
  if (!e->solo || e->snap) pthread_mutex_lock(m);
}
static inline void engine__stripe_unlock(const recd_engine *e, pthread_mutex_t *m) {
  if (!e->solo || e->snap) pthread_mutex_unlock(m);
}

uint32_t engine__find_user(recd_engine *e, const char *key, size_t len);
uint32_t engine__find_item(recd_engine *e, const char *key, size_t len);
/* A list's item ids and reasons read a dozen keys or more per request:
 * without items_lock (strmap_key needs none for an existing id; the lock's
 * reader count, taken per key, was a line the request threads passed between
 * them) */
static inline const char *engine__item_key(recd_engine *e, uint32_t iid) { return strmap_key(&e->items, iid); }
int64_t engine__now(recd_engine *e);

/* writer.c */
int engine__writer_start(recd_engine *e);
void engine__writer_stop(recd_engine *e);
/* the apply time of the events after the newest snapshot: what a crash's replay would take (writer.c) */
uint64_t engine__replay_estimate_ns(const recd_engine *e);
/* one event as the live state sees it (ids interned) */
typedef struct {
  uint32_t uid, iid;
  int type;                 /* type index */
  int64_t ts;
  const char *session;      /* NULL if none; read during the call only */
} engine_apply_ev;
void engine__apply_event(recd_engine *e, uint32_t uid, uint32_t iid, int type, int64_t ts, const char *session);
/* The same as engine__apply_event on each, in order, with the same result, but
 * faster: prefetching, and big batches on two threads. One caller at a time
 * (engine_open, then the writer's apply stage). */
void engine__apply_events(recd_engine *e, const engine_apply_ev *ev, size_t n);
/* the apply helper thread (engine_open starts it before replaying, engine_free
 * stops it after the writer); without it everything is applied on one thread */
int engine__apply_start(recd_engine *e);
void engine__apply_stop(recd_engine *e);
/* frees the two-thread apply's working memory (tens of MB after replaying
 * 131,072-event chunks); call between batches only */
void engine__apply_trim(recd_engine *e);
void engine__apply_item(recd_engine *e, uint32_t iid, const char **cats, size_t ncats, const char **tags,
                        size_t ntags, int available, int deleted, int64_t created_at, const char *props);
itemstats *engine__item_stats(recd_engine *e, uint32_t iid, int create);
userprof *engine__user_prof(recd_engine *e, uint32_t uid, int create);

/* snapshot.c */
uint64_t engine__fingerprint(const recd_engine *e);
int engine__snapshot_save(recd_engine *e);
/* The background snapshot (snapshot.c, invariant 2). The apply stage starts
 * it between rounds with the store stage parked, polls it, and ends it. */
typedef struct snap_marks {
  uint64_t nusers, nitems;        /* the records it writes: ids below these */
  uint8_t *umark, *imark;         /* per record, set under its stripe lock: 1 = written or kept */
} snap_marks;
typedef struct snap_run snap_run; /* begins with its snap_marks */
/* the state as of event seq, whose rounds had interned nusers users and
 * nitems items (the store stage may have interned more since, for rounds
 * not applied yet: their ids are not in this snapshot) */
int engine__snapshot_start(recd_engine *e, uint64_t seq, uint64_t nusers, uint64_t nitems);
/* its thread is finished (it wakes the apply stage then: writes may be held for it) */
int engine__snapshot_done(const recd_engine *e);
/* wait for it (asked to stop first with `abort`), count and log how it went */
void engine__snapshot_end(recd_engine *e, int abort);
/* with the record's stripe lock held, before the first change to it while a
 * snapshot runs: its record as it is goes to the snapshot (called by engine__keep_*) */
void engine__snap_keep(recd_engine *e, uint32_t id, int user);
static inline void engine__keep_user(recd_engine *e, uint32_t uid) {
  snap_marks *m = e->snap;
  if (m && uid < m->nusers && !m->umark[uid]) engine__snap_keep(e, uid, 1);
}
static inline void engine__keep_item(recd_engine *e, uint32_t iid) {
  snap_marks *m = e->snap;
  if (m && iid < m->nitems && !m->imark[iid]) engine__snap_keep(e, iid, 0);
}
int engine__snapshot_load(recd_engine *e, uint64_t *seq, char *why, size_t whylen);

/* models.c */
model_set *engine__models(recd_engine *e);  /* retained production set or NULL */
void engine__models_release(model_set *m);
void engine__models_open(recd_engine *e);
void engine__models_close(recd_engine *e);  /* joins a running training job */
void engine__train_tick(recd_engine *e);    /* apply thread: automatic training */
int engine__train_due(const recd_engine *e); /* the apply stage: train_tick would start a job */
size_t engine__model_topk(const model_set *m, const uint32_t *among, size_t namong, const uint32_t *items,
                          const float *r, size_t n, size_t k,
                          int (*skip)(void *arg, uint32_t item), void *arg, uint32_t *out, float *scores);

/* engine.c: replay engines for point-in-time replays (rankdata.c) */
recd_engine *engine__replay_open(recd_engine *live, char *err, size_t errlen);
/* Apply the log's events with seq <= upto, in order, in chunks. `before`
 * (may be NULL) sees each event before it is applied; with `current` 0 the
 * state may lag behind (events not yet applied); it returns
 * ENGINE_REPLAY_NEED_STATE to be called again with the state exactly as of
 * just before this event (current 1), 0 to go on, or an error to stop. */
#define ENGINE_REPLAY_NEED_STATE 1
typedef int (*engine_replay_fn)(void *arg, const store_event *ev, int type, int current);
int engine__replay_events(recd_engine *e, uint64_t upto, engine_replay_fn before, void *arg);
void engine__trending_rebuild(recd_engine *e);
void engine__warm_stop(recd_engine *e); /* stop and join engine_warm's thread, if any */

/* features.c: the fixed-length vectors (also the ranker's inputs) */
size_t engine__user_vector(recd_engine *e, uint32_t uid, int64_t now, float *out); /* 0 if unknown */
const char *engine__user_vector_name(size_t i);
void engine__item_vector_locked(recd_engine *e, const itemstats *s, int64_t now, float *out);
const char *engine__item_vector_name(size_t i);
#define ENGINE_USER_VEC_N 15
#define ENGINE_ITEM_VEC_N 12

/* recommend.c: the ranker's feature rows, shared by serving and training */
#define RANK_MAX_DEPTH 200
size_t engine__rank_nfeatures(void);
const char *const *engine__rank_feature_names(void);
/* The candidate stage for a known user as of now: the first `depth`
 * eligible candidates in blend order, their ids and feature rows
 * (rows: depth x engine__rank_nfeatures()). Returns how many. */
size_t engine__rank_group(recd_engine *e, uint32_t uid, size_t depth, uint32_t *iids, float *rows);
/* the prior score of a row (added to the trees' output) for strength `prior` */
float engine__rank_prior(const float *row, float prior);

/* models.c */
struct model_set *engine__model_train_retrieval(recd_engine *e, const char *kind, char *err, size_t errlen);

/* recommend.c */
trending *engine__trending(recd_engine *e); /* retained snapshot; release it */
/* apply stage, after a round and before its acks: rebuild trending if writes
 * made it stale and the catalog is small (or trending_refresh is 0) */
void engine__trending_sync(recd_engine *e);
/* the thread that rebuilds trending for large catalogs (started with the writer) */
int engine__trending_start(recd_engine *e);
void engine__trending_stop(recd_engine *e);
const char *engine__type_verb(const recd_engine *e, int type);
void engine__scratch_free_all(recd_engine *e); /* engine_free */
size_t engine__memo_bytes(void);               /* an item's content memo */

/* memory.c */
void engine__memory_stop(recd_engine *e); /* stop and join the walks' thread, if any */

#endif
