#include "engine/config.h"

#include <ctype.h>
#include <math.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "util/err.h"

typedef enum { T_STR, T_INT, T_SIZE, T_BOOL, T_DUR, T_DBL } opt_type;

typedef struct {
  const char *name;
  opt_type type;
  size_t off;
  size_t cap;          /* T_STR buffer size */
  const char *def;
  const char *help;
  double min, max;     /* T_INT/T_DBL/T_SIZE/T_DUR bounds */
} opt;

#define O(f) offsetof(recd_config, f)
#define S(f) sizeof(((recd_config *)0)->f)

static const opt opts[] = {
    {"config", T_STR, O(config_file), S(config_file), "", "config file of 'name = value' lines (also RECD_CONFIG)", 0, 0},
    {"listen", T_STR, O(listen), S(listen), "127.0.0.1:8080", "HOST:PORT to listen on", 0, 0},
    {"data", T_STR, O(data), S(data), "./var/recd", "data directory (created if missing)", 0, 0},
    {"threads", T_INT, O(threads), 0, "2", "HTTP worker threads", 1, 64},
    {"max_batch", T_INT, O(max_batch), 0, "10000", "most events (or items) in one batch request", 1, 1000000},
    {"max_body", T_SIZE, O(max_body), 0, "16MiB", "largest request body accepted", 1024, 1e9},
    {"fsync", T_STR, O(fsync), S(fsync), "full", "durability: full (fsync every group commit; survives power loss), normal (survives kill -9, not power loss), off", 0, 0},
    {"commit_delay_us", T_INT, O(commit_delay_us), 0, "1000", "group commit with fsync=full: while writes come from several clients at once, a commit waits until its oldest write has waited this long (microseconds) or 8 events are queued; fewer syncs for more latency. 0 = commit at once", 0, 100000},
    {"log_level", T_STR, O(log_level), S(log_level), "info", "error, warn, info or debug", 0, 0},
    {"event_weights", T_STR, O(event_weights), S(event_weights), "view:1,click:2,like:3,add_to_cart:4,purchase:6", "weights of the built-in event types", 0, 0},
    {"event_types", T_STR, O(event_types), S(event_types), "", "custom event types with weights, e.g. share:2.5,wishlist:1.5", 0, 0},
    {"recent_items", T_INT, O(recent_items), 0, "50", "recent items kept per user", 1, 1000},
    {"popularity_half_life", T_DUR, O(popularity_half_life_ms), 0, "3d", "half-life of decayed item popularity", 1, 1e13},
    {"affinity_half_life", T_DUR, O(affinity_half_life_ms), 0, "14d", "half-life of user category affinity", 1, 1e13},
    {"engagement_half_life", T_DUR, O(engagement_half_life_ms), 0, "7d", "half-life of the decayed engagement score", 1, 1e13},
    {"recency_half_life", T_DUR, O(recency_half_life_ms), 0, "1d", "half-life of the user recency feature", 1, 1e13},
    {"trending_window", T_DUR, O(trending_window_ms), 0, "7d", "window of trending items (whole days, at most 30d; 0 = all time, decayed by popularity_half_life)", 0, 30 * 86400000.0},
    {"trending_refresh", T_DUR, O(trending_refresh_ms), 0, "1s", "how often trending lists are rebuilt under load", 0, 3.6e6},
    {"new_arrival_window", T_DUR, O(new_arrival_window_ms), 0, "14d", "items created within this window count as new arrivals", 0, 1e13},
    {"covis_max_neighbors", T_INT, O(covis_max_neighbors), 0, "256", "co-visitation neighbours kept per item", 4, 4096},
    {"covis_window", T_INT, O(covis_window), 0, "20", "recent items of a user paired with each new event", 1, 100},
    {"covis_max_gap", T_DUR, O(covis_max_gap_ms), 0, "1d", "events further apart than this are not co-visits", 1, 1e13},
    {"covis_half_life", T_DUR, O(covis_half_life_ms), 0, "30d", "half-life of co-visitation weights", 1, 1e13},
    {"exclude_seen", T_BOOL, O(exclude_seen), 0, "true", "never recommend items the user already interacted with", 0, 0},
    {"exclude_purchased", T_BOOL, O(exclude_purchased), 0, "true", "never recommend items the user already purchased", 0, 0},
    {"diversity", T_DBL, O(diversity), 0, "0.3", "max share of one category in a list (1 = off)", 0.01, 1},
    {"w_covis", T_DBL, O(w_covis), 0, "1.0", "blend weight: co-visitation with the user's recent items", 0, 100},
    {"w_content", T_DBL, O(w_content), 0, "0.35", "blend weight: content similarity (categories, tags)", 0, 100},
    {"w_category", T_DBL, O(w_category), 0, "0.3", "blend weight: trending in the user's favourite categories", 0, 100},
    {"w_trending", T_DBL, O(w_trending), 0, "0.5", "blend weight: global trending", 0, 100},
    {"w_new", T_DBL, O(w_new), 0, "0.05", "blend weight: new arrivals", 0, 100},
    {"default_n", T_INT, O(default_n), 0, "10", "items per list when n is not given", 1, 1000},
    {"max_n", T_INT, O(max_n), 0, "100", "largest n a request may ask for", 1, 10000},
    {"model", T_STR, O(model), S(model), "ials", "learned model that training produces: ials, ease, ranker (a retrieval model plus a learned reranker) or none", 0, 0},
    {"ranker_base", T_STR, O(ranker_base), S(ranker_base), "ials", "retrieval model trained with a ranker (model = ranker): ials, ease or none", 0, 0},
    {"ranker_depth", T_INT, O(ranker_depth), 0, "30", "blend candidates the learned ranker reorders per request; 0 = ranker off", 0, 200},
    {"ranker_rounds", T_INT, O(ranker_rounds), 0, "100", "ranker boosting rounds (trees; early stopping on the held-out slice)", 1, 10000},
    {"ranker_tree_depth", T_INT, O(ranker_tree_depth), 0, "6", "ranker tree depth", 1, 16},
    {"ranker_eta", T_DBL, O(ranker_eta), 0, "0.1", "ranker learning rate", 1e-6, 1},
    {"ranker_prior", T_DBL, O(ranker_prior), 0, "1", "the blend's order as the ranker's starting score (trees learn the correction): -ranker_prior * log2(1 + blend_rank); 0 = trees alone", 0, 100},
    {"ranker_horizon", T_DUR, O(ranker_horizon_ms), 0, "1d", "ranker labels: the user's events within this time after a sampled request", 1, 1e13},
    {"ranker_window", T_DBL, O(ranker_window), 0, "0.3", "share of the log (the newest events) the ranker's training requests are sampled from", 0.01, 1},
    {"ranker_max_groups", T_SIZE, O(ranker_max_groups), 0, "20000", "training requests (query groups) sampled for the ranker at most", 10, 1e8},
    {"ials_factors", T_INT, O(ials_factors), 0, "64", "iALS latent factors", 1, 1024},
    {"ials_iterations", T_INT, O(ials_iterations), 0, "15", "iALS alternating sweeps", 1, 1000},
    {"ials_reg", T_DBL, O(ials_reg), 0, "30", "iALS L2 regularisation", 1e-9, 1e9},
    {"ials_alpha", T_DBL, O(ials_alpha), 0, "1", "iALS confidence slope: c = 1 + alpha * strength", 0, 1e6},
    {"ease_lambda", T_DBL, O(ease_lambda), 0, "250", "EASE L2 regularisation", 1e-6, 1e9},
    {"mf_scan_items", T_SIZE, O(mf_scan_items), 0, "20000", "iALS scores every item per request up to this catalog size; above it, only this many most popular items (0 = always every item)", 0, 1e9},
    {"w_mf", T_DBL, O(w_mf), 0, "1.0", "blend weight of the production model (iALS or EASE) when one exists", 0, 100},
    {"train_every", T_SIZE, O(train_every), 0, "0", "events between automatic background trainings; 0 = only when asked", 0, 1e12},
    {"promote_margin", T_DBL, O(promote_margin), 0, "0.02", "automatic promotion needs nDCG@10 above production's by this share", 0, 10},
    {"snapshot_every", T_SIZE, O(snapshot_every), 0, "1000000", "events between background snapshots of the live state (restart loads the newest and replays the rest); 0 = never", 0, 1e12},
    {"snapshot_max_replay", T_DUR, O(snapshot_max_replay_ms), 0, "5s", "the longest a restart after a crash may spend replaying the events after the newest snapshot, estimated by the time they took to apply: a background snapshot also starts once they took half of it, and writes wait while they took all of it and a snapshot is being written (events that pair with many recent items replay slower than snapshot_every and snapshot_growth assume); 0 = no bound", 0, 1e9},
    {"snapshot_growth", T_DBL, O(snapshot_growth), 0, "0.05", "a background snapshot also waits until the events since the last one are this share of all events (a snapshot costs in proportion to the state, so this keeps its cost per event flat as the state grows; restart replays at most this share of the log)", 0, 10},
    {"demo", T_BOOL, O(demo), 0, "false", "load a synthetic demo shop when the data dir is empty", 0, 0},
};
#define NOPTS (sizeof opts / sizeof opts[0])

