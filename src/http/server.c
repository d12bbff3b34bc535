/* server.c — listening socket, worker threads (an event loop each, accepting
 * from the one socket), the write-completion queue, orderly shutdown (stop
 * accepting, let in-flight writes finish, exit). Connections: conn.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/http_int.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"

static _Atomic int64_t g_writes_inflight; /* per process; servers are few */

/* another worker accepted connections for this one */
static void on_adopt(evutil_socket_t fd, short what, void *arg) {
  http_worker *w = arg;
  (void)fd;
  (void)what;
  pthread_mutex_lock(&w->done_lock); /* take them all, as on_wake takes its list */
  int *fds = w->adopt_fds, n = w->nadopt;
  w->adopt_fds = NULL;
  w->nadopt = w->adopt_cap = 0;
  pthread_mutex_unlock(&w->done_lock);
  for (int i = 0; i < n; i++) {
    if (atomic_load(&w->srv->stopping)) close(fds[i]);
    else http__conn_accept(w, fds[i]);
  }
  free(fds);
}

static void on_flush(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  http__conns_flush(arg);
}

/* Connections go to the workers in turn, whoever accepts them: left to
 * the race for the listening socket, the first worker to wake took nearly
 * all of a burst (wrk's 64 connections split 5:1 in CPU time), leaving the
 * other CPU idle. */
static void assign(http_worker *w, int fd) {
  http_server *s = w->srv;
  http_worker *to = &s->workers[atomic_fetch_add(&s->next_worker, 1) % (unsigned)s->nworkers];
  if (to == w) {
    http__conn_accept(w, fd);
    return;
  }
  pthread_mutex_lock(&to->done_lock);
  if (to->nadopt == to->adopt_cap) {
    to->adopt_cap = to->adopt_cap ? to->adopt_cap * 2 : 64;
    to->adopt_fds = xrealloc(to->adopt_fds, (size_t)to->adopt_cap * sizeof *to->adopt_fds);
  }
  to->adopt_fds[to->nadopt++] = fd;
  pthread_mutex_unlock(&to->done_lock);
  event_active(to->adopt, EV_READ, 0);
}

/* the listening socket is readable: take every waiting connection (the
 * other workers' loops race for them too; the losers see EAGAIN) */
static void on_accept(evutil_socket_t fd, short what, void *arg) {
  http_worker *w = arg;
  (void)what;
  for (int i = 0; i < 64; i++) {
    int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c >= 0) {
      assign(w, c);
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
      /* out of descriptors: stop accepting for a moment, not spin */
      static _Atomic int64_t last_log;
      int64_t now = clock_now_ms();
      if (now - atomic_load(&last_log) > 10000) {
        atomic_store(&last_log, now);
        log_warn("accept: %s; pausing new connections for 100 ms (raise `ulimit -n`?)", strerror(errno));
      }
      event_del(w->listener);
      struct timeval tv = {0, 100000};
      event_add(w->accept_retry, &tv);
    }
    return;
  }
}

static void on_accept_retry(evutil_socket_t fd, short what, void *arg) {
  http_worker *w = arg;
  (void)fd;
  (void)what;
  if (!atomic_load(&w->srv->stopping)) event_add(w->listener, NULL);
}

static void on_wake(evutil_socket_t fd, short what, void *arg) {
  http_worker *w = arg;
  (void)fd;
  (void)what;
  pthread_mutex_lock(&w->done_lock);
  pending_write *p = w->done_head;
  w->done_head = NULL;
  pthread_mutex_unlock(&w->done_lock);
  /* the list is LIFO; answer in arrival order */
  pending_write *rev = NULL;
  while (p) {
    pending_write *n = p->next;
    p->next = rev;
    rev = p;
    p = n;
  }
  int64_t now = clock_mono_ns();
  while (rev) {
    pending_write *n = rev->next;
    if (!rev->run) engine_hist_add(&w->srv->m.answer, now - rev->done_ns); /* engine writes, not jobs */
    http__finish_write(rev);
    atomic_fetch_sub(&g_writes_inflight, 1);
    rev = n;
  }
}

static void on_stop(evutil_socket_t fd, short what, void *arg) {
  http_worker *w = arg;
  (void)fd;
  (void)what;
  event_del(w->listener);
  event_del(w->accept_retry);
}

