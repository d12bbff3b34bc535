/* conn.c — one HTTP/1.1 connection on a worker's event loop: read into one
 * buffer, parse the head and body in place (request.c), hand the request to
 * http__dispatch, write the answer (at once, or corked until the worker's
 * turn ends: see cork), then the next request (keep-alive, pipelining) or
 * close.
 *
 * A connection handles one request at a time: while a request waits for the
 * engine (a durable write, a training run) it is "busy" and reading stops at
 * EOF detection; answers leave in request order by construction. The read
 * event is level-triggered and persistent, so a request-response turn costs
 * no epoll_ctl; the write event is added only when the socket buffer is full.
 * The idle timeout closes connections that are neither busy nor answered. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "http/http_int.h"
#include "util/jsonout.h"
#include "http/request.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

enum {
  P_HEAD,  /* reading a request's head */
  P_BODY,  /* reading its body */
  P_BUSY,  /* dispatched: waiting for its answer */
  P_CLOSE, /* answered with "Connection: close": closes once the answer is out */
};

#define READ_CHUNK 16384 /* reads of a body; the drain's */
#define IN_FIRST 4096    /* a connection's first input buffer: a usual request fits */
#define DRAIN_MAX (64 << 20) /* a refused body read and thrown away before closing */
/* a request that took less of the worker's time than this is cheap: under
 * mixed load at full size 91% of single-event POSTs take < 8 us to hand to the
 * engine (88% < 4 us), and 98% of recommendations >= 12 us (at 20 us, the old
 * bound, 38% of them were "cheap" and skipped the cork) */
#define CHEAP_NS 8000
#define STARVE_NS 1000000    /* the longest the cheap go first while the others wait */

struct http_conn {
  http_worker *w;
  http_conn *lprev, *lnext; /* the worker's list */
  int fd;
  int phase;
  int keep_alive;
  int head_only;      /* HEAD: the answer has no body */
  int dead;           /* the socket is closed; freed when the busy request is answered */
  int in_process;     /* conn_process is on the stack */
  int read_paused;    /* read event removed: the buffer is full while busy */
  int write_on;       /* write event added */
  int linger;         /* the client may still be sending (a refused body): linger at close */
  int peer_closed;    /* EOF read: what is buffered is answered, then the connection closes */
  int lingering;      /* answered and shut down for writing: reading until EOF */
  int minor;
  int pri;            /* the read event's priority (HTTP_PRI_*) */
  struct event *rev, *wev;
  char *in;
  size_t len, cap;    /* bytes in `in`, its size */
  size_t start;       /* the current request's first byte */
  size_t body_at;     /* its body's first byte */
  size_t next;        /* the byte after it (the next pipelined request) */
  size_t drained;
  size_t target_at, ctype_at; /* the head's pieces, from start (the buffer moves while a body is read) */
  http_head h;
  http_chunks ch;
  http_conn *cork_next; /* the worker's corked list */
  int corked;         /* on it */
  char *out;          /* bytes of answers not yet sent */
  size_t out_len, out_off, out_cap;
  http_req req;
};

static uint64_t body_cap(const http_worker *w) {
  /* bodies up to 4x the limit are read and then refused with a JSON 413 by
   * the handler (a client gets its answer, the connection stays usable);
   * larger ones are refused from their Content-Length (or as soon as a
   * chunked body passes it) and the connection is closed */
  return (uint64_t)w->srv->cfg->max_body * 4 + 65536;
}

static void conn_free(http_conn *c) {
  http_worker *w = c->w;
  if (c->corked) /* rare (the socket broke before the flush): a walk of the worker's list */
    for (http_conn **p = &w->corked; *p; p = &(*p)->cork_next)
      if (*p == c) {
        *p = c->cork_next;
        break;
      }
  atomic_fetch_sub_explicit(&w->srv->m.connections, 1, memory_order_relaxed);
  if (c->lprev) c->lprev->lnext = c->lnext;
  else w->conns = c->lnext;
  if (c->lnext) c->lnext->lprev = c->lprev;
  if (c->rev) event_free(c->rev);
  if (c->wev) event_free(c->wev);
  if (c->fd >= 0) close(c->fd);
  free(c->in);
  free(c->out);
  free(c);
}

