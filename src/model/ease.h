/* ease.h — EASE, the "embarrassingly shallow autoencoder" (Steck, WWW 2019):
 * a dense item x item weight matrix B learned in closed form from the
 * user x item interaction matrix X,
 *
 *   G = X'X + lambda I,   P = G^-1,   B[i][j] = -P[i][j] / P[j][j],   B[j][j] = 0,
 *
 * and a user's score for item j is sum over the user's items i of x_ui B[i][j].
 *
 * B is dense float32 over the items that have interactions (20 000 such items
 * = 1.6 GB, 30 000 = 3.6 GB; items nobody touched have zero rows and columns
 * and are not stored), so this is a model for catalogs of at most a few tens
 * of thousands of active items: training refuses more than `max_items` of them
 * or an estimated peak above `max_bytes`. Training costs O(sum over users of
 * n_u^2) for the Gram matrix plus O(active^3) for the Cholesky factorisation
 * and inverse (OpenBLAS/LAPACKE).
 *
 * LIBLINEAR shape: fill an ease_param with ease_default_param(), change what
 * you need, ease_check_param() (NULL or a message), then ease_train().
 *
 * Threads: training uses `threads` worker threads for the Gram matrix and sets
 * OpenBLAS's thread count — a process-wide setting — for the factorisation.
 * A trained or loaded model is immutable: every function taking a const
 * ease_model * may be called from any number of threads at once. Nothing
 * else is thread-safe. */
#ifndef RECD_MODEL_EASE_H
#define RECD_MODEL_EASE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  float lambda;        /* L2 weight added to the Gram diagonal, > 0; default 500 */
  int threads;         /* 0 = one per online CPU; default 0 */
  uint32_t max_items;  /* refuse more items with interactions; default 30000,
                          at most 65536 */
  uint64_t max_bytes;  /* refuse when the estimated training peak is larger,
                          0 = no limit; default 4 GiB */
} ease_param;

void ease_default_param(ease_param *p);
/* NULL if p is usable, else a static message naming the bad field */
const char *ease_check_param(const ease_param *p);

/* The training matrix, CSR by user: user u's items are
 * indices[indptr[u] .. indptr[u+1]) with weights values[same range], or 1 for
 * every entry when values is NULL (binary X). indptr has nusers + 1 entries and
 * starts at 0. Items within a user may come in any order; a repeated item
 * adds its weights up (binary: counts once). Every index must be < nitems;
 * items nobody touched get zero rows and columns in B. Borrowed: read only
 * during ease_train(). */
typedef struct {
  uint32_t nusers, nitems;
  const uint64_t *indptr;
  const uint32_t *indices;
  const float *values;
} ease_problem;

typedef struct ease_model ease_model;

/* Train a model (caller frees with ease_free). NULL on failure, with a
 * message in err: bad parameters or problem, more than max_items items with
 * interactions, over the memory budget, out of memory, or a failed
 * factorisation. Items without interactions cost nothing but their id. */
ease_model *ease_train(const ease_problem *prob, const ease_param *p, char *err, size_t errlen);

/* File: header (magic "RECDEASE", u32 version, u32 nitems, u32 active
 * items na, f32 lambda, u64 payload bytes), the na active item ids
 * (increasing u32), B as na x na row-major float32, then a u64 hash of
 * everything before it; all in host byte order (little-endian on the hosts
 * we build for). Written to path.tmp, fsynced, renamed over path (and the
 * directory fsynced), so a crash leaves the old file or the new one.
 * Returns 0 or a negative code (-errno for system errors). */
int ease_save(const ease_model *m, const char *path);
/* NULL with a message in err when the file is missing, too short or too long,
 * of another magic or version, has an impossible header, or fails its
 * checksum. Caller frees with ease_free. */
ease_model *ease_load(const char *path, char *err, size_t errlen);
void ease_free(ease_model *m); /* NULL is a no-op */

uint32_t ease_nitems(const ease_model *m);   /* the catalog size trained for */
uint32_t ease_nactive(const ease_model *m);  /* items with interactions: B is nactive^2 */
float ease_lambda(const ease_model *m);
/* B[i][j], the weight of item i toward item j (0 when either has no
 * interactions or is >= nitems) */
float ease_weight(const ease_model *m, uint32_t i, uint32_t j);
size_t ease_memory(const ease_model *m);     /* bytes held by the model */

/* Scores of all items for a user who has items[0..n) with weights vals
 * (NULL = all 1). Items >= nitems are ignored; repeats add up. out has
 * nitems floats. */
void ease_score(const ease_model *m, const uint32_t *items, const float *vals, size_t n, float *out);

/* The k best items for that user, best first (ties: lower item id first),
 * leaving out every item for which skip(arg, item) returns nonzero (skip may
 * be NULL; it is called during the call only). The user's own items are NOT
 * left out unless skip says so. Writes up to k items to top and, if scores is
 * not NULL, their scores (both have room for k); returns the count, which is
 * less than k only when fewer items remain. Allocates nitems floats of scratch
 * per call. */
size_t ease_topk(const ease_model *m, const uint32_t *items, const float *vals, size_t n, size_t k,
                 int (*skip)(void *arg, uint32_t item), void *arg, uint32_t *top, float *scores);

#endif
