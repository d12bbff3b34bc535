/* tests for src/util: err, clock, strmap, u32map, fileio */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/fileio.h"
#include "util/strmap.h"
#include "util/stampmap.h"
#include "util/topkeys.h"
#include "util/u32map.h"

START_TEST(err_names) {
  ck_assert_str_eq(recd_errname(RECD_EINVAL), "RECD_EINVAL");
  ck_assert_str_eq(recd_strerror(RECD_ENOTFOUND), "not found");
  ck_assert_int_lt(RECD_EPARSE, -1000);
  ck_assert_int_ne(RECD_EINVAL, RECD_ENOMEM);
  ck_assert_str_eq(recd_errname(-2), "ERRNO");
  ck_assert_str_eq(recd_strerror(-2), "No such file or directory");
}
END_TEST

Suite *err_suite(void) {
  Suite *s = suite_create("err");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, err_names);
  suite_add_tcase(s, tc);
  return s;
}

static int64_t parse(const char *s) {
  int64_t v = -1;
  if (clock_parse_rfc3339(s, strlen(s), &v)) return -999;
  return v;
}

START_TEST(rfc3339_parse) {
  ck_assert_int_eq(parse("1970-01-01T00:00:00Z"), 0);
  ck_assert_int_eq(parse("2024-05-01T12:00:00Z"), 1714564800000LL);
  ck_assert_int_eq(parse("2024-05-01T12:00:00.250Z"), 1714564800250LL);
  ck_assert_int_eq(parse("2024-05-01T14:00:00+02:00"), 1714564800000LL);
  ck_assert_int_eq(parse("2024-05-01 12:00:00z"), 1714564800000LL);
  ck_assert_int_eq(parse("2024-02-29T00:00:00Z"), 1709164800000LL);
  ck_assert_int_eq(parse("2023-02-29T00:00:00Z"), -999);
  ck_assert_int_eq(parse("2024-13-01T00:00:00Z"), -999);
  ck_assert_int_eq(parse("2024-05-01T12:00:00"), -999);
  ck_assert_int_eq(parse("2024-05-01"), -999);
  ck_assert_int_eq(parse("yesterday"), -999);
  ck_assert_int_eq(parse("2024-05-01T12:00:00Zjunk"), -999);
}
END_TEST

START_TEST(rfc3339_roundtrip) {
  char buf[40];
  clock_format_rfc3339(1714564800250LL, buf, sizeof buf);
  ck_assert_str_eq(buf, "2024-05-01T12:00:00.250Z");
  ck_assert_int_eq(parse(buf), 1714564800250LL);
}
END_TEST

START_TEST(durations) {
  int64_t v;
  ck_assert_int_eq(clock_parse_duration("7d", &v), 0);
  ck_assert_int_eq(v, 7 * 86400000LL);
  ck_assert_int_eq(clock_parse_duration("2w", &v), 0);
  ck_assert_int_eq(v, 14 * 86400000LL);
  ck_assert_int_eq(clock_parse_duration("250ms", &v), 0);
  ck_assert_int_eq(v, 250);
  ck_assert_int_eq(clock_parse_duration("1.5h", &v), 0);
  ck_assert_int_eq(v, 5400000);
  ck_assert_int_ne(clock_parse_duration("7", &v), 0);
  ck_assert_int_ne(clock_parse_duration("xyz", &v), 0);
  ck_assert_int_ne(clock_parse_duration("-1d", &v), 0);
  ck_assert_int_ne(clock_parse_duration("", &v), 0);
}
END_TEST

Suite *clock_suite(void) {
  Suite *s = suite_create("clock");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, rfc3339_parse);
  tcase_add_test(tc, rfc3339_roundtrip);
  tcase_add_test(tc, durations);
  suite_add_tcase(s, tc);
  return s;
}

/* a key read by id stays where it was while ids are added (engine__item_key
 * reads keys without the map's lock), and every id maps to its own key across
 * the chunk boundaries (64, 64+128, ...) */
START_TEST(strmap_keys_never_move) {
  strmap m;
  strmap_init(&m);
  char key[32];
  enum { FIRST = 5000, ALL = 200000 };
  static const char *at[FIRST];
  for (int i = 0; i < FIRST; i++) {
    snprintf(key, sizeof key, "item_%d", i);
    strmap_intern(&m, key, strlen(key), NULL);
    at[i] = strmap_key(&m, (uint32_t)i);
  }
  for (int i = FIRST; i < ALL; i++) {
    snprintf(key, sizeof key, "item_%d", i);
    ck_assert_uint_eq(strmap_intern(&m, key, strlen(key), NULL), (uint32_t)i);
  }
  for (int i = 0; i < FIRST; i++) ck_assert_ptr_eq(strmap_key(&m, (uint32_t)i), at[i]);
  for (int i = 0; i < ALL; i++) {
    snprintf(key, sizeof key, "item_%d", i);
    ck_assert_str_eq(strmap_key(&m, (uint32_t)i), key);
  }
  ck_assert_uint_gt(strmap_memory(&m), (size_t)ALL * sizeof(strmap_ent));
  strmap_release(&m);
}
END_TEST

