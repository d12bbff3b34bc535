/* store.c — SQLite-backed event log and catalog.
 *
 * Invariants:
 *  1. Every write happens inside store_begin()/store_commit(); prepared
 *     statements are reused for the life of the store.
 *  2. Events are only ever appended, never updated or deleted; seq is
 *     strictly increasing, by one per event, and assigned by the caller.
 *  3. After a failed step or commit the store is FAILED (sticky): the open
 *     transaction is rolled back and every later write returns RECD_EFATAL.
 *
 * The event log is a table of blocks (format 2): event_blocks(seq0, n, data),
 * one row per run of up to EVBLOCK_MAX consecutive events, the events encoded
 * by evblock.c. A transaction's events collect in one pending block, written
 * when it is full and at commit: a round of POSTed events, or 4,096 events of
 * an import, is one row. One SQLite row per event (format 1) cost the store
 * thread ~0.5 µs per event, ~22% of a 20M-event import; format-1 data dirs
 * are converted at open, once.
 */
#include "store/store.h"
#include "store/evblock.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"

enum { ST_USER, ST_ITEM, ST_TYPE, ST_BLOCK, ST_DELETE, ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_COUNT };

/* the most events in one row of event_blocks: a scan that starts inside a
 * block decodes at most this many events it skips */
#define EVBLOCK_MAX 4096
#define STORE_FORMAT 2

struct store {
  int lock_fd;   /* DATA/LOCK, flock'ed: one process owns a data dir */
  sqlite3 *db;
  sqlite3_stmt *st[ST_COUNT];
  char *path;
  int failed;
  int in_txn;
  const char *sync;  /* the configured synchronous level: FULL, NORMAL or OFF */
  int bulk;          /* store_bulk_begin() relaxed it; store_sync() restores it */
  evblock_enc pend;  /* the open transaction's events not yet written: a block */
  uint64_t pend_seq0;   /* its first event's seq */
  uint64_t next_seq;    /* the seq the next appended event must have */
  uint64_t stored_next; /* next_seq as of the last commit */
  _Atomic uint64_t cache_bytes; /* see store_cache_bytes (note_cache) */
};

static const char *schema =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);"
    "CREATE TABLE IF NOT EXISTS users(uid INTEGER PRIMARY KEY, key TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS items(iid INTEGER PRIMARY KEY, key TEXT NOT NULL,"
    " in_catalog INTEGER NOT NULL DEFAULT 0, available INTEGER NOT NULL DEFAULT 1,"
    " deleted INTEGER NOT NULL DEFAULT 0, created_at INTEGER, updated_at INTEGER,"
    " categories TEXT, tags TEXT, properties TEXT);"
    "CREATE TABLE IF NOT EXISTS event_types(tid INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
    "CREATE TABLE IF NOT EXISTS event_blocks(seq0 INTEGER PRIMARY KEY, n INTEGER NOT NULL, data BLOB NOT NULL);"
    "INSERT OR IGNORE INTO meta(key, value) VALUES ('format', '2');";

static const char *sql[ST_COUNT] = {
    [ST_USER] = "INSERT OR REPLACE INTO users(uid, key) VALUES (?1, ?2)",
    [ST_ITEM] = "INSERT OR REPLACE INTO items(iid, key, in_catalog, available, deleted, created_at,"
                " updated_at, categories, tags, properties) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
    [ST_TYPE] = "INSERT OR REPLACE INTO event_types(tid, name) VALUES (?1, ?2)",
    [ST_BLOCK] = "INSERT INTO event_blocks(seq0, n, data) VALUES (?1, ?2, ?3)",
    [ST_DELETE] = "UPDATE items SET deleted = 1, updated_at = ?2 WHERE iid = ?1",
    [ST_BEGIN] = "BEGIN",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
};

const char *store_path(const store *s) { return s->path; }
int store_failed(const store *s) { return s->failed; }

/* the open transaction's events are gone with it */
static void drop_pending(store *s) {
  evblock_enc_reset(&s->pend);
  s->next_seq = s->stored_next;
}

static int fail_quietly(store *s) {
  drop_pending(s);
  if (s->in_txn) {
    sqlite3_reset(s->st[ST_ROLLBACK]);
    sqlite3_step(s->st[ST_ROLLBACK]);
    sqlite3_reset(s->st[ST_ROLLBACK]);
    s->in_txn = 0;
  }
  s->failed = 1;
  return RECD_EFATAL;
}

