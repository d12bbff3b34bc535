/* tests for src/model/ranker.c: parameters and problem checks, learning a
 * known relevance function (nDCG@10 vs a random order), determinism, early
 * stopping, save/load and refused files, binary:logistic, concurrent
 * prediction; RANKER_BENCH=1 also prints prediction speed */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "model/ranker.h"
#include "unit.h"
#include "util/err.h"

#define NF 5
#define GROUP 20

static const char *const names5[NF] = {"covis_score", "mf_score", "item_ctr", "pop_7d", "noise"};

static uint64_t rng(uint64_t *s) {
  *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
  return *s >> 33;
}
static float unif(uint64_t *s) { return (float)(rng(s) & 0xffffff) / (float)0x1000000; }

/* ngroups requests of GROUP candidates; relevance is 2 if f0 > 0.5 and
 * f1 > 0.5, 1 if one of them, else 0; f2, f3 are noise, f4 noise with 10%
 * missing */
typedef struct {
  size_t nrows, ngroups;
  float *x, *label;
  uint32_t *groups;
  ranker_problem prob;
} dataset;

static void make_data(dataset *d, size_t ngroups, uint64_t seed) {
  uint64_t s = seed;
  d->ngroups = ngroups;
  d->nrows = ngroups * GROUP;
  d->x = malloc(d->nrows * NF * sizeof(float));
  d->label = malloc(d->nrows * sizeof(float));
  d->groups = malloc(ngroups * sizeof(uint32_t));
  for (size_t g = 0; g < ngroups; g++) d->groups[g] = GROUP;
  for (size_t i = 0; i < d->nrows; i++) {
    float *row = d->x + i * NF;
    for (int f = 0; f < NF; f++) row[f] = unif(&s);
    if (rng(&s) % 10 == 0) row[4] = NAN;
    d->label[i] = (float)((row[0] > 0.5f) + (row[1] > 0.5f));
  }
  d->prob = (ranker_problem){.nrows = d->nrows,
                             .nfeatures = NF,
                             .x = d->x,
                             .label = d->label,
                             .group_sizes = d->groups,
                             .ngroups = ngroups,
                             .feature_names = names5};
}

static void free_data(dataset *d) {
  free(d->x);
  free(d->label);
  free(d->groups);
}

/* nDCG@10 of one group (gain 2^rel - 1, log2 discount); 1 without relevant rows */
static double ndcg10(const float *score, const float *label, size_t n) {
  size_t idx[64];
  ck_assert_uint_le(n, 64);
  for (size_t i = 0; i < n; i++) idx[i] = i;
  double dcg = 0, ideal = 0;
  for (size_t k = 0; k < n && k < 10; k++) {
    size_t best = k;
    for (size_t j = k + 1; j < n; j++)
      if (score[idx[j]] > score[idx[best]]) best = j;
    size_t t = idx[k];
    idx[k] = idx[best];
    idx[best] = t;
    dcg += (pow(2, label[idx[k]]) - 1) / log2((double)k + 2);
  }
  float l[64];
  memcpy(l, label, n * sizeof *l);
  for (size_t k = 0; k < n && k < 10; k++) {
    size_t best = k;
    for (size_t j = k + 1; j < n; j++)
      if (l[j] > l[best]) best = j;
    float t = l[k];
    l[k] = l[best];
    l[best] = t;
    ideal += (pow(2, l[k]) - 1) / log2((double)k + 2);
  }
  return ideal > 0 ? dcg / ideal : 1;
}

static double mean_ndcg(const dataset *d, const float *scores) {
  double sum = 0;
  for (size_t g = 0; g < d->ngroups; g++) sum += ndcg10(scores + g * GROUP, d->label + g * GROUP, GROUP);
  return sum / (double)d->ngroups;
}

static float *predict_all(const ranker *r, const dataset *d) {
  float *s = malloc(d->nrows * sizeof *s);
  ck_assert_int_eq(ranker_predict(r, d->x, d->nrows, s), 0);
  return s;
}

typedef struct {
  int calls, last_round;
  double last_train, last_valid;
} progress_log;

static void on_progress(void *arg, int round, double train, double valid) {
  progress_log *l = arg;
  l->calls++;
  ck_assert_int_eq(round, l->last_round + 1);
  l->last_round = round;
  ck_assert(train >= 0 && train <= 1);
  l->last_train = train;
  l->last_valid = valid;
}

