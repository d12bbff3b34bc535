/* store.h — the durable event log and catalog, on SQLite in WAL mode.
 *
 * Layout (one file, DATA/recd.db): users(uid, key), items(iid, key, catalog
 * columns), event_types(tid, name), event_blocks(seq0, n, data): the event log
 * as blocks of up to 4,096 consecutive events (codec: evblock.h), meta(key,
 * value; format = 2). Ids are dense integers assigned by the engine's writer
 * thread; strings are stored once. A format-1 data dir (one row per event in
 * events(seq, ts, uid, iid, tid, value, session, rec_id)) is converted when
 * its writer opens it.
 *
 * Durability: a transaction is durable when store_commit() returns 0 with
 * fsync=full (synchronous=FULL: the WAL is fsynced at every commit). A torn
 * tail of the WAL is discarded by SQLite at open, never replayed as garbage.
 * I/O errors are sticky: after a failed commit the store refuses every later
 * write with RECD_EFATAL (the caller must restart to recover).
 *
 * Not thread-safe: one thread writes (the engine's writer); loading happens
 * before the writer starts. */
#ifndef RECD_STORE_STORE_H
#define RECD_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct store store;

typedef struct {
  uint64_t seq;
  int64_t ts_ms;
  uint32_t uid, iid;
  int tid;
  double value;
  int has_value;
  const char *session;  /* NULL if none */
  const char *rec_id;   /* NULL if none */
} store_event;

typedef struct {
  uint32_t iid;
  const char *key;
  int in_catalog, available, deleted;
  int64_t created_at_ms, updated_at_ms;
  const char *categories_json; /* JSON array text or NULL */
  const char *tags_json;
  const char *properties_json; /* JSON object text or NULL */
} store_item;

int store_open(const char *dir, const char *fsync_mode, store **out, char *err, size_t errlen);
/* read-only second connection to a data dir this process holds open */
int store_open_reader(const char *dir, store **out, char *err, size_t errlen);
void store_close(store *s);   /* NULL is a no-op */
const char *store_path(const store *s);
int store_failed(const store *s);

/* Bulk loading (recd import). With fsync=full, commits are no longer fsynced
 * one by one: synchronous=NORMAL, where SQLite syncs the WAL before each
 * checkpoint and the database after it. A crash or power loss during the load
 * may lose the last commits but never corrupts the database (WAL). store_sync()
 * ends it. No effect with fsync=normal or off. */
int store_bulk_begin(store *s);
/* Make every commit so far durable under the fsync setting: back to the
 * configured synchronous level, then a TRUNCATE checkpoint (with fsync=full:
 * the WAL is fsynced, copied into the database, the database fsynced, the WAL
 * emptied). Outside a transaction. A failure is sticky, like a failed commit. */
int store_sync(store *s);

int store_begin(store *s);
int store_commit(store *s);
int store_rollback(store *s);

int store_put_user(store *s, uint32_t uid, const char *key, size_t len);
int store_put_item(store *s, const store_item *it); /* insert or replace */
int store_put_type(store *s, int tid, const char *name);
int store_delete_item(store *s, uint32_t iid); /* marks deleted, keeps the row */
/* Append ev[0..n) to the log, in order. The seqs must continue it: ev[i].seq =
 * (the last seq appended so far) + 1 + i, as the engine's always do. Inside a
 * transaction the events collect in a block that is written when it holds
 * 4,096 events and at commit (so a commit can fail for them); outside one,
 * each call is its own transaction. If the seqs do not continue the log, or a
 * block cannot be written, it returns RECD_EFATAL and the store is failed (the
 * transaction is rolled back), as after any failed write. */
int store_append_events(store *s, const store_event *ev, size_t n);
int store_append_event(store *s, const store_event *ev); /* one event */

/* Loading. Callbacks return 0 to continue, non-zero to stop (returned). Strings
 * passed to callbacks are valid only during the call. */
typedef int (*store_key_cb)(void *arg, uint32_t id, const char *key, size_t len);
typedef int (*store_item_cb)(void *arg, const store_item *it);
typedef int (*store_event_cb)(void *arg, const store_event *ev);
int store_load_types(store *s, store_key_cb cb, void *arg);
int store_load_users(store *s, store_key_cb cb, void *arg);
int store_load_items(store *s, store_item_cb cb, void *arg);
int store_scan_events(store *s, uint64_t after_seq, store_event_cb cb, void *arg);
int store_last_seq(store *s, uint64_t *seq);
int store_count_events(store *s, uint64_t *n);
/* the writer connection's page cache in bytes (SQLite's SQLITE_DBSTATUS_CACHE_USED)
 * as of its last commit or open: readable from any thread */
uint64_t store_cache_bytes(const store *s);
/* gives back the page cache's unused pages (after the loads of an open) */
void store_release_memory(store *s);

#endif