static int fail(store *s, const char *what) {
  log_error("store: %s: %s", what, sqlite3_errmsg(s->db));
  return fail_quietly(s);
}

static int mkdir_p(const char *dir) {
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", dir);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(buf, 0755) && errno != EEXIST) return -1;
    *p = '/';
  }
  if (mkdir(buf, 0755) && errno != EEXIST) return -1;
  return 0;
}

/* prepare every statement, then hand the store out (or close it) */
static int finish_open(store *s, store **out, char *err, size_t errlen) {
  for (int i = 0; i < ST_COUNT; i++) {
    if (sqlite3_prepare_v3(s->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL) != SQLITE_OK) {
      snprintf(err, errlen, "cannot prepare statement: %s", sqlite3_errmsg(s->db));
      store_close(s);
      return RECD_ESTORE;
    }
  }
  *out = s;
  return 0;
}

/* the first column of the first row of q, or 0 if there is none */
static int one_int(store *s, const char *q, uint64_t *out) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->db, q, -1, &st, NULL) != SQLITE_OK) return RECD_ESTORE;
  int r = sqlite3_step(st), rc = r == SQLITE_ROW || r == SQLITE_DONE ? 0 : RECD_ESTORE;
  *out = r == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
  sqlite3_finalize(st);
  return rc;
}

static int write_pending(store *s);

/* Format 1 kept one row per event in events(seq, ts, uid, iid, tid, value,
 * session, rec_id): copy them into blocks and drop the table, in one
 * transaction (an interrupted conversion leaves the data dir as it was). */
static int convert_format1(store *s, char *err, size_t errlen) {
  uint64_t n = 0;
  one_int(s, "SELECT count(*) FROM events", &n);
  log_info("store: converting the event log of %s to blocks (format 2), once: %llu events", s->path,
           (unsigned long long)n);
  sqlite3_stmt *st = NULL;
  int rc = store_begin(s);
  if (!rc && sqlite3_prepare_v2(s->db,
                                "SELECT seq, ts, uid, iid, tid, value, session, rec_id FROM events ORDER BY seq",
                                -1, &st, NULL) != SQLITE_OK)
    rc = fail(s, "read format-1 events");
  int r = SQLITE_DONE;
  while (!rc && (r = sqlite3_step(st)) == SQLITE_ROW) {
    store_event ev = {
        .seq = (uint64_t)sqlite3_column_int64(st, 0),
        .ts_ms = sqlite3_column_int64(st, 1),
        .uid = (uint32_t)sqlite3_column_int64(st, 2),
        .iid = (uint32_t)sqlite3_column_int64(st, 3),
        .tid = sqlite3_column_int(st, 4),
        .has_value = sqlite3_column_type(st, 5) != SQLITE_NULL,
        .value = sqlite3_column_double(st, 5),
        .session = (const char *)sqlite3_column_text(st, 6),
        .rec_id = (const char *)sqlite3_column_text(st, 7),
    };
    if (ev.seq != s->next_seq) { /* a gap (the engine never made one): a new block */
      if ((rc = write_pending(s))) break;
      s->next_seq = ev.seq;
    }
    rc = store_append_events(s, &ev, 1);
  }
  if (!rc && r != SQLITE_DONE) rc = fail(s, "read format-1 events");
  sqlite3_finalize(st);
  if (!rc && sqlite3_exec(s->db, "DROP TABLE events; UPDATE meta SET value = '2' WHERE key = 'format';", NULL,
                          NULL, NULL) != SQLITE_OK)
    rc = fail(s, "drop format-1 events");
  if (!rc) rc = store_commit(s);
  if (rc) {
    snprintf(err, errlen, "cannot convert the event log of %s to format 2 (see the error above)", s->path);
    return RECD_ESTORE;
  }
  log_info("store: converted %llu events", (unsigned long long)n);
  return 0;
}

/* the log's format: convert a format-1 log, refuse a newer one; then where
 * the next event's seq is */
