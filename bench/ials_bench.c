/* ials_bench — iALS training speed on a generated matrix shaped like
 * MovieLens-20M with 4+ star ratings (138,493 users, 20,000 items, ~10M
 * interactions, power-law item popularity and user activity), plus the
 * request-time costs: fold-in, top-k and similar. Results: bench/ials.md.
 *
 *   make build/ials_bench && build/ials_bench --factors 64 --threads 2
 *
 * Options: --factors N --threads N --iterations N --cg-steps N --users N
 * --items N --nnz N --seed N. One configuration per run, so the peak RSS
 * printed at the end belongs to that configuration alone. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "model/ials.h"
#include "util/clock.h"
#include "util/mem.h"

static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

static double unif(uint64_t *s) { return (double)(splitmix64(s) >> 11) / 9007199254740992.0; }

typedef struct {
  uint32_t nusers, nitems;
  uint64_t *indptr;
  uint32_t *indices;
  float *values;
} matrix;

/* Item popularity: Zipf-Mandelbrot p(rank k) ~ 1/(k + 25), ranks shuffled
 * over item ids (the most popular item gets ~0.6% of all interactions, like
 * the top movie of ML-20M). User activity: Pareto(1.5) with a floor, scaled
 * to the wanted total and capped at a quarter of the catalog. Values: 1
 * (70%), 2 (20%) or 3 (10%), like counts of repeated events. */
static void generate(matrix *m, uint32_t nusers, uint32_t nitems, uint64_t nnz_target, uint64_t seed) {
  uint64_t st = seed;
  double *cdf = xmalloc(nitems * sizeof *cdf);
  uint32_t *perm = xmalloc(nitems * sizeof *perm);
  double acc = 0;
  for (uint32_t k = 0; k < nitems; k++) {
    acc += 1.0 / (k + 1 + 25.0);
    cdf[k] = acc;
    perm[k] = k;
  }
  for (uint32_t k = 0; k < nitems; k++) cdf[k] /= acc;
  for (uint32_t k = nitems - 1; k > 0; k--) {
    uint32_t j = (uint32_t)(splitmix64(&st) % (k + 1));
    uint32_t t = perm[k];
    perm[k] = perm[j];
    perm[j] = t;
  }
  uint32_t cap = nitems / 4;
  double *deg = xmalloc(nusers * sizeof *deg);
  double dsum = 0;
  for (uint32_t u = 0; u < nusers; u++) {
    deg[u] = 1.0 / pow(1.0 - unif(&st), 1.0 / 1.5);
    dsum += deg[u];
  }
  m->nusers = nusers;
  m->nitems = nitems;
  m->indptr = xmalloc(((size_t)nusers + 1) * sizeof *m->indptr);
  m->indptr[0] = 0;
  /* scale to the target; the cap loses some mass, so rescale a few times */
  double scale = (double)nnz_target / dsum;
  for (int pass = 0; pass < 4; pass++) {
    for (uint32_t u = 0; u < nusers; u++) {
      double d = floor(deg[u] * scale + 0.5);
      if (d < 1) d = 1;
      if (d > cap) d = cap;
      m->indptr[u + 1] = m->indptr[u] + (uint64_t)d;
    }
    scale *= (double)nnz_target / (double)m->indptr[nusers];
  }
  uint64_t nnz = m->indptr[nusers];
  m->indices = xmalloc(nnz * sizeof *m->indices);
  m->values = xmalloc(nnz * sizeof *m->values);
  uint32_t *stamp = xcalloc(nitems, sizeof *stamp);
  for (uint32_t u = 0; u < nusers; u++) {
    uint64_t us = seed ^ ((uint64_t)(u + 1) * 0xD1B54A32D192ED03ULL);
    for (uint64_t j = m->indptr[u]; j < m->indptr[u + 1]; j++) {
      uint32_t item;
      do {
        double x = unif(&us);
        uint32_t lo = 0, hi = nitems - 1;
        while (lo < hi) {
          uint32_t mid = (lo + hi) / 2;
          if (cdf[mid] < x) lo = mid + 1;
          else hi = mid;
        }
        item = perm[lo];
      } while (stamp[item] == u + 1);
      stamp[item] = u + 1;
      m->indices[j] = item;
      uint64_t v = splitmix64(&us) % 10;
      m->values[j] = v < 7 ? 1.0f : v < 9 ? 2.0f : 3.0f;
    }
  }
  free(stamp);
  free(deg);
  free(perm);
  free(cdf);
}

static long peak_rss_kb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

static double cpu_secs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

#define MAXIT 1000
static double it_secs[MAXIT], it_cpu[MAXIT], cpu_mark;

/* wall time comes from ials_train; CPU time (all threads) between callbacks
 * shows how much of the wall time the shared machine actually gave us */
