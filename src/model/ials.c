/* ials.c — implicit ALS with conjugate-gradient row solves.
 *
 * Design:
 *  1. One half-sweep fixes one side's factors Y (n x f) and re-solves every
 *     row x of the other side from
 *         A x = b,   A = G + Y_u'(C_u - I)Y_u,   b = Y_u'C_u 1,   G = Y'Y + reg I
 *     (the Gram trick: the all-cells term Y'Y is shared, only a row's observed
 *     entries add to it). G comes from one cblas_ssyrk per half-sweep (on
 *     OpenBLAS's own threads, whose count is OpenBLAS's process-wide setting).
 *  2. A is never formed. Each row runs `cg_steps` conjugate-gradient steps
 *     warm-started from its previous x: the residual b - A x costs one pass
 *     over the row's entries plus G x, each step one more pass plus G p.
 *     A pass is "for each observed j: d_j = y_j.v; out += coef(d_j) y_j",
 *     done in L1-sized blocks of j: the block's dot products (four rows at a
 *     time), then one accumulation with `out` held in registers.
 *     Memory, not arithmetic, is the limit: a row's y_j are scattered rows of
 *     the other side's factors, so passes prefetch a few rows ahead and the
 *     factor matrices are backed by huge pages where the kernel allows
 *     (madvise), which removes most TLB misses of those scattered reads.
 *  3. Rows of a side are cut into chunks of about equal work (entries plus the
 *     G-product cost) whose boundaries depend only on the data, never on the
 *     thread count; workers take chunks from an atomic counter. Every row's
 *     result depends on its own inputs only, so the factors are the same for
 *     any thread count; per-chunk loss partials are summed in chunk order.
 *  4. The reported loss is the exact objective at (U_t, V_{t-1}), i.e. after
 *     the user half-sweep of iteration t: the item half-sweep's residual pass
 *     already computes every d = x_u.y_i and G y_i it needs, so it is free.
 *  5. The hot primitives (G-product, block dots, block accumulation, dot, a
 *     Cholesky row) exist as AVX-512, AVX2+FMA and portable C (vector
 *     extensions) versions, picked once per model from the CPU and `factors`
 *     (AVX-512 needs factors % 16 == 0, AVX2 factors % 8 == 0; the environment
 *     variable RECD_IALS_KERNEL=generic|avx2 caps the choice, for tests and
 *     benchmarks). Different versions round differently: models are
 *     reproducible per machine.
 *  6. Serving (fold-in, top-k, similar) never calls BLAS, so a request
 *     thread never wakes OpenBLAS's thread pool; fold-in does its own small
 *     Cholesky in double precision (left-looking, row by row, on the same
 *     kernels): at f <= 128 that is tens of microseconds.
 */
#include "model/ials.h"

#include <cblas.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define IALS_X86 1
#endif

#include "util/clock.h"
#include "util/err.h"
#include "util/fileio.h"
#include "util/mem.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "ials.c writes and reads model files in host order: little-endian hosts only"
#endif

#define IALS_MAGIC "RECDIALS"
#define IALS_VERSION 1u
#define IALS_MAX_FACTORS 1024
#define HDR_SIZE 56
#define CHUNKS 1024 /* work chunks per half-sweep (fewer if rows are few) */

/* ---- kernels ------------------------------------------------------------ */

/* The ISA-specific primitives. Everything else is written once on top. */
typedef struct {
  /* out = G v (G symmetric f x f, row-major) */
  void (*gemv)(const float *G, const float *v, float *out, int f);
  /* d[j] = rows[j].v for j < m; prefetches rows[j + PREFETCH] while that is
   * < avail (0 = no prefetching) */
  void (*dots)(const float *const *rows, uint32_t m, uint32_t avail, const float *v, float *d, int f);
  /* out += sum_j t[j] rows[j] for j < m */
  void (*accum)(const float *const *rows, const float *t, uint32_t m, float *out, int f);
  float (*dot)(const float *a, const float *b, int f);
  /* Row i of the upper Cholesky factor, left-looking, in double: A holds the
   * finished rows q < i (zero left of their diagonal) and the matrix's row i;
   * sets A[i][j] = A[i][j] - sum_{q<i} A[q][i] A[q][j] for j >= i (columns
   * left of i in the same vector may be overwritten: the caller zeroes them).
   * t is scratch for f doubles. */
  void (*chol_row)(double *A, int i, int f, double *t);
  const char *name;
} kernels;

/* A row's y_j are scattered over the other side's factors (L3 at best), so
 * the residual pass, their first touch, fetches PREFETCH rows ahead. Later
 * passes find them in L1/L2 unless the row is long (a popular item's users
 * overflow L2 on every pass): those prefetch on every pass. A prefetch of a
 * line already in L1 is not free (about a cycle per line). */
#define PREFETCH 8
#define PREFETCH_ALWAYS (64u * 1024u) /* floats: 256 KiB of y_j */
static inline void prefetch_row(const float *y, int f) {
  for (int k = 0; k < f; k += 16) __builtin_prefetch(y + k);
}

/* Passes work in blocks of rows that fit L1 (32 KiB): first the block's dot
 * products (independent, so they overlap), then one register-resident
 * accumulation over the block, re-reading the rows from L1. */
#define BLOCK_FLOATS 8192
#define BLOCK_ROWS_MAX 512
static uint32_t block_rows(int f) {
  int b = BLOCK_FLOATS / f;
  return (uint32_t)(b < 4 ? 4 : b > BLOCK_ROWS_MAX ? BLOCK_ROWS_MAX : b);
}

/* portable C with GCC/clang vector extensions: 4-float vectors become SSE
 * on any x86-64 and NEON on arm64 */
typedef float v4f __attribute__((vector_size(16)));
static inline v4f ld4(const float *p) {
  v4f v;
  memcpy(&v, p, sizeof v);
  return v;
}
static inline void st4(float *p, v4f v) { memcpy(p, &v, sizeof v); }

static void gemv_c(const float *G, const float *v, float *out, int f) {
  for (int k = 0; k < f; k++) out[k] = 0;
  int f4 = f & ~3;
  for (int l = 0; l < f; l++) {
    const float *g = G + (size_t)l * f;
    float a = v[l];
    for (int k = 0; k < f4; k += 4) st4(out + k, ld4(out + k) + a * ld4(g + k));
    for (int k = f4; k < f; k++) out[k] += a * g[k];
  }
}

static float dot_c(const float *a, const float *b, int f) {
  v4f s0 = {0, 0, 0, 0}, s1 = s0;
  int k = 0;
  for (; k + 8 <= f; k += 8) {
    s0 += ld4(a + k) * ld4(b + k);
    s1 += ld4(a + k + 4) * ld4(b + k + 4);
  }
  if (k + 4 <= f) {
    s0 += ld4(a + k) * ld4(b + k);
    k += 4;
  }
  s0 += s1;
  float r = (s0[0] + s0[1]) + (s0[2] + s0[3]);
  for (; k < f; k++) r += a[k] * b[k];
  return r;
}

static void dots_c(const float *const *rows, uint32_t m, uint32_t avail, const float *v, float *d, int f) {
  for (uint32_t j = 0; j < m; j++) {
    if (j + PREFETCH < avail) prefetch_row(rows[j + PREFETCH], f);
    d[j] = dot_c(rows[j], v, f);
  }
}

static void accum_c(const float *const *rows, const float *t, uint32_t m, float *out, int f) {
  int f4 = f & ~3;
  for (uint32_t j = 0; j < m; j++) {
    const float *y = rows[j];
    float a = t[j];
    for (int k = 0; k < f4; k += 4) st4(out + k, ld4(out + k) + a * ld4(y + k));
    for (int k = f4; k < f; k++) out[k] += a * y[k];
  }
}

