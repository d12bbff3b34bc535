/* import.c — `recd import`: bulk load a catalog and an event history.
 *
 * Design:
 *  1. Files are read through one 4 MiB buffer per file (imp_reader); a record that
 *     straddles the end of the buffer is re-parsed after the buffer is compacted
 *     and refilled, so no record is ever copied twice and nothing is allocated
 *     per line.
 *  2. CSV records are split in place (csv_split) into fields that point into the
 *     read buffer. Only the strings an event keeps (user, item, session and
 *     recommendation ids) are copied — unescaped — into the current batch's string
 *     area; type, timestamp and value are decoded straight from the buffer.
 *  3. Two batch slots alternate: while the engine's writer commits one, the other
 *     is filled. A slot is reused only after its done() callback has run, so the
 *     events and strings an op points to stay valid until the engine is finished
 *     with them (the contract of engine_submit).
 *  4. Validation mirrors engine_parse_event (src/engine/parse.c) field by field, and
 *     its messages use the same wording, so a line rejected here would get the same
 *     answer from POST /api/v1/events.
 */
#include "cli/import.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/commands.h"
#include "engine/config.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"

#define IMP_BUF_SIZE (4u << 20)
static size_t imp_buf_size = IMP_BUF_SIZE; /* the read buffer; tests shrink it */
#define IMP_DEFAULT_BATCH 50000
#define IMP_MAX_BATCH 1000000
#define IMP_MAX_FUTURE_MS (24LL * 3600 * 1000)
#define IMP_MAX_UNIX_S 4102444800.0
/* string bytes one event may need in a slot: four ids and their NULs */
#define IMP_EVENT_STR (4 * (RECD_MAX_ID_LEN + 1))

/* -------------------------------------------------------------- reader --- */

typedef struct {
  int fd;
  char *buf;
  size_t cap, pos, end;  /* unread bytes are buf[pos..end) */
  int eof;
  uint64_t base;         /* file offset of buf[0] */
  uint64_t size;         /* file size, 0 if not a regular file */
} imp_reader;

static int reader_open(imp_reader *rd, const char *path) {
  memset(rd, 0, sizeof *rd);
  rd->fd = open(path, O_RDONLY | O_CLOEXEC);
  if (rd->fd < 0) return -errno;
  struct stat st;
  if (fstat(rd->fd, &st) == 0 && S_ISREG(st.st_mode)) rd->size = (uint64_t)st.st_size;
#ifdef POSIX_FADV_SEQUENTIAL
  posix_fadvise(rd->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
  rd->cap = imp_buf_size;
  rd->buf = xmalloc(rd->cap);
  return 0;
}

static void reader_close(imp_reader *rd) {
  if (rd->fd >= 0) close(rd->fd);
  free(rd->buf);
  rd->fd = -1;
  rd->buf = NULL;
}

/* Move the unread bytes to the front and read until the buffer is full or the
 * file ends. 0 or -errno. */
static int reader_fill(imp_reader *rd) {
  if (rd->pos) {
    memmove(rd->buf, rd->buf + rd->pos, rd->end - rd->pos);
    rd->base += rd->pos;
    rd->end -= rd->pos;
    rd->pos = 0;
  }
  while (rd->end < rd->cap && !rd->eof) {
    ssize_t n = read(rd->fd, rd->buf + rd->end, rd->cap - rd->end);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0) rd->eof = 1;
    rd->end += (size_t)n;
  }
  return 0;
}

static inline int reader_done(const imp_reader *rd) { return rd->pos == rd->end && rd->eof; }

static inline int reader_full(const imp_reader *rd) { return rd->pos == 0 && rd->end == rd->cap; }

static uint64_t reader_offset(const imp_reader *rd) { return rd->base + rd->pos; }

/* Discard through the next '\n' (or to the end of the file). 0 or -errno. */
static int reader_skip_line(imp_reader *rd) {
  for (;;) {
    char *nl = memchr(rd->buf + rd->pos, '\n', rd->end - rd->pos);
    if (nl) {
      rd->pos = (size_t)(nl - rd->buf) + 1;
      return 0;
    }
    rd->pos = rd->end;
    if (rd->eof) return 0;
    int rc = reader_fill(rd);
    if (rc) return rc;
  }
}

/* Next line without its '\n'. Returns 1 with the line, 0 at the end of the
 * file, 2 for a line longer than the buffer (already skipped), or -errno. */
static int reader_line(imp_reader *rd, const char **line, size_t *len) {
  for (;;) {
    if (reader_done(rd)) return 0;
    char *s = rd->buf + rd->pos;
    size_t n = rd->end - rd->pos;
    char *nl = memchr(s, '\n', n);
    if (nl || rd->eof) {
      *line = s;
      *len = nl ? (size_t)(nl - s) : n;
      rd->pos += nl ? *len + 1 : n;
      return 1;
    }
    if (reader_full(rd)) {
      int rc = reader_skip_line(rd);
      return rc ? rc : 2;
    }
    int rc = reader_fill(rd);
    if (rc) return rc;
  }
}

/* ----------------------------------------------------------------- CSV --- */

typedef struct {
  const char *p;     /* first content byte (after the opening quote if quoted) */
  uint32_t len;      /* raw content length; a doubled quote counts as two bytes */
  uint8_t quoted;
  uint8_t escaped;   /* quoted and contains "" pairs */
} csv_field;

