/* rec_loop — recommendations without HTTP: one thread calling
 * engine_recommend for random users of a data dir, for the cost of a
 * recommendation alone (no sockets, no scheduler, no client on the CPUs) and
 * a profile without the kernel's share (`perf record -D 6000 ...`: the first
 * seconds load the state and let the content memos warm).
 *
 *   make build/rec_loop && build/rec_loop DATA_DIR [REQUESTS] [USERS] [N]
 *
 * Defaults: 200,000 requests, users user_1 .. user_1000000 (the --full
 * state's names), n = 10. Prints microseconds per recommendation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/config.h"
#include "engine/engine.h"
#include "util/clock.h"
#include "util/log.h"

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: rec_loop DATA_DIR [REQUESTS] [USERS] [N]\n");
    return 2;
  }
  long iters = argc > 2 ? atol(argv[2]) : 200000, users = argc > 3 ? atol(argv[3]) : 1000000;
  size_t n = argc > 4 ? (size_t)atol(argv[4]) : 10;
  if (iters <= 0 || users <= 0 || n == 0) {
    fprintf(stderr, "rec_loop: REQUESTS, USERS and N must be positive\n");
    return 2;
  }
  recd_config cfg;
  config_defaults(&cfg);
  snprintf(cfg.data, sizeof cfg.data, "%s", argv[1]);
  log_set_level(log_level_parse("warn"));
  char err[256];
  recd_engine *e;
  if (engine_open(&cfg, &e, err, sizeof err)) {
    fprintf(stderr, "rec_loop: %s\n", err);
    return 1;
  }
  engine_warm(e);
  sleep(3); /* the content memos are filled in the background after a start */
  uint64_t seed = 42;
  size_t items = 0;
  char uid[32];
  int64_t t0 = clock_mono_ns();
  for (long i = 0; i < iters; i++) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    snprintf(uid, sizeof uid, "user_%ld", 1 + (long)((seed >> 33) % (uint64_t)users));
    recd_rec_request rq = {.user_id = uid, .n = n};
    recd_rec_result r;
    engine_recommend(e, &rq, &r);
    items += r.count;
    engine_result_release(&r);
  }
  double us = (double)(clock_mono_ns() - t0) / 1e3 / (double)iters;
  printf("%ld recommendations, %.2f us each, %.2f items each\n", iters, us, (double)items / (double)iters);
  engine_free(e);
  return 0;
}
