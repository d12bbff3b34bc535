/* http_fuzz.c — libFuzzer driver for the HTTP/1.1 request parser
 * (src/http/request.c): http_head_parse, http_chunks_parse, http_query_parse.
 *
 * The input is a request as it comes off the socket: a head, then a body.
 * Every parse runs on an exactly-sized malloc'd copy, so ASan catches a read
 * past the bytes received. An input starting with byte 0x01 is blown up to
 * about 64 KiB (the head limit): a filler header line goes after the first
 * line of input[2..], sized so the whole is HTTP_MAX_HEAD + (int8_t)input[1]
 * bytes, to reach the 431 boundary in a few bytes of corpus.
 *
 * Properties:
 *  - head: the result is 0, a length <= size, or -400/-417/-431/-501/-505
 *    with h.error and h.field set (-431 only past 64 KiB). A complete head
 *    ends with "\n\n" or "\n\r\n" and is at most 64 KiB + the blank line;
 *    its target is NUL-terminated inside it, starts with '/' or is "*", holds
 *    no space or control byte; its Content-Type is NUL-terminated inside it,
 *    trimmed, free of control bytes; content_length is -1 or >= 0, never with
 *    chunked; expect_continue only for HTTP/1.1 with a body. The head alone
 *    (the bytes after it cut off) parses the same.
 *  - nothing is written into the buffer unless the head is complete, and then
 *    only the (at most two) NULs that end the target and the Content-Type;
 *  - prefixes: every proper prefix of a complete or incomplete head needs more
 *    bytes (0); a prefix of a refused one is 0 or the same status (431 and the
 *    status of the line crossing 64 KiB may differ). Checked on fresh copies
 *    (every prefix of a short head, a dozen of a long one) and, as conn.c does
 *    it, on one buffer parsed again as it grows, which must end the same as a
 *    fresh parse of the whole.
 *  - chunked: the bytes after the head (or the whole input) decoded in one
 *    call and one byte at a time (fresh copies) agree on the code, the bytes
 *    consumed and decoded, and the decoded bytes; out <= in <= size; -1 has
 *    the error set; 0 consumed everything; nothing decoded passes the limit.
 *  - query: the target's query (when the head is complete) and the whole
 *    input as a C string: at most cap pairs, non-empty keys, keys and values
 *    NUL-terminated inside the buffer, in order, and the same pairs (or the
 *    same refusal) as a slow reference decoder working on the original. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "http/request.h"
#include "http/route.h"

#define CHUNK_LIMIT 256 /* the decoded-size limit: small, so -2 is reached */
#define QUERY_CAP 8

static char *dup_exact(const uint8_t *data, size_t size) {
  char *b = malloc(size ? size : 1);
  if (!b) FUZZ_SETUP_FAIL("out of memory");
  if (size) memcpy(b, data, size);
  return b;
}

static int is_status(int r) { return r == -400 || r == -417 || r == -431 || r == -501 || r == -505; }

/* ---- the head ---- */

/* what one parse found, with the target and Content-Type as offsets */
typedef struct {
  int r, method, minor, keep_alive, chunked, expect_continue;
  int64_t content_length;
  ptrdiff_t target_at, ctype_at;
} head_sum;

static head_sum summarize(const char *buf, int r, const http_head *h) {
  head_sum s = {.r = r, .target_at = -1, .ctype_at = -1};
  if (r <= 0) return s; /* the fields are defined for a complete head only */
  s.method = h->method;
  s.minor = h->minor;
  s.keep_alive = h->keep_alive;
  s.chunked = h->chunked;
  s.expect_continue = h->expect_continue;
  s.content_length = h->content_length;
  s.target_at = h->target ? h->target - buf : -1;
  s.ctype_at = h->content_type ? h->content_type - buf : -1;
  return s;
}