static void norm_name(const char *in, size_t len, char *out, size_t cap) {
  size_t i = 0;
  for (; i < len && i + 1 < cap; i++) out[i] = in[i] == '-' ? '_' : (char)tolower((unsigned char)in[i]);
  out[i] = 0;
}

static const opt *find_opt(const char *name, size_t len) {
  char n[64];
  norm_name(name, len, n, sizeof n);
  for (size_t i = 0; i < NOPTS; i++)
    if (!strcmp(opts[i].name, n)) return &opts[i];
  return NULL;
}

static int parse_size(const char *v, int64_t *out) {
  char *end;
  errno = 0;
  double d = strtod(v, &end);
  if (end == v || errno || d < 0) return -1;
  while (*end == ' ') end++;
  double mul = 1;
  if (!*end || !strcasecmp(end, "b")) mul = 1;
  else if (!strcasecmp(end, "k") || !strcasecmp(end, "kb") || !strcasecmp(end, "kib")) mul = 1024;
  else if (!strcasecmp(end, "m") || !strcasecmp(end, "mb") || !strcasecmp(end, "mib")) mul = 1024 * 1024;
  else if (!strcasecmp(end, "g") || !strcasecmp(end, "gb") || !strcasecmp(end, "gib")) mul = 1024.0 * 1024 * 1024;
  else return -1;
  if (!isfinite(d) || d * mul > 9e18) return -1;
  *out = (int64_t)(d * mul);
  return 0;
}

