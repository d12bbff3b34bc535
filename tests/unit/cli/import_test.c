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

/* ---- dialects, maps and type rules ---- */

static split_result split_d(const char *s, int eof, const char *sep, int quotes) {
  split_result r;
  csv_dialect d;
  char err[256];
  memset(&r, 0, sizeof r);
  ck_assert_int_eq(sep_parse(sep, &d, err, sizeof err), 0);
  d.quotes = (uint8_t)quotes;
  r.st = csv_split_sep(s, strlen(s), eof, &d, r.f, CSV_MAX_FIELDS, &r.nf, &r.used, &r.nlines, &r.why);
  if (r.st == CSV_OK)
    for (int i = 0; i < r.nf && i < CSV_MAX_FIELDS; i++) r.text[i][csv_unescape(&r.f[i], r.text[i])] = 0;
  return r;
}

START_TEST(csv_separators) {
  split_result r = split_d("1\t22\t3.5\t881250949\nnext\n", 0, "tab", 0);
  ck_assert_int_eq(r.st, CSV_OK);
  ck_assert_int_eq(r.nf, 4);
  ck_assert_str_eq(r.text[1], "22");
  ck_assert_str_eq(r.text[3], "881250949");
  ck_assert_uint_eq(r.used, 19);
  r = split_d("a\\tb\n", 0, "\\t", 0); /* "\t" spelt with a backslash is a tab too */
  ck_assert_int_eq(r.nf, 1);

  r = split_d("1::1193::5::978300760\r\n", 0, "::", 0);
  ck_assert_int_eq(r.st, CSV_OK);
  ck_assert_int_eq(r.nf, 4);
  ck_assert_str_eq(r.text[1], "1193");
  ck_assert_str_eq(r.text[3], "978300760"); /* CR stripped */
  r = split_d("a:b::c\n", 0, "::", 0);      /* a single ':' is content */
  ck_assert_int_eq(r.nf, 2);
  ck_assert_str_eq(r.text[0], "a:b");
  r = split_d("a::b:", 0, "::", 0); /* a separator cut by the end of the buffer */
  ck_assert_int_eq(r.st, CSV_MORE);
  r = split_d("a::b:", 1, "::", 0); /* ... is content at the end of the file */
  ck_assert_int_eq(r.st, CSV_OK);
  ck_assert_str_eq(r.text[1], "b:");
  r = split_d("a::", 1, "::", 0);
  ck_assert_int_eq(r.nf, 2);
  ck_assert_uint_eq(r.f[1].len, 0);

  /* without quoting a quote is content; with it, quoting works with any separator */
  r = split_d("7|\"Quoted\" Title (1995)|x\n", 0, "|", 0);
  ck_assert_int_eq(r.st, CSV_OK);
  ck_assert_str_eq(r.text[1], "\"Quoted\" Title (1995)");
  r = split_d("\"a;b\";\"say \"\"hi\"\"\";c\n", 0, ";", 1);
  ck_assert_int_eq(r.st, CSV_OK);
  ck_assert_int_eq(r.nf, 3);
  ck_assert_str_eq(r.text[0], "a;b");
  ck_assert_str_eq(r.text[1], "say \"hi\"");
  r = split_d("\"a\"::b\n", 0, "::", 1);
  ck_assert_int_eq(r.st, CSV_OK);
  ck_assert_str_eq(r.text[0], "a");
  r = split_d("\"a\":b\n", 0, "::", 1);
  ck_assert_int_eq(r.st, CSV_BAD);

  csv_dialect d;
  char err[256];
  ck_assert_int_ne(sep_parse("", &d, err, sizeof err), 0);
  ck_assert_int_ne(sep_parse("12345678", &d, err, sizeof err), 0);
  ck_assert_int_eq(sep_parse("pipe", &d, err, sizeof err), 0);
  ck_assert_str_eq(d.sep, "|");
}
END_TEST

/* Random records over a small alphabet: a one-byte separator splits exactly
 * like the specialised ',' splitter on the same text with the bytes swapped,
 * and every prefix of a "::" record, split as if more may come, either asks for
 * more or gives the answer for the whole (as when a record straddles a refill). */
