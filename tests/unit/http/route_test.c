#include <string.h>

#include "http/route.h"
#include "unit.h"
#include "util/err.h"

static route_id match(const char *p, char *arg) {
  route_match m;
  char err[128];
  int rc = route_match_path(p, &m, err, sizeof err);
  if (arg) strcpy(arg, m.arg);
  return rc ? R_NONE : m.id;
}

START_TEST(routes) {
  char a[1100];
  ck_assert_int_eq(match("/", NULL), R_ROOT);
  ck_assert_int_eq(match("/metrics", NULL), R_METRICS);
  ck_assert_int_eq(match("/api/v1/health", NULL), R_HEALTH);
  ck_assert_int_eq(match("/api/v1/events", NULL), R_EVENTS);
  ck_assert_int_eq(match("/api/v1/events/", NULL), R_EVENTS);
  ck_assert_int_eq(match("/api/v1/items", NULL), R_ITEMS);
  ck_assert_int_eq(match("/api/v1/items/item_1", a), R_ITEM);
  ck_assert_str_eq(a, "item_1");
  ck_assert_int_eq(match("/api/v1/items/a%2Fb/similar", a), R_ITEM_SIMILAR);
  ck_assert_str_eq(a, "a/b");
  ck_assert_int_eq(match("/api/v1/items/x/features", NULL), R_ITEM_FEATURES);
  ck_assert_int_eq(match("/api/v1/recommendations/u%20 1", a), R_RECS_USER);
  ck_assert_str_eq(a, "u  1");
  ck_assert_int_eq(match("/api/v1/recommendations", NULL), R_RECS_ANON);
  ck_assert_int_eq(match("/api/v1/users/u1/features", NULL), R_USER_FEATURES);
  ck_assert_int_eq(match("/api/v1/popular", NULL), R_POPULAR);
  ck_assert_int_eq(match("/api/v2/popular", NULL), R_NONE);
  ck_assert_int_eq(match("/api/v1/items/x/y", NULL), R_NONE);
  ck_assert_int_eq(match("/api/v1/users/u1", NULL), R_NONE);
  ck_assert_int_eq(match("", NULL), R_NONE);
  ck_assert_int_eq(match("/api/v1/items/a%2", NULL), R_NONE);
  ck_assert_int_eq(match("/api/v1/items/a%zz", NULL), R_NONE);
  ck_assert_int_eq(match("/a/b/c/d/e/f/g/h/i/j", NULL), R_NONE);
}
END_TEST

START_TEST(methods) {
  ck_assert(route_methods(R_EVENTS) & M_POST);
  ck_assert(!(route_methods(R_EVENTS) & M_GET));
  ck_assert(route_methods(R_ITEM) & M_DELETE);
  ck_assert_str_eq(route_name(R_RECS_USER), "recommendations");
}
END_TEST

Suite *route_suite(void) {
  Suite *s = suite_create("route");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, routes);
  tcase_add_test(tc, methods);
  suite_add_tcase(s, tc);
  return s;
}
