/* request.c — the HTTP/1.1 request parser (RFC 9112): strict where a lenient
 * reading could be abused (request smuggling: Content-Length with
 * Transfer-Encoding, differing Content-Lengths, obsolete line folding),
 * lenient where clients differ harmlessly (a bare LF ends a line). */
#include "http/request.h"

#include <string.h>
#include <strings.h>

#include "http/route.h"

static int tchar(unsigned char c) {
  /* RFC 9110 token characters */
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return 1;
  return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int fail(http_head *h, int status, const char *why) {
  h->error = why;
  return -status;
}

/* the end of the line starting at p (the LF), or NULL if not in buf yet */
static char *line_end(char *p, char *end) { return memchr(p, '\n', (size_t)(end - p)); }

/* does the comma-separated list [v, v + n) hold `tok` (case-insensitively)? */
static int has_token(const char *v, size_t n, const char *tok) {
  size_t tl = strlen(tok);
  size_t i = 0;
  while (i < n) {
    while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
    size_t s = i;
    while (i < n && v[i] != ',') i++;
    size_t e = i;
    while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) e--;
    if (e - s == tl && !strncasecmp(v + s, tok, tl)) return 1;
  }
  return 0;
}

static int method_of(const char *m, size_t n) {
  switch (n) {
    case 3:
      if (!memcmp(m, "GET", 3)) return M_GET;
      if (!memcmp(m, "PUT", 3)) return M_PUT;
      break;
    case 4:
      if (!memcmp(m, "POST", 4)) return M_POST;
      if (!memcmp(m, "HEAD", 4)) return M_HEAD;
      break;
    case 6:
      if (!memcmp(m, "DELETE", 6)) return M_DELETE;
      break;
  }
  return 0;
}

