#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "store/store.h"
#include "unit.h"
#include "util/err.h"

typedef struct {
  int n;
  uint64_t last;
  double vsum;
} scan_acc;

static int on_ev(void *arg, const store_event *ev) {
  scan_acc *a = arg;
  a->n++;
  a->last = ev->seq;
  if (ev->has_value) a->vsum += ev->value;
  return 0;
}

static int on_key(void *arg, uint32_t id, const char *k, size_t len) {
  (void)id;
  (void)k;
  (*(int *)arg) += (int)len;
  return 0;
}

START_TEST(roundtrip_and_rollback) {
  char *dir = unit_tmpdir();
  char err[256];
  store *s;
  ck_assert_int_eq(store_open(dir, "full", &s, err, sizeof err), 0);
  ck_assert_int_eq(store_begin(s), 0);
  ck_assert_int_eq(store_put_user(s, 0, "alice", 5), 0);
  store_item it = {.iid = 0, .key = "item_1", .available = 1, .categories_json = "[\"books\"]"};
  ck_assert_int_eq(store_put_item(s, &it), 0);
  ck_assert_int_eq(store_put_type(s, 0, "view"), 0);
  for (int i = 1; i <= 100; i++) {
    store_event ev = {.seq = (uint64_t)i, .ts_ms = 1000 * i, .uid = 0, .iid = 0, .tid = 0, .value = 1.5, .has_value = 1};
    ck_assert_int_eq(store_append_event(s, &ev), 0);
  }
  ck_assert_int_eq(store_commit(s), 0);
  /* a rolled-back transaction leaves nothing */
  ck_assert_int_eq(store_begin(s), 0);
  store_event ev = {.seq = 101, .ts_ms = 1, .uid = 0, .iid = 0, .tid = 0};
  ck_assert_int_eq(store_append_event(s, &ev), 0);
  ck_assert_int_eq(store_rollback(s), 0);
  /* a duplicate seq is a failed write and makes the store sticky-failed */
  ck_assert_int_eq(store_begin(s), 0);
  ev.seq = 50;
  ck_assert_int_eq(store_append_event(s, &ev), RECD_EFATAL);
  ck_assert_int_eq(store_failed(s), 1);
  ck_assert_int_eq(store_begin(s), RECD_EFATAL);
  store_close(s);

  ck_assert_int_eq(store_open(dir, "full", &s, err, sizeof err), 0);
  scan_acc a = {0};
  ck_assert_int_eq(store_scan_events(s, 0, on_ev, &a), 0);
  ck_assert_int_eq(a.n, 100);
  ck_assert_uint_eq(a.last, 100);
  ck_assert_double_eq_tol(a.vsum, 150.0, 1e-9);
  a = (scan_acc){0};
  ck_assert_int_eq(store_scan_events(s, 90, on_ev, &a), 0);
  ck_assert_int_eq(a.n, 10);
  int klen = 0;
  ck_assert_int_eq(store_load_users(s, on_key, &klen), 0);
  ck_assert_int_eq(klen, 5);
  uint64_t last;
  ck_assert_int_eq(store_last_seq(s, &last), 0);
  ck_assert_uint_eq(last, 100);
  store_close(s);
  unit_rmrf(dir);
  free(dir);
}
END_TEST

static long long file_size(const char *dir, const char *name) {
  char path[600];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  struct stat st;
  return stat(path, &st) ? -1 : (long long)st.st_size;
}

/* bulk mode: commits land in the WAL; store_sync checkpoints them into the
 * database file and empties the WAL; the data is all there after a reopen */
