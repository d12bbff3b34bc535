#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/config.h"
#include "unit.h"

START_TEST(defaults) {
  recd_config c;
  config_defaults(&c);
  ck_assert_str_eq(c.listen, "127.0.0.1:8080");
  ck_assert_int_eq(c.max_batch, 10000);
  ck_assert_str_eq(c.fsync, "full");
  ck_assert_int_eq(c.ntypes, 5);
  ck_assert_int_eq(config_type_index(&c, "purchase", 8), 4);
  ck_assert_int_eq(config_type_index(&c, "clik", 4), -1);
  ck_assert_int_eq(c.trending_window_ms, 7 * 86400000LL);
}
END_TEST

START_TEST(precedence) {
  char dir[] = "/tmp/recd-cfg-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char path[128];
  snprintf(path, sizeof path, "%s/recd.conf", dir);
  FILE *f = fopen(path, "w");
  fprintf(f, "# comment\nmax_batch = 50\nthreads = 3\nevent_types = \"share:2.5\"\n");
  fclose(f);
  setenv("RECD_THREADS", "4", 1);
  recd_config c;
  config_defaults(&c);
  char a0[] = "serve", a1[] = "--config", a3[] = "--threads=5", a4[] = "--keep-me", a5[] = "--exclude-seen", a6[] = "false";
  char *argv[] = {a0, a1, path, a3, a4, a5, a6, NULL};
  int argc = 7;
  char err[256];
  ck_assert_int_eq(config_load(&c, &argc, argv, err, sizeof err), 0);
  ck_assert_int_eq(c.max_batch, 50);     /* file */
  ck_assert_int_eq(c.threads, 5);        /* flag beats env beats file */
  ck_assert_int_eq(c.exclude_seen, 0);
  ck_assert_int_eq(config_type_index(&c, "share", 5), 5);
  ck_assert_float_eq_tol(c.types[5].weight, 2.5, 1e-6);
  ck_assert_int_eq(argc, 2);             /* unknown flags stay */
  ck_assert_str_eq(argv[1], "--keep-me");
  unsetenv("RECD_THREADS");
  remove(path);
  rmdir(dir);
}
END_TEST

START_TEST(errors_name_the_option) {
  recd_config c;
  config_defaults(&c);
  char err[256];
  ck_assert_int_ne(config_set(&c, "max_batch", "lots", err, sizeof err), 0);
  ck_assert_ptr_nonnull(strstr(err, "max_batch"));
  ck_assert_int_ne(config_set(&c, "fsync", "sometimes", err, sizeof err), 0);
  ck_assert_ptr_nonnull(strstr(err, "fsync"));
  ck_assert_int_ne(config_set(&c, "nosuch", "1", err, sizeof err), 0);
  ck_assert_ptr_nonnull(strstr(err, "nosuch"));
  ck_assert_int_eq(config_set(&c, "event_types", "view:2", err, sizeof err), 0);
  ck_assert_int_ne(config_finish(&c, err, sizeof err), 0); /* redefines a built-in */
  ck_assert_ptr_nonnull(strstr(err, "view"));
}
END_TEST

Suite *config_suite(void) {
  Suite *s = suite_create("config");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, defaults);
  tcase_add_test(tc, precedence);
  tcase_add_test(tc, errors_name_the_option);
  suite_add_tcase(s, tc);
  return s;
}