static int same_head(const head_sum *a, const head_sum *b) {
  return a->r == b->r && a->method == b->method && a->minor == b->minor && a->keep_alive == b->keep_alive &&
         a->chunked == b->chunked && a->expect_continue == b->expect_continue &&
         a->content_length == b->content_length && a->target_at == b->target_at && a->ctype_at == b->ctype_at;
}

/* a NUL-terminated string starting at s inside [lo, hi)? its length, or -1 */
static ptrdiff_t str_in(const char *s, const char *lo, const char *hi) {
  if (s < lo || s >= hi) return -1;
  const char *z = memchr(s, 0, (size_t)(hi - s));
  return z ? z - s : -1;
}

/* the properties of one parse of data[0, size) in buf (a copy of it) */
static void check_head(const uint8_t *data, size_t size, const char *buf, int r, const http_head *h) {
  FUZZ_CHECK(r == 0 || (r > 0 && (size_t)r <= size) || is_status(r), "http_head_parse returned %d of %zu", r, size);
  if (r < 0) {
    FUZZ_CHECK(h->error && h->error[0], "%d without a reason", r);
    FUZZ_CHECK(
        h->field && (!strcmp(h->field, "request") || !strcmp(h->field, "version") || !strcmp(h->field, "headers")),
        "%d (%s) blames field %s", r, h->error, h->field ? h->field : "(null)");
  } else FUZZ_CHECK(h->error == NULL, "%d with an error: %s", r, h->error);
  if (r == -431) FUZZ_CHECK(size > HTTP_MAX_HEAD, "431 for %zu bytes", size);

  /* what was written into the buffer */
  size_t changed = 0;
  for (size_t i = 0; i < size; i++) {
    if (buf[i] == (char)data[i]) continue;
    changed++;
    FUZZ_CHECK(r > 0 && i < (size_t)r && buf[i] == 0, "byte %zu changed to 0x%02x (result %d)", i,
               (unsigned char)buf[i], r);
  }
  FUZZ_CHECK(changed <= 2, "%zu bytes changed", changed);
  if (r <= 0) return;

  size_t n = (size_t)r;
  FUZZ_CHECK(n <= HTTP_MAX_HEAD + 2, "a head of %zu bytes", n);
  FUZZ_CHECK(
      n >= 2 && data[n - 1] == '\n' && (data[n - 2] == '\n' || (n >= 3 && data[n - 2] == '\r' && data[n - 3] == '\n')),
      "the head does not end with a blank line");
  /* the target */
  ptrdiff_t tl = h->target ? str_in(h->target, buf, buf + n) : -1;
  FUZZ_CHECK(tl > 0, "the target is not a string inside the head");
  FUZZ_CHECK(h->target[0] == '/' || !strcmp(h->target, "*"), "target '%s'", h->target);
  for (ptrdiff_t i = 0; i < tl; i++)
    FUZZ_CHECK((unsigned char)h->target[i] > 0x20 && h->target[i] != 0x7f, "byte 0x%02x in the target",
               (unsigned char)h->target[i]);
  /* the Content-Type */
  if (h->content_type) {
    ptrdiff_t cl = str_in(h->content_type, buf, buf + n);
    FUZZ_CHECK(cl >= 0, "the Content-Type is not a string inside the head");
    for (ptrdiff_t i = 0; i < cl; i++)
      FUZZ_CHECK((unsigned char)h->content_type[i] >= 0x20 || h->content_type[i] == '\t',
                 "byte 0x%02x in the Content-Type", (unsigned char)h->content_type[i]);
    if (cl) {
      char first = h->content_type[0], last = h->content_type[cl - 1];
      FUZZ_CHECK(first != ' ' && first != '\t' && last != ' ' && last != '\t', "Content-Type '%s' not trimmed",
                 h->content_type);
    }
  }
  /* the framing */
  FUZZ_CHECK(h->content_length >= -1, "content_length %lld", (long long)h->content_length);
  FUZZ_CHECK(!(h->chunked && h->content_length >= 0), "chunked with a Content-Length");
  FUZZ_CHECK(h->chunked == 0 || h->chunked == 1, "chunked %d", h->chunked);
  FUZZ_CHECK(h->minor == 0 || h->minor == 1, "minor %d", h->minor);
  FUZZ_CHECK(h->keep_alive == 0 || h->keep_alive == 1, "keep_alive %d", h->keep_alive);
  FUZZ_CHECK(!h->expect_continue || (h->minor == 1 && (h->content_length > 0 || h->chunked)),
             "expect_continue for HTTP/1.%d, Content-Length %lld, chunked %d", h->minor, (long long)h->content_length,
             h->chunked);
  int m = h->method;
  FUZZ_CHECK(m == 0 || m == M_GET || m == M_POST || m == M_PUT || m == M_DELETE || m == M_HEAD, "method %d", m);
}

