/* route.h — maps a request path to a route and its path argument, and
 * checks query parameters. Pure functions: no I/O, no engine; thread-safe. */
#ifndef RECD_HTTP_ROUTE_H
#define RECD_HTTP_ROUTE_H

#include <stddef.h>

typedef enum {
  R_NONE = 0,
  R_ROOT,
  R_HEALTH,
  R_METRICS,
  R_EVENTS,
  R_ITEMS,
  R_ITEM,
  R_ITEM_SIMILAR,
  R_ITEM_FEATURES,
  R_RECS_USER,
  R_RECS_ANON,
  R_POPULAR,
  R_USER_FEATURES,
  R_MODELS,
  R_MODELS_TRAIN,
  R_MODELS_ROLLBACK,
  R_MODEL_PROMOTE,
  R_MODEL_JOB,
  R_COUNT
} route_id;

enum { M_GET = 1, M_POST = 2, M_PUT = 4, M_DELETE = 8, M_HEAD = 16 };

typedef struct {
  route_id id;
  char arg[1024];   /* the decoded {id} path segment, "" if none */
  size_t arg_len;   /* may hold NUL bytes if the client encoded them */
} route_match;

/* 0 and *m filled; RECD_ENOTFOUND for an unknown path; RECD_EINVAL for a
 * malformed percent-encoding or an over-long segment (message in err). */
int route_match_path(const char *path, route_match *m, char *err, size_t errlen);
int route_methods(route_id id);            /* bitmask of allowed M_* */
const char *route_name(route_id id);       /* stable label for metrics */
const char *route_allow_header(route_id id);

#endif
