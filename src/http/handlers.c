/* handlers.c — one function per endpoint: parse and validate the request,
 * call the engine, render JSON. Every 4xx names the field and the problem. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/http_int.h"
#include "util/jsonout.h"
#include "http/request.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"

int http__submit(pending_write *p);

#define MAX_LIST_PARAMS 64

/* ---- replies ---- */

static void reply_buf(http_worker *w, http_req *req, route_id r, int64_t t0, int status, const char *content_type,
                      const char *body, size_t len) {
  /* counted before the answer leaves: a client that reads it and then asks
   * /metrics (maybe another worker) sees it counted */
  metrics_observe(&w->srv->m, r, status, clock_mono_ns() - t0);
  http__send(w, req, status, content_type, body, len);
}

void http__reply_json(http_worker *w, http_req *req, route_id r, int64_t t0, int status, json_t *body) {
  jsonout j;
  jsonout_init(&j);
  char *s = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(6));
  json_decref(body);
  if (s) {
    jsonout_raw(&j, s, strlen(s));
    jsonout_raw(&j, "\n", 1);
    free(s);
  }
  reply_buf(w, req, r, t0, status, "application/json", j.p, j.len);
  jsonout_release(&j);
}

/* a body already rendered as JSON text (jsonout) */
static void reply_text(http_worker *w, http_req *req, route_id r, int64_t t0, int status, jsonout *j) {
  jsonout_raw(j, "\n", 1);
  reply_buf(w, req, r, t0, status, "application/json", j->p, j->len);
  jsonout_release(j);
}

void http__reply_error(http_worker *w, http_req *req, route_id r, int64_t t0, const recd_fail *f) {
  json_t *err = json_pack("{s:s,s:s}", "code", f->code, "message", f->message);
  if (f->field[0]) json_object_set_new(err, "field", json_string(f->field));
  if (f->index >= 0) json_object_set_new(err, "index", json_integer(f->index));
  http__reply_json(w, req, r, t0, f->status, json_pack("{s:o}", "error", err));
}

void http__error(http_worker *w, http_req *req, route_id r, int64_t t0, int status, const char *code,
                 const char *field, const char *fmt, ...) {
  recd_fail f = {.index = -1};
  f.status = status;
  snprintf(f.code, sizeof f.code, "%s", code);
  snprintf(f.field, sizeof f.field, "%s", field ? field : "");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(f.message, sizeof f.message, fmt, ap);
  va_end(ap);
  http__reply_error(w, req, r, t0, &f);
}

/* ---- query parameters ---- */

#define MAX_QUERY_PARAMS 256

typedef struct {
  http_param p[MAX_QUERY_PARAMS];
  int n;
} query;

/* the query string of req's target, split and decoded in place */
static int query_parse(http_req *req, query *q, const char *const *allowed, char *bad, size_t badlen) {
  q->n = 0;
  char *qs = strchr(req->target, '?');
  if (!qs || !qs[1]) return 0;
  const char *why;
  int n = http_query_parse(qs + 1, q->p, MAX_QUERY_PARAMS, &why);
  if (n < 0) {
    snprintf(bad, badlen, "%s", why);
    return -1;
  }
  q->n = n;
  for (int k = 0; k < n; k++) {
    int ok = 0;
    for (int i = 0; allowed && allowed[i]; i++) ok |= !strcmp(q->p[k].key, allowed[i]);
    if (!ok) {
      snprintf(bad, badlen, "%.64s", q->p[k].key);
      return -2;
    }
  }
  return 0;
}

static const char *query_get(query *q, const char *key) {
  for (int k = 0; k < q->n; k++)
    if (!strcmp(q->p[k].key, key)) return q->p[k].value;
  return NULL;
}

/* all values of a repeated parameter; returns cap + 1 when there are more than cap */
static size_t query_all(query *q, const char *key, const char **out, size_t cap) {
  size_t n = 0;
  for (int k = 0; k < q->n; k++) {
    if (strcmp(q->p[k].key, key)) continue;
    if (n == cap) return cap + 1;
    out[n++] = q->p[k].value;
  }
  return n;
}

/* returns 0 or replies with an error and returns -1 */
static int parse_query(http_worker *w, http_req *req, route_id r, int64_t t0, query *q,
                       const char *const *allowed) {
  char bad[128];
  int rc = query_parse(req, q, allowed, bad, sizeof bad);
  if (rc == -1) {
    http__error(w, req, r, t0, 400, "invalid_parameter", "", "query: %s", bad);
  } else if (rc == -2) {
    char known[256] = "";
    for (int i = 0; allowed && allowed[i]; i++)
      snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "", allowed[i]);
    http__error(w, req, r, t0, 400, "invalid_parameter", bad, "%s: unknown query parameter (known: %s)", bad,
                *known ? known : "none");
  }
  return rc ? -1 : 0;
}

