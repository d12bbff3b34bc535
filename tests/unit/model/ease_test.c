/* tests for src/model/ease: parameters, the closed form against a direct
 * computation, block structure, top-k, the model file */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/ease.h"
#include "unit.h"

/* ---- helpers ---- */

/* B computed the slow, obvious way in double: G = X'X + lambda I from a dense
 * X, P = G^-1 by Gauss-Jordan with partial pivoting, B = -P / diag(P) by
 * column, zero diagonal. b has n*n doubles. */
static void direct_b(const double *x, int nu, int n, double lambda, double *b) {
  double *g = calloc((size_t)n * 2 * n, sizeof *g); /* [G | I] */
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < n; j++) {
      double s = 0;
      for (int u = 0; u < nu; u++) s += x[u * n + i] * x[u * n + j];
      g[i * 2 * n + j] = s + (i == j ? lambda : 0);
    }
    g[i * 2 * n + n + i] = 1;
  }
  for (int c = 0; c < n; c++) {
    int piv = c;
    for (int r = c + 1; r < n; r++)
      if (fabs(g[r * 2 * n + c]) > fabs(g[piv * 2 * n + c])) piv = r;
    if (piv != c)
      for (int k = 0; k < 2 * n; k++) {
        double t = g[c * 2 * n + k];
        g[c * 2 * n + k] = g[piv * 2 * n + k];
        g[piv * 2 * n + k] = t;
      }
    double d = g[c * 2 * n + c];
    for (int k = 0; k < 2 * n; k++) g[c * 2 * n + k] /= d;
    for (int r = 0; r < n; r++) {
      if (r == c) continue;
      double f = g[r * 2 * n + c];
      if (f != 0)
        for (int k = 0; k < 2 * n; k++) g[r * 2 * n + k] -= f * g[c * 2 * n + k];
    }
  }
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) b[i * n + j] = i == j ? 0 : -g[i * 2 * n + n + j] / g[j * 2 * n + n + j];
  free(g);
}

static uint64_t rng_state;
static uint32_t rnd(uint32_t m) {
  rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
  return (uint32_t)(rng_state >> 33) % m;
}

/* a random CSR problem: each user gets `per` draws from [lo, hi), repeats
 * and all; values in 0.5..3 when weighted. Caller frees the arrays. */
typedef struct {
  ease_problem p;
  uint64_t *indptr;
  uint32_t *indices;
  float *values;
} csr;

static void csr_random(csr *c, uint32_t nu, uint32_t n, uint32_t per, int weighted, uint32_t groups) {
  c->indptr = calloc(nu + 1, sizeof *c->indptr);
  c->indices = calloc((size_t)nu * per + 1, sizeof *c->indices);
  c->values = weighted ? calloc((size_t)nu * per + 1, sizeof *c->values) : NULL;
  uint64_t k = 0;
  for (uint32_t u = 0; u < nu; u++) {
    uint32_t g = u % groups, w = n / groups;
    for (uint32_t t = 0; t < per; t++) {
      c->indices[k] = g * w + rnd(w);
      if (weighted) c->values[k] = 0.5f + (float)rnd(6) * 0.5f;
      k++;
    }
    c->indptr[u + 1] = k;
  }
  c->p = (ease_problem){.nusers = nu, .nitems = n, .indptr = c->indptr, .indices = c->indices, .values = c->values};
}

static void csr_free(csr *c) {
  free(c->indptr);
  free(c->indices);
  free(c->values);
}

static double *csr_dense(const ease_problem *p) {
  double *x = calloc((size_t)p->nusers * p->nitems, sizeof *x);
  for (uint32_t u = 0; u < p->nusers; u++)
    for (uint64_t k = p->indptr[u]; k < p->indptr[u + 1]; k++) {
      double *c = &x[(size_t)u * p->nitems + p->indices[k]];
      if (p->values) *c += p->values[k];
      else *c = 1; /* binary: a repeat counts once */
    }
  return x;
}

/* max |B_model - B_direct| */
static double max_diff(const ease_model *m, const ease_problem *p, double lambda) {
  int n = (int)p->nitems;
  double *x = csr_dense(p), *b = malloc((size_t)n * n * sizeof *b), worst = 0;
  direct_b(x, (int)p->nusers, n, lambda, b);
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < n; j++) {
      double d = fabs(ease_weight(m, (uint32_t)i, (uint32_t)j) - b[i * n + j]);
      if (d > worst) worst = d;
    }
  }
  free(x);
  free(b);
  return worst;
}

