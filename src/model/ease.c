/* ease.c — EASE training (closed form), scoring and the model file.
 *
 * Only the items that occur in the training data ("active" items, na of
 * them) get rows and columns: an item nobody touched has a zero row and column
 * in B anyway, and leaving it out saves (n / na)^3 of the inverse's time and
 * (n / na)^2 of the memory. act[] maps compact index -> item, increasing.
 *
 * Training, in four steps, all in one na x na float32 array A that ends up as
 * B (the peak is that array plus O(nnz + n)):
 *
 *  1. Clean the input: each user's items sorted, repeats merged, item ids
 *     mapped to compact ids (an increasing map, so rows stay sorted).
 *  2. Gram matrix, upper triangle, one row at a time: with the transpose of X
 *     (for each item i, where it sits in each of its users' sorted rows),
 *     row i of X'X is sum over users u of i of x_ui * (u's items from i on).
 *     Accumulated in a per-thread double row that stays in cache; threads take
 *     rows from an atomic counter, so they write disjoint rows. Cost: about
 *     half of sum_u n_u^2 multiply-adds, far below the dense syrk's
 *     na^2 * nusers / 2 on MovieLens-like data (sparse users, many items).
 *  3. Cholesky factorisation and inverse in place (LAPACKE spotrf + spotri,
 *     OpenBLAS-threaded). The row-major upper triangle we filled is the
 *     column-major lower triangle LAPACK sees: since A is symmetric we call
 *     it column-major with 'L' and LAPACKE makes no transposed copy.
 *  4. B from P, tile by tile: each upper element p = P[i][j] (i < j) gives
 *     B[i][j] = -p / P[j][j] and B[j][i] = -p / P[i][i]; the diagonal is 0.
 *     A thread owning row block I writes upper rows in I and lower columns in
 *     I only, and reads only upper rows in I: no two threads touch one cell.
 *
 * Invariants of a model: 0 <= na <= EASE_MAX_ITEMS, na <= n; act[] strictly
 * increasing and < n; b has na^2 finite floats with a zero diagonal; nothing
 * changes after ease_train/ease_load returns.
 */
#include "model/ease.h"

#include <cblas.h>
#include <errno.h>
#include <fcntl.h>
#include <lapacke.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/err.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/mem.h"

#define EASE_MAX_ITEMS 65536u /* hard ceiling for max_items: B would be 16 GiB */
#define EASE_MAGIC "RECDEASE"
#define EASE_VERSION 1u
#define EASE_HDR 32
#define TILE 64
#define GRAM_CHUNK 8

struct ease_model {
  uint32_t n, na;  /* catalog size, active items */
  float lambda;
  uint32_t *act;   /* na: compact index -> item, increasing */
  float *b;        /* na x na, row-major, compact indexes */
};

void ease_default_param(ease_param *p) {
  p->lambda = 500.0f;
  p->threads = 0;
  p->max_items = 30000;
  p->max_bytes = 4ull << 30;
}

const char *ease_check_param(const ease_param *p) {
  if (!p) return "no parameters";
  if (!(p->lambda > 0) || !isfinite(p->lambda)) return "lambda must be a finite number > 0";
  if (p->threads < 0 || p->threads > 1024) return "threads must be 0 (one per CPU) .. 1024";
  if (p->max_items < 1 || p->max_items > EASE_MAX_ITEMS) return "max_items must be 1 .. 65536";
  return NULL;
}

/* ---- training ---- */

typedef struct {
  uint64_t k;  /* position of the item in the cleaned CSR */
  uint32_t u;  /* its user */
} colent;

typedef struct {
  uint32_t n;
  double lambda;
  const uint64_t *rp;      /* cleaned CSR */
  const uint32_t *ci;
  const float *cv;
  const uint64_t *colp;    /* transpose: item i's entries col[colp[i] .. colp[i+1]) */
  const colent *col;
  float *a;
  const float *d;          /* step 4: diag(P) */
  atomic_uint next;
  atomic_int bad;          /* step 2: a non-finite Gram entry */
} job;

