/* config.h — the engine's configuration: one table of options drives command
 * line flags (--max-batch), environment variables (RECD_MAX_BATCH), the config
 * file ("max_batch = 10000"), --help text and --print-config.
 * Precedence: flags > environment > file > built-in default.
 * Not thread-safe; a config is read-only once the engine is open. */
#ifndef RECD_ENGINE_CONFIG_H
#define RECD_ENGINE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define RECD_MAX_TYPES 32
#define RECD_MAX_ID_LEN 256

typedef struct {
  char name[32];
  float weight;
} recd_event_type;

typedef struct recd_config {
  char listen[128];
  char data[512];
  char config_file[512];
  int threads;
  int max_batch;
  int64_t max_body;
  char fsync[16];          /* full | normal | off */
  int commit_delay_us;     /* group commit's delay (writer.c: commit_delay_wait) */
  char log_level[16];
  /* event types: the 5 built-in ones first, then custom ones */
  char event_weights[512]; /* "view:1,click:2,..." raw option text */
  char event_types[512];   /* custom "share:2.5,..." raw option text */
  recd_event_type types[RECD_MAX_TYPES];
  int ntypes;
  /* live features */
  int recent_items;
  int64_t popularity_half_life_ms;
  int64_t affinity_half_life_ms;
  int64_t engagement_half_life_ms;
  int64_t recency_half_life_ms;
  int64_t trending_window_ms;
  int64_t trending_refresh_ms;
  int64_t new_arrival_window_ms;
  /* co-visitation */
  int covis_max_neighbors;
  int covis_window;
  int64_t covis_max_gap_ms;
  int64_t covis_half_life_ms;
  /* rules */
  int exclude_seen;
  int exclude_purchased;
  double diversity;        /* max share of one category in a list */
  /* blend weights */
  double w_covis, w_content, w_category, w_trending, w_new;
  /* learned models */
  char model[16];          /* none | ials | ease | ranker: what training produces */
  char ranker_base[16];    /* ials | ease | none: the retrieval model a ranker version carries */
  int ranker_depth;        /* candidates the ranker reorders per request (0 = ranker off) */
  int ranker_rounds, ranker_tree_depth;
  double ranker_eta;
  double ranker_prior;     /* the blend's order as the trees' starting score: prior = -ranker_prior * log2(1 + blend_rank) */
  int64_t ranker_horizon_ms; /* labels: the user's events within this time after the request */
  double ranker_window;    /* share of the log (newest) that training requests are sampled from */
  size_t ranker_max_groups;  /* training requests sampled at most */
  int ials_factors, ials_iterations;
  double ials_reg, ials_alpha, ease_lambda;
  size_t mf_scan_items;    /* catalogs larger than this: MF scores only this many most popular items */
  double w_mf;             /* blend weight of the production model's scores */
  int64_t train_every;     /* events between automatic trainings; 0 = only on request */
  double promote_margin;   /* a candidate must beat production's nDCG@10 by this share */
  int64_t snapshot_every;  /* events between background snapshots; 0 = none */
  double snapshot_growth;  /* ... and at least this share of all events */
  int64_t snapshot_max_replay_ms; /* bound on a crash's replay, estimated from apply time; 0 = none */
  int bulk_load;           /* not an option: set by `recd import`. With fsync=full, commits
                            * are not fsynced one by one until an OP_SYNC op (engine.h).
                            * The caller only writes: nothing may read the live state
                            * (recommend, features, training) while the engine is open, so
                            * with train_every 0 the apply takes no stripe locks */
  int demo;
  int default_n, max_n;
} recd_config;

/* Fill with built-in defaults. */
void config_defaults(recd_config *c);

/* Apply, in precedence order, the config file (path from flags, then
 * RECD_CONFIG), the environment and then argv flags. Flags that are not
 * config options are left in argv (compacted; *argc updated).
 * On error returns RECD_EINVAL and writes a message naming the option. */
int config_load(recd_config *c, int *argc, char **argv, char *err, size_t errlen);

/* Set one option by name ("max_batch" or "max-batch"). */
int config_set(recd_config *c, const char *name, const char *value, char *err, size_t errlen);

/* Derive the event type table from event_weights/event_types. */
int config_finish(recd_config *c, char *err, size_t errlen);

/* Print the effective configuration as "name = value" lines. */
void config_print(const recd_config *c, void *FILE_stream);
/* Print flag help for every option. */
void config_print_help(void *FILE_stream);

/* index of an event type name, or -1 */
int config_type_index(const recd_config *c, const char *name, size_t len);

#endif