START_TEST(bulk_load_then_sync) {
  char *dir = unit_tmpdir();
  char err[256];
  store *s;
  ck_assert_int_eq(store_open(dir, "full", &s, err, sizeof err), 0);
  ck_assert_int_eq(store_bulk_begin(s), 0);
  for (int b = 0; b < 3; b++) {
    ck_assert_int_eq(store_begin(s), 0);
    for (int i = 1; i <= 1000; i++) {
      store_event ev = {.seq = (uint64_t)(b * 1000 + i), .ts_ms = i, .uid = 0, .iid = 0, .tid = 0};
      ck_assert_int_eq(store_append_event(s, &ev), 0);
    }
    ck_assert_int_eq(store_commit(s), 0);
  }
  ck_assert_int_gt(file_size(dir, "recd.db-wal"), 0);
  ck_assert_int_eq(store_begin(s), 0);
  ck_assert_int_eq(store_sync(s), RECD_EINVAL); /* not inside a transaction */
  ck_assert_int_eq(store_rollback(s), 0);
  ck_assert_int_eq(store_sync(s), 0);
  ck_assert_int_eq(file_size(dir, "recd.db-wal"), 0);
  ck_assert_int_gt(file_size(dir, "recd.db"), 3000 * 8);
  /* later commits work as before */
  ck_assert_int_eq(store_begin(s), 0);
  store_event ev = {.seq = 3001, .ts_ms = 1, .uid = 0, .iid = 0, .tid = 0};
  ck_assert_int_eq(store_append_event(s, &ev), 0);
  ck_assert_int_eq(store_commit(s), 0);
  store_close(s);

  ck_assert_int_eq(store_open(dir, "full", &s, err, sizeof err), 0);
  scan_acc a = {0};
  ck_assert_int_eq(store_scan_events(s, 0, on_ev, &a), 0);
  ck_assert_int_eq(a.n, 3001);
  ck_assert_uint_eq(a.last, 3001);
  store_close(s);
  unit_rmrf(dir);
  free(dir);
}
END_TEST

/* store_append_events writes exactly the rows store_append_event would, for a
 * count that is not a multiple of the rows per statement; seqs that do not
 * continue the table (a repeat, a gap) fail the store and leave nothing */
typedef struct {
  store_event ev[2000];
  char text[2000][2][16];
  int n;
} ev_dump;

static int on_ev_copy(void *arg, const store_event *ev) {
  ev_dump *d = arg;
  int i = d->n++;
  d->ev[i] = *ev;
  snprintf(d->text[i][0], 16, "%s", ev->session ? ev->session : "(null)");
  snprintf(d->text[i][1], 16, "%s", ev->rec_id ? ev->rec_id : "(null)");
  return 0;
}

static void dump_events(const char *dir, ev_dump *d) {
  char err[256];
  store *s;
  ck_assert_int_eq(store_open(dir, "normal", &s, err, sizeof err), 0);
  d->n = 0;
  ck_assert_int_eq(store_scan_events(s, 0, on_ev_copy, d), 0);
  store_close(s);
}