static int parse_n(http_worker *w, http_req *req, route_id r, int64_t t0, query *q, size_t *n) {
  const recd_config *cfg = w->srv->cfg;
  const char *v = query_get(q, "n");
  *n = (size_t)cfg->default_n;
  if (!v) return 0;
  char *end;
  errno = 0;
  long x = strtol(v, &end, 10);
  if (!*v || *end || errno || x < 1 || x > cfg->max_n) {
    http__error(w, req, r, t0, 400, "invalid_parameter", "n", "n: '%.32s' is not a whole number from 1 to %d", v,
                cfg->max_n);
    return -1;
  }
  *n = (size_t)x;
  return 0;
}

static int check_list(http_worker *w, http_req *req, route_id r, int64_t t0, const char *name,
                      const char **v, size_t n) {
  if (n > MAX_LIST_PARAMS) {
    http__error(w, req, r, t0, 400, "invalid_parameter", name, "%s: given more than %d times", name, MAX_LIST_PARAMS);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    size_t len = strlen(v[i]);
    int bad = len == 0 || len > RECD_MAX_ID_LEN;
    for (size_t k = 0; k < len && !bad; k++) bad = (unsigned char)v[i][k] < 0x20 || v[i][k] == 0x7f;
    if (bad) {
      http__error(w, req, r, t0, 400, "invalid_parameter", name, "%s: '%.64s' must be 1 to %d bytes with no control characters",
                  name, v[i], RECD_MAX_ID_LEN);
      return -1;
    }
  }
  return 0;
}

/* ---- bodies ---- */

/* the checks every JSON body passes first: 0, or answered and -1 */
static int body_check(http_worker *w, http_req *req, route_id r, int64_t t0) {
  const char *ct = req->content_type;
  if (ct && (strncasecmp(ct, "application/json", 16) || (ct[16] && ct[16] != ';' && ct[16] != ' '))) {
    http__error(w, req, r, t0, 415, "unsupported_media_type", "Content-Type",
                "Content-Type: '%.64s' is not supported; send application/json", ct);
    return -1;
  }
  size_t len = req->body_len;
  if ((int64_t)len > w->srv->cfg->max_body) {
    http__error(w, req, r, t0, 413, "body_too_large", "", "body: %zu bytes, the limit is %lld (max_body)", len,
                (long long)w->srv->cfg->max_body);
    return -1;
  }
  if (len == 0) {
    http__error(w, req, r, t0, 400, "invalid_json", "", "body: empty; send a JSON object");
    return -1;
  }
  return 0;
}

/* the body as a JSON object (body_check passed), or answered and NULL */
static json_t *parse_json(http_worker *w, http_req *req, route_id r, int64_t t0) {
  json_error_t je;
  json_t *root = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
  if (!root) {
    http__error(w, req, r, t0, 400, "invalid_json", "", "body: invalid JSON at line %d, column %d: %s", je.line,
                je.column, je.text);
    return NULL;
  }
  if (!json_is_object(root)) {
    http__error(w, req, r, t0, 400, "invalid_json", "", "body: must be a JSON object");
    json_decref(root);
    return NULL;
  }
  return root;
}

static json_t *read_json(http_worker *w, http_req *req, route_id r, int64_t t0) {
  return body_check(w, req, r, t0) ? NULL : parse_json(w, req, r, t0);
}

static pending_write *pending_new(http_worker *w, http_req *req, route_id r, int64_t t0) {
  pending_write *p = xcalloc(1, sizeof *p);
  p->w = w;
  p->req = req;
  p->route = r;
  p->t0 = t0;
  arena_init(&p->a);
  return p;
}

static void pending_free(pending_write *p) {
  json_decref(p->root);
  json_decref(p->result);
  arena_release(&p->a);
  free(p);
}

static void submit(pending_write *p) {
  int rc = atomic_load(&p->w->srv->stopping) ? RECD_ECLOSED : http__submit(p);
  if (rc) {
    http__error(p->w, p->req, p->route, p->t0, 503, rc == RECD_EFATAL ? "store_failed" : "shutting_down", "",
                "%s", rc == RECD_EFATAL ? "the store failed an earlier write; writes are refused until restart"
                                        : "the server is shutting down");
    pending_free(p);
  }
}

void http__finish_write(pending_write *p) {
  http_worker *w = p->w;
  if (p->run) { /* a model job */
    if (p->job_rc) http__reply_error(w, p->req, p->route, p->t0, &p->fail);
    else http__reply_json(w, p->req, p->route, p->t0, 200, p->result ? p->result : json_object());
    p->result = NULL;
  } else if (p->op.rc) {
    http__error(w, p->req, p->route, p->t0, 503, "store_failed", "",
                "the write could not be made durable (%s); nothing was stored", recd_strerror(p->op.rc));
  } else {
    switch (p->route) {
      case R_EVENTS: { /* the hot write path: {"accepted":N} without jansson */
        jsonout j;
        jsonout_init(&j);
        jsonout_lit(&j, "{\"accepted\":");
        jsonout_u64(&j, p->count);
        jsonout_lit(&j, "}");
        reply_text(w, p->req, p->route, p->t0, 200, &j);
        break;
      }
      case R_ITEMS:
        http__reply_json(w, p->req, p->route, p->t0, 200, json_pack("{s:I}", "upserted", (json_int_t)p->count));
        break;
      case R_ITEM:
        if (p->op.kind == OP_DELETE_ITEM) {
          if (p->op.found)
            http__reply_json(w, p->req, p->route, p->t0, 200, json_pack("{s:s,s:b}", "item_id", p->item_id, "deleted", 1));
          else
            http__error(w, p->req, p->route, p->t0, 404, "not_found", "item_id", "item '%.64s' does not exist", p->item_id);
        } else {
          json_t *it = engine_item_get(w->srv->e, p->item_id);
          http__reply_json(w, p->req, p->route, p->t0, 200, it ? it : json_object());
        }
        break;
      default:
        http__reply_json(w, p->req, p->route, p->t0, 200, json_object());
    }
  }
  pending_free(p);
}