static ranker_param quick_param(int rounds) {
  ranker_param p;
  ranker_default_param(&p);
  p.rounds = rounds;
  return p;
}

START_TEST(ranker_params_checked) {
  ranker_param p;
  ranker_default_param(&p);
  ck_assert_ptr_null(ranker_check_param(&p));
  ck_assert_str_eq(p.objective, "rank:ndcg");
  ck_assert_int_eq(p.rounds, 200);
  ck_assert_int_eq(p.max_depth, 6);
  ck_assert_int_eq(p.threads, 2);
  ck_assert(p.seed == 42);
  ranker_param q;
#define BAD(stmt, name)                        \
  q = p;                                       \
  stmt;                                        \
  ck_assert_ptr_nonnull(ranker_check_param(&q)); \
  ck_assert_ptr_nonnull(strstr(ranker_check_param(&q), name))
  BAD(q.objective = NULL, "objective");
  BAD(q.objective = "reg:squarederror", "objective");
  BAD(q.rounds = 0, "rounds");
  BAD(q.rounds = 10001, "rounds");
  BAD(q.max_depth = 0, "max_depth");
  BAD(q.max_depth = 17, "max_depth");
  BAD(q.eta = 0, "eta");
  BAD(q.eta = NAN, "eta");
  BAD(q.eta = 1.5f, "eta");
  BAD(q.subsample = 0, "subsample");
  BAD(q.subsample = NAN, "subsample");
  BAD(q.threads = 0, "threads");
  BAD(q.threads = 1000, "threads");
  BAD(q.early_stopping = -1, "early_stopping");
#undef BAD
  q = p;
  q.objective = "binary:logistic";
  ck_assert_ptr_null(ranker_check_param(&q));
  ck_assert_ptr_nonnull(ranker_check_param(NULL));

  /* training refuses bad parameters and bad problems, naming the problem */
  dataset d;
  make_data(&d, 10, 1);
  char err[300] = "";
  ranker_problem pr;
  q = p;
  q.threads = -1;
#define REFUSED(prob, valid, param, what)                                                   \
  err[0] = 0;                                                                               \
  ck_assert_ptr_null(ranker_train(prob, valid, param, NULL, NULL, err, sizeof err));        \
  ck_assert_msg(strstr(err, what) != NULL, "expected \"%s\" in \"%s\"", what, err)
  REFUSED(&d.prob, NULL, &q, "threads");
  pr = d.prob;
  pr.feature_names = NULL;
  REFUSED(&pr, NULL, &p, "feature_names");
  const char *dup[NF] = {"a", "b", "c", "b", "e"};
  pr.feature_names = dup;
  REFUSED(&pr, NULL, &p, "repeats");
  const char *spaced[NF] = {"a", "b c", "c", "d", "e"};
  pr.feature_names = spaced;
  REFUSED(&pr, NULL, &p, "feature_names[1]");
  pr = d.prob;
  pr.group_sizes = NULL;
  REFUSED(&pr, NULL, &p, "group_sizes");
  pr = d.prob;
  pr.ngroups = 9; /* sizes now sum to 180, nrows is 200 */
  REFUSED(&pr, NULL, &p, "sum");
  pr = d.prob;
  pr.nfeatures = 0;
  REFUSED(&pr, NULL, &p, "nfeatures");
  pr = d.prob;
  pr.nrows = 0;
  REFUSED(&pr, NULL, &p, "nrows");
  d.label[7] = 40;
  REFUSED(&d.prob, NULL, &p, "label[7]");
  d.label[7] = -1;
  REFUSED(&d.prob, NULL, &p, "label[7]");
  d.label[7] = 2;
  q = p;
  q.objective = "binary:logistic"; /* labels 0..2 are not probabilities */
  REFUSED(&d.prob, NULL, &q, "binary:logistic");
  d.label[7] = 0;
  d.x[3 * NF + 2] = INFINITY;
  REFUSED(&d.prob, NULL, &p, "x[row 3][feature 2] is infinite");
  d.x[3 * NF + 2] = 0.5f;
  /* the validation set is checked too, and must match the training set */
  dataset v;
  make_data(&v, 5, 2);
  pr = v.prob;
  pr.nfeatures = 4;
  REFUSED(&d.prob, &pr, &p, "valid: nfeatures");
  pr = v.prob;
  pr.group_sizes = NULL;
  REFUSED(&d.prob, &pr, &p, "valid: group_sizes");
  pr = v.prob;
  const char *other[NF] = {"covis_score", "mf_score", "item_ctr", "pop_30d", "noise"};
  pr.feature_names = other;
  REFUSED(&d.prob, &pr, &p, "valid: feature_names[3]");
#undef REFUSED
  ck_assert_ptr_null(ranker_train(NULL, NULL, &p, NULL, NULL, NULL, 0)); /* errlen 0 is fine */
  free_data(&v);
  free_data(&d);
}
END_TEST