START_TEST(csv_dialects_agree) {
  static const char alpha[] = "a,;:\"\n\r|";
  const csv_dialect semi = {";", 1, 1}, dq = {"::", 2, 1}, dn = {"::", 2, 0};
  uint64_t x = 88172645463325252ULL;
  for (int it = 0; it < 20000; it++) {
    char s[48], t[48];
    size_t n = 1 + (x % 40);
    for (size_t i = 0; i < n; i++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      s[i] = alpha[x % 8];
      t[i] = s[i] == ',' ? ';' : s[i] == ';' ? ',' : s[i];
    }
    for (int eof = 0; eof < 2; eof++) {
      csv_field f[CSV_MAX_FIELDS], g[CSV_MAX_FIELDS];
      int nf = 0, ng = 0;
      size_t u1 = 0, u2 = 0, l1 = 0, l2 = 0;
      const char *w1 = NULL, *w2 = NULL;
      int a = csv_split(s, n, eof, f, CSV_MAX_FIELDS, &nf, &u1, &l1, &w1);
      int b = csv_split_sep(t, n, eof, &semi, g, CSV_MAX_FIELDS, &ng, &u2, &l2, &w2);
      ck_assert_msg(a == b && u1 == u2 && l1 == l2, "'%.*s': %d/%zu vs %d/%zu", (int)n, s, a, u1, b, u2);
      if (a != CSV_OK) continue;
      ck_assert_int_eq(nf, ng);
      for (int k = 0; k < nf && k < CSV_MAX_FIELDS; k++)
        ck_assert(f[k].p - s == g[k].p - t && f[k].len == g[k].len && f[k].escaped == g[k].escaped);
    }
    for (int di = 0; di < 2; di++) {
      const csv_dialect *d = di ? &dn : &dq;
      csv_field f[CSV_MAX_FIELDS], g[CSV_MAX_FIELDS];
      int nf = 0;
      size_t used = 0, nl = 0;
      const char *why = NULL;
      int st = csv_split_sep(s, n, 1, d, f, CSV_MAX_FIELDS, &nf, &used, &nl, &why);
      ck_assert(st != CSV_MORE && used > 0 && used <= n && nl == count_nl(s, used));
      for (int k = 0; st == CSV_OK && k < nf && k < CSV_MAX_FIELDS; k++)
        ck_assert(f[k].p >= s && f[k].p + f[k].len <= s + used);
      for (size_t k = 0; k <= n; k++) {
        int ng = 0;
        size_t u2 = 0, l2 = 0;
        const char *w2 = NULL;
        int st2 = csv_split_sep(s, k, 0, d, g, CSV_MAX_FIELDS, &ng, &u2, &l2, &w2);
        if (st2 == CSV_MORE) continue;
        ck_assert_msg(st2 == st && u2 == used && l2 == nl && (st != CSV_OK || ng == nf),
                      "'%.*s' (quotes %d), prefix %zu: %d/%zu vs %d/%zu", (int)n, s, !di, k, st2, u2, st, used);
      }
    }
  }
}
END_TEST

static recd_config test_config(void) {
  recd_config c;
  char err[256];
  config_defaults(&c);
  ck_assert_int_eq(config_finish(&c, err, sizeof err), 0);
  return c;
}

START_TEST(type_rules) {
  recd_config c = test_config();
  int like = config_type_index(&c, "like", 4), view = config_type_index(&c, "view", 4);
  int purchase = config_type_index(&c, "purchase", 8), click = config_type_index(&c, "click", 5);
  imp_rule r;
  char err[256];
  ck_assert_int_eq(rule_parse(&c, "value>=4:like,view", &r, err, sizeof err), 0);
  ck_assert_int_eq(rule_apply(&r, 1, 4.0), like); /* the boundary */
  ck_assert_int_eq(rule_apply(&r, 1, 5.0), like);
  ck_assert_int_eq(rule_apply(&r, 1, 3.5), view);
  ck_assert_int_eq(rule_apply(&r, 1, 3.999), view);
  ck_assert_int_eq(rule_apply(&r, 0, 0), view); /* no value: the default */

  ck_assert_int_eq(rule_parse(&c, " value == 5 : purchase , value>3:click, value<=1:skip,view ", &r, err, sizeof err),
                   0);
  ck_assert_int_eq(rule_apply(&r, 1, 5), purchase); /* first match wins */
  ck_assert_int_eq(rule_apply(&r, 1, 4.5), click);
  ck_assert_int_eq(rule_apply(&r, 1, 3), view);
  ck_assert_int_eq(rule_apply(&r, 1, 1), IMP_TYPE_SKIP);
  ck_assert_int_eq(rule_parse(&c, "value<2.5:view", &r, err, sizeof err), 0);
  ck_assert_int_eq(rule_apply(&r, 1, 2.5), IMP_TYPE_NONE);
  ck_assert_int_eq(rule_apply(&r, 1, 2), view);
  ck_assert_int_eq(rule_parse(&c, "purchase", &r, err, sizeof err), 0); /* a constant */
  ck_assert_int_eq(r.n, 0);
  ck_assert_int_eq(rule_apply(&r, 0, 0), purchase);

  ck_assert_int_ne(rule_parse(&c, "value>=4:likes,view", &r, err, sizeof err), 0);
  ck_assert_msg(strstr(err, "unknown event type 'likes'") && strstr(err, "add_to_cart"), "%s", err);
  ck_assert_int_ne(rule_parse(&c, "view,value>=4:like", &r, err, sizeof err), 0);
  ck_assert_msg(strstr(err, "must come last"), "%s", err);
  ck_assert_int_ne(rule_parse(&c, "value=>4:like", &r, err, sizeof err), 0);
  ck_assert_msg(strstr(err, "comparison"), "%s", err);
  ck_assert_int_ne(rule_parse(&c, "rating>=4:like", &r, err, sizeof err), 0);
  ck_assert_int_ne(rule_parse(&c, "value>=four:like", &r, err, sizeof err), 0);
  ck_assert_msg(strstr(err, "not a number"), "%s", err);
  ck_assert_int_ne(rule_parse(&c, "value>=nan:like", &r, err, sizeof err), 0);
  ck_assert_int_ne(rule_parse(&c, "value>=4:like,,view", &r, err, sizeof err), 0);
}
END_TEST

