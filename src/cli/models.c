/* recd train | models | promote | rollback — the model registry from the
 * command line, on a data dir no server holds (the same operations as
 * /api/v1/models* on a running server). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "engine/engine.h"
#include "util/log.h"

static void help(const char *cmd) {
  if (!strcmp(cmd, "train"))
    printf("usage: recd train [--kind ials|ease|ranker] [--promote if_better|always|never] [engine flags]\n\n"
           "Trains a model from the data dir's event log (as POST /api/v1/models/train?wait=true),\n"
           "stores it as a new version, promotes it as asked (default if_better) and prints its\n"
           "metadata as JSON. --kind defaults to the `model` setting.\n");
  else if (!strcmp(cmd, "models"))
    printf("usage: recd models [engine flags]\n\n"
           "Lists the versions in the data dir's model registry (as GET /api/v1/models);\n"
           "--json prints the registry as JSON.\n");
  else if (!strcmp(cmd, "promote"))
    printf("usage: recd promote VERSION [engine flags]\n\n"
           "Makes VERSION (3 or v3) production after verifying its files (as POST /api/v1/models/{version}/promote).\n");
  else
    printf("usage: recd rollback [engine flags]\n\n"
           "Makes the previous production version production again (as POST /api/v1/models/rollback).\n");
  printf("\nThe data dir must not be held by a running server (use the HTTP API on that server instead).\n"
         "Engine flags: --data DIR, --config FILE and every `recd serve` option (recd serve --help).\n");
}

static void print_json(json_t *j) {
  char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  if (s) puts(s);
  free(s);
}

static void print_table(json_t *reg) {
  json_t *prod = json_object_get(reg, "production");
  if (json_is_integer(prod)) printf("production: v%lld\n", (long long)json_integer_value(prod));
  else printf("production: none\n");
  printf("%-8s %-7s %-10s %-24s %10s %10s %12s  %s\n", "version", "kind", "stage", "created", "events", "nDCG@10",
         "ranker nDCG", "promotion");
  size_t i;
  json_t *m;
  json_array_foreach(json_object_get(reg, "models"), i, m) {
    json_t *rk = json_object_get(m, "ranker");
    char rn[32] = "-";
    if (rk) snprintf(rn, sizeof rn, "%.4f", json_number_value(json_object_get(rk, "ndcg_at_10")));
    printf("v%-7lld %-7s %-10s %-24s %10lld %10.4f %12s  %s\n", (long long)json_integer_value(json_object_get(m, "version")),
           json_string_value(json_object_get(m, "kind")) ? json_string_value(json_object_get(m, "kind")) : "?",
           json_string_value(json_object_get(m, "stage")) ? json_string_value(json_object_get(m, "stage")) : "?",
           json_string_value(json_object_get(m, "created_at")) ? json_string_value(json_object_get(m, "created_at")) : "?",
           (long long)json_integer_value(json_object_get(json_object_get(m, "data"), "events_seq")),
           json_number_value(json_object_get(json_object_get(m, "metrics"), "ndcg_at_10")), rn,
           json_string_value(json_object_get(m, "promotion")) ? json_string_value(json_object_get(m, "promotion")) : "");
  }
}

int cmd_models(int argc, char **argv) {
  const char *cmd = argv[0];
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      help(cmd);
      return 0;
    }
  recd_config cfg;
  config_defaults(&cfg);
  char err[1024];
  if (config_load(&cfg, &argc, argv, err, sizeof err)) {
    fprintf(stderr, "recd %s: %s\n", cmd, err);
    return 2;
  }
  const char *kind = NULL, *version = NULL;
  int promote = RECD_PROMOTE_IF_BETTER, as_json = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(cmd, "train") && !strcmp(a, "--kind") && i + 1 < argc) {
      if (!(kind = engine_model_kind(argv[++i]))) {
        fprintf(stderr, "recd train: --kind: '%s' is not ials, ease or ranker\n", argv[i]);
        return 2;
      }
    } else if (!strcmp(cmd, "train") && !strcmp(a, "--promote") && i + 1 < argc) {
      if ((promote = engine_promote_mode(argv[++i])) < 0) {
        fprintf(stderr, "recd train: --promote: '%s' is not if_better, always or never\n", argv[i]);
        return 2;
      }
    } else if (!strcmp(cmd, "models") && !strcmp(a, "--json")) {
      as_json = 1;
    } else if (!strcmp(cmd, "promote") && !version && a[0] != '-') {
      version = a;
    } else {
      fprintf(stderr, "recd %s: unknown or incomplete argument '%s' (see recd %s --help)\n", cmd, a, cmd);
      return 2;
    }
  }
  uint64_t v = 0;
  if (!strcmp(cmd, "promote") && engine_model_version(version, &v)) {
    fprintf(stderr, "recd promote: VERSION: %s is not a version number such as 3 or v3\n", version ? version : "(missing)");
    return 2;
  }
  log_set_level(LOG_WARN);
  recd_engine *e;
  if (engine_open(&cfg, &e, err, sizeof err)) {
    fprintf(stderr, "recd %s: %s\n", cmd, err);
    return 1;
  }
  int rc = 0;
  json_t *out = NULL;
  recd_fail f = {.index = -1};
  if (!strcmp(cmd, "train")) {
    recd_train_request rq = {.kind = kind, .promote = promote};
    rc = engine_train(e, &rq, &out, &f);
  } else if (!strcmp(cmd, "promote")) {
    rc = engine_promote(e, v, &out, &f);
  } else if (!strcmp(cmd, "rollback")) {
    rc = engine_rollback(e, &out, &f);
  } else {
    out = engine_models(e);
  }
  if (rc) {
    fprintf(stderr, "recd %s: %s\n", cmd, f.message);
    rc = f.status >= 500 ? 1 : 3;
  } else if (!strcmp(cmd, "models") && !as_json) {
    print_table(out);
  } else {
    print_json(out);
  }
  json_decref(out);
  engine_free(e);
  return rc;
}