static void chol_row_c(double *A, int i, int f, double *t) {
  double *ri = A + (size_t)i * f;
  for (int q = 0; q < i; q++) t[q] = A[(size_t)q * f + i];
  for (int q = 0; q < i; q++) {
    const double *rq = A + (size_t)q * f;
    for (int j = i; j < f; j++) ri[j] -= t[q] * rq[j];
  }
}

static const kernels kern_c = {gemv_c, dots_c, accum_c, dot_c, chol_row_c, "generic"};

#ifdef IALS_X86
/* AVX-512F, f % 16 == 0 */
#define T512 __attribute__((target("avx512f")))

T512 static inline float dot_512(const float *a, const float *b, int f) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  int k = 0;
  for (; k + 32 <= f; k += 32) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + k), _mm512_loadu_ps(b + k), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + k + 16), _mm512_loadu_ps(b + k + 16), s1);
  }
  if (k < f) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + k), _mm512_loadu_ps(b + k), s0);
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

T512 static float dot_512_fn(const float *a, const float *b, int f) { return dot_512(a, b, f); }

T512 static void gemv_512(const float *G, const float *v, float *out, int f) {
  int c = 0;
  /* 64 columns at a time, two interleaved accumulator sets over l to hide FMA latency */
  for (; c + 64 <= f; c += 64) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    __m512 b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps(), b2 = _mm512_setzero_ps(), b3 = _mm512_setzero_ps();
    int l = 0;
    for (; l + 2 <= f; l += 2) {
      const float *g = G + (size_t)l * f + c, *h = g + f;
      __m512 p = _mm512_set1_ps(v[l]), q = _mm512_set1_ps(v[l + 1]);
      a0 = _mm512_fmadd_ps(p, _mm512_loadu_ps(g), a0);
      a1 = _mm512_fmadd_ps(p, _mm512_loadu_ps(g + 16), a1);
      a2 = _mm512_fmadd_ps(p, _mm512_loadu_ps(g + 32), a2);
      a3 = _mm512_fmadd_ps(p, _mm512_loadu_ps(g + 48), a3);
      b0 = _mm512_fmadd_ps(q, _mm512_loadu_ps(h), b0);
      b1 = _mm512_fmadd_ps(q, _mm512_loadu_ps(h + 16), b1);
      b2 = _mm512_fmadd_ps(q, _mm512_loadu_ps(h + 32), b2);
      b3 = _mm512_fmadd_ps(q, _mm512_loadu_ps(h + 48), b3);
    }
    for (; l < f; l++) {
      const float *g = G + (size_t)l * f + c;
      __m512 p = _mm512_set1_ps(v[l]);
      a0 = _mm512_fmadd_ps(p, _mm512_loadu_ps(g), a0);
      a1 = _mm512_fmadd_ps(p, _mm512_loadu_ps(g + 16), a1);
      a2 = _mm512_fmadd_ps(p, _mm512_loadu_ps(g + 32), a2);
      a3 = _mm512_fmadd_ps(p, _mm512_loadu_ps(g + 48), a3);
    }
    _mm512_storeu_ps(out + c, _mm512_add_ps(a0, b0));
    _mm512_storeu_ps(out + c + 16, _mm512_add_ps(a1, b1));
    _mm512_storeu_ps(out + c + 32, _mm512_add_ps(a2, b2));
    _mm512_storeu_ps(out + c + 48, _mm512_add_ps(a3, b3));
  }
  for (; c < f; c += 16) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int l = 0;
    for (; l + 2 <= f; l += 2) {
      a0 = _mm512_fmadd_ps(_mm512_set1_ps(v[l]), _mm512_loadu_ps(G + (size_t)l * f + c), a0);
      a1 = _mm512_fmadd_ps(_mm512_set1_ps(v[l + 1]), _mm512_loadu_ps(G + (size_t)(l + 1) * f + c), a1);
    }
    if (l < f) a0 = _mm512_fmadd_ps(_mm512_set1_ps(v[l]), _mm512_loadu_ps(G + (size_t)l * f + c), a0);
    _mm512_storeu_ps(out + c, _mm512_add_ps(a0, a1));
  }
}

/* the lane sums of four vectors, as one 4-float vector */
T512 static inline __m128 reduce4_512(__m512 a, __m512 b, __m512 c, __m512 d) {
  __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
  __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
  __m512d abd = _mm512_castps_pd(ab), cdd = _mm512_castps_pd(cd);
  /* 64-bit moves pair up (a,b) with (c,d); the adds stay on floats */
  __m512 lo = _mm512_castpd_ps(_mm512_unpacklo_pd(abd, cdd)), hi = _mm512_castpd_ps(_mm512_unpackhi_pd(abd, cdd));
  __m512 s = _mm512_add_ps(lo, hi);
  __m256 h = _mm256_add_ps(_mm512_castps512_ps256(s), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s), 1)));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

T512 static void dots_512(const float *const *rows, uint32_t m, uint32_t avail, const float *v, float *d, int f) {
  uint32_t j = 0;
  for (; j + 4 <= m; j += 4) {
    for (uint32_t q = j; q < j + 4; q++)
      if (q + PREFETCH < avail) prefetch_row(rows[q + PREFETCH], f);
    const float *y0 = rows[j], *y1 = rows[j + 1], *y2 = rows[j + 2], *y3 = rows[j + 3];
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    for (int k = 0; k < f; k += 16) {
      __m512 vk = _mm512_loadu_ps(v + k);
      a0 = _mm512_fmadd_ps(_mm512_loadu_ps(y0 + k), vk, a0);
      a1 = _mm512_fmadd_ps(_mm512_loadu_ps(y1 + k), vk, a1);
      a2 = _mm512_fmadd_ps(_mm512_loadu_ps(y2 + k), vk, a2);
      a3 = _mm512_fmadd_ps(_mm512_loadu_ps(y3 + k), vk, a3);
    }
    _mm_storeu_ps(d + j, reduce4_512(a0, a1, a2, a3));
  }
  for (; j < m; j++) d[j] = dot_512(rows[j], v, f);
}

/* out held in registers, 64 columns at a time, two accumulator sets (even
 * and odd rows) to hide FMA latency */
T512 static void accum_512(const float *const *rows, const float *t, uint32_t m, float *out, int f) {
  int c = 0;
  for (; c + 64 <= f; c += 64) {
    __m512 a0 = _mm512_loadu_ps(out + c), a1 = _mm512_loadu_ps(out + c + 16);
    __m512 a2 = _mm512_loadu_ps(out + c + 32), a3 = _mm512_loadu_ps(out + c + 48);
    __m512 b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps(), b2 = _mm512_setzero_ps(), b3 = _mm512_setzero_ps();
    uint32_t j = 0;
    for (; j + 2 <= m; j += 2) {
      const float *y = rows[j] + c, *z = rows[j + 1] + c;
      __m512 p = _mm512_set1_ps(t[j]), q = _mm512_set1_ps(t[j + 1]);
      a0 = _mm512_fmadd_ps(p, _mm512_loadu_ps(y), a0);
      a1 = _mm512_fmadd_ps(p, _mm512_loadu_ps(y + 16), a1);
      a2 = _mm512_fmadd_ps(p, _mm512_loadu_ps(y + 32), a2);
      a3 = _mm512_fmadd_ps(p, _mm512_loadu_ps(y + 48), a3);
      b0 = _mm512_fmadd_ps(q, _mm512_loadu_ps(z), b0);
      b1 = _mm512_fmadd_ps(q, _mm512_loadu_ps(z + 16), b1);
      b2 = _mm512_fmadd_ps(q, _mm512_loadu_ps(z + 32), b2);
      b3 = _mm512_fmadd_ps(q, _mm512_loadu_ps(z + 48), b3);
    }
    if (j < m) {
      const float *y = rows[j] + c;
      __m512 p = _mm512_set1_ps(t[j]);
      a0 = _mm512_fmadd_ps(p, _mm512_loadu_ps(y), a0);
      a1 = _mm512_fmadd_ps(p, _mm512_loadu_ps(y + 16), a1);
      a2 = _mm512_fmadd_ps(p, _mm512_loadu_ps(y + 32), a2);
      a3 = _mm512_fmadd_ps(p, _mm512_loadu_ps(y + 48), a3);
    }
    _mm512_storeu_ps(out + c, _mm512_add_ps(a0, b0));
    _mm512_storeu_ps(out + c + 16, _mm512_add_ps(a1, b1));
    _mm512_storeu_ps(out + c + 32, _mm512_add_ps(a2, b2));
    _mm512_storeu_ps(out + c + 48, _mm512_add_ps(a3, b3));
  }
  for (; c < f; c += 16) {
    __m512 a0 = _mm512_loadu_ps(out + c), b0 = _mm512_setzero_ps();
    uint32_t j = 0;
    for (; j + 2 <= m; j += 2) {
      a0 = _mm512_fmadd_ps(_mm512_set1_ps(t[j]), _mm512_loadu_ps(rows[j] + c), a0);
      b0 = _mm512_fmadd_ps(_mm512_set1_ps(t[j + 1]), _mm512_loadu_ps(rows[j + 1] + c), b0);
    }
    if (j < m) a0 = _mm512_fmadd_ps(_mm512_set1_ps(t[j]), _mm512_loadu_ps(rows[j] + c), a0);
    _mm512_storeu_ps(out + c, _mm512_add_ps(a0, b0));
  }
}

