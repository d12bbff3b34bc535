/* tests for src/model/ials.c: parameters, training on two disjoint taste
 * groups, fold-in, top-k, similar, determinism, save/load and corruption */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/ials.h"
#include "unit.h"
#include "util/err.h"

/* NU users, NI items: users < NU/2 (group A) touch items < NI/2 (block A),
 * the others block B; user NU-1 has no interactions at all */
#define NU 200
#define NI 40
#define PER_USER 8

typedef struct {
  uint64_t indptr[NU + 1];
  uint32_t indices[NU * PER_USER];
  float values[NU * PER_USER];
  ials_problem prob;
} groups;

static uint64_t rng(uint64_t *s) {
  *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
  return *s >> 33;
}

static void make_groups(groups *g) {
  uint64_t s = 7;
  size_t n = 0;
  g->indptr[0] = 0;
  for (uint32_t u = 0; u < NU; u++) {
    if (u != NU - 1) {
      uint32_t base = u < NU / 2 ? 0 : NI / 2;
      char seen[NI / 2] = {0};
      for (int k = 0; k < PER_USER; k++) {
        uint32_t it;
        do it = (uint32_t)(rng(&s) % (NI / 2));
        while (seen[it]);
        seen[it] = 1;
        g->indices[n] = base + it;
        g->values[n] = 1.0f + (float)(rng(&s) % 3);
        n++;
      }
    }
    g->indptr[u + 1] = n;
  }
  g->prob = (ials_problem){.nusers = NU, .nitems = NI, .indptr = g->indptr, .indices = g->indices, .values = g->values};
}

static ials_param small_param(int factors) {
  ials_param p;
  ials_default_param(&p);
  p.factors = factors;
  p.reg = 10; /* 200 users: the default 0.05 lets 32 factors memorise each user */
  p.iterations = 15;
  p.threads = 2;
  return p;
}

static double cosine(const float *a, const float *b, int f) {
  double ab = 0, aa = 0, bb = 0;
  for (int k = 0; k < f; k++) {
    ab += (double)a[k] * b[k];
    aa += (double)a[k] * a[k];
    bb += (double)b[k] * b[k];
  }
  return ab / sqrt(aa * bb);
}

typedef struct {
  const groups *g;
  uint32_t u;
} seen_arg;

static int skip_seen(void *arg, uint32_t item) {
  const seen_arg *s = arg;
  for (uint64_t j = s->g->indptr[s->u]; j < s->g->indptr[s->u + 1]; j++)
    if (s->g->indices[j] == item) return 1;
  return 0;
}

typedef struct {
  int calls;
  double first, last;
} progress_log;

static void on_progress(void *arg, int iter, double secs, double loss) {
  progress_log *l = arg;
  ck_assert_int_eq(iter, l->calls + 1);
  ck_assert(secs >= 0);
  ck_assert(isfinite(loss) && loss > 0);
  if (!l->calls) l->first = loss;
  l->last = loss;
  l->calls++;
}

START_TEST(ials_params_checked) {
  ials_param p;
  ials_default_param(&p);
  ck_assert_ptr_null(ials_check_param(&p));
  ck_assert_int_eq(p.factors, 64);
  ck_assert_int_eq(p.cg_steps, 3);
  ials_param q;
#define BAD(stmt, name)                                 \
  q = p;                                                \
  stmt;                                                 \
  ck_assert_ptr_nonnull(ials_check_param(&q));          \
  ck_assert_ptr_nonnull(strstr(ials_check_param(&q), name))
  BAD(q.factors = 0, "factors");
  BAD(q.factors = 5000, "factors");
  BAD(q.reg = 0, "reg");
  BAD(q.reg = NAN, "reg");
  BAD(q.alpha = -1, "alpha");
  BAD(q.alpha = INFINITY, "alpha");
  BAD(q.iterations = 0, "iterations");
  BAD(q.cg_steps = 0, "cg_steps");
  BAD(q.threads = 0, "threads");
#undef BAD
  /* train refuses bad parameters and bad problems with a message */
  groups *g = malloc(sizeof *g);
  make_groups(g);
  char err[200] = "";
  q = p;
  q.threads = -1;
  ck_assert_ptr_null(ials_train(&g->prob, &q, NULL, NULL, err, sizeof err));
  ck_assert_ptr_nonnull(strstr(err, "threads"));
  g->indices[3] = NI;
  ck_assert_ptr_null(ials_train(&g->prob, &p, NULL, NULL, err, sizeof err));
  ck_assert_ptr_nonnull(strstr(err, "nitems"));
  g->indices[3] = 1;
  g->values[5] = -1;
  ck_assert_ptr_null(ials_train(&g->prob, &p, NULL, NULL, err, sizeof err));
  ck_assert_ptr_nonnull(strstr(err, "negative"));
  free(g);
}
END_TEST

