/* tests for src/engine/rankdata.c and the "ranker" model kind: the learned
 * ranker's training data is point-in-time correct (appending events to the
 * log changes no feature of an earlier request), labels come from the
 * user's later events, and a ranker version trains, serves, survives a
 * restart and is refused when its file is corrupt. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "engine/engine_int.h"
#include "engine/rankdata.h"
#include "unit.h"
#include "util/err.h"

static recd_engine *open_at(const char *dir, recd_config *c) {
  config_defaults(c);
  snprintf(c->data, sizeof c->data, "%s", dir);
  snprintf(c->fsync, sizeof c->fsync, "off");
  c->ials_iterations = 5;
  c->ials_factors = 8;
  char err[512];
  recd_engine *e = NULL;
  int rc = engine_open(c, &e, err, sizeof err);
  ck_assert_msg(rc == 0, "engine_open: %s", err);
  return e;
}

/* A deterministic stream: 80 users, two tastes, items in 4 categories; each
 * user browses 3 items of their taste per session, sometimes clicks or buys. */
static void stream(recd_engine *e, int from, int to, int64_t t0) {
  char user[32], item[32];
  const char *cats[] = {"books", "music", "games", "tools"};
  if (from == 0)
    for (int i = 0; i < 200; i++) {
      snprintf(item, sizeof item, "%c%d", i < 100 ? 'a' : 'b', i % 100);
      const char *c[] = {cats[i % 4]};
      recd_item it = {.item_id = item, .categories = c, .ncategories = 1, .available = 1, .created_at_ms = -1};
      engine_op op = {.kind = OP_ITEMS, .items = &it, .nitems = 1};
      ck_assert_int_eq(engine_submit_wait(e, &op), 0);
    }
  for (int k = from; k < to; k++) {
    int u = (k * 7) % 80;
    snprintf(user, sizeof user, "u%d", u);
    snprintf(item, sizeof item, "%c%d", u < 40 ? 'a' : 'b', (u * 3 + k / 80 * 5 + k % 3) % 100);
    int type = k % 11 == 0 ? 4 : k % 5 == 0 ? 1 : 0;
    recd_event ev = {.user_id = user, .item_id = item, .type = type, .ts_ms = t0 + (int64_t)k * 60000};
    engine_op op = {.kind = OP_EVENTS, .events = &ev, .nevents = 1};
    ck_assert_int_eq(engine_submit_wait(e, &op), 0);
  }
}

START_TEST(rankdata_point_in_time) {
  char *dir = unit_tmpdir();
  recd_config c;
  recd_engine *e = open_at(dir, &c);
  int64_t t0 = 1700000000000LL;
  stream(e, 0, 1200, t0);
  rank_data_opts o = {.upto = 1200, .cut = 600, .stride = 7, .depth = 20, .horizon_ms = 4 * 3600000, .base = "ials"};
  rank_data a, b;
  char err[512];
  ck_assert_msg(engine__rank_data(e, &o, &a, err, sizeof err) == 0, "%s", err);
  ck_assert_msg(a.ngroups >= 20, "%zu groups", a.ngroups);
  ck_assert_uint_eq(a.nfeat, engine__rank_nfeatures());
  /* labels: every group has a positive; a label is an event weight */
  for (size_t g = 0; g < a.ngroups; g++) {
    float best = 0;
    for (size_t k = a.gstart[g]; k < a.gstart[g] + a.gsize[g]; k++) {
      float l = a.label[k];
      ck_assert_msg(l == 0 || l == 1 || l == 2 || l == 6, "label %g", l);
      if (l > best) best = l;
    }
    ck_assert(best > 0);
    ck_assert(a.gseq[g] > o.cut && a.gseq[g] <= o.upto && (a.gseq[g] - o.cut) % o.stride == 0);
  }

  /* append more events for the same users and items, rebuild up to the new end */
  stream(e, 1200, 1800, t0);
  o.upto = 1800;
  ck_assert_msg(engine__rank_data(e, &o, &b, err, sizeof err) == 0, "%s", err);
  ck_assert_msg(b.ngroups > a.ngroups, "%zu then %zu groups", a.ngroups, b.ngroups);
  size_t same = 0;
  for (size_t g = 0; g < a.ngroups; g++) {
    size_t h;
    for (h = 0; h < b.ngroups && b.gseq[h] != a.gseq[g]; h++) {
    }
    ck_assert_msg(h < b.ngroups, "group at seq %llu vanished", (unsigned long long)a.gseq[g]);
    ck_assert_uint_eq(a.gsize[g], b.gsize[h]);
    ck_assert_int_eq(memcmp(a.iid + a.gstart[g], b.iid + b.gstart[h], a.gsize[g] * sizeof *a.iid), 0);
    const float *xa = a.x + a.gstart[g] * a.nfeat, *xb = b.x + b.gstart[h] * b.nfeat;
    for (size_t k = 0; k < a.gsize[g] * a.nfeat; k++)
      ck_assert_msg(xa[k] == xb[k] || (isnan(xa[k]) && isnan(xb[k])), "seq %llu row %zu feature %s: %g then %g",
                    (unsigned long long)a.gseq[g], k / a.nfeat, engine__rank_feature_names()[k % a.nfeat],
                    (double)xa[k], (double)xb[k]);
    same++;
  }
  ck_assert_uint_eq(same, a.ngroups);

  /* the check can fail: the live state (everything applied) gives other features */
  size_t differ = 0;
  uint32_t iids[RANK_MAX_DEPTH];
  float *rows = malloc(RANK_MAX_DEPTH * a.nfeat * sizeof *rows);
  for (size_t g = 0; g < a.ngroups; g++) {
    size_t n = engine__rank_group(e, a.guid[g], o.depth, iids, rows);
    differ += n != a.gsize[g] || memcmp(rows, a.x + a.gstart[g] * a.nfeat, n * a.nfeat * sizeof *rows) != 0;
  }
  ck_assert_msg(differ > a.ngroups / 2, "only %zu of %zu groups differ from the live state", differ, a.ngroups);
  engine__rank_data_release(&a);
  engine__rank_data_release(&b);

  /* "just before": the group sampled at event 601 has exactly the features
   * an engine holding events 1..600 computes (no retrieval model here, so
   * both sides run the same code on the same state) */
  rank_data_opts o1 = {.upto = 601, .cut = 600, .stride = 1, .depth = 20, .horizon_ms = 4 * 3600000, .base = "none"};
  ck_assert_msg(engine__rank_data(e, &o1, &a, err, sizeof err) == 0, "%s", err);
  ck_assert_uint_eq(a.ngroups, 1);
  ck_assert_uint_eq(a.gseq[0], 601);
  char *dir2 = unit_tmpdir();
  recd_config c2;
  recd_engine *e2 = open_at(dir2, &c2);
  stream(e2, 0, 600, t0);
  size_t n = engine__rank_group(e2, a.guid[0], o1.depth, iids, rows);
  ck_assert_uint_eq(n, a.gsize[0]);
  for (size_t k = 0; k < n * a.nfeat; k++)
    ck_assert_msg(rows[k] == a.x[k] || (isnan(rows[k]) && isnan(a.x[k])), "row %zu feature %s: %g vs %g", k / a.nfeat,
                  engine__rank_feature_names()[k % a.nfeat], (double)rows[k], (double)a.x[k]);
  engine_free(e2);
  unit_rmrf(dir2);
  free(dir2);
  free(rows);
  engine__rank_data_release(&a);
  engine_free(e);
  unit_rmrf(dir);
  free(dir);
}
END_TEST

