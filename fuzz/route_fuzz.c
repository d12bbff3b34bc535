/* route_fuzz.c — libFuzzer driver for the HTTP path router (src/http/route.c).
 *
 * The input, cut at its first NUL as a C string would be, is the request target
 * ("/api/v1/items/abc%20d/similar?n=5") given to route_match_path. Properties:
 *  - 0 means a real route; RECD_ENOTFOUND and RECD_EINVAL mean R_NONE, and
 *    RECD_EINVAL fills the error message;
 *  - on success the decoded id is NUL-terminated at arg_len, shorter than
 *    arg[], and set only for routes with an {id} segment;
 *  - routing ignores the query string;
 *  - name, methods and Allow header exist for every id returned. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "http/route.h"
#include "util/err.h"

static int has_arg(route_id id) {
  return id == R_ITEM || id == R_ITEM_SIMILAR || id == R_ITEM_FEATURES || id == R_RECS_USER ||
         id == R_USER_FEATURES;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *path = malloc(size + 1);
  if (!path) return 0;
  memcpy(path, data, size);
  path[size] = 0;

  route_match m;
  char err[256] = "";
  int rc = route_match_path(path, &m, err, sizeof err);
  FUZZ_CHECK(rc == 0 || rc == RECD_ENOTFOUND || rc == RECD_EINVAL, "rc %d", rc);
  FUZZ_CHECK(m.id < R_COUNT, "id %d", (int)m.id);
  if (rc == 0) {
    FUZZ_CHECK(m.id != R_NONE, "success without a route");
    FUZZ_CHECK(route_methods(m.id) != 0, "route %d allows no method", (int)m.id);
  } else {
    FUZZ_CHECK(m.id == R_NONE, "failure %d with route %d", rc, (int)m.id);
  }
  if (rc == RECD_EINVAL) FUZZ_CHECK(err[0] != 0, "RECD_EINVAL without a message");
  if (rc == 0) { /* on failure *m is unspecified beyond id == R_NONE */
    FUZZ_CHECK(m.arg_len < sizeof m.arg && m.arg[m.arg_len] == 0, "arg_len %zu", m.arg_len);
    if (!has_arg(m.id)) FUZZ_CHECK(m.arg_len == 0, "route %d got an id", (int)m.id);
  }
  FUZZ_CHECK(route_name(m.id) && route_allow_header(m.id), "route %d has no name", (int)m.id);

  /* the query string does not change the route */
  char *q = strchr(path, '?');
  if (q) {
    *q = 0;
    route_match m2;
    char err2[256] = "";
    int rc2 = route_match_path(path, &m2, err2, sizeof err2);
    FUZZ_CHECK(rc2 == rc && m2.id == m.id && m2.arg_len == m.arg_len && !memcmp(m2.arg, m.arg, m.arg_len),
               "with the query: rc %d route %d; without: rc %d route %d", rc, (int)m.id, rc2, (int)m2.id);
  }
  free(path);
  return 0;
}
