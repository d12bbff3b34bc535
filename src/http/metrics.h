/* metrics.h — HTTP request counters and latency histograms by route and
 * status, rendered with the engine's counters in Prometheus text format.
 * Thread-safe (relaxed atomics); one metrics object per server. */
#ifndef RECD_HTTP_METRICS_H
#define RECD_HTTP_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "engine/engine.h"
#include "http/route.h"

#define METRICS_NSTATUS 10
#define METRICS_NBUCKETS 14
/* recd_memory_bytes comes from a walk of the live state at most this old
 * (a scrape that finds it older starts a new one in the background) */
#define METRICS_MEMORY_MAX_AGE_MS 30000

typedef struct {
  _Atomic uint64_t count[R_COUNT][METRICS_NSTATUS + 1]; /* + other */
  _Atomic uint64_t hist[R_COUNT][METRICS_NBUCKETS + 1];
  _Atomic uint64_t sum_us[R_COUNT];
  _Atomic uint64_t total[R_COUNT];
  _Atomic int64_t inflight;
  _Atomic int64_t connections;    /* open client connections */
  _Atomic uint64_t connections_total; /* accepted since start */
  /* per engine write: from the engine's answer to its worker taking it up
   * (recd_write_stage_seconds{stage="answer"}) */
  engine_hist answer;
} metrics;

void metrics_init(metrics *m);
void metrics_observe(metrics *m, route_id r, int status, int64_t ns);
/* Prometheus text; caller frees */
char *metrics_render(metrics *m, recd_engine *e, double uptime_s, size_t *len);

#endif