/* ---- endpoints ---- */

/* p's op: the n events or items read into p */
static size_t events_op(pending_write *p, size_t n) {
  p->op = (engine_op){.kind = OP_EVENTS, .events = p->events, .nevents = n};
  return n;
}
static size_t items_op(pending_write *p, size_t n) {
  p->op = (engine_op){.kind = OP_ITEMS, .items = p->items, .nitems = n};
  return n;
}

/* the body's events into p->events (the plain reader, else jansson, whose
 * tree p keeps for the strings): their count, or 0 when it answered an error */
static size_t read_events(http_worker *w, http_req *req, route_id r, int64_t t0, pending_write *p) {
  const recd_config *cfg = w->srv->cfg;
  int64_t now = clock_now_ms();
  size_t n;
  if (!engine_parse_events_text(w->srv->e, req->body, req->body_len, now, (size_t)cfg->max_batch, &p->a, &p->events,
                                &n))
    return events_op(p, n);
  json_t *root = p->root = parse_json(w, req, r, t0);
  if (!root) return 0;
  json_t *list = json_object_get(root, "events");
  n = 1;
  if (list) {
    if (json_object_size(root) != 1) {
      http__error(w, req, r, t0, 400, "invalid_event", "events",
                  "body: a batch is {\"events\": [...]} with no other fields");
      return 0;
    }
    if (!json_is_array(list)) {
      http__error(w, req, r, t0, 400, "invalid_event", "events", "events: must be a list of event objects");
      return 0;
    }
    n = json_array_size(list);
    if (n == 0) {
      http__error(w, req, r, t0, 400, "invalid_event", "events", "events: the batch is empty");
      return 0;
    }
    if (n > (size_t)cfg->max_batch) {
      http__error(w, req, r, t0, 413, "batch_too_large", "events", "events: %zu events, the limit is %d (max_batch)", n,
                  cfg->max_batch);
      return 0;
    }
  }
  p->events = arena_alloc(&p->a, n * sizeof *p->events);
  recd_fail f;
  for (size_t i = 0; i < n; i++) {
    json_t *ev = list ? json_array_get(list, i) : root;
    if (engine_parse_event(w->srv->e, ev, list ? (long)i : -1, now, &p->events[i], &f)) {
      http__reply_error(w, req, r, t0, &f);
      return 0;
    }
  }
  return events_op(p, n);
}

/* the body's items into p->items (the plain reader, else jansson, whose tree
 * p keeps for the strings): their count, or 0 when it answered an error */
static size_t read_items(http_worker *w, http_req *req, route_id r, int64_t t0, pending_write *p) {
  size_t n;
  if (!engine_parse_items_text(w->srv->e, req->body, req->body_len, clock_now_ms(), (size_t)w->srv->cfg->max_batch,
                               &p->a, &p->items, &n))
    return items_op(p, n);
  json_t *root = p->root = parse_json(w, req, r, t0);
  if (!root) return 0;
  json_t *list = json_object_get(root, "items");
  if (!list || !json_is_array(list) || json_object_size(root) != 1) {
    http__error(w, req, r, t0, 400, "invalid_item", "items", "items: the body must be {\"items\": [...]}");
    return 0;
  }
  n = json_array_size(list);
  if (n == 0) {
    http__error(w, req, r, t0, 400, "invalid_item", "items", "items: the batch is empty");
    return 0;
  }
  if (n > (size_t)w->srv->cfg->max_batch) {
    http__error(w, req, r, t0, 413, "batch_too_large", "items", "items: %zu items, the limit is %d (max_batch)", n,
                w->srv->cfg->max_batch);
    return 0;
  }
  p->items = arena_alloc(&p->a, n * sizeof *p->items);
  recd_fail f;
  for (size_t i = 0; i < n; i++) {
    if (engine_parse_item(w->srv->e, json_array_get(list, i), NULL, (long)i, &p->a, &p->items[i], &f)) {
      http__reply_error(w, req, r, t0, &f);
      return 0;
    }
  }
  return items_op(p, n);
}

/* POST /api/v1/events and POST /api/v1/items: the body's batch, read by
 * `read` (which also points p's op at it), goes to the writer */