static void *gram_worker(void *arg) {
  job *J = arg;
  uint32_t n = J->n;
  double *acc = xmalloc((size_t)n * sizeof *acc);
  for (;;) {
    uint32_t r0 = atomic_fetch_add(&J->next, GRAM_CHUNK);
    if (r0 >= n) break;
    uint32_t r1 = r0 + GRAM_CHUNK < n ? r0 + GRAM_CHUNK : n;
    for (uint32_t i = r0; i < r1; i++) {
      memset(acc + i, 0, (size_t)(n - i) * sizeof *acc);
      for (uint64_t e = J->colp[i]; e < J->colp[i + 1]; e++) {
        uint64_t k = J->col[e].k, end = J->rp[J->col[e].u + 1];
        double xi = J->cv[k];
        for (uint64_t t = k; t < end; t++) acc[J->ci[t]] += xi * J->cv[t];
      }
      acc[i] += J->lambda;
      float *row = J->a + (size_t)i * n;
      for (uint32_t j = i; j < n; j++) row[j] = (float)acc[j];
      if (!isfinite(row[i])) atomic_store(&J->bad, 1);
    }
  }
  free(acc);
  return NULL;
}

static void *finish_worker(void *arg) {
  job *J = arg;
  size_t n = J->n;
  float *a = J->a;
  const float *d = J->d;
  uint32_t nblk = (uint32_t)((n + TILE - 1) / TILE);
  for (;;) {
    uint32_t bi = atomic_fetch_add(&J->next, 1);
    if (bi >= nblk) break;
    size_t i0 = (size_t)bi * TILE, i1 = i0 + TILE < n ? i0 + TILE : n;
    for (size_t j0 = i0; j0 < n; j0 += TILE) {
      size_t j1 = j0 + TILE < n ? j0 + TILE : n;
      for (size_t i = i0; i < i1; i++) {
        float di = d[i];
        for (size_t j = j0 > i + 1 ? j0 : i + 1; j < j1; j++) {
          float p = a[i * n + j];
          a[i * n + j] = -p / d[j];
          a[j * n + i] = -p / di;
        }
      }
    }
    for (size_t i = i0; i < i1; i++) a[i * n + i] = 0.0f;
  }
  return NULL;
}

/* run fn on nth threads (the caller is one of them) */
static void run_threads(int nth, void *(*fn)(void *), job *J) {
  pthread_t *t = xcalloc((size_t)nth, sizeof *t);
  int started = 0;
  for (int k = 1; k < nth; k++)
    if (!pthread_create(&t[started], NULL, fn, J)) started++;
  fn(J);
  for (int k = 0; k < started; k++) pthread_join(t[k], NULL);
  free(t);
}

typedef struct {
  uint32_t i;
  float v;
} iv;

static int cmp_iv(const void *x, const void *y) {
  uint32_t a = ((const iv *)x)->i, b = ((const iv *)y)->i;
  return a < b ? -1 : a > b;
}

static int check_problem(const ease_problem *pr, char *err, size_t errlen) {
  if (!pr || !pr->indptr || (pr->indptr[pr->nusers] && !pr->indices)) {
    snprintf(err, errlen, "ease: no problem given");
    return -1;
  }
  if (pr->nitems == 0) {
    snprintf(err, errlen, "ease: the problem has no items");
    return -1;
  }
  if (pr->indptr[0] != 0) {
    snprintf(err, errlen, "ease: indptr[0] is %llu, not 0", (unsigned long long)pr->indptr[0]);
    return -1;
  }
  for (uint32_t u = 0; u < pr->nusers; u++)
    if (pr->indptr[u + 1] < pr->indptr[u]) {
      snprintf(err, errlen, "ease: indptr decreases at user %u", u);
      return -1;
    }
  uint64_t nnz = pr->indptr[pr->nusers];
  for (uint64_t k = 0; k < nnz; k++) {
    if (pr->indices[k] >= pr->nitems) {
      snprintf(err, errlen, "ease: entry %llu has item %u, but nitems is %u", (unsigned long long)k,
               pr->indices[k], pr->nitems);
      return -1;
    }
    if (pr->values && !isfinite(pr->values[k])) {
      snprintf(err, errlen, "ease: entry %llu has a non-finite value", (unsigned long long)k);
      return -1;
    }
  }
  return 0;
}

static int ncpus(void) {
  long c = sysconf(_SC_NPROCESSORS_ONLN);
  return c < 1 ? 1 : c > 1024 ? 1024 : (int)c;
}

