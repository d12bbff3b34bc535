/* ials.h — implicit-feedback matrix factorisation (iALS: Hu, Koren & Volinsky
 * 2008), trained by alternating least squares with a few warm-started
 * conjugate-gradient steps per row (Takács, Pilászy & Tikk 2011), float32.
 *
 * The model: users u and items i get vectors x_u, y_i of `factors` floats,
 * chosen to minimise
 *     sum over all (u,i) of c_ui (p_ui - x_u.y_i)^2 + reg (sum |x_u|^2 + sum |y_i|^2)
 * where p_ui = 1 if the user interacted with the item (0 otherwise) and the
 * confidence c_ui = 1 + alpha * r_ui grows with the interaction strength r
 * (1 for cells with no interaction). A user's score for an item is x_u.y_i.
 *
 * Shape follows LIBLINEAR/LIBMF: ials_problem + ials_param -> ials_train()
 * -> ials_model, with ials_check_param() called first, ials_save()/ials_load()
 * and progress through a callback.
 *
 * Real-time use: ials_fold_in() solves a user's vector exactly from their
 * current interactions against the fixed item factors (a Cholesky solve of
 * one factors x factors system), so a user unseen at training time, or an
 * event that just arrived, changes MF scores at once without retraining.
 *
 * Thread rules: ials_train() works on `threads` threads, the caller's and
 * threads - 1 it starts and joins; it may run while other models are in use.
 * A trained or loaded model is immutable: every function taking a
 * `const ials_model *` may be called from any number of threads at once.
 * ials_free() must not race with them (the engine's refcounted swap ensures
 * that). OpenBLAS (cblas_ssyrk) computes the Gram matrices in ials_train()
 * and ials_load() on its own thread pool, sized by OpenBLAS's process-wide
 * setting (OPENBLAS_NUM_THREADS), not by `threads`; the request-path
 * functions never call BLAS. */
#ifndef RECD_MODEL_IALS_H
#define RECD_MODEL_IALS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  int factors;      /* latent dimensions, 1..1024 (multiples of 16 run fastest) */
  float reg;        /* L2 regularisation, > 0 */
  float alpha;      /* confidence slope: c = 1 + alpha * r, >= 0 */
  int iterations;   /* alternating sweeps (users then items), 1..1000 */
  int cg_steps;     /* conjugate-gradient steps per row per sweep, 1..64 */
  int threads;      /* worker threads, 1..256 */
  uint64_t seed;    /* initial factors; same seed + same input = same model */
} ials_param;

/* 64 factors, reg 0.05, alpha 10, 15 iterations, 3 CG steps, 2 threads, seed 42 */
void ials_default_param(ials_param *p);
/* NULL if p is usable, else a static message naming the bad field */
const char *ials_check_param(const ials_param *p);

/* The training matrix, CSR by user: user u's interactions are
 * indices[indptr[u] .. indptr[u+1]) (item ids < nitems, each item at most once
 * per user; order free) with values = raw strength r >= 0 (finite).
 * Not copied: must stay valid during ials_train() only. */
typedef struct {
  uint32_t nusers, nitems;
  const uint64_t *indptr;   /* nusers + 1 entries, indptr[0] = 0, non-decreasing */
  const uint32_t *indices;
  const float *values;
} ials_problem;

typedef struct ials_model ials_model;

/* Called on the training thread after each iteration (1-based): `secs` is
 * the wall time of that iteration's two half-sweeps (Gram matrices
 * included), `loss` the objective above divided by the total confidence of
 * all nusers x nitems cells, evaluated exactly at the point after the
 * iteration's user half-sweep (new users, previous items): the item
 * half-sweep computes it on the way at no extra cost. */
typedef void (*ials_progress_fn)(void *arg, int iter, double secs, double loss);

/* Train a model. Returns NULL with a message in err (errlen may be 0) if the
 * parameters or the problem are invalid. Deterministic: the same problem and
 * seed give bit-identical factors and losses whatever the thread count, on a
 * given machine (the SIMD kernel picked from the CPU changes rounding).
 * Besides the model ((nusers + nitems) x factors floats) training holds an
 * item-major copy of the matrix (12 bytes per interaction) and a row-pointer
 * scratch per thread. Aborts on out-of-memory, like xmalloc. The caller owns
 * the result: ials_free(). */