static ease_param params(float lambda, int threads) {
  ease_param p;
  ease_default_param(&p);
  p.lambda = lambda;
  p.threads = threads;
  return p;
}

/* ---- tests ---- */

START_TEST(ease_params) {
  ease_param p;
  ease_default_param(&p);
  ck_assert_ptr_null(ease_check_param(&p));
  ck_assert_float_eq(p.lambda, 500.0f);
  ck_assert_uint_eq(p.max_items, 30000);
  ease_param q = p;
  q.lambda = 0;
  ck_assert_ptr_nonnull(strstr(ease_check_param(&q), "lambda"));
  q.lambda = NAN;
  ck_assert_ptr_nonnull(strstr(ease_check_param(&q), "lambda"));
  q.lambda = -1;
  ck_assert_ptr_nonnull(strstr(ease_check_param(&q), "lambda"));
  q = p;
  q.threads = -1;
  ck_assert_ptr_nonnull(strstr(ease_check_param(&q), "threads"));
  q = p;
  q.max_items = 0;
  ck_assert_ptr_nonnull(strstr(ease_check_param(&q), "max_items"));
  q.max_items = 70000;
  ck_assert_ptr_nonnull(strstr(ease_check_param(&q), "max_items"));
  ck_assert_ptr_nonnull(ease_check_param(NULL));
  /* train refuses bad parameters with the same message */
  char err[256] = "";
  uint64_t ip[2] = {0, 1};
  uint32_t ix[1] = {0};
  ease_problem pr = {.nusers = 1, .nitems = 1, .indptr = ip, .indices = ix};
  q = p;
  q.lambda = 0;
  ck_assert_ptr_null(ease_train(&pr, &q, err, sizeof err));
  ck_assert_ptr_nonnull(strstr(err, "lambda"));
}
END_TEST

/* 4 items, hand-sized, binary and weighted, with repeats and unsorted rows */
START_TEST(ease_tiny_matches_direct) {
  uint64_t ip[] = {0, 3, 5, 8, 10, 12};
  uint32_t ix[] = {0, 1, 2, /**/ 1, 2, /**/ 3, 0, 3, /**/ 2, 3, /**/ 1, 0};
  float vx[] = {1, 2, 1, /**/ 3, 1, /**/ 1, 2, 1.5f, /**/ 1, 1, /**/ 0.5f, 1};
  ease_problem pr = {.nusers = 5, .nitems = 4, .indptr = ip, .indices = ix, .values = NULL};
  char err[256] = "";
  for (int weighted = 0; weighted < 2; weighted++) {
    pr.values = weighted ? vx : NULL;
    for (float lambda = 0.5f; lambda < 20; lambda *= 4) {
      ease_param p = params(lambda, 1);
      ease_model *m = ease_train(&pr, &p, err, sizeof err);
      ck_assert_msg(m != NULL, "%s", err);
      ck_assert_uint_eq(ease_nitems(m), 4);
      double d = max_diff(m, &pr, lambda);
      ck_assert_msg(d < 1e-4, "weighted=%d lambda=%g: off by %g", weighted, lambda, d);
      for (uint32_t i = 0; i < 4; i++) ck_assert_float_eq(ease_weight(m, i, i), 0.0f);
      ease_free(m);
    }
  }
  /* user 2 has item 3 twice: binary counts it once, weighted adds 1 + 1.5 */
  ease_param p = params(1, 1);
  pr.values = vx;
  ease_model *m = ease_train(&pr, &p, err, sizeof err);
  ck_assert_ptr_nonnull(m);
  /* scores = sum of x_ui B[i][.] */
  uint32_t items[] = {0, 2, 99};
  float vals[] = {2, 0.5f, 7};
  float out[4];
  ease_score(m, items, vals, 3, out);
  for (uint32_t j = 0; j < 4; j++)
    ck_assert_float_eq_tol(out[j], 2 * ease_weight(m, 0, j) + 0.5f * ease_weight(m, 2, j), 1e-6);
  ease_free(m);
}
END_TEST

/* several 64-wide tiles, odd size, threads agree; only odd items are used,
 * so the compact <-> item mapping is exercised everywhere */