ease_model *ease_train(const ease_problem *prob, const ease_param *p, char *err, size_t errlen) {
  const char *why = ease_check_param(p);
  if (why) {
    snprintf(err, errlen, "ease: %s", why);
    return NULL;
  }
  if (check_problem(prob, err, errlen)) return NULL;
  uint32_t n = prob->nitems, nu = prob->nusers;
  uint64_t nnz = prob->indptr[nu];
  int64_t t0 = clock_mono_ns();

  /* active items and their compact ids */
  uint32_t *cid = xcalloc(n, sizeof *cid);
  for (uint64_t k = 0; k < nnz; k++) cid[prob->indices[k]] = 1;
  uint32_t na = 0;
  for (uint32_t i = 0; i < n; i++) cid[i] = cid[i] ? na++ : UINT32_MAX;
  if (na > p->max_items) {
    free(cid);
    snprintf(err, errlen,
             "ease: %u items with interactions is more than max_items (%u): the dense item x item model "
             "would take %.1f GB",
             na, p->max_items, (double)na * na * 4 / 1e9);
    return NULL;
  }
  int nth = p->threads ? p->threads : ncpus();
  if ((uint32_t)nth > na) nth = na ? (int)na : 1;
  uint64_t need = (uint64_t)na * na * sizeof(float) + (uint64_t)n * sizeof(uint32_t) +
                  nnz * (sizeof(uint32_t) + sizeof(float) + sizeof(colent)) +
                  ((uint64_t)nu + na + 2) * sizeof(uint64_t) + (uint64_t)nth * na * sizeof(double);
  if (p->max_bytes && need > p->max_bytes) {
    free(cid);
    snprintf(err, errlen,
             "ease: training %u items would need about %.2f GB, over the budget of %.2f GB (max_bytes)", na,
             need / 1e9, p->max_bytes / 1e9);
    return NULL;
  }

  /* 1. cleaned CSR in compact ids: sorted rows, repeats merged */
  uint64_t *rp = xmalloc(((size_t)nu + 1) * sizeof *rp);
  uint32_t *ci = xmalloc((nnz ? nnz : 1) * sizeof *ci);
  float *cv = xmalloc((nnz ? nnz : 1) * sizeof *cv);
  uint64_t maxrow = 0;
  for (uint32_t u = 0; u < nu; u++)
    if (prob->indptr[u + 1] - prob->indptr[u] > maxrow) maxrow = prob->indptr[u + 1] - prob->indptr[u];
  iv *tmp = xmalloc((maxrow ? maxrow : 1) * sizeof *tmp);
  uint64_t m = 0;
  rp[0] = 0;
  for (uint32_t u = 0; u < nu; u++) {
    uint64_t b = prob->indptr[u], len = prob->indptr[u + 1] - b;
    for (uint64_t k = 0; k < len; k++)
      tmp[k] = (iv){cid[prob->indices[b + k]], prob->values ? prob->values[b + k] : 1.0f};
    qsort(tmp, len, sizeof *tmp, cmp_iv);
    for (uint64_t k = 0; k < len; k++) {
      if (m > rp[u] && ci[m - 1] == tmp[k].i) {
        if (prob->values) cv[m - 1] += tmp[k].v;
        continue;
      }
      ci[m] = tmp[k].i;
      cv[m++] = tmp[k].v;
    }
    rp[u + 1] = m;
  }
  free(tmp);
  uint32_t *act = xmalloc((na ? na : 1) * sizeof *act);
  for (uint32_t i = 0; i < n; i++)
    if (cid[i] != UINT32_MAX) act[cid[i]] = i;
  free(cid);

  /* the transpose: for item i, (position, user) of each of its entries */
  uint64_t *colp = xcalloc((size_t)na + 1, sizeof *colp);
  colent *col = xmalloc((m ? m : 1) * sizeof *col);
  for (uint64_t k = 0; k < m; k++) colp[ci[k] + 1]++;
  for (uint32_t i = 0; i < na; i++) colp[i + 1] += colp[i];
  uint64_t *fill = xmalloc(((size_t)na + 1) * sizeof *fill);
  memcpy(fill, colp, (size_t)na * sizeof *fill);
  for (uint32_t u = 0; u < nu; u++)
    for (uint64_t k = rp[u]; k < rp[u + 1]; k++) col[fill[ci[k]]++] = (colent){k, u};
  free(fill);

  ease_model *md = NULL;
  float *a = calloc((size_t)na * na + 1, sizeof *a);
  if (!a) {
    snprintf(err, errlen, "ease: out of memory allocating the %u x %u matrix (%.2f GB)", na, na,
             (double)na * na * 4 / 1e9);
    goto done;
  }

  /* 2. Gram matrix + lambda I, upper triangle */
  job J = {.n = na, .lambda = p->lambda, .rp = rp, .ci = ci, .cv = cv, .colp = colp, .col = col, .a = a};
  atomic_init(&J.next, 0);
  atomic_init(&J.bad, 0);
  run_threads(nth, gram_worker, &J);
  int64_t t1 = clock_mono_ns();
  if (atomic_load(&J.bad)) {
    snprintf(err, errlen, "ease: the Gram matrix overflows float32 (values too large)");
    goto done;
  }

  /* 3. P = G^-1 */
  lapack_int info = 0;
  if (na) {
    int oldth = openblas_get_num_threads();
    openblas_set_num_threads(nth);
    info = LAPACKE_spotrf_work(LAPACK_COL_MAJOR, 'L', (lapack_int)na, a, (lapack_int)na);
    if (info == 0) info = LAPACKE_spotri_work(LAPACK_COL_MAJOR, 'L', (lapack_int)na, a, (lapack_int)na);
    openblas_set_num_threads(oldth);
  }
  int64_t t2 = clock_mono_ns();
  if (info) {
    snprintf(err, errlen, "ease: inverting X'X + lambda I failed (LAPACK info %d): %s", (int)info,
             info > 0 ? "not positive definite in float32; raise lambda" : "bad argument");
    goto done;
  }

  /* 4. B = -P / diag(P), zero diagonal */
  float *d = xmalloc(((size_t)na + 1) * sizeof *d);
  int badd = 0;
  for (uint32_t j = 0; j < na; j++) {
    d[j] = a[(size_t)j * na + j];
    if (!(d[j] > 0) || !isfinite(d[j])) badd = 1;
  }
  if (badd) {
    free(d);
    snprintf(err, errlen, "ease: the inverse has a non-positive diagonal (numerical trouble; raise lambda)");
    goto done;
  }
  J.d = d;
  atomic_store(&J.next, 0);
  run_threads(nth, finish_worker, &J);
  free(d);
  int64_t t3 = clock_mono_ns();
  log_debug("ease: %u users, %u items (%u active), %llu entries, %d threads: gram %.2f s, inverse %.2f s, "
            "scale %.2f s",
            nu, n, na, (unsigned long long)m, nth, (t1 - t0) / 1e9, (t2 - t1) / 1e9, (t3 - t2) / 1e9);

  md = xmalloc(sizeof *md);
  *md = (ease_model){.n = n, .na = na, .lambda = p->lambda, .act = act, .b = a};
  act = NULL;
  a = NULL;
done:
  free(a);
  free(act);
  free(col);
  free(colp);
  free(cv);
  free(ci);
  free(rp);
  return md;
}

