/* evaluate.h — offline evaluation of one engine configuration on a split:
 *  - eval_run: train a fresh engine on the training ratings (in time order,
 *    through the real ingest path) and score every test user's top-k list
 *    (training items excluded) against their test items;
 *  - eval_replay: the streaming (prequential) protocol: train on the training
 *    part, then replay the test ratings in time order; before each positive
 *    rating, ask for the user's top-k and record whether and where the item is,
 *    then ingest the rating (or, frozen, do not: the state stays as trained).
 * Each run uses its own temporary data dir (fsync off) and removes it.
 * Thread-safe for distinct runs over the same (read-only) eval_data. */
#ifndef RECD_EVAL_EVALUATE_H
#define RECD_EVAL_EVALUATE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/config.h"
#include "eval/dataset.h"
#include "eval/metrics.h"
#include "eval/split.h"

typedef struct {
  size_t k;                 /* main cut-off */
  size_t max_k;             /* curves for cut-offs 1..max_k (>= k) */
  double like_threshold;    /* ratings >= this are 'like' events and replay positives */
} eval_opts;

typedef struct {
  eval_scores mean;         /* at k, averaged over evaluated users */
  eval_scores *curve;       /* curve[c] for c = 1..max_k (xmalloc'ed) */
  size_t max_k;
  size_t users;             /* users evaluated (with >= 1 test item) */
  size_t users_total;
  double coverage;          /* distinct items recommended / items */
  double seconds;
} eval_result;

typedef struct {
  double hr, ndcg, mrr;     /* at k, averaged over replayed positives */
  double *hr_curve;         /* hr_curve[c], c = 1..max_k (xmalloc'ed) */
  size_t max_k;
  size_t positives, events, users;
  double seconds;
} eval_replay_result;

/* apply "name=value,name=value" engine options to a copy of base */
int eval_config(const recd_config *base, const char *overrides, recd_config *out, char *err, size_t errlen);

int eval_run(const eval_data *d, const uint8_t *is_test, const recd_config *cfg, const eval_opts *o,
             eval_result *out, char *err, size_t errlen);
int eval_replay(const eval_data *d, const uint8_t *is_test, const recd_config *cfg, const eval_opts *o, int frozen,
                eval_replay_result *out, char *err, size_t errlen);
void eval_result_release(eval_result *r);
void eval_replay_release(eval_replay_result *r);

#endif