/* closes the socket but keeps the connection (freed once nothing refers to it) */
static void conn_kill(http_conn *c) {
  if (c->dead) return;
  event_del(c->rev);
  event_del(c->wev);
  close(c->fd);
  c->fd = -1;
  c->dead = 1;
}

/* the socket is done: free now, or when the request in flight is answered */
static void conn_close(http_conn *c) {
  if (c->phase == P_BUSY || c->in_process) conn_kill(c);
  else conn_free(c);
}

/* keep the tail [start, len) of the input; drop what was answered */
static void compact(http_conn *c) {
  if (c->start == c->len) {
    c->start = c->len = 0;
    if (c->cap > 4 * IN_FIRST) { /* an idle connection does not keep a big buffer */
      free(c->in);
      c->in = NULL;
      c->cap = 0;
    }
  } else if (c->start > 0) {
    memmove(c->in, c->in + c->start, c->len - c->start);
    c->len -= c->start;
    if (c->phase == P_BODY) c->body_at -= c->start;
    c->start = 0;
  }
}

static void ensure_in(http_conn *c, size_t need) {
  if (c->cap >= need) return;
  size_t cap = c->cap ? c->cap : IN_FIRST;
  while (cap < need) cap *= 2;
  c->in = xrealloc(c->in, cap);
  c->cap = cap;
}

static void out_append(http_conn *c, const char *p, size_t n) {
  if (c->out_off && c->out_off == c->out_len) c->out_off = c->out_len = 0;
  if (c->out_len + n > c->out_cap) {
    size_t cap = c->out_cap ? c->out_cap : 4096;
    while (cap < c->out_len + n) cap *= 2;
    c->out = xrealloc(c->out, cap);
    c->out_cap = cap;
  }
  memcpy(c->out + c->out_len, p, n);
  c->out_len += n;
}

/* Answers to normal-priority requests are corked: conn_write queues them in
 * `out`, and the worker's flush event, queued behind the requests that were
 * ready when the first was corked, sends them all. A client thread waiting on
 * several connections is then woken once for the answers of a turn, not once
 * per answer: on loopback with the clients on the same two CPUs, each wake-up
 * was an inter-processor interrupt and often a preemption of the worker in the
 * middle of the next request (a third of the worker's time in the scheduler).
 * The flush has normal priority: a higher one would cut the turn short after
 * every request (libevent goes back to the higher queue as soon as it has an
 * event). Answers of the first priority (cheap requests, finished writes) go
 * out at once, as before. */
static void cork(http_conn *c) {
  if (c->corked) return;
  http_worker *w = c->w;
  if (!w->corked) event_active(w->flush, EV_READ, 0);
  c->corked = 1;
  c->cork_next = w->corked;
  w->corked = c;
}

/* writes iov (after any bytes still queued); queues what the socket did not
 * take, or all of it when corked. -1 if the connection broke. */
static int conn_write(http_conn *c, struct iovec *iov, int n) {
  if (c->dead) return -1;
  if (c->out_len > c->out_off || (c->in_process && c->pri == HTTP_PRI_NORMAL)) {
    for (int i = 0; i < n; i++) out_append(c, iov[i].iov_base, iov[i].iov_len);
    if (!c->write_on) cork(c);
    return 0;
  }
  size_t total = 0;
  for (int i = 0; i < n; i++) total += iov[i].iov_len;
  ssize_t w;
  do w = writev(c->fd, iov, n);
  while (w < 0 && errno == EINTR);
  if (w < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
    w = 0;
  }
  if ((size_t)w == total) return 0;
  size_t skip = (size_t)w;
  for (int i = 0; i < n; i++) {
    if (skip >= iov[i].iov_len) {
      skip -= iov[i].iov_len;
      continue;
    }
    out_append(c, (const char *)iov[i].iov_base + skip, iov[i].iov_len - skip);
    skip = 0;
  }
  if (!c->write_on) {
    event_add(c->wev, NULL);
    c->write_on = 1;
  }
  return 0;
}

static void conn_process(http_conn *c);

/* after an answer with "Connection: close" is out: stop writing; read (and
 * throw away) what the client still sends so the close does not reset the
 * connection before it read the answer */