START_TEST(append_events_equals_single_appends) {
  enum { N = 1000 + 37 };
  static store_event evs[N];
  static char sess[N][16];
  for (int i = 0; i < N; i++) {
    snprintf(sess[i], sizeof sess[i], "s%d", i / 7);
    evs[i] = (store_event){.seq = (uint64_t)i + 1, .ts_ms = 1000 + i, .uid = (uint32_t)(i % 13),
                           .iid = (uint32_t)(i % 29), .tid = i % 5, .value = i * 0.25, .has_value = i % 3 == 0,
                           .session = i % 4 ? sess[i] : NULL, .rec_id = i % 11 == 0 ? "r1" : NULL};
  }
  char *dir[2] = {unit_tmpdir(), unit_tmpdir()};
  char err[256];
  for (int way = 0; way < 2; way++) {
    store *s;
    ck_assert_int_eq(store_open(dir[way], "normal", &s, err, sizeof err), 0);
    ck_assert_int_eq(store_begin(s), 0);
    if (way) {
      ck_assert_int_eq(store_append_events(s, evs, 100), 0);
      ck_assert_int_eq(store_append_events(s, evs + 100, 0), 0);
      ck_assert_int_eq(store_append_events(s, evs + 100, N - 100), 0);
    } else {
      for (int i = 0; i < N; i++) ck_assert_int_eq(store_append_event(s, &evs[i]), 0);
    }
    ck_assert_int_eq(store_commit(s), 0);
    store_close(s);
  }
  static ev_dump d[2];
  dump_events(dir[0], &d[0]);
  dump_events(dir[1], &d[1]);
  ck_assert_int_eq(d[0].n, N);
  ck_assert_int_eq(d[1].n, N);
  for (int i = 0; i < N; i++) {
    const store_event *a = &d[0].ev[i], *b = &d[1].ev[i];
    ck_assert_uint_eq(a->seq, b->seq);
    ck_assert_int_eq(a->ts_ms, b->ts_ms);
    ck_assert_uint_eq(a->uid, b->uid);
    ck_assert_uint_eq(a->iid, b->iid);
    ck_assert_int_eq(a->tid, b->tid);
    ck_assert_int_eq(a->has_value, b->has_value);
    if (a->has_value) ck_assert_double_eq(a->value, b->value);
    ck_assert_str_eq(d[0].text[i][0], d[1].text[i][0]);
    ck_assert_str_eq(d[0].text[i][1], d[1].text[i][1]);
  }
  /* seqs that do not continue the table fail the store, whichever way */
  store_event more[200];
  for (int bad = 0; bad < 4; bad++) {
    /* 0: a repeat inside; 1: a gap before a full statement; 2: a repeat, one
     * row; 3: a gap, a few rows */
    static const uint64_t first[4] = {N + 1, N + 11, 7, N + 4};
    static const size_t count[4] = {200, 200, 1, 5};
    for (int i = 0; i < 200; i++) more[i] = (store_event){.seq = first[bad] + (uint64_t)i, .ts_ms = 1};
    if (bad == 0) more[150].seq = 5;
    size_t n = count[bad];
    store *s;
    ck_assert_int_eq(store_open(dir[1], "normal", &s, err, sizeof err), 0);
    ck_assert_int_eq(store_begin(s), 0);
    ck_assert_int_eq(store_append_events(s, more, n), RECD_EFATAL);
    ck_assert_int_eq(store_failed(s), 1);
    ck_assert_int_eq(store_begin(s), RECD_EFATAL);
    store_close(s);
    dump_events(dir[1], &d[1]);
    ck_assert_int_eq(d[1].n, N); /* nothing of the failed transaction */
  }
  for (int w = 0; w < 2; w++) {
    unit_rmrf(dir[w]);
    free(dir[w]);
  }
}
END_TEST

typedef struct {
  uint64_t next;
  int bad, kept;
} seq_check;

/* events come in seq order, from c->next; uid = seq - 1 up to N, then "kept" */
static int on_ev_seq(void *arg, const store_event *ev) {
  seq_check *c = arg;
  if (ev->seq != c->next++) c->bad++;
  if (ev->session) c->kept += !strcmp(ev->session, "kept");
  else if (ev->uid != ev->seq - 1) c->bad++;
  return 0;
}

/* A transaction's events span blocks of at most 4,096: a scan from any seq
 * (inside a block, at a boundary, past the end) gives exactly the events after
 * it; a rolled-back transaction's events are gone, and the next one continues
 * at the same seq. */