int http_head_parse(char *buf, size_t len, http_head *h) {
  memset(h, 0, sizeof *h);
  h->content_length = -1;
  h->field = "request";
  char *end = buf + len, *p = buf;
  /* RFC 9112 2.2: ignore empty lines before the request line */
  while (p < end && (*p == '\r' || *p == '\n')) p++;
  char *le = line_end(p, end);
  if (!le) {
    if (len > HTTP_MAX_HEAD) return fail(h, 431, "the request line is longer than 64 KiB");
    /* check what is there so far: a method is a token */
    for (char *q = p; q < end && *q != ' '; q++)
      if (!tchar((unsigned char)*q)) return fail(h, 400, "malformed request line");
    return 0;
  }
  /* request line: METHOD SP target SP HTTP/1.x */
  char *rl_end = le > p && le[-1] == '\r' ? le - 1 : le;
  char *sp1 = memchr(p, ' ', (size_t)(rl_end - p));
  if (!sp1 || sp1 == p) return fail(h, 400, "malformed request line");
  for (char *q = p; q < sp1; q++)
    if (!tchar((unsigned char)*q)) return fail(h, 400, "malformed request line: bad method");
  h->method = method_of(p, (size_t)(sp1 - p));
  char *t = sp1 + 1;
  char *sp2 = memchr(t, ' ', (size_t)(rl_end - t));
  if (!sp2 || sp2 == t) return fail(h, 400, "malformed request line");
  for (char *q = t; q < sp2; q++)
    if ((unsigned char)*q <= 0x20 || *q == 0x7f) return fail(h, 400, "malformed request line: bad target");
  char *v = sp2 + 1;
  h->field = "version";
  if (rl_end - v != 8 || memcmp(v, "HTTP/", 5) || v[5] < '0' || v[5] > '9' || v[6] != '.' || v[7] < '0' ||
      v[7] > '9')
    return fail(h, 400, "malformed request line: bad version");
  if (v[5] != '1' || v[7] > '1') return fail(h, 505, "only HTTP/1.0 and HTTP/1.1 are supported");
  h->minor = v[7] - '0';
  h->keep_alive = h->minor == 1;
  h->field = "request";
  /* absolute-form (a proxy's): keep the path; "http://host" alone means "*"
   * (refused below). Nothing is written into buf until the head is complete:
   * an incomplete one is parsed again from the start when more bytes come. */
  char *t_end = sp2;
  size_t scheme = (size_t)(sp2 - t) > 7 && !strncasecmp(t, "http://", 7)    ? 7
                  : (size_t)(sp2 - t) > 8 && !strncasecmp(t, "https://", 8) ? 8
                                                                              : 0;
  if (scheme) {
    char *s = memchr(t + scheme, '/', (size_t)(sp2 - t) - scheme);
    t = s ? s : sp2;
  }
  if (t == sp2 || (*t != '/' && !(sp2 - t == 1 && *t == '*')))
    return fail(h, 400, "malformed request line: the target must start with /");
  char *ct_end = NULL;
  /* header fields */
  h->field = "headers";
  int saw_te = 0, conn_close = 0, conn_keep = 0;
  p = le + 1;
  for (;;) {
    if ((size_t)(p - buf) > HTTP_MAX_HEAD) return fail(h, 431, "the request headers are larger than 64 KiB");
    le = line_end(p, end);
    if (!le) {
      /* past 64 KiB only the blank line may still come ("\r" here, its "\n" next) */
      if (len > HTTP_MAX_HEAD && !(end - p == 1 && *p == '\r'))
        return fail(h, 431, "the request headers are larger than 64 KiB");
      return 0;
    }
    char *fe = le > p && le[-1] == '\r' ? le - 1 : le;
    if (fe == p) { /* the blank line */
      p = le + 1;
      break;
    }
    if (*p == ' ' || *p == '\t') return fail(h, 400, "obsolete header line folding is not accepted");
    char *colon = memchr(p, ':', (size_t)(fe - p));
    if (!colon || colon == p) return fail(h, 400, "malformed header line");
    for (char *q = p; q < colon; q++)
      if (!tchar((unsigned char)*q)) return fail(h, 400, "malformed header name");
    char *val = colon + 1;
    while (val < fe && (*val == ' ' || *val == '\t')) val++;
    char *ve = fe;
    while (ve > val && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
    for (char *q = val; q < ve; q++)
      if ((unsigned char)*q < 0x20 && *q != '\t') return fail(h, 400, "control character in a header value");
    size_t nl = (size_t)(colon - p), vl = (size_t)(ve - val);
    switch (nl) {
      case 14:
        if (!strncasecmp(p, "Content-Length", 14)) {
          if (!vl) return fail(h, 400, "Content-Length is empty");
          int64_t n = 0;
          for (char *q = val; q < ve; q++) {
            if (*q < '0' || *q > '9') return fail(h, 400, "Content-Length is not a number");
            if (n > (INT64_MAX - 9) / 10) return fail(h, 400, "Content-Length is too large");
            n = n * 10 + (*q - '0');
          }
          if (h->content_length >= 0 && h->content_length != n) return fail(h, 400, "differing Content-Length headers");
          h->content_length = n;
        }
        break;
      case 17:
        if (!strncasecmp(p, "Transfer-Encoding", 17)) {
          if (saw_te || vl != 7 || strncasecmp(val, "chunked", 7))
            return fail(h, 501, "Transfer-Encoding: only chunked is supported");
          saw_te = 1;
        }
        break;
      case 10:
        if (!strncasecmp(p, "Connection", 10)) {
          conn_close |= has_token(val, vl, "close");
          conn_keep |= has_token(val, vl, "keep-alive");
        }
        break;
      case 6:
        if (!strncasecmp(p, "Expect", 6) && h->minor == 1) { /* RFC 9110 10.1.1: ignored from HTTP/1.0 clients */
          if (vl != 12 || strncasecmp(val, "100-continue", 12)) return fail(h, 417, "Expect: only 100-continue is supported");
          h->expect_continue = h->minor == 1;
        }
        break;
      case 12:
        if (!strncasecmp(p, "Content-Type", 12)) {
          ct_end = ve;
          h->content_type = val;
        }
        break;
    }
    p = le + 1;
  }
  if (saw_te && h->content_length >= 0) return fail(h, 400, "both Content-Length and Transfer-Encoding");
  h->chunked = saw_te;
  if (conn_close) h->keep_alive = 0;
  else if (conn_keep) h->keep_alive = 1;
  if (h->content_length <= 0 && !h->chunked) h->expect_continue = 0; /* no body to wait for */
  /* complete: terminate the pieces in place */
  *t_end = 0;
  if (ct_end) *ct_end = 0;
  h->target = t;
  return (int)(p - buf);
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

enum { CH_SIZE, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER, CH_TRAILER_LINE, CH_DONE };

int http_chunks_parse(http_chunks *c, char *buf, size_t len, uint64_t limit, const char **error) {
  size_t i = c->in;
  while (i < len) {
    char ch = buf[i];
    switch (c->state) {
      case CH_SIZE: {
        int d = hexval(ch);
        if (d >= 0) {
          if (c->left > (UINT64_MAX >> 4)) goto bad;
          c->left = c->left * 16 + (uint64_t)d;
          c->digits = 1;
          i++;
          break;
        }
        /* hex digits, then maybe ";ext" (or spaces), then (CR)LF */
        if (!c->digits) goto bad;
        if (ch == ';' || ch == ' ' || ch == '\t') c->state = CH_EXT;
        else if (ch == '\r') c->state = CH_SIZE_LF;
        else if (ch == '\n') goto size_done;
        else goto bad;
        i++;
        break;
      }
      case CH_EXT:
        if (ch == '\n') goto size_done;
        if ((unsigned char)ch < 0x20 && ch != '\t' && ch != '\r') goto bad;
        i++;
        break;
      case CH_SIZE_LF:
        if (ch != '\n') goto bad;
      size_done:
        i++;
        c->digits = 0;
        if (c->left == 0) {
          c->state = CH_TRAILER;
        } else {
          if (c->out + c->left > limit || c->out + c->left < c->out) {
            c->in = i;
            return -2;
          }
          c->state = CH_DATA;
        }
        break;
      case CH_DATA: {
        size_t n = len - i;
        if (n > c->left) n = (size_t)c->left;
        memmove(buf + c->out, buf + i, n);
        c->out += n;
        c->left -= n;
        i += n;
        if (!c->left) c->state = CH_DATA_CR;
        break;
      }
      case CH_DATA_CR:
        if (ch == '\r') {
          c->state = CH_DATA_LF;
          i++;
          break;
        }
        /* a bare LF ends the chunk too */
        /* fall through */
      case CH_DATA_LF:
        if (ch != '\n') goto bad;
        i++;
        c->state = CH_SIZE;
        break;
      case CH_TRAILER: /* the start of a trailer line: empty ends the body */
        if (ch == '\r') {
          i++;
          break;
        }
        if (ch == '\n') {
          i++;
          c->state = CH_DONE;
          c->in = i;
          return 1;
        }
        c->state = CH_TRAILER_LINE;
        break;
      case CH_TRAILER_LINE:
        if (ch == '\n') c->state = CH_TRAILER;
        i++;
        break;
      case CH_DONE:
        c->in = i;
        return 1;
    }
  }
  c->in = i;
  return c->state == CH_DONE;
bad:
  *error = "malformed chunked body";
  c->in = i;
  return -1;
}

/* decodes [s, e) in place ('+' is a space; a malformed %XX stays as it is);
 * returns the decoded end, or NULL for an encoded NUL */
static char *decode(char *s, char *e) {
  char *o = s;
  for (char *p = s; p < e; p++) {
    if (*p == '+') {
      *o++ = ' ';
    } else if (*p == '%' && e - p >= 3 && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
      char v = (char)(hexval(p[1]) * 16 + hexval(p[2]));
      if (!v) return NULL;
      *o++ = v;
      p += 2;
    } else {
      *o++ = *p;
    }
  }
  return o;
}

int http_query_parse(char *qs, http_param *out, int cap, const char **error) {
  int n = 0;
  char *p = qs;
  while (*p) {
    char *amp = strchr(p, '&');
    char *e = amp ? amp : p + strlen(p);
    if (e == p) { /* an empty pair ("a=1&&b=2") */
      p = e + 1;
      continue;
    }
    char *eq = memchr(p, '=', (size_t)(e - p));
    if (!eq || eq == p) {
      *error = "the query string is malformed (a parameter without '=' or without a name)";
      return -1;
    }
    if (n == cap) {
      *error = "too many query parameters";
      return -1;
    }
    char *ke = decode(p, eq), *ve = decode(eq + 1, e);
    if (!ke || !ve) {
      *error = "a parameter holds an encoded NUL byte (%00)";
      return -1;
    }
    *ke = 0;
    *ve = 0;
    out[n].key = p;
    out[n].value = eq + 1;
    n++;
    if (!amp) break;
    p = amp + 1;
  }
  return n;
}
