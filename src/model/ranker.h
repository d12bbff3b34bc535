/* ranker.h — the learned ranker: gradient-boosted trees (XGBoost, through its
 * C API) that score a request's candidate items from named features
 * ("covis_score", "mf_score", "item_ctr", ...) so the engine can rerank them.
 *
 * Objectives: "rank:ndcg" (LambdaMART: pairwise gradients weighted by the
 * change in nDCG, trained per query group) by default, or "binary:logistic"
 * (pointwise click probability). One query group is one recommendation
 * request: a user's candidate list, rows next to each other.
 *
 * Shape follows LIBLINEAR: ranker_problem + ranker_param -> ranker_train()
 * -> ranker, with ranker_check_param() called first, ranker_save() /
 * ranker_load() and progress through a callback.
 *
 * Scores: for rank:ndcg an unbounded relevance score (only the order within
 * one request means anything); for binary:logistic a probability in [0, 1].
 *
 * Thread rules:
 *  - ranker_train() runs on the calling thread plus `threads` OpenMP workers
 *    inside XGBoost. Several trainings may run at once on different threads
 *    (XGBoost's random engine is per thread, so each stays deterministic).
 *  - A trained or loaded ranker is immutable: ranker_predict(), ranker_save()
 *    and the accessors may be called from any number of threads at once.
 *    XGBoost documents prediction as thread-safe for tree boosters since 1.4;
 *    its C API returns predictions in a buffer that is per calling thread and
 *    per booster, and the one lazy step (the booster's first configuration,
 *    guarded by a double-checked flag) is done here before the ranker is
 *    returned, so concurrent callers only read. No mutex on the request path.
 *  - ranker_predict() scores on the calling thread only (the booster's
 *    nthread is 1 after training/loading): a request thread never wakes an
 *    OpenMP pool, and N request threads use N cores.
 *  - ranker_free() must not race with any of them (the engine's refcounted
 *    swap ensures that). XGBoost drops a booster's per-thread prediction
 *    buffer only on the freeing thread: every other thread that predicted
 *    keeps its last output (n floats) for that booster until it exits.
 * Nothing else is thread-safe. */
#ifndef RECD_MODEL_RANKER_H
#define RECD_MODEL_RANKER_H

#include <stddef.h>
#include <stdint.h>

#define RANKER_MAX_FEATURES 1024
#define RANKER_MAX_NAME 64    /* feature name bytes, not counting the NUL */
#define RANKER_MAX_LABEL 31   /* rank:ndcg gain is 2^label - 1 */

typedef struct {
  const char *objective; /* "rank:ndcg" or "binary:logistic" (a static string
                            or one that outlives the call) */
  int rounds;            /* boosting rounds (trees), 1..10000 */
  int max_depth;         /* tree depth, 1..16 */
  float eta;             /* learning rate, (0, 1] */
  float subsample;       /* row sampling per tree, (0, 1] */
  int threads;           /* XGBoost training threads, 1..256 */
  uint64_t seed;         /* same seed + same input + same threads = same model */
  int early_stopping;    /* with a validation set: stop after this many rounds
                            without improvement and keep the best round's
                            trees; 0 = off; 0..10000 */
} ranker_param;

/* rank:ndcg, 200 rounds, depth 6, eta 0.1, subsample 0.8, 2 threads,
 * seed 42, no early stopping */
void ranker_default_param(ranker_param *p);
/* NULL if p is usable, else a static message naming the bad field */
const char *ranker_check_param(const ranker_param *p);

/* A dense training (or validation) set. Borrowed: read during
 * ranker_train() only.
 *  - x: row-major nrows x nfeatures; NAN means "missing" (XGBoost learns a
 *    default direction per split); infinities are refused.
 *  - label: graded relevance per row, finite; rank:ndcg wants 0..31 (gain
 *    2^label - 1), binary:logistic 0..1.
 *  - group_sizes: ngroups sizes (each >= 1) summing to nrows; group g is the
 *    rows after groups 0..g-1. Required for rank:ndcg; optional (NULL) for
 *    binary:logistic.
 *  - feature_names: nfeatures distinct names of 1..RANKER_MAX_NAME bytes of
 *    [A-Za-z0-9_.:-]. Required for the training set; a validation set may
 *    pass NULL or the same names. */
