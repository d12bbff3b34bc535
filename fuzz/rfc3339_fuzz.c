/* rfc3339_fuzz.c — libFuzzer driver for the time parsers (src/util/clock.c).
 *
 * The input is handed, as is, to
 *  - clock_parse_rfc3339 (length-delimited: an exact-size copy, so a read past
 *    the end is caught by ASan). Round trip: a parsed time in years 0000..9999
 *    formats to 24 characters that parse back to the same millisecond;
 *  - clock_parse_duration (as a C string, cut at the first NUL): a parsed
 *    duration is not negative and at most 1e7 weeks;
 *  - clock_format_rfc3339 on the first 8 input bytes read as milliseconds,
 *    folded into years 0000..9999: the text parses back to the same value. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "util/clock.h"

/* 0000-01-01T00:00:00Z and 10000-01-01T00:00:00Z in ms */
#define MIN_MS (-62167219200000LL)
#define END_MS (253402300800000LL)

static void round_trip(int64_t ms) {
  char buf[64];
  clock_format_rfc3339(ms, buf, sizeof buf);
  FUZZ_CHECK(strlen(buf) == 24, "%lld formats as '%s'", (long long)ms, buf);
  int64_t back = 0;
  int rc = clock_parse_rfc3339(buf, strlen(buf), &back);
  FUZZ_CHECK(rc == 0 && back == ms, "%lld -> '%s' -> rc %d, %lld", (long long)ms, buf, rc, (long long)back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = malloc(size ? size : 1);
  if (!s) return 0;
  memcpy(s, data, size);
  int64_t ms;
  if (clock_parse_rfc3339(s, size, &ms) == 0 && ms >= MIN_MS && ms < END_MS) round_trip(ms);
  free(s);

  char *z = malloc(size + 1);
  if (!z) return 0;
  memcpy(z, data, size);
  z[size] = 0;
  int64_t d;
  if (clock_parse_duration(z, &d) == 0)
    FUZZ_CHECK(d >= 0 && d <= 10000000LL * 7 * 86400000, "'%s' parses to %lld ms", z, (long long)d);
  free(z);

  if (size >= 8) {
    uint64_t u;
    memcpy(&u, data, 8);
    round_trip(MIN_MS + (int64_t)(u % (uint64_t)(END_MS - MIN_MS)));
  }
  return 0;
}