START_TEST(ranker_learns_relevance) {
  dataset train, test;
  make_data(&train, 200, 11);
  make_data(&test, 100, 12);
  ranker_param p;
  ranker_default_param(&p); /* the defaults: 200 rounds, depth 6 */
  progress_log log = {0};
  char err[300] = "";
  ranker *r = ranker_train(&train.prob, &test.prob, &p, on_progress, &log, err, sizeof err);
  ck_assert_msg(r != NULL, "%s", err);
  ck_assert_int_eq(log.calls, 200);
  ck_assert_int_eq(ranker_rounds(r), 200);
  ck_assert_msg(log.last_train > 0.95 && log.last_valid > 0.9, "train %f valid %f", log.last_train, log.last_valid);
  ck_assert_uint_eq(ranker_nfeatures(r), NF);
  ck_assert_str_eq(ranker_feature_name(r, 1), "mf_score");
  ck_assert_ptr_null(ranker_feature_name(r, NF));
  ck_assert_int_eq(ranker_feature_index(r, "item_ctr"), 2);
  ck_assert_int_eq(ranker_feature_index(r, "nope"), -1);

  float *s = predict_all(r, &test);
  double learned = mean_ndcg(&test, s);
  uint64_t seed = 99;
  for (size_t i = 0; i < test.nrows; i++) s[i] = unif(&seed);
  double random = mean_ndcg(&test, s);
  /* our nDCG@10 agrees with XGBoost's on the same set */
  ck_assert_msg(fabs(learned - log.last_valid) < 0.02, "ours %f, XGBoost's %f", learned, log.last_valid);
  ck_assert_msg(learned >= 0.9, "nDCG@10 %f", learned);
  ck_assert_msg(random < 0.8 && learned - random > 0.2, "learned %f random %f", learned, random);
  /* the score orders by relevance: a 2 beats a 1 beats a 0 */
  float rows[3][NF] = {{0.9f, 0.9f, 0.1f, 0.1f, NAN}, {0.9f, 0.1f, 0.5f, 0.5f, 0.5f}, {0.1f, 0.1f, 0.9f, 0.9f, 0.9f}};
  float o[3];
  ck_assert_int_eq(ranker_predict(r, rows[0], 3, o), 0);
  ck_assert_msg(o[0] > o[1] && o[1] > o[2], "%f %f %f", o[0], o[1], o[2]);
  /* argument checks */
  ck_assert_int_eq(ranker_predict(r, rows[0], 0, o), 0);
  ck_assert_int_eq(ranker_predict(r, NULL, 3, o), RECD_EINVAL);
  rows[1][3] = -INFINITY;
  ck_assert_int_eq(ranker_predict(r, rows[0], 3, o), RECD_EINVAL);
  free(s);
  ranker_free(r);
  ranker_free(NULL);
  free_data(&train);
  free_data(&test);
}
END_TEST

/* base_margin: the trees learn a correction to a given prior score */
START_TEST(ranker_base_margin) {
  dataset train, test;
  make_data(&train, 200, 21);
  make_data(&test, 100, 22);
  /* relevance = a hidden bit no feature shows + (x1 > 0.5); the prior knows
   * the hidden bit, the features the rest */
  float *mt = malloc(train.nrows * sizeof(float)), *mv = malloc(test.nrows * sizeof(float));
  uint64_t h = 77;
  for (size_t i = 0; i < train.nrows; i++) {
    float bit = (float)(rng(&h) % 2);
    train.label[i] = bit + (train.x[i * NF + 1] > 0.5f);
    mt[i] = 2.0f * bit;
  }
  for (size_t i = 0; i < test.nrows; i++) {
    float bit = (float)(rng(&h) % 2);
    test.label[i] = bit + (test.x[i * NF + 1] > 0.5f);
    mv[i] = 2.0f * bit;
  }
  train.prob.base_margin = mt;
  test.prob.base_margin = mv;
  ranker_param p = quick_param(30);
  char err[300] = "";
  ranker *r = ranker_train(&train.prob, &test.prob, &p, NULL, NULL, err, sizeof err);
  ck_assert_msg(r != NULL, "%s", err);
  float *s = predict_all(r, &test);
  double trees = mean_ndcg(&test, s);
  for (size_t i = 0; i < test.nrows; i++) s[i] += mv[i];
  double with_prior = mean_ndcg(&test, s);
  double prior_only = mean_ndcg(&test, mv);
  ck_assert_msg(with_prior >= 0.9 && with_prior > prior_only + 0.05 && with_prior > trees + 0.1,
                "prior + trees %f, prior %f, trees alone %f", with_prior, prior_only, trees);
  free(s);
  ranker_free(r);
  mt[7] = NAN;
  ck_assert_ptr_null(ranker_train(&train.prob, NULL, &p, NULL, NULL, err, sizeof err));
  ck_assert_msg(strstr(err, "base_margin[7]"), "%s", err);
  free(mt);
  free(mv);
  free_data(&train);
  free_data(&test);
}
END_TEST