static int open_log(store *s, int writer, char *err, size_t errlen) {
  uint64_t format = 0, old = 0, last = 0;
  if (one_int(s, "SELECT value FROM meta WHERE key = 'format'", &format) ||
      one_int(s, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'events'", &old) ||
      store_last_seq(s, &last)) {
    snprintf(err, errlen, "cannot read the event log of %s: %s", s->path, sqlite3_errmsg(s->db));
    return RECD_ESTORE;
  }
  if (format > STORE_FORMAT) {
    snprintf(err, errlen, "%s has format %llu, written by a newer recd; this one reads formats 1 and %d", s->path,
             (unsigned long long)format, STORE_FORMAT);
    return RECD_ESTORE;
  }
  s->next_seq = s->stored_next = last + 1;
  old = old && format < STORE_FORMAT; /* (a stray events table in a format-2 dir is left alone) */
  if (old && !writer) {
    snprintf(err, errlen, "%s still has a format-1 event log (its writer converts it at open)", s->path);
    return RECD_ESTORE;
  }
  return old ? convert_format1(s, err, errlen) : 0;
}

/* SQLite's memory statistics take a global mutex on every allocation it makes
 * (several per inserted row); nothing here reads them. Process-wide, and only
 * possible before SQLite initialises, so once, before the first open. */
static void sqlite_setup(void) { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); }

