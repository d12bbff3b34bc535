#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
  suite_add_tcase(s, tc);
  return s;
}