/* engine writer thread: hand the completed write back to its worker */
static void on_write_done(void *arg, int rc) {
  pending_write *p = arg;
  (void)rc;
  http_worker *w = p->w;
  p->done_ns = clock_mono_ns();
  pthread_mutex_lock(&w->done_lock);
  p->next = w->done_head;
  w->done_head = p;
  pthread_mutex_unlock(&w->done_lock);
  event_active(w->wake, EV_READ, 0);
}

/* used by handlers.c */
int http__submit(pending_write *p);
int http__submit(pending_write *p) {
  p->op.done = on_write_done;
  p->op.arg = p;
  atomic_fetch_add(&g_writes_inflight, 1);
  int rc = engine_submit(p->w->srv->e, &p->op);
  if (rc) atomic_fetch_sub(&g_writes_inflight, 1);
  return rc;
}

static void *job_main(void *arg) {
  pending_write *p = arg;
  p->run(p);
  on_write_done(p, 0);
  return NULL;
}

int http__submit_job(pending_write *p) {
  atomic_fetch_add(&g_writes_inflight, 1);
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
  pthread_t t;
  int rc = pthread_create(&t, &a, job_main, p);
  pthread_attr_destroy(&a);
  if (rc) atomic_fetch_sub(&g_writes_inflight, 1);
  return rc ? -rc : 0;
}

static int parse_listen(const char *spec, char *host, size_t hostcap, char *port, size_t portcap) {
  const char *colon;
  if (spec[0] == '[') {
    const char *rb = strchr(spec, ']');
    if (!rb || rb[1] != ':') return -1;
    snprintf(host, hostcap, "%.*s", (int)(rb - spec - 1), spec + 1);
    colon = rb + 1;
  } else {
    colon = strrchr(spec, ':');
    if (!colon) return -1;
    snprintf(host, hostcap, "%.*s", (int)(colon - spec), spec);
  }
  snprintf(port, portcap, "%s", colon + 1);
  if (!*port) return -1;
  for (const char *c = port; *c; c++)
    if (*c < '0' || *c > '9') return -1;
  if (atoi(port) > 65535) return -1;
  return 0;
}

static int bind_socket(const char *spec, int *port_out, char *err, size_t errlen) {
  char host[256], port[16];
  if (parse_listen(spec, host, sizeof host, port, sizeof port)) {
    snprintf(err, errlen, "listen: '%s' is not HOST:PORT (e.g. 127.0.0.1:8080, [::1]:8080, 0.0.0.0:80)", spec);
    return RECD_EINVAL;
  }
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
  int gai = getaddrinfo(*host ? host : NULL, port, &hints, &res);
  if (gai) {
    snprintf(err, errlen, "listen: cannot resolve '%s': %s", host, gai_strerror(gai));
    return RECD_EINVAL;
  }
  int fd = -1, saved = 0;
  for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (!bind(fd, ai->ai_addr, ai->ai_addrlen) && !listen(fd, 1024)) break;
    saved = errno;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0) {
    snprintf(err, errlen, "listen: cannot bind %s: %s", spec, strerror(saved));
    return -saved;
  }
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  getsockname(fd, (struct sockaddr *)&ss, &sl);
  *port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
  return fd;
}

/* A worker's loop has two priorities: HTTP_PRI_FIRST (answers the engine
 * finished, connections whose last request was cheap) runs before
 * HTTP_PRI_NORMAL (the rest). libevent runs every active callback of one
 * priority before it looks again, so a write completed while 30 connections'
 * reads are queued would wait for all of them (~1 ms at full load); it looks
 * again after HTTP_NORMAL_SLICE_US of normal-priority callbacks instead. */
#define HTTP_NORMAL_SLICE_US 200
static struct event_base *new_base(void) {
  struct event_config *cfg = event_config_new();
  if (!cfg) return NULL;
  struct timeval slice = {0, HTTP_NORMAL_SLICE_US};
  struct event_base *b = NULL;
  if (!event_config_set_max_dispatch_interval(cfg, &slice, -1, HTTP_PRI_NORMAL)) b = event_base_new_with_config(cfg);
  event_config_free(cfg);
  if (b && event_base_priority_init(b, 2)) {
    event_base_free(b);
    b = NULL;
  }
  return b;
}

