/* rankdata.h — point-in-time training data for the learned ranker (see
 * rankdata.c). Engine-internal: used by models.c and the unit tests. */
#ifndef RECD_ENGINE_RANKDATA_H
#define RECD_ENGINE_RANKDATA_H

#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

typedef struct {
  uint64_t upto;      /* events with seq <= upto are replayed */
  uint64_t cut;       /* requests are sampled from events with seq > cut */
  uint64_t stride;    /* one sampled request every `stride` events after the cut (>= 1) */
  size_t depth;       /* candidates per request, as ranker_depth */
  int64_t horizon_ms; /* labels: the user's events within this time */
  const char *base;   /* retrieval model trained at the cut: "ials", "ease", "none" or NULL */
} rank_data_opts;

typedef struct {
  size_t nfeat, nrows, ngroups, cap_rows, cap_groups;
  float *x;           /* nrows x nfeat, engine__rank_feature_names() order */
  float *label;       /* per row: 0 or the best event weight within the horizon */
  uint32_t *iid;      /* per row: the candidate */
  size_t *gstart;     /* per group: first row */
  uint32_t *gsize;    /* per group: rows */
  uint64_t *gseq;     /* per group: the sampled event (features are as of just before it) */
  int64_t *gts;
  uint32_t *guid;
  size_t sampled;     /* groups sampled, with or without a positive label */
  double replay_seconds, base_seconds;
} rank_data;

/* Replay the live engine's log into a replay engine and build the groups
 * that have a positive label, in log order. 0, or an error with a message. */
int engine__rank_data(recd_engine *live, const rank_data_opts *o, rank_data *d, char *err, size_t errlen);
void engine__rank_data_release(rank_data *d);
/* nDCG@k (gain 2^label - 1) of one group ordered by score, higher first */
double engine__rank_ndcg(const float *label, const float *score, size_t n, size_t k);

#endif