/* may a prefix give `p` when the whole gives `r`? */
static int prefix_ok(int p, int r) {
  if (p == 0) return 1;
  if (r < 0 && p == r) return 1;
  /* refused either way, but past 64 KiB: 431, or what is wrong with the line
   * crossing it (or with a request line that never ends) */
  return r < 0 && p < 0 && (r == -431 || p == -431);
}

static int cmp_size(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return x < y ? -1 : x > y;
}

/* returns the result for the whole input (and leaves its parse in *h, on a
 * copy the caller frees: *keep) */
static int fuzz_head(const uint8_t *data, size_t size, http_head *h, char **keep) {
  char *buf = dup_exact(data, size);
  int r = http_head_parse(buf, size, h);
  check_head(data, size, buf, r, h);
  head_sum whole = summarize(buf, r, h);

  if (r > 0) { /* the head alone */
    http_head h2;
    char *b2 = dup_exact(data, (size_t)r);
    int r2 = http_head_parse(b2, (size_t)r, &h2);
    head_sum s2 = summarize(b2, r2, &h2);
    FUZZ_CHECK(same_head(&s2, &whole), "the head alone: %d, with what follows: %d", r2, r);
    FUZZ_CHECK(!strcmp(h2.target, h->target), "target '%s' vs '%s'", h2.target, h->target);
    free(b2);
  }

  /* the prefixes to try: all of a short head; else the ends of the first few
   * lines (just before and after each LF), the middle, the last bytes */
  size_t full = r > 0 ? (size_t)r : size;
  size_t ks[80], nk = 0;
  if (full <= 64) {
    for (size_t k = 0; k < full; k++) ks[nk++] = k;
  } else {
    const uint8_t *q = data;
    for (int lines = 0; lines < 6 && (q = memchr(q, '\n', full - (size_t)(q - data))); lines++, q++) {
      ks[nk++] = (size_t)(q - data);
      if ((size_t)(q - data) + 1 < full) ks[nk++] = (size_t)(q - data) + 1;
    }
    ks[nk++] = full / 2;
    ks[nk++] = full - 1;
    ks[nk++] = full - 2;
    if (full > HTTP_MAX_HEAD) ks[nk++] = HTTP_MAX_HEAD;
    if (full > HTTP_MAX_HEAD + 1) ks[nk++] = HTTP_MAX_HEAD + 1;
  }
  for (size_t i = 0; i < nk; i++) {
    size_t k = ks[i];
    http_head hp;
    char *bp = dup_exact(data, k);
    int p = http_head_parse(bp, k, &hp);
    check_head(data, k, bp, p, &hp);
    FUZZ_CHECK(prefix_ok(p, r), "prefix %zu of %zu: %d (%s); the whole: %d", k, size, p, hp.error ? hp.error : "", r);
    free(bp);
  }

  /* as conn.c does: one buffer, parsed again as more bytes come */
  qsort(ks, nk, sizeof ks[0], cmp_size);
  char *g = dup_exact(data, size);
  http_head hg;
  int rg = 0;
  for (size_t i = 0; i <= nk && rg == 0; i++) {
    size_t k = i < nk ? ks[i] : size;
    rg = http_head_parse(g, k, &hg);
    if (k < size) FUZZ_CHECK(prefix_ok(rg, r), "growing buffer at %zu of %zu: %d; the whole: %d", k, size, rg, r);
    if (rg <= 0) FUZZ_CHECK(!memcmp(g, data, size), "growing buffer at %zu: written into, result %d", k, rg);
  }
  if (rg > 0) {
    head_sum sg = summarize(g, rg, &hg);
    FUZZ_CHECK(same_head(&sg, &whole), "growing buffer: %d, a fresh parse: %d", rg, r);
    FUZZ_CHECK(!strcmp(hg.target, h->target), "growing buffer: target '%s' vs '%s'", hg.target, h->target);
    FUZZ_CHECK(!hg.content_type == !h->content_type && (!hg.content_type || !strcmp(hg.content_type, h->content_type)),
               "growing buffer: another Content-Type");
  } else {
    FUZZ_CHECK(rg == r || (rg < 0 && (rg == -431 || r == -431)), "growing buffer: %d, a fresh parse: %d", rg, r);
  }
  free(g);
  *keep = buf;
  return r;
}