static int set_opt(recd_config *c, const opt *o, const char *v, char *err, size_t errlen) {
  char *p = (char *)c + o->off;
  char *end;
  switch (o->type) {
    case T_STR:
      if (strlen(v) >= o->cap) {
        snprintf(err, errlen, "%s: value too long (max %zu bytes)", o->name, o->cap - 1);
        return RECD_EINVAL;
      }
      if (!strcmp(o->name, "fsync") && strcmp(v, "full") && strcmp(v, "normal") && strcmp(v, "off")) {
        snprintf(err, errlen, "fsync: '%s' is not one of full, normal, off", v);
        return RECD_EINVAL;
      }
      if (!strcmp(o->name, "model") && strcmp(v, "ials") && strcmp(v, "ease") && strcmp(v, "ranker") && strcmp(v, "none")) {
        snprintf(err, errlen, "model: '%s' is not one of ials, ease, ranker, none", v);
        return RECD_EINVAL;
      }
      if (!strcmp(o->name, "ranker_base") && strcmp(v, "ials") && strcmp(v, "ease") && strcmp(v, "none")) {
        snprintf(err, errlen, "ranker_base: '%s' is not one of ials, ease, none", v);
        return RECD_EINVAL;
      }
      if (!strcmp(o->name, "log_level") && strcmp(v, "error") && strcmp(v, "warn") &&
          strcmp(v, "info") && strcmp(v, "debug")) {
        snprintf(err, errlen, "log_level: '%s' is not one of error, warn, info, debug", v);
        return RECD_EINVAL;
      }
      strcpy(p, v);
      return 0;
    case T_INT: {
      errno = 0;
      long x = strtol(v, &end, 10);
      if (end == v || *end || errno || x < o->min || x > o->max) {
        snprintf(err, errlen, "%s: '%s' is not a whole number from %.0f to %.0f", o->name, v, o->min, o->max);
        return RECD_EINVAL;
      }
      *(int *)p = (int)x;
      return 0;
    }
    case T_DBL: {
      errno = 0;
      double x = strtod(v, &end);
      if (end == v || *end || errno || !(x >= o->min && x <= o->max)) {
        snprintf(err, errlen, "%s: '%s' is not a number from %g to %g", o->name, v, o->min, o->max);
        return RECD_EINVAL;
      }
      *(double *)p = x;
      return 0;
    }
    case T_SIZE: {
      int64_t x;
      if (parse_size(v, &x) || x < o->min || x > o->max) {
        snprintf(err, errlen, "%s: '%s' is not a size from %.0f bytes to %.0f (e.g. 16MiB, 65536)", o->name, v, o->min, o->max);
        return RECD_EINVAL;
      }
      *(int64_t *)p = x;
      return 0;
    }
    case T_DUR: {
      int64_t x;
      if (!strcmp(v, "0")) x = 0;
      else if (clock_parse_duration(v, &x)) x = -1;
      if (x < o->min || x > o->max) {
        snprintf(err, errlen, "%s: '%s' is not a duration in range (e.g. 30s, 12h, 7d)", o->name, v);
        return RECD_EINVAL;
      }
      *(int64_t *)p = x;
      return 0;
    }
    case T_BOOL:
      if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "on")) *(int *)p = 1;
      else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no") || !strcmp(v, "off")) *(int *)p = 0;
      else {
        snprintf(err, errlen, "%s: '%s' is not true or false", o->name, v);
        return RECD_EINVAL;
      }
      return 0;
  }
  return RECD_EINVAL;
}