typedef size_t (*batch_reader)(http_worker *w, http_req *req, route_id r, int64_t t0, pending_write *p);
static void h_batch(http_worker *w, http_req *req, route_id r, int64_t t0, batch_reader read) {
  if (body_check(w, req, r, t0)) return;
  pending_write *p = pending_new(w, req, r, t0);
  if (!(p->count = read(w, req, r, t0, p))) {
    pending_free(p);
    return;
  }
  submit(p);
}

static int id_ok(http_worker *w, http_req *req, route_id r, int64_t t0, const route_match *m,
                 const char *what) {
  recd_fail f;
  if (strlen(m->arg) != m->arg_len) {
    http__error(w, req, r, t0, 400, "invalid_parameter", what, "%s: contains a NUL byte", what);
    return 0;
  }
  if (engine_check_id(m->arg, m->arg_len, what, -1, what, &f)) {
    f.status = 400;
    snprintf(f.code, sizeof f.code, "invalid_parameter");
    http__reply_error(w, req, r, t0, &f);
    return 0;
  }
  return 1;
}

static void h_item(http_worker *w, http_req *req, route_id r, int64_t t0, const route_match *m,
                   int method) {
  if (!id_ok(w, req, r, t0, m, "item_id")) return;
  if (method == M_GET || method == M_HEAD) {
    json_t *it = engine_item_get(w->srv->e, m->arg);
    if (!it) http__error(w, req, r, t0, 404, "not_found", "item_id", "item '%.64s' does not exist", m->arg);
    else http__reply_json(w, req, r, t0, 200, it);
    return;
  }
  pending_write *p;
  if (method == M_DELETE) {
    p = pending_new(w, req, r, t0);
    snprintf(p->item_id, sizeof p->item_id, "%.256s", m->arg);
    p->op.kind = OP_DELETE_ITEM;
    p->op.item_id = p->item_id;
    submit(p);
    return;
  }
  if (body_check(w, req, r, t0)) return;
  p = pending_new(w, req, r, t0);
  snprintf(p->item_id, sizeof p->item_id, "%.256s", m->arg);
  p->items = arena_alloc(&p->a, sizeof *p->items);
  /* a plain body by the fast reader, else jansson */
  if (engine_parse_item_text(w->srv->e, req->body, req->body_len, p->item_id, clock_now_ms(), &p->a, p->items) &&
      !(p->root = parse_json(w, req, r, t0))) {
    pending_free(p);
    return;
  }
  recd_fail f;
  if (p->root && engine_parse_item(w->srv->e, p->root, p->item_id, -1, &p->a, p->items, &f)) {
    http__reply_error(w, req, r, t0, &f);
    pending_free(p);
    return;
  }
  p->count = items_op(p, 1);
  submit(p);
}

/* A result list as JSON text, in the key order result_json gives (then one
 * optional trailing key): {"user_id":..,"recommendation_id":..,"items":[..],TAIL}.
 * user: 0 leaves "user_id" out, 1 writes user_id (NULL: null). The tail is
 * tail_key with the string tail_str, or with a boolean tail_bool (0/1) when
 * tail_str is NULL; no tail when tail_key is NULL. Returns -1 (nothing
 * written) when a string is not valid UTF-8: the caller then uses jansson,
 * which leaves such strings out. */
static int result_text(jsonout *j, const recd_rec_result *res, int user, const char *user_id, const char *tail_key,
                       const char *tail_str, int tail_bool) {
  /* any string that is not valid UTF-8 sends the caller to jansson (-1, j released) */
  jsonout_lit(j, "{");
  if (user) {
    jsonout_lit(j, "\"user_id\":");
    if (user_id) {
      if (jsonout_str(j, user_id)) goto bad;
    } else {
      jsonout_lit(j, "null");
    }
    jsonout_lit(j, ",");
  }
  jsonout_lit(j, "\"recommendation_id\":");
  if (jsonout_str(j, res->rec_id)) goto bad;
  jsonout_lit(j, ",\"items\":[");
  for (size_t i = 0; i < res->count; i++) {
    const recd_rec_item *it = &res->items[i];
    jsonout_lit(j, i ? ",{\"item_id\":" : "{\"item_id\":");
    if (jsonout_str(j, it->item_id)) goto bad;
    jsonout_lit(j, ",\"score\":");
    jsonout_real(j, (double)(float)it->score);
    jsonout_lit(j, ",\"reasons\":[");
    for (int k = 0; k < it->nreasons; k++) {
      if (k) jsonout_lit(j, ",");
      if (jsonout_str(j, it->reasons[k])) goto bad;
    }
    jsonout_lit(j, "]}");
  }
  jsonout_lit(j, "]");
  if (tail_key) {
    jsonout_lit(j, ",");
    if (jsonout_str(j, tail_key)) goto bad;
    jsonout_lit(j, ":");
    if (tail_str) {
      if (jsonout_str(j, tail_str)) goto bad;
    } else {
      jsonout_lit(j, tail_bool ? "true" : "false");
    }
  }
  jsonout_lit(j, "}");
  return 0;
bad:
  jsonout_release(j); /* the caller answers through jansson and drops j */
  return -1;
}

