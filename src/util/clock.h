/* clock.h — time in milliseconds since the Unix epoch, and RFC 3339.
 * Thread-safe. */
#ifndef RECD_UTIL_CLOCK_H
#define RECD_UTIL_CLOCK_H

#include <stddef.h>
#include <stdint.h>

int64_t clock_now_ms(void);        /* wall clock */
int64_t clock_mono_ns(void);       /* monotonic, for latency */

/* Parse RFC 3339 ("2024-05-01T12:00:00Z", "...T12:00:00.250+02:00"; a space
 * may stand for 'T'; lowercase t/z accepted). 0 or RECD_EPARSE. */
int clock_parse_rfc3339(const char *s, size_t len, int64_t *out_ms);
/* Format as "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf (>= 25 bytes). */
void clock_format_rfc3339(int64_t ms, char *buf, size_t buflen);

/* Format seconds since the epoch as an HTTP date (RFC 7231 IMF-fixdate,
 * "Sun, 06 Nov 1994 08:49:37 GMT") into buf (>= 30 bytes). */
void clock_format_http(int64_t secs, char *buf, size_t buflen);

/* Parse a duration like "7d", "12h", "30m", "45s", "2w" into ms. */
int clock_parse_duration(const char *s, int64_t *out_ms);

#endif
