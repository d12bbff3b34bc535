/* recd export — the event log of a data dir as the CSV that `recd import`
 * reads: user and item keys, type names, RFC 3339 times. The log's blocks
 * (src/store/evblock.c) are not readable in the sqlite3 shell; this is how a
 * user looks at the log, or moves it. A data dir held by a running server is
 * read through a second, read-only connection (a consistent snapshot of the
 * committed log). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/strmap.h"

/* one CSV field, quoted when it must be (RFC 4180) */
static void put_field(FILE *f, const char *s) {
  if (!s) return;
  if (!s[strcspn(s, ",\"\r\n")] && s[0] != ' ' && (!*s || s[strlen(s) - 1] != ' ')) {
    fputs(s, f);
    return;
  }
  putc('"', f);
  for (; *s; s++) {
    if (*s == '"') putc('"', f);
    putc(*s, f);
  }
  putc('"', f);
}

typedef struct {
  FILE *out;
  strmap users, items; /* the dense ids of the tables, as the engine loads them */
  char *types[256];    /* by tid */
  uint64_t n;
  const char *bad; /* why the export stopped */
  uint64_t bad_seq;
} exporter;

static int add_user(void *arg, uint32_t uid, const char *k, size_t len) {
  exporter *x = arg;
  return strmap_intern(&x->users, k, len, NULL) == uid ? 0 : RECD_ECORRUPT;
}

static int add_item(void *arg, const store_item *it) {
  exporter *x = arg;
  const char *k = it->key ? it->key : "";
  return strmap_intern(&x->items, k, strlen(k), NULL) == it->iid ? 0 : RECD_ECORRUPT;
}

static int add_type(void *arg, uint32_t tid, const char *name, size_t len) {
  exporter *x = arg;
  if (tid >= 256) return RECD_ECORRUPT;
  free(x->types[tid]);
  x->types[tid] = xstrndup(name, len);
  return 0;
}

static const char *key_of(const strmap *m, uint32_t id) { return id < strmap_count(m) ? strmap_key(m, id) : NULL; }

static int put_event(void *arg, const store_event *ev) {
  exporter *x = arg;
  const char *u = key_of(&x->users, ev->uid), *i = key_of(&x->items, ev->iid),
             *t = ev->tid >= 0 && ev->tid < 256 ? x->types[ev->tid] : NULL;
  if (!u || !i || !t) {
    x->bad = !u ? "a user id with no key" : !i ? "an item id with no key" : "an unknown event type id";
    x->bad_seq = ev->seq;
    return 1;
  }
  char ts[64];
  clock_format_rfc3339(ev->ts_ms, ts, sizeof ts);
  put_field(x->out, u);
  putc(',', x->out);
  put_field(x->out, i);
  putc(',', x->out);
  put_field(x->out, t);
  putc(',', x->out);
  fputs(ts, x->out);
  putc(',', x->out);
  if (ev->has_value) { /* the shortest text that reads back as the same double */
    char v[40];
    for (int prec = 15; prec <= 17; prec++) {
      snprintf(v, sizeof v, "%.*g", prec, ev->value);
      if (strtod(v, NULL) == ev->value) break;
    }
    fputs(v, x->out);
  }
  putc(',', x->out);
  put_field(x->out, ev->session);
  putc(',', x->out);
  put_field(x->out, ev->rec_id);
  putc('\n', x->out);
  x->n++;
  return ferror(x->out) ? 1 : 0;
}

static void help(FILE *f) {
  fprintf(f,
          "usage: recd export [--data DIR] [--out FILE] [--after SEQ]\n\n"
          "Writes the data dir's event log as CSV, in log order, with the header\n"
          "user_id,item_id,event_type,timestamp,value,session_id,recommendation_id\n"
          "(keys and type names, RFC 3339 times): the input `recd import` reads.\n\n"
          "  --data DIR    data directory (env RECD_DATA, default ./var/recd); a running\n"
          "                server may hold it (its committed events are read)\n"
          "  --out FILE    write there instead of standard output\n"
          "  --after SEQ   only the events after log position SEQ (the first event is 1)\n");
}

int cmd_export(int argc, char **argv) {
  const char *data = getenv("RECD_DATA") ? getenv("RECD_DATA") : "./var/recd", *out = NULL;
  uint64_t after = 0;
  for (int a = 1; a < argc; a++) {
    const char *arg = argv[a];
    if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
      help(stdout);
      return 0;
    }
    if (a + 1 >= argc || (strcmp(arg, "--data") && strcmp(arg, "--out") && strcmp(arg, "--after"))) {
      fprintf(stderr, "recd export: %s '%s'\n\n", a + 1 >= argc && arg[0] == '-' ? "missing value after" : "unknown flag", arg);
      help(stderr);
      return 2;
    }
    const char *v = argv[++a];
    if (!strcmp(arg, "--data")) data = v;
    else if (!strcmp(arg, "--out")) out = v;
    else {
      char *end;
      errno = 0;
      unsigned long long n = strtoull(v, &end, 10);
      if (errno || end == v || *end || v[0] == '-') {
        fprintf(stderr, "recd export: --after: '%s' is not a log position (0, 1, 2 ...)\n", v);
        return 2;
      }
      after = n;
    }
  }
  char db[4200];
  snprintf(db, sizeof db, "%s/recd.db", data);
  if (access(db, F_OK)) {
    fprintf(stderr, "recd export: no data dir at %s (%s: %s)\n", data, db, strerror(errno));
    return 1;
  }
  char err[512];
  store *s = NULL;
  int rc = store_open(data, "normal", &s, err, sizeof err);
  if (rc == RECD_EEXISTS) rc = store_open_reader(data, &s, err, sizeof err); /* a server holds it */
  if (rc) {
    fprintf(stderr, "recd export: %s\n", err);
    return 1;
  }
  exporter x = {0};
  strmap_init(&x.users);
  strmap_init(&x.items);
  FILE *f = out ? fopen(out, "w") : stdout;
  if (!f) {
    fprintf(stderr, "recd export: cannot write %s: %s\n", out, strerror(errno));
    store_close(s);
    return 1;
  }
  x.out = f;
  static char buf[1 << 20];
  setvbuf(f, buf, _IOFBF, sizeof buf);
  int64_t t0 = clock_mono_ns();
  rc = store_load_types(s, add_type, &x);
  if (!rc) rc = store_load_users(s, add_user, &x);
  if (!rc) rc = store_load_items(s, add_item, &x);
  if (!rc) {
    fputs("user_id,item_id,event_type,timestamp,value,session_id,recommendation_id\n", f);
    rc = store_scan_events(s, after, put_event, &x);
  }
  int werr = fflush(f) || ferror(f);
  if (out && fclose(f)) werr = 1;
  int status = 0;
  if (x.bad) {
    fprintf(stderr, "recd export: event %llu has %s; stopped after %llu events\n", (unsigned long long)x.bad_seq, x.bad,
            (unsigned long long)x.n);
    status = 1;
  } else if (werr) {
    fprintf(stderr, "recd export: writing %s failed: %s\n", out ? out : "standard output", strerror(errno));
    status = 1;
  } else if (rc) {
    fprintf(stderr, "recd export: reading %s failed (%s)\n", db, recd_strerror(rc));
    status = 1;
  } else {
    fprintf(stderr, "recd export: %llu events from %s in %.2f s\n", (unsigned long long)x.n, data,
            (clock_mono_ns() - t0) / 1e9);
  }
  strmap_release(&x.users);
  strmap_release(&x.items);
  for (int t = 0; t < 256; t++) free(x.types[t]);
  store_close(s);
  return status;
}