int config_set(recd_config *c, const char *name, const char *value, char *err, size_t errlen) {
  const opt *o = find_opt(name, strlen(name));
  if (!o) {
    snprintf(err, errlen, "unknown option '%s'", name);
    return RECD_EINVAL;
  }
  return set_opt(c, o, value, err, errlen);
}

void config_defaults(recd_config *c) {
  memset(c, 0, sizeof *c);
  char err[256];
  for (size_t i = 0; i < NOPTS; i++)
    if (set_opt(c, &opts[i], opts[i].def, err, sizeof err)) abort(); /* defaults are valid */
  config_finish(c, err, sizeof err);
}

static char *trim(char *s) {
  while (isspace((unsigned char)*s)) s++;
  char *e = s + strlen(s);
  while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
  return s;
}

static int load_file(recd_config *c, const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err, errlen, "config file %s: %s", path, strerror(errno));
    return RECD_EINVAL;
  }
  char line[1024], msg[512];
  int lineno = 0, rc = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    char *s = trim(line);
    if (!*s || *s == '#' || *s == ';') continue;
    char *eq = strchr(s, '=');
    if (!eq) {
      snprintf(err, errlen, "%s:%d: expected 'name = value'", path, lineno);
      rc = RECD_EINVAL;
      break;
    }
    *eq = 0;
    char *name = trim(s), *val = trim(eq + 1);
    size_t vl = strlen(val);
    if (vl >= 2 && val[0] == '"' && val[vl - 1] == '"') {
      val[vl - 1] = 0;
      val++;
    }
    if (!strcmp(name, "config") || config_set(c, name, val, msg, sizeof msg)) {
      if (!strcmp(name, "config")) snprintf(msg, sizeof msg, "config: cannot be set inside a config file");
      snprintf(err, errlen, "%s:%d: %s", path, lineno, msg);
      rc = RECD_EINVAL;
      break;
    }
  }
  fclose(f);
  return rc;
}

/* Does argv[i] name a config flag? Sets *o, *val (may be NULL = next arg). */
static int flag_opt(const char *arg, const opt **o, const char **val) {
  if (strncmp(arg, "--", 2)) return 0;
  const char *name = arg + 2, *eq = strchr(name, '=');
  size_t len = eq ? (size_t)(eq - name) : strlen(name);
  *o = find_opt(name, len);
  *val = eq ? eq + 1 : NULL;
  return *o != NULL;
}

