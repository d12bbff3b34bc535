/* jsonout.h — JSON text written straight into a byte buffer, without building
 * jansson objects first: for the hot responses (recommendation lists) and
 * the catalog's rows.
 *
 * The output is byte-for-byte what jansson's json_dumps(JSON_COMPACT |
 * JSON_REAL_PRECISION(6)) writes for the same values (a unit test checks
 * that): strings escape '"', '\\' and control characters (\b \f \n \r \t,
 * else \u00XX), everything else is copied as UTF-8; reals are "%.6g" with
 * ".0" appended when that looks like an integer.
 *
 * Strings must be valid UTF-8 (jansson refuses the others): jsonout_str
 * checks as it writes and refuses the others; fall back to jansson for them.
 *
 * Not thread-safe; a jsonout is used by one thread. */
#ifndef RECD_UTIL_JSONOUT_H
#define RECD_UTIL_JSONOUT_H

#include <stddef.h>
#include <string.h>

typedef struct {
  char *p;            /* the text so far (not NUL-terminated) */
  size_t len, cap;
  char inl[4096];     /* first 4 KiB live here; more is malloc'ed */
} jsonout;

void jsonout_init(jsonout *j);
/* frees what jsonout_init/growth allocated (not the struct) */
void jsonout_release(jsonout *j);
void jsonout__grow(jsonout *j, size_t n);
static inline void jsonout_raw(jsonout *j, const char *s, size_t n) {
  if (j->len + n > j->cap) jsonout__grow(j, n);
  memcpy(j->p + j->len, s, n);
  j->len += n;
}
/* a quoted, escaped string; -1, and nothing written, when s is not valid
 * UTF-8 (what jansson's json_string refuses) */
int jsonout_str(jsonout *j, const char *s);
/* an unsigned integer in decimal */
void jsonout_u64(jsonout *j, unsigned long long v);
/* v in decimal, written to end before `end` (room for 20 digits); returns the first digit */
char *jsonout_digits(char *end, unsigned long long v);
/* a real as jansson writes it with JSON_REAL_PRECISION(6) (finite values only) */
void jsonout_real(jsonout *j, double v);
/* a real as jansson writes it with JSON_REAL_PRECISION(precision), 17 being
 * its default (finite values only); by snprintf, so off the hot paths */
void jsonout_real_g(jsonout *j, double v, int precision);

static inline void jsonout_lit(jsonout *j, const char *s) { jsonout_raw(j, s, strlen(s)); }

#endif