int http_server_new(recd_engine *e, http_server **out, char *err, size_t errlen) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, (void (*)(void))evthread_use_pthreads);
  http_server *s = xcalloc(1, sizeof *s);
  s->e = e;
  s->cfg = engine_config(e);
  s->started_ms = clock_now_ms();
  s->wake_pipe[0] = s->wake_pipe[1] = -1;
  metrics_init(&s->m);
  int fd = bind_socket(s->cfg->listen, &s->port, err, errlen);
  if (fd < 0) {
    free(s);
    return fd;
  }
  s->fd = fd;
  if (pipe2(s->wake_pipe, O_CLOEXEC)) {
    snprintf(err, errlen, "pipe: %s", strerror(errno));
    close(fd);
    free(s);
    return -errno;
  }
  s->nworkers = s->cfg->threads;
  s->workers = xcalloc((size_t)s->nworkers, sizeof *s->workers);
  for (int i = 0; i < s->nworkers; i++) {
    http_worker *w = &s->workers[i];
    w->srv = s;
    pthread_mutex_init(&w->done_lock, NULL);
    w->base = new_base();
    w->listener = event_new(w->base, fd, EV_READ | EV_PERSIST, on_accept, w);
    w->accept_retry = evtimer_new(w->base, on_accept_retry, w);
    w->wake = event_new(w->base, -1, 0, on_wake, w);
    w->stop = event_new(w->base, -1, 0, on_stop, w);
    w->adopt = event_new(w->base, -1, 0, on_adopt, w);
    w->flush = event_new(w->base, -1, 0, on_flush, w);
    /* answers the engine finished go out before more requests are read */
    if (w->wake) event_priority_set(w->wake, HTTP_PRI_FIRST);
    /* corked answers go out behind the requests ready when the first was corked (conn.c) */
    if (w->flush) event_priority_set(w->flush, HTTP_PRI_NORMAL);
    /* connections idle for a minute are closed (one timer queue for all) */
    struct timeval idle = {60, 0};
    w->idle = event_base_init_common_timeout(w->base, &idle);
    if (!w->base || !w->listener || !w->accept_retry || !w->wake || !w->stop || !w->adopt || !w->flush || !w->idle ||
        event_add(w->listener, NULL)) {
      snprintf(err, errlen, "listen: cannot set up the event loop");
      http_server_free(s);
      return RECD_EIO;
    }
  }
  *out = s;
  return 0;
}

int http_server_port(const http_server *s) { return s->port; }

static void *worker_main(void *arg) {
  http_worker *w = arg;
  /* until http_server_run ends it: once stopping, the listener is gone, and a
   * write whose client left has no event of its own until its answer is
   * handed back (on_wake), which a loop that exits when empty would drop */
  event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
  http__conns_flush(w); /* answers corked in the loop's last turn */
  return NULL;
}

int http_server_run(http_server *s) {
  for (int i = 0; i < s->nworkers; i++) pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]);
  char c;
  while (read(s->wake_pipe[0], &c, 1) < 0 && errno == EINTR) {
  }
  log_info("shutting down: no new connections or writes; finishing in-flight writes");
  atomic_store(&s->stopping, 1);
  for (int i = 0; i < s->nworkers; i++) event_active(s->workers[i].stop, EV_READ, 0);
  for (int t = 0; t < 1000 && atomic_load(&g_writes_inflight) > 0; t++) usleep(10000);
  for (int i = 0; i < s->nworkers; i++) event_base_loopexit(s->workers[i].base, NULL);
  for (int i = 0; i < s->nworkers; i++) pthread_join(s->workers[i].thread, NULL);
  return 0;
}

void http_server_stop(http_server *s) {
  char c = 1;
  ssize_t r = write(s->wake_pipe[1], &c, 1);
  (void)r;
}

void http_server_free(http_server *s) {
  if (!s) return;
  for (int i = 0; i < s->nworkers; i++) {
    http_worker *w = &s->workers[i];
    http__conns_close(w);
    if (w->listener) event_free(w->listener);
    if (w->accept_retry) event_free(w->accept_retry);
    if (w->wake) event_free(w->wake);
    if (w->adopt) event_free(w->adopt);
    if (w->flush) event_free(w->flush);
    for (int k = 0; k < w->nadopt; k++) close(w->adopt_fds[k]);
    free(w->adopt_fds);
    if (w->stop) event_free(w->stop);
    if (w->base) event_base_free(w->base);
    pthread_mutex_destroy(&w->done_lock);
  }
  free(s->workers);
  if (s->fd >= 0) close(s->fd);
  if (s->wake_pipe[0] >= 0) close(s->wake_pipe[0]);
  if (s->wake_pipe[1] >= 0) close(s->wake_pipe[1]);
  free(s);
}
