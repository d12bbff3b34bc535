/* request: the HTTP/1.1 request parser (src/http/request.c): the head (request
 * line and headers), a chunked body, a query string. Every input is parsed in
 * an exactly-sized malloc'd copy, so a sanitizer build catches reads past it. */
#include "http/request.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/route.h"
#include "unit.h"

/* the copy the last parse ran on (h's pointers point into it) */
static char *cur;

static void teardown(void) {
  free(cur);
  cur = NULL;
}

static char *copy(const char *s, size_t n) {
  free(cur);
  cur = malloc(n ? n : 1);
  ck_assert_ptr_nonnull(cur);
  memcpy(cur, s, n);
  return cur;
}

static int parse_n(const char *s, size_t n, http_head *h) { return http_head_parse(copy(s, n), n, h); }
static int parse(const char *s, http_head *h) { return parse_n(s, strlen(s), h); }

/* the status of a head that must be refused, with h.error set */
static int refused(const char *s) {
  http_head h;
  int r = parse(s, &h);
  if (r < 0) ck_assert_msg(h.error && h.error[0], "%d without a message for %s", r, s);
  return r;
}

/* a head that must be accepted whole */
static void accepted(const char *s, http_head *h) {
  int r = parse(s, h);
  ck_assert_msg(r == (int)strlen(s), "%d (%s) for %s", r, h->error ? h->error : "", s);
}

static int keep_alive(const char *s) {
  http_head h;
  accepted(s, &h);
  return h.keep_alive;
}

START_TEST(get_with_headers) {
  static const char req[] =
      "GET /api/v1/items?x=1&y=%20 HTTP/1.1\r\nHost: localhost:8080\r\n"
      "User-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n";
  http_head h;
  accepted(req, &h);
  ck_assert_int_eq(h.method, M_GET);
  ck_assert_str_eq(h.target, "/api/v1/items?x=1&y=%20");
  ck_assert_int_eq(h.minor, 1);
  ck_assert_int_eq(h.keep_alive, 1);
  ck_assert_int_eq(h.chunked, 0);
  ck_assert_int_eq(h.expect_continue, 0);
  ck_assert_int_eq(h.content_length, -1);
  ck_assert_ptr_null(h.content_type);
  ck_assert_ptr_null(h.error);
  ck_assert(h.target > cur && h.target < cur + sizeof req);

  /* what follows the head (a body, the next request) is not part of it */
  static const char two[] = "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
  ck_assert_int_eq(parse(two, &h), 19);
  ck_assert_str_eq(h.target, "/a");
  static const char post[] = "POST /api/v1/events HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}";
  ck_assert_int_eq(parse(post, &h), (int)sizeof post - 1 - 2);
  ck_assert_int_eq(h.method, M_POST);
  ck_assert_int_eq(h.content_length, 2);
}
END_TEST

