/* tests for src/cli/gen.c: determinism, the shape of the data (funnel, time
 * order, popularity skew, sessions) and parameter checks. The .c is included to
 * reach its static helpers (and so that the CLI code, which is not part of
 * librecd.a, is linked into the test binary; import_test.c uses gen_write). */
#include "cli/gen.c"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#define END_MS 1767225600000LL /* 2026-01-01T00:00:00Z */

static char *slurp(const char *dir, const char *name, size_t *len) {
  char path[600];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = xmalloc((size_t)n + 1);
  ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
  buf[n] = 0;
  fclose(f);
  *len = (size_t)n;
  return buf;
}

static void small_params(gen_params *p, uint64_t seed) {
  gen_default_params(p);
  p->seed = seed;
  p->users = 800;
  p->items = 300;
  p->events = 30000;
  p->categories = 8;
  p->end_ms = END_MS;
}

static void generate(const gen_params *p, const char *dir) {
  char err[256];
  int rc = gen_write(p, dir, NULL, NULL, err, sizeof err);
  ck_assert_msg(rc == 0, "gen_write: %s", err);
}

START_TEST(same_seed_same_bytes) {
  char *a = unit_tmpdir(), *b = unit_tmpdir(), *c = unit_tmpdir();
  gen_params p;
  small_params(&p, 7);
  generate(&p, a);
  generate(&p, b);
  p.seed = 8;
  generate(&p, c);
  const char *files[] = {"items.jsonl", "events.csv"};
  for (int i = 0; i < 2; i++) {
    size_t na, nb, nc;
    char *x = slurp(a, files[i], &na), *y = slurp(b, files[i], &nb), *z = slurp(c, files[i], &nc);
    ck_assert_msg(na == nb && !memcmp(x, y, na), "%s differs for the same seed", files[i]);
    ck_assert_msg(na != nc || memcmp(x, z, na), "%s is the same for different seeds", files[i]);
    free(x);
    free(y);
    free(z);
  }
  unit_rmrf(a);
  unit_rmrf(b);
  unit_rmrf(c);
  free(a);
  free(b);
  free(c);
}
END_TEST

/* parse events.csv with the generator's own format in mind */
typedef struct {
  long n, by_type[4], with_value, bad_value;
  long out_of_order, out_of_window;
  long *per_item;
  long nsessions_checked, session_user_mismatch, session_too_long;
} ev_stats;

static void scan_events(const char *dir, const gen_params *p, ev_stats *s) {
  size_t len;
  char *buf = slurp(dir, "events.csv", &len);
  memset(s, 0, sizeof *s);
  s->per_item = xcalloc((size_t)p->items + 1, sizeof(long));
  char *line = strchr(buf, '\n');
  ck_assert_ptr_nonnull(line);
  *line = 0;
  ck_assert_str_eq(buf, "user_id,item_id,event_type,timestamp,value,session_id");
  line++;
  /* per session: first user and first/last time (session numbers are dense) */
  size_t cap = (size_t)p->events + 2;
  long *suser = xcalloc(cap, sizeof(long));
  double *sfirst = xcalloc(cap, sizeof(double)), *slast = xcalloc(cap, sizeof(double));
  double prev = 0, lo = (END_MS - p->days * 86400000LL) / 1000.0, hi = END_MS / 1000.0;
  while (*line) {
    char *nl = strchr(line, '\n');
    ck_assert_ptr_nonnull(nl);
    *nl = 0;
    long user, item, sess;
    char type[32], rest[64];
    double ts;
    int k = sscanf(line, "user_%ld,item_%ld,%31[a-z_],%lf,%63s", &user, &item, type, &ts, rest);
    ck_assert_msg(k == 5, "bad line '%s'", line);
    int t = 0;
    while (t < 4 && strcmp(type, type_names[t])) t++;
    ck_assert_msg(t < 4, "bad type in '%s'", line);
    s->by_type[t]++;
    ck_assert(item >= 1 && item <= p->items);
    ck_assert(user >= 1 && user <= p->users);
    s->per_item[item]++;
    if (ts < prev) s->out_of_order++;
    if (ts < lo || ts > hi) s->out_of_window++;
    prev = ts;
    int has_value = rest[0] != ',';
    if (has_value) s->with_value++;
    if (has_value != (t >= 2)) s->bad_value++;
    char *sid = strstr(rest, "sess_");
    ck_assert_ptr_nonnull(sid);
    sess = atol(sid + 5);
    ck_assert((size_t)sess < cap);
    if (!suser[sess]) {
      suser[sess] = user;
      sfirst[sess] = ts;
    } else if (suser[sess] != user) {
      s->session_user_mismatch++;
    }
    slast[sess] = ts;
    s->n++;
    line = nl + 1;
  }
  for (size_t i = 0; i < cap; i++)
    if (suser[i]) {
      s->nsessions_checked++;
      if (slast[i] - sfirst[i] > 12 * 3600) s->session_too_long++;
    }
  free(suser);
  free(sfirst);
  free(slast);
  free(buf);
}

