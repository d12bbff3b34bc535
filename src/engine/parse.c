/* parse.c — validation of events and catalog items from JSON. Every failure
 * names the field and the problem; nothing here touches engine state. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_int.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/jsonout.h"

#define MAX_FUTURE_MS (24LL * 3600 * 1000)

/* A 400 about `field` of the index-th of `what` ("events", "items"), or of
 * the body's single one (index -1). The message starts with the field's path,
 * "events[3].user_id" or "user_id", followed by `fmt` (": ..." or "[2]: ...").
 * The path is formatted only here, on failure: fields that parse fine never
 * pay for it. */
static void fail_field(recd_fail *fail, const char *code, const char *what, long index, const char *field,
                       const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void fail_field(recd_fail *fail, const char *code, const char *what, long index, const char *field,
                       const char *fmt, ...) {
  char path[96], rest[sizeof fail->message];
  if (index >= 0) snprintf(path, sizeof path, "%s[%ld].%s", what, index, field);
  else snprintf(path, sizeof path, "%s", field);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(rest, sizeof rest, fmt, ap);
  va_end(ap);
  recd_fail_set(fail, 400, code, index, field, "%s%s", path, rest);
}

int engine_check_id(const char *s, size_t len, const char *what, long index, const char *field, recd_fail *fail) {
  size_t bad = len;
  if (len > 0 && len <= RECD_MAX_ID_LEN)
    for (size_t i = 0; i < len; i++) {
      unsigned char c = (unsigned char)s[i];
      if (c < 0x20 || c == 0x7f) {
        bad = i;
        break;
      }
    }
  if (len > 0 && len <= RECD_MAX_ID_LEN && bad == len) return 0;
  /* the message is only built on failure: this runs for every id of every event */
  const char *code = !strcmp(what, "items") ? "invalid_item" : "invalid_event";
  if (len == 0) fail_field(fail, code, what, index, field, ": must not be empty");
  else if (len > RECD_MAX_ID_LEN)
    fail_field(fail, code, what, index, field, ": %zu bytes long, the limit is %d", len, RECD_MAX_ID_LEN);
  else fail_field(fail, code, what, index, field, ": contains a control character (byte %zu)", bad);
  return RECD_EINVAL;
}

static const char *json_kind(const json_t *v) {
  switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
  }
  return "?";
}

static int parse_time(json_t *v, const char *what, long index, const char *field, const char *code, int64_t now,
                      int64_t *out, recd_fail *fail) {
  if (json_is_string(v)) {
    if (clock_parse_rfc3339(json_string_value(v), json_string_length(v), out)) {
      fail_field(fail, code, what, index, field, ": '%.64s' is not an RFC 3339 time like 2024-05-01T12:00:00Z",
                 json_string_value(v));
      return RECD_EINVAL;
    }
  } else if (json_is_number(v)) {
    double sec = json_number_value(v);
    if (!isfinite(sec) || sec < 0 || sec > 4102444800.0) {
      fail_field(fail, code, what, index, field, ": unix time %g is out of range (0 to 4102444800)", sec);
      return RECD_EINVAL;
    }
    *out = (int64_t)llround(sec * 1000.0);
  } else {
    fail_field(fail, code, what, index, field, ": must be an RFC 3339 string or unix seconds, not %s", json_kind(v));
    return RECD_EINVAL;
  }
  if (*out < 0) {
    fail_field(fail, code, what, index, field, ": before 1970 is not supported");
    return RECD_EINVAL;
  }
  if (now && *out > now + MAX_FUTURE_MS) {
    fail_field(fail, code, what, index, field, ": more than 24 hours in the future");
    return RECD_EINVAL;
  }
  return 0;
}

