#include "eval/metrics.h"

#include <math.h>
#include <string.h>

void metrics_user(const uint8_t *hits, size_t n, size_t k, size_t nrel, eval_scores *out) {
  memset(out, 0, sizeof *out);
  if (!k || !nrel) return;
  size_t m = n < k ? n : k, h = 0;
  double dcg = 0, ap = 0, idcg = 0;
  for (size_t i = 0; i < m; i++) {
    if (!hits[i]) continue;
    h++;
    dcg += 1.0 / log2((double)i + 2.0);
    ap += (double)h / (double)(i + 1);
    if (h == 1) out->rr = 1.0 / (double)(i + 1);
  }
  size_t ideal = nrel < k ? nrel : k;
  for (size_t i = 0; i < ideal; i++) idcg += 1.0 / log2((double)i + 2.0);
  out->precision = (double)h / (double)k;
  out->recall = (double)h / (double)nrel;
  out->ndcg = dcg / idcg;
  out->map = ap / (double)ideal;
  out->hit = h > 0;
}

void metrics_add(eval_scores *acc, const eval_scores *s) {
  acc->precision += s->precision;
  acc->recall += s->recall;
  acc->ndcg += s->ndcg;
  acc->map += s->map;
  acc->hit += s->hit;
  acc->rr += s->rr;
}

void metrics_scale(eval_scores *acc, double f) {
  acc->precision *= f;
  acc->recall *= f;
  acc->ndcg *= f;
  acc->map *= f;
  acc->hit *= f;
  acc->rr *= f;
}
