#include "eval/split.h"

#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* ratings grouped by user: idx[start[u] .. start[u] + cnt[u]) in file order */
typedef struct {
  size_t *idx, *start, *cnt;
  size_t nu;
} by_user;

static void group(const eval_data *d, by_user *g) {
  g->nu = strmap_count(&d->users);
  g->cnt = xcalloc(g->nu + 1, sizeof *g->cnt);
  g->start = xcalloc(g->nu + 1, sizeof *g->start);
  g->idx = xmalloc((d->n ? d->n : 1) * sizeof *g->idx);
  size_t *pos = xcalloc(g->nu + 1, sizeof *pos);
  for (size_t i = 0; i < d->n; i++) g->cnt[d->r[i].user]++;
  for (size_t u = 1; u <= g->nu; u++) g->start[u] = g->start[u - 1] + g->cnt[u - 1];
  for (size_t i = 0; i < d->n; i++) {
    uint32_t u = d->r[i].user;
    g->idx[g->start[u] + pos[u]++] = i;
  }
  free(pos);
}

static void group_free(by_user *g) {
  free(g->idx);
  free(g->start);
  free(g->cnt);
}

void split_random(const eval_data *d, double ratio, uint64_t seed, uint8_t *is_test) {
  by_user g;
  group(d, &g);
  uint64_t s = seed;
  for (size_t u = 0; u < g.nu; u++) {
    size_t *a = g.idx + g.start[u], n = g.cnt[u];
    for (size_t i = n; i > 1; i--) { /* Fisher-Yates */
      size_t j = splitmix(&s) % i, t = a[i - 1];
      a[i - 1] = a[j];
      a[j] = t;
    }
    size_t ntrain = n < 2 ? n : (size_t)(ratio * (double)n + 0.5);
    for (size_t i = 0; i < n; i++) is_test[a[i]] = i >= ntrain;
  }
  group_free(&g);
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

int64_t split_time_global(const eval_data *d, double test_share, uint8_t *is_test) {
  if (!d->n) return 0;
  int64_t *ts = xmalloc(d->n * sizeof *ts);
  for (size_t i = 0; i < d->n; i++) ts[i] = d->r[i].ts_ms;
  qsort(ts, d->n, sizeof *ts, cmp_i64);
  size_t cut = (size_t)((1.0 - test_share) * (double)d->n);
  if (cut >= d->n) cut = d->n - 1;
  int64_t t = ts[cut];
  free(ts);
  for (size_t i = 0; i < d->n; i++) is_test[i] = d->r[i].ts_ms >= t;
  return t;
}

static int cmp_time_idx(const void *a, const void *b, void *arg) {
  const eval_rating *r = arg;
  const eval_rating *x = &r[*(const size_t *)a], *y = &r[*(const size_t *)b];
  if (x->ts_ms != y->ts_ms) return x->ts_ms < y->ts_ms ? -1 : 1;
  return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

void split_time_user(const eval_data *d, double ratio, int last_k, uint8_t *is_test) {
  by_user g;
  group(d, &g);
  for (size_t u = 0; u < g.nu; u++) {
    size_t *a = g.idx + g.start[u], n = g.cnt[u];
    qsort_r(a, n, sizeof *a, cmp_time_idx, d->r);
    size_t ntest = 0;
    if (n >= 2) {
      ntest = last_k > 0 ? (size_t)last_k : (size_t)((1.0 - ratio) * (double)n + 0.5);
      if (ntest < 1) ntest = 1;
      if (ntest >= n) ntest = n - 1;
    }
    for (size_t i = 0; i < n; i++) is_test[a[i]] = i >= n - ntest;
  }
  group_free(&g);
}