/* f % 16 == 0 here: rows are whole 8-double vectors; row i is updated from
 * the vector holding column i on, 32 columns per register-resident block */
T512 static void chol_row_512(double *A, int i, int f, double *t) {
  double *ri = A + (size_t)i * f;
  for (int q = 0; q < i; q++) t[q] = A[(size_t)q * f + i];
  int c = i & ~7;
  for (; c + 32 <= f; c += 32) {
    __m512d a0 = _mm512_loadu_pd(ri + c), a1 = _mm512_loadu_pd(ri + c + 8);
    __m512d a2 = _mm512_loadu_pd(ri + c + 16), a3 = _mm512_loadu_pd(ri + c + 24);
    __m512d b0 = _mm512_setzero_pd(), b1 = _mm512_setzero_pd(), b2 = _mm512_setzero_pd(), b3 = _mm512_setzero_pd();
    int q = 0;
    for (; q + 2 <= i; q += 2) { /* even q into a, odd q into b: two FMA chains */
      const double *rq = A + (size_t)q * f + c, *rr = rq + f;
      __m512d u = _mm512_set1_pd(t[q]), v = _mm512_set1_pd(t[q + 1]);
      a0 = _mm512_fnmadd_pd(u, _mm512_loadu_pd(rq), a0);
      a1 = _mm512_fnmadd_pd(u, _mm512_loadu_pd(rq + 8), a1);
      a2 = _mm512_fnmadd_pd(u, _mm512_loadu_pd(rq + 16), a2);
      a3 = _mm512_fnmadd_pd(u, _mm512_loadu_pd(rq + 24), a3);
      b0 = _mm512_fnmadd_pd(v, _mm512_loadu_pd(rr), b0);
      b1 = _mm512_fnmadd_pd(v, _mm512_loadu_pd(rr + 8), b1);
      b2 = _mm512_fnmadd_pd(v, _mm512_loadu_pd(rr + 16), b2);
      b3 = _mm512_fnmadd_pd(v, _mm512_loadu_pd(rr + 24), b3);
    }
    if (q < i) {
      const double *rq = A + (size_t)q * f + c;
      __m512d u = _mm512_set1_pd(t[q]);
      a0 = _mm512_fnmadd_pd(u, _mm512_loadu_pd(rq), a0);
      a1 = _mm512_fnmadd_pd(u, _mm512_loadu_pd(rq + 8), a1);
      a2 = _mm512_fnmadd_pd(u, _mm512_loadu_pd(rq + 16), a2);
      a3 = _mm512_fnmadd_pd(u, _mm512_loadu_pd(rq + 24), a3);
    }
    _mm512_storeu_pd(ri + c, _mm512_add_pd(a0, b0));
    _mm512_storeu_pd(ri + c + 8, _mm512_add_pd(a1, b1));
    _mm512_storeu_pd(ri + c + 16, _mm512_add_pd(a2, b2));
    _mm512_storeu_pd(ri + c + 24, _mm512_add_pd(a3, b3));
  }
  for (; c < f; c += 8) {
    __m512d a0 = _mm512_loadu_pd(ri + c);
    for (int q = 0; q < i; q++) a0 = _mm512_fnmadd_pd(_mm512_set1_pd(t[q]), _mm512_loadu_pd(A + (size_t)q * f + c), a0);
    _mm512_storeu_pd(ri + c, a0);
  }
}

static const kernels kern_512 = {gemv_512, dots_512, accum_512, dot_512_fn, chol_row_512, "avx512"};

/* AVX2 + FMA, f % 8 == 0 */
#define T256 __attribute__((target("avx2,fma")))

T256 static inline float dot_256(const float *a, const float *b, int f) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int k = 0;
  for (; k + 16 <= f; k += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k + 8), _mm256_loadu_ps(b + k + 8), s1);
  }
  if (k < f) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), s0);
  __m256 s = _mm256_add_ps(s0, s1);
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  x = _mm_add_ss(x, _mm_movehdup_ps(x));
  return _mm_cvtss_f32(x);
}

T256 static float dot_256_fn(const float *a, const float *b, int f) { return dot_256(a, b, f); }

T256 static void gemv_256(const float *G, const float *v, float *out, int f) {
  int c = 0;
  for (; c + 32 <= f; c += 32) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    for (int l = 0; l < f; l++) {
      const float *g = G + (size_t)l * f + c;
      __m256 p = _mm256_set1_ps(v[l]);
      a0 = _mm256_fmadd_ps(p, _mm256_loadu_ps(g), a0);
      a1 = _mm256_fmadd_ps(p, _mm256_loadu_ps(g + 8), a1);
      a2 = _mm256_fmadd_ps(p, _mm256_loadu_ps(g + 16), a2);
      a3 = _mm256_fmadd_ps(p, _mm256_loadu_ps(g + 24), a3);
    }
    _mm256_storeu_ps(out + c, a0);
    _mm256_storeu_ps(out + c + 8, a1);
    _mm256_storeu_ps(out + c + 16, a2);
    _mm256_storeu_ps(out + c + 24, a3);
  }
  for (; c < f; c += 8) {
    __m256 a0 = _mm256_setzero_ps();
    for (int l = 0; l < f; l++)
      a0 = _mm256_fmadd_ps(_mm256_set1_ps(v[l]), _mm256_loadu_ps(G + (size_t)l * f + c), a0);
    _mm256_storeu_ps(out + c, a0);
  }
}

T256 static void dots_256(const float *const *rows, uint32_t m, uint32_t avail, const float *v, float *d, int f) {
  uint32_t j = 0;
  for (; j + 4 <= m; j += 4) {
    for (uint32_t q = j; q < j + 4; q++)
      if (q + PREFETCH < avail) prefetch_row(rows[q + PREFETCH], f);
    const float *y0 = rows[j], *y1 = rows[j + 1], *y2 = rows[j + 2], *y3 = rows[j + 3];
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    for (int k = 0; k < f; k += 8) {
      __m256 vk = _mm256_loadu_ps(v + k);
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(y0 + k), vk, a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(y1 + k), vk, a1);
      a2 = _mm256_fmadd_ps(_mm256_loadu_ps(y2 + k), vk, a2);
      a3 = _mm256_fmadd_ps(_mm256_loadu_ps(y3 + k), vk, a3);
    }
    /* hadd twice leaves [a b c d] in each 128-bit half, partially summed */
    __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    _mm_storeu_ps(d + j, _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1)));
  }
  for (; j < m; j++) d[j] = dot_256(rows[j], v, f);
}

