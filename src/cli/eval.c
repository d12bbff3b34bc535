/* recd eval — offline evaluation of one or more model configurations on one
 * split of a MovieLens-format data set; prints a table, optionally JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "eval/evaluate.h"
#include "util/log.h"
#include "util/mem.h"

#define MAX_MODELS 16

static void help(void) {
  printf("usage: recd eval [flags] [--model NAME=OPTIONS]...\n\n"
         "Trains a fresh engine per model on a split of a MovieLens-format data set and\n"
         "scores its top-k lists (training items excluded) on the held-out part.\n\n"
         "  --data DIR          folder with ratings.csv and movies.csv (default ../shared/data/ml-latest-small)\n"
         "  --split random      per-user random split (the only protocol so far)\n"
         "  --ratio R           training share per user (default 0.75)\n"
         "  --seed N            split seed (default 42)\n"
         "  -k, --k N           list length (default 10)\n"
         "  --like-threshold X  ratings >= X become 'like' events, others 'view' (default 4)\n"
         "  --model NAME=OPTS   a configuration: engine options as name=value,name=value\n"
         "                      (default: popularity, content, covisitation, blend, blend-wide;\n"
         "                      see QUALITY.md). Time decay is off unless a model sets it.\n"
         "  --json FILE         also write the results as JSON\n");
}

int cmd_eval(int argc, char **argv) {
  const char *data = "../shared/data/ml-latest-small", *json = NULL, *split = "random";
  double ratio = 0.75, like = 4.0;
  unsigned long long seed = 42;
  size_t k = 10;
  const char *names[MAX_MODELS], *opts[MAX_MODELS];
  int nm = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      help();
      return 0;
    }
#define NEED()                                              \
  if (!v) {                                                 \
    fprintf(stderr, "recd eval: %s needs a value\n", a);    \
    return 2;                                               \
  }                                                         \
  i++
    if (!strcmp(a, "--data")) { NEED(); data = v; }
    else if (!strcmp(a, "--split")) { NEED(); split = v; }
    else if (!strcmp(a, "--ratio")) { NEED(); ratio = atof(v); }
    else if (!strcmp(a, "--seed")) { NEED(); seed = strtoull(v, NULL, 10); }
    else if (!strcmp(a, "-k") || !strcmp(a, "--k")) { NEED(); k = (size_t)atol(v); }
    else if (!strcmp(a, "--like-threshold")) { NEED(); like = atof(v); }
    else if (!strcmp(a, "--json")) { NEED(); json = v; }
    else if (!strcmp(a, "--model")) {
      NEED();
      if (nm == MAX_MODELS) {
        fprintf(stderr, "recd eval: at most %d models\n", MAX_MODELS);
        return 2;
      }
      const char *eq = strchr(v, '=');
      names[nm] = eq ? xstrndup(v, (size_t)(eq - v)) : xstrdup(v);
      opts[nm++] = eq ? eq + 1 : "";
    } else {
      fprintf(stderr, "recd eval: unknown flag '%s' (see recd eval --help)\n", a);
      return 2;
    }
#undef NEED
  }
  if (strcmp(split, "random")) {
    fprintf(stderr, "recd eval: --split %s: only 'random' is implemented so far\n", split);
    return 2;
  }
  if (!(ratio > 0 && ratio < 1) || k < 1 || k > 1000) {
    fprintf(stderr, "recd eval: --ratio must be in (0, 1) and -k from 1 to 1000\n");
    return 2;
  }
  if (!nm) {
    static const char *const defs[][2] = {
        {"popularity", "w_covis=0,w_content=0,w_category=0,w_new=0,w_trending=1"},
        {"content", "w_covis=0,w_category=0,w_new=0,w_trending=0"},
        {"covisitation", "w_content=0,w_category=0,w_new=0,w_trending=0"},
        {"blend", ""},
        {"blend-wide", "covis_max_neighbors=1024"},
    };
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) {
      names[nm] = xstrdup(defs[i][0]);
      opts[nm++] = defs[i][1];
    }
  }
  log_set_level(LOG_WARN);
  char rpath[1024], mpath[1024], err[512];
  snprintf(rpath, sizeof rpath, "%s/ratings.csv", data);
  snprintf(mpath, sizeof mpath, "%s/movies.csv", data);
  eval_data d;
  eval_data_init(&d);
  if (eval_load_movielens(&d, rpath, mpath, err, sizeof err)) {
    fprintf(stderr, "recd eval: %s\n", err);
    eval_data_release(&d);
    return 1;
  }
  uint8_t *is_test = xcalloc(d.n ? d.n : 1, 1);
  eval_split_random(&d, ratio, seed, is_test);
  /* A rating data set has no live clock: time decay and windows would only
   * measure how old the ratings are. Static settings unless a model overrides. */
  recd_config base;
  config_defaults(&base);
  static const char *const statics[][2] = {
      {"trending_window", "0"},          {"popularity_half_life", "36500d"}, {"affinity_half_life", "36500d"},
      {"covis_half_life", "36500d"},     {"engagement_half_life", "36500d"}, {"covis_max_gap", "36500d"},
      {"new_arrival_window", "0"},
  };
  for (size_t i = 0; i < sizeof statics / sizeof statics[0]; i++)
    if (config_set(&base, statics[i][0], statics[i][1], err, sizeof err)) {
      fprintf(stderr, "recd eval: %s\n", err);
      return 1;
    }
  printf("data: %s (%zu ratings, %zu users, %zu items); split: random per user, ratio %.2f, seed %llu; k = %zu\n",
         data, d.n, strmap_count(&d.users), strmap_count(&d.items), ratio, seed, k);
  printf("%-14s %9s %9s %9s %9s %9s %9s %9s %7s %7s\n", "model", "P@k", "R@k", "nDCG@k", "MAP@k", "HR@k", "MRR",
         "coverage", "users", "secs");
  FILE *jf = json ? fopen(json, "w") : NULL;
  if (jf) fprintf(jf, "{\"data\":\"%s\",\"ratio\":%g,\"seed\":%llu,\"k\":%zu,\"models\":[", data, ratio, seed, k);
  int rc = 0;
  for (int m = 0; m < nm; m++) {
    eval_result r;
    if (eval_run(&d, is_test, &base, opts[m], k, like, &r, err, sizeof err)) {
      fprintf(stderr, "recd eval: model %s: %s\n", names[m], err);
      rc = 1;
      continue;
    }
    printf("%-14s %9.4f %9.4f %9.4f %9.4f %9.4f %9.4f %9.4f %7zu %7.2f\n", names[m], r.mean.precision, r.mean.recall,
           r.mean.ndcg, r.mean.map, r.mean.hit, r.mean.rr, r.coverage, r.users, r.seconds);
    if (jf)
      fprintf(jf, "%s{\"name\":\"%s\",\"options\":\"%s\",\"precision\":%.6f,\"recall\":%.6f,\"ndcg\":%.6f,\"map\":%.6f,"
                  "\"hit\":%.6f,\"mrr\":%.6f,\"coverage\":%.6f,\"users\":%zu,\"seconds\":%.3f}",
              m ? "," : "", names[m], opts[m], r.mean.precision, r.mean.recall, r.mean.ndcg, r.mean.map, r.mean.hit,
              r.mean.rr, r.coverage, r.users, r.seconds);
  }
  if (jf) {
    fprintf(jf, "]}\n");
    fclose(jf);
  }
  for (int m = 0; m < nm; m++) free((char *)names[m]);
  free(is_test);
  eval_data_release(&d);
  return rc;
}