/* train on the two groups and check recommendations come from the own block */
static void check_groups(int factors) {
  groups *g = malloc(sizeof *g);
  make_groups(g);
  ials_param p = small_param(factors);
  char err[200] = "";
  progress_log log = {0};
  ials_model *m = ials_train(&g->prob, &p, on_progress, &log, err, sizeof err);
  ck_assert_msg(m != NULL, "%s", err);
  ck_assert_int_eq(log.calls, p.iterations);
  ck_assert_double_lt(log.last, log.first);
  ck_assert_int_eq(ials_factors(m), factors);
  ck_assert_uint_eq(ials_nusers(m), NU);
  ck_assert_uint_eq(ials_nitems(m), NI);
  for (uint32_t u = 0; u < NU - 1; u++) {
    uint32_t items[5];
    float scores[5];
    seen_arg sa = {g, u};
    size_t n = ials_topk(m, ials_user_vec(m, u), 5, skip_seen, &sa, items, scores);
    ck_assert_uint_eq(n, 5);
    for (size_t j = 0; j < n; j++) {
      ck_assert_msg((items[j] < NI / 2) == (u < NU / 2), "user %u got item %u", u, items[j]);
      ck_assert(!skip_seen(&sa, items[j]));
      if (j) ck_assert_float_le(scores[j], scores[j - 1]);
    }
  }
  /* the user with no interactions has the zero vector */
  for (int k = 0; k < factors; k++) ck_assert_float_eq(ials_user_vec(m, NU - 1)[k], 0.0f);
  ials_free(m);
  free(g);
}

START_TEST(ials_learns_two_groups) { check_groups(32); }
END_TEST

START_TEST(ials_learns_two_groups_generic_kernel) { check_groups(12); }
END_TEST

START_TEST(ials_fold_in_works) {
  groups *g = malloc(sizeof *g);
  make_groups(g);
  ials_param p = small_param(32);
  char err[200] = "";
  ials_model *m = ials_train(&g->prob, &p, NULL, NULL, err, sizeof err);
  ck_assert_msg(m != NULL, "%s", err);
  float x[32], y[32];

  /* a user unseen at training time with two block-A items (and one item the
   * model has no factors for) gets block-A recommendations */
  uint32_t its[3] = {3, 7, NI + 5};
  float r[3] = {1, 1, 1};
  ck_assert_int_eq(ials_fold_in(m, its, r, 3, x), 0);
  uint32_t top[10];
  float sc[10];
  size_t n = ials_topk(m, x, 10, NULL, NULL, top, sc);
  ck_assert_uint_eq(n, 10);
  int in_a = 0;
  for (size_t j = 0; j < n; j++) in_a += top[j] < NI / 2;
  ck_assert_int_eq(in_a, 10);
  /* the unknown item changes nothing */
  ck_assert_int_eq(ials_fold_in(m, its, r, 2, y), 0);
  ck_assert_mem_eq(x, y, sizeof x);
  /* a repeated item counts once with summed strengths */
  uint32_t twice[2] = {3, 3}, once[1] = {3};
  float r11[2] = {1, 1}, r2[1] = {2};
  ck_assert_int_eq(ials_fold_in(m, twice, r11, 2, x), 0);
  ck_assert_int_eq(ials_fold_in(m, once, r2, 1, y), 0);
  ck_assert_mem_eq(x, y, sizeof x);
  /* nothing known: the zero vector; bad strengths: an error */
  ck_assert_int_eq(ials_fold_in(m, its + 2, r, 1, x), 0);
  for (int k = 0; k < 32; k++) ck_assert_float_eq(x[k], 0.0f);
  float neg[2] = {1, -1};
  ck_assert_int_eq(ials_fold_in(m, its, neg, 2, x), RECD_EINVAL);
  float nan2[2] = {1, NAN};
  ck_assert_int_eq(ials_fold_in(m, its, nan2, 2, x), RECD_EINVAL);

  /* folding in an existing user's own interactions reproduces their vector */
  double worst = 1;
  for (uint32_t u = 0; u < NU - 1; u++) {
    uint64_t lo = g->indptr[u];
    ck_assert_int_eq(ials_fold_in(m, g->indices + lo, g->values + lo, g->indptr[u + 1] - lo, x), 0);
    double c = cosine(x, ials_user_vec(m, u), 32);
    if (c < worst) worst = c;
  }
  ck_assert_msg(worst > 0.9, "worst cosine %f", worst);

  /* similar items come from the same block, best first, never the item itself */
  for (uint32_t i = 0; i < NI; i++) {
    n = ials_similar(m, i, 5, top, sc);
    ck_assert_uint_eq(n, 5);
    for (size_t j = 0; j < n; j++) {
      ck_assert_uint_ne(top[j], i);
      ck_assert_msg((top[j] < NI / 2) == (i < NI / 2), "item %u similar to %u", i, top[j]);
      ck_assert(sc[j] <= 1.0001f && sc[j] >= -1.0001f);
      if (j) ck_assert_float_le(sc[j], sc[j - 1]);
    }
  }
  ck_assert_uint_eq(ials_similar(m, NI, 5, top, sc), 0);
  /* k larger than the catalog */
  uint32_t all[NI + 10];
  float alls[NI + 10];
  ck_assert_uint_eq(ials_topk(m, ials_user_vec(m, 0), NI + 10, NULL, NULL, all, alls), NI);
  ck_assert_uint_eq(ials_similar(m, 0, NI + 10, all, alls), NI - 1);
  ials_free(m);
  free(g);
}
END_TEST