int config_load(recd_config *c, int *argc, char **argv, char *err, size_t errlen) {
  /* 1. config file path: flag, then env */
  const char *file = NULL;
  for (int i = 1; i < *argc; i++) {
    const opt *o;
    const char *v;
    if (flag_opt(argv[i], &o, &v) && o->off == O(config_file)) {
      file = v ? v : (i + 1 < *argc ? argv[i + 1] : NULL);
      if (!file) {
        snprintf(err, errlen, "--config needs a value");
        return RECD_EINVAL;
      }
    }
  }
  if (!file) file = getenv("RECD_CONFIG");
  if (file && *file) {
    int rc = load_file(c, file, err, errlen);
    if (rc) return rc;
    snprintf(c->config_file, sizeof c->config_file, "%s", file);
  }
  /* 2. environment */
  for (size_t i = 0; i < NOPTS; i++) {
    char env[64] = "RECD_";
    for (size_t j = 0; opts[i].name[j] && j < 50; j++) env[5 + j] = (char)toupper((unsigned char)opts[i].name[j]), env[6 + j] = 0;
    const char *v = getenv(env);
    if (!v || opts[i].off == O(config_file)) continue;
    char msg[512];
    if (set_opt(c, &opts[i], v, msg, sizeof msg)) {
      snprintf(err, errlen, "environment %s: %s", env, msg);
      return RECD_EINVAL;
    }
  }
  /* 3. flags; unknown ones stay in argv */
  int out = 1;
  for (int i = 1; i < *argc; i++) {
    const opt *o;
    const char *v;
    if (!flag_opt(argv[i], &o, &v)) {
      argv[out++] = argv[i];
      continue;
    }
    if (!v) {
      if (o->type == T_BOOL) {
        /* a bare boolean flag means true unless a value follows */
        const char *nx = i + 1 < *argc ? argv[i + 1] : NULL;
        if (nx && (!strcmp(nx, "true") || !strcmp(nx, "false") || !strcmp(nx, "1") ||
                   !strcmp(nx, "0") || !strcmp(nx, "yes") || !strcmp(nx, "no") ||
                   !strcmp(nx, "on") || !strcmp(nx, "off"))) {
          v = nx;
          i++;
        } else {
          v = "true";
        }
      } else {
        if (i + 1 >= *argc) {
          snprintf(err, errlen, "--%s needs a value", o->name);
          return RECD_EINVAL;
        }
        v = argv[++i];
      }
    }
    if (o->off == O(config_file)) continue;
    char msg[512];
    if (set_opt(c, o, v, msg, sizeof msg)) {
      snprintf(err, errlen, "--%s", msg);
      return RECD_EINVAL;
    }
  }
  argv[out] = NULL;
  *argc = out;
  return config_finish(c, err, errlen);
}

static int parse_types(recd_config *c, const char *spec, int builtin, char *err, size_t errlen) {
  char buf[512];
  snprintf(buf, sizeof buf, "%s", spec);
  const char *what = builtin ? "event_weights" : "event_types";
  for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    tok = trim(tok);
    if (!*tok) continue;
    char *colon = strchr(tok, ':');
    double w = 1.0;
    if (colon) {
      *colon = 0;
      char *end;
      w = strtod(colon + 1, &end);
      if (end == colon + 1 || *end || !(w >= 0 && w <= 1000)) {
        snprintf(err, errlen, "%s: weight of '%s' must be a number from 0 to 1000", what, tok);
        return RECD_EINVAL;
      }
    }
    char *name = trim(tok);
    size_t len = strlen(name);
    if (!len || len >= sizeof c->types[0].name) {
      snprintf(err, errlen, "%s: type names are 1 to 31 characters", what);
      return RECD_EINVAL;
    }
    for (size_t k = 0; k < len; k++)
      if (!(islower((unsigned char)name[k]) || isdigit((unsigned char)name[k]) || name[k] == '_')) {
        snprintf(err, errlen, "%s: type name '%s' may hold only a-z, 0-9 and _", what, name);
        return RECD_EINVAL;
      }
    int idx = config_type_index(c, name, len);
    if (builtin) {
      if (idx < 0 || idx >= 5) {
        snprintf(err, errlen, "event_weights: '%s' is not a built-in type (view, click, like, add_to_cart, purchase); declare custom types in event_types", name);
        return RECD_EINVAL;
      }
      c->types[idx].weight = (float)w;
    } else {
      if (idx >= 0) {
        snprintf(err, errlen, "event_types: '%s' is already defined", name);
        return RECD_EINVAL;
      }
      if (c->ntypes >= RECD_MAX_TYPES) {
        snprintf(err, errlen, "event_types: at most %d types in all", RECD_MAX_TYPES);
        return RECD_EINVAL;
      }
      snprintf(c->types[c->ntypes].name, sizeof c->types[0].name, "%s", name);
      c->types[c->ntypes++].weight = (float)w;
    }
  }
  return 0;
}