static int get_id(json_t *obj, const char *key, const char *what, long index, int required, const char **out,
                  recd_fail *fail) {
  const char *code = !strcmp(what, "items") ? "invalid_item" : "invalid_event";
  json_t *v = json_object_get(obj, key);
  if (!v || json_is_null(v)) {
    if (!required) {
      *out = NULL;
      return 0;
    }
    fail_field(fail, code, what, index, key, ": is required");
    return RECD_EINVAL;
  }
  if (!json_is_string(v)) {
    fail_field(fail, code, what, index, key, ": must be a string, not %s", json_kind(v));
    return RECD_EINVAL;
  }
  if (engine_check_id(json_string_value(v), json_string_length(v), what, index, key, fail)) return RECD_EINVAL;
  if (strlen(json_string_value(v)) != json_string_length(v)) {
    fail_field(fail, code, what, index, key, ": contains a NUL byte");
    return RECD_EINVAL;
  }
  *out = json_string_value(v);
  return 0;
}

/* The object shape shared by events and items: a JSON object whose keys are
 * all in `known`. 0, or RECD_EINVAL with `fail` naming the field. */
static int check_object(json_t *obj, const char *what, const char *noun, const char *code, const char *const *known,
                        size_t nknown, long index, recd_fail *fail) {
  char path[96];
  if (!json_is_object(obj)) {
    recd_fail_set(fail, 400, code, index, "", "%s: %s must be a JSON object, not %s",
                  index >= 0 ? (snprintf(path, sizeof path, "%s[%ld]", what, index), path) : "body", noun,
                  json_kind(obj));
    return RECD_EINVAL;
  }
  const char *key;
  json_t *v;
  json_object_foreach(obj, key, v) {
    int ok = 0;
    for (size_t i = 0; i < nknown; i++) ok |= !strcmp(key, known[i]);
    if (ok) continue;
    char list[256] = "";
    for (size_t i = 0; i < nknown; i++)
      snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", known[i]);
    fail_field(fail, code, what, index, key, ": unknown field (known: %s)", list);
    return RECD_EINVAL;
  }
  return 0;
}

int engine_parse_event(const recd_engine *e, json_t *obj, long index, int64_t now_ms, recd_event *ev,
                       recd_fail *fail) {
  static const char *known[] = {"user_id", "item_id", "event_type", "timestamp", "value", "session_id",
                                "recommendation_id"};
  memset(ev, 0, sizeof *ev);
  if (check_object(obj, "events", "an event", "invalid_event", known, sizeof known / sizeof known[0], index, fail))
    return RECD_EINVAL;
  json_t *v;
  if (get_id(obj, "user_id", "events", index, 1, &ev->user_id, fail) ||
      get_id(obj, "item_id", "events", index, 1, &ev->item_id, fail))
    return RECD_EINVAL;
  v = json_object_get(obj, "event_type");
  if (!v || json_is_null(v)) {
    fail_field(fail, "invalid_event", "events", index, "event_type", ": is required");
    return RECD_EINVAL;
  }
  if (!json_is_string(v)) {
    fail_field(fail, "invalid_event", "events", index, "event_type", ": must be a string, not %s", json_kind(v));
    return RECD_EINVAL;
  }
  ev->type = config_type_index(&e->cfg, json_string_value(v), json_string_length(v));
  if (ev->type < 0) {
    fail_field(fail, "invalid_event", "events", index, "event_type", ": unknown type '%.64s'", json_string_value(v));
    return RECD_EINVAL;
  }
  v = json_object_get(obj, "timestamp");
  if (v && !json_is_null(v)) {
    if (parse_time(v, "events", index, "timestamp", "invalid_event", now_ms, &ev->ts_ms, fail)) return RECD_EINVAL;
  } else {
    ev->ts_ms = now_ms;
  }
  v = json_object_get(obj, "value");
  if (v && !json_is_null(v)) {
    if (!json_is_number(v) || !isfinite(json_number_value(v))) {
      fail_field(fail, "invalid_event", "events", index, "value", ": must be a finite number, not %s", json_kind(v));
      return RECD_EINVAL;
    }
    ev->value = json_number_value(v);
    ev->has_value = 1;
  }
  if (get_id(obj, "session_id", "events", index, 0, &ev->session_id, fail) ||
      get_id(obj, "recommendation_id", "events", index, 0, &ev->rec_id, fail))
    return RECD_EINVAL;
  return 0;
}