static void conn_finish_close(http_conn *c) {
  if (c->dead || c->peer_closed || (c->len == c->next && !c->linger)) {
    conn_close(c);
    return;
  }
  shutdown(c->fd, SHUT_WR);
  c->lingering = 1;
  c->len = c->start = c->next = 0;
  if (c->read_paused) { /* it was full while busy: read (and drop) again */
    event_add(c->rev, c->w->idle);
    c->read_paused = 0;
  }
}

static const char *reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 202: return "Accepted";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Entity";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
  }
}

/* copies the string s to o; returns the end (no NUL) */
static char *put(char *o, const char *s) {
  size_t n = strlen(s);
  memcpy(o, s, n);
  return o + n;
}

/* at most max bytes of s (a header value from a handler: bounded so the head
 * cannot overflow) */
static char *putn(char *o, const char *s, size_t max) {
  size_t n = strnlen(s, max);
  memcpy(o, s, n);
  return o + n;
}

void http__send(http_worker *w, http_req *req, int status, const char *content_type, const char *body, size_t len) {
  http_conn *c = req->c;
  if (c->phase != P_BUSY) { /* a bug: answered twice */
    log_error("http: a request was answered twice (status %d); the second answer is dropped", status);
    return;
  }
  if (c->peer_closed && c->next == c->len) c->keep_alive = 0; /* the last one it sent */
  if (!c->dead) {
    int64_t now = clock_now_ms() / 1000;
    if (now != w->date_s) {
      clock_format_http(now, w->date, sizeof w->date);
      w->date_s = now;
    }
    const char *reason = reason_phrase(status);
    /* the head by hand: snprintf was 6% of a POST's instructions */
    char head[512], *o = head, digits[24];
    digits[23] = 0;
    o = put(o, c->minor ? "HTTP/1.1 " : "HTTP/1.0 ");
    *o++ = (char)('0' + status / 100);
    *o++ = (char)('0' + status / 10 % 10);
    *o++ = (char)('0' + status % 10);
    *o++ = ' ';
    o = put(o, reason);
    o = put(o, "\r\nContent-Type: ");
    o = putn(o, content_type, 64);
    o = put(o, "\r\nDate: ");
    o = put(o, w->date);
    o = put(o, "\r\nContent-Length: ");
    o = put(o, jsonout_digits(digits + 23, len));
    o = put(o, "\r\n");
    if (req->allow) {
      o = put(o, "Allow: ");
      o = putn(o, req->allow, 128);
      o = put(o, "\r\n");
    }
    if (!c->keep_alive) o = put(o, "Connection: close\r\n");
    else if (c->minor == 0) o = put(o, "Connection: keep-alive\r\n");
    o = put(o, "\r\n");
    size_t n = (size_t)(o - head);
    struct iovec iov[2] = {{head, n}, {(void *)body, c->head_only ? 0 : len}};
    if (conn_write(c, iov, iov[1].iov_len ? 2 : 1)) conn_kill(c);
  }
  c->start = c->next;
  c->phase = c->keep_alive ? P_HEAD : P_CLOSE;
  if (c->in_process) return; /* conn_process goes on from here */
  if (c->dead) {
    conn_free(c);
    return;
  }
  if (c->phase == P_CLOSE) {
    if (c->out_len == c->out_off) conn_finish_close(c);
    return;
  }
  conn_process(c);
}

/* refuses the request being read (its head or body is unacceptable) and
 * closes the connection after the answer */
static void reject(http_conn *c, int status, const char *code, const char *field, const char *why) {
  http_worker *w = c->w;
  c->req = (http_req){.c = c};
  c->keep_alive = 0;
  c->head_only = 0;
  c->linger = 1;
  c->phase = P_BUSY;
  c->next = c->len; /* nothing after it is read as a request */
  atomic_fetch_add_explicit(&w->srv->m.inflight, 1, memory_order_relaxed);
  http__error(w, &c->req, R_NONE, clock_mono_ns(), status, code, field, "%s", why);
}

static const char *head_error_code(int status) {
  switch (status) {
    case 431: return "headers_too_large";
    case 417: return "expectation_failed";
    case 501: return "not_implemented";
    case 505: return "http_version_not_supported";
    default: return "bad_request";
  }
}

/* Shortest job first: a connection whose request took this worker little time
 * (an event handed to the engine, a health check) is likely to send another
 * such, and its reads go before the others' (HTTP_PRI_FIRST). A write's answer
 * then waits for the engine, not for 30 recommendations queued ahead of it: at
 * full read load that halved single-event POSTs' median latency. So that a
 * flood of cheap requests cannot starve the rest, nobody goes first while no
 * normal-priority request has been served for STARVE_NS. */