int store_open(const char *dir, const char *fsync_mode, store **out, char *err, size_t errlen) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, sqlite_setup);
  *out = NULL;
  if (mkdir_p(dir)) {
    snprintf(err, errlen, "cannot create data dir %s: %s", dir, strerror(errno));
    return -errno;
  }
  store *s = xcalloc(1, sizeof *s);
  char lockpath[1100];
  snprintf(lockpath, sizeof lockpath, "%s/LOCK", dir);
  s->lock_fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (s->lock_fd < 0 || flock(s->lock_fd, LOCK_EX | LOCK_NB)) {
    int e = errno;
    char pid[32] = "?";
    if (s->lock_fd >= 0) {
      ssize_t r = pread(s->lock_fd, pid, sizeof pid - 1, 0);
      pid[r > 0 ? r : 0] = 0;
      pid[strcspn(pid, "\n")] = 0;
    }
    if (e == EWOULDBLOCK)
      snprintf(err, errlen, "data dir %s is in use by another recd process (pid %s); stop it first", dir, pid);
    else
      snprintf(err, errlen, "cannot lock %s: %s", lockpath, strerror(e));
    if (s->lock_fd >= 0) close(s->lock_fd);
    free(s);
    return e == EWOULDBLOCK ? RECD_EEXISTS : -e;
  }
  char pidbuf[32];
  int pl = snprintf(pidbuf, sizeof pidbuf, "%ld\n", (long)getpid());
  if (ftruncate(s->lock_fd, 0) || pwrite(s->lock_fd, pidbuf, (size_t)pl, 0) != pl) log_warn("could not write %s", lockpath);
  size_t n = strlen(dir) + 16;
  s->path = xmalloc(n);
  snprintf(s->path, n, "%s/recd.db", dir);
  int rc = sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK) {
    snprintf(err, errlen, "cannot open %s: %s", s->path, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
    store_close(s);
    return RECD_ESTORE;
  }
  sqlite3_busy_timeout(s->db, 5000);
  const char *sync = !strcmp(fsync_mode, "off") ? "OFF" : !strcmp(fsync_mode, "normal") ? "NORMAL" : "FULL";
  s->sync = sync;
  char pragmas[512];
  snprintf(pragmas, sizeof pragmas,
           "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA cache_size=-8192;"
           "PRAGMA temp_store=MEMORY; PRAGMA wal_autocheckpoint=10000;", sync);
  /* The page cache is 8 MiB (the writer appends blocks and inserts ids: it
   * needs the B-trees' right edges; 64 MiB had filled with the start's id
   * loads, and 20M imports ran level or faster with 8); the start's pages are
   * given back after its loads (store_release_memory).
   * The WAL file is kept at close (checkpointed, at its size) instead of
   * deleted: while a WAL grows, each fdatasync also commits the file's new size
   * to the file system's journal. After a start, that was every commit of the
   * first ~40 MB (wal_autocheckpoint) of writes: under the 90/10 mixed load,
   * ~30 us more of the store thread's CPU per commit (~175 instead of ~145 on
   * stop 18's machine). */
  int persist = 1;
  sqlite3_file_control(s->db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
  char *msg = NULL;
  if (sqlite3_exec(s->db, pragmas, NULL, NULL, &msg) != SQLITE_OK ||
      sqlite3_exec(s->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
    snprintf(err, errlen, "cannot initialise %s: %s", s->path, msg ? msg : "?");
    sqlite3_free(msg);
    store_close(s);
    return RECD_ESTORE;
  }
  int rc2 = finish_open(s, out, err, errlen);
  if (!rc2 && (rc2 = open_log(s, 1, err, errlen))) {
    store_close(s);
    *out = NULL;
  }
  return rc2;
}

/* A second, read-only connection to a data dir that this process already
 * owns (no lock taken): WAL lets it read a consistent snapshot while the
 * writer keeps committing. Used by background jobs that scan the log. */
int store_open_reader(const char *dir, store **out, char *err, size_t errlen) {
  *out = NULL;
  store *s = xcalloc(1, sizeof *s);
  s->lock_fd = -1;
  size_t n = strlen(dir) + 16;
  s->path = xmalloc(n);
  snprintf(s->path, n, "%s/recd.db", dir);
  int rc = sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK) {
    snprintf(err, errlen, "cannot open %s for reading: %s", s->path, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
    store_close(s);
    return RECD_ESTORE;
  }
  sqlite3_busy_timeout(s->db, 5000);
  sqlite3_exec(s->db, "PRAGMA cache_size=-16384; PRAGMA temp_store=MEMORY;", NULL, NULL, NULL);
  int rc2 = finish_open(s, out, err, errlen);
  if (!rc2 && (rc2 = open_log(s, 0, err, errlen))) {
    store_close(s);
    *out = NULL;
  }
  return rc2;
}

void store_close(store *s) {
  if (!s) return;
  for (int i = 0; i < ST_COUNT; i++) sqlite3_finalize(s->st[i]);
  if (s->db) sqlite3_close(s->db);
  evblock_enc_free(&s->pend);
  if (s->lock_fd > 0) close(s->lock_fd); /* releases the flock */
  free(s->path);
  free(s);
}

static int step_reset(store *s, int i, const char *what) {
  int rc = sqlite3_step(s->st[i]);
  sqlite3_reset(s->st[i]);
  sqlite3_clear_bindings(s->st[i]);
  if (rc != SQLITE_DONE) return fail(s, what);
  return 0;
}

static int set_sync(store *s, const char *level) {
  char q[64];
  snprintf(q, sizeof q, "PRAGMA synchronous=%s", level);
  return sqlite3_exec(s->db, q, NULL, NULL, NULL) == SQLITE_OK ? 0 : fail(s, "set synchronous");
}

int store_bulk_begin(store *s) {
  if (s->failed) return RECD_EFATAL;
  if (s->in_txn) return RECD_EINVAL;
  if (strcmp(s->sync, "FULL")) return 0;
  int rc = set_sync(s, "NORMAL");
  if (!rc) s->bulk = 1;
  return rc;
}

int store_sync(store *s) {
  if (s->failed) return RECD_EFATAL;
  if (s->in_txn) return RECD_EINVAL;
  if (s->bulk) {
    int rc = set_sync(s, s->sync);
    if (rc) return rc;
    s->bulk = 0;
  }
  int log = 0, done = 0;
  if (sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log, &done) != SQLITE_OK)
    return fail(s, "checkpoint");
  if (done != log) { /* a reader held frames back: impossible while we own the data dir */
    log_error("store: checkpoint copied %d of %d WAL frames", done, log);
    s->failed = 1;
    return RECD_EFATAL;
  }
  return 0;
}

int store_begin(store *s) {
  if (s->failed) return RECD_EFATAL;
  int rc = step_reset(s, ST_BEGIN, "begin");
  if (!rc) s->in_txn = 1;
  return rc;
}

/* the page cache's size, published for other threads (the connection itself
 * is the writer's alone) */
static void note_cache(store *s) {
  int cur = 0, hi = 0;
  if (sqlite3_db_status(s->db, SQLITE_DBSTATUS_CACHE_USED, &cur, &hi, 0) == SQLITE_OK && cur >= 0)
    atomic_store_explicit(&s->cache_bytes, (uint64_t)cur, memory_order_relaxed);
}

void store_release_memory(store *s) {
  sqlite3_db_release_memory(s->db);
  note_cache(s);
}

uint64_t store_cache_bytes(const store *s) { return atomic_load_explicit(&s->cache_bytes, memory_order_relaxed); }

int store_commit(store *s) {
  if (s->failed) return RECD_EFATAL;
  int rc = write_pending(s);
  if (!rc) rc = step_reset(s, ST_COMMIT, "commit");
  s->in_txn = 0;
  if (!rc) s->stored_next = s->next_seq;
  note_cache(s);
  return rc;
}

int store_rollback(store *s) {
  drop_pending(s);
  if (!s->in_txn) return 0;
  int rc = sqlite3_step(s->st[ST_ROLLBACK]);
  sqlite3_reset(s->st[ST_ROLLBACK]);
  s->in_txn = 0;
  return rc == SQLITE_DONE ? 0 : RECD_ESTORE;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s, int len) {
  if (s) sqlite3_bind_text(st, i, s, len, SQLITE_STATIC);
  else sqlite3_bind_null(st, i);
}

int store_put_user(store *s, uint32_t uid, const char *key, size_t len) {
  if (s->failed) return RECD_EFATAL;
  sqlite3_stmt *st = s->st[ST_USER];
  sqlite3_bind_int64(st, 1, uid);
  sqlite3_bind_text(st, 2, key, (int)len, SQLITE_STATIC);
  return step_reset(s, ST_USER, "insert user");
}

int store_put_item(store *s, const store_item *it) {
  if (s->failed) return RECD_EFATAL;
  sqlite3_stmt *st = s->st[ST_ITEM];
  sqlite3_bind_int64(st, 1, it->iid);
  bind_text(st, 2, it->key, -1);
  sqlite3_bind_int(st, 3, it->in_catalog);
  sqlite3_bind_int(st, 4, it->available);
  sqlite3_bind_int(st, 5, it->deleted);
  sqlite3_bind_int64(st, 6, it->created_at_ms);
  sqlite3_bind_int64(st, 7, it->updated_at_ms);
  bind_text(st, 8, it->categories_json, -1);
  bind_text(st, 9, it->tags_json, -1);
  bind_text(st, 10, it->properties_json, -1);
  return step_reset(s, ST_ITEM, "upsert item");
}

int store_put_type(store *s, int tid, const char *name) {
  if (s->failed) return RECD_EFATAL;
  sqlite3_stmt *st = s->st[ST_TYPE];
  sqlite3_bind_int(st, 1, tid);
  sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
  return step_reset(s, ST_TYPE, "insert event type");
}

int store_delete_item(store *s, uint32_t iid) {
  if (s->failed) return RECD_EFATAL;
  sqlite3_stmt *st = s->st[ST_DELETE];
  sqlite3_bind_int64(st, 1, iid);
  sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL) * 1000);
  return step_reset(s, ST_DELETE, "delete item");
}