static int string_list(json_t *obj, const char *key, long index, size_t max, arena *a, const char ***out, size_t *n,
                       recd_fail *fail) {
  json_t *v = json_object_get(obj, key);
  *out = NULL;
  *n = 0;
  if (!v || json_is_null(v)) return 0;
  if (!json_is_array(v)) {
    fail_field(fail, "invalid_item", "items", index, key, ": must be a list of strings, not %s", json_kind(v));
    return RECD_EINVAL;
  }
  if (json_array_size(v) > max) {
    fail_field(fail, "invalid_item", "items", index, key, ": %zu entries, the limit is %zu", json_array_size(v), max);
    return RECD_EINVAL;
  }
  *out = arena_alloc(a, (json_array_size(v) + 1) * sizeof(char *));
  size_t i;
  json_t *s;
  json_array_foreach(v, i, s) {
    if (!json_is_string(s)) {
      fail_field(fail, "invalid_item", "items", index, key, "[%zu]: must be a string, not %s", i, json_kind(s));
      return RECD_EINVAL;
    }
    size_t len = json_string_length(s);
    const char *str = json_string_value(s);
    if (len == 0 || len > RECD_MAX_ID_LEN || strlen(str) != len) {
      fail_field(fail, "invalid_item", "items", index, key, "[%zu]: must be 1 to %d bytes", i, RECD_MAX_ID_LEN);
      return RECD_EINVAL;
    }
    for (size_t k = 0; k < len; k++)
      if ((unsigned char)str[k] < 0x20 || str[k] == 0x7f) {
        fail_field(fail, "invalid_item", "items", index, key, "[%zu]: contains a control character", i);
        return RECD_EINVAL;
      }
    (*out)[(*n)++] = str;
  }
  return 0;
}

int engine_parse_item(const recd_engine *e, json_t *obj, const char *path_id, long index, arena *a, recd_item *it,
                      recd_fail *fail) {
  static const char *known[] = {"item_id", "categories", "tags", "available", "created_at", "properties"};
  (void)e;
  memset(it, 0, sizeof *it);
  it->available = 1;
  it->created_at_ms = -1;
  if (check_object(obj, "items", "an item", "invalid_item", known, sizeof known / sizeof known[0], index, fail))
    return RECD_EINVAL;
  json_t *v;
  if (path_id) {
    const char *bid;
    if (get_id(obj, "item_id", "items", index, 0, &bid, fail)) return RECD_EINVAL;
    if (bid && strcmp(bid, path_id)) {
      recd_fail_set(fail, 400, "invalid_item", index, "item_id", "item_id: '%.64s' in the body differs from '%.64s' in the URL",
                    bid, path_id);
      return RECD_EINVAL;
    }
    if (engine_check_id(path_id, strlen(path_id), "items", index, "item_id", fail)) return RECD_EINVAL;
    it->item_id = path_id;
  } else if (get_id(obj, "item_id", "items", index, 1, &it->item_id, fail)) {
    return RECD_EINVAL;
  }
  if (string_list(obj, "categories", index, ITEM_MAX_CATS, a, &it->categories, &it->ncategories, fail) ||
      string_list(obj, "tags", index, ITEM_MAX_TAGS, a, &it->tags, &it->ntags, fail))
    return RECD_EINVAL;
  v = json_object_get(obj, "available");
  if (v && !json_is_null(v)) {
    if (!json_is_boolean(v)) {
      fail_field(fail, "invalid_item", "items", index, "available", ": must be true or false, not %s", json_kind(v));
      return RECD_EINVAL;
    }
    it->available = json_is_true(v);
  }
  v = json_object_get(obj, "created_at");
  if (v && !json_is_null(v) &&
      parse_time(v, "items", index, "created_at", "invalid_item", clock_now_ms(), &it->created_at_ms, fail))
    return RECD_EINVAL;
  v = json_object_get(obj, "properties");
  if (v && !json_is_null(v)) {
    if (!json_is_object(v)) {
      fail_field(fail, "invalid_item", "items", index, "properties", ": must be an object, not %s", json_kind(v));
      return RECD_EINVAL;
    }
    char *s = json_dumps(v, JSON_COMPACT);
    it->properties_json = arena_strndup(a, s, strlen(s));
    free(s);
  }
  return 0;
}