static json_t *result_json(const recd_rec_result *res, const char *user_id) {
  json_t *items = json_array();
  for (size_t i = 0; i < res->count; i++) {
    json_t *rs = json_array();
    for (int k = 0; k < res->items[i].nreasons; k++) json_array_append_new(rs, json_string(res->items[i].reasons[k]));
    json_array_append_new(items, json_pack("{s:s,s:f,s:o}", "item_id", res->items[i].item_id, "score",
                                           (double)(float)res->items[i].score, "reasons", rs));
  }
  json_t *o = json_object();
  json_object_set_new(o, "user_id", user_id ? json_string(user_id) : json_null());
  json_object_set_new(o, "recommendation_id", json_string(res->rec_id));
  json_object_set_new(o, "items", items);
  return o;
}


static void h_recs_user(http_worker *w, http_req *req, route_id r, int64_t t0, const route_match *m) {
  static const char *const allowed[] = {"n", "category", "exclude", "session_id", NULL};
  if (!id_ok(w, req, r, t0, m, "user_id")) return;
  query q;
  if (parse_query(w, req, r, t0, &q, allowed)) return;
  recd_rec_request rq = {.user_id = m->arg};
  const char *cats[MAX_LIST_PARAMS], *excl[MAX_LIST_PARAMS];
  rq.categories = cats;
  rq.exclude = excl;
  rq.ncategories = query_all(&q, "category", cats, MAX_LIST_PARAMS);
  rq.nexclude = query_all(&q, "exclude", excl, MAX_LIST_PARAMS);
  rq.session_id = query_get(&q, "session_id");
  if (parse_n(w, req, r, t0, &q, &rq.n) || check_list(w, req, r, t0, "category", cats, rq.ncategories) ||
      check_list(w, req, r, t0, "exclude", excl, rq.nexclude) ||
      (rq.session_id && check_list(w, req, r, t0, "session_id", &rq.session_id, 1)))
    return;
  recd_rec_result res;
  engine_recommend(w->srv->e, &rq, &res);
  jsonout j;
  jsonout_init(&j);
  if (!result_text(&j, &res, 1, m->arg, "cold_start", NULL, !res.known_user)) {
    engine_result_release(&res);
    reply_text(w, req, r, t0, 200, &j);
    return;
  }
  json_t *o = result_json(&res, m->arg);
  json_object_set_new(o, "cold_start", json_boolean(!res.known_user));
  engine_result_release(&res);
  http__reply_json(w, req, r, t0, 200, o);
}

static void h_recs_anon(http_worker *w, http_req *req, route_id r, int64_t t0) {
  json_t *root = read_json(w, req, r, t0);
  if (!root) return;
  const recd_config *cfg = w->srv->cfg;
  recd_rec_request rq = {.n = (size_t)cfg->default_n};
  const char *items[256], *cats[MAX_LIST_PARAMS], *excl[MAX_LIST_PARAMS];
  const char *key;
  json_t *v;
  json_object_foreach(root, key, v) {
    if (json_is_null(v)) continue;
    const char **dst = NULL;
    size_t cap = 0, *cnt = NULL;
    if (!strcmp(key, "items")) dst = items, cap = 256, cnt = &rq.nitems;
    else if (!strcmp(key, "category")) dst = cats, cap = MAX_LIST_PARAMS, cnt = &rq.ncategories;
    else if (!strcmp(key, "exclude")) dst = excl, cap = MAX_LIST_PARAMS, cnt = &rq.nexclude;
    else if (!strcmp(key, "n")) {
      if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > cfg->max_n) {
        http__error(w, req, r, t0, 400, "invalid_parameter", "n", "n: must be a whole number from 1 to %d", cfg->max_n);
        goto out;
      }
      rq.n = (size_t)json_integer_value(v);
      continue;
    } else {
      http__error(w, req, r, t0, 400, "invalid_parameter", key,
                  "%.64s: unknown field (known: items, n, category, exclude)", key);
      goto out;
    }
    if (!json_is_array(v) || json_array_size(v) > cap) {
      http__error(w, req, r, t0, 400, "invalid_parameter", key, "%s: must be a list of at most %zu strings", key, cap);
      goto out;
    }
    size_t i;
    json_t *s;
    json_array_foreach(v, i, s) {
      if (!json_is_string(s)) {
        http__error(w, req, r, t0, 400, "invalid_parameter", key, "%s[%zu]: must be a string", key, i);
        goto out;
      }
      if (strlen(json_string_value(s)) != json_string_length(s)) {
        http__error(w, req, r, t0, 400, "invalid_parameter", key, "%s[%zu]: contains a NUL byte", key, i);
        goto out;
      }
      dst[(*cnt)++] = json_string_value(s);
    }
    if (check_list(w, req, r, t0, key, dst, *cnt)) goto out;
  }
  rq.items = items;
  rq.categories = cats;
  rq.exclude = excl;
  recd_rec_result res;
  engine_recommend(w->srv->e, &rq, &res);
  jsonout j;
  jsonout_init(&j);
  if (!result_text(&j, &res, 1, NULL, NULL, NULL, 0)) {
    reply_text(w, req, r, t0, 200, &j);
  } else {
    http__reply_json(w, req, r, t0, 200, result_json(&res, NULL));
  }
  engine_result_release(&res);