T256 static void accum_256(const float *const *rows, const float *t, uint32_t m, float *out, int f) {
  int c = 0;
  for (; c + 32 <= f; c += 32) {
    __m256 a0 = _mm256_loadu_ps(out + c), a1 = _mm256_loadu_ps(out + c + 8);
    __m256 a2 = _mm256_loadu_ps(out + c + 16), a3 = _mm256_loadu_ps(out + c + 24);
    __m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps(), b2 = _mm256_setzero_ps(), b3 = _mm256_setzero_ps();
    uint32_t j = 0;
    for (; j + 2 <= m; j += 2) {
      const float *y = rows[j] + c, *z = rows[j + 1] + c;
      __m256 p = _mm256_set1_ps(t[j]), q = _mm256_set1_ps(t[j + 1]);
      a0 = _mm256_fmadd_ps(p, _mm256_loadu_ps(y), a0);
      a1 = _mm256_fmadd_ps(p, _mm256_loadu_ps(y + 8), a1);
      a2 = _mm256_fmadd_ps(p, _mm256_loadu_ps(y + 16), a2);
      a3 = _mm256_fmadd_ps(p, _mm256_loadu_ps(y + 24), a3);
      b0 = _mm256_fmadd_ps(q, _mm256_loadu_ps(z), b0);
      b1 = _mm256_fmadd_ps(q, _mm256_loadu_ps(z + 8), b1);
      b2 = _mm256_fmadd_ps(q, _mm256_loadu_ps(z + 16), b2);
      b3 = _mm256_fmadd_ps(q, _mm256_loadu_ps(z + 24), b3);
    }
    if (j < m) {
      const float *y = rows[j] + c;
      __m256 p = _mm256_set1_ps(t[j]);
      a0 = _mm256_fmadd_ps(p, _mm256_loadu_ps(y), a0);
      a1 = _mm256_fmadd_ps(p, _mm256_loadu_ps(y + 8), a1);
      a2 = _mm256_fmadd_ps(p, _mm256_loadu_ps(y + 16), a2);
      a3 = _mm256_fmadd_ps(p, _mm256_loadu_ps(y + 24), a3);
    }
    _mm256_storeu_ps(out + c, _mm256_add_ps(a0, b0));
    _mm256_storeu_ps(out + c + 8, _mm256_add_ps(a1, b1));
    _mm256_storeu_ps(out + c + 16, _mm256_add_ps(a2, b2));
    _mm256_storeu_ps(out + c + 24, _mm256_add_ps(a3, b3));
  }
  for (; c < f; c += 8) {
    __m256 a0 = _mm256_loadu_ps(out + c), b0 = _mm256_setzero_ps();
    uint32_t j = 0;
    for (; j + 2 <= m; j += 2) {
      a0 = _mm256_fmadd_ps(_mm256_set1_ps(t[j]), _mm256_loadu_ps(rows[j] + c), a0);
      b0 = _mm256_fmadd_ps(_mm256_set1_ps(t[j + 1]), _mm256_loadu_ps(rows[j + 1] + c), b0);
    }
    if (j < m) a0 = _mm256_fmadd_ps(_mm256_set1_ps(t[j]), _mm256_loadu_ps(rows[j] + c), a0);
    _mm256_storeu_ps(out + c, _mm256_add_ps(a0, b0));
  }
}

T256 static void chol_row_256(double *A, int i, int f, double *t) {
  double *ri = A + (size_t)i * f;
  for (int q = 0; q < i; q++) t[q] = A[(size_t)q * f + i];
  int c = i & ~3;
  for (; c + 16 <= f; c += 16) {
    __m256d a0 = _mm256_loadu_pd(ri + c), a1 = _mm256_loadu_pd(ri + c + 4);
    __m256d a2 = _mm256_loadu_pd(ri + c + 8), a3 = _mm256_loadu_pd(ri + c + 12);
    __m256d b0 = _mm256_setzero_pd(), b1 = _mm256_setzero_pd(), b2 = _mm256_setzero_pd(), b3 = _mm256_setzero_pd();
    int q = 0;
    for (; q + 2 <= i; q += 2) {
      const double *rq = A + (size_t)q * f + c, *rr = rq + f;
      __m256d u = _mm256_set1_pd(t[q]), v = _mm256_set1_pd(t[q + 1]);
      a0 = _mm256_fnmadd_pd(u, _mm256_loadu_pd(rq), a0);
      a1 = _mm256_fnmadd_pd(u, _mm256_loadu_pd(rq + 4), a1);
      a2 = _mm256_fnmadd_pd(u, _mm256_loadu_pd(rq + 8), a2);
      a3 = _mm256_fnmadd_pd(u, _mm256_loadu_pd(rq + 12), a3);
      b0 = _mm256_fnmadd_pd(v, _mm256_loadu_pd(rr), b0);
      b1 = _mm256_fnmadd_pd(v, _mm256_loadu_pd(rr + 4), b1);
      b2 = _mm256_fnmadd_pd(v, _mm256_loadu_pd(rr + 8), b2);
      b3 = _mm256_fnmadd_pd(v, _mm256_loadu_pd(rr + 12), b3);
    }
    if (q < i) {
      const double *rq = A + (size_t)q * f + c;
      __m256d u = _mm256_set1_pd(t[q]);
      a0 = _mm256_fnmadd_pd(u, _mm256_loadu_pd(rq), a0);
      a1 = _mm256_fnmadd_pd(u, _mm256_loadu_pd(rq + 4), a1);
      a2 = _mm256_fnmadd_pd(u, _mm256_loadu_pd(rq + 8), a2);
      a3 = _mm256_fnmadd_pd(u, _mm256_loadu_pd(rq + 12), a3);
    }
    _mm256_storeu_pd(ri + c, _mm256_add_pd(a0, b0));
    _mm256_storeu_pd(ri + c + 4, _mm256_add_pd(a1, b1));
    _mm256_storeu_pd(ri + c + 8, _mm256_add_pd(a2, b2));
    _mm256_storeu_pd(ri + c + 12, _mm256_add_pd(a3, b3));
  }
  for (; c < f; c += 4) {
    __m256d a0 = _mm256_loadu_pd(ri + c);
    for (int q = 0; q < i; q++) a0 = _mm256_fnmadd_pd(_mm256_set1_pd(t[q]), _mm256_loadu_pd(A + (size_t)q * f + c), a0);
    _mm256_storeu_pd(ri + c, a0);
  }
}

static const kernels kern_256 = {gemv_256, dots_256, accum_256, dot_256_fn, chol_row_256, "avx2"};
#endif

/* out += sum_j w_j (y_j.v) y_j */
static void pass_ax(const kernels *k, const float *const *rows, const float *w, uint32_t n, const float *v, float *out,
                    int f) {
  float t[BLOCK_ROWS_MAX];
  uint32_t B = block_rows(f);
  int pf = (uint64_t)n * f >= PREFETCH_ALWAYS;
  for (uint32_t j0 = 0; j0 < n; j0 += B) {
    uint32_t m = n - j0 < B ? n - j0 : B;
    k->dots(rows + j0, m, pf ? n - j0 : 0, v, t, f);
    for (uint32_t j = 0; j < m; j++) t[j] *= w[j0 + j];
    k->accum(rows + j0, t, m, out, f);
  }
}

/* out += sum_j (1 + w_j - w_j (y_j.v)) y_j, the data part of the residual
 * b - A v; returns sum_j c_j (1 - d_j)^2 - d_j^2 (d_j = y_j.v, c_j = 1 + w_j),
 * the observed cells' share of the objective */
static double pass_res(const kernels *k, const float *const *rows, const float *w, uint32_t n, const float *v,
                       float *out, int f) {
  float t[BLOCK_ROWS_MAX];
  uint32_t B = block_rows(f);
  double loss = 0;
  for (uint32_t j0 = 0; j0 < n; j0 += B) {
    uint32_t m = n - j0 < B ? n - j0 : B;
    k->dots(rows + j0, m, n - j0, v, t, f);
    for (uint32_t j = 0; j < m; j++) {
      float d = t[j], wj = w[j0 + j];
      t[j] = 1 + wj - wj * d;
      loss += (double)(1 + wj) * (1 - d) * (1 - d) - (double)d * d;
    }
    k->accum(rows + j0, t, m, out, f);
  }
  return loss;
}