START_TEST(column_maps) {
  imp_map m;
  char err[256];
  memset(&m, 0, sizeof m);
  ck_assert_int_eq(map_parse("user=userId, item_id = 2,type=kind,rec=recommendation id", 0, &m, err, sizeof err), 0);
  ck_assert_int_eq(m.set[COL_USER], 1);
  ck_assert_str_eq(m.name[COL_USER], "userId");
  ck_assert_int_eq(m.num[COL_USER], 0);
  ck_assert_int_eq(m.num[COL_ITEM], 2);
  ck_assert_str_eq(m.name[COL_TYPE], "kind");
  ck_assert_str_eq(m.name[COL_REC], "recommendation id");
  ck_assert_int_eq(m.set[COL_TS], 0);
  ck_assert_int_ne(map_parse("usr=1", 0, &m, err, sizeof err), 0);
  ck_assert_msg(strstr(err, "unknown field 'usr'"), "%s", err);
  ck_assert_int_ne(map_parse("user=1,user=2", 0, &m, err, sizeof err), 0);
  ck_assert_int_ne(map_parse("user", 0, &m, err, sizeof err), 0);
  ck_assert_int_ne(map_parse("user=", 0, &m, err, sizeof err), 0);
  ck_assert_int_ne(map_parse("user=0", 0, &m, err, sizeof err), 0);
  ck_assert_int_ne(map_parse("user=33", 0, &m, err, sizeof err), 0);
  ck_assert_int_ne(map_parse("user=100000000000000000000", 0, &m, err, sizeof err), 0);

  /* option checks before any file is read */
  recd_config c = test_config();
  import_params p = {.events_path = "x.csv", .format = "movielens-2m"};
  ck_assert_ptr_nonnull(import_check_params(&p, &c, err, sizeof err));
  ck_assert_msg(strstr(err, "unknown format 'movielens-2m'"), "%s", err);
  p = (import_params){.items_path = "x", .items_format = "csv"}; /* items have no generic CSV */
  ck_assert_ptr_nonnull(import_check_params(&p, &c, err, sizeof err));
  p = (import_params){.events_path = "x.csv", .no_header = 1};
  ck_assert_ptr_nonnull(import_check_params(&p, &c, err, sizeof err));
  ck_assert_msg(strstr(err, "needs --map with column numbers"), "%s", err);
  p = (import_params){.events_path = "x.csv", .no_header = 1, .map = "user=userId,item=2"};
  ck_assert_ptr_nonnull(import_check_params(&p, &c, err, sizeof err));
  ck_assert_msg(strstr(err, "name columns by number"), "%s", err);
  p = (import_params){.events_path = "x.jsonl", .sep = "tab"};
  ck_assert_ptr_nonnull(import_check_params(&p, &c, err, sizeof err));
  p = (import_params){.events_path = "x.jsonl", .map = "user=1"};
  ck_assert_ptr_nonnull(import_check_params(&p, &c, err, sizeof err));
  p = (import_params){.events_path = "x.csv", .map = "type=kind", .type_rule = "view"};
  ck_assert_ptr_nonnull(import_check_params(&p, &c, err, sizeof err));
  ck_assert_msg(strstr(err, "both set the event type"), "%s", err);
  p = (import_params){.events_path = "x.csv", .sep = "\"", .map = "user=1"};
  ck_assert_ptr_nonnull(import_check_params(&p, &c, err, sizeof err));
  p = (import_params){.events_path = "u.data", .type_rule = "value>=4:like,skip"}; /* the preset's map */
  ck_assert_ptr_null(import_check_params(&p, &c, err, sizeof err));
  p = (import_params){
      .events_path = "x.tsv", .sep = "tab", .no_header = 1, .map = "user=1,item=2", .type_rule = "view"};
  ck_assert_ptr_null(import_check_params(&p, &c, err, sizeof err));
}
END_TEST

/* ---- MovieLens and mapped imports into a real engine ---- */

static void write_file(const char *dir, const char *name, const char *text) {
  char path[700];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  write_text(path, text, "w");
}

static char *fixture(const char *dir, const char *name) {
  char *path = malloc(strlen(dir) + strlen(name) + 2);
  sprintf(path, "%s/%s", dir, name);
  return path;
}