/* with enough CG steps and sweeps, training reaches the exact ALS fixed
 * point: every user's vector is the exact solve against the final items */
START_TEST(ials_cg_reaches_exact_solution) {
  groups *g = malloc(sizeof *g);
  make_groups(g);
  ials_param p = small_param(16);
  p.cg_steps = 16;
  p.iterations = 60;
  char err[200];
  ials_model *m = ials_train(&g->prob, &p, NULL, NULL, err, sizeof err);
  ck_assert_ptr_nonnull(m);
  float x[16];
  double worst = 1;
  for (uint32_t u = 0; u < NU - 1; u++) {
    uint64_t lo = g->indptr[u];
    ck_assert_int_eq(ials_fold_in(m, g->indices + lo, g->values + lo, g->indptr[u + 1] - lo, x), 0);
    double c = cosine(x, ials_user_vec(m, u), 16);
    if (c < worst) worst = c;
  }
  ck_assert_msg(worst > 0.9999, "worst cosine %f", worst);
  ials_free(m);
  free(g);
}
END_TEST

/* the AVX-512, AVX2 and portable kernels compute the same model (up to
 * rounding); on a CPU without some of them this compares fewer versions */
START_TEST(ials_kernels_agree) {
  groups *g = malloc(sizeof *g);
  make_groups(g);
  ials_param p = small_param(32);
  p.iterations = 8;
  char err[200];
  const char *caps[3] = {"avx512", "avx2", "generic"};
  ials_model *m[3];
  for (int c = 0; c < 3; c++) {
    setenv("RECD_IALS_KERNEL", caps[c], 1);
    m[c] = ials_train(&g->prob, &p, NULL, NULL, err, sizeof err);
    ck_assert_ptr_nonnull(m[c]);
  }
  /* serving: the same model loaded under each kernel folds in and ranks alike */
  char *dir = unit_tmpdir(), path[300];
  snprintf(path, sizeof path, "%s/m.ials", dir);
  ck_assert_int_eq(ials_save(m[0], path), 0);
  uint32_t its[5] = {1, 4, 9, 12, 17};
  float r[5] = {1, 2, 1, 3, 1}, x[3][32];
  uint32_t top[3][10];
  float sc[3][10];
  for (int c = 0; c < 3; c++) {
    setenv("RECD_IALS_KERNEL", caps[c], 1);
    ials_model *l = ials_load(path, err, sizeof err);
    ck_assert_ptr_nonnull(l);
    ck_assert_int_eq(ials_fold_in(l, its, r, 5, x[c]), 0);
    ck_assert_uint_eq(ials_topk(l, x[c], 10, NULL, NULL, top[c], sc[c]), 10);
    ials_free(l);
  }
  unsetenv("RECD_IALS_KERNEL");
  for (int c = 1; c < 3; c++) {
    ck_assert_double_gt(cosine(x[0], x[c], 32), 0.99999);
    for (int j = 0; j < 10; j++) ck_assert_float_eq_tol(sc[0][j], sc[c][j], 1e-4);
  }
  unit_rmrf(dir);
  free(dir);
  for (int c = 1; c < 3; c++) {
    for (uint32_t u = 0; u < NU - 1; u++)
      ck_assert_double_gt(cosine(ials_user_vec(m[0], u), ials_user_vec(m[c], u), 32), 0.9999);
    for (uint32_t i = 0; i < NI; i++)
      ck_assert_double_gt(cosine(ials_item_vec(m[0], i), ials_item_vec(m[c], i), 32), 0.9999);
  }
  for (int c = 0; c < 3; c++) ials_free(m[c]);
  free(g);
}
END_TEST

