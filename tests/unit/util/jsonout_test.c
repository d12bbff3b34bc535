/* jsonout: byte-for-byte the text jansson writes for the same values. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/jsonout.h"
#include "unit.h"

static uint64_t rng = 88172645463325252ULL;
static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* jsonout_real (precision 6, the answers') or jsonout_real_g against json_dumps
 * at that precision (17 is jansson's default, the catalog's properties') */
static void check_real_at(double v, int precision) {
  jsonout j;
  jsonout_init(&j);
  if (precision == 6) jsonout_real(&j, v);
  else jsonout_real_g(&j, v, precision);
  json_t *r = json_real(v);
  char *want = json_dumps(r, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(precision));
  ck_assert_ptr_nonnull(want);
  ck_assert_msg(j.len == strlen(want) && !memcmp(j.p, want, j.len), "%.17g: got '%.*s', jansson '%s'", v, (int)j.len,
                j.p, want);
  free(want);
  json_decref(r);
  jsonout_release(&j);
}

static void check_real(double v) { check_real_at(v, 6); }

START_TEST(reals_match_jansson) {
  static const double fixed[] = {0.0, -0.0, 1.0, 2.0, 0.5, 0.1, 1e-4, 9.99995e-5, 0.000123456789, 999999.0,
                                 999999.5, 1e6, 1e7, 123456.0, 9.999995, 9.9999949, 0.30000001, 1e-30, 3e38,
                                 1.70355, 0.95267, 0.456593, -0.25, 100.0, 1234.5678};
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
    check_real(fixed[i]);
    check_real((double)(float)fixed[i]);
  }
  for (int i = 0; i < 300000; i++) {
    uint64_t r = next();
    /* floats with exponents around the scores' range, and some anywhere */
    float f;
    if (i % 4) {
      int ex = (int)(r % 40) - 20;
      f = ldexpf((float)((r >> 8) & 0xFFFFFF) / 16777216.0f + 0.5f, ex);
    } else {
      uint32_t bits = (uint32_t)(r >> 16);
      memcpy(&f, &bits, 4);
      if (!isfinite(f)) continue;
    }
    if (r & (1ULL << 63)) f = -f;
    check_real((double)f);
  }
  static const double wide[] = {0.0, -0.0, 1.0, 21.99, 0.1, -5.5, 1e300, 1e-300, 1e23, 123456789012345678.0, 5e-324};
  for (size_t i = 0; i < sizeof wide / sizeof wide[0]; i++) check_real_at(wide[i], 17);
  for (int i = 0; i < 20000; i++) {
    uint64_t bits = next();
    double d;
    memcpy(&d, &bits, 8);
    if (isfinite(d)) check_real_at(d, 17);
  }
  /* decimal ties and near-ties: d.ddddd5 */
  for (int i = 0; i < 100000; i++) {
    double d = (double)(100000 + next() % 900000) + 0.5;
    int ex = (int)(next() % 10) - 9;
    check_real((double)(float)(d * pow(10, ex)));
    check_real(d * pow(10, ex));
  }
}
END_TEST

/* 1 when jsonout_str takes s (valid UTF-8) */
static int writes(const char *s) {
  jsonout j;
  jsonout_init(&j);
  int ok = jsonout_str(&j, s) == 0;
  jsonout_release(&j);
  return ok;
}

START_TEST(strings_match_jansson) {
  for (int i = 0; i < 200000; i++) {
    char s[48];
    int n = (int)(next() % 40); /* past the 8-byte runs and their tails */
    for (int k = 0; k < n; k++) {
      uint64_t r = next();
      /* mostly ASCII and escapes, some UTF-8 lead/continuation bytes; every
       * other string mostly plain text, so runs of 8 plain bytes occur */
      if (i % 2 && r % 16) s[k] = (char)(0x20 + (r >> 8) % 96); /* 0x20..0x7f */
      else if (i % 2 && r % 64 == 0) s[k] = "\xc3\xa9\"\\\n"[(r >> 8) % 5];
      else s[k] = (char)(r % 3 ? (int)(r >> 8) % 128 : (int)(0x80 + (r >> 8) % 128));
      if (!s[k]) s[k] = 'x';
    }
    s[n] = 0;
    json_t *js = json_string(s);
    ck_assert_int_eq(writes(s), js != NULL);
    if (!js) { /* refused, and nothing written */
      jsonout j;
      jsonout_init(&j);
      jsonout_raw(&j, "[", 1);
      ck_assert_int_eq(jsonout_str(&j, s), -1);
      ck_assert_uint_eq(j.len, 1);
      jsonout_release(&j);
      continue;
    }
    char *want = json_dumps(js, JSON_ENCODE_ANY | JSON_COMPACT);
    jsonout j;
    jsonout_init(&j);
    ck_assert_int_eq(jsonout_str(&j, s), 0);
    ck_assert(j.len == strlen(want) && !memcmp(j.p, want, j.len));
    jsonout_release(&j);
    jsonout_init(&j);
    jsonout_raw(&j, "[", 1);
    ck_assert_int_eq(jsonout_str(&j, s), 0);
    ck_assert(j.len == 1 + strlen(want) && !memcmp(j.p + 1, want, j.len - 1));
    jsonout_release(&j);
    free(want);
    json_decref(js);
  }
  ck_assert(writes("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  ck_assert(!writes("\xc0\xaf"));         /* overlong */
  ck_assert(!writes("\xed\xa0\x80"));     /* surrogate */
  ck_assert(!writes("\xe2\x82"));         /* cut short */
}
END_TEST

START_TEST(integers) {
  static const unsigned long long v[] = {0, 1, 9, 10, 1000, 18446744073709551615ULL};
  static const char *want[] = {"0", "1", "9", "10", "1000", "18446744073709551615"};
  for (size_t i = 0; i < 6; i++) {
    jsonout j;
    jsonout_init(&j);
    jsonout_u64(&j, v[i]);
    ck_assert(j.len == strlen(want[i]) && !memcmp(j.p, want[i], j.len));
    jsonout_release(&j);
  }
}
END_TEST

START_TEST(grows_past_the_inline_buffer) {
  jsonout j;
  jsonout_init(&j);
  for (int i = 0; i < 2000; i++) jsonout_str(&j, "abc\"\n");
  ck_assert_uint_eq(j.len, 2000 * 9);
  ck_assert(!memcmp(j.p + 9 * 1999, "\"abc\\\"\\n\"", 9));
  jsonout_release(&j);
}
END_TEST

Suite *jsonout_suite(void) {
  Suite *s = suite_create("jsonout");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, reals_match_jansson);
  tcase_add_test(tc, strings_match_jansson);
  tcase_add_test(tc, grows_past_the_inline_buffer);
  tcase_add_test(tc, integers);
  suite_add_tcase(s, tc);
  return s;
}
