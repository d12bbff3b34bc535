/* http_int.h — private to src/http: worker and request context. */
#ifndef RECD_HTTP_HTTP_INT_H
#define RECD_HTTP_HTTP_INT_H

#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>

#include "engine/engine.h"
#include "http/metrics.h"
#include "http/route.h"
#include "http/server.h"

typedef struct http_worker http_worker;
typedef struct pending_write pending_write;
typedef struct http_conn http_conn;

/* one request, from its parsed head to its answer; lives in its connection */
typedef struct {
  http_conn *c;
  int method;               /* M_* of route.h; 0 for any other method */
  char *target;             /* NUL-terminated: path[?query], still percent-encoded */
  const char *content_type; /* NUL-terminated, or NULL */
  char *body;               /* body_len bytes (not NUL-terminated) */
  size_t body_len;
  const char *allow;        /* an Allow header for the answer (405), or NULL */
} http_req;

/* event priorities in a worker's loop (server.c) */
enum { HTTP_PRI_FIRST = 0, HTTP_PRI_NORMAL = 1 };

struct http_worker {
  http_server *srv;
  struct event_base *base;
  struct event *listener;      /* accepts on the shared socket; deleted at shutdown */
  struct event *accept_retry;  /* re-adds the listener after running out of descriptors */
  struct event *wake;          /* activated by the writer thread */
  struct event *stop;          /* activated at shutdown: stop accepting */
  const struct timeval *idle;  /* the idle timeout, as a libevent common timeout */
  http_conn *conns;            /* every open connection (a list, for shutdown) */
  pthread_t thread;
  pthread_mutex_t done_lock;
  pending_write *done_head;    /* completed writes to answer */
  struct event *adopt;         /* activated when another worker hands this one connections */
  int *adopt_fds;              /* those connections (under done_lock) */
  int nadopt, adopt_cap;
  struct event *flush;         /* activated when an answer is corked (conn.c, http__conns_flush) */
  http_conn *corked;           /* connections with corked answers (a list through them) */
  int64_t normal_ran_ns;       /* when a normal-priority request was last served (conn.c) */
  int64_t date_s;              /* the second `date` names (Date header, made once a second) */
  char date[32];
};

struct http_server {
  recd_engine *e;
  const recd_config *cfg;
  int fd, port;
  int nworkers;
  http_worker *workers;
  metrics m;
  int64_t started_ms;
  int wake_pipe[2];            /* stop signal */
  _Atomic int stopping;        /* writes are refused with 503 shutting_down */
  _Atomic unsigned next_worker; /* who gets the next accepted connection (round robin) */
};

/* a write waiting for the engine; freed after the reply */
struct pending_write {
  http_worker *w;
  http_req *req;
  route_id route;
  int64_t t0;
  json_t *root;                /* keeps event strings alive */
  recd_event *events;
  recd_item *items;
  arena a;
  engine_op op;
  size_t count;
  char item_id[RECD_MAX_ID_LEN + 1];
  /* a model job (promote, rollback): run on its own thread, answered like a write */
  void (*run)(pending_write *p);
  uint64_t version;
  int job_rc;
  json_t *result;
  recd_fail fail;
  int64_t done_ns;             /* when the engine (or the job) answered */
  pending_write *next;
};

void http__reply_json(http_worker *w, http_req *req, route_id r, int64_t t0, int status, json_t *body);
void http__reply_error(http_worker *w, http_req *req, route_id r, int64_t t0, const recd_fail *f);
void http__error(http_worker *w, http_req *req, route_id r, int64_t t0, int status, const char *code,
                 const char *field, const char *fmt, ...) __attribute__((format(printf, 8, 9)));
void http__dispatch(http_worker *w, http_req *req, int64_t t0); /* t0: clock_mono_ns() at dispatch */
void http__finish_write(pending_write *p);  /* on the worker thread */
/* run p->run(p) on a new thread, then answer it through http__finish_write on
 * p's worker (counted as a write in flight, so shutdown waits for it) */
int http__submit_job(pending_write *p);

/* conn.c: connections of a worker */
void http__conn_accept(http_worker *w, int fd);
/* Answers req: the status line, Content-Type, Date, Content-Length (and
 * Allow, Connection when needed), then the body (left out for HEAD). The
 * request is over; the connection reads its next one, or closes. */
void http__send(http_worker *w, http_req *req, int status, const char *content_type, const char *body, size_t len);
void http__conns_close(http_worker *w); /* at shutdown, after the loop ended */
void http__conns_flush(http_worker *w); /* the corked answers go out (the flush event) */

#endif