START_TEST(ials_deterministic_across_threads) {
  groups *g = malloc(sizeof *g);
  make_groups(g);
  ials_param p = small_param(16);
  p.iterations = 5;
  char err[200];
  p.threads = 1;
  progress_log l1 = {0}, l3 = {0};
  ials_model *a = ials_train(&g->prob, &p, on_progress, &l1, err, sizeof err);
  p.threads = 3;
  ials_model *b = ials_train(&g->prob, &p, on_progress, &l3, err, sizeof err);
  ck_assert_ptr_nonnull(a);
  ck_assert_ptr_nonnull(b);
  ck_assert_mem_eq(ials_user_vec(a, 0), ials_user_vec(b, 0), sizeof(float) * 16 * NU);
  ck_assert_mem_eq(ials_item_vec(a, 0), ials_item_vec(b, 0), sizeof(float) * 16 * NI);
  ck_assert(l1.last == l3.last);
  /* another seed gives another model */
  p.seed = 43;
  ials_model *c = ials_train(&g->prob, &p, NULL, NULL, err, sizeof err);
  ck_assert(memcmp(ials_item_vec(a, 0), ials_item_vec(c, 0), sizeof(float) * 16 * NI) != 0);
  ials_free(a);
  ials_free(b);
  ials_free(c);
  ials_free(NULL);
  free(g);
}
END_TEST

static long file_size(const char *path) {
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fclose(f);
  return n;
}

static void poke(const char *path, long off, unsigned char xor_with) {
  FILE *f = fopen(path, "r+b");
  ck_assert_ptr_nonnull(f);
  fseek(f, off, SEEK_SET);
  int c = fgetc(f);
  fseek(f, off, SEEK_SET);
  fputc(c ^ xor_with, f);
  fclose(f);
}

static void copy_file(const char *from, const char *to) {
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
  ck_assert_int_eq(system(cmd), 0);
}

