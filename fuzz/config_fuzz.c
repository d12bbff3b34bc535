/* config_fuzz.c — libFuzzer driver for the config file parser (src/engine/config.c).
 *
 * The input is written to a temp file and loaded as `recd --config FILE` would:
 * config_defaults, then config_load with that argv. Errors are expected; a
 * crash or sanitizer report is not. On an error the message must be set.
 *
 * On success the effective configuration is printed (config_print, minus the
 * `config = FILE` line, which a config file may not contain), the printout is
 * loaded again, and it must be accepted and print the same: --print-config
 * output is a config file that means the same configuration.
 * Known exception, skipped: config_print writes string values unquoted, so a
 * value that needed quotes in the file (`listen = " a "`, `listen = ""a""`:
 * leading or trailing white space, or surrounding quotes) loses them when the
 * printout is loaded again (see fuzz/README.md). */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/config.h"
#include "fuzz_util.h"

/* config_print without the `config = ...` line; malloc'ed */
static char *print_config(const recd_config *c, size_t *len) {
  char *buf = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&buf, &n);
  if (!f) FUZZ_SETUP_FAIL("open_memstream");
  config_print(c, f);
  fclose(f);
  if (!strncmp(buf, "config = ", 9)) {
    char *nl = strchr(buf, '\n');
    size_t skip = nl ? (size_t)(nl - buf) + 1 : n;
    memmove(buf, buf + skip, n - skip + 1);
    n -= skip;
  }
  *len = n;
  return buf;
}

static int load(const char *path, recd_config *c, char *err, size_t errlen) {
  char a0[] = "recd", a1[] = "--config";
  char *a2 = strdup(path);
  char *argv[] = {a0, a1, a2, NULL};
  int argc = 3;
  config_defaults(c);
  err[0] = 0;
  int rc = config_load(c, &argc, argv, err, errlen);
  FUZZ_CHECK(argc >= 1 && argv[argc] == NULL, "argc %d", argc);
  free(a2);
  return rc;
}

/* a string value that config_print would have to quote to keep it */
static int needs_quotes(const recd_config *c) {
  const char *s[] = {c->listen, c->data, c->fsync, c->log_level, c->event_weights, c->event_types};
  for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
    size_t n = strlen(s[i]);
    if (n && (isspace((unsigned char)s[i][0]) || isspace((unsigned char)s[i][n - 1]))) return 1;
    if (n >= 2 && s[i][0] == '"' && s[i][n - 1] == '"') return 1;
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_write_file("recd.conf", data, size);
  static recd_config c, c2;
  char err[1024];
  if (load(path, &c, err, sizeof err)) {
    FUZZ_CHECK(err[0] != 0, "config_load failed without a message");
    return 0;
  }
  FUZZ_CHECK(c.ntypes >= 5 && c.ntypes <= RECD_MAX_TYPES, "ntypes %d", c.ntypes);
  if (needs_quotes(&c)) return 0;

  size_t n1, n2;
  char *p1 = print_config(&c, &n1);
  path = fuzz_write_file("printed.conf", (const uint8_t *)p1, n1);
  int rc = load(path, &c2, err, sizeof err);
  FUZZ_CHECK(rc == 0, "the printed configuration does not load: %s\n%s", err, p1);
  char *p2 = print_config(&c2, &n2);
  FUZZ_CHECK(n1 == n2 && !memcmp(p1, p2, n1), "the printed configuration loads differently:\n%s\n---\n%s", p1, p2);
  free(p1);
  free(p2);
  return 0;
}
