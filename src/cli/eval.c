/* recd eval — offline evaluation of one or more model configurations on one
 * split of a MovieLens-format data set; prints a table, optionally JSON and an
 * SVG of metric-vs-k curves. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "eval/evaluate.h"
#include "eval/plot.h"
#include "util/log.h"
#include "util/mem.h"

#define MAX_MODELS 16

static void help(void) {
  printf("usage: recd eval [flags] [--model NAME=OPTIONS]...\n\n"
         "Trains a fresh engine per model on a split of a rating data set and scores it.\n\n"
         "  --data DIR            folder with ratings.csv|u.data|ratings.dat and movies.csv|u.item|movies.dat\n"
         "                        (default ../shared/data/ml-latest-small)\n"
         "  --split NAME          random      per-user random split (default)\n"
         "                        time        global time cut: the latest --test-share of ratings are test\n"
         "                        user-time   per user, the last (1 - --ratio) of their ratings by time\n"
         "  --ratio R             training share per user for random and user-time (default 0.75)\n"
         "  --last-k K            user-time: the last K ratings of each user are test instead\n"
         "  --test-share S        time: share of ratings after the cut (default 0.2)\n"
         "  --seed N              random split seed (default 42)\n"
         "  --protocol NAME       batch: top-k lists of test users vs their test items (default)\n"
         "                        replay: streaming replay of the test part in time order (needs --split time);\n"
         "                        each model runs live (events ingested) and frozen (not), see QUALITY.md\n"
         "  -k, --k N             list length for the table (default 10)\n"
         "  --max-k N             compute curves for k = 1..N (default: k)\n"
         "  --like-threshold X    ratings >= X become 'like' events and replay positives; others 'view' (default 4)\n"
         "  --model NAME=OPTS     a configuration: engine options name=value,name=value (repeatable;\n"
         "                        default: popularity, content, covisitation, blend, ials, ease, blend+ease)\n"
         "  --json FILE           write the results as JSON\n"
         "  --plot FILE.svg       write metric-vs-k curves (P, R, nDCG, MAP; HR for replay) for all models\n\n"
         "A rating data set has no live clock, so time decay and windows are off unless a model sets them.\n"
         "RECD_EVAL_META=1 prints each trained model's registry metadata (JSON) to stderr.\n");
}

static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') fputc('\\', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

int cmd_eval(int argc, char **argv) {
  const char *data = "../shared/data/ml-latest-small", *json = NULL, *split = "random", *protocol = "batch",
             *plot = NULL;
  double ratio = 0.75, like = 4.0, test_share = 0.2;
  unsigned long long seed = 42;
  long k = 10, max_k = 0, last_k = 0;
  const char *names[MAX_MODELS], *opts[MAX_MODELS];
  int nm = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      help();
      return 0;
    }
#define NEED()                                           \
  if (!v) {                                              \
    fprintf(stderr, "recd eval: %s needs a value\n", a); \
    return 2;                                            \
  }                                                      \
  i++
    if (!strcmp(a, "--data")) { NEED(); data = v; }
    else if (!strcmp(a, "--split")) { NEED(); split = v; }
    else if (!strcmp(a, "--protocol")) { NEED(); protocol = v; }
    else if (!strcmp(a, "--ratio")) { NEED(); ratio = atof(v); }
    else if (!strcmp(a, "--test-share")) { NEED(); test_share = atof(v); }
    else if (!strcmp(a, "--last-k")) { NEED(); last_k = atol(v); }
    else if (!strcmp(a, "--seed")) { NEED(); seed = strtoull(v, NULL, 10); }
    else if (!strcmp(a, "-k") || !strcmp(a, "--k")) { NEED(); k = atol(v); }
    else if (!strcmp(a, "--max-k")) { NEED(); max_k = atol(v); }
    else if (!strcmp(a, "--like-threshold")) { NEED(); like = atof(v); }
    else if (!strcmp(a, "--json")) { NEED(); json = v; }
    else if (!strcmp(a, "--plot")) { NEED(); plot = v; }
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
  int replay = !strcmp(protocol, "replay");
  if (!replay && strcmp(protocol, "batch")) {
    fprintf(stderr, "recd eval: --protocol must be batch or replay\n");
    return 2;
  }
  if (strcmp(split, "random") && strcmp(split, "time") && strcmp(split, "user-time")) {
    fprintf(stderr, "recd eval: --split must be random, time or user-time\n");
    return 2;
  }
  if (replay && strcmp(split, "time")) {
    fprintf(stderr, "recd eval: --protocol replay replays a time period: use --split time\n");
    return 2;
  }
  if (!(ratio > 0 && ratio < 1) || !(test_share > 0 && test_share < 1) || k < 1 || k > 1000 || max_k < 0 ||
      max_k > 1000 || last_k < 0) {
    fprintf(stderr, "recd eval: --ratio and --test-share must be in (0, 1), -k and --max-k from 1 to 1000\n");
    return 2;
  }
  if (max_k < k) max_k = plot ? (k > 20 ? k : 20) : k;
  if (!nm) {
    static const char *const defs[][2] = {
        {"popularity", "w_covis=0,w_content=0,w_category=0,w_new=0,w_trending=1"},
        {"content", "w_covis=0,w_category=0,w_new=0,w_trending=0"},
        {"covisitation", "w_content=0,w_category=0,w_new=0,w_trending=0"},
        {"blend", ""},
        {"ials", "model=ials,w_covis=0,w_content=0,w_category=0,w_new=0,w_trending=0,diversity=1"},
        {"ease", "model=ease,w_covis=0,w_content=0,w_category=0,w_new=0,w_trending=0,diversity=1"},
        {"blend+ease", "model=ease,w_mf=3,diversity=1"},
    };
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) {
      names[nm] = xstrdup(defs[i][0]);
      opts[nm++] = defs[i][1];
    }
  }
  log_set_level(LOG_WARN);
  char err[512];
  eval_data d;
  eval_data_init(&d);
  if (eval_load_dir(&d, data, err, sizeof err)) {
    fprintf(stderr, "recd eval: %s\n", err);
    eval_data_release(&d);
    return 1;
  }
  uint8_t *is_test = xcalloc(d.n ? d.n : 1, 1);
  char splitdesc[160];
  if (!strcmp(split, "random")) {
    split_random(&d, ratio, seed, is_test);
    snprintf(splitdesc, sizeof splitdesc, "random per user, train %.2f, seed %llu", ratio, seed);
  } else if (!strcmp(split, "time")) {
    split_time_global(&d, test_share, is_test);
    snprintf(splitdesc, sizeof splitdesc, "global time cut, latest %.2f as test", test_share);
  } else {
    split_time_user(&d, ratio, (int)last_k, is_test);
    if (last_k) snprintf(splitdesc, sizeof splitdesc, "per user by time, last %ld as test", last_k);
    else snprintf(splitdesc, sizeof splitdesc, "per user by time, last %.2f as test", 1 - ratio);
  }
  /* A rating data set has no live clock: static settings unless a model overrides. */
  recd_config base;
  config_defaults(&base);
  static const char *const statics[][2] = {
      {"trending_window", "0"},      {"popularity_half_life", "36500d"}, {"affinity_half_life", "36500d"},
      {"covis_half_life", "36500d"}, {"engagement_half_life", "36500d"}, {"covis_max_gap", "36500d"},
      {"new_arrival_window", "0"},   {"trending_refresh", "0"}, /* replay: trending follows every event */
      {"model", "none"},             /* a model trains a learned model only when it asks (model=ials|ease) */
  };
  for (size_t i = 0; i < sizeof statics / sizeof statics[0]; i++)
    if (config_set(&base, statics[i][0], statics[i][1], err, sizeof err)) {
      fprintf(stderr, "recd eval: %s\n", err);
      return 1;
    }
  size_t ntest = 0;
  for (size_t i = 0; i < d.n; i++) ntest += is_test[i];
  printf("data: %s (%zu ratings, %zu users, %zu items); split: %s (%zu test); protocol: %s; k = %ld\n", data, d.n,
         strmap_count(&d.users), strmap_count(&d.items), splitdesc, ntest, protocol, k);
  if (replay)
    printf("%-14s %-7s %9s %9s %9s %10s %7s %7s\n", "model", "mode", "HR@k", "nDCG@k", "MRR", "positives", "users",
           "secs");
  else
    printf("%-14s %9s %9s %9s %9s %9s %9s %9s %11s %7s\n", "model", "P@k", "R@k", "nDCG@k", "MAP@k", "HR@k", "MRR",
           "coverage", "users", "secs");
  fflush(stdout);
  eval_opts eo = {.k = (size_t)k, .max_k = (size_t)max_k, .like_threshold = like};
  eval_result *br = xcalloc((size_t)nm, sizeof *br);
  eval_replay_result *live = xcalloc((size_t)nm, sizeof *live), *frozen = xcalloc((size_t)nm, sizeof *frozen);
  int *ok = xcalloc((size_t)nm, sizeof *ok);
  int rc = 0;
  for (int m = 0; m < nm; m++) {
    recd_config cfg;
    if (eval_config(&base, opts[m], &cfg, err, sizeof err)) {
      fprintf(stderr, "recd eval: model %s: %s\n", names[m], err);
      rc = 1;
      continue;
    }
    if (replay) {
      if (eval_replay(&d, is_test, &cfg, &eo, 0, &live[m], err, sizeof err) ||
          eval_replay(&d, is_test, &cfg, &eo, 1, &frozen[m], err, sizeof err)) {
        fprintf(stderr, "recd eval: model %s: %s\n", names[m], err);
        rc = 1;
        continue;
      }
      for (int fz = 0; fz < 2; fz++) {
        eval_replay_result *r = fz ? &frozen[m] : &live[m];
        printf("%-14s %-7s %9.4f %9.4f %9.4f %10zu %7zu %7.2f\n", names[m], fz ? "frozen" : "live", r->hr, r->ndcg,
               r->mrr, r->positives, r->users, r->seconds);
      }
    } else {
      if (eval_run(&d, is_test, &cfg, &eo, &br[m], err, sizeof err)) {
        fprintf(stderr, "recd eval: model %s: %s\n", names[m], err);
        rc = 1;
        continue;
      }
      eval_result *r = &br[m];
      char users[32];
      snprintf(users, sizeof users, "%zu/%zu", r->users, r->users_total);
      printf("%-14s %9.4f %9.4f %9.4f %9.4f %9.4f %9.4f %9.4f %11s %7.2f\n", names[m], r->mean.precision,
             r->mean.recall, r->mean.ndcg, r->mean.map, r->mean.hit, r->mean.rr, r->coverage, users, r->seconds);
    }
    ok[m] = 1;
    fflush(stdout);
  }
  if (json) {
    FILE *jf = fopen(json, "w");
    if (!jf) {
      fprintf(stderr, "recd eval: cannot write %s\n", json);
      rc = 1;
    } else {
      fprintf(jf, "{\"data\":");
      json_str(jf, data);
      fprintf(jf, ",\"split\":");
      json_str(jf, splitdesc);
      fprintf(jf, ",\"protocol\":\"%s\",\"k\":%ld,\"models\":[", protocol, k);
      int first = 1;
      for (int m = 0; m < nm; m++) {
        if (!ok[m]) continue;
        fprintf(jf, "%s{\"name\":", first ? "" : ",");
        first = 0;
        json_str(jf, names[m]);
        fprintf(jf, ",\"options\":");
        json_str(jf, opts[m]);
        if (replay)
          fprintf(jf, ",\"live\":{\"hr\":%.6f,\"ndcg\":%.6f,\"mrr\":%.6f},\"frozen\":{\"hr\":%.6f,\"ndcg\":%.6f,\"mrr\":%.6f},"
                      "\"positives\":%zu,\"users\":%zu}",
                  live[m].hr, live[m].ndcg, live[m].mrr, frozen[m].hr, frozen[m].ndcg, frozen[m].mrr, live[m].positives,
                  live[m].users);
        else
          fprintf(jf, ",\"precision\":%.6f,\"recall\":%.6f,\"ndcg\":%.6f,\"map\":%.6f,\"hit\":%.6f,\"mrr\":%.6f,"
                      "\"coverage\":%.6f,\"users\":%zu,\"users_total\":%zu,\"seconds\":%.3f}",
                  br[m].mean.precision, br[m].mean.recall, br[m].mean.ndcg, br[m].mean.map, br[m].mean.hit,
                  br[m].mean.rr, br[m].coverage, br[m].users, br[m].users_total, br[m].seconds);
      }
      fprintf(jf, "]}\n");
      fclose(jf);
    }
  }
  if (plot) {
    size_t K = (size_t)max_k;
    const char *titles[] = {"Precision@k", "Recall@k", "nDCG@k", "MAP@k"};
    size_t np = replay ? 1 : 4, ns = 0;
    double **ys = xcalloc((size_t)nm * 2 * 4, sizeof *ys);
    plot_series *ser = xcalloc((size_t)nm * 2 * 4, sizeof *ser);
    plot_panel panels[4];
    char **labels = xcalloc((size_t)nm * 2, sizeof *labels);
    for (size_t p = 0; p < np; p++) {
      panels[p].title = replay ? "HR@k (streaming replay)" : titles[p];
      panels[p].series = ser + ns;
      panels[p].nseries = 0;
      for (int m = 0; m < nm; m++) {
        if (!ok[m]) continue;
        for (int fz = 0; fz < (replay ? 2 : 1); fz++) {
          double *y = ys[ns] = xcalloc(K + 1, sizeof *y);
          for (size_t c = 1; c <= K; c++) {
            if (replay) y[c] = (fz ? frozen[m] : live[m]).hr_curve[c];
            else {
              const eval_scores *s = &br[m].curve[c];
              y[c] = p == 0 ? s->precision : p == 1 ? s->recall : p == 2 ? s->ndcg : s->map;
            }
          }
          if (replay) {
            char lb[128];
            snprintf(lb, sizeof lb, "%s (%s)", names[m], fz ? "frozen" : "live");
            labels[m * 2 + fz] = xstrdup(lb);
          }
          ser[ns] = (plot_series){.name = replay ? labels[m * 2 + fz] : names[m], .y = y};
          ns++;
          panels[p].nseries++;
        }
      }
    }
    char title[256];
    snprintf(title, sizeof title, "recd eval: %s, %s", data, splitdesc);
    if (plot_svg(plot, title, panels, np, K)) {
      fprintf(stderr, "recd eval: cannot write %s\n", plot);
      rc = 1;
    }
    for (size_t s = 0; s < ns; s++) free(ys[s]);
    for (int m = 0; m < nm * 2; m++) free(labels[m]);
    free(labels);
    free(ys);
    free(ser);
  }
  for (int m = 0; m < nm; m++) {
    eval_result_release(&br[m]);
    eval_replay_release(&live[m]);
    eval_replay_release(&frozen[m]);
    free((char *)names[m]);
  }
  free(br);
  free(live);
  free(frozen);
  free(ok);
  free(is_test);
  eval_data_release(&d);
  return rc;
}