ials_model *ials_train(const ials_problem *prob, const ials_param *p, ials_progress_fn progress, void *arg,
                       char *err, size_t errlen);

/* Write the model to `path` atomically: `path`.tmp is written, fsynced and
 * renamed over `path`, then the directory is fsynced. 0 or a negative error
 * (-errno, or RECD_EINVAL). Whatever happens, `path` holds either the old
 * file or the whole new one; a failure before the rename removes the .tmp.
 * Concurrent saves to the same path must be serialised by the caller.
 * File layout (little-endian): a 56-byte header (magic "RECDIALS", u32
 * version 1, u32 factors, u32 nusers, u32 nitems, f32 reg, f32 alpha,
 * i32 iterations, i32 cg_steps, i32 threads, u32 0, u64 seed), U (nusers x
 * factors f32), V (nitems x factors f32), then a u64 checksum (fileio_hash)
 * of the header, U and V. */
int ials_save(const ials_model *m, const char *path);
/* Load a model written by ials_save(). NULL with a message in err if the file
 * cannot be read or is not a complete, intact model of this version (bad
 * magic, unknown version, size not matching the header, checksum mismatch). */
ials_model *ials_load(const char *path, char *err, size_t errlen);
void ials_free(ials_model *m);   /* NULL is a no-op */
size_t ials_memory(const ials_model *m); /* bytes held by the model; 0 for NULL */

int ials_factors(const ials_model *m);
uint32_t ials_nusers(const ials_model *m);
uint32_t ials_nitems(const ials_model *m);
/* the parameters the model was trained with (threads as given at training) */
const ials_param *ials_params(const ials_model *m);
/* Rows of U and V, `factors` floats each, valid until ials_free(). u must be
 * < nusers, i < nitems. */
const float *ials_user_vec(const ials_model *m, uint32_t u);
const float *ials_item_vec(const ials_model *m, uint32_t i);

/* Fold-in: the exact least-squares user vector for n interactions
 * (items[j], strength r[j] >= 0) against the fixed item factors:
 *     out = (V'V + V_u'(C_u - I)V_u + reg I)^-1 V_u' C_u 1.
 * Items >= nitems (no factors yet) are skipped; a repeated item counts once
 * with its strengths summed. n = 0 (or only unknown items) gives the zero
 * vector. Costs O(n f^2 + f^3) and allocates O(f^2 + n) scratch: about 25 us
 * for 57 items at 64 factors, 90-200 us at 128 (bench/ials.md). 0, or
 * RECD_EINVAL (a negative or non-finite r) or RECD_ENOMEM; on failure out is
 * zeroed. */
int ials_fold_in(const ials_model *m, const uint32_t *items, const float *r, size_t n, float *out);

/* The k items with the highest uvec.y_i, best first (ties: lower id first),
 * into items[]/scores[] (capacity k). skip(arg, i) != 0 excludes item i; it is
 * only asked about items good enough to enter the current top k, so it may
 * cost a lookup. skip may be NULL. Returns how many were written (< k when
 * fewer items qualify). A scan of all item vectors: O(nitems x factors),
 * about 0.2 ms for 20,000 items at 64 factors. */
size_t ials_topk(const ials_model *m, const float *uvec, size_t k, int (*skip)(void *arg, uint32_t item), void *arg,
                 uint32_t *items, float *scores);

/* ials_topk over the listed items only (ids >= nitems are ignored): for
 * large catalogs, where scoring every item costs more than the request. */
size_t ials_topk_among(const ials_model *m, const float *uvec, const uint32_t *among, size_t n, size_t k,
                       int (*skip)(void *arg, uint32_t item), void *arg, uint32_t *items, float *scores);

/* The k items most similar to `item` by cosine of item factors, best first,
 * the item itself excluded. Returns 0 if item >= nitems or its vector is 0. */
size_t ials_similar(const ials_model *m, uint32_t item, size_t k, uint32_t *items, float *scores);

#endif