START_TEST(blocks_scan_from_anywhere) {
  enum { N = 4096 * 2 + 500 };
  char *dir = unit_tmpdir();
  char err[256];
  store *s;
  ck_assert_int_eq(store_open(dir, "off", &s, err, sizeof err), 0);
  static store_event evs[N];
  for (int i = 0; i < N; i++)
    evs[i] = (store_event){.seq = (uint64_t)i + 1, .ts_ms = 1000 + i / 3, .uid = (uint32_t)i, .iid = 7, .tid = 1};
  ck_assert_int_eq(store_begin(s), 0);
  ck_assert_int_eq(store_append_events(s, evs, 3000), 0);
  ck_assert_int_eq(store_append_events(s, evs + 3000, N - 3000), 0);
  ck_assert_int_eq(store_commit(s), 0);
  ck_assert_int_eq(store_begin(s), 0);
  store_event x = {.seq = N + 1, .ts_ms = 5, .uid = 1, .iid = 1, .tid = 0, .session = "gone"};
  ck_assert_int_eq(store_append_events(s, &x, 1), 0);
  ck_assert_int_eq(store_rollback(s), 0);
  x.session = "kept";
  ck_assert_int_eq(store_begin(s), 0);
  ck_assert_int_eq(store_append_events(s, &x, 1), 0);
  ck_assert_int_eq(store_commit(s), 0);
  uint64_t last = 0, count = 0;
  ck_assert_int_eq(store_last_seq(s, &last), 0);
  ck_assert_int_eq(store_count_events(s, &count), 0);
  ck_assert_uint_eq(last, N + 1);
  ck_assert_uint_eq(count, N + 1);
  static const uint64_t from[] = {0, 1, 2999, 3000, 4095, 4096, 4097, 8191, 8192, 8193, N - 1, N, N + 1, N + 50};
  for (size_t f = 0; f < sizeof from / sizeof *from; f++) {
    seq_check c = {.next = from[f] + 1};
    ck_assert_int_eq(store_scan_events(s, from[f], on_ev_seq, &c), 0);
    ck_assert_int_eq(c.bad, 0);
    ck_assert_uint_eq(c.next, from[f] >= N + 1 ? from[f] + 1 : N + 2); /* every one after from, up to the last */
    ck_assert_int_eq(c.kept, from[f] <= N);
  }
  store_close(s);
  unit_rmrf(dir);
  free(dir);
}
END_TEST

static void exec_sql(const char *dir, const char *q) {
  char path[600];
  snprintf(path, sizeof path, "%s/recd.db", dir);
  sqlite3 *db;
  ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
  char *msg = NULL;
  int rc = sqlite3_exec(db, q, NULL, NULL, &msg);
  if (rc != SQLITE_OK) ck_abort_msg("%s: %s", q, msg);
  sqlite3_close(db);
}

/* A data dir of format 1 (one row per event) is converted at open: the same
 * events, in blocks; the old table is gone; later appends continue it. */
START_TEST(format1_is_converted) {
  char *dir = unit_tmpdir();
  exec_sql(dir,
           "PRAGMA journal_mode=WAL;"
           "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);"
           "CREATE TABLE users(uid INTEGER PRIMARY KEY, key TEXT NOT NULL);"
           "CREATE TABLE event_types(tid INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
           "CREATE TABLE events(seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, uid INTEGER NOT NULL,"
           " iid INTEGER NOT NULL, tid INTEGER NOT NULL, value REAL, session TEXT, rec_id TEXT);"
           "INSERT INTO meta VALUES ('format', '1');"
           "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 5000)"
           " INSERT INTO events SELECT i, 1000 * i, i % 17, i % 29, i % 3, CASE WHEN i % 4 = 0 THEN i * 0.5 END,"
           " CASE WHEN i % 5 THEN 's' || (i / 5) END, CASE WHEN i % 7 = 0 THEN 'r' || i END FROM k;");
  char err[256];
  store *s;
  ck_assert_int_eq(store_open(dir, "full", &s, err, sizeof err), 0);
  static ev_dump d;
  d.n = 0;
  ck_assert_int_eq(store_scan_events(s, 3500, on_ev_copy, &d), 0);
  ck_assert_int_eq(d.n, 1500);
  for (int i = 0; i < d.n; i++) {
    int k = 3501 + i;
    const store_event *e = &d.ev[i];
    ck_assert_uint_eq(e->seq, (uint64_t)k);
    ck_assert_int_eq(e->ts_ms, 1000LL * k);
    ck_assert_uint_eq(e->uid, (uint32_t)(k % 17));
    ck_assert_uint_eq(e->iid, (uint32_t)(k % 29));
    ck_assert_int_eq(e->tid, k % 3);
    ck_assert_int_eq(e->has_value, k % 4 == 0);
    if (e->has_value) ck_assert_double_eq(e->value, k * 0.5);
    char want[16];
    snprintf(want, sizeof want, "s%d", k / 5);
    ck_assert_str_eq(d.text[i][0], k % 5 ? want : "(null)");
    snprintf(want, sizeof want, "r%d", k);
    ck_assert_str_eq(d.text[i][1], k % 7 == 0 ? want : "(null)");
  }
  store_event next = {.seq = 5001, .ts_ms = 1, .uid = 1, .iid = 1, .tid = 0};
  ck_assert_int_eq(store_begin(s), 0);
  ck_assert_int_eq(store_append_events(s, &next, 1), 0);
  ck_assert_int_eq(store_commit(s), 0);
  store_close(s);
  exec_sql(dir, "SELECT CASE WHEN (SELECT value FROM meta WHERE key = 'format') = '2' AND NOT EXISTS"
                " (SELECT 1 FROM sqlite_master WHERE name = 'events') THEN 1 ELSE abs(-9223372036854775807 - 1) END;");
  ck_assert_int_eq(store_open(dir, "full", &s, err, sizeof err), 0);
  uint64_t last = 0;
  ck_assert_int_eq(store_last_seq(s, &last), 0);
  ck_assert_uint_eq(last, 5001);
  store_close(s);
  unit_rmrf(dir);
  free(dir);
}
END_TEST