/* the pending block as a row of event_blocks */
static int write_pending(store *s) {
  if (!s->pend.n) return 0;
  sqlite3_stmt *st = s->st[ST_BLOCK];
  sqlite3_bind_int64(st, 1, (sqlite3_int64)s->pend_seq0);
  sqlite3_bind_int64(st, 2, s->pend.n);
  sqlite3_bind_blob(st, 3, s->pend.buf, (int)s->pend.len, SQLITE_STATIC);
  int rc = step_reset(s, ST_BLOCK, "append events");
  evblock_enc_reset(&s->pend);
  return rc;
}

int store_append_event(store *s, const store_event *ev) { return store_append_events(s, ev, 1); }

int store_append_events(store *s, const store_event *ev, size_t n) {
  if (s->failed) return RECD_EFATAL;
  for (size_t i = 0; i < n; i++) {
    if (ev[i].seq != s->next_seq) {
      log_error("store: append events: seq %llu where the log expects %llu", (unsigned long long)ev[i].seq,
                (unsigned long long)s->next_seq);
      return fail_quietly(s);
    }
    if (!s->pend.n) s->pend_seq0 = ev[i].seq;
    evblock_put(&s->pend, &ev[i]);
    s->next_seq++;
    if (s->pend.n == EVBLOCK_MAX) {
      int rc = write_pending(s);
      if (rc) return rc;
    }
  }
  /* outside a transaction each call is one (autocommit) */
  if (!s->in_txn) {
    int rc = write_pending(s);
    if (rc) return rc;
    s->stored_next = s->next_seq;
  }
  return 0;
}