/* ---- the plain-text fast path for events ----
 *
 * Most event bodies are plain: ASCII strings without escapes, whole-number
 * times. jansson builds a tree for them (an allocation per value, a hash per
 * object) that is then thrown away: 12.7k of a POST's 52k instructions. This
 * reader takes exactly such bodies and declines everything else, so jansson
 * and engine_parse_event stay the one definition of what is accepted and of
 * every error message. fuzz/event_fuzz.c checks that whatever this accepts,
 * the general path accepts as the same events. */

typedef struct {
  const char *p, *end;
} cursor;

static void ws(cursor *c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static int eat(cursor *c, char ch) {
  ws(c);
  if (c->p < c->end && *c->p == ch) {
    c->p++;
    return 1;
  }
  return 0;
}

/* a string of printable ASCII without escapes: [*s, *s + *len); the closing
 * quote is at (*s)[*len] */
static int plain_string(cursor *c, const char **s, size_t *len) {
  ws(c);
  if (c->p >= c->end || *c->p != '"') return -1;
  const char *b = ++c->p;
  while (c->p < c->end && *c->p != '"') {
    unsigned char ch = (unsigned char)*c->p;
    if (ch < 0x20 || ch >= 0x7f || ch == '\\') return -1;
    c->p++;
  }
  if (c->p >= c->end) return -1;
  *s = b;
  *len = (size_t)(c->p - b);
  c->p++;
  return 0;
}

enum { V_NULL, V_STRING, V_INT };

typedef struct {
  int kind;
  const char *s;
  size_t len;
  int64_t n;
} plain_value;

static int plain_value_read(cursor *c, plain_value *v) {
  ws(c);
  if (c->p >= c->end) return -1;
  if (*c->p == '"') {
    v->kind = V_STRING;
    return plain_string(c, &v->s, &v->len);
  }
  if (c->end - c->p >= 4 && !memcmp(c->p, "null", 4)) {
    c->p += 4;
    v->kind = V_NULL;
    return 0;
  }
  /* a whole number: no sign, fraction, exponent or leading zero */
  const char *b = c->p;
  int64_t n = 0;
  while (c->p < c->end && *c->p >= '0' && *c->p <= '9' && c->p - b < 15) n = n * 10 + (*c->p++ - '0');
  if (c->p == b || (c->p < c->end && ((*c->p >= '0' && *c->p <= '9') || *c->p == '.' || *c->p == 'e' || *c->p == 'E')))
    return -1;
  if (*b == '0' && c->p - b > 1) return -1;
  v->kind = V_INT;
  v->n = n;
  return 0;
}

static int plain_id(const plain_value *v, arena *a, const char **out) {
  if (v->kind != V_STRING || v->len == 0 || v->len > RECD_MAX_ID_LEN) return -1;
  *out = arena_strndup(a, v->s, v->len);
  return 0;
}

/* v, an array of n elements of sz bytes with room for *cap, made room for one
 * more: grown in the arena (what a growth leaves behind goes with the
 * request), to at most max elements; NULL when it holds max already */
static void *plain_room(arena *a, void *v, size_t n, size_t *cap, size_t max, size_t sz) {
  if (n < *cap) return v;
  if (n >= max) return NULL;
  *cap = *cap < 64 ? 64 : *cap * 2;
  if (*cap > max) *cap = max;
  void *nv = arena_alloc(a, *cap * sz);
  if (n) memcpy(nv, v, n * sz);
  return nv;
}

/* the next key of an object and its ':', as an index into known[0..n);
 * -1 for a key that is not there or was seen before (*seen: a bit per index):
 * the general path explains those */
static int plain_field(cursor *c, const char *const *known, int n, int *seen) {
  const char *k;
  size_t kl;
  if (plain_string(c, &k, &kl) || !eat(c, ':')) return -1;
  for (int i = 0; i < n; i++)
    if (strlen(known[i]) == kl && !memcmp(known[i], k, kl)) {
      if (*seen & (1 << i)) return -1;
      *seen |= 1 << i;
      return i;
    }
  return -1;
}

/* one event object at c; its strings are copied into a */
static int plain_event(const recd_engine *e, cursor *c, int64_t now_ms, arena *a, recd_event *ev) {
  static const char *const known[] = {"user_id", "item_id", "event_type", "timestamp", "value", "session_id",
                                      "recommendation_id"};
  plain_value val[7];
  int seen = 0;
  memset(ev, 0, sizeof *ev);
  if (!eat(c, '{')) return -1;
  if (!eat(c, '}')) {
    do {
      int f = plain_field(c, known, 7, &seen);
      if (f < 0 || plain_value_read(c, &val[f])) return -1;
    } while (eat(c, ','));
    if (!eat(c, '}')) return -1;
  }
  for (int i = 0; i < 7; i++)
    if (!(seen & (1 << i))) val[i].kind = V_NULL;
  if (plain_id(&val[0], a, &ev->user_id) || plain_id(&val[1], a, &ev->item_id)) return -1;
  if (val[2].kind != V_STRING || (ev->type = config_type_index(&e->cfg, val[2].s, val[2].len)) < 0) return -1;
  switch (val[3].kind) {
    case V_NULL: ev->ts_ms = now_ms; break;
    case V_STRING:
      if (clock_parse_rfc3339(val[3].s, val[3].len, &ev->ts_ms) || ev->ts_ms < 0) return -1;
      break;
    default:
      if (val[3].n > 4102444800LL) return -1;
      ev->ts_ms = val[3].n * 1000;
  }
  if (now_ms && ev->ts_ms > now_ms + MAX_FUTURE_MS) return -1;
  if (val[4].kind == V_STRING) return -1;
  if (val[4].kind == V_INT) {
    ev->value = (double)val[4].n;
    ev->has_value = 1;
  }
  if ((val[5].kind != V_NULL && plain_id(&val[5], a, &ev->session_id)) ||
      (val[6].kind != V_NULL && plain_id(&val[6], a, &ev->rec_id)))
    return -1;
  return 0;
}

int engine_parse_events_text(const recd_engine *e, const char *text, size_t len, int64_t now_ms, size_t max,
                             arena *a, recd_event **out, size_t *n) {
  cursor c = {text, text + len};
  /* {"events": [ ... ]} or one event object */
  int batch = 0;
  if (eat(&c, '{')) {
    const char *k;
    size_t kl;
    batch = !plain_string(&c, &k, &kl) && kl == 6 && !memcmp(k, "events", 6) && eat(&c, ':') && eat(&c, '[');
  }
  if (!batch) c.p = text;
  size_t cnt = 0, cap = 1;
  recd_event *evs = arena_alloc(a, sizeof *evs);
  for (;;) {
    if (!(evs = plain_room(a, evs, cnt, &cap, max, sizeof *evs))) return -1;
    if (plain_event(e, &c, now_ms, a, &evs[cnt])) return -1;
    cnt++;
    if (!batch || !eat(&c, ',')) break;
  }
  if (batch && !(eat(&c, ']') && eat(&c, '}'))) return -1;
  ws(&c);
  if (c.p != c.end) return -1;
  *out = evs;
  *n = cnt;
  return 0;
}

/* ---- the plain-text fast path for catalog items ----
 *
 * recd import's catalog lines: jansson's tree, then engine_parse_item's checks
 * and a json_dumps of the properties cost ~55k instructions an item, the
 * import's one phase on a single CPU (1.25 s of a 20M-event import, for its
 * 100k items, before the first event). As for events above: plain lines only
 * (ASCII strings without escapes, no field twice, properties whose values are
 * strings, numbers without exponents, booleans or null), the rest declined to
 * the general path, which stays the one definition of what is accepted.
 * fuzz/event_fuzz.c checks that whatever this accepts, the general path
 * accepts as the same item, properties byte for byte. */

#define PLAIN_MAX_PROPS 32

static int lit(cursor *c, const char *w, size_t n) {
  ws(c);
  if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n)) return 0;
  c->p += n;
  return 1;
}

