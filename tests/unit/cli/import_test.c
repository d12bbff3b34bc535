/* tests for src/cli/import.c: the CSV splitter, field decoding, and imports of
 * generated and hand-made files into an engine on a temp dir. The .c is
 * included to reach its static functions; gen_write comes from gen_test.c. */
#include "cli/import.c"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/gen.h"
#include "unit.h"

/* ---- csv_split ---- */

typedef struct {
  int st, nf;
  size_t used, nlines;
  const char *why;
  csv_field f[CSV_MAX_FIELDS];
  char text[CSV_MAX_FIELDS][64];
} split_result;

static split_result split(const char *s, int eof) {
  split_result r;
  memset(&r, 0, sizeof r);
  r.st = csv_split(s, strlen(s), eof, r.f, CSV_MAX_FIELDS, &r.nf, &r.used, &r.nlines, &r.why);
  if (r.st == CSV_OK)
    for (int i = 0; i < r.nf && i < CSV_MAX_FIELDS; i++) r.text[i][csv_unescape(&r.f[i], r.text[i])] = 0;
  return r;
}

START_TEST(csv_plain_fields) {
  split_result r = split("a,bc,def\nnext,line\n", 0);
  ck_assert_int_eq(r.st, CSV_OK);
  ck_assert_int_eq(r.nf, 3);
  ck_assert_str_eq(r.text[0], "a");
  ck_assert_str_eq(r.text[1], "bc");
  ck_assert_str_eq(r.text[2], "def");
  ck_assert_uint_eq(r.used, 9);
  ck_assert_uint_eq(r.nlines, 1);

  r = split(",,\n", 0); /* empty fields */
  ck_assert_int_eq(r.st, CSV_OK);
  ck_assert_int_eq(r.nf, 3);
  for (int i = 0; i < 3; i++) ck_assert_uint_eq(r.f[i].len, 0);

  r = split("a,b\r\nc\n", 0); /* CRLF */
  ck_assert_int_eq(r.st, CSV_OK);
  ck_assert_str_eq(r.text[1], "b");
  ck_assert_uint_eq(r.used, 5);

  r = split("a,b", 0); /* the rest of the record may still come */
  ck_assert_int_eq(r.st, CSV_MORE);
  r = split("a,b", 1); /* last record without a newline */
  ck_assert_int_eq(r.st, CSV_OK);
  ck_assert_int_eq(r.nf, 2);
  ck_assert_uint_eq(r.nlines, 0);
  r = split("a,", 1);
  ck_assert_int_eq(r.nf, 2);
  ck_assert_uint_eq(r.f[1].len, 0);

  r = split("\n", 0); /* a blank line is one empty field */
  ck_assert_int_eq(r.st, CSV_OK);
  ck_assert_int_eq(r.nf, 1);
  ck_assert_uint_eq(r.f[0].len, 0);
}
END_TEST

START_TEST(csv_quoting) {
  split_result r = split("\"a,1\",\"say \"\"hi\"\"\",\"\",x\n", 0);
  ck_assert_int_eq(r.st, CSV_OK);
  ck_assert_int_eq(r.nf, 4);
  ck_assert_str_eq(r.text[0], "a,1");
  ck_assert_str_eq(r.text[1], "say \"hi\"");
  ck_assert_uint_eq(csv_len(&r.f[1]), 8);
  ck_assert_str_eq(r.text[2], "");
  ck_assert_int_eq(r.f[2].quoted, 1);
  ck_assert_str_eq(r.text[3], "x");

  r = split("\"two\nlines\",b\r\nz\n", 0); /* a quoted newline; CRLF after a quote */
  ck_assert_int_eq(r.st, CSV_OK);
  ck_assert_int_eq(r.nf, 2);
  ck_assert_str_eq(r.text[0], "two\nlines");
  ck_assert_str_eq(r.text[1], "b");
  ck_assert_uint_eq(r.nlines, 2);
  ck_assert_uint_eq(r.used, 15);

  r = split("\"\"\"\"\n", 0); /* a field that is one quote */
  ck_assert_int_eq(r.st, CSV_OK);
  ck_assert_str_eq(r.text[0], "\"");

  r = split("\"abc\"", 0); /* a quote at the end may be the first of a pair */
  ck_assert_int_eq(r.st, CSV_MORE);
  r = split("\"abc\"", 1);
  ck_assert_int_eq(r.st, CSV_OK);
  ck_assert_str_eq(r.text[0], "abc");
  r = split("\"ab", 0);
  ck_assert_int_eq(r.st, CSV_MORE);
}
END_TEST