out:
  json_decref(root);
}

static void h_similar(http_worker *w, http_req *req, route_id r, int64_t t0, const route_match *m) {
  static const char *const allowed[] = {"n", NULL};
  if (!id_ok(w, req, r, t0, m, "item_id")) return;
  query q;
  if (parse_query(w, req, r, t0, &q, allowed)) return;
  size_t n;
  if (parse_n(w, req, r, t0, &q, &n)) return;
  recd_rec_result res;
  if (engine_similar(w->srv->e, m->arg, n, &res)) {
    http__error(w, req, r, t0, 404, "not_found", "item_id", "item '%.64s' does not exist", m->arg);
    return;
  }
  jsonout j;
  jsonout_init(&j);
  if (!result_text(&j, &res, 0, NULL, "item_id", m->arg, 0)) {
    engine_result_release(&res);
    reply_text(w, req, r, t0, 200, &j);
    return;
  }
  json_t *o = result_json(&res, NULL);
  json_object_del(o, "user_id");
  json_object_set_new(o, "item_id", json_string(m->arg));
  engine_result_release(&res);
  http__reply_json(w, req, r, t0, 200, o);
}

static void h_popular(http_worker *w, http_req *req, route_id r, int64_t t0) {
  static const char *const allowed[] = {"n", "category", "window", NULL};
  query q;
  if (parse_query(w, req, r, t0, &q, allowed)) return;
  size_t n;
  const char *cats[MAX_LIST_PARAMS];
  size_t nc = query_all(&q, "category", cats, MAX_LIST_PARAMS);
  int64_t window = 0;
  const char *ws = query_get(&q, "window");
  if (parse_n(w, req, r, t0, &q, &n) || check_list(w, req, r, t0, "category", cats, nc)) return;
  if (ws && (clock_parse_duration(ws, &window) || window < 86400000LL)) {
    http__error(w, req, r, t0, 400, "invalid_parameter", "window",
                "window: '%.32s' is not a duration like 1d, 7d, 2w (from 1d to 30d)", ws);
    return;
  }
  recd_rec_result res;
  recd_fail f;
  if (engine_popular(w->srv->e, n, cats, nc, window, &res, &f)) {
    http__reply_error(w, req, r, t0, &f);
    return;
  }
  jsonout j;
  jsonout_init(&j);
  if (!result_text(&j, &res, 0, NULL, "window", ws ? ws : "default", 0)) {
    engine_result_release(&res);
    reply_text(w, req, r, t0, 200, &j);
    return;
  }
  json_t *o = result_json(&res, NULL);
  json_object_del(o, "user_id");
  json_object_set_new(o, "window", json_string(ws ? ws : "default"));
  engine_result_release(&res);
  http__reply_json(w, req, r, t0, 200, o);
}

static void h_features(http_worker *w, http_req *req, route_id r, int64_t t0, const route_match *m) {
  int user = r == R_USER_FEATURES;
  if (!id_ok(w, req, r, t0, m, user ? "user_id" : "item_id")) return;
  json_t *o = user ? engine_user_features(w->srv->e, m->arg) : engine_item_features(w->srv->e, m->arg);
  if (!o) http__error(w, req, r, t0, 404, "not_found", user ? "user_id" : "item_id", "%s '%.64s' has no events yet%s",
                      user ? "user" : "item", m->arg, user ? "" : " and is not in the catalog");
  else http__reply_json(w, req, r, t0, 200, o);
}

static void h_health(http_worker *w, http_req *req, route_id r, int64_t t0) {
  recd_stats st;
  engine_stats(w->srv->e, &st);
  char now[40];
  clock_format_rfc3339(st.now_ms, now, sizeof now);
  json_t *o = json_pack("{s:s,s:s,s:f,s:I,s:I,s:I,s:I,s:{s:s,s:s,s:s,s:I,s:I,s:I},s:s}", "status",
                        st.fatal ? "degraded" : "ok", "version", RECD_VERSION,
                        "uptime_s", (clock_now_ms() - w->srv->started_ms) / 1000.0, "users", (json_int_t)st.users,
                        "items", (json_int_t)st.items, "catalog_items", (json_int_t)st.catalog_items, "events",
                        (json_int_t)st.events, "store", "engine", "sqlite", "state", st.fatal ? "failed" : "ok",
                        "fsync", w->srv->cfg->fsync, "last_seq", (json_int_t)st.last_seq, "commits",
                        (json_int_t)st.commits, "queue_depth", (json_int_t)st.queue_depth, "clock", now);
  http__reply_json(w, req, r, t0, 200, o);
}

static void h_metrics(http_worker *w, http_req *req, route_id r, int64_t t0) {
  size_t len;
  char *text = metrics_render(&w->srv->m, w->srv->e, (clock_now_ms() - w->srv->started_ms) / 1000.0, &len);
  reply_buf(w, req, r, t0, 200, "text/plain; version=0.0.4", text, len);
  free(text);
}