/* events by type: view, click, like, add_to_cart, purchase */
static void assert_types(recd_engine *e, uint64_t view, uint64_t click, uint64_t like, uint64_t purchase) {
  recd_stats st;
  engine_stats(e, &st);
  ck_assert_uint_eq(st.events_by_type[0], view);
  ck_assert_uint_eq(st.events_by_type[1], click);
  ck_assert_uint_eq(st.events_by_type[2], like);
  ck_assert_uint_eq(st.events_by_type[4], purchase);
}

/* an item's categories and properties as compact JSON, "" if unknown */
static void assert_item(recd_engine *e, const char *id, const char *cats, const char *props) {
  json_t *o = engine_item_get(e, id);
  ck_assert_msg(o != NULL, "item %s not in the catalog", id);
  char *c = json_dumps(json_object_get(o, "categories"), JSON_COMPACT | JSON_ENCODE_ANY);
  char *p = json_dumps(json_object_get(o, "properties"), JSON_COMPACT | JSON_ENSURE_ASCII);
  ck_assert_msg(!strcmp(c, cats), "item %s categories %s, expected %s", id, c, cats);
  ck_assert_msg(!strcmp(p, props), "item %s properties %s, expected %s", id, p, props);
  free(c);
  free(p);
  json_decref(o);
}

typedef struct {
  char *dir;
  recd_engine *e;
  import_report r;
  char *msgs;
  int rc;
} imp_case;

static void case_run(imp_case *c, import_params p) {
  if (!c->e) c->e = open_engine(c->dir);
  free(c->msgs);
  c->msgs = NULL;
  p.max_errors = 0;
  c->rc = run_import(c->e, &p, &c->r, &c->msgs);
}

static void case_end(imp_case *c) {
  free(c->msgs);
  if (c->e) engine_free(c->e);
  unit_rmrf(c->dir);
  free(c->dir);
}

#define HAS(c, s) ck_assert_msg(strstr((c)->msgs, s), "no '%s' in:\n%s", s, (c)->msgs)

START_TEST(import_movielens_csv) {
  imp_case c = {.dir = unit_tmpdir()};
  write_file(c.dir, "movies.csv",
             "movieId,title,genres\n"
             "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
             "11,\"American President, The (1995)\",Comedy|Drama|Romance\n"
             "7789,\"11'09\"\"01 - September 11 (2002)\",Drama\n"
             "182727,A Christmas Story Live! (2017),(no genres listed)\n"
             "99,Bad (1999)\n"                                  /* 6: too few fields */
             ",No Id (2000),Drama\n");                          /* 7: empty id */
  write_file(c.dir, "ratings.csv",
             "userId,movieId,rating,timestamp\r\n"
             "1,1,4.0,964982703\r\n"
             "1,11,3.5,964981247\r\n"
             "1,7789,5,964982224\r\n"
             "2,1,0.5,964983815\r\n"
             "2,11,four,964983815\r\n"   /* 6 */
             "2,1,4.0\r\n"               /* 7 */
             "3,182727,4.5,4102444801\r\n"); /* 8 */
  char *movies = fixture(c.dir, "movies.csv"), *ratings = fixture(c.dir, "ratings.csv");
  case_run(&c, (import_params){.events_path = ratings, .items_path = movies, .batch = 2});
  ck_assert_msg(c.rc == 0, "%s", c.msgs);
  ck_assert_str_eq(c.r.format, "movielens-csv"); /* by the header */
  ck_assert_str_eq(c.r.items_format, "movielens-csv");
  ck_assert_str_eq(c.r.type_rule, "value>=4:like,view");
  ck_assert_uint_eq(c.r.items, 4);
  ck_assert_uint_eq(c.r.items_rejected, 2);
  ck_assert_uint_eq(c.r.lines, 7);
  ck_assert_uint_eq(c.r.accepted, 4);
  ck_assert_uint_eq(c.r.rejected, 3);
  HAS(&c, "movies.csv:6: expected 3 fields (movieId,title,genres), found 2\n");
  HAS(&c, "movies.csv:7: item_id");
  HAS(&c, "ratings.csv:6: value: 'four' is not a finite number\n");
  HAS(&c, "ratings.csv:7: expected 4 fields like the header, found 3\n");
  HAS(&c, "ratings.csv:8: timestamp: unix time");
  assert_types(c.e, 2, 0, 2, 0); /* 4.0 and 5 are likes; 3.5 and 0.5 views */
  assert_item(c.e, "1", "[\"Adventure\",\"Animation\",\"Children\",\"Comedy\",\"Fantasy\"]",
              "{\"title\":\"Toy Story (1995)\"}");
  assert_item(c.e, "11", "[\"Comedy\",\"Drama\",\"Romance\"]", "{\"title\":\"American President, The (1995)\"}");
  assert_item(c.e, "7789", "[\"Drama\"]", "{\"title\":\"11'09\\\"01 - September 11 (2002)\"}");
  assert_item(c.e, "182727", "[]", "{\"title\":\"A Christmas Story Live! (2017)\"}");
  json_t *u = engine_user_features(c.e, "1"); /* user ids are the raw ids */
  ck_assert_ptr_nonnull(u);
  json_decref(u);

  /* --event-type overrides the preset's rule; --format is not needed for a renamed file */
  char *renamed = fixture(c.dir, "train.csv");
  ck_assert_int_eq(rename(ratings, renamed), 0);
  case_run(&c, (import_params){.events_path = renamed, .type_rule = "purchase"});
  ck_assert_int_eq(c.rc, 0);
  ck_assert_str_eq(c.r.format, "movielens-csv");
  ck_assert_uint_eq(c.r.accepted, 4);
  assert_types(c.e, 2, 0, 2, 4);
  free(movies);
  free(ratings);
  free(renamed);
  case_end(&c);
}
END_TEST