START_TEST(csv_bad_quoting) {
  split_result r = split("\"ab\"x,c\nnext\n", 0);
  ck_assert_int_eq(r.st, CSV_BAD);
  ck_assert_ptr_nonnull(strstr(r.why, "after a closing quote"));
  ck_assert_uint_eq(r.used, 8); /* resumes at "next" */
  ck_assert_uint_eq(r.nlines, 1);

  r = split("a\"b,c\nnext\n", 0);
  ck_assert_int_eq(r.st, CSV_BAD);
  ck_assert_ptr_nonnull(strstr(r.why, "quote inside an unquoted field"));
  ck_assert_uint_eq(r.used, 6);

  r = split("\"open,b\nnext\n", 1);
  ck_assert_int_eq(r.st, CSV_BAD);
  ck_assert_ptr_nonnull(strstr(r.why, "unterminated"));
  ck_assert_uint_eq(r.used, 8); /* resynchronises at the next physical line */

  r = split("a\"b", 0); /* can't tell where to resume yet */
  ck_assert_int_eq(r.st, CSV_MORE);
}
END_TEST

START_TEST(field_decoding) {
  int64_t ms = 0;
  ck_assert_int_eq(unix_ms_fast("1600000000.5", 12, &ms), 0);
  ck_assert_int_eq(ms, 1600000000500LL);
  ck_assert_int_eq(unix_ms_fast("1600000000.123", 14, &ms), 0);
  ck_assert_int_eq(ms, 1600000000123LL);
  ck_assert_int_eq(unix_ms_fast("17", 2, &ms), 0);
  ck_assert_int_eq(ms, 17000);
  ck_assert_int_eq(unix_ms_fast("1.2345", 6, &ms), -1); /* strtod path */
  ck_assert_int_eq(unix_ms_fast("1.", 2, &ms), -1);
  ck_assert_int_eq(unix_ms_fast("4102444801", 10, &ms), -1);

  recd_fail fail;
  int64_t now = 1700000000000LL;
  csv_field f = {.p = "2023-11-14T22:13:20Z", .len = 20};
  ck_assert_int_eq(csv_timestamp(&f, now, &ms, &fail), 0);
  ck_assert_int_eq(ms, 1700000000000LL);
  f = (csv_field){.p = "1.6e9", .len = 5};
  ck_assert_int_eq(csv_timestamp(&f, now, &ms, &fail), 0);
  ck_assert_int_eq(ms, 1600000000000LL);
  f = (csv_field){.p = "-5", .len = 2};
  ck_assert_int_ne(csv_timestamp(&f, now, &ms, &fail), 0);
  ck_assert_ptr_nonnull(strstr(fail.message, "out of range"));
  f = (csv_field){.p = "1700090000", .len = 10}; /* 25 h ahead */
  ck_assert_int_ne(csv_timestamp(&f, now, &ms, &fail), 0);
  ck_assert_ptr_nonnull(strstr(fail.message, "future"));
  f = (csv_field){.p = "yesterday", .len = 9};
  ck_assert_int_ne(csv_timestamp(&f, now, &ms, &fail), 0);
  ck_assert_str_eq(fail.field, "timestamp");
  f = (csv_field){.p = "nan", .len = 3};
  ck_assert_int_ne(csv_timestamp(&f, now, &ms, &fail), 0);

  double v;
  f = (csv_field){.p = "12.50", .len = 5};
  ck_assert_int_eq(csv_value(&f, &v, &fail), 0);
  ck_assert_double_eq(v, 12.5);
  f = (csv_field){.p = "inf", .len = 3};
  ck_assert_int_ne(csv_value(&f, &v, &fail), 0);
  f = (csv_field){.p = "12abc", .len = 5};
  ck_assert_int_ne(csv_value(&f, &v, &fail), 0);
  ck_assert_ptr_nonnull(strstr(fail.message, "value: '12abc'"));
}
END_TEST

/* ---- imports into a real engine ---- */

static recd_engine *open_engine(const char *dir) {
  recd_config c;
  char err[512];
  config_defaults(&c);
  snprintf(c.data, sizeof c.data, "%s/data", dir);
  ck_assert_int_eq(config_set(&c, "fsync", "off", err, sizeof err), 0);
  ck_assert_int_eq(config_finish(&c, err, sizeof err), 0);
  recd_engine *e = NULL;
  int rc = engine_open(&c, &e, err, sizeof err);
  ck_assert_msg(rc == 0, "engine_open: %s", err);
  return e;
}

static void write_text(const char *path, const char *text, const char *mode) {
  FILE *f = fopen(path, mode);
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
}

/* run an import with errors captured in *msgs (caller frees) */
static int run_import(recd_engine *e, const import_params *p, import_report *r, char **msgs) {
  size_t len;
  FILE *err = open_memstream(msgs, &len);
  int rc = import_run(e, p, r, err);
  fclose(err);
  return rc;
}