START_TEST(ranker_deterministic) {
  dataset train, test;
  make_data(&train, 100, 21);
  make_data(&test, 20, 22);
  ranker_param p = quick_param(40);
  char err[300] = "";
  ranker *a = ranker_train(&train.prob, NULL, &p, NULL, NULL, err, sizeof err);
  ck_assert_msg(a != NULL, "%s", err);
  ranker *b = ranker_train(&train.prob, NULL, &p, NULL, NULL, err, sizeof err);
  ck_assert_msg(b != NULL, "%s", err);
  p.seed = 7;
  ranker *c = ranker_train(&train.prob, NULL, &p, NULL, NULL, err, sizeof err);
  ck_assert_msg(c != NULL, "%s", err);
  float *sa = predict_all(a, &test), *sb = predict_all(b, &test), *sc = predict_all(c, &test);
  ck_assert_mem_eq(sa, sb, test.nrows * sizeof(float));
  /* another seed samples other rows (subsample 0.8): another model */
  ck_assert(memcmp(sa, sc, test.nrows * sizeof(float)) != 0);
  free(sa);
  free(sb);
  free(sc);
  ranker_free(a);
  ranker_free(b);
  ranker_free(c);
  free_data(&train);
  free_data(&test);
}
END_TEST

START_TEST(ranker_early_stopping) {
  dataset train, valid, test;
  make_data(&train, 60, 31);
  make_data(&valid, 30, 32);
  make_data(&test, 20, 33);
  ranker_param p = quick_param(1000);
  p.early_stopping = 5;
  progress_log log = {0};
  char err[300] = "";
  ranker *r = ranker_train(&train.prob, &valid.prob, &p, on_progress, &log, err, sizeof err);
  ck_assert_msg(r != NULL, "%s", err);
  int kept = ranker_rounds(r);
  /* it stopped early, exactly early_stopping rounds after the best one */
  ck_assert_msg(log.calls < 1000, "ran %d rounds", log.calls);
  ck_assert_int_eq(log.calls, kept + 5);
  /* the kept model is the first `kept` rounds of the same training */
  ranker_param q = quick_param(kept);
  ranker *full = ranker_train(&train.prob, NULL, &q, NULL, NULL, err, sizeof err);
  ck_assert_msg(full != NULL, "%s", err);
  float *a = predict_all(r, &test), *b = predict_all(full, &test);
  ck_assert_mem_eq(a, b, test.nrows * sizeof(float));
  /* and a cut model saves and loads like any other */
  char *dir = unit_tmpdir(), path[400];
  snprintf(path, sizeof path, "%s/es.rank", dir);
  ck_assert_int_eq(ranker_save(r, path), 0);
  ranker *l = ranker_load(path, err, sizeof err);
  ck_assert_msg(l != NULL, "%s", err);
  ck_assert_int_eq(ranker_rounds(l), kept);
  free(b);
  b = predict_all(l, &test);
  ck_assert_mem_eq(a, b, test.nrows * sizeof(float));
  ranker_free(l);
  unit_rmrf(dir);
  free(dir);
  free(a);
  free(b);
  ranker_free(full);
  ranker_free(r);
  free_data(&train);
  free_data(&valid);
  free_data(&test);
}
END_TEST