START_TEST(import_movielens_100k) {
  imp_case c = {.dir = unit_tmpdir()};
  /* u.item: latin-1 titles (0xe9 = e acute, 0x92 = a Windows-1252 apostrophe) */
  write_file(c.dir, "u.item",
             "1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)"
             "|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
             "267|unknown||||1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
             "1300|Les Mis\xe9rables (1995)|01-Jan-1995||x|0|0|0|0|0|0|0|0|1|0|0|0|1|0|0|0|0|1|0\n"
             "1301|Ed\x92s \"Best\" (1996)|01-Jan-1996||x|0|1|1|0|0|0|0|0|0|0|0|0|0|0|0|1|1|1|1\n"
             "1302|Bad Flags|||x|0|0|2|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n"  /* 5 */
             "1303|Short|||x|0|0\n");                                      /* 6 */
  write_file(c.dir, "u.data",
             "196\t242\t3\t881250949\n"
             "186\t1300\t4\t891717742\n"
             "22\t1\t1\t878887116\n"
             "\n"
             "244\t51\t2\n"            /* 5 */
             "166\t346\t1\t886397596\t9\n" /* 6 */
             "298\t474\t5\t884182806\n");
  char *items = fixture(c.dir, "u.item"), *data = fixture(c.dir, "u.data");
  case_run(&c, (import_params){.events_path = data, .items_path = items});
  ck_assert_msg(c.rc == 0, "%s", c.msgs);
  ck_assert_str_eq(c.r.format, "movielens-100k");
  ck_assert_str_eq(c.r.items_format, "movielens-100k");
  ck_assert_uint_eq(c.r.items, 4);
  ck_assert_uint_eq(c.r.items_rejected, 2);
  HAS(&c, "u.item:5: field 8 (genre Adventure) is '2', not 0 or 1\n");
  HAS(&c, "u.item:6: expected 24 fields");
  ck_assert_uint_eq(c.r.lines, 6);
  ck_assert_uint_eq(c.r.accepted, 4);
  HAS(&c, "u.data:5: expected 4 fields, found 3\n");
  HAS(&c, "u.data:6: expected 4 fields, found 5\n");
  assert_types(c.e, 2, 0, 2, 0);
  assert_item(c.e, "1", "[\"Animation\",\"Children's\",\"Comedy\"]", "{\"title\":\"Toy Story (1995)\"}");
  assert_item(c.e, "267", "[]", "{\"title\":\"unknown\"}"); /* the "unknown" genre is no category */
  assert_item(c.e, "1300", "[\"Drama\",\"Musical\",\"War\"]", "{\"title\":\"Les Mis\\u00E9rables (1995)\"}");
  assert_item(c.e, "1301",
              "[\"Action\",\"Adventure\",\"Sci-Fi\",\"Thriller\",\"War\",\"Western\"]",
              "{\"title\":\"Ed\\u2019s \\\"Best\\\" (1996)\"}");

  /* a constant type and a skipping rule on the same file */
  case_run(&c, (import_params){.events_path = data, .type_rule = "value>=4:like,skip"});
  ck_assert_int_eq(c.rc, 0);
  ck_assert_uint_eq(c.r.accepted, 2);
  ck_assert_uint_eq(c.r.skipped, 2);
  ck_assert_uint_eq(c.r.rejected, 2);
  assert_types(c.e, 2, 0, 4, 0);
  free(items);
  free(data);
  case_end(&c);
}
END_TEST