START_TEST(ranker_version_train_serve_corrupt) {
  char *dir = unit_tmpdir();
  recd_config c;
  recd_engine *e = open_at(dir, &c);
  c.ranker_window = 0.5;
  stream(e, 0, 1500, 1700000000000LL);
  engine_free(e);
  config_defaults(&c);
  snprintf(c.data, sizeof c.data, "%s", dir);
  snprintf(c.fsync, sizeof c.fsync, "off");
  c.ials_iterations = 5;
  c.ials_factors = 8;
  c.ranker_window = 0.5;
  c.ranker_horizon_ms = 4 * 3600000;
  char err[512];
  ck_assert_msg(engine_open(&c, &e, err, sizeof err) == 0, "%s", err);
  recd_train_request rq = {.kind = "ranker", .promote = RECD_PROMOTE_ALWAYS};
  json_t *meta;
  recd_fail f;
  ck_assert_msg(engine_train(e, &rq, &meta, &f) == 0, "%s", f.message);
  ck_assert_str_eq(json_string_value(json_object_get(meta, "kind")), "ranker");
  ck_assert_str_eq(json_string_value(json_object_get(meta, "stage")), "production");
  json_t *ri = json_object_get(meta, "ranker");
  ck_assert_ptr_nonnull(ri);
  ck_assert_int_ge(json_integer_value(json_object_get(ri, "groups_train")), 8);
  double rn = json_real_value(json_object_get(ri, "ndcg_at_10"));
  ck_assert_msg(rn > 0 && rn <= 1, "ndcg %g", rn);
  json_decref(meta);
  /* serving reranks: lists are full, scores ordered, nothing seen */
  recd_rec_request rr = {.user_id = "u7", .n = 5};
  recd_rec_result res;
  ck_assert_int_eq(engine_recommend(e, &rr, &res), 0);
  ck_assert_uint_eq(res.count, 5);
  for (size_t i = 1; i < res.count; i++) ck_assert(res.items[i].score <= res.items[i - 1].score);
  engine_result_release(&res);
  /* a second ranker version stays a candidate; corrupt its ranker file: refused */
  rq.promote = RECD_PROMOTE_NEVER;
  ck_assert_msg(engine_train(e, &rq, &meta, &f) == 0, "%s", f.message);
  ck_assert_int_eq(json_integer_value(json_object_get(meta, "version")), 2);
  json_decref(meta);
  char path[700];
  snprintf(path, sizeof path, "%s/models/v2/ranker.bin", dir);
  FILE *fp = fopen(path, "r+b");
  ck_assert_ptr_nonnull(fp);
  fseek(fp, 200, SEEK_SET);
  fputc('X', fp);
  fclose(fp);
  ck_assert_int_ne(engine_promote(e, 2, &meta, &f), 0);
  ck_assert_str_eq(f.code, "model_corrupt");
  ck_assert_ptr_nonnull(strstr(f.message, "ranker"));
  json_t *list = engine_models(e);
  ck_assert_int_eq(json_integer_value(json_object_get(list, "production")), 1);
  json_decref(list);
  engine_free(e);
  /* a restart serves the production ranker version */
  ck_assert_msg(engine_open(&c, &e, err, sizeof err) == 0, "%s", err);
  model_set *m = engine__models(e);
  ck_assert_ptr_nonnull(m);
  ck_assert_ptr_nonnull(m->ranker);
  ck_assert_ptr_nonnull(m->ials);
  engine__models_release(m);
  engine_free(e);
  unit_rmrf(dir);
  free(dir);
}
END_TEST

Suite *rankdata_suite(void) {
  Suite *s = suite_create("rankdata");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, rankdata_point_in_time);
  tcase_add_test(tc, ranker_version_train_serve_corrupt);
  suite_add_tcase(s, tc);
  return s;
}