/* RECD_IALS_KERNEL=generic|avx2|avx512 caps the choice (tests, benchmarks) */
static const kernels *pick_kernels(int f) {
#ifdef IALS_X86
  const char *cap = getenv("RECD_IALS_KERNEL");
  int allow512 = !cap || !strcmp(cap, "avx512"), allow256 = allow512 || !strcmp(cap, "avx2");
  __builtin_cpu_init();
  if (allow512 && f % 16 == 0 && __builtin_cpu_supports("avx512f")) return &kern_512;
  if (allow256 && f % 8 == 0 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &kern_256;
#endif
  return &kern_c;
}

/* ---- model -------------------------------------------------------------- */

struct ials_model {
  ials_param param;
  uint32_t nusers, nitems;
  float *U, *V;        /* row-major, nusers x f and nitems x f */
  float *G;            /* V'V + reg I (f x f): fold-in's shared term */
  float *inv_norm;     /* 1 / |y_i|, 0 for zero vectors: ials_similar */
  const kernels *k;
};

/* 64-byte aligned floats; big arrays (the factor matrices, read in random
 * row order) are 2 MiB aligned and asked to be backed by huge pages, which
 * saves the TLB misses of those scattered reads */
static float *falloc(size_t n) {
  size_t bytes = n ? n * sizeof(float) : 64, align = 64;
  if (bytes >= (4u << 20)) {
    align = 2u << 20;
    bytes = (bytes + align - 1) & ~(align - 1);
  }
  void *p = NULL;
  if (posix_memalign(&p, align, bytes)) {
    fprintf(stderr, "recd: out of memory allocating %zu bytes\n", bytes);
    abort();
  }
#ifdef MADV_HUGEPAGE
  if (align > 64) madvise(p, bytes, MADV_HUGEPAGE);
#endif
  return p;
}

void ials_default_param(ials_param *p) {
  p->factors = 64;
  p->reg = 0.05f;
  p->alpha = 10.0f;
  p->iterations = 15;
  p->cg_steps = 3;
  p->threads = 2;
  p->seed = 42;
}

const char *ials_check_param(const ials_param *p) {
  if (p->factors < 1 || p->factors > IALS_MAX_FACTORS) return "factors must be between 1 and 1024";
  if (!(p->reg > 0) || !isfinite(p->reg)) return "reg must be a finite number > 0";
  if (!(p->alpha >= 0) || !isfinite(p->alpha)) return "alpha must be a finite number >= 0";
  if (p->iterations < 1 || p->iterations > 1000) return "iterations must be between 1 and 1000";
  if (p->cg_steps < 1 || p->cg_steps > 64) return "cg_steps must be between 1 and 64";
  if (p->threads < 1 || p->threads > 256) return "threads must be between 1 and 256";
  return NULL;
}

static void item_norms(ials_model *m) {
  int f = m->param.factors;
  for (uint32_t i = 0; i < m->nitems; i++) {
    const float *y = m->V + (size_t)i * f;
    double s = 0;
    for (int k = 0; k < f; k++) s += (double)y[k] * y[k];
    m->inv_norm[i] = s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f;
  }
}


void ials_free(ials_model *m) {
  if (!m) return;
  free(m->U);
  free(m->V);
  free(m->G);
  free(m->inv_norm);
  free(m);
}

size_t ials_memory(const ials_model *m) {
  if (!m) return 0;
  size_t f = (size_t)m->param.factors;
  return sizeof *m + ((size_t)m->nusers + m->nitems) * f * sizeof(float) + (f * f + m->nitems) * sizeof(float);
}

int ials_factors(const ials_model *m) { return m->param.factors; }
uint32_t ials_nusers(const ials_model *m) { return m->nusers; }
uint32_t ials_nitems(const ials_model *m) { return m->nitems; }
const ials_param *ials_params(const ials_model *m) { return &m->param; }
const float *ials_user_vec(const ials_model *m, uint32_t u) { return m->U + (size_t)u * m->param.factors; }
const float *ials_item_vec(const ials_model *m, uint32_t i) { return m->V + (size_t)i * m->param.factors; }

/* ---- training ----------------------------------------------------------- */

/* one side of the matrix: rows to solve, each a list of (other-side index, r) */
typedef struct {
  uint32_t nrows;
  const uint64_t *indptr;
  const uint32_t *indices;
  const float *values;
  uint32_t *chunk;   /* nchunks + 1 row boundaries */
  uint32_t nchunks;
  uint32_t maxlen;   /* longest row */
} side;

typedef struct worker worker;

/* a parallel loop over chunks 0..nchunks-1, taken from an atomic counter */
typedef struct job job;
struct job {
  void (*run)(job *jb, worker *wk, uint32_t chunk);
  uint32_t nchunks;
  atomic_uint next;
};

struct worker {
  job *jb;
  const float **rows;    /* longest row's y_j pointers */
  float *w;              /* its confidences - 1 */
  float *r, *p, *ap;     /* f each */
};

static worker *workers_new(int threads, uint32_t maxlen, int f) {
  worker *wks = xcalloc((size_t)threads, sizeof *wks);
  size_t cap = (size_t)maxlen + 1;
  for (int t = 0; t < threads; t++) {
    wks[t].rows = xmalloc(cap * sizeof *wks[t].rows);
    wks[t].w = xmalloc(cap * sizeof *wks[t].w);
    wks[t].r = falloc((size_t)f * 3);
    wks[t].p = wks[t].r + f;
    wks[t].ap = wks[t].p + f;
  }
  return wks;
}

static void workers_free(worker *wks, int threads) {
  for (int t = 0; t < threads; t++) {
    free(wks[t].rows);
    free(wks[t].w);
    free(wks[t].r);
  }
  free(wks);
}

static void *job_worker(void *arg) {
  worker *wk = arg;
  job *jb = wk->jb;
  for (;;) {
    unsigned c = atomic_fetch_add_explicit(&jb->next, 1, memory_order_relaxed);
    if (c >= jb->nchunks) break;
    jb->run(jb, wk, c);
  }
  return NULL;
}

/* run a job on `threads` threads, the caller being one of them */
static void run_job(job *jb, worker *wks, int threads) {
  atomic_store(&jb->next, 0);
  pthread_t tid[256];
  int started = 0;
  for (int t = 1; t < threads; t++) {
    wks[t].jb = jb;
    if (pthread_create(&tid[started], NULL, job_worker, &wks[t]) == 0) started++;
  }
  wks[0].jb = jb;
  job_worker(&wks[0]);
  for (int t = 0; t < started; t++) pthread_join(tid[t], NULL);
}

/* G = Y'Y + reg I, full symmetric (OpenBLAS, with its own thread pool) */
static void gram(const float *Y, uint32_t n, int f, float reg, float *G) {
  cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, f, (int)n, 1.0f, Y, f, 0.0f, G, f);
  for (int a = 0; a < f; a++) {
    for (int b = 0; b < a; b++) G[(size_t)a * f + b] = G[(size_t)b * f + a];
    G[(size_t)a * f + a] += reg;
  }
}

/* the derived parts of a model: G = V'V + reg I and item norms */
static void finish_model(ials_model *m) {
  int f = m->param.factors;
  m->k = pick_kernels(f);
  m->G = falloc((size_t)f * f);
  gram(m->V, m->nitems, f, m->param.reg, m->G);
  m->inv_norm = falloc(m->nitems);
  item_norms(m);
}

/* one half-sweep: solve every row of X against fixed Y */
typedef struct {
  job jb;
  const side *s;
  float *X;              /* rows being solved */
  const float *Y;        /* fixed factors */
  const float *G;        /* Y'Y + reg I */
  int f, steps;
  float alpha;
  const kernels *k;
  double *chunk_loss;    /* per chunk: sum of row losses (residual-pass form) */
} sweep;

