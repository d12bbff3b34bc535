/* metrics.h — offline ranking metrics for one user's list, binary relevance.
 * Definitions follow Microsoft Recommenders' python_evaluation (see QUALITY.md):
 *   precision@k = hits in the top k / k
 *   recall@k    = hits in the top k / |relevant|
 *   ndcg@k      = DCG / IDCG, DCG = sum over hits at rank r (1-based) of 1/log2(r+1),
 *                 IDCG = sum for r = 1..min(k, |relevant|) of 1/log2(r+1)
 *   map@k       = (sum over hits at rank r <= k of hits-so-far / r) / min(k, |relevant|)
 *   hit@k       = 1 if any hit in the top k
 *   rr@k        = 1 / rank of the first hit in the top k, else 0
 * Pure functions; thread-safe. */
#ifndef RECD_EVAL_METRICS_H
#define RECD_EVAL_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  double precision, recall, ndcg, map, hit, rr;
} eval_scores;

/* `hits[i]` is 1 when the item at rank i+1 is relevant; n is the list length
 * (only the first k count); nrel the number of relevant items (> 0). */
void metrics_user(const uint8_t *hits, size_t n, size_t k, size_t nrel, eval_scores *out);
void metrics_add(eval_scores *acc, const eval_scores *s);
void metrics_scale(eval_scores *acc, double f);

#endif