static long count_lines(const char *path) {
  FILE *f = fopen(path, "r");
  ck_assert_ptr_nonnull(f);
  long n = 0;
  int c;
  while ((c = getc(f)) != EOF) n += c == '\n';
  fclose(f);
  return n;
}

START_TEST(import_generated_with_bad_lines) {
  char *dir = unit_tmpdir();
  gen_params gp;
  gen_default_params(&gp);
  gp.users = 300;
  gp.items = 120;
  gp.events = 5000;
  gp.categories = 6;
  gp.end_ms = clock_now_ms() / 1000 * 1000;
  char err[256];
  ck_assert_int_eq(gen_write(&gp, dir, NULL, NULL, err, sizeof err), 0);
  char events[600], items[600];
  snprintf(events, sizeof events, "%s/events.csv", dir);
  snprintf(items, sizeof items, "%s/items.jsonl", dir);
  ck_assert_int_eq(count_lines(events), 5001);
  /* lines 5002..5005: two bad events, one good one with quotes, one bad */
  write_text(events,
             "user_1,item_1,clik,1700000000,,s\n"
             "user_1,item_1,view,1700000000,,\"sess \"\"q\"\"\"\n"
             "user_1,,view,1700000000,,s\n"
             "user_1,item_1,purchase,1700000000,12x,s\n",
             "a");
  write_text(items, "{\"item_id\":\"bad\",\"available\":\"yes\"}\n", "a");

  recd_engine *e = open_engine(dir);
  import_params p = {.events_path = events, .items_path = items, .batch = 777};
  import_report r;
  char *msgs = NULL;
  ck_assert_int_eq(run_import(e, &p, &r, &msgs), 0);
  ck_assert_uint_eq(r.lines, 5004);
  ck_assert_uint_eq(r.accepted, 5001);
  ck_assert_uint_eq(r.rejected, 3);
  ck_assert_uint_eq(r.items, 120);
  ck_assert_uint_eq(r.items_rejected, 1);
  ck_assert_msg(strstr(msgs, "/events.csv:5002: event_type: unknown type 'clik'\n"), "%s", msgs);
  ck_assert_msg(strstr(msgs, "/events.csv:5004: item_id: must not be empty\n"), "%s", msgs);
  ck_assert_msg(strstr(msgs, "/events.csv:5005: value: '12x' is not a finite number\n"), "%s", msgs);
  ck_assert_msg(strstr(msgs, "/items.jsonl:121: available"), "%s", msgs);
  free(msgs);
  recd_stats st;
  engine_stats(e, &st);
  ck_assert_uint_eq(st.events, 5001);
  ck_assert_uint_eq(st.catalog_items, 120);
  ck_assert_uint_eq(st.events_by_type[0] + st.events_by_type[1] + st.events_by_type[3] + st.events_by_type[4],
                    5001);
  engine_free(e);

  /* the log replays to the same count */
  e = open_engine(dir);
  engine_stats(e, &st);
  ck_assert_uint_eq(st.events, 5001);
  engine_free(e);
  unit_rmrf(dir);
  free(dir);
}
END_TEST

START_TEST(import_csv_columns_any_order_and_small_buffer) {
  char *dir = unit_tmpdir();
  char path[600];
  snprintf(path, sizeof path, "%s/ev.csv", dir);
  /* BOM, columns reordered, optional ones missing, a quoted newline, blank lines,
   * a record longer than the (shrunk) read buffer */
  char longid[300];
  memset(longid, 'x', 200);
  longid[200] = 0;
  char text[2048];
  snprintf(text, sizeof text,
           "\xEF\xBB\xBF"
           "event_type,item_id,user_id,timestamp\n" /* 1 */
           "view,i1,u1,1700000000.25\n"             /* 2 */
           "\n"                                      /* 3 */
           "click,\"i\n2\",u1,1700000001\n"         /* 4-5: control character */
           "like,i2,u2,2023-11-14T22:13:20.5+01:00\r\n" /* 6 */
           "view,%s,u3,1700000002\n"                 /* 7: longer than the buffer */
           "view,i3,u3,\n"                           /* 8: no timestamp: now */
           "view,i3\n",                              /* 9: too few fields */
           longid);
  write_text(path, text, "w");
  size_t saved = imp_buf_size;
  imp_buf_size = 128;
  recd_engine *e = open_engine(dir);
  import_params p = {.events_path = path, .batch = 2};
  import_report r;
  char *msgs = NULL;
  int rc = run_import(e, &p, &r, &msgs);
  imp_buf_size = saved;
  ck_assert_int_eq(rc, 0);
  ck_assert_uint_eq(r.lines, 6);
  ck_assert_uint_eq(r.accepted, 3);
  ck_assert_uint_eq(r.rejected, 3);
  ck_assert_msg(strstr(msgs, "ev.csv:4: item_id: contains a control character"), "%s", msgs);
  ck_assert_msg(strstr(msgs, "ev.csv:7: record longer than 128 bytes"), "%s", msgs);
  ck_assert_msg(strstr(msgs, "ev.csv:9: expected 4 fields like the header, found 2"), "%s", msgs);
  free(msgs);
  json_t *u = engine_user_features(e, "u2");
  ck_assert_ptr_nonnull(u);
  json_decref(u);
  engine_free(e);
  unit_rmrf(dir);
  free(dir);
}
END_TEST