void ease_free(ease_model *m) {
  if (!m) return;
  free(m->act);
  free(m->b);
  free(m);
}

uint32_t ease_nitems(const ease_model *m) { return m->n; }
uint32_t ease_nactive(const ease_model *m) { return m->na; }
float ease_lambda(const ease_model *m) { return m->lambda; }
size_t ease_memory(const ease_model *m) {
  return sizeof *m + (size_t)m->na * sizeof *m->act + (size_t)m->na * m->na * sizeof(float);
}

/* compact index of item i, or UINT32_MAX */
static uint32_t compact(const ease_model *m, uint32_t i) {
  if (m->na == m->n) return i < m->n ? i : UINT32_MAX;
  uint32_t lo = 0, hi = m->na;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (m->act[mid] < i) lo = mid + 1;
    else hi = mid;
  }
  return lo < m->na && m->act[lo] == i ? lo : UINT32_MAX;
}

float ease_weight(const ease_model *m, uint32_t i, uint32_t j) {
  uint32_t ci = compact(m, i), cj = compact(m, j);
  return ci == UINT32_MAX || cj == UINT32_MAX ? 0.0f : m->b[(size_t)ci * m->na + cj];
}

/* ---- scoring ---- */

/* out += v * row, 8 at a time so the compiler's vectoriser takes it at -O2 */
static void axpy(float *restrict out, const float *restrict row, float v, size_t n) {
  size_t j = 0;
  for (; j + 8 <= n; j += 8) {
    out[j] += v * row[j];
    out[j + 1] += v * row[j + 1];
    out[j + 2] += v * row[j + 2];
    out[j + 3] += v * row[j + 3];
    out[j + 4] += v * row[j + 4];
    out[j + 5] += v * row[j + 5];
    out[j + 6] += v * row[j + 6];
    out[j + 7] += v * row[j + 7];
  }
  for (; j < n; j++) out[j] += v * row[j];
}