enum { CSV_OK = 0, CSV_MORE = 1, CSV_BAD = 2 };
#define CSV_MAX_FIELDS 32

static size_t count_nl(const char *s, size_t n) {
  size_t c = 0;
  const char *end = s + n;
  while ((s = memchr(s, '\n', (size_t)(end - s)))) {
    c++;
    s++;
  }
  return c;
}

/* Offset just past the first '\n' at or after `from`, or n if there is none. */
static size_t next_line_start(const char *s, size_t n, size_t from) {
  const char *nl = from < n ? memchr(s + from, '\n', n - from) : NULL;
  return nl ? (size_t)(nl - s) + 1 : n;
}

/* Split one RFC 4180 record at s[0..n). `eof`: no bytes follow s[n-1].
 *  CSV_OK:   fields in f[0..min(*nf,maxf)), *nf = the record's field count (it
 *            may exceed maxf), *used = bytes consumed including the line end,
 *            *nlines = '\n' characters consumed.
 *  CSV_MORE: the record is not complete within n bytes (never when eof).
 *  CSV_BAD:  malformed; *why says how, *used and *nlines cover the bytes to skip to
 *            resynchronise at the next physical line.
 * A field's content points into s. CRLF and LF both end a record; a quoted field
 * may contain ',', '\n' and "" (a quote). */
static int csv_split(const char *s, size_t n, int eof, csv_field *f, int maxf, int *nf, size_t *used,
                     size_t *nlines, const char **why) {
  size_t i = 0, nl = 0;
  int k = 0;
  for (;;) {
    csv_field fld = {0};
    if (i < n && s[i] == '"') {
      size_t start = ++i;
      for (;;) {
        const char *q = memchr(s + i, '"', n - i);
        if (!q) {
          if (!eof) return CSV_MORE;
          *why = "unterminated quoted field";
          *used = next_line_start(s, n, 0);
          *nlines = count_nl(s, *used);
          return CSV_BAD;
        }
        i = (size_t)(q - s) + 1;
        if (i < n && s[i] == '"') {
          fld.escaped = 1;
          i++;
          continue;
        }
        if (i >= n && !eof) return CSV_MORE;
        break;
      }
      fld.p = s + start;
      fld.len = (uint32_t)(i - 1 - start);
      fld.quoted = 1;
      nl += count_nl(fld.p, fld.len);
      if (i < n && s[i] == '\r') { /* CRLF, or a final CR at the end of the file */
        if (i + 1 < n && s[i + 1] == '\n') i++;
        else if (i + 1 >= n && !eof) return CSV_MORE;
        else if (i + 1 >= n) i++;
      }
      if (i < n && s[i] != ',' && s[i] != '\n') {
        if (!eof && !memchr(s + i, '\n', n - i)) return CSV_MORE;
        *why = "bad quoting: text after a closing quote";
        *used = next_line_start(s, n, i);
        *nlines = count_nl(s, *used);
        return CSV_BAD;
      }
    } else {
      size_t start = i;
      while (i < n && s[i] != ',' && s[i] != '\n' && s[i] != '"') i++;
      if (i < n && s[i] == '"') {
        if (!eof && !memchr(s + i, '\n', n - i)) return CSV_MORE;
        *why = "bad quoting: a quote inside an unquoted field (quote the field and double the quote)";
        *used = next_line_start(s, n, i);
        *nlines = count_nl(s, *used);
        return CSV_BAD;
      }
      if (i >= n && !eof) return CSV_MORE;
      fld.p = s + start;
      fld.len = (uint32_t)(i - start);
      if (fld.len && s[i - 1] == '\r' && (i >= n || s[i] == '\n')) fld.len--; /* CRLF */
    }
    if (k < maxf) f[k] = fld;
    k++;
    if (i < n && s[i] == ',') {
      i++;
      continue;
    }
    if (i < n && s[i] == '\n') {
      i++;
      nl++;
    }
    break;
  }
  *nf = k;
  *used = i;
  *nlines = nl;
  return CSV_OK;
}

/* Copy a field's content to out, turning "" into "; returns the length. out
 * must hold f->len bytes. */
static size_t csv_unescape(const csv_field *f, char *out) {
  if (!f->escaped) {
    memcpy(out, f->p, f->len);
    return f->len;
  }
  size_t o = 0;
  for (uint32_t i = 0; i < f->len; i++) {
    out[o++] = f->p[i];
    if (f->p[i] == '"') i++; /* the second quote of a pair */
  }
  return o;
}

/* length after unescaping */
static size_t csv_len(const csv_field *f) {
  if (!f->escaped) return f->len;
  size_t q = 0;
  for (uint32_t i = 0; i < f->len; i++) q += f->p[i] == '"';
  return f->len - q / 2;
}

enum { COL_USER, COL_ITEM, COL_TYPE, COL_TS, COL_VALUE, COL_SESSION, COL_REC, NCOLS };
static const char *const col_names[NCOLS] = {"user_id",  "item_id",    "event_type",       "timestamp",
                                             "value",    "session_id", "recommendation_id"};

typedef struct {
  int col[NCOLS];  /* field index of each column, -1 if absent */
  int nfields;
} csv_header;