START_TEST(ranker_binary_logistic) {
  /* separable: clicked iff f0 > 0.5; no query groups */
  dataset d, t;
  make_data(&d, 50, 41);
  make_data(&t, 20, 42);
  for (size_t i = 0; i < d.nrows; i++) d.label[i] = d.x[i * NF] > 0.5f;
  for (size_t i = 0; i < t.nrows; i++) t.label[i] = t.x[i * NF] > 0.5f;
  ranker_problem pr = d.prob, pv = t.prob;
  pr.group_sizes = pv.group_sizes = NULL;
  pr.ngroups = pv.ngroups = 0;
  ranker_param p = quick_param(30);
  p.objective = "binary:logistic";
  progress_log log = {0};
  char err[300] = "";
  /* groups on one side only would mix two metrics */
  ck_assert_ptr_null(ranker_train(&pr, &t.prob, &p, NULL, NULL, err, sizeof err));
  ck_assert_msg(strstr(err, "valid: has group_sizes") != NULL, "%s", err);
  ranker *r = ranker_train(&pr, &pv, &p, on_progress, &log, err, sizeof err);
  ck_assert_msg(r != NULL, "%s", err);
  ck_assert_str_eq(ranker_params(r)->objective, "binary:logistic");
  ck_assert_msg(log.last_valid > 0.99, "valid AUC %f", log.last_valid); /* AUC without groups */
  float *s = predict_all(r, &t);
  size_t right = 0;
  for (size_t i = 0; i < t.nrows; i++) {
    ck_assert(s[i] >= 0 && s[i] <= 1);
    right += (s[i] > 0.5f) == (t.label[i] > 0.5f);
  }
  ck_assert_msg(right >= t.nrows * 98 / 100, "%zu of %zu right", right, t.nrows);
  /* it survives a save/load with its objective (probabilities, not margins) */
  char *dir = unit_tmpdir(), path[400];
  snprintf(path, sizeof path, "%s/b.rank", dir);
  ck_assert_int_eq(ranker_save(r, path), 0);
  ranker *l = ranker_load(path, err, sizeof err);
  ck_assert_msg(l != NULL, "%s", err);
  ck_assert_str_eq(ranker_params(l)->objective, "binary:logistic");
  float *s2 = predict_all(l, &t);
  ck_assert_mem_eq(s, s2, t.nrows * sizeof(float));
  ranker_free(l);
  unit_rmrf(dir);
  free(dir);
  free(s);
  free(s2);
  ranker_free(r);
  free_data(&d);
  free_data(&t);
}
END_TEST

static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  fseek(f, 0, SEEK_END);
  long sz = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)sz + 1);
  ck_assert_uint_eq(fread(b, 1, (size_t)sz, f), (size_t)sz);
  fclose(f);
  *n = (size_t)sz;
  return b;
}

static void spit(const char *path, const void *b, size_t n) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(b, 1, n, f), n);
  fclose(f);
}

/* write b with one byte xored, optionally re-summed so only the later checks can object */
static void write_poked(const char *path, const unsigned char *b, size_t n, size_t off, unsigned char x, int resum) {
  unsigned char *c = malloc(n);
  memcpy(c, b, n);
  c[off] ^= x;
  if (resum) {
    uint64_t sum = ranker__checksum(c, n - 8);
    memcpy(c + n - 8, &sum, 8);
  }
  spit(path, c, n);
  free(c);
}

#define REFUSED(file, what)                                    \
  do {                                                         \
    err[0] = 0;                                                \
    ck_assert_ptr_null(ranker_load(file, err, sizeof err));    \
    ck_assert_msg(strstr(err, what) != NULL, "expected \"%s\" in \"%s\"", what, err); \
  } while (0)