/* a number without exponent, written as jansson dumps what it parses: an
 * integer as it is, a real by "%.17g" (its default precision) */
static int plain_number(cursor *c, jsonout *out) {
  ws(c);
  const char *b = c->p;
  if (c->p < c->end && *c->p == '-') c->p++;
  const char *d = c->p;
  while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
  size_t nd = (size_t)(c->p - d);
  if (nd == 0 || nd > 18 || (*d == '0' && nd > 1)) return -1;
  int real = c->p < c->end && *c->p == '.';
  if (real) {
    const char *f = ++c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
    if (c->p == f || c->p - b > 40) return -1;
  }
  if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) return -1;
  if (!real) {
    if (*d == '0' && d != b) return -1; /* -0: jansson writes 0 */
    jsonout_raw(out, b, (size_t)(c->p - b));
    return 0;
  }
  char buf[48];
  memcpy(buf, b, (size_t)(c->p - b));
  buf[c->p - b] = 0;
  jsonout_real_g(out, strtod(buf, NULL), 17);
  return 0;
}

/* the properties object at c, written compact as json_dumps writes it */
static int plain_props(cursor *c, jsonout *out) {
  const char *key[PLAIN_MAX_PROPS];
  size_t klen[PLAIN_MAX_PROPS];
  int nk = 0;
  if (!eat(c, '{')) return -1;
  jsonout_raw(out, "{", 1);
  if (!eat(c, '}')) {
    do {
      const char *k;
      size_t kl;
      if (nk == PLAIN_MAX_PROPS || plain_string(c, &k, &kl) || !eat(c, ':')) return -1;
      for (int i = 0; i < nk; i++)
        if (klen[i] == kl && !memcmp(key[i], k, kl)) return -1; /* jansson keeps the last: declined */
      key[nk] = k;
      klen[nk] = kl;
      if (nk++) jsonout_raw(out, ",", 1);
      jsonout_raw(out, k - 1, kl + 2); /* with its quotes */
      jsonout_raw(out, ":", 1);
      ws(c);
      if (c->p < c->end && *c->p == '"') {
        const char *s;
        size_t sl;
        if (plain_string(c, &s, &sl)) return -1;
        jsonout_raw(out, s - 1, sl + 2);
      } else if (lit(c, "true", 4)) {
        jsonout_raw(out, "true", 4);
      } else if (lit(c, "false", 5)) {
        jsonout_raw(out, "false", 5);
      } else if (lit(c, "null", 4)) {
        jsonout_raw(out, "null", 4);
      } else if (plain_number(c, out)) {
        return -1;
      }
    } while (eat(c, ','));
    if (!eat(c, '}')) return -1;
  }
  jsonout_raw(out, "}", 1);
  return 0;
}