START_TEST(import_movielens_1m) {
  imp_case c = {.dir = unit_tmpdir()};
  write_file(c.dir, "movies.dat",
             "1::Toy Story (1995)::Animation|Children's|Comedy\n"
             "73::Mis\xe9rables, Les (1995)::Drama|Musical\n"
             "2041::\"Great Performances\" Cats (1998)::Musical\n"
             "9::Sudden Death (1995)\n"); /* 4 */
  write_file(c.dir, "ratings.dat",
             "1::1::5::978300760\n"
             "1::73::3::978302109\n"
             "2::2041::4::978301968\n"
             "2::1:4::978300275\n"   /* 4: a single ':' */
             "3::1::x::978300275\n"); /* 5 */
  char *items = fixture(c.dir, "movies.dat"), *data = fixture(c.dir, "ratings.dat");
  case_run(&c, (import_params){.events_path = data, .items_path = items});
  ck_assert_msg(c.rc == 0, "%s", c.msgs);
  ck_assert_str_eq(c.r.format, "movielens-1m");
  ck_assert_str_eq(c.r.items_format, "movielens-1m");
  ck_assert_uint_eq(c.r.items, 3);
  HAS(&c, "movies.dat:4: expected 3 fields (MovieID::Title::Genres), found 2\n");
  ck_assert_uint_eq(c.r.accepted, 3);
  ck_assert_uint_eq(c.r.rejected, 2);
  HAS(&c, "ratings.dat:4: expected 4 fields, found 3\n");
  HAS(&c, "ratings.dat:5: value: 'x' is not a finite number\n");
  assert_types(c.e, 1, 0, 2, 0);
  assert_item(c.e, "73", "[\"Drama\",\"Musical\"]", "{\"title\":\"Mis\\u00E9rables, Les (1995)\"}");
  assert_item(c.e, "2041", "[\"Musical\"]", "{\"title\":\"\\\"Great Performances\\\" Cats (1998)\"}");

  /* the same files under other names, by --format and --items-format */
  char *items2 = fixture(c.dir, "m.txt"), *data2 = fixture(c.dir, "r.txt");
  ck_assert_int_eq(rename(items, items2), 0);
  ck_assert_int_eq(rename(data, data2), 0);
  case_run(&c, (import_params){.events_path = data2, .items_path = items2, .format = "movielens-1m",
                               .items_format = "movielens-1m"});
  ck_assert_int_eq(c.rc, 0);
  ck_assert_uint_eq(c.r.items, 3);
  ck_assert_uint_eq(c.r.accepted, 3);
  /* ... and by their first lines */
  case_run(&c, (import_params){.events_path = data2, .items_path = items2});
  ck_assert_int_eq(c.rc, 0);
  ck_assert_str_eq(c.r.format, "movielens-1m");
  ck_assert_str_eq(c.r.items_format, "movielens-1m");
  ck_assert_uint_eq(c.r.accepted, 3);
  free(items);
  free(data);
  free(items2);
  free(data2);
  case_end(&c);
}
END_TEST