START_TEST(strmap_intern_find) {
  strmap m;
  strmap_init(&m);
  char key[32];
  for (int i = 0; i < 10000; i++) {
    snprintf(key, sizeof key, "user_%d", i);
    int created;
    ck_assert_uint_eq(strmap_intern(&m, key, strlen(key), &created), (uint32_t)i);
    ck_assert_int_eq(created, 1);
  }
  for (int i = 0; i < 10000; i += 7) {
    snprintf(key, sizeof key, "user_%d", i);
    int created;
    ck_assert_uint_eq(strmap_find(&m, key, strlen(key)), (uint32_t)i);
    ck_assert_uint_eq(strmap_intern(&m, key, strlen(key), &created), (uint32_t)i);
    ck_assert_int_eq(created, 0);
    ck_assert_str_eq(strmap_key(&m, (uint32_t)i), key);
  }
  ck_assert_uint_eq(strmap_find(&m, "nope", 4), STRMAP_NONE);
  ck_assert_uint_eq(strmap_find(&m, "user_1", 5), STRMAP_NONE); /* prefix is a different key */
  /* keys with embedded NUL are distinct */
  uint32_t a = strmap_intern(&m, "a\0b", 3, NULL), b = strmap_intern(&m, "a\0c", 3, NULL);
  ck_assert_uint_ne(a, b);
  ck_assert_uint_eq(strmap_count(&m), 10002);
  strmap_release(&m);
}
END_TEST

Suite *strmap_suite(void) {
  Suite *s = suite_create("strmap");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, strmap_intern_find);
  tcase_add_test(tc, strmap_keys_never_move);
  suite_add_tcase(s, tc);
  return s;
}

START_TEST(u32map_basic) {
  u32map m;
  u32map_init(&m);
  ck_assert_ptr_null(u32map_get(&m, 5));
  for (uint32_t i = 0; i < 5000; i++) *u32map_put(&m, i * 3, 0, NULL) = i;
  ck_assert_uint_eq(m.count, 5000);
  for (uint32_t i = 0; i < 5000; i++) ck_assert_uint_eq(*u32map_get(&m, i * 3), i);
  ck_assert_ptr_null(u32map_get(&m, 1));
  int created;
  *u32map_put(&m, 3, 0, &created) += 10;
  ck_assert_int_eq(created, 0);
  ck_assert_uint_eq(*u32map_get(&m, 3), 11);
  u32map_clear(&m);
  ck_assert_ptr_null(u32map_get(&m, 3));
  ck_assert_uint_eq(m.count, 0);
  u32map_release(&m);
}
END_TEST

/* the snapshot loader sizes a user's seen set with reserve(n - 1) before its
 * n puts: the capacity (memory, slot order) must be the one the puts alone reach */
START_TEST(u32map_reserve_matches_puts) {
  for (uint32_t n = 1; n < 3000; n++) {
    u32map a, b;
    u32map_init(&a);
    u32map_init(&b);
    u32map_reserve(&b, n - 1);
    uint32_t cap = b.cap;
    for (uint32_t i = 0; i < n; i++) {
      *u32map_put(&a, i * 7 + 1, 0, NULL) = i;
      *u32map_put(&b, i * 7 + 1, 0, NULL) = i;
    }
    ck_assert_uint_eq(b.cap, cap); /* no rehash */
    ck_assert_uint_eq(a.cap, b.cap);
    u32map_release(&a);
    u32map_release(&b);
  }
}
END_TEST