START_TEST(shape_of_the_data) {
  char *dir = unit_tmpdir();
  gen_params p;
  small_params(&p, 42);
  generate(&p, dir);
  ev_stats s;
  scan_events(dir, &p, &s);
  ck_assert_int_eq(s.n, p.events); /* exact count */
  ck_assert_int_eq(s.out_of_order, 0);
  ck_assert_int_eq(s.out_of_window, 0);
  ck_assert_int_eq(s.bad_value, 0);
  ck_assert_int_eq(s.session_user_mismatch, 0);
  ck_assert_int_eq(s.session_too_long, 0);
  ck_assert_int_gt(s.nsessions_checked, p.events / 20);
  ck_assert_int_lt(s.nsessions_checked, p.events / 2);

  /* the funnel narrows at every step, at roughly the designed rates */
  double view = (double)s.by_type[0], click = (double)s.by_type[1], cart = (double)s.by_type[2],
         buy = (double)s.by_type[3];
  ck_assert_msg(view > click && click > cart && cart > buy && buy > 0, "funnel %g %g %g %g", view, click, cart,
                buy);
  ck_assert_msg(click / view > 0.15 && click / view < 0.45, "click/view %g", click / view);
  ck_assert_msg(cart / click > 0.10 && cart / click < 0.40, "cart/click %g", cart / click);
  ck_assert_msg(buy / cart > 0.30 && buy / cart < 0.75, "purchase/cart %g", buy / cart);

  /* popularity is skewed: the top 5% of items take far more than 5% of events */
  long *c = s.per_item + 1;
  long n = p.items, top = 0;
  for (long i = 0; i < n; i++)
    for (long j = i + 1; j < n; j++)
      if (c[j] > c[i]) {
        long t = c[i];
        c[i] = c[j];
        c[j] = t;
      }
  for (long i = 0; i < n / 20; i++) top += c[i];
  ck_assert_msg((double)top / (double)s.n > 0.20, "top 5%% of items have only %g of events",
                (double)top / (double)s.n);
  free(s.per_item);

  /* catalog: one line per item, some unavailable, some new */
  size_t len;
  char *items = slurp(dir, "items.jsonl", &len);
  long lines = 0, unavailable = 0;
  for (char *q = items; (q = strchr(q, '\n')); q++) lines++;
  for (char *q = items; (q = strstr(q, "\"available\":false")); q++) unavailable++;
  ck_assert_int_eq(lines, p.items);
  ck_assert_msg(unavailable > 0 && unavailable < p.items / 8, "%ld unavailable", unavailable);
  ck_assert_ptr_nonnull(strstr(items, "{\"item_id\":\"item_1\",\"categories\":[\"books\""));
  ck_assert_ptr_nonnull(strstr(items, "\"created_at\":\"2025-12-")); /* new arrivals inside the window */
  free(items);
  unit_rmrf(dir);
  free(dir);
}
END_TEST

START_TEST(params) {
  gen_params p;
  gen_default_params(&p);
  ck_assert_ptr_null(gen_check_params(&p));
  p.categories = 0;
  ck_assert_ptr_nonnull(strstr(gen_check_params(&p), "categories"));
  gen_default_params(&p);
  p.items = 3;
  p.categories = 4;
  ck_assert_ptr_nonnull(gen_check_params(&p));
  gen_default_params(&p);
  p.unavailable_share = 1.0;
  ck_assert_ptr_nonnull(strstr(gen_check_params(&p), "unavailable"));
  gen_default_params(&p);
  p.users = 0;
  char err[128];
  ck_assert_int_eq(gen_write(&p, "/nonexistent-dir-never-created", NULL, NULL, err, sizeof err), RECD_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "users"));

  /* zero events: just the header; one item and one category work */
  char *dir = unit_tmpdir();
  small_params(&p, 1);
  p.events = 0;
  p.items = 1;
  p.categories = 1;
  p.users = 1;
  generate(&p, dir);
  size_t len;
  char *ev = slurp(dir, "events.csv", &len);
  ck_assert_str_eq(ev, "user_id,item_id,event_type,timestamp,value,session_id\n");
  free(ev);
  p.events = 50;
  generate(&p, dir);
  ev_stats s;
  scan_events(dir, &p, &s);
  ck_assert_int_eq(s.n, 50);
  free(s.per_item);
  unit_rmrf(dir);
  free(dir);
}
END_TEST

START_TEST(rng_and_samplers) {
  gen_rng a, b;
  rng_seed(&a, 1, ST_SESSIONS);
  rng_seed(&b, 1, ST_SESSIONS);
  for (int i = 0; i < 100; i++) ck_assert_uint_eq(rng_next(&a), rng_next(&b));
  rng_seed(&b, 1, ST_USERS);
  ck_assert_uint_ne(rng_next(&a), rng_next(&b));
  double sum = 0, gsum = 0;
  uint32_t hits0 = 0;
  for (int i = 0; i < 100000; i++) {
    double u = rng_unit(&a);
    ck_assert(u >= 0 && u < 1);
    sum += u;
    gsum += rng_gamma(&a, 0.6);
    uint32_t k = rng_zipf1(&a, 1000, log(1001.0));
    ck_assert_uint_lt(k, 1000);
    hits0 += k == 0;
  }
  ck_assert_double_eq_tol(sum / 100000, 0.5, 0.01);
  ck_assert_double_eq_tol(gsum / 100000, 0.6, 0.02); /* Gamma(a,1) has mean a */
  ck_assert_uint_gt(hits0, 5000);                     /* ~ln2/ln1001 = 10% on rank 0 */
  double w[4] = {1, 2, 3, 4};
  gen_alias t;
  alias_build(&t, w, 4);
  int cnt[4] = {0};
  for (int i = 0; i < 100000; i++) cnt[alias_draw(&t, &a)]++;
  for (int i = 0; i < 4; i++) ck_assert_double_eq_tol(cnt[i] / 100000.0, w[i] / 10, 0.01);
  alias_release(&t);
}
END_TEST

Suite *gen_suite(void) {
  Suite *s = suite_create("gen");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, same_seed_same_bytes);
  tcase_add_test(tc, shape_of_the_data);
  tcase_add_test(tc, params);
  tcase_add_test(tc, rng_and_samplers);
  suite_add_tcase(s, tc);
  return s;
}