START_TEST(import_mapped_csv) {
  imp_case c = {.dir = unit_tmpdir()};
  json_t *u;
  /* by name: extra columns ignored, a column named like a field used as it is */
  write_file(c.dir, "log.csv",
             "when,customer,sku,colour,action,value\n"
             "1700000000,c1,s1,red,view,\n"
             "1700000001,c1,s2,blue,purchase,19.99\n"
             "1700000002,,s2,blue,view,\n"   /* 4 */
             "1700000003,c2,s3,red,clik,\n"  /* 5 */
             "1700000004,c2,s3,red,view\n"); /* 6 */
  char *log = fixture(c.dir, "log.csv");
  case_run(&c, (import_params){.events_path = log, .map = "user=customer,item=sku,type=action,timestamp=when"});
  ck_assert_msg(c.rc == 0, "%s", c.msgs);
  ck_assert_str_eq(c.r.format, "csv");
  ck_assert_uint_eq(c.r.accepted, 2);
  ck_assert_uint_eq(c.r.rejected, 3);
  HAS(&c, "log.csv:4: user_id: must not be empty\n");
  HAS(&c, "log.csv:5: event_type: unknown type 'clik'\n");
  HAS(&c, "log.csv:6: expected 6 fields like the header, found 5\n");
  assert_types(c.e, 1, 0, 0, 1);
  /* by number with a header, mixed with names */
  case_run(&c, (import_params){.events_path = log, .map = "user=2,item=sku,type=5,timestamp=1,value=6"});
  ck_assert_int_eq(c.rc, 0);
  ck_assert_uint_eq(c.r.accepted, 2);
  assert_types(c.e, 2, 0, 0, 2);
  /* a mapped name that is not there, a number beyond the header, an unmapped required field */
  case_run(&c, (import_params){.events_path = log, .map = "user=client,item=sku,type=action"});
  ck_assert_int_eq(c.rc, RECD_EINVAL);
  HAS(&c, "log.csv:1: --map user=client: no column 'client' in the header\n");
  case_run(&c, (import_params){.events_path = log, .map = "user=9,item=sku,type=action"});
  ck_assert_int_eq(c.rc, RECD_EINVAL);
  HAS(&c, "--map user=9, but the header has 6 columns");
  case_run(&c, (import_params){.events_path = log, .map = "user=customer,type=action"});
  ck_assert_int_eq(c.rc, RECD_EINVAL);
  HAS(&c, "no column for item_id: map one with --map item=COLUMN");
  case_run(&c, (import_params){.events_path = log, .map = "user=customer,item=sku"}); /* 'action' is no type */
  ck_assert_int_eq(c.rc, RECD_EINVAL);
  HAS(&c, "no column for event_type");
  case_run(&c, (import_params){
                   .events_path = log, .map = "user=customer,item=sku,value=when", .type_rule = "value>0:click"});
  ck_assert_int_eq(c.rc, 0);
  ck_assert_uint_eq(c.r.accepted, 3); /* the rule types the 'clik' line too; the empty user still fails */
  assert_types(c.e, 2, 3, 0, 2);
  /* a column mapped to one field is not also taken by its own name */
  write_file(c.dir, "swap.csv", "item_id,user_id,event_type\na,b,view\n");
  char *swap = fixture(c.dir, "swap.csv");
  case_run(&c, (import_params){.events_path = swap, .map = "user=item_id"});
  ck_assert_int_eq(c.rc, RECD_EINVAL);
  HAS(&c, "no column for item_id");
  case_run(&c, (import_params){.events_path = swap, .map = "user=item_id,item=user_id"});
  ck_assert_int_eq(c.rc, 0);
  u = engine_user_features(c.e, "a");
  ck_assert_ptr_nonnull(u);
  json_decref(u);
  free(swap);
  /* without --map the strict header rules stay */
  case_run(&c, (import_params){.events_path = log});
  ck_assert_int_eq(c.rc, RECD_EINVAL);
  HAS(&c, "log.csv:1: unknown columns 'when', 'customer', 'sku', 'colour', 'action'");

  /* by number without a header, tab-separated, a constant type */
  write_file(c.dir, "clicks.tsv",
             "u1\tx\ti1\t1700000000\n"
             "u2\tx\ti2\t1700000001\textra\n"
             "u3\tx\n"                   /* 3 */
             "u4\tx\ti4\tsoon\n");       /* 4 */
  char *tsv = fixture(c.dir, "clicks.tsv");
  case_run(&c, (import_params){.events_path = tsv, .sep = "tab", .no_header = 1, .map = "user=1,item=3,timestamp=4",
                               .type_rule = "click"});
  ck_assert_msg(c.rc == 0, "%s", c.msgs);
  ck_assert_uint_eq(c.r.accepted, 2); /* more fields than mapped are fine without a header */
  HAS(&c, "clicks.tsv:3: expected at least 4 fields, found 2\n");
  HAS(&c, "clicks.tsv:4: timestamp: 'soon' is not unix seconds");
  assert_types(c.e, 3, 5, 0, 2);

  /* ';' with quoting, '|' and '::' without a header */
  write_file(c.dir, "semi.txt", "user_id;item_id;event_type;value\n\"u;1\";i1;purchase;\"2,5\"\nu2;\"i;2\";like;3\n");
  char *semi = fixture(c.dir, "semi.txt");
  case_run(&c, (import_params){.events_path = semi, .sep = ";"});
  ck_assert_msg(c.rc == 0, "%s", c.msgs);
  ck_assert_uint_eq(c.r.accepted, 1);
  HAS(&c, "semi.txt:2: value: '2,5' is not a finite number");
  u = engine_user_features(c.e, "u;1");
  ck_assert_ptr_null(u);
  u = engine_user_features(c.e, "u2");
  ck_assert_ptr_nonnull(u);
  json_decref(u);
  write_file(c.dir, "pipe.txt", "view|p1|q1\nview|p2|q2\n");
  char *pipe = fixture(c.dir, "pipe.txt");
  case_run(&c, (import_params){.events_path = pipe, .sep = "|", .no_header = 1, .map = "type=1,user=2,item=3"});
  ck_assert_int_eq(c.rc, 0);
  ck_assert_uint_eq(c.r.accepted, 2);
  write_file(c.dir, "colons.txt", "d1::e1::2\nd2::e2::5\n");
  char *colons = fixture(c.dir, "colons.txt");
  case_run(&c, (import_params){.events_path = colons, .sep = "::", .no_header = 1, .map = "user=1,item=2,value=3",
                               .type_rule = "value>=4:like"});
  ck_assert_int_eq(c.rc, 0);
  ck_assert_uint_eq(c.r.accepted, 1);
  HAS(&c, "colons.txt:1: event_type: value 2 matches no condition of the type rule 'value>=4:like'\n");
  /* a rule on value with no value column, and a rule next to a type column */
  case_run(&c, (import_params){.events_path = pipe, .sep = "|", .no_header = 1, .map = "user=2,item=3",
                               .type_rule = "value>=4:like,view"});
  ck_assert_int_eq(c.rc, RECD_EINVAL);
  HAS(&c, "tests value, but there is no value column");
  case_run(&c, (import_params){.events_path = semi, .sep = ";", .type_rule = "view"});
  ck_assert_int_eq(c.rc, RECD_EINVAL);
  HAS(&c, "the header has an event_type column and --type-rule/--event-type also sets the type");
  free(log);
  free(tsv);
  free(semi);
  free(pipe);
  free(colons);
  case_end(&c);
}
END_TEST