START_TEST(ranker_save_load) {
  dataset train, test;
  make_data(&train, 60, 51);
  make_data(&test, 20, 52);
  ranker_param p = quick_param(30);
  p.eta = 0.3f;
  char err[300] = "";
  ranker *r = ranker_train(&train.prob, NULL, &p, NULL, NULL, err, sizeof err);
  ck_assert_msg(r != NULL, "%s", err);
  char *dir = unit_tmpdir(), path[400], bad[400], tmp[420];
  snprintf(path, sizeof path, "%s/m.rank", dir);
  snprintf(bad, sizeof bad, "%s/bad.rank", dir);
  ck_assert_int_eq(ranker_save(r, path), 0);
  ranker *l = ranker_load(path, err, sizeof err);
  ck_assert_msg(l != NULL, "%s", err);
  float *a = predict_all(r, &test), *b = predict_all(l, &test);
  ck_assert_mem_eq(a, b, test.nrows * sizeof(float));
  ck_assert_uint_eq(ranker_nfeatures(l), NF);
  for (size_t i = 0; i < NF; i++) ck_assert_str_eq(ranker_feature_name(l, i), names5[i]);
  ck_assert_int_eq(ranker_rounds(l), 30);
  const ranker_param *lp = ranker_params(l);
  ck_assert_str_eq(lp->objective, "rank:ndcg");
  ck_assert(lp->rounds == 30 && lp->max_depth == 6 && lp->eta == 0.3f && lp->subsample == p.subsample &&
            lp->threads == p.threads && lp->seed == p.seed && lp->early_stopping == 0);
  /* saving the loaded ranker gives the same bytes; no .tmp is left */
  ck_assert_int_eq(ranker_save(l, bad), 0);
  size_t n, n2;
  unsigned char *img = slurp(path, &n), *img2 = slurp(bad, &n2);
  ck_assert_uint_eq(n, n2);
  ck_assert_mem_eq(img, img2, n);
  free(img2);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  ck_assert_int_ne(access(tmp, F_OK), 0);
  ranker_free(l);

  /* header 72 bytes, then the names, the model and the checksum */
  size_t names_end = 72;
  for (int i = 0; i < NF; i++) names_end += 2 + strlen(names5[i]);
  ck_assert_mem_eq(img, "RECDRANK", 8);
  uint64_t model_len;
  memcpy(&model_len, img + 64, 8);
  ck_assert_uint_eq(n, names_end + model_len + 8);

  /* a flipped byte in the header values, a name, the model, the checksum */
  size_t offs[5] = {34, 75, names_end + 10, names_end + (size_t)model_len / 2, n - 3};
  for (int t = 0; t < 5; t++) {
    write_poked(bad, img, n, offs[t], 0x10, 0);
    REFUSED(bad, "checksum");
  }
  write_poked(bad, img, n, 0, 0x01, 0);
  REFUSED(bad, "magic");
  write_poked(bad, img, n, 8, 0x02, 0);
  REFUSED(bad, "version");
  write_poked(bad, img, n, 20, 0x01, 0); /* nfeatures 5 -> 4: the sizes no longer add up */
  REFUSED(bad, "corrupt or has trailing bytes");
  write_poked(bad, img, n, 20, 0x40, 0); /* 69 features: the names run off the end */
  REFUSED(bad, "truncated or corrupt");
  write_poked(bad, img, n, 23, 0x40, 0); /* absurd feature count */
  REFUSED(bad, "features");
  write_poked(bad, img, n, 70, 0x01, 0); /* model length beyond the file */
  REFUSED(bad, "truncated or corrupt");
  /* truncated: by one byte, in the middle, to almost nothing, to nothing */
  spit(bad, img, n - 1);
  REFUSED(bad, "truncated");
  spit(bad, img, n / 2);
  REFUSED(bad, "truncated");
  spit(bad, img, 40);
  REFUSED(bad, "too short");
  spit(bad, img, 0);
  REFUSED(bad, "too short");
  /* trailing garbage */
  unsigned char *longer = calloc(1, n + 16);
  memcpy(longer, img, n);
  spit(bad, longer, n + 16);
  REFUSED(bad, "trailing bytes");
  free(longer);

  /* intact envelopes (valid checksum) with bad contents */
  write_poked(bad, img, n, 12, 0x07, 1); /* objective 7 */
  REFUSED(bad, "objective");
  write_poked(bad, img, n, 16, 0x02, 1); /* model format 3 */
  REFUSED(bad, "format");
  write_poked(bad, img, n, 32, 0x40, 1); /* max_depth 70 */
  REFUSED(bad, "max_depth");
  write_poked(bad, img, n, 52, 0x01, 1);
  REFUSED(bad, "reserved");
  write_poked(bad, img, n, 74, 'c' ^ ' ', 1); /* "covis_score" -> " ovis_score" */
  REFUSED(bad, "feature_names[0]");
  write_poked(bad, img, n, 24, 0x01, 1); /* rounds kept 30 -> 31: above the parameter */
  REFUSED(bad, "trees kept");
  write_poked(bad, img, n, 24, 0x03, 1); /* rounds kept 30 -> 29: XGBoost disagrees */
  REFUSED(bad, "29");
  write_poked(bad, img, n, 12, 0x01, 1); /* says binary:logistic, the model is rank:ndcg */
  REFUSED(bad, "objective");
  /* the model bytes replaced by something XGBoost cannot read */
  {
    const char junk[] = "{\"hello\": \"this is not a booster\"}";
    size_t jn = sizeof junk - 1, m = names_end + jn + 8;
    unsigned char *c = malloc(m);
    memcpy(c, img, names_end);
    uint64_t jl = jn;
    memcpy(c + 64, &jl, 8);
    memcpy(c + names_end, junk, jn);
    uint64_t sum = ranker__checksum(c, m - 8);
    memcpy(c + m - 8, &sum, 8);
    spit(bad, c, m);
    free(c);
    REFUSED(bad, "XGBoost refused the model");
  }
  /* the same model under fewer names: XGBoost's feature count disagrees */
  {
    size_t drop = 2 + strlen(names5[4]), m = n - drop;
    unsigned char *c = malloc(m);
    memcpy(c, img, names_end - drop);
    memcpy(c + names_end - drop, img + names_end, (size_t)model_len);
    uint32_t four = 4;
    memcpy(c + 20, &four, 4);
    uint64_t sum = ranker__checksum(c, m - 8);
    memcpy(c + m - 8, &sum, 8);
    spit(bad, c, m);
    free(c);
    REFUSED(bad, "features");
  }
  /* missing file, unwritable path, errlen 0 */
  snprintf(bad, sizeof bad, "%s/none.rank", dir);
  REFUSED(bad, "cannot open");
  snprintf(bad, sizeof bad, "%s/no/such/dir.rank", dir);
  ck_assert_int_lt(ranker_save(r, bad), 0);
  ck_assert_ptr_null(ranker_load(bad, NULL, 0));
  ck_assert_int_eq(ranker_save(NULL, path), RECD_EINVAL);
  /* the original file is still good after all that */
  l = ranker_load(path, err, sizeof err);
  ck_assert_msg(l != NULL, "%s", err);
  ranker_free(l);

  free(img);
  free(a);
  free(b);
  unit_rmrf(dir);
  free(dir);
  ranker_free(r);
  free_data(&train);
  free_data(&test);
}
END_TEST
#undef REFUSED