/* ---- chunked bodies ---- */

static void fuzz_chunks(const uint8_t *raw, size_t n) {
  char *a = dup_exact(raw, n), *b = dup_exact(raw, n);
  const char *ea = NULL, *eb = NULL;
  http_chunks ca = {0}, cb = {0};
  int ra = http_chunks_parse(&ca, a, n, CHUNK_LIMIT, &ea);
  FUZZ_CHECK(ra >= -2 && ra <= 1, "http_chunks_parse returned %d", ra);
  FUZZ_CHECK(ca.out <= ca.in && ca.in <= n, "out %zu, in %zu, of %zu", ca.out, ca.in, n);
  FUZZ_CHECK(ca.out <= CHUNK_LIMIT, "%zu bytes decoded, over the limit", ca.out);
  if (ra == -1) FUZZ_CHECK(ea && ea[0], "-1 without a reason");
  if (ra == 0) FUZZ_CHECK(ca.in == n, "needs more with %zu of %zu bytes consumed", ca.in, n);
  if (ra == 1) FUZZ_CHECK(ca.in > 0 && raw[ca.in - 1] == '\n', "the body does not end with a LF");

  int rb = 0;
  for (size_t k = 0; k <= n && rb == 0; k++) {
    rb = http_chunks_parse(&cb, b, k, CHUNK_LIMIT, &eb);
    FUZZ_CHECK(cb.out <= cb.in && cb.in <= k, "byte at a time, at %zu: out %zu, in %zu", k, cb.out, cb.in);
  }
  FUZZ_CHECK(ra == rb && ca.in == cb.in && ca.out == cb.out,
             "whole: %d in %zu out %zu; byte at a time: %d in %zu out %zu", ra, ca.in, ca.out, rb, cb.in, cb.out);
  FUZZ_CHECK(!memcmp(a, b, ca.out), "whole and byte at a time decode different bytes");
  free(a);
  free(b);
}

/* ---- query strings ---- */

static int hexdig(char c) {
  return c >= '0' && c <= '9'   ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                : -1;
}

/* decodes [s, e) into out (NUL-terminated); 0, or -1 for an encoded NUL */
static int ref_decode(const char *s, const char *e, char *out) {
  for (; s < e; s++) {
    if (*s == '+') *out++ = ' ';
    else if (*s == '%' && e - s > 2 && hexdig(s[1]) >= 0 && hexdig(s[2]) >= 0) {
      int v = hexdig(s[1]) << 4 | hexdig(s[2]);
      if (!v) return -1;
      *out++ = (char)v;
      s += 2;
    } else *out++ = *s;
  }
  *out = 0;
  return 0;
}

