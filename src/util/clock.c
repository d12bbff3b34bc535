#include "util/clock.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/err.h"

int64_t clock_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm) */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = (unsigned)(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char *s, size_t len, size_t *pos, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (*pos >= len || !isdigit((unsigned char)s[*pos])) return -1;
    v = v * 10 + (s[(*pos)++] - '0');
  }
  *out = v;
  return 0;
}

static int expect(const char *s, size_t len, size_t *pos, char c) {
  if (*pos >= len || s[*pos] != c) return -1;
  (*pos)++;
  return 0;
}

int clock_parse_rfc3339(const char *s, size_t len, int64_t *out_ms) {
  size_t p = 0;
  int Y, M, D, h, mi, sec, ms = 0;
  if (digits(s, len, &p, 4, &Y) || expect(s, len, &p, '-') || digits(s, len, &p, 2, &M) ||
      expect(s, len, &p, '-') || digits(s, len, &p, 2, &D))
    return RECD_EPARSE;
  if (p >= len || (s[p] != 'T' && s[p] != 't' && s[p] != ' ')) return RECD_EPARSE;
  p++;
  if (digits(s, len, &p, 2, &h) || expect(s, len, &p, ':') || digits(s, len, &p, 2, &mi) ||
      expect(s, len, &p, ':') || digits(s, len, &p, 2, &sec))
    return RECD_EPARSE;
  if (p < len && s[p] == '.') {
    p++;
    int nd = 0;
    while (p < len && isdigit((unsigned char)s[p])) {
      if (nd < 3) ms = ms * 10 + (s[p] - '0');
      nd++;
      p++;
    }
    if (nd == 0) return RECD_EPARSE;
    for (; nd < 3; nd++) ms *= 10;
  }
  int off = 0;
  if (p < len && (s[p] == 'Z' || s[p] == 'z')) {
    p++;
  } else if (p < len && (s[p] == '+' || s[p] == '-')) {
    int sign = s[p] == '-' ? -1 : 1, oh, om;
    p++;
    if (digits(s, len, &p, 2, &oh) || expect(s, len, &p, ':') || digits(s, len, &p, 2, &om))
      return RECD_EPARSE;
    if (oh > 23 || om > 59) return RECD_EPARSE;
    off = sign * (oh * 60 + om);
  } else {
    return RECD_EPARSE;
  }
  if (p != len) return RECD_EPARSE;
  static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (M < 1 || M > 12 || D < 1 || D > mdays[M - 1] || h > 23 || mi > 59 || sec > 60)
    return RECD_EPARSE;
  int leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
  if (M == 2 && D == 29 && !leap) return RECD_EPARSE;
  if (sec == 60) sec = 59; /* leap second: clamp */
  int64_t days = days_from_civil(Y, (unsigned)M, (unsigned)D);
  int64_t t = ((days * 24 + h) * 60 + mi) * 60 + sec;
  t -= (int64_t)off * 60;
  *out_ms = t * 1000 + ms;
  return 0;
}

void clock_format_rfc3339(int64_t ms, char *buf, size_t buflen) {
  if (ms < -62167219200000LL) ms = -62167219200000LL; /* year 0; also keeps -ms defined */
  int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
  int msr = (int)(ms - secs * 1000);
  time_t t = (time_t)secs;
  struct tm tm;
  gmtime_r(&t, &tm);
  snprintf(buf, buflen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, msr);
}

void clock_format_http(int64_t secs, char *buf, size_t buflen) {
  time_t t = (time_t)secs;
  struct tm tm;
  gmtime_r(&t, &tm);
  if (!strftime(buf, buflen, "%a, %d %b %Y %H:%M:%S GMT", &tm) && buflen) buf[0] = 0; /* C locale: English names */
}

int clock_parse_duration(const char *s, int64_t *out_ms) {
  char *end;
  if (!s || !*s || !isdigit((unsigned char)*s)) return RECD_EPARSE;
  double v = strtod(s, &end);
  if (end == s || v < 0 || v > 1e7) return RECD_EPARSE;
  int64_t unit;
  if (!strcmp(end, "ms")) unit = 1;
  else if (!strcmp(end, "s")) unit = 1000;
  else if (!strcmp(end, "m")) unit = 60000;
  else if (!strcmp(end, "h")) unit = 3600000;
  else if (!strcmp(end, "d")) unit = 86400000;
  else if (!strcmp(end, "w")) unit = 7 * 86400000LL;
  else return RECD_EPARSE;
  *out_ms = (int64_t)(v * (double)unit);
  return 0;
}
