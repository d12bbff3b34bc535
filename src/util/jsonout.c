/* jsonout.c — see jsonout.h. The number formatting avoids snprintf on the hot
 * path (a list has a score per item): "%.6g" parses its format and converts
 * through glibc's generic float printing on every call. */
#include "util/jsonout.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/mem.h"

void jsonout_init(jsonout *j) {
  j->p = j->inl;
  j->len = 0;
  j->cap = sizeof j->inl;
}

void jsonout_release(jsonout *j) {
  if (j->p != j->inl) free(j->p);
  jsonout_init(j);
}

void jsonout__grow(jsonout *j, size_t n) {
  size_t cap = j->cap * 2;
  while (cap < j->len + n) cap *= 2;
  if (j->p == j->inl) {
    j->p = xmalloc(cap);
    memcpy(j->p, j->inl, j->len);
  } else {
    j->p = xrealloc(j->p, cap);
  }
  j->cap = cap;
}

/* the length of the UTF-8 sequence at p (lead byte >= 0x80), 0 if it is not
 * valid (overlong, a surrogate, above U+10FFFF, cut short: the NUL that ends
 * the string is no continuation byte) */
static int utf8_seq(const unsigned char *p) {
  unsigned c = *p;
  int len;
  uint32_t cp;
  if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
  else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
  else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
  else return 0;
  for (int i = 1; i < len; i++) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    cp = cp << 6 | (p[i] & 0x3F);
  }
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000))
    return 0;
  return len;
}

#define ONES 0x0101010101010101ULL
#define HIGH 0x8080808080808080ULL

/* 1 when none of the 8 bytes needs a look: no control character, '"', '\\'
 * or byte >= 0x80 (the bit tricks flag a byte below 0x20 and a zero byte of
 * w ^ '"' and w ^ '\\'; "any" is exact, which is all that is asked) */
static inline int plain8(const char *s) {
  uint64_t w;
  memcpy(&w, s, 8);
  uint64_t q = w ^ (ONES * '"'), b = w ^ (ONES * '\\');
  return ((w | ((w - ONES * 0x20) & ~w) | ((q - ONES) & ~q) | ((b - ONES) & ~b)) & HIGH) == 0;
}

/* Runs of plain bytes are found 8 at a time and copied whole; a byte >= 0x80
 * must begin a valid UTF-8 sequence, else nothing is written. */
int jsonout_str(jsonout *j, const char *s) {
  static const char hex[] = "0123456789ABCDEF";
  size_t n = strlen(s), start = j->len;
  jsonout_raw(j, "\"", 1);
  size_t i = 0, run = 0; /* s[run..i) is plain and not yet copied */
  while (i < n) {
    if (i + 8 <= n && plain8(s + i)) {
      i += 8;
      continue;
    }
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x80) {
      int l = utf8_seq((const unsigned char *)s + i);
      if (!l) {
        j->len = start;
        return -1;
      }
      i += (size_t)l;
      continue;
    }
    if (c >= 0x20 && c != '"' && c != '\\') {
      i++;
      continue;
    }
    jsonout_raw(j, s + run, i - run);
    char esc[6] = {'\\', 0};
    size_t el = 2;
    switch (c) {
      case '"': esc[1] = '"'; break;
      case '\\': esc[1] = '\\'; break;
      case '\b': esc[1] = 'b'; break;
      case '\f': esc[1] = 'f'; break;
      case '\n': esc[1] = 'n'; break;
      case '\r': esc[1] = 'r'; break;
      case '\t': esc[1] = 't'; break;
      default:
        memcpy(esc + 1, "u00", 3);
        esc[4] = hex[c >> 4];
        esc[5] = hex[c & 15];
        el = 6;
    }
    jsonout_raw(j, esc, el);
    run = ++i;
  }
  jsonout_raw(j, s + run, n - run);
  jsonout_raw(j, "\"", 1);
  return 0;
}

