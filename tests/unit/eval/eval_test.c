/* tests for src/eval: metric definitions on hand-computed cases, the split,
 * and the quality regression check on MovieLens latest-small. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval/evaluate.h"
#include "eval/metrics.h"
#include "unit.h"

START_TEST(hand_computed) {
  /* relevant = {a, b, c}; list = [a, x, b, y, z], k = 5 */
  uint8_t hits[] = {1, 0, 1, 0, 0};
  eval_scores s;
  metrics_user(hits, 5, 5, 3, &s);
  ck_assert_double_eq_tol(s.precision, 2.0 / 5, 1e-12);
  ck_assert_double_eq_tol(s.recall, 2.0 / 3, 1e-12);
  double dcg = 1.0 + 1.0 / log2(4.0), idcg = 1.0 + 1.0 / log2(3.0) + 1.0 / log2(4.0);
  ck_assert_double_eq_tol(s.ndcg, dcg / idcg, 1e-12);
  ck_assert_double_eq_tol(s.map, (1.0 + 2.0 / 3) / 3, 1e-12);
  ck_assert_double_eq_tol(s.hit, 1, 1e-12);
  ck_assert_double_eq_tol(s.rr, 1, 1e-12);
  /* k smaller than the list; more relevant than k */
  uint8_t h2[] = {0, 1, 1, 1};
  metrics_user(h2, 4, 2, 10, &s);
  ck_assert_double_eq_tol(s.precision, 0.5, 1e-12);
  ck_assert_double_eq_tol(s.recall, 0.1, 1e-12);
  ck_assert_double_eq_tol(s.ndcg, (1.0 / log2(3.0)) / (1.0 + 1.0 / log2(3.0)), 1e-12);
  ck_assert_double_eq_tol(s.map, 0.5 / 2, 1e-12);
  ck_assert_double_eq_tol(s.rr, 0.5, 1e-12);
  /* a short list still divides precision by k */
  uint8_t h3[] = {1};
  metrics_user(h3, 1, 10, 1, &s);
  ck_assert_double_eq_tol(s.precision, 0.1, 1e-12);
  ck_assert_double_eq_tol(s.ndcg, 1.0, 1e-12);
  ck_assert_double_eq_tol(s.map, 1.0, 1e-12);
  metrics_user(h3, 0, 10, 1, &s);
  ck_assert_double_eq_tol(s.ndcg, 0, 1e-12);
}
END_TEST

Suite *metrics_suite(void) {
  Suite *s = suite_create("metrics");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, hand_computed);
  suite_add_tcase(s, tc);
  return s;
}

#define ML "../shared/data/ml-latest-small"

START_TEST(blend_beats_popularity_on_movielens) {
  ck_assert_msg(access(ML "/ratings.csv", R_OK) == 0, "MovieLens latest-small is expected at %s (see ../shared/data)", ML);
  eval_data d;
  eval_data_init(&d);
  char err[256];
  ck_assert_int_eq(eval_load_movielens(&d, ML "/ratings.csv", ML "/movies.csv", err, sizeof err), 0);
  ck_assert_uint_eq(d.n, 100836);
  uint8_t *is_test = calloc(d.n, 1);
  eval_split_random(&d, 0.75, 42, is_test);
  size_t ntest = 0;
  for (size_t i = 0; i < d.n; i++) ntest += is_test[i];
  ck_assert(ntest > d.n / 5 && ntest < d.n * 3 / 10);
  recd_config base;
  config_defaults(&base);
  const char *statics = "trending_window=0,popularity_half_life=36500d,affinity_half_life=36500d,"
                        "covis_half_life=36500d,covis_max_gap=36500d,new_arrival_window=0";
  char pop[512], blend[512];
  snprintf(pop, sizeof pop, "%s,w_covis=0,w_content=0,w_category=0,w_new=0,w_trending=1", statics);
  snprintf(blend, sizeof blend, "%s", statics);
  eval_result rp, rb;
  ck_assert_int_eq(eval_run(&d, is_test, &base, pop, 10, 4.0, &rp, err, sizeof err), 0);
  ck_assert_int_eq(eval_run(&d, is_test, &base, blend, 10, 4.0, &rb, err, sizeof err), 0);
  ck_assert_uint_eq(rb.users, 610);
  /* floors well above chance; blend must beat popularity by a clear margin */
  ck_assert_msg(rp.mean.ndcg > 0.15, "popularity nDCG@10 %.4f", rp.mean.ndcg);
  ck_assert_msg(rb.mean.ndcg > 0.22, "blend nDCG@10 %.4f below the floor 0.22", rb.mean.ndcg);
  ck_assert_msg(rb.mean.ndcg > rp.mean.ndcg * 1.08, "blend nDCG@10 %.4f vs popularity %.4f", rb.mean.ndcg,
                rp.mean.ndcg);
  ck_assert_msg(rb.mean.precision > rp.mean.precision, "blend P@10 %.4f vs popularity %.4f", rb.mean.precision,
                rp.mean.precision);
  free(is_test);
  eval_data_release(&d);
}
END_TEST

Suite *quality_suite(void) {
  Suite *s = suite_create("quality");
  TCase *tc = tcase_create("movielens");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, blend_beats_popularity_on_movielens);
  suite_add_tcase(s, tc);
  return s;
}
