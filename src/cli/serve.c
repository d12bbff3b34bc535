/* recd serve — open the engine on the data dir and serve the HTTP API. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/gen.h"
#include "cli/import.h"
#include "engine/engine.h"
#include "http/server.h"
#include "util/err.h"
#include "util/log.h"

static http_server *g_srv; /* for the signal handler only */

static void on_signal(int sig) {
  (void)sig;
  if (g_srv) http_server_stop(g_srv);
}

static void help(void) {
  printf("usage: recd serve [flags]\n\n"
         "Runs the HTTP JSON API (base path /api/v1) on an embedded SQLite store.\n"
         "Every option is also an environment variable RECD_<NAME> and a config file line\n"
         "'name = value'; flags win over the environment, which wins over the file.\n\n"
         "  --print-config           print the effective configuration and exit\n"
         "  --help                   this text\n\n");
  config_print_help(stdout);
}

static int load_demo(recd_engine *e, const recd_config *cfg) {
  recd_stats st;
  engine_stats(e, &st);
  if (st.events > 0 || st.catalog_items > 0) {
    log_info("demo: %s already holds data; not loading the demo shop again", cfg->data);
    return 0;
  }
  char dir[600];
  snprintf(dir, sizeof dir, "%s/demo", cfg->data);
  gen_params gp;
  gen_default_params(&gp);
  gp.users = 2000;
  gp.items = 500;
  gp.events = 60000;
  gp.categories = 8;
  char err[512];
  log_info("demo: generating a synthetic shop (%ld users, %ld items, %ld events)", gp.users, gp.items, gp.events);
  if (gen_write(&gp, dir, NULL, NULL, err, sizeof err)) {
    log_error("demo: %s", err);
    return -1;
  }
  char items[700], events[700];
  snprintf(items, sizeof items, "%s/items.jsonl", dir);
  snprintf(events, sizeof events, "%s/events.csv", dir);
  import_params ip = {.events_path = events, .items_path = items, .batch = 20000, .progress = 0};
  import_report rep;
  int rc = import_run(e, &ip, &rep, stderr);
  if (rc) {
    log_error("demo: import failed: %s", recd_strerror(rc));
    return -1;
  }
  log_info("demo: loaded %llu events and %llu items", (unsigned long long)rep.accepted, (unsigned long long)rep.items);
  return 0;
}

int cmd_serve(int argc, char **argv) {
  recd_config cfg;
  config_defaults(&cfg);
  char err[1024];
  int print = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      help();
      return 0;
    }
  }
  if (config_load(&cfg, &argc, argv, err, sizeof err)) {
    fprintf(stderr, "recd serve: %s\n", err);
    return 2;
  }
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--print-config")) {
      print = 1;
    } else {
      fprintf(stderr, "recd serve: unknown flag '%s' (see recd serve --help)\n", argv[i]);
      return 2;
    }
  }
  if (print) {
    config_print(&cfg, stdout);
    return 0;
  }
  log_set_level(log_level_parse(cfg.log_level));
  recd_engine *e;
  if (engine_open(&cfg, &e, err, sizeof err)) {
    fprintf(stderr, "recd serve: %s\n", err);
    return 1;
  }
  if (cfg.demo && load_demo(e, &cfg)) {
    engine_free(e);
    return 1;
  }
  engine_warm(e);
  http_server *srv;
  if (http_server_new(e, &srv, err, sizeof err)) {
    fprintf(stderr, "recd serve: %s\n", err);
    engine_free(e);
    return 1;
  }
  g_srv = srv;
  struct sigaction sa = {.sa_handler = on_signal};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  log_info("recd %s serving http://%s (port %d), data in %s, fsync=%s, %d threads", RECD_VERSION, cfg.listen,
           http_server_port(srv), cfg.data, cfg.fsync, cfg.threads);
  if (cfg.demo) {
    int port = http_server_port(srv);
    char host[160];
    snprintf(host, sizeof host, "%s", cfg.listen);
    char *colon = strrchr(host, ':');
    if (colon) *colon = 0;
    if (!strcmp(host, "0.0.0.0") || !*host) snprintf(host, sizeof host, "127.0.0.1");
    printf("\nrecd is serving the demo shop at http://%s:%d\n\n"
           "  # recommendations for a demo user\n"
           "  curl -s 'http://%s:%d/api/v1/recommendations/user_42?n=5'\n\n"
           "  # record that a new user viewed an item, then ask again: the list follows the click\n"
           "  curl -s http://%s:%d/api/v1/events -H 'Content-Type: application/json' \\\n"
           "       -d '{\"user_id\":\"me\",\"item_id\":\"item_7\",\"event_type\":\"click\"}'\n"
           "  curl -s 'http://%s:%d/api/v1/recommendations/me?n=5'\n\n"
           "  # what is trending this week\n"
           "  curl -s 'http://%s:%d/api/v1/popular?n=5'\n\n"
           "Stop with Ctrl-C; the data stays in %s.\n\n",
           host, port, host, port, host, port, host, port, host, port, cfg.data);
    fflush(stdout);
  }
  http_server_run(srv);
  http_server_free(srv);
  g_srv = NULL;
  engine_close(e);
  log_info("stopped");
  return 0;
}