static void set_priority(http_conn *c, int64_t t0) {
  if (c->dead) return;
  int64_t now = clock_mono_ns();
  int pri = now - t0 < CHEAP_NS && now - c->w->normal_ran_ns < STARVE_NS ? HTTP_PRI_FIRST : HTTP_PRI_NORMAL;
  if (pri != c->pri && !event_priority_set(c->rev, pri)) c->pri = pri;
}

static void conn_process(http_conn *c) {
  http_worker *w = c->w;
  c->in_process = 1;
  while (!c->dead && (c->phase == P_HEAD || c->phase == P_BODY) && c->out_len == c->out_off) {
    if (c->phase == P_HEAD) {
      if (c->start == c->len) break;
      int r = http_head_parse(c->in + c->start, c->len - c->start, &c->h);
      if (r == 0) break;
      if (r < 0) {
        reject(c, -r, head_error_code(-r), c->h.field, c->h.error);
        break;
      }
      c->body_at = c->start + (size_t)r;
      c->target_at = (size_t)(c->h.target - (c->in + c->start));
      c->ctype_at = c->h.content_type ? (size_t)(c->h.content_type - (c->in + c->start)) : 0;
      c->keep_alive = c->h.keep_alive;
      c->minor = c->h.minor;
      if (c->h.content_length > 0 && (uint64_t)c->h.content_length > body_cap(w)) {
        char why[160];
        snprintf(why, sizeof why, "body: Content-Length %lld is over the limit of %lld bytes (max_body)",
                 (long long)c->h.content_length, (long long)w->srv->cfg->max_body);
        c->len = c->body_at; /* the body is not read */
        reject(c, 413, "body_too_large", "", why);
        break;
      }
      memset(&c->ch, 0, sizeof c->ch);
      c->phase = P_BODY;
      if (c->h.expect_continue && c->len == c->body_at) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        struct iovec iov = {(void *)cont, sizeof cont - 1};
        if (conn_write(c, &iov, 1)) {
          conn_close(c);
          break;
        }
      }
    }
    /* P_BODY */
    size_t body_len;
    if (c->h.chunked) {
      const char *err = NULL;
      int rc = http_chunks_parse(&c->ch, c->in + c->body_at, c->len - c->body_at, body_cap(w), &err);
      if (rc == 0 && c->len - c->body_at >= body_cap(w) * 2 + 65536) rc = -2; /* framing without end */
      if (rc == 0) {
        ensure_in(c, c->len + READ_CHUNK);
        break;
      }
      if (rc == -2) {
        c->len = c->body_at;
        reject(c, 413, "body_too_large", "", "body: over the limit (max_body)");
        break;
      }
      if (rc < 0) {
        reject(c, 400, "bad_request", "body", err);
        break;
      }
      body_len = c->ch.out;
      c->next = c->body_at + c->ch.in;
    } else {
      size_t cl = c->h.content_length > 0 ? (size_t)c->h.content_length : 0;
      if (c->len - c->body_at < cl) {
        ensure_in(c, c->body_at + cl);
        break;
      }
      body_len = cl;
      c->next = c->body_at + cl;
    }
    c->req = (http_req){.c = c,
                        .method = c->h.method,
                        .target = c->in + c->start + c->target_at,
                        .content_type = c->h.content_type ? c->in + c->start + c->ctype_at : NULL,
                        .body = c->in + c->body_at,
                        .body_len = body_len};
    c->head_only = c->h.method == M_HEAD;
    c->phase = P_BUSY;
    int64_t t0 = clock_mono_ns();
    if (c->pri == HTTP_PRI_NORMAL) w->normal_ran_ns = t0;
    http__dispatch(w, &c->req, t0);
    set_priority(c, t0);
  }
  c->in_process = 0;
  if (c->dead) {
    if (c->phase != P_BUSY) conn_free(c);
    return;
  }
  if (c->phase == P_CLOSE) {
    if (c->out_len == c->out_off) conn_finish_close(c);
    return;
  }
  /* (with answers still queued, conn_send goes on once they are out) */
  if (c->peer_closed && (c->phase == P_HEAD || c->phase == P_BODY) && c->out_len == c->out_off) {
    conn_close(c); /* the rest of a request that will never be complete */
    return;
  }
  if (c->phase == P_HEAD || c->phase == P_BODY) compact(c);
  if (c->read_paused && c->phase != P_BUSY) {
    event_add(c->rev, w->idle);
    c->read_paused = 0;
  }
}