START_TEST(stampmap_basic) {
  stampmap m;
  stampmap_init(&m);
  ck_assert_ptr_null(stampmap_get(&m, 5));
  for (uint32_t i = 0; i < 5000; i++) *stampmap_put(&m, i * 3, 0, NULL) = i;
  for (uint32_t i = 0; i < 5000; i++) ck_assert_uint_eq(*stampmap_get(&m, i * 3), i);
  ck_assert_ptr_null(stampmap_get(&m, 1));
  ck_assert_ptr_null(stampmap_get(&m, 1u << 30)); /* beyond the arrays */
  int created;
  *stampmap_put(&m, 3, 7, &created) += 10;
  ck_assert_int_eq(created, 0);
  ck_assert_uint_eq(*stampmap_get(&m, 3), 11);
  stampmap_clear(&m);
  ck_assert_ptr_null(stampmap_get(&m, 3));
  ck_assert_uint_eq(*stampmap_put(&m, 3, 7, &created), 7);
  ck_assert_int_eq(created, 1);
  ck_assert_uint_eq(*stampmap_put(&m, 60000, STAMPMAP_MAX_VAL, NULL), STAMPMAP_MAX_VAL);
  /* the 16-bit stamps wrap: nothing may look current after, written or not */
  for (uint32_t k = 0; k < 70000; k++) {
    *stampmap_put(&m, 9, 1, NULL) = (uint16_t)k;
    ck_assert_uint_eq(*stampmap_get(&m, 9), (uint16_t)k);
    stampmap_clear(&m);
    ck_assert_ptr_null(stampmap_get(&m, 9));
    ck_assert_ptr_null(stampmap_get(&m, 4));
  }
  ck_assert_ptr_null(stampmap_get(&m, 3));
  ck_assert_ptr_null(stampmap_get(&m, 60000));
  stampmap_release(&m);
}
END_TEST

static int desc_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? 1 : x > y ? -1 : 0;
}

/* topkeys_front: the front it reports is the largest keys in order, at least
 * what was asked, and asking again on the rest continues the order exactly;
 * the keys are a permutation throughout */
START_TEST(topkeys_front_in_chunks) {
  uint64_t x = 99;
  for (int round = 0; round < 600; round++) {
    size_t n = (size_t)(round * 37 % 3000), want = 1 + (size_t)(round % 90);
    int pattern = round % 4; /* random, ascending, descending, few distinct high bits */
    uint64_t *k = xmalloc((n ? n : 1) * sizeof *k), *ref = xmalloc((n ? n : 1) * sizeof *ref);
    for (size_t i = 0; i < n; i++) {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      uint64_t hi = pattern == 0 ? x >> 40 : pattern == 1 ? i : pattern == 2 ? n - i : (x >> 60);
      ref[i] = k[i] = hi << 32 | (uint32_t)i; /* distinct, as the engine's keys */
    }
    qsort(ref, n, sizeof *ref, desc_u64);
    size_t done = 0;
    while (done < n) {
      size_t c = topkeys_front(k + done, n - done, want);
      ck_assert_uint_ge(c, want < n - done ? want : n - done);
      ck_assert_uint_le(c, n - done);
      for (size_t i = done; i < done + c; i++) ck_assert(k[i] == ref[i]);
      done += c;
      want *= 2;
    }
    qsort(k, n, sizeof *k, desc_u64);
    for (size_t i = 0; i < n; i++) ck_assert(k[i] == ref[i]);
    free(k);
    free(ref);
  }
}
END_TEST

START_TEST(topkeys_sort_matches_qsort) {
  uint64_t x = 5;
  for (size_t n = 0; n < 700; n += 7) {
    uint64_t k[700], ref[700];
    for (size_t i = 0; i < n; i++) {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      ref[i] = k[i] = (x >> 61) << 32 | (uint32_t)(x >> 20); /* many equal high parts */
    }
    topkeys_sort(k, n);
    qsort(ref, n, sizeof *ref, desc_u64);
    for (size_t i = 0; i < n; i++) ck_assert(k[i] == ref[i]);
  }
}
END_TEST

/* every size up to past a rank sort's largest, distinct keys and keys drawn
 * from a handful of values (equal keys make the rank sort give way) */
START_TEST(topkeys_sort_sizes_and_equal_keys) {
  uint64_t x = 11;
  static uint64_t k[600], ref[600];
  for (size_t n = 0; n < 600; n += n < 300 ? 1 : 37)
    for (int few = 0; few < 2; few++) {
      for (size_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        ref[i] = k[i] = few ? (x >> 62) << 63 | (x >> 61 & 1) : (x >> 16) << 16 | (uint16_t)i;
      }
      topkeys_sort(k, n);
      qsort(ref, n, sizeof *ref, desc_u64);
      for (size_t i = 0; i < n; i++) ck_assert(k[i] == ref[i]);
    }
}
END_TEST