/* a list of ids, or null (*out stays NULL) */
static int plain_list(cursor *c, size_t max, arena *a, const char ***out, size_t *n) {
  const char *s[ITEM_MAX_TAGS > ITEM_MAX_CATS ? ITEM_MAX_TAGS : ITEM_MAX_CATS];
  size_t sl[sizeof s / sizeof s[0]], cnt = 0;
  if (lit(c, "null", 4)) return 0;
  if (!eat(c, '[')) return -1;
  if (!eat(c, ']')) {
    do {
      if (cnt == max || plain_string(c, &s[cnt], &sl[cnt]) || sl[cnt] == 0 || sl[cnt] > RECD_MAX_ID_LEN) return -1;
      cnt++;
    } while (eat(c, ','));
    if (!eat(c, ']')) return -1;
  }
  *out = arena_alloc(a, (cnt + 1) * sizeof(char *));
  for (size_t i = 0; i < cnt; i++) (*out)[i] = arena_strndup(a, s[i], sl[i]);
  *n = cnt;
  return 0;
}

/* one item object at c; its strings are copied into a, its properties
 * written through props (reset here). With path_id (PUT /items/{id}), its
 * item_id may be left out, and must be path_id if it is not. */
static int plain_item(cursor *c, const char *path_id, int64_t now_ms, arena *a, jsonout *props, recd_item *it) {
  static const char *const known[] = {"item_id", "categories", "tags", "available", "created_at", "properties"};
  memset(it, 0, sizeof *it);
  it->available = 1;
  it->created_at_ms = -1;
  int seen = 0;
  if (!eat(c, '{')) return -1;
  if (!eat(c, '}')) {
    do {
      plain_value v;
      int f = plain_field(c, known, 6, &seen);
      if (f < 0) return -1;
      switch (f) {
        case 0:
          if (plain_value_read(c, &v) || plain_id(&v, a, &it->item_id)) return -1;
          if (path_id && strcmp(it->item_id, path_id)) return -1; /* the general path explains */
          break;
        case 1:
          if (plain_list(c, ITEM_MAX_CATS, a, &it->categories, &it->ncategories)) return -1;
          break;
        case 2:
          if (plain_list(c, ITEM_MAX_TAGS, a, &it->tags, &it->ntags)) return -1;
          break;
        case 3:
          if (lit(c, "false", 5)) it->available = 0;
          else if (!lit(c, "true", 4) && !lit(c, "null", 4)) return -1;
          break;
        case 4:
          if (plain_value_read(c, &v)) return -1;
          if (v.kind == V_STRING) {
            if (clock_parse_rfc3339(v.s, v.len, &it->created_at_ms) || it->created_at_ms < 0) return -1;
          } else if (v.kind == V_INT) {
            if (v.n > 4102444800LL) return -1;
            it->created_at_ms = v.n * 1000;
          }
          if (now_ms && it->created_at_ms > now_ms + MAX_FUTURE_MS) return -1;
          break;
        default:
          if (lit(c, "null", 4)) break;
          props->len = 0;
          if (plain_props(c, props)) return -1;
          it->properties_json = arena_strndup(a, props->p, props->len);
      }
    } while (eat(c, ','));
    if (!eat(c, '}')) return -1;
  }
  if (path_id) {
    recd_fail f;
    if (engine_check_id(path_id, strlen(path_id), "items", -1, "item_id", &f)) return -1;
    it->item_id = path_id;
    return 0;
  }
  return seen & 1 ? 0 : -1; /* item_id is required */
}