/* ------------------------------------------------------------ the run --- */

typedef struct imp_slot {
  engine_op op;
  recd_event *ev;
  size_t nev;
  char *str;             /* the batch's strings */
  size_t str_len, str_cap;
  int busy;              /* submitted, done() not yet called */
  struct imp_run *run;
} imp_slot;

typedef struct imp_run {
  recd_engine *e;
  const recd_config *cfg;
  const import_params *p;
  import_report *r;
  FILE *errout;
  size_t batch;
  uint64_t shown;        /* rejected lines reported so far */
  pthread_mutex_t m;
  pthread_cond_t c;
  int engine_rc;         /* first failed commit */
  uint64_t committed;    /* events committed (guarded by m) */
  imp_slot slots[2];
  int cur;
  int64_t now_ms;
  /* progress bar */
  int64_t t0, last_draw;
  int bar_shown;
} imp_run;

static void fmt_count(uint64_t v, char *buf, size_t n) {
  char tmp[32];
  int len = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v), o = 0;
  for (int i = 0; i < len && (size_t)o + 2 < n; i++) {
    if (i && (len - i) % 3 == 0) buf[o++] = ',';
    buf[o++] = tmp[i];
  }
  buf[o] = 0;
}

static void bar_clear(imp_run *run) {
  if (run->bar_shown) {
    fputs("\r\033[K", stderr);
    run->bar_shown = 0;
  }
}

static void bar_draw(imp_run *run, const char *path, const imp_reader *rd, uint64_t count,
                     const char *what, int force) {
  if (!run->p->progress) return;
  int64_t now = clock_mono_ns();
  if (!force && now - run->last_draw < 100000000) return;
  run->last_draw = now;
  double s = (double)(now - run->t0) / 1e9, pct = rd->size ? 100.0 * (double)reader_offset(rd) / (double)rd->size : 0;
  char c[32];
  fmt_count(count, c, sizeof c);
  const char *base = strrchr(path, '/');
  fprintf(stderr, "\r\033[Kimport %s  %5.1f%%  %s %s  %.2fM/s  %.1f s", base ? base + 1 : path, pct, c, what,
          s > 0 ? (double)count / s / 1e6 : 0.0, s);
  fflush(stderr);
  run->bar_shown = 1;
}