Suite *u32map_suite(void) {
  Suite *s = suite_create("u32map");
  TCase *tc = tcase_create("core");
  /* thousands of sizes and orders each: 2-4 s per test under ASan on a slow
   * minute, past check's default 4 s (a CI run timed out in topkeys_front_in_chunks) */
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, u32map_basic);
  tcase_add_test(tc, u32map_reserve_matches_puts);
  tcase_add_test(tc, stampmap_basic);
  tcase_add_test(tc, topkeys_front_in_chunks);
  tcase_add_test(tc, topkeys_sort_matches_qsort);
  tcase_add_test(tc, topkeys_sort_sizes_and_equal_keys);
  suite_add_tcase(s, tc);
  return s;
}

/* ---- fileio ---- */

static void put_file(const char *path, size_t n) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  for (size_t i = 0; i < n; i++) fputc((int)(i * 7 % 251), f);
  ck_assert_int_eq(fclose(f), 0);
}

static long file_size(const char *path) {
  struct stat st;
  return stat(path, &st) ? -1 : (long)st.st_size;
}

START_TEST(remove_gently_removes) {
  char *dir = unit_tmpdir(), p[600];
  snprintf(p, sizeof p, "%s/big", dir);
  put_file(p, 3 * 4096 + 100);
  ck_assert_int_eq(fileio_remove_gently(p, 4096, 0, NULL), 0);
  ck_assert_int_eq(file_size(p), -1);
  ck_assert_int_eq(fileio_remove_gently(p, 4096, 0, NULL), 0); /* no such file: nothing to do */
  /* in a hurry: the rest in one go, still removed */
  atomic_int hurry = 1;
  put_file(p, 5 * 4096);
  ck_assert_int_eq(fileio_remove_gently(p, 4096, 1000, &hurry), 0);
  ck_assert_int_eq(file_size(p), -1);
  unit_rmrf(dir);
  free(dir);
}
END_TEST

/* a second name of a file in use (a crash between a snapshot's link and its
 * rename leaves state.snap.old naming state.snap's file): only unlinked, the
 * file keeps every byte */
START_TEST(remove_gently_spares_other_links) {
  char *dir = unit_tmpdir(), a[600], b[600];
  snprintf(a, sizeof a, "%s/state", dir);
  snprintf(b, sizeof b, "%s/state.old", dir);
  put_file(a, 3 * 4096 + 100);
  ck_assert_int_eq(link(a, b), 0);
  ck_assert_int_eq(fileio_remove_gently(b, 4096, 0, NULL), 0);
  ck_assert_int_eq(file_size(b), -1);
  ck_assert_int_eq(file_size(a), 3 * 4096 + 100);
  FILE *f = fopen(a, "rb");
  ck_assert_ptr_nonnull(f);
  for (int i = 0; i < 3 * 4096 + 100; i++) ck_assert_int_eq(fgetc(f), i * 7 % 251);
  fclose(f);
  unit_rmrf(dir);
  free(dir);
}
END_TEST

/* whole blocks written with O_DIRECT where the file system has it, the tail
 * through the page cache: the file holds exactly what was written */
START_TEST(direct_then_buffered_writes) {
  char *dir = unit_tmpdir(), p[600];
  snprintf(p, sizeof p, "%s/f", dir);
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ck_assert_int_ge(fd, 0);
  enum { BLK = 4096, N = 3 * BLK };
  unsigned char *buf = aligned_alloc(BLK, N);
  for (int i = 0; i < N; i++) buf[i] = (unsigned char)(i * 13 % 253);
  int direct = fileio_direct(fd, 1);
  ck_assert_msg(direct == 0 || direct == -EINVAL, "fileio_direct: %d", direct);
  ck_assert_int_eq(fileio_pwrite_all(fd, buf, 2 * BLK, 0), 0);
  ck_assert_int_eq(fileio_direct(fd, 0), 0);
  ck_assert_int_eq(fileio_pwrite_all(fd, buf + 2 * BLK, 100, 2 * BLK), 0);
  ck_assert_int_eq(close(fd), 0);
  ck_assert_int_eq(file_size(p), 2 * BLK + 100);
  FILE *f = fopen(p, "rb");
  ck_assert_ptr_nonnull(f);
  for (int i = 0; i < 2 * BLK + 100; i++) ck_assert_int_eq(fgetc(f), buf[i]);
  fclose(f);
  free(buf);
  unit_rmrf(dir);
  free(dir);
}
END_TEST

Suite *fileio_suite(void) {
  Suite *s = suite_create("fileio");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, remove_gently_removes);
  tcase_add_test(tc, remove_gently_spares_other_links);
  tcase_add_test(tc, direct_then_buffered_writes);
  suite_add_tcase(s, tc);
  return s;
}