START_TEST(import_bad_header_stops) {
  char *dir = unit_tmpdir();
  char path[600];
  snprintf(path, sizeof path, "%s/ev.csv", dir);
  write_text(path, "user_id,item_id,event_type,colour,size\nu,i,view,red,9\n", "w");
  recd_engine *e = open_engine(dir);
  import_params p = {.events_path = path};
  import_report r;
  char *msgs = NULL;
  ck_assert_int_eq(run_import(e, &p, &r, &msgs), RECD_EINVAL);
  ck_assert_msg(strstr(msgs, "ev.csv:1: unknown columns 'colour', 'size'"), "%s", msgs);
  ck_assert_uint_eq(r.accepted, 0);
  free(msgs);

  write_text(path, "user_id,event_type\nu,view\n", "w");
  ck_assert_int_eq(run_import(e, &p, &r, &msgs), RECD_EINVAL);
  ck_assert_msg(strstr(msgs, "no 'item_id' column"), "%s", msgs);
  free(msgs);

  write_text(path, "user_id,item_id,event_type,user_id\n", "w");
  ck_assert_int_eq(run_import(e, &p, &r, &msgs), RECD_EINVAL);
  ck_assert_msg(strstr(msgs, "'user_id' appears twice"), "%s", msgs);
  free(msgs);

  snprintf(path, sizeof path, "%s/missing.csv", dir);
  ck_assert_int_eq(run_import(e, &p, &r, &msgs), -ENOENT);
  free(msgs);
  engine_free(e);
  unit_rmrf(dir);
  free(dir);
}
END_TEST

START_TEST(import_jsonl_file) {
  char *dir = unit_tmpdir();
  char path[600];
  snprintf(path, sizeof path, "%s/ev.jsonl", dir);
  write_text(path,
             "{\"user_id\":\"u1\",\"item_id\":\"i1\",\"event_type\":\"view\",\"timestamp\":1700000000}\n"
             "{\"user_id\":\"u1\",\"item_id\":\"i2\",\"event_type\":\"purchase\",\"value\":3.5,"
             "\"session_id\":\"s1\",\"recommendation_id\":\"r1\"}\n"
             "\n"
             "{\"user_id\":\"u1\",\"item_id\":\"i2\",\"event_type\":\"clik\"}\n"
             "{\"user_id\":\"u1\",\n"
             "{\"user_id\":\"u1\",\"item_id\":\"i2\",\"event_type\":\"view\",\"colour\":1}\n",
             "w");
  recd_engine *e = open_engine(dir);
  import_params p = {.events_path = path};
  import_report r;
  char *msgs = NULL;
  ck_assert_int_eq(run_import(e, &p, &r, &msgs), 0);
  ck_assert_uint_eq(r.lines, 5);
  ck_assert_uint_eq(r.accepted, 2);
  ck_assert_uint_eq(r.rejected, 3);
  ck_assert_msg(strstr(msgs, "ev.jsonl:4: event_type: unknown type 'clik'"), "%s", msgs);
  ck_assert_msg(strstr(msgs, "ev.jsonl:5: invalid JSON"), "%s", msgs);
  ck_assert_msg(strstr(msgs, "ev.jsonl:6: colour: unknown field"), "%s", msgs);
  free(msgs);
  engine_free(e);
  unit_rmrf(dir);
  free(dir);
}
END_TEST

Suite *import_suite(void) {
  Suite *s = suite_create("import");
  TCase *tc = tcase_create("csv");
  tcase_add_test(tc, csv_plain_fields);
  tcase_add_test(tc, csv_quoting);
  tcase_add_test(tc, csv_bad_quoting);
  tcase_add_test(tc, field_decoding);
  suite_add_tcase(s, tc);
  tc = tcase_create("engine");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, import_generated_with_bad_lines);
  tcase_add_test(tc, import_csv_columns_any_order_and_small_buffer);
  tcase_add_test(tc, import_bad_header_stops);
  tcase_add_test(tc, import_jsonl_file);
  suite_add_tcase(s, tc);
  return s;
}
