/* split.h — train/test splits of an eval_data set. Each sets is_test[i] for
 * the ratings that go to the test part. Deterministic; thread-safe. */
#ifndef RECD_EVAL_SPLIT_H
#define RECD_EVAL_SPLIT_H

#include <stdint.h>

#include "eval/dataset.h"

/* Per user, shuffled with `seed`: the first round(ratio * n) ratings train
 * (Recommenders' python_stratified_split). Users with < 2 ratings train only. */
void split_random(const eval_data *d, double ratio, uint64_t seed, uint8_t *is_test);
/* Global time cut: the latest `test_share` of all ratings (by time; ties kept
 * together) are test. Returns the cut time (first test timestamp). */
int64_t split_time_global(const eval_data *d, double test_share, uint8_t *is_test);
/* Per user by time: the last round((1 - ratio) * n) ratings of each user are
 * test (at least 1 when n >= 2); with last_k > 0, the last last_k instead. */
void split_time_user(const eval_data *d, double ratio, int last_k, uint8_t *is_test);

#endif
