/* covis.h — item co-visitation: for each item a bounded list of the items
 * that the same users touched close in time, with decayed weights.
 *
 * Each list keeps weights relative to its own base time t0 (a weight w added
 * at time ts is stored as w * 2^((ts - t0) / half_life)); the list is rebased
 * when that exponent grows large, so an add costs O(1) amortised plus a scan
 * for the slot. A full list evicts its weakest entry Space-Saving style (the
 * newcomer inherits the evicted weight, remembered as its error), so heavy
 * pairs are never lost; readers use w - err, the guaranteed part.
 *
 * Not thread-safe: the engine guards each list with the item's stripe lock. */
#ifndef RECD_MODEL_COVIS_H
#define RECD_MODEL_COVIS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  int max_neighbors;
  int64_t half_life_ms;
} covis_params;

typedef struct {
  uint32_t iid;
  float w;     /* stored weight (an over-estimate after an eviction) */
  float err;   /* weight inherited at eviction: w - err is a lower bound */
} covis_ent;

typedef struct covis_list {
  int64_t t0;
  float norm;         /* sum of all weights added (same scale as w) */
  uint16_t n, cap;
  covis_ent *e;
} covis_list;

covis_list *covis_new(int64_t t0);
void covis_free(covis_list *l);
void covis_add(covis_list *l, const covis_params *p, uint32_t nb, double w, int64_t ts);
/* decay multiplier turning stored weights into weights as of `now` */
double covis_scale(const covis_list *l, int64_t now, int64_t half_life_ms);
size_t covis_memory(const covis_list *l);

#endif