void ease_score(const ease_model *m, const uint32_t *items, const float *vals, size_t n, float *out) {
  size_t na = m->na;
  /* compact scores in out[0 .. na), then spread to item positions */
  memset(out, 0, na * sizeof *out);
  for (size_t k = 0; k < n; k++) {
    uint32_t c = compact(m, items[k]);
    if (c != UINT32_MAX) axpy(out, m->b + (size_t)c * na, vals ? vals[k] : 1.0f, na);
  }
  if (na == m->n) return;
  /* act[c] >= c: filling from the top never overwrites a score not yet moved */
  size_t j = m->n;
  for (size_t c = na; c-- > 0;) {
    while (j > m->act[c] + 1) out[--j] = 0.0f;
    out[--j] = out[c];
  }
  while (j > 0) out[--j] = 0.0f;
}

/* heap order: a is worse than b */
static int worse(float sa, uint32_t ia, float sb, uint32_t ib) { return sa < sb || (sa == sb && ia > ib); }

static void sift_down(uint32_t *hi, float *hs, size_t n, size_t r) {
  for (;;) {
    size_t c = 2 * r + 1;
    if (c >= n) return;
    if (c + 1 < n && worse(hs[c + 1], hi[c + 1], hs[c], hi[c])) c++;
    if (!worse(hs[c], hi[c], hs[r], hi[r])) return;
    uint32_t ti = hi[r];
    float ts = hs[r];
    hi[r] = hi[c], hs[r] = hs[c];
    hi[c] = ti, hs[c] = ts;
    r = c;
  }
}

size_t ease_topk(const ease_model *m, const uint32_t *items, const float *vals, size_t n, size_t k,
                 int (*skip)(void *arg, uint32_t item), void *arg, uint32_t *top, float *scores) {
  if (k == 0) return 0;
  if (k > m->n) k = m->n;
  float *s = xmalloc((size_t)m->n * sizeof *s);
  float *hs = xmalloc(k * sizeof *hs);
  ease_score(m, items, vals, n, s);
  size_t h = 0;
  for (uint32_t j = 0; j < m->n; j++) {
    if (h == k && !worse(hs[0], top[0], s[j], j)) continue;
    if (skip && skip(arg, j)) continue;
    if (h < k) {
      /* sift up */
      size_t c = h++;
      top[c] = j, hs[c] = s[j];
      while (c && worse(hs[c], top[c], hs[(c - 1) / 2], top[(c - 1) / 2])) {
        size_t pa = (c - 1) / 2;
        uint32_t ti = top[pa];
        float ts = hs[pa];
        top[pa] = top[c], hs[pa] = hs[c];
        top[c] = ti, hs[c] = ts;
        c = pa;
      }
    } else {
      top[0] = j, hs[0] = s[j];
      sift_down(top, hs, h, 0);
    }
  }
  /* heap sort: repeatedly move the worst to the end */
  for (size_t e = h; e > 1; e--) {
    uint32_t ti = top[0];
    float ts = hs[0];
    top[0] = top[e - 1], hs[0] = hs[e - 1];
    top[e - 1] = ti, hs[e - 1] = ts;
    sift_down(top, hs, e - 1, 0);
  }
  if (scores) memcpy(scores, hs, h * sizeof *hs);
  free(hs);
  free(s);
  return h;
}

/* ---- the file ---- */

static void put_header(unsigned char *hdr, const ease_model *m) {
  uint32_t ver = EASE_VERSION;
  uint64_t bytes = (uint64_t)m->na * sizeof(uint32_t) + (uint64_t)m->na * m->na * sizeof(float);
  memcpy(hdr, EASE_MAGIC, 8);
  memcpy(hdr + 8, &ver, 4);
  memcpy(hdr + 12, &m->n, 4);
  memcpy(hdr + 16, &m->na, 4);
  memcpy(hdr + 20, &m->lambda, 4);
  memcpy(hdr + 24, &bytes, 8);
}

