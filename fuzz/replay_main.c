/* replay_main.c — runs the checked-in fuzz corpora through the fuzz drivers
 * without libFuzzer, as a regression test (SQLite's fuzzcheck, h2o's fuzz/).
 *
 *   fuzz_replay CORPUS_ROOT            every file of CORPUS_ROOT/<driver>/ through
 *                                      that driver; every driver must have a
 *                                      directory and every directory a driver
 *   fuzz_replay -d DRIVER FILE...      the given files through one driver
 *                                      (to reproduce a libFuzzer finding in the
 *                                      gcc/ASan build)
 *
 * The drivers all define LLVMFuzzerTestOneInput; for this binary each is
 * compiled with -DLLVMFuzzerTestOneInput=fuzz_<name> (see the Makefile), so they
 * link side by side. A driver that finds a problem aborts (FUZZ_CHECK) or is
 * stopped by a sanitizer, which ends this process with a non-zero status; a
 * signal handler then names the file that was running. Prints
 * "fuzz replay: N files, 0 crashes" and exits 0 otherwise. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fuzz_route(const uint8_t *data, size_t size);
int fuzz_event(const uint8_t *data, size_t size);
int fuzz_rfc3339(const uint8_t *data, size_t size);
int fuzz_config(const uint8_t *data, size_t size);
int fuzz_model(const uint8_t *data, size_t size);
int fuzz_csv(const uint8_t *data, size_t size);
int fuzz_http(const uint8_t *data, size_t size);
int fuzz_evblock(const uint8_t *data, size_t size);
int fuzz_snapshot(const uint8_t *data, size_t size);

static const struct {
  const char *name;
  int (*fn)(const uint8_t *, size_t);
} drivers[] = {
    {"route_fuzz", fuzz_route},   {"event_fuzz", fuzz_event}, {"rfc3339_fuzz", fuzz_rfc3339},
    {"config_fuzz", fuzz_config}, {"csv_fuzz", fuzz_csv},     {"model_fuzz", fuzz_model},
    {"http_fuzz", fuzz_http},     {"evblock_fuzz", fuzz_evblock}, {"snapshot_fuzz", fuzz_snapshot},
};
#define NDRIVERS (sizeof drivers / sizeof drivers[0])

/* ---- naming the culprit when a driver dies ---- */

static char current[4200]; /* "DRIVER FILE" of the file being run */

static void say_current(void) {
  static const char pre[] = "fuzz replay: crashed in ", post[] = "\n";
  if (!current[0]) return;
  ssize_t w = write(2, pre, sizeof pre - 1);
  w = write(2, current, strlen(current));
  w = write(2, post, 1);
  (void)w;
}

static void on_signal(int sig) {
  say_current();
  signal(sig, SIG_DFL);
  raise(sig);
}

/* Under ASan/UBSan (SAN=1) make a report end in abort(), so the SIGABRT
 * handler can name the file; ASAN_OPTIONS/UBSAN_OPTIONS still override. */
const char *__asan_default_options(void);
const char *__ubsan_default_options(void);
const char *__asan_default_options(void) { return "abort_on_error=1"; }
const char *__ubsan_default_options(void) { return "abort_on_error=1:print_stacktrace=1"; }

static void install_handlers(void) {
  int sigs[] = {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* keep a handler a sanitizer installed (ASan reports SEGV itself) */
    if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL) sigaction(sigs[i], &sa, NULL);
  }
}

static int find_driver(const char *name) {
  for (size_t i = 0; i < NDRIVERS; i++)
    if (!strcmp(drivers[i].name, name)) return (int)i;
  return -1;
}

/* Run one file; 0, or -1 if it cannot be read. */
static int run_file(int d, const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "fuzz replay: %s: %s\n", path, strerror(errno));
    return -1;
  }
  size_t cap = 4096, n = 0;
  uint8_t *buf = malloc(cap);
  size_t r;
  while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
    n += r;
    if (n == cap) buf = realloc(buf, cap *= 2);
  }
  int bad = !buf || ferror(f);
  fclose(f);
  if (bad) {
    fprintf(stderr, "fuzz replay: %s: read error\n", path);
    free(buf);
    return -1;
  }
  /* an exact-size copy, as libFuzzer gives, so ASan catches reads past the end */
  uint8_t *data = malloc(n ? n : 1);
  memcpy(data, buf, n);
  free(buf);
  snprintf(current, sizeof current, "%s %s", drivers[d].name, path);
  drivers[d].fn(data, n);
  current[0] = 0;
  free(data);
  return 0;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Run every regular file of dir through driver d, in name order; the number of
 * files, or -1. */
static long run_dir(int d, const char *dir) {
  DIR *dp = opendir(dir);
  if (!dp) {
    fprintf(stderr, "fuzz replay: %s: %s\n", dir, strerror(errno));
    return -1;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *de;
  while ((de = readdir(dp))) {
    if (de->d_name[0] == '.') continue;
    if (n == cap) names = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof *names);
    names[n++] = strdup(de->d_name);
  }
  closedir(dp);
  if (n) qsort(names, n, sizeof *names, by_name);
  long count = 0;
  for (size_t i = 0; i < n; i++) {
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
      if (run_file(d, path)) count = -1;
      else if (count >= 0) count++;
    }
    free(names[i]);
  }
  free(names);
  return count;
}

static int usage(void) {
  fprintf(stderr, "usage: fuzz_replay CORPUS_ROOT | fuzz_replay -d DRIVER FILE...\ndrivers:");
  for (size_t i = 0; i < NDRIVERS; i++) fprintf(stderr, " %s", drivers[i].name);
  fprintf(stderr, "\n");
  return 2;
}

int main(int argc, char **argv) {
  long files = 0;
  int failed = 0;
  install_handlers();
  if (argc >= 2 && !strcmp(argv[1], "-d")) {
    if (argc < 4) return usage();
    int d = find_driver(argv[2]);
    if (d < 0) return usage();
    for (int i = 3; i < argc; i++) {
      if (run_file(d, argv[i])) failed = 1;
      else files++;
    }
  } else if (argc == 2) {
    const char *root = argv[1];
    /* every directory must belong to a driver: a corpus nobody replays is a bug */
    DIR *dp = opendir(root);
    if (!dp) {
      fprintf(stderr, "fuzz replay: %s: %s\n", root, strerror(errno));
      return 1;
    }
    struct dirent *de;
    while ((de = readdir(dp))) {
      char path[4096];
      struct stat st;
      if (de->d_name[0] == '.') continue;
      snprintf(path, sizeof path, "%s/%s", root, de->d_name);
      if (stat(path, &st) == 0 && S_ISDIR(st.st_mode) && find_driver(de->d_name) < 0) {
        fprintf(stderr, "fuzz replay: %s: no driver of that name\n", path);
        failed = 1;
      }
    }
    closedir(dp);
    for (size_t d = 0; d < NDRIVERS; d++) {
      char dir[2048];
      snprintf(dir, sizeof dir, "%s/%s", root, drivers[d].name);
      long n = run_dir((int)d, dir);
      if (n < 0) failed = 1;
      else if (n == 0) {
        fprintf(stderr, "fuzz replay: %s: empty corpus\n", dir);
        failed = 1;
      } else files += n;
    }
  } else {
    return usage();
  }
  if (failed) {
    fprintf(stderr, "fuzz replay: %ld files run, setup errors above\n", files);
    return 1;
  }
  printf("fuzz replay: %ld files, 0 crashes\n", files);
  return 0;
}