START_TEST(import_mapped_jsonl) {
  imp_case c = {.dir = unit_tmpdir()};
  write_file(c.dir, "reviews.jsonl",
             "{\"uid\":7,\"pid\":\"p1\",\"stars\":4,\"at\":1700000000,\"text\":\"good\"}\n"
             "{\"uid\":7,\"pid\":2,\"stars\":3.5}\n"
             "{\"uid\":8,\"pid\":\"p1\"}\n"                          /* 3: no value */
             "{\"uid\":8,\"pid\":\"p1\",\"stars\":\"5\"}\n"          /* 4: a string value */
             "{\"uid\":8,\"pid\":\"p1\",\"stars\":5,\"event_type\":\"view\"}\n" /* 5 */
             "{\"uid\":9,\"stars\":5}\n");                           /* 6 */
  char *path = fixture(c.dir, "reviews.jsonl");
  case_run(&c, (import_params){.events_path = path, .map = "user=uid,item=pid,value=stars,timestamp=at",
                               .type_rule = "value>=4:like,value>=3:view"});
  ck_assert_msg(c.rc == 0, "%s", c.msgs);
  ck_assert_str_eq(c.r.format, "jsonl");
  ck_assert_uint_eq(c.r.lines, 6);
  ck_assert_uint_eq(c.r.accepted, 2);
  ck_assert_uint_eq(c.r.rejected, 4);
  HAS(&c, "reviews.jsonl:3: event_type: the type rule 'value>=4:like,value>=3:view' needs a value\n");
  HAS(&c, "reviews.jsonl:4: event_type: the type rule");
  HAS(&c, "reviews.jsonl:5: event_type: given in the line");
  HAS(&c, "reviews.jsonl:6: item_id");
  assert_types(c.e, 1, 0, 1, 0);
  json_t *u = engine_user_features(c.e, "7"); /* an integer id became "7" */
  ck_assert_ptr_nonnull(u);
  json_decref(u);
  free(path);
  case_end(&c);
}
END_TEST

START_TEST(import_items_detection) {
  imp_case c = {.dir = unit_tmpdir()};
  write_file(c.dir, "catalog", "movieId,title,genres\n5,Father of the Bride Part II (1995),Comedy\n");
  write_file(c.dir, "other.csv", "id,name\n1,x\n");
  char *catalog = fixture(c.dir, "catalog"), *other = fixture(c.dir, "other.csv");
  case_run(&c, (import_params){.items_path = catalog});
  ck_assert_msg(c.rc == 0, "%s", c.msgs);
  ck_assert_str_eq(c.r.items_format, "movielens-csv");
  ck_assert_uint_eq(c.r.items, 1);
  case_run(&c, (import_params){.items_path = other});
  ck_assert_int_eq(c.rc, RECD_EINVAL);
  HAS(&c, "other.csv:1: not a MovieLens movies.csv header");
  /* a bad events option stops the import before the catalog is touched */
  case_run(&c, (import_params){.items_path = catalog, .events_path = other, .no_header = 1});
  ck_assert_int_eq(c.rc, RECD_EINVAL);
  ck_assert_uint_eq(c.r.items, 0);
  free(catalog);
  free(other);
  case_end(&c);
}
END_TEST

Suite *import_suite(void) {
  Suite *s = suite_create("import");
  TCase *tc = tcase_create("csv");
  tcase_add_test(tc, csv_plain_fields);
  tcase_add_test(tc, csv_quoting);
  tcase_add_test(tc, csv_bad_quoting);
  tcase_add_test(tc, field_decoding);
  tcase_add_test(tc, csv_separators);
  tcase_add_test(tc, csv_dialects_agree);
  tcase_add_test(tc, type_rules);
  tcase_add_test(tc, column_maps);
  suite_add_tcase(s, tc);
  tc = tcase_create("engine");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, import_generated_with_bad_lines);
  tcase_add_test(tc, import_csv_columns_any_order_and_small_buffer);
  tcase_add_test(tc, import_bad_header_stops);
  tcase_add_test(tc, import_jsonl_file);
  tcase_add_test(tc, import_movielens_csv);
  tcase_add_test(tc, import_movielens_100k);
  tcase_add_test(tc, import_movielens_1m);
  tcase_add_test(tc, import_mapped_csv);
  tcase_add_test(tc, import_mapped_jsonl);
  tcase_add_test(tc, import_items_detection);
  suite_add_tcase(s, tc);
  return s;
}