static void fuzz_query(const char *s, size_t len) {
  char *qs = malloc(len + 1), *orig = malloc(len + 1), *key = malloc(len + 1), *val = malloc(len + 1);
  if (!qs || !orig || !key || !val) FUZZ_SETUP_FAIL("out of memory");
  memcpy(qs, s, len);
  qs[len] = 0;
  memcpy(orig, qs, len + 1);
  len = strlen(qs);
  http_param p[QUERY_CAP];
  const char *err = NULL;
  int n = http_query_parse(qs, p, QUERY_CAP, &err);
  FUZZ_CHECK(n >= -1 && n <= QUERY_CAP, "http_query_parse returned %d", n);
  if (n < 0) FUZZ_CHECK(err && err[0], "-1 without a reason");
  const char *after = qs; /* the pairs are in order and do not overlap */
  for (int i = 0; i < n; i++) {
    ptrdiff_t kl = str_in(p[i].key, qs, qs + len + 1), vl = str_in(p[i].value, qs, qs + len + 1);
    FUZZ_CHECK(kl > 0 && vl >= 0, "pair %d: key or value not a string in the buffer, or an empty key", i);
    FUZZ_CHECK(p[i].key >= after && p[i].value > p[i].key + kl, "pair %d overlaps another", i);
    after = p[i].value + vl + 1;
  }

  /* the reference: split the original, pair by pair */
  int want = 0;
  const char *q = orig;
  for (;;) {
    const char *e = strchr(q, '&');
    if (!e) e = q + strlen(q);
    if (e > q) {
      const char *eq = memchr(q, '=', (size_t)(e - q));
      if (!eq || eq == q || want == QUERY_CAP || ref_decode(q, eq, key) || ref_decode(eq + 1, e, val)) {
        want = -1;
        break;
      }
      if (n > want)
        FUZZ_CHECK(!strcmp(p[want].key, key) && !strcmp(p[want].value, val), "pair %d: '%s'='%s', want '%s'='%s'", want,
                   p[want].key, p[want].value, key, val);
      want++;
    }
    if (!*e) break;
    q = e + 1;
  }
  FUZZ_CHECK(n == want, "%d pairs, the reference: %d", n, want);
  free(qs);
  free(orig);
  free(key);
  free(val);
}

/* ---- the input ---- */

/* 0x01, delta, rest: rest with a filler header after its first line, HTTP_MAX_HEAD + delta bytes in all */
static uint8_t *blow_up(const uint8_t *data, size_t size, size_t *out_size) {
  const uint8_t *rest = data + 2;
  size_t rl = size - 2;
  long want = (long)HTTP_MAX_HEAD + (int8_t)data[1];
  size_t pad = want - (long)rl >= 4 ? (size_t)(want - (long)rl) : 4; /* "X:" ... "\r\n" */
  const uint8_t *lf = memchr(rest, '\n', rl);
  size_t at = lf ? (size_t)(lf - rest) + 1 : 0;
  uint8_t *big = malloc(rl + pad);
  if (!big) FUZZ_SETUP_FAIL("out of memory");
  memcpy(big, rest, at);
  memcpy(big + at, "X:", 2);
  memset(big + at + 2, 'v', pad - 4);
  memcpy(big + at + pad - 2, "\r\n", 2);
  memcpy(big + at + pad, rest + at, rl - at);
  *out_size = rl + pad;
  return big;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *big = NULL;
  if (size >= 2 && data[0] == 0x01) {
    big = blow_up(data, size, &size);
    data = big;
  }
  http_head h;
  char *buf = NULL;
  int r = fuzz_head(data, size, &h, &buf);

  const uint8_t *body = r > 0 ? data + r : data;
  fuzz_chunks(body, size - (size_t)(body - data));

  if (r > 0) {
    const char *qm = strchr(h.target, '?');
    if (qm) fuzz_query(qm + 1, strlen(qm + 1));
  }
  if (!big) fuzz_query((const char *)data, size);
  free(buf);
  free(big);
  return 0;
}