typedef struct {
  size_t nrows, nfeatures;
  const float *x;
  const float *label;
  const uint32_t *group_sizes;
  size_t ngroups;
  const char *const *feature_names;
  /* optional (NULL: none): a per-row prior score the trees learn to
   * correct (XGBoost's base_margin). A ranker trained with one predicts
   * only the correction: add the same prior to ranker_predict()'s scores. */
  const float *base_margin;
} ranker_problem;

typedef struct ranker ranker;

/* Called on the training thread after each round (1-based). The metric is
 * nDCG@10 (XGBoost's "ndcg@10": gain 2^label - 1, a group without relevant
 * rows counts as 1) when the training set has groups, else AUC (only
 * binary:logistic without groups); both are better when higher.
 * train_metric is on the training set; valid_metric is NAN without a
 * validation set. */
typedef void (*ranker_progress_fn)(void *arg, int round, double train_metric, double valid_metric);

/* Train a ranker. valid may be NULL; when given it must have the same
 * nfeatures and, for a grouped training set, groups; its metric is reported
 * each round and, with early_stopping > 0, training stops once it has not
 * improved (strictly) for early_stopping rounds and the model is cut back to
 * the best round. Returns NULL with a message in err (errlen may be 0) if
 * the parameters or the problem are invalid or XGBoost fails (its message is
 * included). The caller owns the result: ranker_free(). */
ranker *ranker_train(const ranker_problem *prob, const ranker_problem *valid, const ranker_param *p,
                     ranker_progress_fn progress, void *arg, char *err, size_t errlen);

/* Write the ranker to `path` atomically: `path`.tmp is written, fsynced and
 * renamed over `path`, then the directory is fsynced. 0 or a negative error
 * (-errno, or RECD_EINVAL). On failure `path` is untouched.
 * File layout (little-endian):
 *   magic "RECDRANK", u32 version (1), u32 objective (0 rank:ndcg,
 *   1 binary:logistic), u32 model format (1 = UBJSON), u32 nfeatures,
 *   u32 rounds kept (after early stopping), then the parameters: i32 rounds,
 *   i32 max_depth, f32 eta, f32 subsample, i32 threads, i32 early_stopping,
 *   u32 zero, u64 seed; then u64 model bytes (72 bytes so far),
 *   then per feature u16 length + name bytes, then the XGBoost model
 *   (XGBoosterSaveModelToBuffer, "ubj"), then a u64 checksum of everything
 *   before it. */
int ranker_save(const ranker *r, const char *path);
/* Load a ranker written by ranker_save(). Everything is checked before the
 * model bytes reach XGBoost (magic, version, header fields, exact size,
 * feature names, checksum); then XGBoost must accept them and agree on the
 * feature count, the round count and the objective. NULL with a message
 * naming the problem in err otherwise. */
ranker *ranker_load(const char *path, char *err, size_t errlen);
void ranker_free(ranker *r); /* NULL is a no-op */

size_t ranker_nfeatures(const ranker *r);
/* valid until ranker_free(); NULL if i >= nfeatures */
const char *ranker_feature_name(const ranker *r, size_t i);
/* index of a feature by name, or -1 */
int ranker_feature_index(const ranker *r, const char *name);
/* trees kept (after early stopping, the best round's count) */
int ranker_rounds(const ranker *r);
/* the parameters the ranker was trained with; objective is a static string */
const ranker_param *ranker_params(const ranker *r);

/* Scores for n rows (row-major n x nfeatures, columns in the ranker's feature
 * order, NAN = missing) into out[n]. Thread-safe (see the top). n = 0 is a
 * no-op. 0, or RECD_EINVAL (NULL arguments, an infinite value) or
 * RECD_EIO if XGBoost itself fails (its message is logged). */
int ranker_predict(const ranker *r, const float *x, size_t n, float *out);

/* internal, for tests that forge files: the checksum stored after the first
 * n bytes of a ranker file */
uint64_t ranker__checksum(const void *data, size_t n);

#endif