/* x <- cg_steps CG steps on A x = b from the current x; returns the row's
 * objective terms at the incoming x: x'Gx + sum_j c_j(1-d_j)^2 - d_j^2 */
static double solve_row(const sweep *sw, worker *wk, uint32_t row) {
  const side *s = sw->s;
  const kernels *k = sw->k;
  int f = sw->f;
  float *x = sw->X + (size_t)row * f, *r = wk->r, *p = wk->p, *ap = wk->ap;
  uint64_t lo = s->indptr[row], hi = s->indptr[row + 1];
  uint32_t n = (uint32_t)(hi - lo);
  for (uint32_t j = 0; j < n; j++) {
    wk->rows[j] = sw->Y + (size_t)s->indices[lo + j] * f;
    wk->w[j] = sw->alpha * s->values[lo + j];
  }
  /* r = b - A x = -G x + sum_j (c_j - (c_j - 1) y_j.x) y_j */
  k->gemv(sw->G, x, ap, f);
  double loss = k->dot(x, ap, f);
  for (int i = 0; i < f; i++) r[i] = -ap[i];
  if (!n) {
    memset(x, 0, (size_t)f * sizeof *x); /* the exact solution */
    return loss;
  }
  loss += pass_res(k, wk->rows, wk->w, n, x, r, f);
  memcpy(p, r, (size_t)f * sizeof *p);
  float rs = k->dot(r, r, f);
  for (int it = 0; it < sw->steps && rs > 1e-20f; it++) {
    k->gemv(sw->G, p, ap, f);
    pass_ax(k, wk->rows, wk->w, n, p, ap, f);
    float pap = k->dot(p, ap, f);
    if (!(pap > 0)) break;
    float a = rs / pap;
    for (int i = 0; i < f; i++) {
      x[i] += a * p[i];
      r[i] -= a * ap[i];
    }
    float rs2 = k->dot(r, r, f);
    float beta = rs2 / rs;
    for (int i = 0; i < f; i++) p[i] = r[i] + beta * p[i];
    rs = rs2;
  }
  return loss;
}

static void sweep_chunk(job *jb, worker *wk, uint32_t c) {
  sweep *sw = (sweep *)jb;
  double loss = 0;
  for (uint32_t row = sw->s->chunk[c]; row < sw->s->chunk[c + 1]; row++) loss += solve_row(sw, wk, row);
  sw->chunk_loss[c] = loss;
}

/* chunk boundaries by work (entries + G-product cost), independent of threads */
static void make_chunks(side *s, int f) {
  double per_row = f / 2.0 + 4;
  double total = (double)s->indptr[s->nrows] + per_row * s->nrows;
  uint32_t want = s->nrows < CHUNKS ? s->nrows : CHUNKS;
  if (!want) want = 1;
  double target = total / want;
  s->chunk = xmalloc(((size_t)want + 2) * sizeof *s->chunk);
  uint32_t nc = 0;
  s->chunk[0] = 0;
  double acc = 0;
  s->maxlen = 0;
  for (uint32_t u = 0; u < s->nrows; u++) {
    uint64_t len = s->indptr[u + 1] - s->indptr[u];
    if (len > s->maxlen) s->maxlen = (uint32_t)len;
    acc += (double)len + per_row;
    if (acc >= target && nc + 1 < want) {
      s->chunk[++nc] = u + 1;
      acc = 0;
    }
  }
  if (s->chunk[nc] != s->nrows || nc == 0) s->chunk[++nc] = s->nrows;
  s->nchunks = nc;
}

/* one half-sweep on `threads` threads; returns the sum of row losses */
static double run_sweep(sweep *sw, worker *wks, int threads) {
  sw->jb.run = sweep_chunk;
  sw->jb.nchunks = sw->s->nchunks;
  run_job(&sw->jb, wks, threads);
  double loss = 0;
  for (uint32_t c = 0; c < sw->s->nchunks; c++) loss += sw->chunk_loss[c];
  return loss;
}

static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/* small uniform values in [-0.1, 0.1) / sqrt(f), per row from (seed, side, row) */
static void init_factors(float *X, uint32_t n, int f, uint64_t seed, uint64_t which) {
  float scale = 0.2f / sqrtf((float)f);
  for (uint32_t i = 0; i < n; i++) {
    uint64_t st = seed ^ (which << 62) ^ ((uint64_t)i * 0xD1B54A32D192ED03ULL);
    splitmix64(&st);
    float *x = X + (size_t)i * f;
    for (int k = 0; k < f; k++) x[k] = ((float)(splitmix64(&st) >> 40) / 16777216.0f - 0.5f) * scale;
  }
}

static const char *check_problem(const ials_problem *prob, double *rsum) {
  if (!prob || !prob->indptr || (!prob->indices && prob->indptr[prob->nusers]) ||
      (!prob->values && prob->indptr[prob->nusers]))
    return "problem has NULL arrays";
  if (!prob->nusers || !prob->nitems) return "problem has no users or no items";
  if (prob->nusers > INT_MAX || prob->nitems > INT_MAX) return "problem has more than 2^31 - 1 users or items";
  if (prob->indptr[0] != 0) return "problem indptr[0] is not 0";
  for (uint32_t u = 0; u < prob->nusers; u++)
    if (prob->indptr[u + 1] < prob->indptr[u]) return "problem indptr decreases";
  uint64_t nnz = prob->indptr[prob->nusers];
  double s = 0;
  for (uint64_t j = 0; j < nnz; j++) {
    if (prob->indices[j] >= prob->nitems) return "problem has an item index >= nitems";
    float v = prob->values[j];
    if (!(v >= 0) || !isfinite(v)) return "problem has a negative or non-finite value";
    s += v;
  }
  *rsum = s;
  return NULL;
}

ials_model *ials_train(const ials_problem *prob, const ials_param *p, ials_progress_fn progress, void *arg,
                       char *err, size_t errlen) {
  const char *why = ials_check_param(p);
  double rsum = 0;
  if (!why) why = check_problem(prob, &rsum);
  if (why) {
    if (errlen) snprintf(err, errlen, "%s", why);
    return NULL;
  }
  int f = p->factors, threads = p->threads;
  uint32_t nu = prob->nusers, ni = prob->nitems;
  uint64_t nnz = prob->indptr[nu];

  /* the item side: CSC by counting sort (users come out ascending per item) */
  uint64_t *iptr = xcalloc((size_t)ni + 1, sizeof *iptr);
  uint32_t *iidx = xmalloc((size_t)(nnz ? nnz : 1) * sizeof *iidx);
  float *ival = xmalloc((size_t)(nnz ? nnz : 1) * sizeof *ival);
  for (uint64_t j = 0; j < nnz; j++) iptr[prob->indices[j] + 1]++;
  for (uint32_t i = 0; i < ni; i++) iptr[i + 1] += iptr[i];
  uint64_t *fill = xmalloc((size_t)ni * sizeof *fill);
  memcpy(fill, iptr, (size_t)ni * sizeof *fill);
  for (uint32_t u = 0; u < nu; u++)
    for (uint64_t j = prob->indptr[u]; j < prob->indptr[u + 1]; j++) {
      uint64_t at = fill[prob->indices[j]]++;
      iidx[at] = u;
      ival[at] = prob->values[j];
    }
  free(fill);

  side su = {.nrows = nu, .indptr = prob->indptr, .indices = prob->indices, .values = prob->values};
  side si = {.nrows = ni, .indptr = iptr, .indices = iidx, .values = ival};
  make_chunks(&su, f);
  make_chunks(&si, f);

  ials_model *m = xcalloc(1, sizeof *m);
  m->param = *p;
  m->nusers = nu;
  m->nitems = ni;
  m->U = falloc((size_t)nu * f);
  m->V = falloc((size_t)ni * f);
  init_factors(m->U, nu, f, p->seed, 1);
  init_factors(m->V, ni, f, p->seed, 2);
  const kernels *k = pick_kernels(f);

  uint32_t maxlen = su.maxlen > si.maxlen ? su.maxlen : si.maxlen;
  worker *wks = workers_new(threads, maxlen, f);
  float *G = falloc((size_t)f * f);
  uint32_t maxchunks = su.nchunks > si.nchunks ? su.nchunks : si.nchunks;
  double *chunk_loss = xcalloc(maxchunks, sizeof *chunk_loss);
  /* normaliser: total confidence of all cells */
  double conf_total = (double)nu * ni + (double)p->alpha * rsum;

  for (int it = 1; it <= p->iterations; it++) {
    int64_t t0 = clock_mono_ns();
    sweep sw = {.f = f, .steps = p->cg_steps, .alpha = p->alpha, .k = k, .G = G, .chunk_loss = chunk_loss};
    /* users against fixed items */
    gram(m->V, ni, f, p->reg, G);
    sw.s = &su;
    sw.X = m->U;
    sw.Y = m->V;
    run_sweep(&sw, wks, threads);
    /* items against fixed users; its residual pass yields the loss at (U_t, V_{t-1}) */
    gram(m->U, nu, f, p->reg, G);
    sw.s = &si;
    sw.X = m->V;
    sw.Y = m->U;
    double loss = run_sweep(&sw, wks, threads);
    double secs = (double)(clock_mono_ns() - t0) / 1e9;
    if (progress) {
      /* x'Gx on the item side carries reg|y|^2; add reg|x|^2 for the users */
      double un = 0;
      for (size_t j = 0; j < (size_t)nu * f; j++) un += (double)m->U[j] * m->U[j];
      progress(arg, it, secs, (loss + p->reg * un) / conf_total);
    }
  }

  finish_model(m);
  free(chunk_loss);
  free(G);
  workers_free(wks, threads);
  free(su.chunk);
  free(si.chunk);
  free(iptr);
  free(iidx);
  free(ival);
  return m;
}