static void h_root(http_worker *w, http_req *req, route_id r, int64_t t0) {
  json_t *o = json_pack("{s:s,s:s,s:[s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s],s:s}", "name", "recd", "version",
                        RECD_VERSION, "endpoints", "POST /api/v1/events", "PUT|GET|DELETE /api/v1/items/{item_id}",
                        "POST /api/v1/items", "GET /api/v1/recommendations/{user_id}?n=10",
                        "POST /api/v1/recommendations", "GET /api/v1/items/{item_id}/similar",
                        "GET /api/v1/items/{item_id}/features", "GET /api/v1/popular",
                        "GET /api/v1/users/{user_id}/features", "GET /api/v1/models",
                        "POST /api/v1/models/train?wait=true", "GET /api/v1/models/jobs/{job_id}",
                        "POST /api/v1/models/{version}/promote", "POST /api/v1/models/rollback",
                        "GET /api/v1/health", "GET /metrics", "docs", "docs/api.md in the source tree");
  http__reply_json(w, req, r, t0, 200, o);
}

/* ---- models ---- */

static int parse_version(http_worker *w, http_req *req, route_id r, int64_t t0, const route_match *m,
                         const char *what, uint64_t *out) {
  if (!engine_model_version(m->arg, out)) return 0;
  http__error(w, req, r, t0, 400, "invalid_parameter", what, "%s: '%.32s' is not a version number like 3 or v3", what,
              m->arg);
  return -1;
}

static void h_models(http_worker *w, http_req *req, route_id r, int64_t t0) {
  http__reply_json(w, req, r, t0, 200, engine_models(w->srv->e));
}

typedef struct {
  http_worker *w;
  http_req *req;
  route_id r;
  int64_t t0;
  uint64_t job;
  struct event *ev;
} train_wait;

/* polls the job from the worker's own loop: no thread ever calls back into the server */
static void train_poll(evutil_socket_t fd, short what, void *arg) {
  train_wait *tw = arg;
  (void)fd;
  (void)what;
  json_t *j = engine_train_job(tw->w->srv->e, tw->job);
  const char *st = j ? json_string_value(json_object_get(j, "status")) : "failed";
  if (st && !strcmp(st, "running")) {
    json_decref(j);
    struct timeval tv = {0, 50000};
    evtimer_add(tw->ev, &tv);
    return;
  }
  if (st && !strcmp(st, "succeeded")) {
    http__reply_json(tw->w, tw->req, tw->r, tw->t0, 200, json_incref(json_object_get(j, "model")));
  } else {
    json_t *er = j ? json_object_get(j, "error") : NULL;
    int status = er ? (int)json_integer_value(json_object_get(er, "status")) : 500;
    http__error(tw->w, tw->req, tw->r, tw->t0, status ? status : 500,
                er ? json_string_value(json_object_get(er, "code")) : "internal", "", "%s",
                er ? json_string_value(json_object_get(er, "message")) : "training failed");
  }
  json_decref(j);
  event_free(tw->ev);
  free(tw);
}

static void h_models_train(http_worker *w, http_req *req, route_id r, int64_t t0) {
  static const char *const allowed[] = {"wait", "kind", "promote", NULL};
  query q;
  if (parse_query(w, req, r, t0, &q, allowed)) return;
  const char *wait = query_get(&q, "wait"), *kind = query_get(&q, "kind"), *promote = query_get(&q, "promote");
  recd_train_request rq = {.kind = NULL, .promote = RECD_PROMOTE_IF_BETTER};
  int dowait = 0;
  if (wait && strcmp(wait, "true") && strcmp(wait, "false")) {
    http__error(w, req, r, t0, 400, "invalid_parameter", "wait", "wait: must be true or false");
    return;
  }
  dowait = wait && !strcmp(wait, "true");
  if (kind && !(rq.kind = engine_model_kind(kind))) {
    http__error(w, req, r, t0, 400, "invalid_parameter", "kind", "kind: '%.32s' is not ials, ease or ranker", kind);
    return;
  }
  if (promote && (rq.promote = engine_promote_mode(promote)) < 0) {
    http__error(w, req, r, t0, 400, "invalid_parameter", "promote", "promote: must be if_better, always or never");
    return;
  }
  uint64_t job;
  recd_fail f;
  if (engine_train_start(w->srv->e, &rq, &job, &f)) {
    http__reply_error(w, req, r, t0, &f);
    return;
  }
  if (!dowait) {
    char poll[96];
    snprintf(poll, sizeof poll, "/api/v1/models/jobs/%llu", (unsigned long long)job);
    http__reply_json(w, req, r, t0, 202, json_pack("{s:I,s:s,s:s}", "job_id", (json_int_t)job, "status", "running",
                                                   "poll", poll));
    return;
  }
  train_wait *tw = xcalloc(1, sizeof *tw);
  *tw = (train_wait){.w = w, .req = req, .r = r, .t0 = t0, .job = job};
  tw->ev = evtimer_new(w->base, train_poll, tw);
  struct timeval tv = {0, 20000};
  evtimer_add(tw->ev, &tv);
}

