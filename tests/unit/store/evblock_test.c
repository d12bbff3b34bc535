#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/evblock.h"
#include "unit.h"

/* every field comes back as it went in, over deltas of both signs and ids,
 * values and strings at their limits; seq is not stored */
START_TEST(roundtrip) {
  static const int64_t ts[] = {1793318404031LL, 1793318404031LL, 5, -7, INT64_MAX, INT64_MIN, 0, 1793318404032LL};
  static const char *const sess[] = {NULL, "sess_1", "", "a\"b\\c", NULL, "é", NULL, "x"};
  static const char *const rec[] = {NULL, NULL, "r1", "", "rec_2", NULL, NULL, "r"};
  static const uint32_t ids[] = {0, 1, 127, 128, 16383, 16384, UINT32_MAX, 99026};
  double vals[] = {0, -0.0, 1.5, -1e300, NAN, INFINITY, 4.9e-324, 0.1};
  enum { N = 8 };
  evblock_enc b;
  evblock_enc_init(&b);
  for (int round = 0; round < 2; round++) {
    evblock_enc_reset(&b);
    for (int i = 0; i < N; i++) {
      store_event ev = {.seq = 99, .ts_ms = ts[i], .uid = ids[i], .iid = ids[N - 1 - i], .tid = i == 3 ? 1000000 : i,
                        .value = vals[i], .has_value = i % 3 != 1, .session = sess[i], .rec_id = rec[i]};
      evblock_put(&b, &ev);
    }
    ck_assert_uint_eq(b.n, N);
    evblock_dec d;
    evblock_dec_init(&d, b.buf, b.len);
    store_event ev;
    for (int i = 0; i < N; i++) {
      ck_assert_int_eq(evblock_next(&d, &ev), 1);
      ck_assert_int_eq(ev.ts_ms, ts[i]);
      ck_assert_uint_eq(ev.uid, ids[i]);
      ck_assert_uint_eq(ev.iid, ids[N - 1 - i]);
      ck_assert_int_eq(ev.tid, i == 3 ? 1000000 : i);
      ck_assert_int_eq(ev.has_value, i % 3 != 1);
      if (ev.has_value) ck_assert_mem_eq(&ev.value, &vals[i], sizeof(double)); /* the bits: NaN, -0 */
      if (sess[i]) ck_assert_str_eq(ev.session, sess[i]);
      else ck_assert_ptr_null(ev.session);
      if (rec[i]) ck_assert_str_eq(ev.rec_id, rec[i]);
      else ck_assert_ptr_null(ev.rec_id);
    }
    ck_assert_int_eq(evblock_next(&d, &ev), 0);
    ck_assert_int_eq(evblock_next(&d, &ev), 0);
  }
  evblock_enc_free(&b);
}
END_TEST

/* every cut of a valid block ends cleanly between events or fails, never
 * reads past its end (ASan) */
START_TEST(truncated_and_malformed) {
  evblock_enc b;
  evblock_enc_init(&b);
  store_event ev = {.ts_ms = 1793318404031LL, .uid = 85652, .iid = 99026, .tid = 2, .value = 3.5, .has_value = 1,
                    .session = "sess_9", .rec_id = "r"};
  evblock_put(&b, &ev);
  size_t one = b.len;
  evblock_put(&b, &ev);
  for (size_t cut = 0; cut <= b.len; cut++) {
    unsigned char *copy = malloc(cut ? cut : 1);
    memcpy(copy, b.buf, cut);
    evblock_dec d;
    evblock_dec_init(&d, copy, cut);
    store_event out;
    int n = 0, r;
    while ((r = evblock_next(&d, &out)) == 1) n++;
    if (cut == 0) ck_assert(r == 0 && n == 0);
    else if (cut == one) ck_assert(r == 0 && n == 1);
    else if (cut == b.len) ck_assert(r == 0 && n == 2);
    else ck_assert_int_eq(r, -1);
    free(copy);
  }
  /* an id past 32 bits, an overlong varint */
  static const unsigned char big_uid[] = {0x00, 0x80, 0x80, 0x80, 0x80, 0x10, 0x01, 0x00};
  static const unsigned char overlong[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 1, 0};
  evblock_dec d;
  store_event out;
  evblock_dec_init(&d, big_uid, sizeof big_uid);
  ck_assert_int_eq(evblock_next(&d, &out), -1);
  evblock_dec_init(&d, overlong, sizeof overlong);
  ck_assert_int_eq(evblock_next(&d, &out), -1);
  evblock_enc_free(&b);
}
END_TEST

Suite *evblock_suite(void) {
  Suite *s = suite_create("evblock");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, roundtrip);
  tcase_add_test(tc, truncated_and_malformed);
  suite_add_tcase(s, tc);
  return s;
}
