/* request.h — the HTTP/1.1 request parser: the request line and headers, a
 * chunked body, and a query string. Pure functions over a buffer the caller
 * owns (they NUL-terminate pieces of it in place); no I/O, no allocation;
 * fuzzed (fuzz/http_fuzz.c). server.c does the I/O. */
#ifndef RECD_HTTP_REQUEST_H
#define RECD_HTTP_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEAD (64 * 1024) /* request line + headers */

typedef struct {
  int method;               /* M_* of route.h; 0 for any other method */
  char *target;             /* NUL-terminated origin-form target: path[?query] */
  int minor;                /* HTTP/1.<minor>: 0 or 1 */
  int keep_alive;           /* 1.1 unless "Connection: close"; 1.0 only with "keep-alive" */
  int chunked;              /* Transfer-Encoding: chunked */
  int expect_continue;      /* Expect: 100-continue */
  int64_t content_length;   /* -1 when absent */
  const char *content_type; /* NUL-terminated value, or NULL */
  const char *error;        /* why a request was refused (a static string) */
  const char *field;        /* what is at fault: "request" (line), "version" or "headers" */
} http_head;

/* Parses the head at buf[0, len). Returns its length (through the blank
 * line) when complete; 0 when more bytes are needed (and none of buf[0, len)
 * is malformed so far); or minus an HTTP status (400, 431, 501, 505) with
 * h->error set. Writes NULs into buf (the target, header values). */
int http_head_parse(char *buf, size_t len, http_head *h);

/* Decoding a chunked body in place: the decoded bytes are moved down to the
 * start of the body, so buf[body, body + out) is the body so far. */
typedef struct {
  size_t in;   /* raw bytes consumed, from the body's start */
  size_t out;  /* decoded bytes */
  uint64_t left; /* bytes left in the current chunk */
  int state;
  int digits;    /* the size line has a digit */
} http_chunks;

/* Consumes what it can of buf[0, len) (the body's raw bytes so far; the
 * state remembers how far it got). 1 = the last chunk and the trailers are
 * in; 0 = needs more; -1 = malformed (error set). Stops with -2 as soon as
 * the decoded size would pass `limit`. */
int http_chunks_parse(http_chunks *c, char *buf, size_t len, uint64_t limit, const char **error);

typedef struct {
  const char *key, *value;
} http_param;

/* Splits a query string (without the '?') in place into key=value pairs,
 * decoding %XX and '+'. Returns the number of pairs (at most cap; more are
 * an error), or -1 when it is malformed (a pair without '=' or with an empty
 * key, more than cap pairs, an encoded NUL byte) with *error set. */
int http_query_parse(char *qs, http_param *out, int cap, const char **error);

#endif