START_TEST(ease_random_matches_direct) {
  rng_state = 7;
  csr c;
  csr_random(&c, 400, 150, 12, 1, 1);
  for (uint64_t k = 0; k < c.indptr[400]; k++) c.indices[k] = 2 * c.indices[k] + 1;
  c.p.nitems = 303; /* items 0, 2, 4, .., 300, 302 never seen */
  char err[256] = "";
  ease_param p1 = params(5, 1), p3 = params(5, 3);
  ease_model *m1 = ease_train(&c.p, &p1, err, sizeof err);
  ck_assert_msg(m1 != NULL, "%s", err);
  ease_model *m3 = ease_train(&c.p, &p3, err, sizeof err);
  ck_assert_msg(m3 != NULL, "%s", err);
  ck_assert_uint_eq(ease_nitems(m1), 303);
  ck_assert_uint_le(ease_nactive(m1), 150);
  ck_assert_uint_ge(ease_nactive(m1), 140);
  double d = max_diff(m1, &c.p, 5);
  ck_assert_msg(d < 1e-4, "off by %g", d);
  for (uint32_t i = 0; i < 303; i++) {
    ck_assert_float_eq(ease_weight(m1, i, i), 0.0f);
    for (uint32_t j = 0; j < 303; j++) {
      ck_assert_float_eq_tol(ease_weight(m1, i, j), ease_weight(m3, i, j), 1e-5);
      if (i % 2 == 0 || j % 2 == 0) ck_assert_float_eq(ease_weight(m1, i, j), 0.0f);
    }
  }
  ck_assert_float_eq(ease_weight(m1, 1, 400), 0.0f);
  /* scores land on item positions; inactive and out-of-range items add nothing */
  uint32_t hist[] = {1, 2, 77, 301, 5000};
  float vals[] = {1, 9, 0.5f, 2, 9}, out[303];
  ease_score(m3, hist, vals, 5, out);
  for (uint32_t j = 0; j < 303; j++) {
    float want = ease_weight(m3, 1, j) + 0.5f * ease_weight(m3, 77, j) + 2 * ease_weight(m3, 301, j);
    ck_assert_float_eq_tol(out[j], want, 1e-6);
    if (j % 2 == 0) ck_assert_float_eq(out[j], 0.0f);
  }
  ease_free(m1);
  ease_free(m3);
  csr_free(&c);
}
END_TEST

static int skip_listed(void *arg, uint32_t item) {
  const uint32_t *l = arg;
  for (int k = 0; k < 4; k++)
    if (l[k] == item) return 1;
  return 0;
}

START_TEST(ease_blocks_stay_apart) {
  rng_state = 42;
  csr c;
  csr_random(&c, 200, 40, 6, 0, 2); /* even users: items 0..19, odd users: 20..39 */
  char err[256] = "";
  ease_param p = params(10, 2);
  ease_model *m = ease_train(&c.p, &p, err, sizeof err);
  ck_assert_msg(m != NULL, "%s", err);
  for (uint32_t i = 0; i < 40; i++)
    for (uint32_t j = 0; j < 40; j++)
      if ((i < 20) != (j < 20)) ck_assert_float_eq_tol(ease_weight(m, i, j), 0.0f, 1e-7);
  uint32_t hist[2][4] = {{1, 5, 7, 12}, {21, 30, 33, 38}};
  for (int g = 0; g < 2; g++) {
    uint32_t top[10];
    float sc[10];
    size_t k = ease_topk(m, hist[g], NULL, 4, 10, skip_listed, hist[g], top, sc);
    ck_assert_uint_eq(k, 10);
    for (size_t r = 0; r < k; r++) {
      ck_assert_msg((top[r] >= 20) == (g == 1), "group %d got item %u", g, top[r]);
      for (int h = 0; h < 4; h++) ck_assert_uint_ne(top[r], hist[g][h]);
      if (r) ck_assert_float_ge(sc[r - 1], sc[r]);
    }
  }
  ease_free(m);
  csr_free(&c);
}
END_TEST