/* ---- concurrency ---- */

#define BATCH 100 /* rows per call: a request's candidate list */
#define PASSES 20

typedef struct {
  const ranker *r;
  const dataset *d;
  const float *expect;
  int mismatches, failures;
} worker_arg;

static void *predict_worker(void *p) {
  worker_arg *w = p;
  float out[BATCH];
  for (int pass = 0; pass < PASSES; pass++)
    for (size_t off = 0; off < w->d->nrows; off += BATCH) {
      size_t n = w->d->nrows - off < BATCH ? w->d->nrows - off : BATCH;
      if (ranker_predict(w->r, w->d->x + off * NF, n, out)) w->failures++;
      else if (memcmp(out, w->expect + off, n * sizeof(float))) w->mismatches++;
    }
  return NULL;
}

typedef struct {
  const dataset *train, *test;
  ranker_param p;
  float *scores; /* test scores of the trained ranker, or NULL */
} train_arg;

static void *train_worker(void *q) {
  train_arg *a = q;
  char err[300];
  ranker *r = ranker_train(&a->train->prob, NULL, &a->p, NULL, NULL, err, sizeof err);
  if (r) {
    a->scores = malloc(a->test->nrows * sizeof(float));
    if (ranker_predict(r, a->test->x, a->test->nrows, a->scores)) {
      free(a->scores);
      a->scores = NULL;
    }
  }
  ranker_free(r);
  return NULL;
}

