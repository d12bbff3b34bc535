#include "util/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "util/clock.h"

static atomic_int g_level = LOG_INFO; /* process-wide: the only global, by design */

void log_set_level(int level) { atomic_store(&g_level, level); }

int log_level_parse(const char *s) {
  static const char *names[] = {"error", "warn", "info", "debug"};
  for (int i = 0; i < 4; i++)
    if (!strcmp(s, names[i])) return i;
  return -1;
}

void log_msg(int level, const char *fmt, ...) {
  if (level > atomic_load(&g_level)) return;
  static const char *tag[] = {"ERROR", "WARN", "INFO", "DEBUG"};
  char line[2048], ts[32];
  clock_format_rfc3339(clock_now_ms(), ts, sizeof ts);
  int n = snprintf(line, sizeof line, "%s %-5s ", ts, tag[level]);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  va_end(ap);
  fprintf(stderr, "%s\n", line);
}