START_TEST(keep_alive_rules) {
  ck_assert_int_eq(keep_alive("GET / HTTP/1.1\r\n\r\n"), 1);
  ck_assert_int_eq(keep_alive("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"), 0);
  ck_assert_int_eq(keep_alive("GET / HTTP/1.1\r\nConnection: CLOSE\r\n\r\n"), 0);
  ck_assert_int_eq(keep_alive("GET / HTTP/1.1\r\nConnection: Upgrade, close\r\n\r\n"), 0);
  ck_assert_int_eq(keep_alive("GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n"), 1);
  ck_assert_int_eq(keep_alive("GET / HTTP/1.1\r\nConnection: closed\r\n\r\n"), 1);
  ck_assert_int_eq(keep_alive("GET / HTTP/1.1\r\nConnection: Upgrade\r\n\r\n"), 1);
  ck_assert_int_eq(keep_alive("GET / HTTP/1.0\r\n\r\n"), 0);
  ck_assert_int_eq(keep_alive("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), 1);
  ck_assert_int_eq(keep_alive("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), 1);
  ck_assert_int_eq(keep_alive("GET / HTTP/1.0\r\nConnection: keep-alive, Upgrade\r\n\r\n"), 1);
  ck_assert_int_eq(keep_alive("GET / HTTP/1.0\r\nConnection:  Upgrade ,\tkeep-alive \r\n\r\n"), 1);
  ck_assert_int_eq(keep_alive("GET / HTTP/1.0\r\nConnection: keep-alives\r\n\r\n"), 0);
  ck_assert_int_eq(keep_alive("GET / HTTP/1.0\r\nConnection: close\r\n\r\n"), 0);
  /* close wins over keep-alive, in one header or two */
  ck_assert_int_eq(keep_alive("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"), 0);
  ck_assert_int_eq(keep_alive("GET / HTTP/1.1\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n"), 0);
  http_head h;
  accepted("GET / HTTP/1.0\r\n\r\n", &h);
  ck_assert_int_eq(h.minor, 0);
}
END_TEST

/* Every proper prefix of a valid head needs more bytes: a fresh copy of each,
 * and (as conn.c does) one buffer parsed again as it grows. The complete head
 * parses the same both ways. */
static void check_prefixes(const char *s) {
  size_t n = strlen(s);
  http_head h, whole;
  accepted(s, &whole);
  char *want_target = strdup(whole.target);
  char *want_ctype = whole.content_type ? strdup(whole.content_type) : NULL;
  for (size_t k = 0; k < n; k++) {
    int r = parse_n(s, k, &h);
    ck_assert_msg(r == 0, "prefix %zu of %s: %d (%s)", k, s, r, h.error ? h.error : "");
  }
  char *grow = malloc(n);
  ck_assert_ptr_nonnull(grow);
  memcpy(grow, s, n);
  for (size_t k = 0; k <= n; k++) {
    int r = http_head_parse(grow, k, &h);
    if (k < n) {
      ck_assert_msg(r == 0, "growing buffer at %zu of %s: %d (%s)", k, s, r, h.error ? h.error : "");
      continue;
    }
    ck_assert_msg(r == (int)n, "growing buffer, whole %s: %d (%s)", s, r, h.error ? h.error : "");
    ck_assert_str_eq(h.target, want_target);
    ck_assert_int_eq(h.method, whole.method);
    ck_assert_int_eq(h.keep_alive, whole.keep_alive);
    ck_assert_int_eq(h.content_length, whole.content_length);
    ck_assert_int_eq(h.chunked, whole.chunked);
    ck_assert_int_eq(h.expect_continue, whole.expect_continue);
    if (want_ctype) ck_assert_str_eq(h.content_type, want_ctype);
    else ck_assert_ptr_null(h.content_type);
  }
  free(grow);
  free(want_target);
  free(want_ctype);
}

START_TEST(incomplete_heads) {
  check_prefixes("GET /api/v1/health HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n");
  check_prefixes(
      "POST /api/v1/events HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
      "Content-Length: 17\r\nExpect: 100-continue\r\n\r\n");
  check_prefixes("POST /e HTTP/1.1\nTransfer-Encoding: chunked\nContent-Type: text/csv\n\n");
  check_prefixes("\r\n\r\nGET http://example.com/x?y=1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  check_prefixes("GET https://example.com:8443/ HTTP/1.1\r\n\r\n");
  check_prefixes("PUT /api/v1/items/a HTTP/1.1\r\nContent-Type: application/json \t\r\nContent-Length: 0\r\n\r\n");
  check_prefixes("OPTIONS * HTTP/1.1\r\n\r\n");
  check_prefixes("GET / HTTP/1.1\n\n");
}
END_TEST

START_TEST(line_endings) {
  http_head h;
  accepted("GET /x HTTP/1.1\nHost: a\nContent-Type: text/plain\n\n", &h);
  ck_assert_str_eq(h.target, "/x");
  ck_assert_str_eq(h.content_type, "text/plain");
  /* mixed */
  accepted("GET /x HTTP/1.1\r\nHost: a\nContent-Length: 3\r\n\n", &h);
  ck_assert_int_eq(h.content_length, 3);
  accepted("GET /x HTTP/1.1\n\r\n", &h);
  /* empty lines before the request line are skipped (RFC 9112 2.2) */
  accepted("\r\nGET /y HTTP/1.1\r\n\r\n", &h);
  ck_assert_str_eq(h.target, "/y");
  accepted("\n\n\r\n\r\nGET /y HTTP/1.1\r\n\r\n", &h);
  ck_assert_str_eq(h.target, "/y");
  ck_assert_int_eq(parse("\r\n\r\n", &h), 0);
  ck_assert_int_eq(parse("", &h), 0);
}
END_TEST

START_TEST(content_length) {
  http_head h;
  accepted("POST / HTTP/1.1\r\nContent-Length: 42\r\n\r\n", &h);
  ck_assert_int_eq(h.content_length, 42);
  accepted("POST / HTTP/1.1\r\ncontent-length:0\r\n\r\n", &h);
  ck_assert_int_eq(h.content_length, 0);
  accepted("POST / HTTP/1.1\r\nContent-Length: \t 7 \t\r\n\r\n", &h);
  ck_assert_int_eq(h.content_length, 7);
  accepted("POST / HTTP/1.1\r\nContent-Length: 0000000000000000000000000000012\r\n\r\n", &h);
  ck_assert_int_eq(h.content_length, 12);
  accepted("POST / HTTP/1.1\r\nContent-Length: 922337203685477579\r\n\r\n", &h);
  ck_assert_int_eq(h.content_length, INT64_C(922337203685477579));
  /* duplicates: equal is fine, differing is refused (request smuggling) */
  accepted("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", &h);
  ck_assert_int_eq(h.content_length, 5);
  ck_assert_int_eq(refused("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"), -400);
  accepted("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 05\r\n\r\n", &h); /* the same number */
  ck_assert_int_eq(h.content_length, 5);
  ck_assert_int_eq(refused("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n"), -400);
  ck_assert_int_eq(refused("POST / HTTP/1.1\r\nContent-Length: 5x\r\n\r\n"), -400);
  ck_assert_int_eq(refused("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), -400);
  ck_assert_int_eq(refused("POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n"), -400);
  ck_assert_int_eq(refused("POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n"), -400);
  ck_assert_int_eq(refused("POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n"), -400);
  ck_assert_int_eq(refused("POST / HTTP/1.1\r\nContent-Length:\r\n\r\n"), -400);
  ck_assert_int_eq(refused("POST / HTTP/1.1\r\nContent-Length:   \r\n\r\n"), -400);
  ck_assert_int_eq(refused("POST / HTTP/1.1\r\nContent-Length: 9223372036854775807\r\n\r\n"), -400);
  ck_assert_int_eq(refused("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"), -400);
  /* the error is found as soon as the line is in */
  ck_assert_int_eq(refused("POST / HTTP/1.1\r\nContent-Length: x\r\n"), -400);
}
END_TEST

START_TEST(transfer_encoding) {
  http_head h;
  accepted("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &h);
  ck_assert_int_eq(h.chunked, 1);
  ck_assert_int_eq(h.content_length, -1);
  accepted("POST / HTTP/1.1\r\ntransfer-encoding:  Chunked \r\n\r\n", &h);
  ck_assert_int_eq(h.chunked, 1);
  ck_assert_int_eq(refused("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"), -501);
  ck_assert_int_eq(refused("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), -501);
  ck_assert_int_eq(refused("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"), -501);
  ck_assert_int_eq(refused("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
                   -501);
  /* both framings: refused, in either order (request smuggling) */
  ck_assert_int_eq(refused("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"), -400);
  ck_assert_int_eq(refused("POST / HTTP/1.1\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n"), -400);
}
END_TEST

START_TEST(malformed_headers) {
  /* obsolete line folding */
  ck_assert_int_eq(refused("GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n"), -400);
  ck_assert_int_eq(refused("GET / HTTP/1.1\r\nX-A: a\r\n\tb\r\n\r\n"), -400);
  ck_assert_int_eq(refused("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), -400);
  /* header names are tokens, followed directly by the colon */
  ck_assert_int_eq(refused("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), -400);
  ck_assert_int_eq(refused("GET / HTTP/1.1\r\nBad Name: a\r\n\r\n"), -400);
  ck_assert_int_eq(refused("GET / HTTP/1.1\r\nX(y): a\r\n\r\n"), -400);
  ck_assert_int_eq(refused("GET / HTTP/1.1\r\n: a\r\n\r\n"), -400);
  ck_assert_int_eq(refused("GET / HTTP/1.1\r\nNoColon\r\n\r\n"), -400);
  ck_assert_int_eq(refused("GET / HTTP/1.1\r\nX-\xc3\xa9: a\r\n\r\n"), -400);
  http_head h;
  static const char nul_name[] = "GET / HTTP/1.1\r\nX\0Y: a\r\n\r\n";
  ck_assert_int_eq(parse_n(nul_name, sizeof nul_name - 1, &h), -400);
  accepted("GET / HTTP/1.1\r\nX!#$%&'*+-.^_`|~09az: a\r\n\r\n", &h);
  accepted("GET / HTTP/1.1\r\nX-Empty:\r\nX-Blank:  \r\n\r\n", &h);
  /* control characters in values (a tab is fine, so are bytes >= 0x80) */
  ck_assert_int_eq(refused("GET / HTTP/1.1\r\nX-A: a\x01z\r\n\r\n"), -400);
  ck_assert_int_eq(refused("GET / HTTP/1.1\r\nX-A: a\x1b[0m\r\n\r\n"), -400);
  ck_assert_int_eq(refused("GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n"), -400);
  ck_assert_int_eq(refused("GET / HTTP/1.1\r\nX-A: a\r\r\n\r\n"), -400);
  static const char nul_value[] = "GET / HTTP/1.1\r\nX-A: a\0b\r\n\r\n";
  ck_assert_int_eq(parse_n(nul_value, sizeof nul_value - 1, &h), -400);
  accepted("GET / HTTP/1.1\r\nX-A: a\tb \xc3\xa9\r\n\r\n", &h);
}
END_TEST

/* a request line, then filler headers up to `blank`, where the blank line
 * ("\r\n") starts: a head of blank + 2 bytes (NUL-terminated) */
static char *big_head(size_t blank) {
  char *s = malloc(blank + 3);
  ck_assert_ptr_nonnull(s);
  size_t o = (size_t)sprintf(s, "GET / HTTP/1.1\r\n");
  while (o < blank) {
    size_t line = blank - o; /* "X:vvv\r\n", 4 bytes at least */
    if (line > 1000) line = 1000;
    if (blank - o - line < 4 && blank - o - line > 0) line -= 4;
    ck_assert(line >= 4);
    memcpy(s + o, "X:", 2);
    memset(s + o + 2, 'v', line - 4);
    memcpy(s + o + line - 2, "\r\n", 2);
    o += line;
  }
  ck_assert_uint_eq(o, blank);
  memcpy(s + o, "\r\n", 3);
  return s;
}

START_TEST(size_limit) {
  http_head h;
  /* request line + headers up to 64 KiB: fine, and so is every prefix */
  char *s = big_head(HTTP_MAX_HEAD);
  size_t n = strlen(s);
  ck_assert_int_eq(parse(s, &h), (int)n);
  for (size_t k = n - 1200; k < n; k++) {
    int r = parse_n(s, k, &h);
    ck_assert_msg(r == 0, "prefix %zu of a %zu-byte head: %d (%s)", k, n, r, h.error ? h.error : "");
  }
  free(s);
  s = big_head(HTTP_MAX_HEAD - 1);
  ck_assert_int_eq(parse(s, &h), (int)strlen(s));
  free(s);
  /* one more byte: 431, whole or in part */
  s = big_head(HTTP_MAX_HEAD + 1);
  n = strlen(s);
  ck_assert_int_eq(refused(s), -431);
  ck_assert_int_eq(parse_n(s, n - 1, &h), -431);
  ck_assert_int_eq(parse_n(s, n - 2, &h), -431);
  free(s);
  s = big_head(3 * HTTP_MAX_HEAD);
  ck_assert_int_eq(refused(s), -431);
  ck_assert_int_eq(parse_n(s, HTTP_MAX_HEAD + 100, &h), -431);
  free(s);
  /* a request line that does not end */
  s = malloc(HTTP_MAX_HEAD + 10);
  memcpy(s, "GET /", 5);
  memset(s + 5, 'a', HTTP_MAX_HEAD + 5);
  ck_assert_int_eq(parse_n(s, HTTP_MAX_HEAD, &h), 0);
  ck_assert_int_eq(parse_n(s, HTTP_MAX_HEAD + 1, &h), -431);
  ck_assert_int_eq(parse_n(s, HTTP_MAX_HEAD + 10, &h), -431);
  /* or that ends past 64 KiB */
  memcpy(s + HTTP_MAX_HEAD, " HTTP/1.1\n", 10);
  ck_assert_int_eq(parse_n(s, HTTP_MAX_HEAD + 10, &h), -431);
  free(s);
  /* empty lines before the request line count */
  s = malloc(HTTP_MAX_HEAD + 100);
  memset(s, '\n', HTTP_MAX_HEAD + 1);
  ck_assert_int_eq(parse_n(s, HTTP_MAX_HEAD, &h), 0);
  ck_assert_int_eq(parse_n(s, HTTP_MAX_HEAD + 1, &h), -431);
  free(s);
}
END_TEST

START_TEST(request_line) {
  http_head h;
  ck_assert_int_eq(refused("GET / HTTP/2.0\r\n\r\n"), -505);
  ck_assert_int_eq(refused("GET / HTTP/1.2\r\n\r\n"), -505);
  ck_assert_int_eq(refused("GET / HTTP/0.9\r\n\r\n"), -505);
  ck_assert_int_eq(refused("GET / HTTP/9.9\r\n\r\n"), -505);
  /* not a version at all */
  ck_assert_int_eq(refused("GET / HTTP/1.10\r\n\r\n"), -400);
  ck_assert_int_eq(refused("GET / HTTP/1.1 \r\n\r\n"), -400);
  ck_assert_int_eq(refused("GET / HTTP/1.1\r\r\n\r\n"), -400);
  ck_assert_int_eq(refused("GET / HTTP/1.x\r\n\r\n"), -400);
  ck_assert_int_eq(refused("GET / HTTP/3\r\n\r\n"), -400);
  ck_assert_int_eq(refused("GET / http/1.1\r\n\r\n"), -400);
  ck_assert_int_eq(refused("GET / HTTX/1.1\r\n\r\n"), -400);
  ck_assert_int_eq(refused("GET / HTTP\r\n\r\n"), -400);
  ck_assert_int_eq(refused("GET /\r\n\r\n"), -400);
  ck_assert_int_eq(refused("GET\r\n\r\n"), -400);
  ck_assert_int_eq(refused("GET  / HTTP/1.1\r\n\r\n"), -400);
  ck_assert_int_eq(refused("GET /  HTTP/1.1\r\n\r\n"), -400);
  ck_assert_int_eq(refused(" GET / HTTP/1.1\r\n\r\n"), -400);
  ck_assert_int_eq(refused("GET / x HTTP/1.1\r\n\r\n"), -400);
  ck_assert_int_eq(refused("GET /\tx HTTP/1.1\r\n\r\n"), -400);
  ck_assert_int_eq(refused("GET /\x7fx HTTP/1.1\r\n\r\n"), -400);
  ck_assert_int_eq(refused("GET /\rx HTTP/1.1\r\n\r\n"), -400);
  ck_assert_int_eq(refused("G(T / HTTP/1.1\r\n\r\n"), -400);
  /* a bad method is refused before the line ends */
  ck_assert_int_eq(refused("G@T /"), -400);
  ck_assert_int_eq(parse("GET /", &h), 0);
  /* the target: origin-form, absolute-form (its path kept) or "*" */
  ck_assert_int_eq(refused("GET x HTTP/1.1\r\n\r\n"), -400);
  ck_assert_int_eq(refused("GET api/v1 HTTP/1.1\r\n\r\n"), -400);
  ck_assert_int_eq(refused("GET ** HTTP/1.1\r\n\r\n"), -400);
  ck_assert_int_eq(refused("GET ftp://host/x HTTP/1.1\r\n\r\n"), -400);
  accepted("GET http://host/path?x HTTP/1.1\r\n\r\n", &h);
  ck_assert_str_eq(h.target, "/path?x");
  accepted("GET HTTPS://host:8443/a/b HTTP/1.1\r\n\r\n", &h);
  ck_assert_str_eq(h.target, "/a/b");
  accepted("GET http://host/ HTTP/1.1\r\n\r\n", &h);
  ck_assert_str_eq(h.target, "/");
  /* without a path it would mean "*" */
  ck_assert_int_eq(refused("GET http://host HTTP/1.1\r\n\r\n"), -400);
  ck_assert_int_eq(refused("GET http:// HTTP/1.1\r\n\r\n"), -400);
  ck_assert_int_eq(refused("GET https:// HTTP/1.1\r\n\r\n"), -400);
  accepted("OPTIONS * HTTP/1.1\r\n\r\n", &h);
  ck_assert_str_eq(h.target, "*");
  accepted("GET /\xc3\xa9?q=\xff HTTP/1.1\r\n\r\n", &h);
  ck_assert_str_eq(h.target, "/\xc3\xa9?q=\xff");
}
END_TEST

START_TEST(methods) {
  static const struct {
    const char *req;
    int method;
  } cases[] = {
      {"GET / HTTP/1.1\r\n\r\n", M_GET},   {"POST / HTTP/1.1\r\n\r\n", M_POST},
      {"PUT / HTTP/1.1\r\n\r\n", M_PUT},   {"DELETE / HTTP/1.1\r\n\r\n", M_DELETE},
      {"HEAD / HTTP/1.1\r\n\r\n", M_HEAD}, {"OPTIONS / HTTP/1.1\r\n\r\n", 0},
      {"PATCH / HTTP/1.1\r\n\r\n", 0},     {"get / HTTP/1.1\r\n\r\n", 0},
      {"GETS / HTTP/1.1\r\n\r\n", 0},      {"GE / HTTP/1.1\r\n\r\n", 0},
      {"X-Custom! / HTTP/1.1\r\n\r\n", 0}, {"DELETES / HTTP/1.1\r\n\r\n", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    http_head h;
    accepted(cases[i].req, &h);
    ck_assert_msg(h.method == cases[i].method, "%s: method %d", cases[i].req, h.method);
  }
}
END_TEST

START_TEST(expect) {
  http_head h;
  accepted("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n", &h);
  ck_assert_int_eq(h.expect_continue, 1);
  accepted("POST / HTTP/1.1\r\nexpect: 100-Continue\r\nTransfer-Encoding: chunked\r\n\r\n", &h);
  ck_assert_int_eq(h.expect_continue, 1);
  /* nothing to wait for without a body, or from an HTTP/1.0 client */
  accepted("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n", &h);
  ck_assert_int_eq(h.expect_continue, 0);
  accepted("GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n", &h);
  ck_assert_int_eq(h.expect_continue, 0);
  accepted("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n", &h);
  ck_assert_int_eq(h.expect_continue, 0);
  /* other expectations */
  ck_assert_int_eq(refused("POST / HTTP/1.1\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\n"), -417);
  ck_assert_int_eq(refused("POST / HTTP/1.1\r\nExpect: 100-continue, x\r\nContent-Length: 1\r\n\r\n"), -417);
  ck_assert_int_eq(refused("GET / HTTP/1.1\r\nExpect:\r\n\r\n"), -417);
  /* an HTTP/1.0 client's Expect is ignored (RFC 9110 10.1.1) */
  accepted("GET / HTTP/1.0\r\nExpect: 100\r\n\r\n", &h);
  ck_assert_int_eq(h.expect_continue, 0);
}
END_TEST

START_TEST(content_type) {
  http_head h;
  accepted("POST / HTTP/1.1\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: 2\r\n\r\n", &h);
  ck_assert_str_eq(h.content_type, "application/json; charset=utf-8");
  ck_assert_ptr_eq(h.content_type, cur + strlen("POST / HTTP/1.1\r\nContent-Type: "));
  accepted("POST / HTTP/1.1\r\ncontent-type:\t text/csv \t\r\n\r\n", &h);
  ck_assert_str_eq(h.content_type, "text/csv");
  accepted("POST / HTTP/1.1\nContent-Type: text/csv\n\n", &h);
  ck_assert_str_eq(h.content_type, "text/csv");
  accepted("POST / HTTP/1.1\r\nContent-Type:\r\n\r\n", &h);
  ck_assert_str_eq(h.content_type, "");
  /* the last one counts */
  accepted("POST / HTTP/1.1\r\nContent-Type: a/b\r\nContent-Type: c/d\r\n\r\n", &h);
  ck_assert_str_eq(h.content_type, "c/d");
  accepted("POST / HTTP/1.1\r\nContent-Types: a/b\r\n\r\n", &h);
  ck_assert_ptr_null(h.content_type);
}
END_TEST

/* ---- chunked bodies ---- */

typedef struct {
  int rc;
  size_t in, out;
  char body[512];
  const char *error;
} chunks_result;

/* decodes raw[0, n) in one call */
static chunks_result chunks_whole(const char *raw, size_t n, uint64_t limit) {
  chunks_result res = {0};
  char *b = copy(raw, n);
  http_chunks c = {0};
  res.rc = http_chunks_parse(&c, b, n, limit, &res.error);
  res.in = c.in;
  res.out = c.out;
  ck_assert_uint_le(c.out, c.in);
  ck_assert_uint_le(c.in, n);
  ck_assert_uint_lt(c.out, sizeof res.body);
  memcpy(res.body, b, c.out);
  return res;
}

/* the same bytes arriving one at a time, in one buffer */
static chunks_result chunks_bytewise(const char *raw, size_t n, uint64_t limit) {
  chunks_result res = {0};
  char *b = copy(raw, n);
  http_chunks c = {0};
  for (size_t k = 1; k <= n; k++) {
    res.rc = http_chunks_parse(&c, b, k, limit, &res.error);
    ck_assert_uint_le(c.out, c.in);
    ck_assert_uint_le(c.in, k);
    if (res.rc) break;
    ck_assert_uint_eq(c.in, k);
  }
  res.in = c.in;
  res.out = c.out;
  ck_assert_uint_lt(c.out, sizeof res.body);
  memcpy(res.body, b, c.out);
  return res;
}

/* decodes raw both ways; they must agree; returns the code */
static int chunks(const char *raw, size_t n, uint64_t limit, const char *want_body, size_t want_in) {
  chunks_result a = chunks_whole(raw, n, limit), b = chunks_bytewise(raw, n, limit);
  ck_assert_msg(a.rc == b.rc && a.in == b.in && a.out == b.out && !memcmp(a.body, b.body, a.out),
                "%s: whole %d in %zu out %zu, bytewise %d in %zu out %zu", raw, a.rc, a.in, a.out, b.rc, b.in, b.out);
  if (a.rc == -1) ck_assert_ptr_nonnull(a.error);
  if (want_body) {
    ck_assert_msg(a.out == strlen(want_body) && !memcmp(a.body, want_body, a.out), "%s: decoded '%.*s'", raw,
                  (int)a.out, a.body);
  }
  if (want_in) ck_assert_uint_eq(a.in, want_in);
  return a.rc;
}

START_TEST(chunked_decode) {
  static const char simple[] = "5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n";
  ck_assert_int_eq(chunks(simple, sizeof simple - 1, 1 << 20, "hello, world", sizeof simple - 1), 1);
  /* what follows the body (the next request) is not consumed */
  static const char next[] = "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n";
  ck_assert_int_eq(chunks(next, sizeof next - 1, 1 << 20, "abc", strlen("3\r\nabc\r\n0\r\n\r\n")), 1);
  static const char hex[] = "a\r\n0123456789\r\nB\r\nabcdefghijk\r\n00\r\n\r\n";
  ck_assert_int_eq(chunks(hex, sizeof hex - 1, 1 << 20, "0123456789abcdefghijk", sizeof hex - 1), 1);
  static const char lead0[] = "0000000000000000000000000003\r\nxyz\r\n0\r\n\r\n";
  ck_assert_int_eq(chunks(lead0, sizeof lead0 - 1, 1 << 20, "xyz", sizeof lead0 - 1), 1);
  static const char empty[] = "0\r\n\r\n";
  ck_assert_int_eq(chunks(empty, sizeof empty - 1, 0, "", sizeof empty - 1), 1);
  /* the data may hold anything, CRLFs included */
  static const char bin[] = "6\r\n\r\n0\r\n\0\r\n0\r\n\r\n";
  ck_assert_int_eq(chunks(bin, sizeof bin - 1, 1 << 20, NULL, sizeof bin - 1), 1);
  chunks_result r = chunks_whole(bin, sizeof bin - 1, 1 << 20);
  ck_assert_uint_eq(r.out, 6);
  ck_assert(!memcmp(r.body, "\r\n0\r\n\0", 6));
  /* chunk extensions */
  static const char ext[] = "5;name=value\r\nhello\r\n3 ; a=\"b;c\"\t\r\nabc\r\n0;last\r\n\r\n";
  ck_assert_int_eq(chunks(ext, sizeof ext - 1, 1 << 20, "helloabc", sizeof ext - 1), 1);
  /* trailers */
  static const char trailers[] = "2\r\nhi\r\n0\r\nX-Checksum: abc\r\nX-Other: d\r\n\r\n";
  ck_assert_int_eq(chunks(trailers, sizeof trailers - 1, 1 << 20, "hi", sizeof trailers - 1), 1);
  /* bare LFs */
  static const char lf[] = "5\nhello\n2;x\nhi\n0\nT: 1\n\n";
  ck_assert_int_eq(chunks(lf, sizeof lf - 1, 1 << 20, "hellohi", sizeof lf - 1), 1);
  static const char mixed[] = "5\r\nhello\n0\n\r\n";
  ck_assert_int_eq(chunks(mixed, sizeof mixed - 1, 1 << 20, "hello", sizeof mixed - 1), 1);
}
END_TEST

START_TEST(chunked_incomplete) {
  static const char body[] = "5;e=1\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\nT: x\r\n\r\n";
  size_t n = sizeof body - 1;
  /* every prefix needs more, and decodes what it has */
  for (size_t k = 0; k < n; k++) {
    ck_assert_int_eq(chunks(body, k, 1 << 20, NULL, k), 0);
    chunks_result r = chunks_whole(body, k, 1 << 20);
    ck_assert(!memcmp(r.body, "hello0123456789abcdef", r.out));
  }
  ck_assert_int_eq(chunks(body, n, 1 << 20, "hello0123456789abcdef", n), 1);
  /* split at every point: two calls on one buffer */
  for (size_t k = 0; k <= n; k++) {
    char *b = copy(body, n);
    http_chunks c = {0};
    const char *err = NULL;
    int rc = http_chunks_parse(&c, b, k, 1 << 20, &err);
    ck_assert_int_eq(rc, k == n);
    rc = http_chunks_parse(&c, b, n, 1 << 20, &err);
    ck_assert_int_eq(rc, 1);
    ck_assert_uint_eq(c.in, n);
    ck_assert_uint_eq(c.out, 21);
    ck_assert(!memcmp(b, "hello0123456789abcdef", 21));
  }
}
END_TEST

START_TEST(chunked_malformed) {
  static const char *const bad[] = {
      "\r\n",   /* no digits */
      ";x\r\n", /* an extension without a size */
      " 5\r\nhello\r\n0\r\n\r\n",
      "-5\r\n",
      "+5\r\n",
      "5x\r\nhello\r\n", /* not hex */
      "0x5\r\nhello\r\n",
      "g\r\n",
      "5\rhello\r\n", /* CR not followed by LF */
      "5\r\rhello\r\n",
      "5\r\nhelloX", /* the data is not followed by (CR)LF */
      "5\r\nhello\rX",
      "5\r\nhello\r\r\n",
      "5;a\x01\r\nhello\r\n", /* a control character in the extension */
      "5;a\0\r\nhello\r\n",
      "10000000000000000\r\n", /* over 64 bits */
      "FFFFFFFFFFFFFFFF0\r\n",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    size_t n = strlen(bad[i]);
    if (i == 14) n = 9; /* the one with a NUL */
    int rc = chunks(bad[i], n, UINT64_MAX, NULL, 0);
    ck_assert_msg(rc == -1, "%zu '%s': %d", i, bad[i], rc);
  }
  /* a malformed body is refused as soon as the bad byte is in */
  chunks_result r = chunks_whole("5x", 2, 100);
  ck_assert_int_eq(r.rc, -1);
  ck_assert_uint_eq(r.in, 1);
}
END_TEST

START_TEST(chunked_limit) {
  static const char body[] = "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n";
  size_t n = sizeof body - 1;
  ck_assert_int_eq(chunks(body, n, 6, "abcdef", n), 1);
  ck_assert_int_eq(chunks(body, n, 5, "abc", strlen("3\r\nabc\r\n3\r\n")), -2);
  ck_assert_int_eq(chunks(body, n, 3, "abc", strlen("3\r\nabc\r\n3\r\n")), -2);
  ck_assert_int_eq(chunks(body, n, 2, "", 3), -2);
  ck_assert_int_eq(chunks(body, n, 0, "", 3), -2);
  /* refused on the size line, before the data comes */
  ck_assert_int_eq(chunks("100001\r\n", 8, 1 << 20, "", 8), -2);
  ck_assert_int_eq(chunks("100000\r\n", 8, 1 << 20, "", 8), 0);
  ck_assert_int_eq(chunks("FFFFFFFFFFFFFFFF\r\n", 18, 1 << 20, "", 18), -2);
  ck_assert_int_eq(chunks("FFFFFFFFFFFFFFFF\r\n", 18, UINT64_MAX, "", 18), 0);
  static const char wrap[] = "1\r\na\r\nFFFFFFFFFFFFFFFF\r\n";
  ck_assert_int_eq(chunks(wrap, sizeof wrap - 1, UINT64_MAX, "a", sizeof wrap - 1), -2);
}
END_TEST

/* ---- query strings ---- */

static int query(const char *s, http_param *p, int cap, const char **err) {
  *err = NULL;
  int n = http_query_parse(copy(s, strlen(s) + 1), p, cap, err);
  if (n < 0) ck_assert_ptr_nonnull(*err);
  return n;
}

START_TEST(query_decode) {
  http_param p[8];
  const char *err;
  ck_assert_int_eq(query("", p, 8, &err), 0);
  ck_assert_int_eq(query("n=5&user=u%201&q=a+b%2Bc", p, 8, &err), 3);
  ck_assert_str_eq(p[0].key, "n");
  ck_assert_str_eq(p[0].value, "5");
  ck_assert_str_eq(p[1].key, "user");
  ck_assert_str_eq(p[1].value, "u 1");
  ck_assert_str_eq(p[2].key, "q");
  ck_assert_str_eq(p[2].value, "a b+c");
  /* keys are decoded too; %XX in either case; a decoded '&' or '=' is data */
  ck_assert_int_eq(query("a%5fb=%3d%26%3D&%41=%e2%82%AC", p, 8, &err), 2);
  ck_assert_str_eq(p[0].key, "a_b");
  ck_assert_str_eq(p[0].value, "=&=");
  ck_assert_str_eq(p[1].key, "A");
  ck_assert_str_eq(p[1].value, "\xe2\x82\xac");
  /* a malformed %XX stays as it is */
  ck_assert_int_eq(query("a=%zz&b=%2&c=%&d=%%41&e=100%", p, 8, &err), 5);
  ck_assert_str_eq(p[0].value, "%zz");
  ck_assert_str_eq(p[1].value, "%2");
  ck_assert_str_eq(p[2].value, "%");
  ck_assert_str_eq(p[3].value, "%A");
  ck_assert_str_eq(p[4].value, "100%");
  /* empty values; '=' in a value */
  ck_assert_int_eq(query("a=&b==x=", p, 8, &err), 2);
  ck_assert_str_eq(p[0].value, "");
  ck_assert_str_eq(p[1].value, "=x=");
  /* empty pairs are skipped */
  ck_assert_int_eq(query("&&a=1&&&b=2&", p, 8, &err), 2);
  ck_assert_str_eq(p[0].key, "a");
  ck_assert_str_eq(p[1].key, "b");
  ck_assert_str_eq(p[1].value, "2");
  ck_assert_int_eq(query("&", p, 8, &err), 0);
  /* a '+' key is a space, not empty */
  ck_assert_int_eq(query("+=1", p, 8, &err), 1);
  ck_assert_str_eq(p[0].key, " ");
}
END_TEST

START_TEST(query_malformed) {
  http_param p[4];
  const char *err;
  ck_assert_int_eq(query("a", p, 4, &err), -1);
  ck_assert_int_eq(query("a=1&b", p, 4, &err), -1);
  ck_assert_int_eq(query("=1", p, 4, &err), -1);
  ck_assert_int_eq(query("a=1&=2", p, 4, &err), -1);
  ck_assert_int_eq(query("a=%00", p, 4, &err), -1);
  ck_assert_int_eq(query("a%00=1", p, 4, &err), -1);
  ck_assert_int_eq(query("a=x%00y", p, 4, &err), -1);
  /* the cap: 4 pairs fit, 5 do not (empty pairs do not count) */
  ck_assert_int_eq(query("a=1&b=2&c=3&d=4", p, 4, &err), 4);
  ck_assert_int_eq(query("a=1&&b=2&c=3&d=4&&", p, 4, &err), 4);
  ck_assert_int_eq(query("a=1&b=2&c=3&d=4&e=5", p, 4, &err), -1);
  ck_assert_int_eq(query("a=1", p, 0, &err), -1);
  ck_assert_int_eq(query("", p, 0, &err), 0);
}
END_TEST

Suite *request_suite(void) {
  Suite *s = suite_create("request");
  TCase *tc = tcase_create("head");
  tcase_add_checked_fixture(tc, NULL, teardown);
  tcase_add_test(tc, get_with_headers);
  tcase_add_test(tc, keep_alive_rules);
  tcase_add_test(tc, incomplete_heads);
  tcase_add_test(tc, line_endings);
  tcase_add_test(tc, content_length);
  tcase_add_test(tc, transfer_encoding);
  tcase_add_test(tc, malformed_headers);
  tcase_add_test(tc, size_limit);
  tcase_add_test(tc, request_line);
  tcase_add_test(tc, methods);
  tcase_add_test(tc, expect);
  tcase_add_test(tc, content_type);
  suite_add_tcase(s, tc);
  tc = tcase_create("chunked");
  tcase_add_checked_fixture(tc, NULL, teardown);
  tcase_add_test(tc, chunked_decode);
  tcase_add_test(tc, chunked_incomplete);
  tcase_add_test(tc, chunked_malformed);
  tcase_add_test(tc, chunked_limit);
  suite_add_tcase(s, tc);
  tc = tcase_create("query");
  tcase_add_checked_fixture(tc, NULL, teardown);
  tcase_add_test(tc, query_decode);
  tcase_add_test(tc, query_malformed);
  suite_add_tcase(s, tc);
  return s;
}
