#include "eval/evaluate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/engine.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/u32map.h"

void eval_data_init(eval_data *d) {
  memset(d, 0, sizeof *d);
  strmap_init(&d->users);
  strmap_init(&d->items);
}

void eval_data_release(eval_data *d) {
  for (size_t i = 0; i < d->genres_cap; i++) free(d->genres[i]);
  free(d->genres);
  free(d->r);
  strmap_release(&d->users);
  strmap_release(&d->items);
  memset(d, 0, sizeof *d);
}

/* split one CSV line into at most `max` fields in place (handles "quoted, fields") */
static int csv_fields(char *line, char **f, int max) {
  int n = 0;
  char *p = line;
  while (n < max) {
    if (*p == '"') {
      char *o = ++p;
      f[n++] = o;
      while (*p) {
        if (*p == '"' && p[1] == '"') {
          *o++ = '"';
          p += 2;
        } else if (*p == '"') {
          p++;
          break;
        } else {
          *o++ = *p++;
        }
      }
      *o = 0;
      while (*p && *p != ',') p++;
    } else {
      f[n++] = p;
      while (*p && *p != ',' && *p != '\n' && *p != '\r') p++;
    }
    if (*p != ',') {
      *p = 0;
      break;
    }
    *p++ = 0;
  }
  return n;
}

int eval_load_movielens(eval_data *d, const char *ratings_csv, const char *movies_csv, char *err, size_t errlen) {
  FILE *f = fopen(ratings_csv, "r");
  if (!f) {
    snprintf(err, errlen, "%s: %s", ratings_csv, strerror(errno));
    return -errno;
  }
  char line[4096];
  long lineno = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    char *fl[4];
    if (lineno == 1 && !strncmp(line, "userId", 6)) continue;
    if (csv_fields(line, fl, 4) != 4) {
      snprintf(err, errlen, "%s:%ld: expected userId,movieId,rating,timestamp", ratings_csv, lineno);
      fclose(f);
      return RECD_EPARSE;
    }
    if (d->n == d->cap) {
      d->cap = d->cap ? d->cap * 2 : 65536;
      d->r = xrealloc(d->r, d->cap * sizeof *d->r);
    }
    eval_rating *r = &d->r[d->n++];
    r->user = strmap_intern(&d->users, fl[0], strlen(fl[0]), NULL);
    r->item = strmap_intern(&d->items, fl[1], strlen(fl[1]), NULL);
    r->rating = strtof(fl[2], NULL);
    r->ts_ms = strtoll(fl[3], NULL, 10) * 1000;
  }
  fclose(f);
  if (!movies_csv) return 0;
  f = fopen(movies_csv, "r");
  if (!f) {
    snprintf(err, errlen, "%s: %s", movies_csv, strerror(errno));
    return -errno;
  }
  d->genres_cap = strmap_count(&d->items);
  d->genres = xcalloc(d->genres_cap ? d->genres_cap : 1, sizeof *d->genres);
  lineno = 0;
  while (fgets(line, sizeof line, f)) {
    char *fl[3];
    if (++lineno == 1 && !strncmp(line, "movieId", 7)) continue;
    if (csv_fields(line, fl, 3) != 3) continue;
    uint32_t id = strmap_find(&d->items, fl[0], strlen(fl[0]));
    if (id == STRMAP_NONE || !strcmp(fl[2], "(no genres listed)")) continue;
    free(d->genres[id]);
    d->genres[id] = xstrdup(fl[2]);
  }
  fclose(f);
  return 0;
}

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void eval_split_random(const eval_data *d, double ratio, uint64_t seed, uint8_t *is_test) {
  size_t nu = strmap_count(&d->users);
  size_t *cnt = xcalloc(nu + 1, sizeof *cnt), *start = xcalloc(nu + 1, sizeof *start);
  for (size_t i = 0; i < d->n; i++) cnt[d->r[i].user]++;
  for (size_t u = 1; u <= nu; u++) start[u] = start[u - 1] + cnt[u - 1];
  size_t *idx = xmalloc((d->n ? d->n : 1) * sizeof *idx), *pos = xcalloc(nu + 1, sizeof *pos);
  for (size_t i = 0; i < d->n; i++) {
    uint32_t u = d->r[i].user;
    idx[start[u] + pos[u]++] = i;
  }
  uint64_t s = seed;
  for (size_t u = 0; u < nu; u++) {
    size_t *a = idx + start[u], n = cnt[u];
    for (size_t i = n; i > 1; i--) { /* Fisher-Yates */
      size_t j = splitmix(&s) % i, t = a[i - 1];
      a[i - 1] = a[j];
      a[j] = t;
    }
    size_t ntrain = n < 2 ? n : (size_t)(ratio * (double)n + 0.5);
    for (size_t i = 0; i < n; i++) is_test[a[i]] = i >= ntrain;
  }
  free(cnt);
  free(start);
  free(idx);
  free(pos);
}

static int cmp_ts(const void *a, const void *b, void *arg) {
  const eval_rating *r = arg;
  int64_t x = r[*(const size_t *)a].ts_ms, y = r[*(const size_t *)b].ts_ms;
  return x < y ? -1 : x > y;
}

static int apply_overrides(recd_config *c, const char *ov, char *err, size_t errlen) {
  if (!ov || !*ov) return config_finish(c, err, errlen);
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", ov);
  for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(tok, '=');
    if (!eq) {
      snprintf(err, errlen, "model option '%s' is not name=value", tok);
      return RECD_EINVAL;
    }
    *eq = 0;
    if (config_set(c, tok, eq + 1, err, errlen)) return RECD_EINVAL;
  }
  return config_finish(c, err, errlen);
}