static void h_model_job(http_worker *w, http_req *req, route_id r, int64_t t0, const route_match *m) {
  uint64_t v;
  if (parse_version(w, req, r, t0, m, "job_id", &v)) return;
  json_t *j = engine_train_job(w->srv->e, v);
  if (!j) http__error(w, req, r, t0, 404, "not_found", "job_id", "job_id: job %llu is not the latest training job", (unsigned long long)v);
  else http__reply_json(w, req, r, t0, 200, j);
}

/* Promote and rollback load and verify model files (hundreds of ms for a large
 * model): they run on a thread of their own so this worker's other
 * connections are not held up, and are answered like a write. */
static void run_promote(pending_write *p) {
  p->fail.index = -1;
  p->job_rc = engine_promote(p->w->srv->e, p->version, &p->result, &p->fail);
}

static void run_rollback(pending_write *p) {
  p->fail.index = -1;
  p->job_rc = engine_rollback(p->w->srv->e, &p->result, &p->fail);
}

static void start_job(http_worker *w, http_req *req, route_id r, int64_t t0, uint64_t v,
                      void (*run)(pending_write *)) {
  if (atomic_load(&w->srv->stopping)) {
    http__error(w, req, r, t0, 503, "shutting_down", "", "the server is shutting down");
    return;
  }
  pending_write *p = pending_new(w, req, r, t0);
  p->run = run;
  p->version = v;
  int rc = http__submit_job(p);
  if (rc) {
    http__error(w, req, r, t0, 500, "internal", "", "cannot start a thread: %s", strerror(-rc));
    pending_free(p);
  }
}

static void h_model_promote(http_worker *w, http_req *req, route_id r, int64_t t0, const route_match *m) {
  uint64_t v;
  if (parse_version(w, req, r, t0, m, "version", &v)) return;
  start_job(w, req, r, t0, v, run_promote);
}

static void h_models_rollback(http_worker *w, http_req *req, route_id r, int64_t t0) {
  start_job(w, req, r, t0, 0, run_rollback);
}

void http__dispatch(http_worker *w, http_req *req, int64_t t0) {
  atomic_fetch_add_explicit(&w->srv->m.inflight, 1, memory_order_relaxed);
  route_match m;
  char err[128];
  const char *path = req->target;
  int rc = route_match_path(path, &m, err, sizeof err);
  if (rc == RECD_EINVAL) {
    http__error(w, req, R_NONE, t0, 400, "invalid_parameter", "path", "%s", err);
    return;
  }
  if (rc) { /* the path alone, as the route saw it (not the query) */
    int plen = (int)strcspn(path, "?");
    http__error(w, req, R_NONE, t0, 404, "not_found", "path", "no such endpoint: %.*s (see GET / for the list)",
                plen < 200 ? plen : 200, path);
    return;
  }
  int method = req->method;
  if (!(route_methods(m.id) & method)) {
    req->allow = route_allow_header(m.id);
    http__error(w, req, m.id, t0, 405, "method_not_allowed", "method", "method not allowed here; allowed: %s",
                route_allow_header(m.id));
    return;
  }
  /* only a few routes take query parameters; the rest refuse any */
  if (m.id != R_RECS_USER && m.id != R_POPULAR && m.id != R_ITEM_SIMILAR && m.id != R_MODELS_TRAIN) {
    query q;
    if (parse_query(w, req, m.id, t0, &q, NULL)) return;
  }
  switch (m.id) {
    case R_ROOT: h_root(w, req, m.id, t0); break;
    case R_HEALTH: h_health(w, req, m.id, t0); break;
    case R_METRICS: h_metrics(w, req, m.id, t0); break;
    case R_EVENTS: h_batch(w, req, m.id, t0, read_events); break;
    case R_ITEMS: h_batch(w, req, m.id, t0, read_items); break;
    case R_ITEM: h_item(w, req, m.id, t0, &m, method); break;
    case R_ITEM_SIMILAR: h_similar(w, req, m.id, t0, &m); break;
    case R_ITEM_FEATURES:
    case R_USER_FEATURES: h_features(w, req, m.id, t0, &m); break;
    case R_RECS_USER: h_recs_user(w, req, m.id, t0, &m); break;
    case R_RECS_ANON: h_recs_anon(w, req, m.id, t0); break;
    case R_POPULAR: h_popular(w, req, m.id, t0); break;
    case R_MODELS: h_models(w, req, m.id, t0); break;
    case R_MODELS_TRAIN: h_models_train(w, req, m.id, t0); break;
    case R_MODELS_ROLLBACK: h_models_rollback(w, req, m.id, t0); break;
    case R_MODEL_PROMOTE: h_model_promote(w, req, m.id, t0, &m); break;
    case R_MODEL_JOB: h_model_job(w, req, m.id, t0, &m); break;
    default: http__error(w, req, m.id, t0, 404, "not_found", "path", "no such endpoint");
  }
}