static void reject(imp_run *run, const char *path, uint64_t line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void reject(imp_run *run, const char *path, uint64_t line, const char *fmt, ...) {
  if (!run->errout) return;
  uint64_t max = run->p->max_errors;
  run->shown++;
  if (max && run->shown > max) {
    if (run->shown == max + 1) {
      bar_clear(run);
      fprintf(run->errout, "%s: more rejected lines are not shown (--max-errors %llu)\n", path,
              (unsigned long long)max);
    }
    return;
  }
  bar_clear(run);
  va_list ap;
  va_start(ap, fmt);
  fprintf(run->errout, "%s:%llu: ", path, (unsigned long long)line);
  vfprintf(run->errout, fmt, ap);
  fputc('\n', run->errout);
  va_end(ap);
}

/* an error that stops the import: always shown */
static void fatal(imp_run *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fatal(imp_run *run, const char *fmt, ...) {
  if (!run->errout) return;
  bar_clear(run);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(run->errout, fmt, ap);
  fputc('\n', run->errout);
  va_end(ap);
}

static void slot_done(void *arg, int rc) {
  imp_slot *s = arg;
  imp_run *run = s->run;
  pthread_mutex_lock(&run->m);
  if (rc && !run->engine_rc) run->engine_rc = rc;
  if (!rc) run->committed += s->nev;
  s->busy = 0;
  pthread_cond_broadcast(&run->c);
  pthread_mutex_unlock(&run->m);
}

/* Submit the current slot, switch to the other one and wait until it is free.
 * 0 or the first engine error. */
static int run_flush(imp_run *run) {
  imp_slot *s = &run->slots[run->cur];
  if (!s->nev) return 0;
  memset(&s->op, 0, sizeof s->op);
  s->op.kind = OP_EVENTS;
  s->op.events = s->ev;
  s->op.nevents = s->nev;
  s->op.done = slot_done;
  s->op.arg = s;
  pthread_mutex_lock(&run->m);
  s->busy = 1;
  pthread_mutex_unlock(&run->m);
  int rc = engine_submit(run->e, &s->op);
  if (rc) {
    s->busy = 0;
    return rc;
  }
  run->cur ^= 1;
  imp_slot *n = &run->slots[run->cur];
  pthread_mutex_lock(&run->m);
  while (n->busy) pthread_cond_wait(&run->c, &run->m);
  rc = run->engine_rc;
  pthread_mutex_unlock(&run->m);
  n->nev = 0;
  n->str_len = 0;
  run->now_ms = clock_now_ms();
  return rc;
}

/* wait for every slot; 0 or the first engine error */
static int run_drain(imp_run *run) {
  pthread_mutex_lock(&run->m);
  while (run->slots[0].busy || run->slots[1].busy) pthread_cond_wait(&run->c, &run->m);
  int rc = run->engine_rc;
  pthread_mutex_unlock(&run->m);
  return rc;
}

/* Make room for one more event in the current slot (flushing if needed). */
static int run_reserve(imp_run *run) {
  imp_slot *s = &run->slots[run->cur];
  if (s->nev < run->batch && s->str_cap - s->str_len >= IMP_EVENT_STR) return 0;
  return run_flush(run);
}

static char *slot_strdup(imp_slot *s, const char *p, size_t len) {
  char *d = s->str + s->str_len;
  memcpy(d, p, len);
  d[len] = 0;
  s->str_len += len + 1;
  return d;
}

/* --------------------------------------------------- event validation --- */

/* Decode unix seconds "123", "123.4", "123.456" exactly into ms; other
 * spellings (more decimals, exponents) return -1 for the strtod path. */
static int unix_ms_fast(const char *p, size_t n, int64_t *out) {
  size_t i = 0;
  int64_t sec = 0, ms = 0;
  if (!n || n > 20) return -1;
  while (i < n && p[i] >= '0' && p[i] <= '9') sec = sec * 10 + (p[i++] - '0');
  if (i == 0) return -1;
  int nd = 0;
  if (i < n && p[i] == '.') {
    i++;
    while (i < n && p[i] >= '0' && p[i] <= '9' && nd < 3) ms = ms * 10 + (p[i++] - '0'), nd++;
    if (nd == 0) return -1;
  }
  if (i != n) return -1;
  for (; nd < 3; nd++) ms *= 10;
  if (sec > (int64_t)IMP_MAX_UNIX_S || (sec == (int64_t)IMP_MAX_UNIX_S && ms > 0)) return -1;
  *out = sec * 1000 + ms;
  return 0;
}

static int field_copy(const csv_field *f, char *buf, size_t cap) {
  if (f->len >= cap) return -1;
  buf[csv_unescape(f, buf)] = 0;
  return 0;
}

/* same rules and messages as parse_time() in src/engine/parse.c */
static int csv_timestamp(const csv_field *f, int64_t now, int64_t *out, recd_fail *fail) {
  if (!f->escaped && unix_ms_fast(f->p, f->len, out) == 0) goto range;
  char buf[80];
  if (field_copy(f, buf, sizeof buf)) {
    recd_fail_set(fail, 400, "invalid_event", -1, "timestamp", "timestamp: '%.64s...' is not a time", f->p);
    return RECD_EINVAL;
  }
  char *end;
  double sec = strtod(buf, &end);
  int numeric = end != buf && *end == 0 && !strpbrk(buf, "xXnNiI");
  if (numeric) {
    if (!isfinite(sec) || sec < 0 || sec > IMP_MAX_UNIX_S) {
      recd_fail_set(fail, 400, "invalid_event", -1, "timestamp",
                    "timestamp: unix time %g is out of range (0 to 4102444800)", sec);
      return RECD_EINVAL;
    }
    *out = (int64_t)llround(sec * 1000.0);
  } else if (clock_parse_rfc3339(buf, strlen(buf), out)) {
    recd_fail_set(fail, 400, "invalid_event", -1, "timestamp",
                  "timestamp: '%.64s' is not unix seconds or an RFC 3339 time like 2024-05-01T12:00:00Z", buf);
    return RECD_EINVAL;
  }
range:
  if (*out < 0) {
    recd_fail_set(fail, 400, "invalid_event", -1, "timestamp", "timestamp: before 1970 is not supported");
    return RECD_EINVAL;
  }
  if (now && *out > now + IMP_MAX_FUTURE_MS) {
    recd_fail_set(fail, 400, "invalid_event", -1, "timestamp", "timestamp: more than 24 hours in the future");
    return RECD_EINVAL;
  }
  return 0;
}

static int csv_value(const csv_field *f, double *out, recd_fail *fail) {
  char buf[80];
  char *end = buf;
  int ok = field_copy(f, buf, sizeof buf) == 0 && !strpbrk(buf, "xXnNiI \t");
  if (ok) *out = strtod(buf, &end);
  if (!ok || end == buf || *end || !isfinite(*out)) {
    recd_fail_set(fail, 400, "invalid_event", -1, "value", "value: '%.*s' is not a finite number",
                  (int)(f->len < 64 ? f->len : 64), f->p);
    return RECD_EINVAL;
  }
  return 0;
}

/* The byte rule of engine_check_id without its cost (it formats a path on every
 * call); engine_check_id runs only to word the message when this says no. */
static inline int id_clean(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == 0x7f) return 0;
  }
  return 1;
}

/* An id column into the slot's string area. Absent or empty optional ids give NULL. */
static int csv_id(imp_slot *s, const csv_header *h, const csv_field *f, int col, int required, const char **out,
                  recd_fail *fail) {
  *out = NULL;
  int k = h->col[col];
  const char *name = col_names[col];
  if (k < 0 || (f[k].len == 0 && !required)) {
    if (!required) return 0;
    recd_fail_set(fail, 400, "invalid_event", -1, name, "%s: is required", name);
    return RECD_EINVAL;
  }
  size_t len = csv_len(&f[k]);
  if (len == 0 || len > RECD_MAX_ID_LEN) /* the check reports these from the length alone */
    return engine_check_id(f[k].p, len, "events", -1, name, fail);
  char *d = s->str + s->str_len;
  d[csv_unescape(&f[k], d)] = 0;
  if (!id_clean(d, len) && engine_check_id(d, len, "events", -1, name, fail)) return RECD_EINVAL;
  s->str_len += len + 1;
  *out = d;
  return 0;
}