static uint64_t file_hash(const unsigned char *hdr, const ease_model *m) {
  uint64_t h = fileio_hash(0, hdr, EASE_HDR);
  h = fileio_hash(h, m->act, (size_t)m->na * sizeof *m->act);
  return fileio_hash(h, m->b, (size_t)m->na * m->na * sizeof *m->b);
}

int ease_save(const ease_model *m, const char *path) {
  unsigned char hdr[EASE_HDR];
  put_header(hdr, m);
  uint64_t h = file_hash(hdr, m);
  char *tmp;
  int fd = fileio_create_tmp(path, &tmp);
  if (fd < 0) return fd;
  int rc = fileio_write_all(fd, hdr, sizeof hdr);
  if (!rc) rc = fileio_write_all(fd, m->act, (size_t)m->na * sizeof *m->act);
  if (!rc) rc = fileio_write_all(fd, m->b, (size_t)m->na * m->na * sizeof *m->b);
  if (!rc) rc = fileio_write_all(fd, &h, sizeof h);
  return fileio_commit(fd, tmp, path, rc);
}

ease_model *ease_load(const char *path, char *err, size_t errlen) {
  ease_model *m = NULL, tmp = {0};
  unsigned char hdr[EASE_HDR];
  uint64_t size;
  int rc;
  int fd = fileio_open_envelope(path, EASE_MAGIC, EASE_VERSION, "EASE model", hdr, sizeof hdr, &size, err, errlen);
  if (fd < 0) return NULL;
  uint64_t bytes;
  memcpy(&tmp.n, hdr + 12, 4);
  memcpy(&tmp.na, hdr + 16, 4);
  memcpy(&tmp.lambda, hdr + 20, 4);
  memcpy(&bytes, hdr + 24, 8);
  if (tmp.n < 1 || tmp.na > tmp.n || tmp.na > EASE_MAX_ITEMS ||
      bytes != (uint64_t)tmp.na * sizeof(uint32_t) + (uint64_t)tmp.na * tmp.na * sizeof(float)) {
    snprintf(err, errlen, "ease: %s has a corrupt header (%u items, %u active, %llu bytes of weights)", path, tmp.n,
             tmp.na, (unsigned long long)bytes);
    goto done;
  }
  if (size != EASE_HDR + bytes + 8) {
    snprintf(err, errlen, "ease: %s is %lld bytes, but a model of %u active items takes %llu (truncated or extended)",
             path, (long long)size, tmp.na, (unsigned long long)(EASE_HDR + bytes + 8));
    goto done;
  }
  tmp.act = malloc(((size_t)tmp.na + 1) * sizeof *tmp.act);
  tmp.b = malloc((size_t)tmp.na * tmp.na * sizeof *tmp.b + 1);
  if (!tmp.act || !tmp.b) {
    snprintf(err, errlen, "ease: out of memory loading %s (%.2f GB)", path, bytes / 1e9);
    goto done;
  }
  uint64_t h;
  if ((rc = fileio_read_all(fd, tmp.act, (size_t)tmp.na * sizeof *tmp.act)) ||
      (rc = fileio_read_all(fd, tmp.b, (size_t)tmp.na * tmp.na * sizeof *tmp.b)) || (rc = fileio_read_all(fd, &h, sizeof h))) {
    snprintf(err, errlen, "ease: reading %s: %s", path, recd_strerror(rc));
    goto done;
  }
  if (h != file_hash(hdr, &tmp)) {
    snprintf(err, errlen, "ease: %s fails its checksum (corrupt)", path);
    goto done;
  }
  /* a file that passes its hash but breaks an invariant came from a bad writer */
  int bad = !(tmp.lambda > 0) || !isfinite(tmp.lambda);
  for (uint32_t c = 0; c < tmp.na && !bad; c++)
    bad = tmp.act[c] >= tmp.n || (c && tmp.act[c] <= tmp.act[c - 1]);
  if (bad) {
    snprintf(err, errlen, "ease: %s has a bad lambda or item list", path);
    goto done;
  }
  m = xmalloc(sizeof *m);
  *m = tmp;
  tmp.act = NULL;
  tmp.b = NULL;
done:
  free(tmp.act);
  free(tmp.b);
  close(fd);
  return m;
}
