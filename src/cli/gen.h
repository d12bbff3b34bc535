/* gen.h — the synthetic shop data generator behind `recd gen` and
 * `recd serve --demo`.
 *
 * It writes two files into an output directory:
 *   items.jsonl  one catalog object per line, in the HTTP API's item schema:
 *                {"item_id":"item_123","categories":["books"],"tags":["t12","t40"],
 *                 "available":true,"created_at":"2026-01-02T03:04:05.000Z",
 *                 "properties":{"price":12.5,"title":"Silent Paperback Novel"}}
 *   events.csv   header `user_id,item_id,event_type,timestamp,value,session_id`, then
 *                one event per line in non-decreasing time order; timestamp is unix
 *                seconds with 3 decimals, value is the item price for add_to_cart and
 *                purchase and empty otherwise.
 *
 * The model behind the data (see the design comment in gen.c): category popularity
 * and item popularity within a category are power laws; each user has a sparse
 * mixture of 1–3 favourite categories; users arrive in sessions whose start times
 * follow a daily and weekly rhythm over `days` days ending at `end_ms`; inside a
 * session the user browses (often to items sharing a tag with the last one) and
 * moves down the funnel view → click → add_to_cart → purchase with decreasing
 * probability. Some items are unavailable (no events after they went out of stock),
 * some are new (no events before they were created).
 *
 * Output is a pure function of the parameters: the same gen_params give the same
 * bytes. Memory is O(users + items); events are streamed, never held.
 *
 * Thread rules: gen_write keeps all its state on the heap of the call; calls on
 * different directories may run concurrently. */
#ifndef RECD_CLI_GEN_H
#define RECD_CLI_GEN_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint64_t seed;
  long users, items, events;
  int categories;             /* 1..GEN_MAX_CATEGORIES, at most `items` */
  int days;                   /* length of the event window */
  int64_t end_ms;             /* window end, unix ms; 0 = now (not reproducible) */
  double unavailable_share;   /* share of items with "available":false, [0,1) */
} gen_params;

#define GEN_MAX_CATEGORIES 200

/* Defaults: seed 42, 10,000 users, 2,000 items, 200,000 events, 12 categories,
 * 28 days ending now, 5% unavailable. */
void gen_default_params(gen_params *p);

/* NULL if the parameters are usable, else a static message naming the field. */
const char *gen_check_params(const gen_params *p);

/* Write OUTDIR/items.jsonl and OUTDIR/events.csv, creating OUTDIR (and its
 * parents) if needed. Each file is written to a temporary name and renamed into
 * place when complete, so a failed run never leaves a truncated file under the
 * final name. `progress` (may be NULL) is called from this thread with a fraction
 * in [0,1] a few hundred times per run. Returns 0, RECD_EINVAL for bad parameters
 * or a negative errno; on failure `err` (errlen bytes) gets a message. */
int gen_write(const gen_params *p, const char *outdir, void (*progress)(void *arg, double frac),
              void *arg, char *err, size_t errlen);

#endif