/* ---- save / load -------------------------------------------------------- */

#define HASH_SEED 0x1a15c0deULL

/* checksum of a model file's contents: header, U, V hashed as three pieces */
static uint64_t model_hash(const unsigned char *hdr, const float *U, size_t ub, const float *V, size_t vb) {
  uint64_t h = fileio_hash(HASH_SEED, hdr, HDR_SIZE);
  h = fileio_hash(h, U, ub);
  return fileio_hash(h, V, vb);
}

static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static uint32_t get32(const unsigned char *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

static void header(const ials_model *m, unsigned char h[HDR_SIZE]) {
  memset(h, 0, HDR_SIZE);
  memcpy(h, IALS_MAGIC, 8);
  put32(h + 8, IALS_VERSION);
  put32(h + 12, (uint32_t)m->param.factors);
  put32(h + 16, m->nusers);
  put32(h + 20, m->nitems);
  memcpy(h + 24, &m->param.reg, 4);
  memcpy(h + 28, &m->param.alpha, 4);
  put32(h + 32, (uint32_t)m->param.iterations);
  put32(h + 36, (uint32_t)m->param.cg_steps);
  put32(h + 40, (uint32_t)m->param.threads);
  /* 44..47 zero */
  memcpy(h + 48, &m->param.seed, 8);
}

int ials_save(const ials_model *m, const char *path) {
  if (!m || !path) return RECD_EINVAL;
  char *tmp;
  int fd = fileio_create_tmp(path, &tmp);
  if (fd < 0) return fd;
  int f = m->param.factors;
  unsigned char h[HDR_SIZE];
  header(m, h);
  size_t ub = (size_t)m->nusers * f * sizeof(float), vb = (size_t)m->nitems * f * sizeof(float);
  uint64_t sum = model_hash(h, m->U, ub, m->V, vb);
  int rc = fileio_write_all(fd, h, HDR_SIZE);
  if (!rc) rc = fileio_write_all(fd, m->U, ub);
  if (!rc) rc = fileio_write_all(fd, m->V, vb);
  if (!rc) rc = fileio_write_all(fd, &sum, sizeof sum);
  return fileio_commit(fd, tmp, path, rc);
}

ials_model *ials_load(const char *path, char *err, size_t errlen) {
  char dummy[1];
  if (!errlen) {
    err = dummy;
    errlen = sizeof dummy;
  }
  ials_model *m = NULL;
  unsigned char h[HDR_SIZE];
  uint64_t size;
  int rc, fd = fileio_open_envelope(path, IALS_MAGIC, IALS_VERSION, "iALS model", h, HDR_SIZE, &size, err, errlen);
  if (fd < 0) return NULL;
  ials_param p;
  p.factors = (int)get32(h + 12);
  memcpy(&p.reg, h + 24, 4);
  memcpy(&p.alpha, h + 28, 4);
  p.iterations = (int)get32(h + 32);
  p.cg_steps = (int)get32(h + 36);
  p.threads = (int)get32(h + 40);
  memcpy(&p.seed, h + 48, 8);
  uint32_t nu = get32(h + 16), ni = get32(h + 20);
  const char *bad = ials_check_param(&p);
  if (bad || !nu || !ni || nu > INT_MAX || ni > INT_MAX) {
    snprintf(err, errlen, "%s has a bad header: %s", path, bad ? bad : "user or item count out of range");
    goto fail;
  }
  uint64_t ub = (uint64_t)nu * p.factors * sizeof(float), vb = (uint64_t)ni * p.factors * sizeof(float);
  uint64_t want = HDR_SIZE + ub + vb + 8;
  if (size != want) {
    snprintf(err, errlen, "%s is %lld bytes but its header (%u users, %u items, %d factors) needs %llu", path,
             (long long)size, nu, ni, p.factors, (unsigned long long)want);
    goto fail;
  }
  m = xcalloc(1, sizeof *m);
  m->param = p;
  m->nusers = nu;
  m->nitems = ni;
  m->U = falloc((size_t)nu * p.factors);
  m->V = falloc((size_t)ni * p.factors);
  uint64_t stored;
  if ((rc = fileio_read_all(fd, m->U, ub)) || (rc = fileio_read_all(fd, m->V, vb)) ||
      (rc = fileio_read_all(fd, &stored, sizeof stored))) {
    snprintf(err, errlen, "cannot read %s: %s", path,
             rc == RECD_ECORRUPT ? "file shrank while reading" : recd_strerror(rc));
    goto fail;
  }
  if (model_hash(h, m->U, ub, m->V, vb) != stored) {
    snprintf(err, errlen, "%s fails its checksum (corrupt or partly written)", path);
    goto fail;
  }
  close(fd);
  finish_model(m);
  return m;
fail:
  close(fd);
  ials_free(m);
  return NULL;
}

/* ---- serving ------------------------------------------------------------ */

typedef struct {
  uint32_t item;
  float r;
} entry;

static int cmp_entry(const void *a, const void *b) {
  uint32_t x = ((const entry *)a)->item, y = ((const entry *)b)->item;
  return x < y ? -1 : x > y;
}

int ials_fold_in(const ials_model *m, const uint32_t *items, const float *r, size_t n, float *out) {
  int f = m->param.factors;
  const kernels *k = m->k;
  memset(out, 0, (size_t)f * sizeof *out);
  for (size_t j = 0; j < n; j++)
    if (!(r[j] >= 0) || !isfinite(r[j])) return RECD_EINVAL;
  size_t ff = (size_t)f * f, per = sizeof(entry) + sizeof(float *) + 2 * sizeof(float);
  if (n > SIZE_MAX / per) return RECD_ENOMEM;
  /* e: the entries, then (once merged) row pointers, w and c for each;
   * A: the double matrix, z and x, then the float matrix and b */
  entry *e = malloc((n ? n : 1) * per);
  double *A = malloc((ff + 2 * (size_t)f) * sizeof(double) + (ff + (size_t)f) * sizeof(float));
  if (!e || !A) {
    free(e);
    free(A);
    return RECD_ENOMEM;
  }
  size_t ne = 0;
  for (size_t j = 0; j < n; j++)
    if (items[j] < m->nitems) e[ne++] = (entry){items[j], r[j]};
  qsort(e, ne, sizeof *e, cmp_entry);
  size_t u = 0;
  for (size_t j = 0; j < ne; j++) {
    if (u && e[u - 1].item == e[j].item) e[u - 1].r += e[j].r;
    else e[u++] = e[j];
  }
  ne = u;
  int rc = 0;
  if (ne) {
    const float **rows = (const float **)(e + ne);
    float *w = (float *)(rows + ne), *c = w + ne;
    double *z = A + ff, *x = z + f;
    float *Af = (float *)(x + f), *bf = Af + ff;
    for (size_t j = 0; j < ne; j++) {
      rows[j] = m->V + (size_t)e[j].item * f;
      w[j] = m->param.alpha * e[j].r;
      c[j] = 1 + w[j];
    }
    /* Af = G + sum_j w_j y_j y_j' (row a gets sum_j (w_j y_j[a]) y_j), bf = sum_j c_j y_j */
    memcpy(Af, m->G, ff * sizeof *Af);
    memset(bf, 0, (size_t)f * sizeof *bf);
    float t[BLOCK_ROWS_MAX];
    uint32_t B = block_rows(f);
    for (size_t j0 = 0; j0 < ne; j0 += B) {
      uint32_t mb = (uint32_t)(ne - j0 < B ? ne - j0 : B);
      for (int a = 0; a < f; a++) {
        for (uint32_t j = 0; j < mb; j++) t[j] = w[j0 + j] * rows[j0 + j][a];
        k->accum(rows + j0, t, mb, Af + (size_t)a * f, f);
      }
      k->accum(rows + j0, c + j0, mb, bf, f);
    }
    /* Cholesky A = U'U in double (upper triangle, row-major, row by row),
     * then U'z = b, U x = z */
    for (size_t q = 0; q < ff; q++) A[q] = Af[q];
    for (int i = 0; i < f; i++) {
      double *rw = A + (size_t)i * f;
      k->chol_row(A, i, f, z);
      for (int j = 0; j < i; j++) rw[j] = 0;
      double d = rw[i];
      if (!(d > 0)) {
        rc = RECD_EINVAL; /* not positive definite: cannot happen with reg > 0 */
        break;
      }
      d = sqrt(d);
      rw[i] = d;
      for (int j = i + 1; j < f; j++) rw[j] /= d;
    }
    if (!rc) {
      for (int a = 0; a < f; a++) z[a] = bf[a];
      for (int a = 0; a < f; a++) {
        const double *rw = A + (size_t)a * f;
        z[a] /= rw[a];
        for (int j = a + 1; j < f; j++) z[j] -= z[a] * rw[j];
      }
      for (int a = f - 1; a >= 0; a--) {
        const double *rw = A + (size_t)a * f;
        double s0 = z[a], s1 = 0, s2 = 0, s3 = 0; /* four chains */
        int j = a + 1;
        for (; j + 4 <= f; j += 4) {
          s0 -= rw[j] * x[j];
          s1 -= rw[j + 1] * x[j + 1];
          s2 -= rw[j + 2] * x[j + 2];
          s3 -= rw[j + 3] * x[j + 3];
        }
        for (; j < f; j++) s0 -= rw[j] * x[j];
        x[a] = ((s0 + s1) + (s2 + s3)) / rw[a];
      }
      for (int a = 0; a < f; a++) out[a] = (float)x[a];
    }
  }
  free(e);
  free(A);
  return rc;
}

/* min-heap on (score, then higher id = worse) of the best so far */
static int worse(float sa, uint32_t ia, float sb, uint32_t ib) { return sa < sb || (sa == sb && ia > ib); }

static void sift_down(uint32_t *it, float *sc, size_t n, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, w = i;
    if (l < n && worse(sc[l], it[l], sc[w], it[w])) w = l;
    if (r < n && worse(sc[r], it[r], sc[w], it[w])) w = r;
    if (w == i) return;
    float ts = sc[i];
    sc[i] = sc[w];
    sc[w] = ts;
    uint32_t ti = it[i];
    it[i] = it[w];
    it[w] = ti;
    i = w;
  }
}