START_TEST(ranker_concurrent_predict) {
  dataset train, test;
  make_data(&train, 60, 61);
  make_data(&test, 50, 62); /* 1000 rows = 10 batches */
  ranker_param p = quick_param(60);
  char err[300] = "";
  ranker *r = ranker_train(&train.prob, NULL, &p, NULL, NULL, err, sizeof err);
  ck_assert_msg(r != NULL, "%s", err);
  /* sequential reference, batch by batch */
  float *expect = malloc(test.nrows * sizeof(float));
  for (size_t off = 0; off < test.nrows; off += BATCH)
    ck_assert_int_eq(ranker_predict(r, test.x + off * NF, BATCH, expect + off), 0);
  /* and of a second ranker (another seed), trained alone */
  train_arg solo = {.train = &train, .test = &test, .p = quick_param(60)};
  solo.p.seed = 1234;
  train_worker(&solo);
  ck_assert_ptr_nonnull(solo.scores);
  /* 4 threads predict while a 5th trains the second ranker again, as the
   * engine retrains in the background while serving */
  train_arg bg = solo;
  bg.scores = NULL;
  worker_arg w[4];
  pthread_t t[4], tt;
  ck_assert_int_eq(pthread_create(&tt, NULL, train_worker, &bg), 0);
  for (int i = 0; i < 4; i++) {
    w[i] = (worker_arg){.r = r, .d = &test, .expect = expect};
    ck_assert_int_eq(pthread_create(&t[i], NULL, predict_worker, &w[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(t[i], NULL);
    ck_assert_int_eq(w[i].failures, 0);
    ck_assert_int_eq(w[i].mismatches, 0);
  }
  pthread_join(tt, NULL);
  ck_assert_ptr_nonnull(bg.scores);
  ck_assert_mem_eq(bg.scores, solo.scores, test.nrows * sizeof(float));
  free(bg.scores);
  free(solo.scores);
  /* one call over all rows agrees with the batches */
  float *all = predict_all(r, &test);
  ck_assert_mem_eq(all, expect, test.nrows * sizeof(float));
  free(all);
  free(expect);
  ranker_free(r);
  free_data(&train);
  free_data(&test);
}
END_TEST

/* ---- speed (RANKER_BENCH=1 build/unit_tests ranker) ---- */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

START_TEST(ranker_bench) {
  if (!getenv("RANKER_BENCH")) return;
  /* 30 features, 300 requests of 100 candidates, relevance from 6 of them
   * plus noise so the trees fill out to depth 6 */
  enum { F = 30, G = 300, C = 100 };
  size_t nrows = (size_t)G * C;
  float *x = malloc(nrows * F * sizeof(float)), *label = malloc(nrows * sizeof(float));
  uint32_t groups[G];
  char namebuf[F][16];
  const char *fnames[F];
  for (int f = 0; f < F; f++) {
    snprintf(namebuf[f], sizeof namebuf[f], "f%02d", f);
    fnames[f] = namebuf[f];
  }
  uint64_t s = 5;
  for (int g = 0; g < G; g++) groups[g] = C;
  for (size_t i = 0; i < nrows; i++) {
    float *row = x + i * F, v = 0;
    for (int f = 0; f < F; f++) row[f] = unif(&s);
    for (int f = 0; f < 6; f++) v += row[f] * (float)(f + 1);
    v += 3 * unif(&s);
    label[i] = v > 16 ? 3 : v > 14 ? 2 : v > 12 ? 1 : 0;
  }
  ranker_problem pr = {.nrows = nrows, .nfeatures = F, .x = x, .label = label, .group_sizes = groups, .ngroups = G,
                       .feature_names = fnames};
  ranker_param p;
  ranker_default_param(&p);
  char err[300] = "";
  double t0 = now_s();
  ranker *r = ranker_train(&pr, NULL, &p, NULL, NULL, err, sizeof err);
  double train_s = now_s() - t0;
  ck_assert_msg(r != NULL, "%s", err);
  float out[C];
  int calls = 0;
  t0 = now_s();
  double t1;
  do {
    for (int k = 0; k < 100; k++, calls++) ranker_predict(r, x + (size_t)(calls % G) * C * F, C, out);
    t1 = now_s();
  } while (t1 - t0 < 2.0);
  double per = (t1 - t0) / calls;
  fprintf(stderr,
          "ranker bench: train %zu rows x %d features, %d rounds depth %d, %d threads: %.2f s\n"
          "ranker bench: predict %d rows x %d features, 1 thread: %.1f us/call, %.0f rows/s (%d calls)\n",
          nrows, F, p.rounds, p.max_depth, p.threads, train_s, C, F, per * 1e6, C / per, calls);
  ranker_free(r);
  free(x);
  free(label);
}
END_TEST

Suite *ranker_suite(void) {
  Suite *s = suite_create("ranker");
  TCase *tc = tcase_create("ranker");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, ranker_params_checked);
  tcase_add_test(tc, ranker_learns_relevance);
  tcase_add_test(tc, ranker_base_margin);
  tcase_add_test(tc, ranker_deterministic);
  tcase_add_test(tc, ranker_early_stopping);
  tcase_add_test(tc, ranker_binary_logistic);
  tcase_add_test(tc, ranker_save_load);
  tcase_add_test(tc, ranker_concurrent_predict);
  tcase_add_test(tc, ranker_bench);
  suite_add_tcase(s, tc);
  return s;
}