int engine_parse_item_text(const recd_engine *e, const char *text, size_t len, const char *path_id, int64_t now_ms,
                           arena *a, recd_item *it) {
  (void)e;
  cursor c = {text, text + len};
  jsonout props;
  jsonout_init(&props);
  int rc = plain_item(&c, path_id, now_ms, a, &props, it);
  jsonout_release(&props);
  if (rc) return -1;
  ws(&c);
  return c.p == c.end ? 0 : -1;
}

int engine_parse_items_text(const recd_engine *e, const char *text, size_t len, int64_t now_ms, size_t max, arena *a,
                            recd_item **out, size_t *n) {
  (void)e;
  cursor c = {text, text + len};
  const char *k;
  size_t kl;
  if (!eat(&c, '{') || plain_string(&c, &k, &kl) || kl != 5 || memcmp(k, "items", 5) || !eat(&c, ':') ||
      !eat(&c, '['))
    return -1;
  size_t cnt = 0, cap = 0;
  recd_item *items = NULL;
  jsonout props;
  jsonout_init(&props);
  int rc = -1;
  do {
    if (!(items = plain_room(a, items, cnt, &cap, max, sizeof *items))) goto out;
    if (plain_item(&c, NULL, now_ms, a, &props, &items[cnt])) goto out;
    cnt++;
  } while (eat(&c, ','));
  if (!(eat(&c, ']') && eat(&c, '}'))) goto out;
  ws(&c);
  if (c.p != c.end) goto out;
  *out = items;
  *n = cnt;
  rc = 0;
out:
  jsonout_release(&props);
  return rc;
}