static void sift_up(uint32_t *it, float *sc, size_t i) {
  while (i) {
    size_t par = (i - 1) / 2;
    if (!worse(sc[i], it[i], sc[par], it[par])) return;
    float ts = sc[i];
    sc[i] = sc[par];
    sc[par] = ts;
    uint32_t ti = it[i];
    it[i] = it[par];
    it[par] = ti;
    i = par;
  }
}

/* top-k by q.y_i (times inv_norm[i] if cosine), excluding `self`; scores
 * are computed 64 items at a time with the dots kernel */
static size_t topk_core(const ials_model *m, const float *q, size_t k, int (*skip)(void *, uint32_t), void *arg,
                        int cosine, uint32_t self, const uint32_t *among, size_t namong, uint32_t *items,
                        float *scores) {
  size_t total = among ? namong : m->nitems;
  if (k > total) k = total;
  if (!k) return 0;
  int f = m->param.factors;
  size_t n = 0;
  const float *rows[64];
  float sc[64];
  uint32_t ids[64];
  for (size_t i0 = 0; i0 < total; i0 += 64) {
    uint32_t mb = 0;
    for (size_t j = i0; j < total && j < i0 + 64; j++) {
      uint32_t id = among ? among[j] : (uint32_t)j;
      if (id >= m->nitems) continue;
      ids[mb] = id;
      rows[mb++] = m->V + (size_t)id * f;
    }
    if (!mb) continue;
    m->k->dots(rows, mb, 0, q, sc, f);
    for (uint32_t j = 0; j < mb; j++) {
      uint32_t i = ids[j];
      float s = sc[j];
      if (i == self) continue;
      if (cosine) {
        if (m->inv_norm[i] == 0) continue;
        s *= m->inv_norm[i];
      }
      if (!isfinite(s)) continue;
      if (n == k && !worse(scores[0], items[0], s, i)) continue;
      if (skip && skip(arg, i)) continue;
      if (n < k) {
        items[n] = i;
        scores[n] = s;
        sift_up(items, scores, n++);
      } else {
        items[0] = i;
        scores[0] = s;
        sift_down(items, scores, n, 0);
      }
    }
  }
  /* heap sort: repeatedly move the worst to the end */
  for (size_t e = n; e > 1; e--) {
    float ts = scores[0];
    scores[0] = scores[e - 1];
    scores[e - 1] = ts;
    uint32_t ti = items[0];
    items[0] = items[e - 1];
    items[e - 1] = ti;
    sift_down(items, scores, e - 1, 0);
  }
  return n;
}

size_t ials_topk(const ials_model *m, const float *uvec, size_t k, int (*skip)(void *arg, uint32_t item), void *arg,
                 uint32_t *items, float *scores) {
  return topk_core(m, uvec, k, skip, arg, 0, UINT32_MAX, NULL, 0, items, scores);
}

size_t ials_topk_among(const ials_model *m, const float *uvec, const uint32_t *among, size_t n, size_t k,
                       int (*skip)(void *arg, uint32_t item), void *arg, uint32_t *items, float *scores) {
  return topk_core(m, uvec, k, skip, arg, 0, UINT32_MAX, among, n, items, scores);
}

size_t ials_similar(const ials_model *m, uint32_t item, size_t k, uint32_t *items, float *scores) {
  if (item >= m->nitems || m->inv_norm[item] == 0) return 0;
  size_t n = topk_core(m, m->V + (size_t)item * m->param.factors, k, NULL, NULL, 1, item, NULL, 0, items, scores);
  for (size_t j = 0; j < n; j++) scores[j] *= m->inv_norm[item];
  return n;
}