static int load_keys(store *s, const char *q, store_key_cb cb, void *arg) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->db, q, -1, &st, NULL) != SQLITE_OK) return fail(s, "prepare load");
  int rc = 0, r;
  while ((r = sqlite3_step(st)) == SQLITE_ROW) {
    const char *k = (const char *)sqlite3_column_text(st, 1);
    if ((rc = cb(arg, (uint32_t)sqlite3_column_int64(st, 0), k ? k : "", (size_t)sqlite3_column_bytes(st, 1)))) break;
  }
  if (!rc && r != SQLITE_DONE) rc = RECD_ESTORE;
  sqlite3_finalize(st);
  note_cache(s);
  return rc;
}

int store_load_types(store *s, store_key_cb cb, void *arg) {
  return load_keys(s, "SELECT tid, name FROM event_types ORDER BY tid", cb, arg);
}

int store_load_users(store *s, store_key_cb cb, void *arg) {
  return load_keys(s, "SELECT uid, key FROM users ORDER BY uid", cb, arg);
}

int store_load_items(store *s, store_item_cb cb, void *arg) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->db,
                         "SELECT iid, key, in_catalog, available, deleted, created_at, updated_at,"
                         " categories, tags, properties FROM items ORDER BY iid",
                         -1, &st, NULL) != SQLITE_OK)
    return fail(s, "prepare load items");
  int rc = 0, r;
  while ((r = sqlite3_step(st)) == SQLITE_ROW) {
    store_item it = {
        .iid = (uint32_t)sqlite3_column_int64(st, 0),
        .key = (const char *)sqlite3_column_text(st, 1),
        .in_catalog = sqlite3_column_int(st, 2),
        .available = sqlite3_column_int(st, 3),
        .deleted = sqlite3_column_int(st, 4),
        .created_at_ms = sqlite3_column_int64(st, 5),
        .updated_at_ms = sqlite3_column_int64(st, 6),
        .categories_json = (const char *)sqlite3_column_text(st, 7),
        .tags_json = (const char *)sqlite3_column_text(st, 8),
        .properties_json = (const char *)sqlite3_column_text(st, 9),
    };
    if ((rc = cb(arg, &it))) break;
  }
  if (!rc && r != SQLITE_DONE) rc = RECD_ESTORE;
  sqlite3_finalize(st);
  note_cache(s);
  return rc;
}

int store_scan_events(store *s, uint64_t after_seq, store_event_cb cb, void *arg) {
  sqlite3_stmt *st;
  /* from the block that holds after_seq + 1: the last one starting at or before it */
  if (sqlite3_prepare_v2(s->db,
                         "SELECT seq0, n, data FROM event_blocks WHERE seq0 >= coalesce((SELECT seq0 FROM"
                         " event_blocks WHERE seq0 <= ?1 ORDER BY seq0 DESC LIMIT 1), 0) ORDER BY seq0",
                         -1, &st, NULL) != SQLITE_OK)
    return fail(s, "prepare scan");
  sqlite3_bind_int64(st, 1, (sqlite3_int64)(after_seq + 1));
  int rc = 0, r = SQLITE_DONE;
  while (!rc && (r = sqlite3_step(st)) == SQLITE_ROW) {
    uint64_t seq0 = (uint64_t)sqlite3_column_int64(st, 0), n = (uint64_t)sqlite3_column_int64(st, 1), k = 0;
    const void *data = sqlite3_column_blob(st, 2);
    evblock_dec d;
    evblock_dec_init(&d, data, (size_t)sqlite3_column_bytes(st, 2));
    store_event ev;
    while (k < n && evblock_next(&d, &ev) == 1) {
      ev.seq = seq0 + k++;
      if (ev.seq > after_seq && (rc = cb(arg, &ev))) break;
    }
    if (!rc && (k != n || evblock_next(&d, &ev) != 0)) {
      log_error("store: the event block at seq %llu of %s is corrupt (%llu of its %llu events read)",
                (unsigned long long)seq0, s->path, (unsigned long long)k, (unsigned long long)n);
      rc = RECD_ESTORE;
    }
  }
  if (!rc && r != SQLITE_DONE) rc = RECD_ESTORE;
  sqlite3_finalize(st);
  note_cache(s);
  return rc;
}

int store_last_seq(store *s, uint64_t *seq) {
  return one_int(s, "SELECT seq0 + n - 1 FROM event_blocks ORDER BY seq0 DESC LIMIT 1", seq);
}
int store_count_events(store *s, uint64_t *n) { return one_int(s, "SELECT coalesce(sum(n), 0) FROM event_blocks", n); }