static void on_progress(void *arg, int iter, double secs, double loss) {
  (void)arg;
  double now = cpu_secs(), cpu = now - cpu_mark;
  if (iter <= MAXIT) {
    it_secs[iter - 1] = secs;
    it_cpu[iter - 1] = cpu;
  }
  cpu_mark = now;
  printf("  iteration %2d  %.3f s wall  %.3f s CPU  loss %.6f\n", iter, secs, cpu, loss);
  fflush(stdout);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void usage(void) {
  fprintf(stderr, "usage: ials_bench [--factors N] [--threads N] [--iterations N] [--cg-steps N]\n"
                  "                  [--users N] [--items N] [--nnz N] [--seed N]\n");
  exit(2);
}

int main(int argc, char **argv) {
  ials_param p;
  ials_default_param(&p);
  p.iterations = 10;
  uint32_t nusers = 138493, nitems = 20000;
  uint64_t nnz = 10000000, seed = 20;
  for (int a = 1; a < argc; a++) {
    if (a + 1 >= argc) usage();
    const char *o = argv[a], *v = argv[++a];
    if (!strcmp(o, "--factors")) p.factors = atoi(v);
    else if (!strcmp(o, "--threads")) p.threads = atoi(v);
    else if (!strcmp(o, "--iterations")) p.iterations = atoi(v);
    else if (!strcmp(o, "--cg-steps")) p.cg_steps = atoi(v);
    else if (!strcmp(o, "--users")) nusers = (uint32_t)strtoul(v, NULL, 10);
    else if (!strcmp(o, "--items")) nitems = (uint32_t)strtoul(v, NULL, 10);
    else if (!strcmp(o, "--nnz")) nnz = strtoull(v, NULL, 10);
    else if (!strcmp(o, "--seed")) seed = strtoull(v, NULL, 10);
    else usage();
  }
  const char *bad = ials_check_param(&p);
  if (bad || p.iterations > MAXIT || nusers < 1 || nitems < 8) {
    fprintf(stderr, "ials_bench: %s\n", bad ? bad : "bad sizes");
    return 2;
  }

  int64_t t0 = clock_mono_ns();
  matrix m;
  generate(&m, nusers, nitems, nnz, seed);
  double gen_s = (double)(clock_mono_ns() - t0) / 1e9;
  uint64_t maxdeg = 0, *icount = xcalloc(nitems, sizeof *icount);
  for (uint32_t u = 0; u < nusers; u++)
    if (m.indptr[u + 1] - m.indptr[u] > maxdeg) maxdeg = m.indptr[u + 1] - m.indptr[u];
  for (uint64_t j = 0; j < m.indptr[nusers]; j++) icount[m.indices[j]]++;
  uint64_t maxpop = 0, used = 0;
  for (uint32_t i = 0; i < nitems; i++) {
    if (icount[i] > maxpop) maxpop = icount[i];
    used += icount[i] > 0;
  }
  free(icount);
  long rss_input = peak_rss_kb();
  printf("matrix: %u users x %u items, %llu non-zeros (%.1f per user, max %llu; top item %llu users, "
         "%llu items used), generated in %.2f s\n",
         nusers, nitems, (unsigned long long)m.indptr[nusers], (double)m.indptr[nusers] / nusers,
         (unsigned long long)maxdeg, (unsigned long long)maxpop, (unsigned long long)used, gen_s);
  printf("train: %d factors, %d threads, %d iterations, %d CG steps, reg %g, alpha %g\n", p.factors, p.threads,
         p.iterations, p.cg_steps, p.reg, p.alpha);

  ials_problem prob = {.nusers = nusers, .nitems = nitems, .indptr = m.indptr, .indices = m.indices,
                       .values = m.values};
  char err[256];
  t0 = clock_mono_ns();
  cpu_mark = cpu_secs();
  ials_model *model = ials_train(&prob, &p, on_progress, NULL, err, sizeof err);
  double train_s = (double)(clock_mono_ns() - t0) / 1e9;
  if (!model) {
    fprintf(stderr, "ials_bench: %s\n", err);
    return 1;
  }
  long rss_train = peak_rss_kb();
  double sorted[MAXIT];
  memcpy(sorted, it_secs, sizeof(double) * (size_t)p.iterations);
  double med = median(sorted, p.iterations);
  printf("seconds per iteration: median %.3f (min %.3f, max %.3f); whole ials_train %.2f s\n", med, sorted[0],
         sorted[p.iterations - 1], train_s);
  memcpy(sorted, it_cpu, sizeof(double) * (size_t)p.iterations);
  double cmed = median(sorted, p.iterations);
  printf("CPU seconds per iteration (all threads): median %.3f (min %.3f, max %.3f)\n", cmed, sorted[0],
         sorted[p.iterations - 1]);

  /* request-time costs: fold-in of real users' histories, top-10, similar */
  int f = p.factors, reps = 2000;
  float *x = xmalloc((size_t)f * sizeof *x);
  uint32_t top[10];
  float sc[10];
  uint64_t fold_items = 0;
  int64_t tf = 0, tt = 0, ts = 0;
  double sink = 0;
  for (int r = 0; r < reps; r++) {
    uint32_t u = (uint32_t)(((uint64_t)r * 2654435761u) % nusers);
    uint64_t lo = m.indptr[u], n = m.indptr[u + 1] - lo;
    if (n > 200) n = 200; /* a live profile keeps a bounded recent history */
    fold_items += n;
    int64_t a = clock_mono_ns();
    ials_fold_in(model, m.indices + lo, m.values + lo, n, x);
    int64_t b = clock_mono_ns();
    size_t k = ials_topk(model, x, 10, NULL, NULL, top, sc);
    int64_t c = clock_mono_ns();
    k += ials_similar(model, top[0], 10, top, sc);
    int64_t d = clock_mono_ns();
    tf += b - a;
    tt += c - b;
    ts += d - c;
    sink += sc[0] + (double)k;
  }
  printf("request time (1 thread, %d users, %.1f items each on average): fold-in %.1f us, top-10 over %u items "
         "%.1f us, similar-10 %.1f us (checksum %.3g)\n",
         reps, (double)fold_items / reps, tf / 1e3 / reps, nitems, tt / 1e3 / reps, ts / 1e3 / reps, sink);
  printf("peak RSS: %.1f MiB after generating the input, %.1f MiB after training\n", rss_input / 1024.0,
         rss_train / 1024.0);
  free(x);
  ials_free(model);
  free(m.indptr);
  free(m.indices);
  free(m.values);
  return 0;
}
