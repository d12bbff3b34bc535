#include "http/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

static const int statuses[METRICS_NSTATUS] = {200, 400, 404, 405, 413, 415, 500, 503, 202, 409};
static const double buckets[METRICS_NBUCKETS] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                 0.025,  0.05,    0.1,    0.25,  0.5,    1.0,   2.5};

void metrics_init(metrics *m) { memset(m, 0, sizeof *m); }

/* slots 0..7 and 8..9 are named statuses; "other" shares the last counter row */
static int status_slot(int status) {
  for (int i = 0; i < METRICS_NSTATUS; i++)
    if (statuses[i] == status) return i;
  return METRICS_NSTATUS; /* other */
}

void metrics_observe(metrics *m, route_id r, int status, int64_t ns) {
  if (r >= R_COUNT) r = R_NONE;
  atomic_fetch_sub_explicit(&m->inflight, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&m->count[r][status_slot(status)], 1, memory_order_relaxed);
  double s = ns / 1e9;
  int b = 0;
  while (b < METRICS_NBUCKETS && s > buckets[b]) b++;
  atomic_fetch_add_explicit(&m->hist[r][b], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&m->sum_us[r], (uint64_t)(ns / 1000), memory_order_relaxed);
  atomic_fetch_add_explicit(&m->total[r], 1, memory_order_relaxed);
}

typedef struct {
  char *buf;
  size_t len, cap;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
static void sb_printf(sbuf *b, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < b->cap - b->len) {
      b->len += (size_t)n;
      return;
    }
    b->cap = b->cap * 2 + (size_t)(n > 0 ? n : 0) + 256;
    b->buf = xrealloc(b->buf, b->cap);
  }
}

/* a histogram's bucket, sum and count lines; `label` is "" or `name="value"` */
static void hist_lines(sbuf *b, const char *name, const char *label, const recd_hist *h) {
  const char *sep = *label ? "," : "";
  uint64_t cum = 0;
  for (int k = 0; k < ENGINE_SYNC_NBUCKETS; k++) {
    cum += h->b[k];
    sb_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, label, sep, engine_sync_buckets[k], (unsigned long long)cum);
  }
  cum += h->b[ENGINE_SYNC_NBUCKETS];
  sb_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, label, sep, (unsigned long long)cum);
  const char *open = *label ? "{" : "", *close = *label ? "}" : "";
  sb_printf(b, "%s_sum%s%s%s %.6f\n%s_count%s%s%s %llu\n", name, open, label, close, h->sum_s, name, open, label, close,
            (unsigned long long)h->count);
}