/* Build and validate one event from a record; on failure the slot's string
 * area is rolled back. */
static int csv_event(imp_run *run, const csv_header *h, const csv_field *f, int nf, recd_event *ev,
                     recd_fail *fail) {
  imp_slot *s = &run->slots[run->cur];
  size_t mark = s->str_len;
  memset(ev, 0, sizeof *ev);
  if (nf != h->nfields) {
    recd_fail_set(fail, 400, "invalid_event", -1, "", "expected %d fields like the header, found %d", h->nfields,
                  nf);
    return RECD_EINVAL;
  }
  int rc = csv_id(s, h, f, COL_USER, 1, &ev->user_id, fail);
  if (!rc) rc = csv_id(s, h, f, COL_ITEM, 1, &ev->item_id, fail);
  if (!rc) {
    const csv_field *t = &f[h->col[COL_TYPE]];
    char name[64];
    if (t->len == 0) {
      recd_fail_set(fail, 400, "invalid_event", -1, "event_type", "event_type: is required");
      rc = RECD_EINVAL;
    } else if (field_copy(t, name, sizeof name) ||
               (ev->type = config_type_index(run->cfg, name, strlen(name))) < 0) {
      recd_fail_set(fail, 400, "invalid_event", -1, "event_type", "event_type: unknown type '%.*s'",
                    (int)(t->len < 64 ? t->len : 64), t->p);
      rc = RECD_EINVAL;
    }
  }
  if (!rc) {
    int k = h->col[COL_TS];
    if (k >= 0 && f[k].len) rc = csv_timestamp(&f[k], run->now_ms, &ev->ts_ms, fail);
    else ev->ts_ms = run->now_ms;
  }
  if (!rc && h->col[COL_VALUE] >= 0 && f[h->col[COL_VALUE]].len) {
    rc = csv_value(&f[h->col[COL_VALUE]], &ev->value, fail);
    ev->has_value = !rc;
  }
  if (!rc) rc = csv_id(s, h, f, COL_SESSION, 0, &ev->session_id, fail);
  if (!rc) rc = csv_id(s, h, f, COL_REC, 0, &ev->rec_id, fail);
  if (rc) s->str_len = mark;
  return rc;
}

static int csv_header_parse(imp_run *run, const char *path, const csv_field *f, int nf, csv_header *h) {
  char unknown[512] = "";
  size_t ul = 0;
  int nunknown = 0;
  for (int c = 0; c < NCOLS; c++) h->col[c] = -1;
  h->nfields = nf;
  if (nf > CSV_MAX_FIELDS) {
    fatal(run, "%s:1: %d columns in the header; the known columns are %s, %s, %s, %s, %s, %s, %s", path, nf,
          col_names[0], col_names[1], col_names[2], col_names[3], col_names[4], col_names[5], col_names[6]);
    return RECD_EINVAL;
  }
  for (int k = 0; k < nf; k++) {
    char name[72];
    if (field_copy(&f[k], name, sizeof name)) snprintf(name, sizeof name, "%.60s...", f[k].p);
    int c = 0;
    while (c < NCOLS && strcmp(name, col_names[c])) c++;
    if (c == NCOLS) {
      nunknown++;
      if (ul < sizeof unknown - 80)
        ul += (size_t)snprintf(unknown + ul, sizeof unknown - ul, "%s'%s'", ul ? ", " : "", name);
      continue;
    }
    if (h->col[c] >= 0) {
      fatal(run, "%s:1: column '%s' appears twice in the header", path, name);
      return RECD_EINVAL;
    }
    h->col[c] = k;
  }
  if (nunknown) {
    fatal(run,
          "%s:1: unknown column%s %s in the header (known: user_id, item_id, event_type, timestamp, value, "
          "session_id, recommendation_id; the first line must name the columns)",
          path, nunknown > 1 ? "s" : "", unknown);
    return RECD_EINVAL;
  }
  for (int c = COL_USER; c <= COL_TYPE; c++)
    if (h->col[c] < 0) {
      fatal(run, "%s:1: the header has no '%s' column (required: user_id, item_id, event_type)", path,
            col_names[c]);
      return RECD_EINVAL;
    }
  return 0;
}