char *jsonout_digits(char *end, unsigned long long v) {
  do *--end = (char)('0' + v % 10);
  while (v /= 10);
  return end;
}

void jsonout_u64(jsonout *j, unsigned long long v) {
  char buf[24], *d = jsonout_digits(buf + sizeof buf, v);
  jsonout_raw(j, d, (size_t)(buf + sizeof buf - d));
}

/* snprintf "%.<precision>g" and jansson's ".0" for integral-looking text */
void jsonout_real_g(jsonout *j, double v, int precision) {
  char buf[64];
  int n = snprintf(buf, sizeof buf, "%.*g", precision, v);
  if (n < 0 || n >= (int)sizeof buf) n = 0;
  buf[n] = 0;
  char *ex = strchr(buf, 'e'); /* jansson: "1e+06" -> "1e6", "1e-05" -> "1e-5" */
  if (ex) {
    char *from = ex + 1, *to = ex + 1;
    if (*from == '-') from++, to++;
    else if (*from == '+') from++;
    while (*from == '0' && from[1]) from++;
    memmove(to, from, strlen(from) + 1);
    n = (int)strlen(buf);
  }
  jsonout_raw(j, buf, (size_t)n);
  if (!memchr(buf, '.', (size_t)n) && !memchr(buf, 'e', (size_t)n)) jsonout_raw(j, ".0", 2);
}

/* "%.6g" for values that are exactly floats, in [1e-4, 1e6): v * 10^k is then
 * exact in long double (24-bit mantissa times 5^k, k <= 12, fits in 64 bits), so
 * rounding it to an integer rounds exactly as printf does (to nearest, ties
 * to even, in the default rounding mode). */
void jsonout_real(jsonout *j, double v) {
  static const long double p10[] = {1e0L, 1e1L, 1e2L, 1e3L, 1e4L, 1e5L, 1e6L,
                                    1e7L, 1e8L, 1e9L, 1e10L, 1e11L, 1e12L};
  if (v == 0 && !signbit(v)) {
    jsonout_raw(j, "0.0", 3);
    return;
  }
  double a = fabs(v);
  if (!(a >= 1e-4 && a < 1e6) || (double)(float)a != a) {
    jsonout_real_g(j, v, 6);
    return;
  }
  int e = (int)floor(log10(a));
  int k = 5 - e;
  if (k < 0 || k > 12) {
    jsonout_real_g(j, v, 6);
    return;
  }
  long double x = (long double)a * p10[k];
  if (x < 1e5L && k < 12) x = (long double)a * p10[++k], e--;
  else if (x >= 1e6L && k > 0) x = (long double)a * p10[--k], e++;
  if (x < 1e5L || x >= 1e6L) {
    jsonout_real_g(j, v, 6);
    return;
  }
  uint32_t d = (uint32_t)lrintl(x); /* nearest, ties to even, like nearbyintl without its fenv save and restore */
  if (d == 1000000) d = 100000, e++;
  if (e >= 6 || e < -4) {
    jsonout_real_g(j, v, 6);
    return;
  }
  char dig[6], buf[24];
  for (int i = 5; i >= 0; i--) dig[i] = (char)('0' + d % 10), d /= 10;
  int nd = 6;
  while (nd > 1 && dig[nd - 1] == '0') nd--; /* %g drops trailing zeros */
  size_t n = 0;
  if (v < 0) buf[n++] = '-';
  if (e >= 0) {
    for (int i = 0; i <= e; i++) buf[n++] = dig[i];
    if (nd > e + 1) {
      buf[n++] = '.';
      for (int i = e + 1; i < nd; i++) buf[n++] = dig[i];
    } else {
      buf[n++] = '.'; /* jansson: integral-looking text gets ".0" */
      buf[n++] = '0';
    }
  } else {
    buf[n++] = '0';
    buf[n++] = '.';
    for (int i = 0; i < -e - 1; i++) buf[n++] = '0';
    for (int i = 0; i < nd; i++) buf[n++] = dig[i];
  }
  jsonout_raw(j, buf, n);
}
