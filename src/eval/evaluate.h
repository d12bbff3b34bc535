/* evaluate.h — offline evaluation: load a rating data set, split it, train a
 * fresh engine on the training part and score its lists on the test part.
 * Each run uses its own temporary data dir (fsync off) and removes it.
 * Not thread-safe per eval_data; distinct runs may go in parallel. */
#ifndef RECD_EVAL_EVALUATE_H
#define RECD_EVAL_EVALUATE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/config.h"
#include "eval/metrics.h"
#include "util/strmap.h"

typedef struct {
  uint32_t user, item;
  float rating;
  int64_t ts_ms;
} eval_rating;

typedef struct {
  strmap users, items;
  eval_rating *r;
  size_t n, cap;
  char **genres;            /* per item: "Action|Comedy" (xmalloc'ed) or NULL */
  size_t genres_cap;
} eval_data;

void eval_data_init(eval_data *d);
void eval_data_release(eval_data *d);
/* MovieLens ratings.csv (userId,movieId,rating,timestamp) and, optionally,
 * movies.csv (movieId,title,genres) whose genres become item categories. */
int eval_load_movielens(eval_data *d, const char *ratings_csv, const char *movies_csv, char *err, size_t errlen);

/* Per-user random split (as Recommenders' python_stratified_split): each
 * user's ratings are shuffled with `seed` and the first round(ratio * n) go to
 * training; users with fewer than 2 ratings stay wholly in training.
 * is_test[i] is set for test ratings. */
void eval_split_random(const eval_data *d, double ratio, uint64_t seed, uint8_t *is_test);

typedef struct {
  eval_scores mean;         /* averaged over evaluated users */
  size_t users;             /* users evaluated (with >= 1 test item) */
  size_t users_total;
  double coverage;          /* distinct items recommended / items in training */
  double seconds;
} eval_result;

/* Train an engine configured as `base` plus `overrides` ("name=value,...")
 * and evaluate top-k lists (training items excluded). */
int eval_run(const eval_data *d, const uint8_t *is_test, const recd_config *base, const char *overrides, size_t k,
             double like_threshold, eval_result *out, char *err, size_t errlen);

#endif