static int import_csv(imp_run *run, imp_reader *rd, const char *path) {
  csv_field f[CSV_MAX_FIELDS];
  csv_header h;
  int have_header = 0, nf, rc;
  uint64_t line = 1, nrec = 0;
  recd_fail fail;
  for (;;) {
    if (reader_done(rd)) break;
    if (!have_header && rd->base == 0 && rd->pos == 0 && rd->end >= 3 && !memcmp(rd->buf, "\xEF\xBB\xBF", 3))
      rd->pos = 3; /* UTF-8 byte order mark */
    size_t used, nl;
    const char *why = NULL;
    int st = csv_split(rd->buf + rd->pos, rd->end - rd->pos, rd->eof, f, CSV_MAX_FIELDS, &nf, &used, &nl, &why);
    if (st == CSV_MORE) {
      if (reader_full(rd)) {
        /* a record as long as the buffer: an unterminated quote or a runaway line */
        if (!have_header) {
          fatal(run, "%s:1: the header is longer than %zu bytes", path, imp_buf_size);
          return RECD_EINVAL;
        }
        run->r->lines++;
        run->r->rejected++;
        reject(run, path, line, "record longer than %zu bytes (an unterminated quoted field?)", imp_buf_size);
        size_t skip = next_line_start(rd->buf, rd->end, 0);
        line++;
        if (skip < rd->end) rd->pos = skip;
        else if ((rc = reader_skip_line(rd))) goto io_fail;
        continue;
      }
      if ((rc = reader_fill(rd))) goto io_fail;
      continue;
    }
    rd->pos += used;
    uint64_t at = line;
    line += nl;
    if (st == CSV_BAD) {
      if (!have_header) {
        fatal(run, "%s:%llu: %s in the header", path, (unsigned long long)at, why);
        return RECD_EINVAL;
      }
      run->r->lines++;
      run->r->rejected++;
      reject(run, path, at, "%s", why);
      continue;
    }
    if (nf == 1 && f[0].len == 0 && !f[0].quoted) continue; /* blank line */
    if (!have_header) {
      if ((rc = csv_header_parse(run, path, f, nf, &h))) return rc;
      have_header = 1;
      continue;
    }
    run->r->lines++;
    if ((rc = run_reserve(run))) return rc;
    imp_slot *s = &run->slots[run->cur];
    if (csv_event(run, &h, f, nf, &s->ev[s->nev], &fail)) {
      run->r->rejected++;
      reject(run, path, at, "%s", fail.message);
    } else {
      s->nev++;
    }
    if ((++nrec & 0xffff) == 0) bar_draw(run, path, rd, run->r->lines, "events", 0);
  }
  if (!have_header) {
    fatal(run, "%s: empty file (a CSV events file starts with a header row)", path);
    return RECD_EINVAL;
  }
  return 0;
io_fail:
  fatal(run, "%s: %s", path, recd_strerror(rc));
  return rc;
}

static int blank(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isspace((unsigned char)s[i])) return 0;
  return 1;
}

static int import_jsonl(imp_run *run, imp_reader *rd, const char *path) {
  uint64_t line = 0;
  const char *p;
  size_t len;
  int st;
  recd_fail fail;
  while ((st = reader_line(rd, &p, &len)) > 0) {
    line++;
    if (st == 2) {
      run->r->lines++;
      run->r->rejected++;
      reject(run, path, line, "line longer than %zu bytes", imp_buf_size);
      continue;
    }
    if (blank(p, len)) continue;
    run->r->lines++;
    json_error_t je;
    json_t *obj = json_loadb(p, len, 0, &je);
    if (!obj) {
      run->r->rejected++;
      reject(run, path, line, "invalid JSON: %s (column %d)", je.text, je.column);
      continue;
    }
    recd_event ev;
    int rc = run_reserve(run);
    if (rc) {
      json_decref(obj);
      return rc;
    }
    if (engine_parse_event(run->e, obj, -1, run->now_ms, &ev, &fail)) {
      run->r->rejected++;
      reject(run, path, line, "%s", fail.message);
    } else {
      imp_slot *s = &run->slots[run->cur];
      ev.user_id = slot_strdup(s, ev.user_id, strlen(ev.user_id));
      ev.item_id = slot_strdup(s, ev.item_id, strlen(ev.item_id));
      if (ev.session_id) ev.session_id = slot_strdup(s, ev.session_id, strlen(ev.session_id));
      if (ev.rec_id) ev.rec_id = slot_strdup(s, ev.rec_id, strlen(ev.rec_id));
      s->ev[s->nev++] = ev;
    }
    json_decref(obj);
    if ((line & 0xffff) == 0) bar_draw(run, path, rd, run->r->lines, "events", 0);
  }
  if (st < 0) {
    fatal(run, "%s: %s", path, recd_strerror(st));
    return st;
  }
  return 0;
}

/* Items: JSON Lines, submitted in batches with engine_submit_wait. */
static int import_items(imp_run *run, const char *path) {
  imp_reader rd;
  int rc = reader_open(&rd, path);
  if (rc) {
    fatal(run, "%s: %s", path, recd_strerror(rc));
    return rc;
  }
  size_t cap = run->batch < 10000 ? run->batch : 10000, n = 0;
  recd_item *items = xmalloc(cap * sizeof *items);
  json_t **objs = xmalloc(cap * sizeof *objs);
  arena a;
  arena_init(&a);
  uint64_t line = 0;
  const char *p;
  size_t len;
  int st;
  recd_fail fail;
  for (;;) {
    st = reader_line(&rd, &p, &len);
    if (st > 0) {
      line++;
      if (st == 2) {
        run->r->items_rejected++;
        reject(run, path, line, "line longer than %zu bytes", imp_buf_size);
        continue;
      }
      if (blank(p, len)) continue;
      json_error_t je;
      json_t *obj = json_loadb(p, len, 0, &je);
      if (!obj) {
        run->r->items_rejected++;
        reject(run, path, line, "invalid JSON: %s (column %d)", je.text, je.column);
        continue;
      }
      if (engine_parse_item(run->e, obj, NULL, -1, &a, &items[n], &fail)) {
        run->r->items_rejected++;
        reject(run, path, line, "%s", fail.message);
        json_decref(obj);
        continue;
      }
      objs[n++] = obj; /* the item's strings point into it */
      if ((line & 0x3fff) == 0) bar_draw(run, path, &rd, run->r->items + n, "items", 0);
    }
    if (n && (n == cap || st <= 0)) {
      engine_op op = {.kind = OP_ITEMS, .items = items, .nitems = n};
      rc = engine_submit_wait(run->e, &op);
      for (size_t i = 0; i < n; i++) json_decref(objs[i]);
      arena_release(&a);
      if (!rc) run->r->items += n;
      n = 0;
      if (rc) {
        fatal(run, "%s: the engine refused the catalog: %s", path, recd_strerror(rc));
        break;
      }
    }
    if (st <= 0) {
      if (st < 0) {
        fatal(run, "%s: %s", path, recd_strerror(st));
        rc = st;
      }
      break;
    }
  }
  for (size_t i = 0; i < n; i++) json_decref(objs[i]);
  arena_release(&a);
  free(items);
  free(objs);
  reader_close(&rd);
  return rc;
}