int config_finish(recd_config *c, char *err, size_t errlen) {
  static const char *builtin[] = {"view", "click", "like", "add_to_cart", "purchase"};
  static const float defw[] = {1, 2, 3, 4, 6};
  c->ntypes = 5;
  for (int i = 0; i < 5; i++) {
    snprintf(c->types[i].name, sizeof c->types[i].name, "%s", builtin[i]);
    c->types[i].weight = defw[i];
  }
  int rc = parse_types(c, c->event_weights, 1, err, errlen);
  if (!rc) rc = parse_types(c, c->event_types, 0, err, errlen);
  if (!rc && c->default_n > c->max_n) {
    snprintf(err, errlen, "default_n (%d) is larger than max_n (%d)", c->default_n, c->max_n);
    rc = RECD_EINVAL;
  }
  return rc;
}

int config_type_index(const recd_config *c, const char *name, size_t len) {
  for (int i = 0; i < c->ntypes; i++)
    if (strlen(c->types[i].name) == len && !memcmp(c->types[i].name, name, len)) return i;
  return -1;
}

static void fmt_dur(int64_t ms, char *buf, size_t n) {
  if (ms % (7 * 86400000LL) == 0 && ms) snprintf(buf, n, "%lldw", (long long)(ms / (7 * 86400000LL)));
  else if (ms % 86400000 == 0 && ms) snprintf(buf, n, "%lldd", (long long)(ms / 86400000));
  else if (ms % 3600000 == 0 && ms) snprintf(buf, n, "%lldh", (long long)(ms / 3600000));
  else if (ms % 60000 == 0 && ms) snprintf(buf, n, "%lldm", (long long)(ms / 60000));
  else if (ms % 1000 == 0) snprintf(buf, n, "%llds", (long long)(ms / 1000));
  else snprintf(buf, n, "%lldms", (long long)ms);
}

static void fmt_opt(const recd_config *c, const opt *o, char *buf, size_t n) {
  const char *p = (const char *)c + o->off;
  switch (o->type) {
    case T_STR: snprintf(buf, n, "\"%s\"", p); break; /* quoted: the file reader strips one pair */
    case T_INT: snprintf(buf, n, "%d", *(const int *)p); break;
    case T_BOOL: snprintf(buf, n, "%s", *(const int *)p ? "true" : "false"); break;
    case T_DBL: snprintf(buf, n, "%g", *(const double *)p); break;
    case T_SIZE: snprintf(buf, n, "%lld", (long long)*(const int64_t *)p); break;
    case T_DUR: fmt_dur(*(const int64_t *)p, buf, n); break;
  }
}

void config_print(const recd_config *c, void *stream) {
  FILE *f = stream;
  for (size_t i = 0; i < NOPTS; i++) {
    char buf[600];
    fmt_opt(c, &opts[i], buf, sizeof buf);
    fprintf(f, "%s = %s\n", opts[i].name, buf);
  }
  fprintf(f, "# effective event types:");
  for (int i = 0; i < c->ntypes; i++) fprintf(f, " %s:%g", c->types[i].name, c->types[i].weight);
  fprintf(f, "\n");
}

void config_print_help(void *stream) {
  FILE *f = stream;
  for (size_t i = 0; i < NOPTS; i++) {
    char flag[64], env[64] = "RECD_";
    size_t j = 0;
    for (; opts[i].name[j]; j++) {
      flag[j] = opts[i].name[j] == '_' ? '-' : opts[i].name[j];
      env[5 + j] = (char)toupper((unsigned char)opts[i].name[j]);
    }
    flag[j] = 0;
    env[5 + j] = 0;
    fprintf(f, "  --%-22s %s\n  %-24s   env %s, default: %s\n", flag, opts[i].help, "", env,
            *opts[i].def ? opts[i].def : "(none)");
  }
}