START_TEST(ease_topk_order_and_bounds) {
  /* lambda huge and no data: B = 0, all scores tie -> item order */
  uint64_t ip[] = {0};
  ease_problem pr = {.nusers = 0, .nitems = 6, .indptr = ip};
  char err[256] = "";
  ease_param p = params(1, 1);
  ease_model *m = ease_train(&pr, &p, err, sizeof err);
  ck_assert_msg(m != NULL, "%s", err);
  uint32_t top[10];
  float sc[10];
  ck_assert_uint_eq(ease_topk(m, NULL, NULL, 0, 0, NULL, NULL, top, sc), 0);
  ck_assert_uint_eq(ease_topk(m, NULL, NULL, 0, 10, NULL, NULL, top, sc), 6);
  for (uint32_t r = 0; r < 6; r++) ck_assert_uint_eq(top[r], r);
  uint32_t skip[4] = {0, 2, 4, 4};
  ck_assert_uint_eq(ease_topk(m, NULL, NULL, 0, 10, skip_listed, skip, top, NULL), 3);
  ck_assert_uint_eq(top[0], 1);
  ck_assert_uint_eq(top[2], 5);
  ease_free(m);

  /* against a full sort of ease_score */
  rng_state = 3;
  csr c;
  csr_random(&c, 300, 90, 10, 1, 1);
  m = ease_train(&c.p, &p, err, sizeof err);
  ck_assert_msg(m != NULL, "%s", err);
  uint32_t hist[] = {3, 17, 40, 41, 88};
  float all[90];
  ease_score(m, hist, NULL, 5, all);
  uint32_t t7[7];
  float s7[7];
  ck_assert_uint_eq(ease_topk(m, hist, NULL, 5, 7, NULL, NULL, t7, s7), 7);
  for (int r = 0; r < 7; r++) {
    ck_assert_float_eq(s7[r], all[t7[r]]);
    int better = 0; /* items strictly ahead of t7[r] in (score desc, id asc) */
    for (uint32_t j = 0; j < 90; j++)
      better += all[j] > all[t7[r]] || (all[j] == all[t7[r]] && j < t7[r]);
    ck_assert_int_eq(better, r);
  }
  ease_free(m);
  csr_free(&c);
}
END_TEST

START_TEST(ease_refuses_big_and_bad) {
  uint64_t ip[] = {0, 4};
  uint32_t ix[] = {0, 1, 2, 3};
  ease_problem pr = {.nusers = 1, .nitems = 4, .indptr = ip, .indices = ix};
  char err[256] = "";
  ease_param p = params(1, 1);
  p.max_items = 3;
  ck_assert_ptr_null(ease_train(&pr, &p, err, sizeof err));
  ck_assert_msg(strstr(err, "4 items with interactions is more than max_items (3)") != NULL, "%s", err);
  /* max_items counts items with interactions, not the catalog */
  pr.nitems = 1000;
  ip[1] = 3;
  ease_model *m = ease_train(&pr, &p, err, sizeof err);
  ck_assert_msg(m != NULL, "%s", err);
  ck_assert_uint_eq(ease_nactive(m), 3);
  ease_free(m);
  pr.nitems = 4;
  ip[1] = 4;
  p = params(1, 1);
  p.max_bytes = 32;
  ck_assert_ptr_null(ease_train(&pr, &p, err, sizeof err));
  ck_assert_msg(strstr(err, "budget") != NULL, "%s", err);
  p = params(1, 1);
  ix[3] = 4;
  ck_assert_ptr_null(ease_train(&pr, &p, err, sizeof err));
  ck_assert_msg(strstr(err, "nitems") != NULL, "%s", err);
  ix[3] = 3;
  float v[] = {1, 1, 1, INFINITY};
  pr.values = v;
  ck_assert_ptr_null(ease_train(&pr, &p, err, sizeof err));
  ck_assert_msg(strstr(err, "non-finite") != NULL, "%s", err);
  pr.values = NULL;
  ip[0] = 1;
  ck_assert_ptr_null(ease_train(&pr, &p, err, sizeof err));
  ck_assert_msg(strstr(err, "indptr") != NULL, "%s", err);
  ip[0] = 0;
  pr.nitems = 0;
  ck_assert_ptr_null(ease_train(&pr, &p, err, sizeof err));
  ck_assert_msg(strstr(err, "no items") != NULL, "%s", err);
}
END_TEST

static long file_size(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fclose(f);
  return n;
}

static void poke(const char *path, long off, unsigned char x) {
  FILE *f = fopen(path, "r+b");
  ck_assert_ptr_nonnull(f);
  fseek(f, off, SEEK_SET);
  int c = fgetc(f);
  fseek(f, off, SEEK_SET);
  fputc(c ^ x, f);
  fclose(f);
}