static int has_suffix(const char *s, const char *suf) {
  size_t n = strlen(s), m = strlen(suf);
  return n >= m && !strcasecmp(s + n - m, suf);
}

static int import_events(imp_run *run, const char *path) {
  imp_reader rd;
  int rc = reader_open(&rd, path);
  if (rc) {
    fatal(run, "%s: %s", path, recd_strerror(rc));
    return rc;
  }
  int jsonl;
  if (has_suffix(path, ".csv")) jsonl = 0;
  else if (has_suffix(path, ".jsonl") || has_suffix(path, ".ndjson") || has_suffix(path, ".json")) jsonl = 1;
  else {
    if ((rc = reader_fill(&rd))) {
      fatal(run, "%s: %s", path, recd_strerror(rc));
      reader_close(&rd);
      return rc;
    }
    size_t i = 0;
    while (i < rd.end && isspace((unsigned char)rd.buf[i])) i++;
    jsonl = i < rd.end && rd.buf[i] == '{';
  }
  rc = jsonl ? import_jsonl(run, &rd, path) : import_csv(run, &rd, path);
  int rc2 = run_flush(run);
  if (!rc) rc = rc2;
  rc2 = run_drain(run);
  if (!rc) rc = rc2;
  if (rc == run->engine_rc && rc) fatal(run, "%s: the engine refused a batch: %s", path, recd_strerror(rc));
  bar_draw(run, path, &rd, run->r->lines, "events", 1);
  reader_close(&rd);
  return rc;
}

int import_run(recd_engine *e, const import_params *p, import_report *r, FILE *errout) {
  imp_run run;
  memset(&run, 0, sizeof run);
  memset(r, 0, sizeof *r);
  run.e = e;
  run.cfg = engine_config(e);
  run.p = p;
  run.r = r;
  run.errout = errout;
  run.batch = p->batch > 0 ? (size_t)(p->batch < IMP_MAX_BATCH ? p->batch : IMP_MAX_BATCH) : IMP_DEFAULT_BATCH;
  run.t0 = clock_mono_ns();
  run.now_ms = clock_now_ms();
  pthread_mutex_init(&run.m, NULL);
  pthread_cond_init(&run.c, NULL);
  int rc = 0;
  if (p->items_path) rc = import_items(&run, p->items_path);
  if (!rc && p->events_path) {
    for (int i = 0; i < 2; i++) {
      imp_slot *s = &run.slots[i];
      s->run = &run;
      s->ev = xmalloc(run.batch * sizeof *s->ev);
      s->str_cap = run.batch * 48 + 16 * IMP_EVENT_STR;
      s->str = xmalloc(s->str_cap);
    }
    rc = import_events(&run, p->events_path);
    r->accepted = run.committed;
    for (int i = 0; i < 2; i++) {
      free(run.slots[i].ev);
      free(run.slots[i].str);
    }
  }
  bar_clear(&run);
  pthread_mutex_destroy(&run.m);
  pthread_cond_destroy(&run.c);
  r->seconds = (double)(clock_mono_ns() - run.t0) / 1e9;
  return rc;
}

/* ------------------------------------------------------------------ CLI --- */

static void import_usage(FILE *f) {
  fprintf(f,
          "usage: recd import [--data DIR] [engine options] [--items ITEMS.jsonl] [--batch N]\n"
          "                   [--no-progress] [--max-errors N] [EVENTS_FILE]\n"
          "Load a catalog and an event history into the data directory, as if they had been\n"
          "posted to the HTTP API (same validation), but much faster. Stop the server first:\n"
          "one process owns a data directory.\n"
          "\n"
          "  EVENTS_FILE          .csv with a header row naming the columns, in any order:\n"
          "                         user_id,item_id,event_type (required),\n"
          "                         timestamp,value,session_id,recommendation_id (optional)\n"
          "                       timestamp: unix seconds (fractions allowed) or RFC 3339;\n"
          "                       an empty field means absent. Or .jsonl: one event object\n"
          "                       per line, as in POST /api/v1/events.\n"
          "  --items FILE         catalog, JSON Lines of item objects; loaded before events\n"
          "  --batch N            events per engine submission (default 50000)\n"
          "  --no-progress        no progress bar (it is shown only when stderr is a terminal)\n"
          "  --max-errors N       print at most N rejected lines (default 100; 0 = all);\n"
          "                       all are counted in the summary\n"
          "  --help               this text\n"
          "\n"
          "Rejected lines are printed as FILE:LINE: reason and skipped. Exit status: 0 when\n"
          "the files were read to the end (even with rejected lines), 1 on a failure, 2 on\n"
          "a usage error.\n"
          "\n"
          "Engine options (also settable by RECD_* environment variables or --config FILE):\n");
  config_print_help(f);
}

