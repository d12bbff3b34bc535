/* itemstats.h — one item's live features and catalog entry.
 *
 * Not thread-safe: the engine guards each item with its item stripe lock.
 * Only the writer thread mutates; readers copy under the lock. */
#ifndef RECD_FEATURE_ITEMSTATS_H
#define RECD_FEATURE_ITEMSTATS_H

#include <stddef.h>
#include <stdint.h>

#define ITEMSTATS_DAYS 32       /* daily buckets kept: windows up to 30 days */
#define ITEM_MAX_CATS 16
#define ITEM_MAX_TAGS 64

typedef struct {
  int64_t popularity_half_life_ms;
} itemstats_params;

typedef struct itemstats {
  /* catalog, in the first cache line with the apply's first look (cats, for
   * the user's affinities); the statistics follow */
  uint8_t in_catalog, available, deleted;
  uint8_t ncats, ntags;
  int64_t created_at;           /* INT64_MIN: unknown */
  uint32_t *cats, *tags;        /* content ids (xmalloc'ed) */
  char *properties;             /* JSON object text or NULL */
  void *memo;                   /* the engine's derived data for this item (a malloc'ed block,
                                   freed with the item; guarded by the item's lock; not saved) */
  /* statistics */
  int64_t first_ts, last_ts;
  int64_t pop_t;
  float pop;                    /* decayed weighted popularity, as of pop_t */
  float weight_total;           /* undecayed sum of event weights */
  int32_t bucket_day[ITEMSTATS_DAYS];
  float bucket[ITEMSTATS_DAYS]; /* weighted events per day (day = ts / 86400000) */
  uint32_t counts[];            /* per event type */
} itemstats;

itemstats *itemstats_new(int ntypes);
void itemstats_free(itemstats *s);
void itemstats_apply(itemstats *s, const itemstats_params *pp, int type, float weight, int64_t ts);
/* weighted events in the `days` days ending with the day of `now`, each day
 * decayed by `half_life_ms` (0 = no decay) */
double itemstats_window(const itemstats *s, int64_t now, int days, int64_t half_life_ms);
double itemstats_popularity(const itemstats *s, int64_t now, int64_t half_life_ms);
/* smoothed ratios: (a + prior*k) / (b + k) */
double itemstats_ratio(uint32_t a, uint32_t b, double prior, double k);
int itemstats_recommendable(const itemstats *s);
size_t itemstats_memory(const itemstats *s, int ntypes);

#endif