static void copy_file(const char *from, const char *to, long len) {
  FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
  ck_assert(a && b);
  for (long i = 0; i < len; i++) {
    int ch = fgetc(a);
    fputc(ch == EOF ? 0 : ch, b);
  }
  fclose(a);
  fclose(b);
}

static void expect_refused(const char *path, const char *why) {
  char err[512] = "";
  ease_model *m = ease_load(path, err, sizeof err);
  ck_assert_msg(m == NULL, "%s loaded", path);
  ck_assert_msg(strstr(err, why) != NULL, "expected '%s' in: %s", why, err);
}

START_TEST(ease_file_round_trip_and_damage) {
  rng_state = 11;
  csr c;
  csr_random(&c, 120, 37, 8, 1, 1);
  char err[512] = "";
  ease_param p = params(3, 1);
  ease_model *m = ease_train(&c.p, &p, err, sizeof err);
  ck_assert_msg(m != NULL, "%s", err);
  char *dir = unit_tmpdir(), path[600], bad[600];
  snprintf(path, sizeof path, "%s/ease.bin", dir);
  snprintf(bad, sizeof bad, "%s/bad.bin", dir);
  ck_assert_int_eq(ease_save(m, path), 0);
  long size = file_size(path);
  long na = ease_nactive(m);
  ck_assert_int_eq(na, 37);
  ck_assert_int_eq(size, 32 + na * 4 + na * na * 4 + 8);
  ck_assert_int_eq(file_size(bad), -1);

  ease_model *l = ease_load(path, err, sizeof err);
  ck_assert_msg(l != NULL, "%s", err);
  ck_assert_uint_eq(ease_nitems(l), 37);
  ck_assert_float_eq(ease_lambda(l), 3.0f);
  ck_assert_uint_eq(ease_nactive(l), 37);
  for (uint32_t i = 0; i < 37; i++)
    for (uint32_t j = 0; j < 37; j++) {
      float x = ease_weight(l, i, j), y = ease_weight(m, i, j);
      ck_assert_int_eq(memcmp(&x, &y, sizeof x), 0);
    }
  ck_assert_uint_eq(ease_memory(l), ease_memory(m));
  ease_free(l);
  /* saving again over the file replaces it */
  ck_assert_int_eq(ease_save(m, path), 0);

  expect_refused(bad, "cannot open");
  copy_file(path, bad, size - 1);
  expect_refused(bad, "truncated");
  copy_file(path, bad, size + 4);
  expect_refused(bad, "truncated or extended");
  copy_file(path, bad, 20);
  expect_refused(bad, "too short");
  copy_file(path, bad, size);
  poke(bad, 0, 0x20);
  expect_refused(bad, "magic");
  copy_file(path, bad, size);
  poke(bad, 8, 0x02);
  expect_refused(bad, "version");
  copy_file(path, bad, size);
  poke(bad, 16, 0x01); /* 36 active items: sizes no longer match */
  expect_refused(bad, "corrupt header");
  copy_file(path, bad, size);
  poke(bad, 32 + 4 * 37 + 4 * 500 + 2, 0x10); /* one weight */
  expect_refused(bad, "checksum");
  copy_file(path, bad, size);
  poke(bad, 32 + 4 * 3, 0x01); /* one item id */
  expect_refused(bad, "checksum");
  copy_file(path, bad, size);
  poke(bad, size - 1, 0x80); /* the hash itself */
  expect_refused(bad, "checksum");
  copy_file(path, bad, size);
  poke(bad, 21, 0x01); /* lambda: covered by the hash */
  expect_refused(bad, "checksum");

  ck_assert_int_lt(ease_save(m, "/nonexistent-dir/x/ease.bin"), 0);
  ease_free(m);
  ease_free(NULL);
  csr_free(&c);
  unit_rmrf(dir);
  free(dir);
}
END_TEST

Suite *ease_suite(void) {
  Suite *s = suite_create("ease");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, ease_params);
  tcase_add_test(tc, ease_tiny_matches_direct);
  tcase_add_test(tc, ease_random_matches_direct);
  tcase_add_test(tc, ease_blocks_stay_apart);
  tcase_add_test(tc, ease_topk_order_and_bounds);
  tcase_add_test(tc, ease_refuses_big_and_bad);
  tcase_add_test(tc, ease_file_round_trip_and_damage);
  suite_add_tcase(s, tc);
  return s;
}
