#include "http/route.h"

#include <stdio.h>
#include <string.h>

#include "util/err.h"

static const struct {
  const char *name;
  int methods;
  const char *allow;
} routes[R_COUNT] = {
    [R_NONE] = {"unknown", 0, ""},
    [R_ROOT] = {"root", M_GET | M_HEAD, "GET, HEAD"},
    [R_HEALTH] = {"health", M_GET | M_HEAD, "GET, HEAD"},
    [R_METRICS] = {"metrics", M_GET | M_HEAD, "GET, HEAD"},
    [R_EVENTS] = {"events", M_POST, "POST"},
    [R_ITEMS] = {"items", M_POST, "POST"},
    [R_ITEM] = {"item", M_GET | M_HEAD | M_PUT | M_DELETE, "GET, HEAD, PUT, DELETE"},
    [R_ITEM_SIMILAR] = {"item_similar", M_GET | M_HEAD, "GET, HEAD"},
    [R_ITEM_FEATURES] = {"item_features", M_GET | M_HEAD, "GET, HEAD"},
    [R_RECS_USER] = {"recommendations", M_GET | M_HEAD, "GET, HEAD"},
    [R_RECS_ANON] = {"recommendations_anonymous", M_POST, "POST"},
    [R_POPULAR] = {"popular", M_GET | M_HEAD, "GET, HEAD"},
    [R_USER_FEATURES] = {"user_features", M_GET | M_HEAD, "GET, HEAD"},
    [R_MODELS] = {"models", M_GET | M_HEAD, "GET, HEAD"},
    [R_MODELS_TRAIN] = {"models_train", M_POST, "POST"},
    [R_MODELS_ROLLBACK] = {"models_rollback", M_POST, "POST"},
    [R_MODEL_PROMOTE] = {"model_promote", M_POST, "POST"},
    [R_MODEL_JOB] = {"model_job", M_GET | M_HEAD, "GET, HEAD"},
};

int route_methods(route_id id) { return id < R_COUNT ? routes[id].methods : 0; }
const char *route_name(route_id id) { return id < R_COUNT ? routes[id].name : "unknown"; }
const char *route_allow_header(route_id id) { return id < R_COUNT ? routes[id].allow : ""; }

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* decode one path segment [s, s+len) into out; -1 on bad encoding/too long */
static int decode(const char *s, size_t len, char *out, size_t cap, size_t *outlen) {
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    if (o + 1 >= cap) return -1;
    if (s[i] == '%') {
      if (i + 2 >= len) return -1;
      int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
      if (h < 0 || l < 0) return -1;
      out[o++] = (char)(h * 16 + l);
      i += 2;
    } else {
      out[o++] = s[i];
    }
  }
  out[o] = 0;
  *outlen = o;
  return 0;
}

#define MAX_SEGS 8

int route_match_path(const char *path, route_match *m, char *err, size_t errlen) {
  memset(m, 0, sizeof *m);
  m->id = R_NONE;
  const char *q = strchr(path, '?');
  size_t plen = q ? (size_t)(q - path) : strlen(path);
  if (plen == 0 || path[0] != '/') return RECD_ENOTFOUND;
  /* split into raw segments, ignoring one trailing slash */
  const char *seg[MAX_SEGS];
  size_t seglen[MAX_SEGS];
  int n = 0;
  size_t i = 1;
  if (plen == 1) {
    m->id = R_ROOT;
    return 0;
  }
  while (i <= plen) {
    size_t j = i;
    while (j < plen && path[j] != '/') j++;
    if (j == plen && j == i && n > 0) break; /* trailing slash */
    if (n == MAX_SEGS) return RECD_ENOTFOUND;
    seg[n] = path + i;
    seglen[n++] = j - i;
    i = j + 1;
  }
#define IS(k, lit) (seglen[k] == sizeof(lit) - 1 && !memcmp(seg[k], lit, sizeof(lit) - 1))
  if (n == 1 && IS(0, "metrics")) m->id = R_METRICS;
  if (n >= 3 && IS(0, "api") && IS(1, "v1")) {
    int argseg = -1;
    if (n == 3 && IS(2, "health")) m->id = R_HEALTH;
    else if (n == 3 && IS(2, "events")) m->id = R_EVENTS;
    else if (n == 3 && IS(2, "items")) m->id = R_ITEMS;
    else if (n == 3 && IS(2, "popular")) m->id = R_POPULAR;
    else if (n == 3 && IS(2, "recommendations")) m->id = R_RECS_ANON;
    else if (n == 4 && IS(2, "items")) m->id = R_ITEM, argseg = 3;
    else if (n == 5 && IS(2, "items") && IS(4, "similar")) m->id = R_ITEM_SIMILAR, argseg = 3;
    else if (n == 5 && IS(2, "items") && IS(4, "features")) m->id = R_ITEM_FEATURES, argseg = 3;
    else if (n == 4 && IS(2, "recommendations")) m->id = R_RECS_USER, argseg = 3;
    else if (n == 5 && IS(2, "users") && IS(4, "features")) m->id = R_USER_FEATURES, argseg = 3;
    else if (n == 3 && IS(2, "models")) m->id = R_MODELS;
    else if (n == 4 && IS(2, "models") && IS(3, "train")) m->id = R_MODELS_TRAIN;
    else if (n == 4 && IS(2, "models") && IS(3, "rollback")) m->id = R_MODELS_ROLLBACK;
    else if (n == 5 && IS(2, "models") && IS(4, "promote")) m->id = R_MODEL_PROMOTE, argseg = 3;
    else if (n == 5 && IS(2, "models") && IS(3, "jobs")) m->id = R_MODEL_JOB, argseg = 4;
    if (argseg >= 0) {
      if (decode(seg[argseg], seglen[argseg], m->arg, sizeof m->arg, &m->arg_len)) {
        snprintf(err, errlen, "path: the id segment is not valid percent-encoding or is too long");
        m->id = R_NONE;
        return RECD_EINVAL;
      }
    }
  }
#undef IS
  return m->id == R_NONE ? RECD_ENOTFOUND : 0;
}
