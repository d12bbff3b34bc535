/* engine.h — one engine object holds one tenant's whole state: the durable
 * store, live features, models, and the writer thread that group-commits.
 *
 * Thread rules: every function here is thread-safe unless it says otherwise.
 * Writes (events, items) are serialised through one writer thread: a submitted
 * batch is written to the store in one transaction together with whatever else
 * is pending, synced once (group commit), applied to the live state, and only
 * then is its completion callback called. So once a submission completes, every
 * read already reflects it (read-your-writes).
 *
 * Strings in request/result structs are borrowed: they must stay valid for the
 * duration of the call (or, for submissions, until the completion callback). */
#ifndef RECD_ENGINE_ENGINE_H
#define RECD_ENGINE_ENGINE_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/config.h"
#include "util/mem.h"

typedef struct recd_engine recd_engine;

/* A validation failure, filled by the parse functions. */
typedef struct {
  int status;          /* HTTP status: 400, 404, 413, ... */
  char code[32];       /* stable machine code: invalid_event, invalid_json, ... */
  char message[512];   /* "events[3].event_type: unknown type 'clik'" */
  char field[64];      /* "event_type" or "" */
  long index;          /* batch index or -1 */
} recd_fail;

void recd_fail_set(recd_fail *f, int status, const char *code, long index, const char *field,
                   const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* ---- events ---- */
typedef struct {
  const char *user_id;     /* 1..256 bytes, no control characters */
  const char *item_id;
  int type;                /* index into config types */
  int64_t ts_ms;
  double value;
  int has_value;
  const char *session_id;  /* NULL if absent */
  const char *rec_id;      /* NULL if absent */
} recd_event;

/* Validate one JSON event object. Strings point into `json` (keep it alive).
 * `index` is the batch position used in messages (-1 for a single event). */
int engine_parse_event(const recd_engine *e, json_t *obj, long index, int64_t now_ms,
                       recd_event *ev, recd_fail *fail);
/* The body of POST /events when it is plain (one event or {"events": [...]}
 * of at most max; ASCII strings without escapes, whole-number times and
 * values, no field twice): 0, with *out (*n events, their strings) allocated
 * in `a`. -1 for any other body, valid or not: parse that one with jansson
 * and engine_parse_event, which accept the same events and explain refusals. */
int engine_parse_events_text(const recd_engine *e, const char *text, size_t len, int64_t now_ms, size_t max,
                             arena *a, recd_event **out, size_t *n);
/* Validate an id string: 0 or sets fail. */
int engine_check_id(const char *s, size_t len, const char *what, long index, const char *field,
                    recd_fail *fail);

/* ---- catalog ---- */
typedef struct {
  const char *item_id;
  const char **categories; size_t ncategories;
  const char **tags; size_t ntags;
  int available;           /* default 1 */
  int64_t created_at_ms;   /* -1: keep existing, or now for a new item */
  const char *properties_json; /* serialised object or NULL */
} recd_item;

/* Validate one JSON item object; item_id from the object unless path_id is given.
 * Arrays are allocated in `a`. */
int engine_parse_item(const recd_engine *e, json_t *obj, const char *path_id, long index,
                      arena *a, recd_item *it, recd_fail *fail);
/* One item object in plain text (ASCII strings without escapes, no field
 * twice, properties of strings, numbers without exponent, booleans and null),
 * as engine_parse_item reads it (path_id as there: NULL, or the id of PUT
 * /items/{id}) with created_at checked against now_ms: 0, with its strings
 * and arrays in `a` (item_id is path_id itself when given). -1 for any other
 * text, valid or not: read that one with jansson and engine_parse_item. */
int engine_parse_item_text(const recd_engine *e, const char *text, size_t len, const char *path_id, int64_t now_ms,
                           arena *a, recd_item *it);
/* The body of POST /items when every item in it is plain as above:
 * {"items": [...]} of 1 to max items, 0 with *out (*n items) in `a`; -1 for
 * any other body (jansson and engine_parse_item explain refusals). */
int engine_parse_items_text(const recd_engine *e, const char *text, size_t len, int64_t now_ms, size_t max, arena *a,
                            recd_item **out, size_t *n);

/* ---- writes (asynchronous, group-committed) ---- */
typedef void (*engine_done_fn)(void *arg, int rc);

/* OP_SYNC: make every write committed so far durable under the fsync setting,
 * ending a bulk load (recd_config.bulk_load; store_sync in src/store/store.h). */
typedef enum { OP_EVENTS = 1, OP_ITEMS = 2, OP_DELETE_ITEM = 3, OP_SYNC = 4 } engine_op_kind;

typedef struct engine_op {
  engine_op_kind kind;
  const recd_event *events; size_t nevents;    /* OP_EVENTS */
  const recd_item *items; size_t nitems;       /* OP_ITEMS */
  const char *item_id;                          /* OP_DELETE_ITEM */
  engine_done_fn done;                          /* called on the writer thread */
  void *arg;
  int rc;                                       /* result, also passed to done */
  int found;                                    /* OP_DELETE_ITEM: item existed */
  struct engine_op *next;                       /* engine-private */
  int64_t submit_ns;                            /* engine-private: when it was queued */
} engine_op;

/* Queue an op; `op` and everything it points to must stay valid until done().
 * Returns 0, or RECD_ECLOSED / RECD_EFATAL without calling done(). */
int engine_submit(recd_engine *e, engine_op *op);
/* Submit and wait. Returns op->rc. */
int engine_submit_wait(recd_engine *e, engine_op *op);

/* ---- reads ---- */
typedef struct {
  const char *user_id;      /* NULL for anonymous */
  const char **items;       /* anonymous: recent item ids, oldest first */
  size_t nitems;
  size_t n;
  const char **categories; size_t ncategories;
  const char **exclude; size_t nexclude;
  const char *session_id;
} recd_rec_request;

#define RECD_MAX_REASONS 3
typedef struct {
  const char *item_id;      /* valid for the engine's lifetime */
  double score;
  char reasons[RECD_MAX_REASONS][160];
  int nreasons;
} recd_rec_item;

typedef struct {
  recd_rec_item *items;     /* xmalloc'ed; free with engine_result_release */
  size_t count;
  char rec_id[40];
  int known_user;
} recd_rec_result;

int engine_recommend(recd_engine *e, const recd_rec_request *req, recd_rec_result *out);
/* similar items; RECD_ENOTFOUND for an unknown item */
int engine_similar(recd_engine *e, const char *item_id, size_t n, recd_rec_result *out);
/* popular over a window (ms; 0 = configured default); category may be NULL */
int engine_popular(recd_engine *e, size_t n, const char **categories, size_t ncat,
                   int64_t window_ms, recd_rec_result *out, recd_fail *fail);
void engine_result_release(recd_rec_result *r);

/* Features as JSON (new reference), or NULL with RECD_ENOTFOUND. */
json_t *engine_user_features(recd_engine *e, const char *user_id);
json_t *engine_item_features(recd_engine *e, const char *item_id);
/* Catalog entry as JSON, NULL if unknown or deleted. */
json_t *engine_item_get(recd_engine *e, const char *item_id);

extern const double engine_sync_buckets[]; /* seconds, 12 entries */
#define ENGINE_SYNC_NBUCKETS 12

/* A latency histogram over engine_sync_buckets that any thread adds to (the
 * engine's write stages, the HTTP layer's), and a copy of it read at once. */
typedef struct {
  _Atomic uint64_t b[ENGINE_SYNC_NBUCKETS + 1]; /* per bucket, then +Inf */
  _Atomic uint64_t count, sum_us;
} engine_hist;
typedef struct {
  uint64_t b[ENGINE_SYNC_NBUCKETS + 1];
  uint64_t count;
  double sum_s;
} recd_hist;
void engine_hist_add(engine_hist *h, int64_t ns);
void engine_hist_read(engine_hist *h, recd_hist *out);

typedef struct {
  uint64_t users, items, catalog_items, events, last_seq;
  uint64_t queue_depth, commits, fatal;
  uint64_t commit_waits; /* rounds that waited for more writes (commit_delay_us) */
  double commit_ms_sum;
  uint64_t events_by_type[RECD_MAX_TYPES];
  /* latency histograms, buckets engine_sync_buckets (+Inf last): commit and
   * sync per group; per write, waiting in the queue for the store stage, and
   * from its commit to its answer (the apply not overlapped by the commit) */
  recd_hist sync, write_queue, write_apply;
  int64_t now_ms;           /* engine clock: latest event time */
  /* background snapshots since start: finished, failed, the last one's wall
   * time, whether one runs now, and the newest snapshot's event (a crash now
   * replays the events after it) */
  uint64_t snapshots_ok, snapshots_failed, snapshot_seq;
  double snapshot_last_s;
  double snapshot_lag_s;   /* the events after the newest snapshot: their time to apply (snapshot_max_replay) */
  double writes_held_s;    /* time writes waited for a snapshot since start (snapshot_max_replay) */
  int snapshot_running;
} recd_stats;
void engine_stats(recd_engine *e, recd_stats *s);

/* ---- memory (src/engine/memory.c) ---- */
/* The process's resident memory by part. The first parts are the live
 * state's structures, counted as the bytes they asked malloc for; the last
 * three account for the rest: heap_other is malloc's memory in use that no
 * part above names (allocation headers and rounding, HTTP buffers, the write
 * queue, working memory, XGBoost's trees), heap_free the free memory malloc
 * keeps (fragments it has not given back; some of it may not be resident),
 * non_heap the resident memory outside malloc's heap (code, stacks, the
 * snapshot's kept copies while one is written). */
enum {
  RECD_MEM_PROFILES,      /* user profiles: counters, category affinities, long session ids */
  RECD_MEM_RINGS,         /* the users' recent-item rings */
  RECD_MEM_SEEN,          /* the users' seen sets (item -> event types) */
  RECD_MEM_ITEMS,         /* item statistics and catalog entries (categories, tags, properties) */
  RECD_MEM_MEMOS,         /* the items' memoised content neighbours */
  RECD_MEM_COVIS,         /* co-visitation lists and their indexes */
  RECD_MEM_CONTENT,       /* the content index: category and tag postings */
  RECD_MEM_IDS,           /* id maps (keys, hash slots, entries) and the per-id pointer arrays */
  RECD_MEM_TRENDING,      /* the trending lists */
  RECD_MEM_MODELS,        /* production and previous models (iALS factors, EASE matrix) */
  RECD_MEM_SQLITE,        /* the store's SQLite page cache */
  RECD_MEM_HEAP_OTHER,
  RECD_MEM_HEAP_FREE,
  RECD_MEM_NON_HEAP,
  RECD_MEM_NPARTS
};
extern const char *const recd_memory_part_names[RECD_MEM_NPARTS];
typedef struct {
  uint64_t bytes[RECD_MEM_NPARTS];
  uint64_t rss;          /* resident set size when the walk ended */
  int64_t measured_ms;   /* wall clock when the walk ended; 0: no walk yet */
  int64_t measured_ns;   /* the same on the monotonic clock */
  double walk_s;         /* how long the walk took */
} recd_memory;
/* Walk every profile, item and list now, on the calling thread (each under
 * its lock): ~0.1-0.3 s at 1M users. */
void engine_memory(recd_engine *e, recd_memory *m);
/* The last walk's result, without waiting (measured_ms 0 before the first).
 * When there is none or it is older than max_age_ms, a thread of low
 * priority walks again (one walk at a time); engine_free stops it. */
void engine_memory_latest(recd_engine *e, int64_t max_age_ms, recd_memory *m);

/* ---- learned models (src/engine/models.c) ---- */
enum { RECD_PROMOTE_NEVER = 0, RECD_PROMOTE_IF_BETTER = 1, RECD_PROMOTE_ALWAYS = 2 };
typedef struct {
  const char *kind;   /* "ials" | "ease" | NULL: the configured default */
  int promote;        /* RECD_PROMOTE_* */
} recd_train_request;
/* Train a model from the live state (synchronously, on the calling thread),
 * evaluate it on a held-out recent slice, store it as a new version and
 * promote it as asked. *meta_out (new reference) describes the version.
 * Fails with 409 training_busy while another training runs. */
int engine_train(recd_engine *e, const recd_train_request *rq, json_t **meta_out, recd_fail *fail);
/* Make a stored version production (its file is verified first; a corrupt one
 * is refused and production stays as it was). */
int engine_promote(recd_engine *e, uint64_t version, json_t **meta_out, recd_fail *fail);
/* The registry's words, for the HTTP API and the CLI alike:
 * a model kind ("ials", "ease", "ranker": the static string, else NULL),
 * a promotion mode ("if_better", "always", "never": RECD_PROMOTE_*, else -1),
 * a version ("3" or "v3": 0 and *out, else -1). */
const char *engine_model_kind(const char *s);
int engine_promote_mode(const char *s);
int engine_model_version(const char *s, uint64_t *out);
/* Back to the production version before the current one. */
int engine_rollback(recd_engine *e, json_t **meta_out, recd_fail *fail);
/* {"production": N|null, "models": [meta...]} (new reference) */
json_t *engine_models(recd_engine *e);
/* Start a training on a background thread; *job_id identifies it. Fails with
 * 409 training_busy while one runs. */
int engine_train_start(recd_engine *e, const recd_train_request *rq, uint64_t *job_id, recd_fail *fail);
/* {"job_id", "status": "running"|"succeeded"|"failed", "model": meta, "error": {...}}
 * (new reference), or NULL for an unknown job. */
json_t *engine_train_job(recd_engine *e, uint64_t job_id);

const recd_config *engine_config(const recd_engine *e);

/* ---- lifecycle ---- */
/* Open (creating if needed) the data dir, load catalog and replay the log.
 * err gets a message on failure. */
int engine_open(const recd_config *cfg, recd_engine **out, char *err, size_t errlen);
/* Stop the writer after draining the queue, close the store, free everything. */
void engine_free(recd_engine *e);
/* engine_free for a process that exits right after: stops and saves the same
 * way, but leaves the state's memory to the exit (freeing a 1M-user state
 * object by object took ~1.3 s at the end of `recd import`). Built with
 * AddressSanitizer it frees, so leak checks and the free path still run. */
void engine_close(recd_engine *e);
/* Build what the first request would otherwise build on its own time (the
 * trending lists: one pass over every item, ~0.1 s at 100k items), so the
 * first requests after a start do not queue behind it. `recd serve` calls it
 * before it listens. An empty catalog has nothing to build: then, as before,
 * the first read builds the lists. It also starts a low-priority thread that
 * memoises every item's content neighbours (what the first requests would
 * otherwise compute for their anchors); engine_free stops it. */
void engine_warm(recd_engine *e);

#endif