static int parse_uint(const char *s, long max, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (end == s || *end || errno || v < 0 || v > max) return -1;
  *out = v;
  return 0;
}

int cmd_import(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--")) break;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      import_usage(stdout);
      return 0;
    }
  }
  recd_config cfg;
  char err[1024];
  config_defaults(&cfg);
  if (config_load(&cfg, &argc, argv, err, sizeof err) || config_finish(&cfg, err, sizeof err)) {
    fprintf(stderr, "recd import: %s\n", err);
    return 2;
  }
  int lvl = log_level_parse(cfg.log_level);
  if (lvl >= 0) log_set_level(lvl);

  import_params p = {.batch = IMP_DEFAULT_BATCH, .progress = 1, .max_errors = 100};
  int dashdash = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!dashdash && a[0] == '-' && a[1]) {
      const char *eq = strchr(a, '=');
      size_t nl = eq ? (size_t)(eq - a) : strlen(a);
      long v;
      if (!strcmp(a, "--")) {
        dashdash = 1;
        continue;
      }
      if (!strcmp(a, "--no-progress")) {
        p.progress = 0;
        continue;
      }
      const char *val = eq ? eq + 1 : i + 1 < argc ? argv[i + 1] : NULL;
      int known = (nl == 7 && !strncmp(a, "--items", nl)) || (nl == 7 && !strncmp(a, "--batch", nl)) ||
                  (nl == 12 && !strncmp(a, "--max-errors", nl));
      if (!known) {
        fprintf(stderr, "recd import: unknown option '%.*s' (see recd import --help)\n", (int)nl, a);
        return 2;
      }
      if (!val) {
        fprintf(stderr, "recd import: %.*s needs a value\n", (int)nl, a);
        return 2;
      }
      if (!eq) i++;
      if (!strncmp(a, "--items", nl)) {
        p.items_path = val;
      } else if (!strncmp(a, "--batch", nl)) {
        if (parse_uint(val, IMP_MAX_BATCH, &v) || v < 1) {
          fprintf(stderr, "recd import: --batch must be 1 to %d, not '%s'\n", IMP_MAX_BATCH, val);
          return 2;
        }
        p.batch = (int)v;
      } else {
        if (parse_uint(val, 1000000000L, &v)) {
          fprintf(stderr, "recd import: --max-errors must be a count, not '%s'\n", val);
          return 2;
        }
        p.max_errors = (uint64_t)v;
      }
      continue;
    }
    if (p.events_path) {
      fprintf(stderr, "recd import: one events file at a time ('%s' and '%s')\n", p.events_path, a);
      return 2;
    }
    p.events_path = a;
  }
  if (!p.events_path && !p.items_path) {
    fprintf(stderr, "recd import: nothing to import (give an events file and/or --items; see --help)\n");
    return 2;
  }
  const char *files[2] = {p.items_path, p.events_path};
  for (int i = 0; i < 2; i++)
    if (files[i] && access(files[i], R_OK)) {
      fprintf(stderr, "recd import: %s: %s\n", files[i], strerror(errno));
      return 1;
    }
  p.progress = p.progress && isatty(2);

  int64_t t0 = clock_mono_ns();
  recd_engine *e;
  if (engine_open(&cfg, &e, err, sizeof err)) {
    fprintf(stderr, "recd import: %s\n", err);
    return 1;
  }
  double open_s = (double)(clock_mono_ns() - t0) / 1e9;
  import_report r;
  int rc = import_run(e, &p, &r, stderr);
  int64_t t1 = clock_mono_ns();
  engine_free(e);
  double close_s = (double)(clock_mono_ns() - t1) / 1e9;

  char ni[32], na[32], nl[32], nr[32], rate[32];
  fmt_count(r.items, ni, sizeof ni);
  fmt_count(r.accepted, na, sizeof na);
  fmt_count(r.lines, nl, sizeof nl);
  fmt_count(r.rejected, nr, sizeof nr);
  fmt_count(r.seconds > 0 ? (uint64_t)((double)r.accepted / r.seconds) : 0, rate, sizeof rate);
  if (p.items_path)
    printf("items:  %s imported, %llu rejected\n", ni, (unsigned long long)r.items_rejected);
  if (p.events_path)
    printf("events: %s lines, %s accepted, %s rejected\n", nl, na, nr);
  printf("time:   %.2f s import (%s events/s), %.2f s opening and %.2f s closing %s\n", r.seconds, rate, open_s,
         close_s, cfg.data);
  if (rc) {
    fprintf(stderr, "recd import: stopped: %s\n", recd_strerror(rc));
    return 1;
  }
  return 0;
}
