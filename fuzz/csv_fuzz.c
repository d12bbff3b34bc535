/* csv_fuzz.c — libFuzzer driver for the CSV event import (src/cli/import.c).
 *
 * import.c exposes only import_run, so, as its unit test does, this driver
 * includes the .c to reach the record splitter and the read-buffer size.
 *
 * 1. csv_split directly, record by record over the whole input (eof = 1): it
 *    always makes progress, never reads or points outside its input, counts the
 *    newlines it consumes, and unescapes to the length it announces. Each record
 *    is also split from every prefix of it (eof = 0, as when a record straddles
 *    the end of the read buffer): the answer is "need more" or exactly the
 *    answer given for the whole input.
 * 2. import_run on the input written to a temp .csv file, into one engine
 *    (fuzz_util.h), twice: with the normal 4 MiB read buffer and 64-event
 *    batches, and with a 48..127-byte buffer and 1..7-event batches, so records
 *    straddle buffer refills and batches flush often. Both runs must give the
 *    same result code, counts and rejection messages (unless a record is longer
 *    than the small buffer, which only the small run rejects), and
 *    lines = accepted + rejected. */
#include "cli/import.c"

#include "fuzz_util.h"

static size_t nl_in(const char *s, size_t n) { return count_nl(s, n); }

static void check_record(const char *base, const char *s, size_t n, int st, int nf, size_t used, size_t nl,
                         const char *why, const csv_field *f) {
  FUZZ_CHECK(st == CSV_OK || st == CSV_BAD, "status %d at eof (offset %zu)", st, (size_t)(s - base));
  FUZZ_CHECK(used > 0 && used <= n, "used %zu of %zu at offset %zu: no progress", used, n, (size_t)(s - base));
  FUZZ_CHECK(nl == nl_in(s, used), "nlines %zu, the record has %zu newlines", nl, nl_in(s, used));
  if (st == CSV_BAD) {
    FUZZ_CHECK(why && *why, "CSV_BAD without a reason");
    return;
  }
  FUZZ_CHECK(nf >= 1, "%d fields", nf);
  for (int k = 0; k < nf && k < CSV_MAX_FIELDS; k++) {
    FUZZ_CHECK(f[k].p >= s && f[k].p + f[k].len <= s + used, "field %d outside its record", k);
    char *buf = malloc((size_t)f[k].len + 1);
    size_t u = csv_unescape(&f[k], buf);
    FUZZ_CHECK(u == csv_len(&f[k]) && u <= f[k].len, "field %d unescapes to %zu, csv_len says %zu", k, u,
               csv_len(&f[k]));
    free(buf);
  }
}

static void split_prefixes(const char *s, size_t rest, int st, int nf, size_t used, size_t nl, const csv_field *f) {
  csv_field g[CSV_MAX_FIELDS];
  size_t last = used + 2 < rest ? used + 2 : rest;
  size_t step = last > 512 ? last / 256 : 1;
  for (size_t k = 0; k <= last; k += step) {
    int nf2 = 0;
    size_t used2 = 0, nl2 = 0;
    const char *why2 = NULL;
    int st2 = csv_split(s, k, 0, g, CSV_MAX_FIELDS, &nf2, &used2, &nl2, &why2);
    if (st2 == CSV_MORE) continue;
    FUZZ_CHECK(st2 == st && used2 == used && nl2 == nl, "prefix of %zu bytes: status %d used %zu; whole: %d used %zu",
               k, st2, used2, st, used);
    if (st != CSV_OK) continue;
    FUZZ_CHECK(nf2 == nf, "prefix of %zu bytes: %d fields; whole: %d", k, nf2, nf);
    for (int i = 0; i < nf && i < CSV_MAX_FIELDS; i++)
      FUZZ_CHECK(g[i].p == f[i].p && g[i].len == f[i].len && g[i].quoted == f[i].quoted &&
                     g[i].escaped == f[i].escaped,
                 "prefix of %zu bytes: field %d differs", k, i);
  }
}

static void split_all(const char *s, size_t n) {
  csv_field f[CSV_MAX_FIELDS];
  size_t pos = 0;
  while (pos < n) {
    int nf = 0;
    size_t used = 0, nl = 0;
    const char *why = NULL;
    int st = csv_split(s + pos, n - pos, 1, f, CSV_MAX_FIELDS, &nf, &used, &nl, &why);
    check_record(s, s + pos, n - pos, st, nf, used, nl, why, f);
    split_prefixes(s + pos, n - pos, st, nf, used, nl, f);
    pos += used;
  }
}

typedef struct {
  int rc;
  import_report r;
  char *text;
  size_t len;
} run_result;

static void run_import(const char *path, size_t bufsize, int batch, run_result *out) {
  imp_buf_size = bufsize;
  out->text = NULL;
  out->len = 0;
  FILE *err = open_memstream(&out->text, &out->len);
  if (!err) FUZZ_SETUP_FAIL("open_memstream");
  import_params p = {.events_path = path, .batch = batch, .progress = 0, .max_errors = 0};
  out->rc = import_run(fuzz_engine(), &p, &out->r, err);
  fclose(err);
  imp_buf_size = IMP_BUF_SIZE;
  if (out->rc == 0)
    FUZZ_CHECK(out->r.lines == out->r.accepted + out->r.rejected, "%llu lines, %llu accepted, %llu rejected",
               (unsigned long long)out->r.lines, (unsigned long long)out->r.accepted,
               (unsigned long long)out->r.rejected);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = malloc(size ? size : 1); /* exact size: ASan sees any over-read */
  memcpy(s, data, size);
  split_all(s, size);
  free(s);

  const char *path = fuzz_write_file("events.csv", data, size);
  run_result a, b;
  run_import(path, IMP_BUF_SIZE, 64, &a);
  run_import(path, 48 + size % 80, 1 + (int)(size % 7), &b);
  if (!strstr(a.text, "longer than") && !strstr(b.text, "longer than")) {
    FUZZ_CHECK(a.rc == b.rc, "rc %d with a big buffer, %d with a small one", a.rc, b.rc);
    FUZZ_CHECK(a.r.lines == b.r.lines && a.r.accepted == b.r.accepted && a.r.rejected == b.r.rejected,
               "big buffer: %llu lines, %llu accepted, %llu rejected; small: %llu, %llu, %llu",
               (unsigned long long)a.r.lines, (unsigned long long)a.r.accepted, (unsigned long long)a.r.rejected,
               (unsigned long long)b.r.lines, (unsigned long long)b.r.accepted, (unsigned long long)b.r.rejected);
    FUZZ_CHECK(a.len == b.len && !memcmp(a.text, b.text, a.len), "messages differ:\n%s---\n%s", a.text, b.text);
  }
  free(a.text);
  free(b.text);
  return 0;
}
