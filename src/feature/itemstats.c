#include "feature/itemstats.h"

#include <stdlib.h>
#include <string.h>

#include "util/decay.h"
#include "util/mem.h"

#define DAY_MS 86400000LL

itemstats *itemstats_new(int ntypes) {
  itemstats *s = xcalloc(1, sizeof *s + (size_t)ntypes * sizeof(uint32_t));
  s->first_ts = INT64_MAX;
  s->last_ts = INT64_MIN;
  s->created_at = INT64_MIN;
  s->available = 1;
  for (int i = 0; i < ITEMSTATS_DAYS; i++) s->bucket_day[i] = INT32_MIN;
  return s;
}

void itemstats_free(itemstats *s) {
  if (!s) return;
  free(s->cats);
  free(s->tags);
  free(s->properties);
  free(s->memo);
  free(s);
}

static int32_t day_of(int64_t ts) { return (int32_t)(ts >= 0 ? ts / DAY_MS : (ts - DAY_MS + 1) / DAY_MS); }

void itemstats_apply(itemstats *s, const itemstats_params *pp, int type, float weight, int64_t ts) {
  s->counts[type]++;
  if (ts < s->first_ts) s->first_ts = ts;
  if (ts > s->last_ts) s->last_ts = ts;
  s->weight_total += weight;
  decay_add(&s->pop, &s->pop_t, weight, ts, pp->popularity_half_life_ms);
  int32_t d = day_of(ts);
  int slot = (int)(((d % ITEMSTATS_DAYS) + ITEMSTATS_DAYS) % ITEMSTATS_DAYS);
  if (s->bucket_day[slot] != d) {
    if (s->bucket_day[slot] > d) return; /* older than the ring holds */
    s->bucket_day[slot] = d;
    s->bucket[slot] = 0;
  }
  s->bucket[slot] += weight;
}

double itemstats_window(const itemstats *s, int64_t now, int days, int64_t half_life_ms) {
  int32_t today = day_of(now);
  double sum = 0;
  for (int i = 0; i < ITEMSTATS_DAYS; i++) {
    int32_t d = s->bucket_day[i];
    if (d == INT32_MIN || d > today || d <= today - days) continue;
    double w = s->bucket[i];
    if (half_life_ms > 0) w *= decay_factor((int64_t)(today - d) * DAY_MS, half_life_ms);
    sum += w;
  }
  return sum;
}

double itemstats_popularity(const itemstats *s, int64_t now, int64_t half_life_ms) {
  return decay_read(s->pop, s->pop_t, now, half_life_ms);
}

double itemstats_ratio(uint32_t a, uint32_t b, double prior, double k) {
  return ((double)a + prior * k) / ((double)b + k);
}

int itemstats_recommendable(const itemstats *s) { return s->available && !s->deleted; }

size_t itemstats_memory(const itemstats *s, int ntypes) {
  return sizeof *s + (size_t)ntypes * 4 + (size_t)(s->ncats + s->ntags) * 4 +
         (s->properties ? strlen(s->properties) + 1 : 0);
}