/* a data dir from a newer recd is refused, saying so; a corrupt block fails
 * the scan with RECD_ESTORE instead of handing out garbage */
START_TEST(newer_format_and_corrupt_block) {
  char *dir = unit_tmpdir();
  char err[256] = "";
  store *s;
  ck_assert_int_eq(store_open(dir, "full", &s, err, sizeof err), 0);
  store_event ev[3] = {{.seq = 1, .ts_ms = 1}, {.seq = 2, .ts_ms = 2}, {.seq = 3, .ts_ms = 3}};
  ck_assert_int_eq(store_begin(s), 0);
  ck_assert_int_eq(store_append_events(s, ev, 3), 0);
  ck_assert_int_eq(store_commit(s), 0);
  store_close(s);
  exec_sql(dir, "UPDATE event_blocks SET data = substr(data, 1, length(data) - 1)");
  ck_assert_int_eq(store_open(dir, "full", &s, err, sizeof err), 0);
  scan_acc a = {0};
  ck_assert_int_eq(store_scan_events(s, 0, on_ev, &a), RECD_ESTORE);
  store_close(s);
  exec_sql(dir, "UPDATE meta SET value = '3' WHERE key = 'format'");
  ck_assert_int_ne(store_open(dir, "full", &s, err, sizeof err), 0);
  ck_assert_ptr_null(s);
  ck_assert_ptr_nonnull(strstr(err, "format 3, written by a newer recd"));
  unit_rmrf(dir);
  free(dir);
}
END_TEST

START_TEST(open_error_is_clear) {
  char err[256] = "";
  store *s = NULL;
  ck_assert_int_ne(store_open("/proc/definitely/not/here", "full", &s, err, sizeof err), 0);
  ck_assert_ptr_null(s);
  ck_assert_ptr_nonnull(strstr(err, "/proc/definitely/not/here"));
}
END_TEST

Suite *store_suite(void) {
  Suite *s = suite_create("store");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, roundtrip_and_rollback);
  tcase_add_test(tc, open_error_is_clear);
  tcase_add_test(tc, bulk_load_then_sync);
  tcase_add_test(tc, append_events_equals_single_appends);
  tcase_add_test(tc, blocks_scan_from_anywhere);
  tcase_add_test(tc, format1_is_converted);
  tcase_add_test(tc, newer_format_and_corrupt_block);
  suite_add_tcase(s, tc);
  return s;
}