int eval_run(const eval_data *d, const uint8_t *is_test, const recd_config *base, const char *overrides, size_t k,
             double like_threshold, eval_result *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  int64_t t0 = clock_mono_ns();
  recd_config cfg = *base;
  if (apply_overrides(&cfg, overrides, err, errlen)) return RECD_EINVAL;
  char dir[] = "/tmp/recd-eval-XXXXXX";
  if (!mkdtemp(dir)) {
    snprintf(err, errlen, "mkdtemp: %s", strerror(errno));
    return -errno;
  }
  snprintf(cfg.data, sizeof cfg.data, "%s", dir);
  snprintf(cfg.fsync, sizeof cfg.fsync, "off");
  cfg.exclude_seen = 1;
  recd_engine *e;
  int rc = engine_open(&cfg, &e, err, errlen);
  if (rc) goto out;

  /* catalog: genres as categories */
  size_t ni = strmap_count(&d->items);
  recd_item *items = xcalloc(ni ? ni : 1, sizeof *items);
  const char **cats = xcalloc(ni * 20 + 1, sizeof *cats);
  char **gcopy = xcalloc(ni ? ni : 1, sizeof *gcopy);
  size_t nitems = 0;
  for (size_t i = 0; i < ni; i++) {
    recd_item *it = &items[nitems];
    it->item_id = strmap_key(&d->items, (uint32_t)i);
    it->available = 1;
    it->created_at_ms = 0;
    it->categories = cats + i * 20;
    if (d->genres && i < d->genres_cap && d->genres[i]) {
      gcopy[i] = xstrdup(d->genres[i]);
      for (char *save = NULL, *g = strtok_r(gcopy[i], "|", &save); g && it->ncategories < 16; g = strtok_r(NULL, "|", &save))
        cats[i * 20 + it->ncategories++] = g;
    }
    nitems++;
  }
  engine_op op = {.kind = OP_ITEMS, .items = items, .nitems = nitems};
  rc = engine_submit_wait(e, &op);
  for (size_t i = 0; i < ni; i++) free(gcopy[i]);
  free(gcopy);
  free(cats);
  free(items);
  if (rc) {
    snprintf(err, errlen, "loading items: %s", recd_strerror(rc));
    goto close;
  }

  /* training events in time order */
  size_t ntrain = 0;
  size_t *order = xmalloc((d->n ? d->n : 1) * sizeof *order);
  for (size_t i = 0; i < d->n; i++)
    if (!is_test[i]) order[ntrain++] = i;
  qsort_r(order, ntrain, sizeof *order, cmp_ts, d->r);
  const size_t B = 20000;
  recd_event *evs = xmalloc(B * sizeof *evs);
  for (size_t s = 0; s < ntrain && !rc; s += B) {
    size_t m = ntrain - s < B ? ntrain - s : B;
    for (size_t j = 0; j < m; j++) {
      const eval_rating *r = &d->r[order[s + j]];
      evs[j] = (recd_event){.user_id = strmap_key(&d->users, r->user),
                            .item_id = strmap_key(&d->items, r->item),
                            .type = r->rating >= like_threshold ? 2 : 0,
                            .ts_ms = r->ts_ms,
                            .value = r->rating,
                            .has_value = 1};
    }
    engine_op eo = {.kind = OP_EVENTS, .events = evs, .nevents = m};
    rc = engine_submit_wait(e, &eo);
  }
  free(evs);
  free(order);
  if (rc) {
    snprintf(err, errlen, "loading events: %s", recd_strerror(rc));
    goto close;
  }

  /* test sets per user */
  size_t nu = strmap_count(&d->users);
  u32map *rel = xcalloc(nu ? nu : 1, sizeof *rel);
  for (size_t i = 0; i < d->n; i++)
    if (is_test[i]) u32map_put(&rel[d->r[i].user], d->r[i].item, 1, NULL);
  u32map recommended;
  u32map_init(&recommended);
  uint8_t *hits = xcalloc(k ? k : 1, 1);
  for (size_t u = 0; u < nu; u++) {
    if (!rel[u].count) continue;
    recd_rec_request rq = {.user_id = strmap_key(&d->users, (uint32_t)u), .n = k};
    recd_rec_result res;
    engine_recommend(e, &rq, &res);
    for (size_t j = 0; j < res.count; j++) {
      uint32_t iid = strmap_find(&d->items, res.items[j].item_id, strlen(res.items[j].item_id));
      hits[j] = iid != STRMAP_NONE && u32map_get(&rel[u], iid) != NULL;
      if (iid != STRMAP_NONE) u32map_put(&recommended, iid, 1, NULL);
    }
    eval_scores sc;
    metrics_user(hits, res.count, k, rel[u].count, &sc);
    metrics_add(&out->mean, &sc);
    out->users++;
    engine_result_release(&res);
  }
  if (out->users) metrics_scale(&out->mean, 1.0 / (double)out->users);
  out->users_total = nu;
  out->coverage = ni ? (double)recommended.count / (double)ni : 0;
  for (size_t u = 0; u < nu; u++) u32map_release(&rel[u]);
  free(rel);
  free(hits);
  u32map_release(&recommended);
close:
  engine_free(e);
out:;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "eval: could not remove %s\n", dir);
  out->seconds = (clock_mono_ns() - t0) / 1e9;
  return rc;
}
