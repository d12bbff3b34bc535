/* fuzz_util.h — helpers shared by the fuzz drivers (fuzz-only code; nothing in
 * src/ includes this).
 *
 *  - fuzz_tmpdir(): one private temp directory per driver per process, made
 *    with mkdtemp under $TMPDIR (default /tmp) and removed at exit.
 *  - fuzz_engine(): one engine per driver per process, opened lazily on a data
 *    dir inside fuzz_tmpdir() with fuzz_engine_config() (config_defaults, fsync off, so
 *    an import run does not wait on the disk) and freed at exit. Drivers that only need the
 *    configuration (engine_parse_event) share it with drivers that write.
 *  - fuzz_write_file(): put the input into a file in fuzz_tmpdir().
 *
 * Everything here is static to the including driver: in the replay binary each
 * driver has its own directory and engine. Not thread-safe (libFuzzer and the
 * replay runner call drivers from one thread). Failures to set up the
 * environment abort: they are not findings, so the message says so. */
#ifndef RECD_FUZZ_UTIL_H
#define RECD_FUZZ_UTIL_H

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/config.h"
#include "engine/engine.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_SETUP_FAIL(...)                                          \
  do {                                                                \
    fprintf(stderr, "fuzz setup failed (not a finding): " __VA_ARGS__); \
    fputc('\n', stderr);                                              \
    abort();                                                          \
  } while (0)

static char fuzz__dir[256];
static recd_engine *fuzz__engine;

static int fuzz__rm(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  remove(path);
  return 0;
}

static void fuzz__cleanup(void) {
  if (fuzz__engine) engine_free(fuzz__engine);
  fuzz__engine = NULL;
  if (fuzz__dir[0]) nftw(fuzz__dir, fuzz__rm, 16, FTW_DEPTH | FTW_PHYS);
  fuzz__dir[0] = 0;
}

static __attribute__((unused)) const char *fuzz_tmpdir(void) {
  if (fuzz__dir[0]) return fuzz__dir;
  const char *base = getenv("TMPDIR");
  snprintf(fuzz__dir, sizeof fuzz__dir, "%s/recd-fuzz-XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(fuzz__dir)) FUZZ_SETUP_FAIL("mkdtemp %s", fuzz__dir);
  atexit(fuzz__cleanup);
  return fuzz__dir;
}

/* the drivers' engine configuration: defaults, fsync off, data in fuzz_tmpdir()/dir */
static __attribute__((unused)) void fuzz_engine_config(recd_config *cfg, const char *dir) {
  char err[1024];
  log_set_level(LOG_ERROR);
  config_defaults(cfg);
  snprintf(cfg->data, sizeof cfg->data, "%s/%s", fuzz_tmpdir(), dir);
  if (config_set(cfg, "fsync", "off", err, sizeof err) || config_finish(cfg, err, sizeof err))
    FUZZ_SETUP_FAIL("config: %s", err);
}

static __attribute__((unused)) recd_engine *fuzz_engine(void) {
  if (fuzz__engine) return fuzz__engine;
  recd_config cfg;
  char err[1024];
  fuzz_engine_config(&cfg, "data");
  if (engine_open(&cfg, &fuzz__engine, err, sizeof err)) FUZZ_SETUP_FAIL("engine_open: %s", err);
  return fuzz__engine;
}

/* Write data to fuzz_tmpdir()/name (replacing it); returns the path (static buffer). */
static __attribute__((unused)) const char *fuzz_write_file(const char *name, const uint8_t *data, size_t size) {
  static char path[600];
  snprintf(path, sizeof path, "%s/%s", fuzz_tmpdir(), name);
  FILE *f = fopen(path, "wb");
  if (!f) FUZZ_SETUP_FAIL("cannot write %s", path);
  if (size && fwrite(data, 1, size, f) != size) FUZZ_SETUP_FAIL("short write to %s", path);
  if (fclose(f)) FUZZ_SETUP_FAIL("cannot close %s", path);
  return path;
}

/* A property the code must keep: report and abort, so libFuzzer records the input. */
#define FUZZ_CHECK(cond, ...)                                                     \
  do {                                                                            \
    if (!(cond)) {                                                                \
      fprintf(stderr, "fuzz check failed at %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                               \
      fputc('\n', stderr);                                                        \
      abort();                                                                    \
    }                                                                             \
  } while (0)

#endif