char *metrics_render(metrics *m, recd_engine *e, double uptime_s, size_t *len) {
  sbuf b = {.buf = xmalloc(16384), .cap = 16384};
  sb_printf(&b, "# HELP recd_http_requests_total HTTP requests by route and status.\n"
                "# TYPE recd_http_requests_total counter\n");
  for (int r = 0; r < R_COUNT; r++)
    for (int s = 0; s <= METRICS_NSTATUS; s++) {
      uint64_t v = atomic_load(&m->count[r][s]);
      if (!v) continue;
      if (s < METRICS_NSTATUS) sb_printf(&b, "recd_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n", route_name(r), statuses[s], (unsigned long long)v);
      else sb_printf(&b, "recd_http_requests_total{route=\"%s\",status=\"other\"} %llu\n", route_name(r), (unsigned long long)v);
    }
  sb_printf(&b, "# HELP recd_http_request_duration_seconds HTTP request latency by route.\n"
                "# TYPE recd_http_request_duration_seconds histogram\n");
  for (int r = 0; r < R_COUNT; r++) {
    uint64_t total = atomic_load(&m->total[r]);
    if (!total) continue;
    uint64_t cum = 0;
    for (int k = 0; k < METRICS_NBUCKETS; k++) {
      cum += atomic_load(&m->hist[r][k]);
      sb_printf(&b, "recd_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n", route_name(r), buckets[k], (unsigned long long)cum);
    }
    cum += atomic_load(&m->hist[r][METRICS_NBUCKETS]);
    sb_printf(&b, "recd_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n", route_name(r), (unsigned long long)cum);
    sb_printf(&b, "recd_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", route_name(r), atomic_load(&m->sum_us[r]) / 1e6);
    sb_printf(&b, "recd_http_request_duration_seconds_count{route=\"%s\"} %llu\n", route_name(r), (unsigned long long)cum);
  }
  sb_printf(&b, "# HELP recd_http_requests_in_flight Requests being processed.\n# TYPE recd_http_requests_in_flight gauge\n"
                "recd_http_requests_in_flight %lld\n", (long long)atomic_load(&m->inflight));
  sb_printf(&b, "# HELP recd_http_connections Open client connections.\n# TYPE recd_http_connections gauge\n"
                "recd_http_connections %lld\n"
                "# HELP recd_http_connections_total Client connections accepted since start.\n"
                "# TYPE recd_http_connections_total counter\n"
                "recd_http_connections_total %llu\n",
            (long long)atomic_load(&m->connections), (unsigned long long)atomic_load(&m->connections_total));

  recd_stats st;
  engine_stats(e, &st);
  const recd_config *cfg = engine_config(e);
  sb_printf(&b, "# HELP recd_events_total Events accepted (and replayed at start) by type.\n# TYPE recd_events_total counter\n");
  for (int i = 0; i < cfg->ntypes; i++)
    sb_printf(&b, "recd_events_total{type=\"%s\"} %llu\n", cfg->types[i].name, (unsigned long long)st.events_by_type[i]);
  sb_printf(&b, "# HELP recd_log_sync_duration_seconds Time to commit and sync one group of writes.\n"
                "# TYPE recd_log_sync_duration_seconds histogram\n");
  hist_lines(&b, "recd_log_sync_duration_seconds", "", &st.sync);
  sb_printf(&b, "# HELP recd_write_stage_seconds Per write: waiting in the queue for the writer (stage=\"queue\"), "
                "from its group's commit to its answer, the apply not overlapped by the commit (stage=\"apply\"), "
                "and from the answer to its HTTP worker taking it up (stage=\"answer\").\n"
                "# TYPE recd_write_stage_seconds histogram\n");
  hist_lines(&b, "recd_write_stage_seconds", "stage=\"queue\"", &st.write_queue);
  hist_lines(&b, "recd_write_stage_seconds", "stage=\"apply\"", &st.write_apply);
  recd_hist answer;
  engine_hist_read(&m->answer, &answer);
  hist_lines(&b, "recd_write_stage_seconds", "stage=\"answer\"", &answer);
  sb_printf(&b, "# HELP recd_queue_depth Write operations waiting for the writer thread.\n# TYPE recd_queue_depth gauge\nrecd_queue_depth %llu\n",
            (unsigned long long)st.queue_depth);
  sb_printf(&b, "# HELP recd_users Known users.\n# TYPE recd_users gauge\nrecd_users %llu\n", (unsigned long long)st.users);
  sb_printf(&b, "# HELP recd_items Known items.\n# TYPE recd_items gauge\nrecd_items %llu\n", (unsigned long long)st.items);
  sb_printf(&b, "# HELP recd_catalog_items Items in the catalog (not deleted).\n# TYPE recd_catalog_items gauge\nrecd_catalog_items %llu\n",
            (unsigned long long)st.catalog_items);
  sb_printf(&b, "# HELP recd_store_commits_total Group commits.\n# TYPE recd_store_commits_total counter\nrecd_store_commits_total %llu\n",
            (unsigned long long)st.commits);
  sb_printf(&b, "# HELP recd_store_commit_waits_total Group commits that waited for more writes (commit_delay_us).\n# TYPE recd_store_commit_waits_total counter\nrecd_store_commit_waits_total %llu\n",
            (unsigned long long)st.commit_waits);
  sb_printf(&b, "# HELP recd_store_failed 1 after a store I/O failure (writes refused).\n# TYPE recd_store_failed gauge\nrecd_store_failed %llu\n",
            (unsigned long long)st.fatal);
  sb_printf(&b, "# HELP recd_snapshots_total Background snapshots of the live state finished since start, by result.\n"
                "# TYPE recd_snapshots_total counter\nrecd_snapshots_total{result=\"ok\"} %llu\n"
                "recd_snapshots_total{result=\"failed\"} %llu\n",
            (unsigned long long)st.snapshots_ok, (unsigned long long)st.snapshots_failed);
  sb_printf(&b, "# HELP recd_snapshot_last_duration_seconds Wall time of the last finished background snapshot (0 before the first).\n"
                "# TYPE recd_snapshot_last_duration_seconds gauge\nrecd_snapshot_last_duration_seconds %.3f\n",
            st.snapshot_last_s);
  sb_printf(&b, "# HELP recd_snapshot_running 1 while a background snapshot is being written.\n"
                "# TYPE recd_snapshot_running gauge\nrecd_snapshot_running %d\n",
            st.snapshot_running);
  sb_printf(&b, "# HELP recd_snapshot_lag_events Durable events after the newest snapshot: what a restart after a crash now would replay.\n"
                "# TYPE recd_snapshot_lag_events gauge\nrecd_snapshot_lag_events %llu\n",
            (unsigned long long)(st.last_seq > st.snapshot_seq ? st.last_seq - st.snapshot_seq : 0));
  sb_printf(&b, "# HELP recd_snapshot_lag_seconds Time the events after the newest snapshot took to apply: the estimate of a crash's replay that snapshot_max_replay bounds.\n"
                "# TYPE recd_snapshot_lag_seconds gauge\nrecd_snapshot_lag_seconds %.3f\n",
            st.snapshot_lag_s);
  sb_printf(&b, "# HELP recd_writes_held_seconds_total Time writes waited for a background snapshot, so that a crash's replay stays under snapshot_max_replay.\n"
                "# TYPE recd_writes_held_seconds_total counter\nrecd_writes_held_seconds_total %.3f\n",
            st.writes_held_s);
  recd_memory mem;
  engine_memory_latest(e, METRICS_MEMORY_MAX_AGE_MS, &mem);
  if (mem.measured_ms) {
    sb_printf(&b, "# HELP recd_memory_bytes Resident memory by part, from a walk of the live state at most %d s old "
                  "(recd_memory_measured_timestamp_seconds); the parts add up to about the resident set size then.\n"
                  "# TYPE recd_memory_bytes gauge\n",
              METRICS_MEMORY_MAX_AGE_MS / 1000);
    for (int k = 0; k < RECD_MEM_NPARTS; k++)
      sb_printf(&b, "recd_memory_bytes{part=\"%s\"} %llu\n", recd_memory_part_names[k], (unsigned long long)mem.bytes[k]);
    sb_printf(&b, "# HELP recd_memory_measured_timestamp_seconds When the walk behind recd_memory_bytes ended (Unix time).\n"
                  "# TYPE recd_memory_measured_timestamp_seconds gauge\nrecd_memory_measured_timestamp_seconds %.3f\n"
                  "# HELP recd_memory_walk_seconds How long that walk took.\n"
                  "# TYPE recd_memory_walk_seconds gauge\nrecd_memory_walk_seconds %.3f\n"
                  "# HELP recd_memory_resident_bytes The resident set size when that walk ended: what the parts add up to.\n"
                  "# TYPE recd_memory_resident_bytes gauge\nrecd_memory_resident_bytes %llu\n",
              mem.measured_ms / 1000.0, mem.walk_s, (unsigned long long)mem.rss);
  }
  sb_printf(&b, "# HELP process_resident_memory_bytes Resident memory size in bytes (now).\n"
                "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %llu\n",
            (unsigned long long)mem_rss_bytes());
  sb_printf(&b, "# HELP recd_uptime_seconds Seconds since start.\n# TYPE recd_uptime_seconds gauge\nrecd_uptime_seconds %.3f\n", uptime_s);
  *len = b.len;
  return b.buf;
}