static void on_read(evutil_socket_t fd, short what, void *arg) {
  http_conn *c = arg;
  if (what & EV_TIMEOUT) {
    if (c->phase != P_BUSY) conn_close(c);
    return;
  }
  for (int rounds = 0; rounds < 16; rounds++) {
    if (c->lingering) {
      char sink[READ_CHUNK];
      ssize_t n = read(fd, sink, sizeof sink);
      if (n > 0 && (c->drained += (size_t)n) < DRAIN_MAX) continue;
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      conn_close(c);
      return;
    }
    /* the limit on what is buffered: the head, then the body (chunked: its
     * raw bytes may carry a few per cent of framing) */
    size_t limit = c->phase == P_BODY ? c->body_at + body_cap(c->w) * 2 + 65536 : c->start + HTTP_MAX_HEAD + 4096;
    if (c->phase == P_BUSY) {
      /* the request's target and body point into `in`: no realloc, no
       * compaction until it is answered; pipelined bytes fill the room left */
      if (c->len == c->cap) {
        event_del(c->rev);
        c->read_paused = 1;
        return;
      }
    } else {
      if (c->len >= limit) break; /* conn_process refuses it */
      ensure_in(c, c->len + 1024 < limit ? c->len + 1024 : limit);
    }
    size_t room = c->cap - c->len;
    if (c->phase != P_BUSY && room > limit - c->len) room = limit - c->len;
    ssize_t n = read(fd, c->in + c->len, room);
    if (n == 0) {
      /* EOF: nothing more will come. A client that only shut down its
       * sending side still gets the answers to what it sent (the busy one's
       * and any buffered); one that is gone makes the writes fail. */
      if (c->phase == P_CLOSE || (c->phase != P_BUSY && c->len == c->start)) {
        conn_close(c);
        return;
      }
      event_del(c->rev); /* level-triggered EOF would fire again and again */
      c->peer_closed = 1;
      break;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      conn_close(c);
      return;
    }
    c->len += (size_t)n;
    if ((size_t)n < room) break;
  }
  if (c->phase != P_BUSY) conn_process(c);
}

/* sends what `out` holds (a full socket: the rest when it is writable);
 * all sent, the connection goes on (closes, or reads its next request) */
static void conn_send(http_conn *c) {
  while (c->out_off < c->out_len) {
    ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (!c->write_on) {
          event_add(c->wev, NULL);
          c->write_on = 1;
        }
        return;
      }
      conn_close(c);
      return;
    }
    c->out_off += (size_t)n;
  }
  c->out_off = c->out_len = 0;
  if (c->write_on) {
    event_del(c->wev);
    c->write_on = 0;
  }
  if (c->phase == P_CLOSE) {
    conn_finish_close(c);
    return;
  }
  if (c->phase != P_BUSY) conn_process(c);
}

static void on_write(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  conn_send(arg);
}

void http__conns_flush(http_worker *w) {
  http_conn *c;
  while ((c = w->corked)) { /* conn_send may cork more (the next pipelined answers) */
    w->corked = c->cork_next;
    c->corked = 0;
    if (!c->dead && !c->write_on) conn_send(c);
  }
}

void http__conn_accept(http_worker *w, int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  http_conn *c = xcalloc(1, sizeof *c);
  atomic_fetch_add_explicit(&w->srv->m.connections, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&w->srv->m.connections_total, 1, memory_order_relaxed);
  c->w = w;
  c->fd = fd;
  c->keep_alive = 1;
  c->minor = 1;
  c->pri = HTTP_PRI_NORMAL;
  c->rev = event_new(w->base, fd, EV_READ | EV_PERSIST, on_read, c);
  c->wev = event_new(w->base, fd, EV_WRITE | EV_PERSIST, on_write, c);
  c->lnext = w->conns;
  if (c->lnext) c->lnext->lprev = c;
  w->conns = c;
  event_add(c->rev, w->idle);
}

void http__conns_close(http_worker *w) {
  while (w->conns) conn_free(w->conns);
}