START_TEST(ials_save_load) {
  groups *g = malloc(sizeof *g);
  make_groups(g);
  ials_param p = small_param(16);
  p.iterations = 4;
  char err[300] = "";
  ials_model *m = ials_train(&g->prob, &p, NULL, NULL, err, sizeof err);
  ck_assert_ptr_nonnull(m);
  char *dir = unit_tmpdir();
  char path[400], bad[400];
  snprintf(path, sizeof path, "%s/m.ials", dir);
  snprintf(bad, sizeof bad, "%s/bad.ials", dir);
  ck_assert_int_eq(ials_save(m, path), 0);
  ials_model *l = ials_load(path, err, sizeof err);
  ck_assert_msg(l != NULL, "%s", err);
  ck_assert_int_eq(ials_factors(l), 16);
  ck_assert_uint_eq(ials_nusers(l), NU);
  ck_assert_uint_eq(ials_nitems(l), NI);
  ck_assert_mem_eq(ials_user_vec(m, 0), ials_user_vec(l, 0), sizeof(float) * 16 * NU);
  ck_assert_mem_eq(ials_item_vec(m, 0), ials_item_vec(l, 0), sizeof(float) * 16 * NI);
  ck_assert_mem_eq(ials_params(m), ials_params(l), sizeof(ials_param));
  /* the derived parts agree too: fold-in and similar give the same answers */
  uint32_t its[2] = {1, 2};
  float r[2] = {1, 2}, x[16], y[16];
  ck_assert_int_eq(ials_fold_in(m, its, r, 2, x), 0);
  ck_assert_int_eq(ials_fold_in(l, its, r, 2, y), 0);
  ck_assert_mem_eq(x, y, sizeof x);
  /* saving again over the file works (rename over) and leaves no .tmp */
  ck_assert_int_eq(ials_save(l, path), 0);
  char tmp[420];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  ck_assert_int_ne(access(tmp, F_OK), 0);
  ials_free(l);

  long size = file_size(path);
  ck_assert_int_eq(size, 56 + (NU + NI) * 16 * 4 + 8);
  /* a flipped byte anywhere in the payload or the checksum */
  long offs[3] = {100, size / 2, size - 3};
  for (int t = 0; t < 3; t++) {
    copy_file(path, bad);
    poke(bad, offs[t], 0x10);
    err[0] = 0;
    ck_assert_ptr_null(ials_load(bad, err, sizeof err));
    ck_assert_msg(strstr(err, "checksum") != NULL, "%s", err);
  }
  /* bad magic, another version, a header that does not fit the size */
  copy_file(path, bad);
  poke(bad, 0, 0x01);
  ck_assert_ptr_null(ials_load(bad, err, sizeof err));
  ck_assert_msg(strstr(err, "magic") != NULL, "%s", err);
  copy_file(path, bad);
  poke(bad, 8, 0x02);
  ck_assert_ptr_null(ials_load(bad, err, sizeof err));
  ck_assert_msg(strstr(err, "version") != NULL, "%s", err);
  copy_file(path, bad);
  poke(bad, 16, 0x01); /* nusers */
  ck_assert_ptr_null(ials_load(bad, err, sizeof err));
  ck_assert_msg(strstr(err, "bytes") != NULL, "%s", err);
  copy_file(path, bad);
  poke(bad, 12, 0xff); /* factors out of range */
  ck_assert_ptr_null(ials_load(bad, err, sizeof err));
  ck_assert_msg(strstr(err, "factors") != NULL, "%s", err);
  /* truncated: by a little, and to almost nothing */
  copy_file(path, bad);
  ck_assert_int_eq(truncate(bad, size - 1), 0);
  ck_assert_ptr_null(ials_load(bad, err, sizeof err));
  ck_assert_msg(strstr(err, "bytes") != NULL, "%s", err);
  ck_assert_int_eq(truncate(bad, 10), 0);
  ck_assert_ptr_null(ials_load(bad, err, sizeof err));
  ck_assert_msg(strstr(err, "too short") != NULL, "%s", err);
  /* missing file, unwritable path */
  snprintf(bad, sizeof bad, "%s/none.ials", dir);
  ck_assert_ptr_null(ials_load(bad, err, sizeof err));
  ck_assert_msg(strstr(err, "cannot open") != NULL, "%s", err);
  snprintf(bad, sizeof bad, "%s/no/such/dir.ials", dir);
  ck_assert_int_lt(ials_save(m, bad), 0);
  /* errlen 0 is allowed */
  ck_assert_ptr_null(ials_load(bad, NULL, 0));

  ials_free(m);
  unit_rmrf(dir);
  free(dir);
  free(g);
}
END_TEST

Suite *ials_suite(void) {
  Suite *s = suite_create("ials");
  TCase *tc = tcase_create("ials");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, ials_params_checked);
  tcase_add_test(tc, ials_learns_two_groups);
  tcase_add_test(tc, ials_learns_two_groups_generic_kernel);
  tcase_add_test(tc, ials_fold_in_works);
  tcase_add_test(tc, ials_cg_reaches_exact_solution);
  tcase_add_test(tc, ials_kernels_agree);
  tcase_add_test(tc, ials_deterministic_across_threads);
  tcase_add_test(tc, ials_save_load);
  suite_add_tcase(s, tc);
  return s;
}
