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
 *  3. Three batch slots rotate: while the engine's writer applies one and
 *     writes and commits the next (its two stages), the third is filled. A slot
 *     is reused only after its done() callback has run, so the events and
 *     strings an op points to stay valid until the engine is finished with them
 *     (the contract of engine_submit).
 *  4. Validation mirrors engine_parse_event (src/engine/parse.c) field by field, and
 *     its messages use the same wording, so a line rejected here would get the same
 *     answer from POST /api/v1/events.
 *  5. Every delimited events format is one reader driven by an imp_opts: a dialect
 *     (separator, quoting, header row), a column map and a type rule. The
 *     MovieLens formats are rows of the preset table (imp_presets), resolved by
 *     opts_resolve() exactly like the user's --sep/--map/--type-rule, which
 *     override them. The comma-and-quotes dialect keeps its own specialised
 *     splitter (csv_split: csv_split_core inlined with constants), so the common
 *     path is as fast as before the other dialects existed.
 *  6. Items are few (thousands), so the MovieLens item readers build a JSON
 *     object per record and validate it with engine_parse_item, like JSON Lines.
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
/* Without --batch, batches grow from IMP_FIRST_BATCH, doubling, to
 * IMP_DEFAULT_BATCH: the first ones fill the pipeline soon (a small file is
 * a few batches), the later big ones give the apply stage more adds per
 * co-visitation list to sort into runs (writer.c): a 20M-event import ran at
 * 0.82-0.86M events/s with 200,000, 0.72-0.76M/s with 50,000. */
#define IMP_FIRST_BATCH 50000
#define IMP_DEFAULT_BATCH 200000
#define IMP_SLOTS 3 /* one filling, one being written and committed, one being applied */
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

/* How records are spelt: the field separator and whether '"' quotes. */
typedef struct {
  char sep[8];       /* 1..7 bytes, NUL-terminated; never '\n' or '\r' (nor '"' with quotes) */
  uint8_t seplen;
  uint8_t quotes;    /* RFC 4180 quoting; otherwise '"' is an ordinary byte */
} csv_dialect;

static const csv_dialect csv_rfc4180 = {",", 1, 1};

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

/* s[i..n) starts with the whole separator */
static inline int csv_at_sep(const char *s, size_t n, size_t i, const csv_dialect *d) {
  if (d->seplen == 1) return s[i] == d->sep[0];
  return s[i] == d->sep[0] && n - i >= d->seplen && !memcmp(s + i, d->sep, d->seplen);
}

/* Split one record at s[0..n) in dialect `d`. `eof`: no bytes follow s[n-1].
 *  CSV_OK:   fields in f[0..min(*nf,maxf)), *nf = the record's field count (it
 *            may exceed maxf), *used = bytes consumed including the line end,
 *            *nlines = '\n' characters consumed.
 *  CSV_MORE: the record is not complete within n bytes (never when eof).
 *  CSV_BAD:  malformed; *why says how, *used and *nlines cover the bytes to skip to
 *            resynchronise at the next physical line.
 * A field's content points into s. CRLF and LF both end a record; with quoting a
 * quoted field may contain the separator, '\n' and "" (a quote). A separator cut
 * by the end of s is CSV_MORE unless eof (then it is content).
 * Always inlined: called with a constant dialect (csv_split) the separator and
 * quoting tests fold into the comma-only loop. */
static inline __attribute__((always_inline)) int csv_split_core(const char *s, size_t n, int eof,
                                                                const csv_dialect *d, csv_field *f, int maxf,
                                                                int *nf, size_t *used, size_t *nlines,
                                                                const char **why) {
  size_t i = 0, nl = 0;
  int k = 0;
  for (;;) {
    csv_field fld = {0};
    if (d->quotes && i < n && s[i] == '"') {
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
      if (i < n && s[i] != '\n' && !csv_at_sep(s, n, i, d)) {
        if (!eof && !memchr(s + i, '\n', n - i)) return CSV_MORE;
        *why = "bad quoting: text after a closing quote";
        *used = next_line_start(s, n, i);
        *nlines = count_nl(s, *used);
        return CSV_BAD;
      }
    } else {
      size_t start = i;
      if (d->seplen == 1) {
        const char c = d->sep[0];
        if (d->quotes)
          while (i < n && s[i] != c && s[i] != '\n' && s[i] != '"') i++;
        else
          while (i < n && s[i] != c && s[i] != '\n') i++;
      } else {
        while (i < n && s[i] != '\n' && !(d->quotes && s[i] == '"') && !csv_at_sep(s, n, i, d)) i++;
      }
      if (d->quotes && i < n && s[i] == '"') {
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
    /* here s[i] is '\n', a whole separator, or i == n */
    if (i < n && s[i] != '\n') {
      i += d->seplen;
      continue;
    }
    if (i < n) {
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

/* RFC 4180 with ',' (the specialised hot path; see csv_split_core). */
static int csv_split(const char *s, size_t n, int eof, csv_field *f, int maxf, int *nf, size_t *used,
                     size_t *nlines, const char **why) {
  return csv_split_core(s, n, eof, &csv_rfc4180, f, maxf, nf, used, nlines, why);
}

/* Any other dialect. */
static int csv_split_sep(const char *s, size_t n, int eof, const csv_dialect *d, csv_field *f, int maxf, int *nf,
                         size_t *used, size_t *nlines, const char **why) {
  return csv_split_core(s, n, eof, d, f, maxf, nf, used, nlines, why);
}

static inline int csv_is_rfc4180(const csv_dialect *d) {
  return d->seplen == 1 && d->sep[0] == ',' && d->quotes;
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

/* the field's unescaped content equals the NUL-terminated s */
static int csv_eq(const csv_field *f, const char *s) {
  size_t n = strlen(s);
  if (!f->escaped) return f->len == n && !memcmp(f->p, s, n);
  if (f->len > 2 * n) return 0;
  char buf[2 * 72];
  if (f->len > sizeof buf) return 0;
  return csv_unescape(f, buf) == n && !memcmp(buf, s, n);
}

enum { COL_USER, COL_ITEM, COL_TYPE, COL_TS, COL_VALUE, COL_SESSION, COL_REC, NCOLS };
static const char *const col_names[NCOLS] = {"user_id",  "item_id",    "event_type",       "timestamp",
                                             "value",    "session_id", "recommendation_id"};
/* the short names --map also accepts */
static const char *const field_names[NCOLS] = {"user", "item", "type", "timestamp", "value", "session", "rec"};

/* ------------------------------------------------------------- options --- */

typedef enum { FMT_NONE, FMT_CSV, FMT_JSONL, FMT_ML_CSV, FMT_ML_100K, FMT_ML_1M, NFMT } imp_format;
static const char *const fmt_names[NFMT] = {"", "csv", "jsonl", "movielens-csv", "movielens-100k", "movielens-1m"};

/* Events presets. A field left 0/NULL means "as in plain CSV" for the dialect,
 * and "none" for the map and rule. */
static const struct {
  const char *sep;
  uint8_t header, quotes;
  int nfields;       /* fixed record length of a headerless preset */
  const char *map;
  const char *rule;
} imp_presets[NFMT] = {
    [FMT_CSV] = {",", 1, 1, 0, NULL, NULL},
    [FMT_ML_CSV] = {",", 1, 1, 0, "user=userId,item=movieId,value=rating,timestamp=timestamp", "value>=4:like,view"},
    [FMT_ML_100K] = {"\t", 0, 0, 4, "user=1,item=2,value=3,timestamp=4", "value>=4:like,view"},
    [FMT_ML_1M] = {"::", 0, 0, 4, "user=1,item=2,value=3,timestamp=4", "value>=4:like,view"},
};

#define IMP_NAME_MAX 64

typedef struct {
  uint8_t set[NCOLS];
  uint8_t preset[NCOLS];      /* the entry came from the format, not --map */
  int num[NCOLS];             /* 1-based column number, or 0: by name */
  char name[NCOLS][IMP_NAME_MAX];
} imp_map;

/* event_type by a rule on value */
#define IMP_RULE_MAX 8
#define IMP_TYPE_NONE (-1)    /* no condition matched and there is no default */
#define IMP_TYPE_SKIP (-2)    /* "skip": drop the record */
enum { CMP_GE, CMP_GT, CMP_LE, CMP_LT, CMP_EQ };

typedef struct {
  int n;
  struct {
    int op;
    double x;
    int type;
  } c[IMP_RULE_MAX];
  int dflt;                   /* a type index, IMP_TYPE_SKIP or IMP_TYPE_NONE */
  char text[160];
} imp_rule;

typedef struct {
  imp_format fmt;
  csv_dialect d;
  int header;
  int nfields;                /* a headerless preset's record length, else 0 */
  imp_map map;
  int has_map, user_map;      /* any map (a preset's or --map); --map given */
  imp_rule rule;
  int has_rule, rule_explicit;
} imp_opts;

static int fmt_parse(const char *name, int items, imp_format *out) {
  for (int f = FMT_CSV; f < NFMT; f++)
    if (!strcmp(name, fmt_names[f]) && !(items && f == FMT_CSV)) {
      *out = (imp_format)f;
      return 0;
    }
  return RECD_EINVAL;
}

static inline int rule_apply(const imp_rule *r, int has_value, double v) {
  if (has_value)
    for (int i = 0; i < r->n; i++) {
      double x = r->c[i].x;
      int m;
      switch (r->c[i].op) {
        case CMP_GE: m = v >= x; break;
        case CMP_GT: m = v > x; break;
        case CMP_LE: m = v <= x; break;
        case CMP_LT: m = v < x; break;
        default: m = v == x; break;
      }
      if (m) return r->c[i].type;
    }
  return r->dflt;
}

static const char *trim(const char *s, size_t *len) {
  while (*len && isspace((unsigned char)*s)) s++, (*len)--;
  while (*len && isspace((unsigned char)s[*len - 1])) (*len)--;
  return s;
}

/* a type name of the rule: a configured type or "skip" */
static int rule_type(const recd_config *cfg, const char *s, size_t n, int *out, char *err, size_t errlen) {
  if (n == 4 && !memcmp(s, "skip", 4)) {
    *out = IMP_TYPE_SKIP;
    return 0;
  }
  if ((*out = config_type_index(cfg, s, n)) >= 0) return 0;
  char types[400] = "";
  size_t tl = 0;
  for (int i = 0; i < cfg->ntypes && tl + 40 < sizeof types; i++)
    tl += (size_t)snprintf(types + tl, sizeof types - tl, "%s, ", cfg->types[i].name);
  snprintf(err, errlen, "--type-rule: unknown event type '%.*s' (types: %sor skip)", (int)(n < 64 ? n : 64), s,
           types);
  return RECD_EINVAL;
}

/* "value>=4:like,value>=2:view,skip" or "view" */
static int rule_parse(const recd_config *cfg, const char *text, imp_rule *r, char *err, size_t errlen) {
  memset(r, 0, sizeof *r);
  r->dflt = IMP_TYPE_NONE;
  snprintf(r->text, sizeof r->text, "%s", text);
  const char *p = text;
  int have_dflt = 0;
  for (;;) {
    const char *comma = strchr(p, ',');
    size_t n = comma ? (size_t)(comma - p) : strlen(p);
    const char *t = trim(p, &n);
    if (!n) {
      snprintf(err, errlen, "--type-rule '%s': an empty term", text);
      return RECD_EINVAL;
    }
    if (have_dflt) {
      snprintf(err, errlen, "--type-rule '%s': the default type (a bare type) must come last", text);
      return RECD_EINVAL;
    }
    const char *colon = memchr(t, ':', n);
    if (!colon) {
      if (rule_type(cfg, t, n, &r->dflt, err, errlen)) return RECD_EINVAL;
      have_dflt = 1;
    } else {
      if (r->n == IMP_RULE_MAX) {
        snprintf(err, errlen, "--type-rule '%s': more than %d conditions", text, IMP_RULE_MAX);
        return RECD_EINVAL;
      }
      size_t cl = (size_t)(colon - t), tl = n - cl - 1;
      const char *c = trim(t, &cl), *ty = trim(colon + 1, &tl);
      if (cl < 5 || memcmp(c, "value", 5)) {
        snprintf(err, errlen, "--type-rule '%s': '%.*s' is not a condition on value (like value>=4)", text, (int)cl,
                 c);
        return RECD_EINVAL;
      }
      size_t i = 5;
      while (i < cl && c[i] == ' ') i++;
      int op;
      if (i + 1 < cl && c[i] == '>' && c[i + 1] == '=') op = CMP_GE, i += 2;
      else if (i + 1 < cl && c[i] == '<' && c[i + 1] == '=') op = CMP_LE, i += 2;
      else if (i + 1 < cl && c[i] == '=' && c[i + 1] == '=') op = CMP_EQ, i += 2;
      else if (i < cl && c[i] == '>') op = CMP_GT, i++;
      else if (i < cl && c[i] == '<') op = CMP_LT, i++;
      else {
        snprintf(err, errlen, "--type-rule '%s': '%.*s': the comparison must be >=, >, <=, < or ==", text, (int)cl,
                 c);
        return RECD_EINVAL;
      }
      char num[64];
      size_t nl = cl - i;
      const char *ns = trim(c + i, &nl);
      char *end;
      double x = 0;
      if (nl && nl < sizeof num) {
        memcpy(num, ns, nl);
        num[nl] = 0;
        x = strtod(num, &end);
      }
      if (!nl || nl >= sizeof num || *end || !isfinite(x) || strpbrk(num, "xXnNiI")) {
        snprintf(err, errlen, "--type-rule '%s': '%.*s' is not a number", text, (int)nl, ns);
        return RECD_EINVAL;
      }
      r->c[r->n].op = op;
      r->c[r->n].x = x;
      if (rule_type(cfg, ty, tl, &r->c[r->n].type, err, errlen)) return RECD_EINVAL;
      r->n++;
    }
    if (!comma) break;
    p = comma + 1;
  }
  return 0;
}

/* "user=userId,item=2" into m (entries override what m already has) */
static int map_parse(const char *text, int preset, imp_map *m, char *err, size_t errlen) {
  uint8_t seen[NCOLS] = {0};
  const char *p = text;
  for (;;) {
    const char *comma = strchr(p, ',');
    size_t n = comma ? (size_t)(comma - p) : strlen(p);
    const char *t = trim(p, &n);
    const char *eq = memchr(t, '=', n);
    if (!eq) {
      snprintf(err, errlen, "--map: '%.*s' is not FIELD=COLUMN (e.g. --map user=userId,item=movieId)",
               (int)(n < 64 ? n : 64), t);
      return RECD_EINVAL;
    }
    size_t fl = (size_t)(eq - t), cl = n - fl - 1;
    const char *fs = trim(t, &fl), *cs = trim(eq + 1, &cl);
    int f = 0;
    while (f < NCOLS && !((strlen(field_names[f]) == fl && !memcmp(fs, field_names[f], fl)) ||
                          (strlen(col_names[f]) == fl && !memcmp(fs, col_names[f], fl))))
      f++;
    if (f == NCOLS) {
      snprintf(err, errlen,
               "--map: unknown field '%.*s' (fields: user, item, type, timestamp, value, session, rec)",
               (int)(fl < 64 ? fl : 64), fs);
      return RECD_EINVAL;
    }
    if (seen[f]) {
      snprintf(err, errlen, "--map: field '%s' is mapped twice", field_names[f]);
      return RECD_EINVAL;
    }
    seen[f] = 1;
    if (!cl || cl >= IMP_NAME_MAX) {
      snprintf(err, errlen, "--map: %s=: the column must be a name of 1 to %d bytes or a number",
               field_names[f], IMP_NAME_MAX - 1);
      return RECD_EINVAL;
    }
    size_t i = 0;
    long num = 0;
    for (; i < cl && cs[i] >= '0' && cs[i] <= '9'; i++)
      if (num <= CSV_MAX_FIELDS) num = num * 10 + (cs[i] - '0');
    if (i == cl && (num < 1 || num > CSV_MAX_FIELDS)) {
      snprintf(err, errlen, "--map: %s=%.*s: column numbers go from 1 to %d", field_names[f], (int)cl, cs,
               CSV_MAX_FIELDS);
      return RECD_EINVAL;
    }
    m->set[f] = 1;
    m->preset[f] = (uint8_t)preset;
    m->num[f] = i == cl ? (int)num : 0;
    memcpy(m->name[f], cs, cl);
    m->name[f][cl] = 0;
    if (!comma) break;
    p = comma + 1;
  }
  return 0;
}

static int sep_parse(const char *s, csv_dialect *d, char *err, size_t errlen) {
  static const struct {
    const char *name, *sep;
  } named[] = {{"tab", "\t"}, {"\\t", "\t"}, {"comma", ","}, {"semicolon", ";"}, {"pipe", "|"}, {"space", " "}};
  for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
    if (!strcmp(s, named[i].name)) s = named[i].sep;
  size_t n = strlen(s);
  if (n < 1 || n >= sizeof d->sep || strpbrk(s, "\r\n")) {
    snprintf(err, errlen, "--sep: '%s' must be 1 to %zu bytes without a line break (or tab, comma, ...)", s,
             sizeof d->sep - 1);
    return RECD_EINVAL;
  }
  memset(d->sep, 0, sizeof d->sep);
  memcpy(d->sep, s, n);
  d->seplen = (uint8_t)n;
  return 0;
}

/* The options for an events file of format `fmt`: the preset, then the
 * params on top. 0, or RECD_EINVAL with a message in err. */
static int opts_resolve(const import_params *p, const recd_config *cfg, imp_format fmt, imp_opts *o, char *err,
                        size_t errlen) {
  memset(o, 0, sizeof *o);
  o->fmt = fmt;
  if (fmt == FMT_JSONL) {
    if (p->sep || p->no_header || p->no_quotes) {
      snprintf(err, errlen, "--sep, --no-header and --no-quotes are for delimited text, not JSON Lines");
      return RECD_EINVAL;
    }
  } else {
    if (sep_parse(p->sep ? p->sep : imp_presets[fmt].sep, &o->d, err, errlen)) return RECD_EINVAL;
    o->d.quotes = imp_presets[fmt].quotes && !p->no_quotes;
    if (o->d.quotes && strchr(o->d.sep, '"')) {
      snprintf(err, errlen, "--sep: a separator with '\"' needs --no-quotes");
      return RECD_EINVAL;
    }
    o->header = imp_presets[fmt].header && !p->no_header;
    o->nfields = imp_presets[fmt].nfields;
  }
  if (imp_presets[fmt].map) {
    if (map_parse(imp_presets[fmt].map, 1, &o->map, err, errlen)) return RECD_EINVAL;
    o->has_map = 1;
  }
  if (p->map) {
    if (map_parse(p->map, 0, &o->map, err, errlen)) return RECD_EINVAL;
    o->has_map = o->user_map = 1;
    o->nfields = 0; /* the user's columns may reach further than the preset's */
  }
  const char *rule = p->type_rule ? p->type_rule : imp_presets[fmt].rule;
  if (rule) {
    if (rule_parse(cfg, rule, &o->rule, err, errlen)) return RECD_EINVAL;
    o->has_rule = 1;
    o->rule_explicit = p->type_rule != NULL;
  }
  if (o->rule_explicit && o->map.set[COL_TYPE] && !o->map.preset[COL_TYPE]) {
    snprintf(err, errlen, "--map type=%s and --type-rule/--event-type both set the event type", o->map.name[COL_TYPE]);
    return RECD_EINVAL;
  }
  for (int f = 0; f < NCOLS; f++) {
    if (!o->map.set[f] || !o->map.num[f]) continue;
    if (fmt == FMT_JSONL) {
      snprintf(err, errlen, "--map %s=%d: JSON Lines fields are mapped to keys by name", field_names[f], o->map.num[f]);
      return RECD_EINVAL;
    }
  }
  if (fmt != FMT_JSONL && !o->header) {
    if (!o->has_map) {
      snprintf(err, errlen,
               "a file without a header row needs --map with column numbers (e.g. --map user=1,item=2,type=3)");
      return RECD_EINVAL;
    }
    for (int f = 0; f < NCOLS; f++)
      if (o->map.set[f] && !o->map.num[f]) {
        snprintf(err, errlen, "--map %s=%s: without a header row, name columns by number (1 = the first)",
                 field_names[f], o->map.name[f]);
        return RECD_EINVAL;
      }
  }
  return 0;
}
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
  size_t batch;          /* the largest batch (slots are this big) */
  size_t fill;           /* the current batch's size (grows to batch) */
  uint64_t shown;        /* rejected lines reported so far */
  pthread_mutex_t m;
  pthread_cond_t c;
  int engine_rc;         /* first failed commit */
  uint64_t committed;    /* events committed (guarded by m) */
  imp_slot slots[IMP_SLOTS];
  int cur;
  int64_t now_ms;
  imp_opts o;            /* how the events file is read */
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

/* a JSON line's object, or NULL once it is counted in *rejected and reported */
static json_t *line_json(imp_run *run, const char *p, size_t len, const char *path, uint64_t line, uint64_t *rejected) {
  json_error_t je;
  json_t *obj = json_loadb(p, len, 0, &je);
  if (!obj) {
    (*rejected)++;
    reject(run, path, line, "invalid JSON: %s (column %d)", je.text, je.column);
  }
  return obj;
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
  if (run->fill < run->batch) run->fill = run->fill * 2 < run->batch ? run->fill * 2 : run->batch;
  run->cur = (run->cur + 1) % IMP_SLOTS;
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
  for (int i = 0; i < IMP_SLOTS; i++)
    while (run->slots[i].busy) pthread_cond_wait(&run->c, &run->m);
  int rc = run->engine_rc;
  pthread_mutex_unlock(&run->m);
  return rc;
}

/* Make room for one more event in the current slot (flushing if needed). */
static int run_reserve(imp_run *run) {
  imp_slot *s = &run->slots[run->cur];
  if (s->nev < run->fill && s->str_cap - s->str_len >= IMP_EVENT_STR) return 0;
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
  while (i < n && p[i] >= '0' && p[i] <= '9') {
    sec = sec * 10 + (p[i++] - '0');
    if (sec > (int64_t)IMP_MAX_UNIX_S) return -1; /* also keeps the multiply from overflowing */
  }
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

/* -1 when the field is too long or holds a NUL byte (the API refuses those too) */
static int field_copy(const csv_field *f, char *buf, size_t cap) {
  if (f->len >= cap || memchr(f->p, 0, f->len)) return -1;
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


/* Where each event field is in a record. */
typedef struct {
  int col[NCOLS];        /* field index of each column, -1 if absent */
  int nfields;           /* a record has exactly this many fields, or 0: */
  int minfields;         /*   at least this many */
  int from_header;       /* nfields is the header's */
  const imp_rule *rule;  /* event_type by this rule (then col[COL_TYPE] < 0), or NULL */
} csv_layout;

/* An id column into the slot's string area. Absent or empty optional ids give NULL. */
static int csv_id(imp_slot *s, const csv_layout *h, const csv_field *f, int col, int required, const char **out,
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

static void rule_fail(recd_fail *fail, const imp_rule *r, int has_value, double v) {
  if (has_value)
    recd_fail_set(fail, 400, "invalid_event", -1, "event_type",
                  "event_type: value %g matches no condition of the type rule '%s'", v, r->text);
  else
    recd_fail_set(fail, 400, "invalid_event", -1, "event_type", "event_type: the type rule '%s' needs a value",
                  r->text);
}

/* Build and validate one event from a record; on failure the slot's string
 * area is rolled back. A record the type rule skips returns 0 with
 * ev->type == IMP_TYPE_SKIP (and nothing kept in the slot). */
static int csv_event(imp_run *run, const csv_layout *h, const csv_field *f, int nf, recd_event *ev,
                     recd_fail *fail) {
  imp_slot *s = &run->slots[run->cur];
  size_t mark = s->str_len;
  memset(ev, 0, sizeof *ev);
  if (h->nfields ? nf != h->nfields : nf < h->minfields) {
    if (h->from_header)
      recd_fail_set(fail, 400, "invalid_event", -1, "", "expected %d fields like the header, found %d", h->nfields,
                    nf);
    else if (h->nfields)
      recd_fail_set(fail, 400, "invalid_event", -1, "", "expected %d fields, found %d", h->nfields, nf);
    else
      recd_fail_set(fail, 400, "invalid_event", -1, "", "expected at least %d fields, found %d", h->minfields, nf);
    return RECD_EINVAL;
  }
  int rc = csv_id(s, h, f, COL_USER, 1, &ev->user_id, fail);
  if (!rc) rc = csv_id(s, h, f, COL_ITEM, 1, &ev->item_id, fail);
  if (!rc && !h->rule) {
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
  if (!rc && h->rule) {
    ev->type = rule_apply(h->rule, ev->has_value, ev->value);
    if (ev->type == IMP_TYPE_NONE) {
      rule_fail(fail, h->rule, ev->has_value, ev->value);
      rc = RECD_EINVAL;
    } else if (ev->type == IMP_TYPE_SKIP) {
      s->str_len = mark;
      return 0;
    }
  }
  if (!rc) rc = csv_id(s, h, f, COL_SESSION, 0, &ev->session_id, fail);
  if (!rc) rc = csv_id(s, h, f, COL_REC, 0, &ev->rec_id, fail);
  if (rc) s->str_len = mark;
  return rc;
}

/* a header field as a C string for messages and lookups (long names truncated) */
static void header_name(const csv_field *f, char *name, size_t n) {
  if (field_copy(f, name, n)) snprintf(name, n, "%.60s...", f->p);
}

static int header_is(const csv_field *f, int nf, const char *const *names, int n) {
  if (nf != n) return 0;
  for (int k = 0; k < n; k++)
    if (!csv_eq(&f[k], names[k])) return 0;
  return 1;
}

/* Shared end of both layout builders: required fields, the type rule, the
 * record length. `at`: the header's line (for messages in the strict mode). */
static int layout_finish(imp_run *run, const char *path, uint64_t at, csv_layout *h) {
  const imp_opts *o = &run->o;
  for (int c = COL_USER; c <= COL_ITEM; c++) {
    if (h->col[c] >= 0) continue;
    if (!o->has_map)
      fatal(run, "%s:%llu: the header has no '%s' column (required: user_id, item_id, event_type)", path,
            (unsigned long long)at, col_names[c]);
    else
      fatal(run, "%s: no column for %s: map one with --map %s=%s", path, col_names[c], field_names[c],
            o->header ? "COLUMN" : "N");
    return RECD_EINVAL;
  }
  h->rule = NULL;
  if (h->col[COL_TYPE] < 0) {
    if (!o->has_rule) {
      if (!o->has_map)
        fatal(run,
              "%s:%llu: the header has no 'event_type' column (required: user_id, item_id, event_type; or set "
              "the type with --event-type/--type-rule)",
              path, (unsigned long long)at);
      else
        fatal(run,
              "%s: no column for event_type: map one with --map type=%s, or set it with --event-type TYPE or "
              "--type-rule RULE",
              path, o->header ? "COLUMN" : "N");
      return RECD_EINVAL;
    }
    h->rule = &o->rule;
    if (o->rule.n && h->col[COL_VALUE] < 0) {
      fatal(run, "%s: the type rule '%s' tests value, but there is no value column (--map value=COLUMN)", path,
            o->rule.text);
      return RECD_EINVAL;
    }
    snprintf(run->r->type_rule, sizeof run->r->type_rule, "%s", o->rule.text);
  }
  h->minfields = 0;
  for (int c = 0; c < NCOLS; c++)
    if (h->col[c] + 1 > h->minfields) h->minfields = h->col[c] + 1;
  return 0;
}

/* The layout of a headerless file: the map's column numbers. */
static int layout_numbers(imp_run *run, const char *path, csv_layout *h) {
  const imp_opts *o = &run->o;
  for (int c = 0; c < NCOLS; c++) h->col[c] = o->map.set[c] ? o->map.num[c] - 1 : -1;
  h->nfields = o->nfields;
  h->from_header = 0;
  return layout_finish(run, path, 0, h);
}

/* The header column of field c under a map: the mapped number or name, or a
 * column named like the field that no mapped field took (-1: none). 0, or
 * RECD_EINVAL after a message. */
static int header_column(imp_run *run, const char *path, uint64_t at, const csv_field *f, int nf, int c,
                         uint8_t *taken, int *col) {
  const imp_opts *o = &run->o;
  const imp_map *m = &o->map;
  const unsigned long long ln = (unsigned long long)at;
  int k = -1;
  if (m->set[c] && m->num[c]) {
    k = m->num[c] - 1;
    if (k >= nf) {
      fatal(run, "%s:%llu: --map %s=%d, but the header has %d column%s", path, ln, field_names[c], m->num[c], nf,
            nf == 1 ? "" : "s");
      return RECD_EINVAL;
    }
  } else {
    const char *want = m->set[c] ? m->name[c] : col_names[c];
    for (int j = 0; j < nf && j < CSV_MAX_FIELDS; j++) {
      if ((!m->set[c] && taken[j]) || !csv_eq(&f[j], want)) continue;
      if (k >= 0) {
        fatal(run, "%s:%llu: column '%s' appears twice in the header", path, ln, want);
        return RECD_EINVAL;
      }
      k = j;
    }
    if (k < 0 && m->set[c]) {
      if (m->preset[c])
        fatal(run, "%s:%llu: no column '%s' for %s in the header (the %s format's; see --map)", path, ln, want,
              col_names[c], fmt_names[o->fmt]);
      else
        fatal(run, "%s:%llu: --map %s=%s: no column '%s' in the header%s", path, ln, field_names[c], want, want,
              nf > CSV_MAX_FIELDS ? " (only the first 32 columns can be mapped by name)" : "");
      return RECD_EINVAL;
    }
  }
  if (k >= 0 && k < CSV_MAX_FIELDS) taken[k] = 1;
  *col = k;
  return 0;
}

static const char *const ml_ratings_header[4] = {"userId", "movieId", "rating", "timestamp"};

/* The layout from a header row: without a map the strict rules (every column
 * must be an event field); with one, mapped names and numbers, plus columns
 * named like event fields, everything else ignored. */
static int layout_header(imp_run *run, const char *path, uint64_t at, const csv_field *f, int nf, csv_layout *h) {
  imp_opts *o = &run->o;
  const unsigned long long ln = (unsigned long long)at;
  if (!o->has_map && o->fmt == FMT_CSV && !run->p->format && header_is(f, nf, ml_ratings_header, 4)) {
    char err[256]; /* MovieLens ratings.csv, recognised by its header */
    if (opts_resolve(run->p, run->cfg, FMT_ML_CSV, o, err, sizeof err)) {
      fatal(run, "%s: %s", path, err);
      return RECD_EINVAL;
    }
    run->r->format = fmt_names[FMT_ML_CSV];
  }
  for (int c = 0; c < NCOLS; c++) h->col[c] = -1;
  h->nfields = nf;
  h->from_header = 1;
  if (!o->has_map) {
    char unknown[512] = "";
    size_t ul = 0;
    int nunknown = 0;
    if (nf > CSV_MAX_FIELDS) {
      fatal(run, "%s:%llu: %d columns in the header; the known columns are %s, %s, %s, %s, %s, %s, %s (or use --map)",
            path, ln, nf, col_names[0], col_names[1], col_names[2], col_names[3], col_names[4], col_names[5],
            col_names[6]);
      return RECD_EINVAL;
    }
    for (int k = 0; k < nf; k++) {
      char name[72];
      header_name(&f[k], name, sizeof name);
      int c = 0;
      while (c < NCOLS && strcmp(name, col_names[c])) c++;
      if (c == NCOLS) {
        nunknown++;
        if (ul < sizeof unknown - 80)
          ul += (size_t)snprintf(unknown + ul, sizeof unknown - ul, "%s'%s'", ul ? ", " : "", name);
        continue;
      }
      if (h->col[c] >= 0) {
        fatal(run, "%s:%llu: column '%s' appears twice in the header", path, ln, name);
        return RECD_EINVAL;
      }
      h->col[c] = k;
    }
    if (nunknown) {
      fatal(run,
            "%s:%llu: unknown column%s %s in the header (known: user_id, item_id, event_type, timestamp, value, "
            "session_id, recommendation_id; the first line must name the columns, or use --map)",
            path, ln, nunknown > 1 ? "s" : "", unknown);
      return RECD_EINVAL;
    }
  } else {
    /* mapped fields first, then fields by their own names among the columns left */
    uint8_t taken[CSV_MAX_FIELDS] = {0};
    for (int pass = 0; pass < 2; pass++)
      for (int c = 0; c < NCOLS; c++)
        if (o->map.set[c] == !pass && header_column(run, path, at, f, nf, c, taken, &h->col[c])) return RECD_EINVAL;
  }
  if (h->col[COL_TYPE] >= 0 && o->has_rule) {
    if (o->rule_explicit) {
      fatal(run, "%s:%llu: the header has an event_type column and --type-rule/--event-type also sets the type; "
                 "use one",
            path, ln);
      return RECD_EINVAL;
    }
    /* a preset's rule gives way to a real type column */
  }
  return layout_finish(run, path, at, h);
}

enum { REC_EOF = 0, REC_OK = 1, REC_BAD = 2, REC_LONG = 3 };

/* The next non-blank record of rd in dialect d, fields in f[0..min(*nf,
 * CSV_MAX_FIELDS)). *line is the line the next record starts on (from 1); *at
 * gets this record's. Returns REC_OK; REC_BAD (malformed, *why says how) or
 * REC_LONG (longer than the read buffer), both already skipped; REC_EOF; or
 * -errno. */
static inline int csv_next(imp_reader *rd, const csv_dialect *d, uint64_t *line, csv_field *f, int *nf,
                           uint64_t *at, const char **why) {
  const int fast = csv_is_rfc4180(d);
  for (;;) {
    if (reader_done(rd)) return REC_EOF;
    if (rd->base == 0 && rd->pos == 0 && rd->end >= 3 && !memcmp(rd->buf, "\xEF\xBB\xBF", 3))
      rd->pos = 3; /* UTF-8 byte order mark */
    size_t used, nl;
    const char *s = rd->buf + rd->pos;
    size_t n = rd->end - rd->pos;
    int st = fast ? csv_split(s, n, rd->eof, f, CSV_MAX_FIELDS, nf, &used, &nl, why)
                  : csv_split_sep(s, n, rd->eof, d, f, CSV_MAX_FIELDS, nf, &used, &nl, why);
    if (st == CSV_MORE) {
      int rc;
      if (reader_full(rd)) {
        /* a record as long as the buffer: an unterminated quote or a runaway line */
        *at = (*line)++;
        size_t skip = next_line_start(rd->buf, rd->end, 0);
        if (skip < rd->end) rd->pos = skip;
        else if ((rc = reader_skip_line(rd))) return rc;
        return REC_LONG;
      }
      if ((rc = reader_fill(rd))) return rc;
      continue;
    }
    rd->pos += used;
    *at = *line;
    *line += nl;
    if (st == CSV_BAD) return REC_BAD;
    if (*nf == 1 && f[0].len == 0 && !f[0].quoted) continue; /* blank line */
    return REC_OK;
  }
}

static int import_csv(imp_run *run, imp_reader *rd, const char *path) {
  csv_field f[CSV_MAX_FIELDS];
  csv_layout h;
  int have_layout = 0, nf = 0, rc, st;
  uint64_t line = 1, at = 0, nrec = 0;
  const char *why = NULL;
  recd_fail fail;
  if (!run->o.header) {
    if ((rc = layout_numbers(run, path, &h))) return rc;
    have_layout = 1;
  }
  while ((st = csv_next(rd, &run->o.d, &line, f, &nf, &at, &why)) > 0) {
    if (!have_layout) {
      if (st == REC_LONG) {
        fatal(run, "%s:%llu: the header is longer than %zu bytes", path, (unsigned long long)at, imp_buf_size);
        return RECD_EINVAL;
      }
      if (st == REC_BAD) {
        fatal(run, "%s:%llu: %s in the header", path, (unsigned long long)at, why);
        return RECD_EINVAL;
      }
      if ((rc = layout_header(run, path, at, f, nf, &h))) return rc;
      have_layout = 1;
      continue;
    }
    run->r->lines++;
    if (st != REC_OK) {
      run->r->rejected++;
      if (st == REC_LONG)
        reject(run, path, at, "record longer than %zu bytes (an unterminated quoted field?)", imp_buf_size);
      else
        reject(run, path, at, "%s", why);
      continue;
    }
    if ((rc = run_reserve(run))) return rc;
    imp_slot *s = &run->slots[run->cur];
    recd_event *ev = &s->ev[s->nev];
    if (csv_event(run, &h, f, nf, ev, &fail)) {
      run->r->rejected++;
      reject(run, path, at, "%s", fail.message);
    } else if (ev->type == IMP_TYPE_SKIP) {
      run->r->skipped++;
    } else {
      s->nev++;
    }
    if ((++nrec & 0xffff) == 0) bar_draw(run, path, rd, run->r->lines, "events", 0);
  }
  if (st < 0) {
    fatal(run, "%s: %s", path, recd_strerror(st));
    return st;
  }
  if (!have_layout) {
    fatal(run, "%s: empty file (a CSV events file starts with a header row)", path);
    return RECD_EINVAL;
  }
  return 0;
}

/* ------------------------------------------------------------ JSON Lines --- */

static int blank(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isspace((unsigned char)s[i])) return 0;
  return 1;
}

/* A JSON Lines event under a map or a type rule: a new object with the API's
 * field names (integer ids become strings; other keys are dropped when mapped)
 * and event_type from the rule. NULL when the rule rejects (fail) or skips
 * (*skip) the line. */
static json_t *jsonl_remap(imp_run *run, json_t *obj, int *skip, recd_fail *fail) {
  const imp_opts *o = &run->o;
  *skip = 0;
  if (!json_is_object(obj)) return json_incref(obj); /* engine_parse_event words it */
  json_t *out;
  if (o->has_map) {
    out = json_object();
    for (int c = 0; c < NCOLS; c++) {
      const char *key = o->map.set[c] ? o->map.name[c] : col_names[c];
      int taken = 0; /* a key mapped to another field is not also read by its own name */
      for (int c2 = 0; c2 < NCOLS && !o->map.set[c]; c2++) taken |= o->map.set[c2] && !strcmp(o->map.name[c2], key);
      json_t *v = taken ? NULL : json_object_get(obj, key);
      if (!v) continue;
      if (c != COL_TYPE && c != COL_TS && c != COL_VALUE && json_is_integer(v)) {
        char b[32];
        snprintf(b, sizeof b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        json_object_set_new(out, col_names[c], json_string(b));
      } else {
        json_object_set(out, col_names[c], v);
      }
    }
  } else {
    out = json_copy(obj);
  }
  if (o->has_rule) {
    if (json_object_get(out, "event_type")) {
      recd_fail_set(fail, 400, "invalid_event", -1, "event_type",
                    "event_type: given in the line, and --type-rule/--event-type sets it too");
      json_decref(out);
      return NULL;
    }
    json_t *v = json_object_get(out, "value");
    int t = rule_apply(&o->rule, json_is_number(v), json_number_value(v));
    if (t == IMP_TYPE_NONE || t == IMP_TYPE_SKIP) {
      if (t == IMP_TYPE_SKIP) *skip = 1;
      else rule_fail(fail, &o->rule, json_is_number(v), json_number_value(v));
      json_decref(out);
      return NULL;
    }
    json_object_set_new(out, "event_type", json_string(run->cfg->types[t].name));
  }
  return out;
}

static int import_jsonl(imp_run *run, imp_reader *rd, const char *path) {
  uint64_t line = 0;
  const char *p;
  size_t len;
  int st, remap = run->o.has_map || run->o.has_rule;
  recd_fail fail;
  if (run->o.has_rule) snprintf(run->r->type_rule, sizeof run->r->type_rule, "%s", run->o.rule.text);
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
    json_t *obj = line_json(run, p, len, path, line, &run->r->rejected);
    if (!obj) continue;
    if (remap) {
      int skip;
      json_t *m = jsonl_remap(run, obj, &skip, &fail);
      json_decref(obj);
      if (!m) {
        if (skip) {
          run->r->skipped++;
        } else {
          run->r->rejected++;
          reject(run, path, line, "%s", fail.message);
        }
        continue;
      }
      obj = m;
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

/* ------------------------------------------------------------------ items --- */

/* Items go to the engine in batches of validated items; each keeps the JSON
 * object its strings point into until the batch is committed. */
typedef struct {
  recd_item *items;
  json_t **objs;
  size_t n, cap;
  arena a;
} item_batch;

static int items_flush(imp_run *run, item_batch *b, const char *path) {
  if (!b->n) return 0;
  engine_op op = {.kind = OP_ITEMS, .items = b->items, .nitems = b->n};
  int rc = engine_submit_wait(run->e, &op);
  for (size_t i = 0; i < b->n; i++) json_decref(b->objs[i]);
  arena_release(&b->a);
  if (!rc) run->r->items += b->n;
  b->n = 0;
  if (rc) fatal(run, "%s: the engine refused the catalog: %s", path, recd_strerror(rc));
  return rc;
}

/* b->items[b->n], read from obj (NULL: read from the text, strings in the
 * batch's arena), joins the batch, which is submitted when full. 0 or the
 * engine's error. */
static int items_push(imp_run *run, item_batch *b, json_t *obj, const char *path) {
  b->objs[b->n++] = obj; /* the item's strings point into it */
  return b->n == b->cap ? items_flush(run, b, path) : 0;
}

/* Validate the item of `line` (the batch takes over the reference to obj) and
 * push it. 0 or the engine's error. */
static int items_add(imp_run *run, item_batch *b, json_t *obj, const char *path, uint64_t line) {
  recd_fail fail;
  if (engine_parse_item(run->e, obj, NULL, -1, &b->a, &b->items[b->n], &fail)) {
    run->r->items_rejected++;
    reject(run, path, line, "%s", fail.message);
    json_decref(obj);
    return 0;
  }
  return items_push(run, b, obj, path);
}

static int items_jsonl(imp_run *run, imp_reader *rd, item_batch *b, const char *path) {
  uint64_t line = 0;
  const char *p;
  size_t len;
  int st, rc;
  while ((st = reader_line(rd, &p, &len)) > 0) {
    line++;
    if (st == 2) {
      run->r->items_rejected++;
      reject(run, path, line, "line longer than %zu bytes", imp_buf_size);
      continue;
    }
    if (blank(p, len)) continue;
    if (!engine_parse_item_text(run->e, p, len, NULL, run->now_ms, &b->a, &b->items[b->n])) { /* plain: no tree */
      if ((rc = items_push(run, b, NULL, path))) return rc;
    } else {
      json_t *obj = line_json(run, p, len, path, line, &run->r->items_rejected);
      if (!obj) continue;
      if ((rc = items_add(run, b, obj, path, line))) return rc;
    }
    if ((line & 0x3fff) == 0) bar_draw(run, path, rd, run->r->items + b->n, "items", 0);
  }
  if (st < 0) fatal(run, "%s: %s", path, recd_strerror(st));
  return st;
}

/* Windows-1252 code points of 0x80..0x9f (0: undefined there, kept as latin-1). */
static const uint16_t cp1252_high[32] = {
    0x20ac, 0,      0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160,
    0x2039, 0x0152, 0,      0x017d, 0,      0,      0x2018, 0x2019, 0x201c, 0x201d, 0x2022,
    0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0,      0x017e, 0x0178};

/* A JSON string of s[0..n): as it is when it is valid UTF-8, else read as
 * Windows-1252 (a superset of latin-1's printable characters), as MovieLens
 * 100k and 1m text is. */
static json_t *json_text(const char *s, size_t n) {
  json_t *j = json_stringn(s, n);
  if (j) return j;
  char *u = xmalloc(3 * n + 1);
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned c = (unsigned char)s[i];
    if (c >= 0x80 && c < 0xa0 && cp1252_high[c - 0x80]) c = cp1252_high[c - 0x80];
    if (c < 0x80) {
      u[o++] = (char)c;
    } else if (c < 0x800) {
      u[o++] = (char)(0xc0 | (c >> 6));
      u[o++] = (char)(0x80 | (c & 0x3f));
    } else {
      u[o++] = (char)(0xe0 | (c >> 12));
      u[o++] = (char)(0x80 | ((c >> 6) & 0x3f));
      u[o++] = (char)(0x80 | (c & 0x3f));
    }
  }
  j = json_stringn(u, o);
  free(u);
  return j;
}

static json_t *json_field(const csv_field *f) {
  char *buf = xmalloc((size_t)f->len + 1);
  json_t *j = json_text(buf, csv_unescape(f, buf));
  free(buf);
  return j;
}

static const char *const ml100k_genres[19] = {"unknown", "Action",   "Adventure", "Animation", "Children's",
                                              "Comedy",  "Crime",    "Documentary", "Drama",   "Fantasy",
                                              "Film-Noir", "Horror", "Musical",   "Mystery",   "Romance",
                                              "Sci-Fi",  "Thriller", "War",       "Western"};
static const char *const ml_movies_header[3] = {"movieId", "title", "genres"};

/* A MovieLens movie record as a catalog object {item_id, categories,
 * properties: {title}}; NULL with a reason in why. */
static json_t *ml_item(imp_format fmt, const csv_field *f, int nf, char *why, size_t whylen) {
  int want = fmt == FMT_ML_100K ? 5 + 19 : 3;
  if (nf != want) {
    snprintf(why, whylen, "expected %d fields (%s), found %d", want,
             fmt == FMT_ML_100K  ? "id|title|release date|video release date|IMDb URL|19 genre flags"
             : fmt == FMT_ML_CSV ? "movieId,title,genres"
                                 : "MovieID::Title::Genres",
             nf);
    return NULL;
  }
  json_t *cats = json_array();
  if (fmt == FMT_ML_100K) {
    for (int g = 0; g < 19; g++) {
      const csv_field *x = &f[5 + g];
      if (x->len != 1 || (x->p[0] != '0' && x->p[0] != '1')) {
        snprintf(why, whylen, "field %d (genre %s) is '%.*s', not 0 or 1", 6 + g, ml100k_genres[g],
                 (int)(x->len < 32 ? x->len : 32), x->p);
        json_decref(cats);
        return NULL;
      }
      if (g && x->p[0] == '1') json_array_append_new(cats, json_string(ml100k_genres[g]));
    }
  } else {
    char *g = xmalloc((size_t)f[2].len + 1);
    size_t gl = csv_unescape(&f[2], g);
    g[gl] = 0;
    if (strcmp(g, "(no genres listed)")) {
      for (char *p = g, *end = g + gl; p <= end;) {
        char *bar = memchr(p, '|', (size_t)(end - p));
        size_t n = bar ? (size_t)(bar - p) : (size_t)(end - p);
        const char *t = trim(p, &n);
        if (n) json_array_append_new(cats, json_text(t, n));
        p += (bar ? (size_t)(bar - p) : (size_t)(end - p)) + 1;
      }
    }
    free(g);
  }
  json_t *obj = json_object();
  json_object_set_new(obj, "item_id", json_field(&f[0]));
  if (json_array_size(cats)) json_object_set_new(obj, "categories", cats);
  else json_decref(cats);
  if (f[1].len) {
    json_t *props = json_object();
    json_object_set_new(props, "title", json_field(&f[1]));
    json_object_set_new(obj, "properties", props);
  }
  return obj;
}

static int items_movielens(imp_run *run, imp_reader *rd, imp_format fmt, item_batch *b, const char *path) {
  static const csv_dialect dat = {"::", 2, 0}, pipe = {"|", 1, 0};
  const csv_dialect *d = fmt == FMT_ML_CSV ? &csv_rfc4180 : fmt == FMT_ML_1M ? &dat : &pipe;
  csv_field f[CSV_MAX_FIELDS];
  int nf = 0, st, rc, header = fmt == FMT_ML_CSV;
  uint64_t line = 1, at = 0, n = 0;
  const char *why = NULL;
  char buf[256];
  while ((st = csv_next(rd, d, &line, f, &nf, &at, &why)) > 0) {
    if (header) {
      if (st != REC_OK || !header_is(f, nf, ml_movies_header, 3)) {
        fatal(run,
              "%s:%llu: not a MovieLens movies.csv header (movieId,title,genres); --items takes JSON Lines, "
              "movies.csv, movies.dat or u.item (see --items-format)",
              path, (unsigned long long)at);
        return RECD_EINVAL;
      }
      header = 0;
      continue;
    }
    json_t *obj = NULL;
    if (st == REC_OK) obj = ml_item(fmt, f, nf, buf, sizeof buf);
    else if (st == REC_LONG) snprintf(buf, sizeof buf, "record longer than %zu bytes", imp_buf_size);
    else snprintf(buf, sizeof buf, "%s", why);
    if (!obj) {
      run->r->items_rejected++;
      reject(run, path, at, "%s", buf);
      continue;
    }
    if ((rc = items_add(run, b, obj, path, at))) return rc;
    if ((++n & 0x3fff) == 0) bar_draw(run, path, rd, run->r->items + b->n, "items", 0);
  }
  if (st < 0) {
    fatal(run, "%s: %s", path, recd_strerror(st));
    return st;
  }
  if (header) {
    fatal(run, "%s: empty file (a movies.csv starts with the header movieId,title,genres)", path);
    return RECD_EINVAL;
  }
  return 0;
}

static int import_items(imp_run *run, const char *path, imp_format fmt) {
  imp_reader rd;
  int rc = reader_open(&rd, path);
  if (rc) {
    fatal(run, "%s: %s", path, recd_strerror(rc));
    return rc;
  }
  item_batch b = {.cap = run->batch < 10000 ? run->batch : 10000};
  b.items = xmalloc(b.cap * sizeof *b.items);
  b.objs = xmalloc(b.cap * sizeof *b.objs);
  arena_init(&b.a);
  rc = fmt == FMT_JSONL ? items_jsonl(run, &rd, &b, path) : items_movielens(run, &rd, fmt, &b, path);
  if (!rc) rc = items_flush(run, &b, path);
  for (size_t i = 0; i < b.n; i++) json_decref(b.objs[i]);
  arena_release(&b.a);
  free(b.items);
  free(b.objs);
  if (!rc) bar_draw(run, path, &rd, run->r->items, "items", 1);
  reader_close(&rd);
  return rc;
}

/* ------------------------------------------------------------- formats --- */

static int has_suffix(const char *s, const char *suf) {
  size_t n = strlen(s), m = strlen(suf);
  return n >= m && !strcasecmp(s + n - m, suf);
}

static const char *base_name(const char *path) {
  const char *b = strrchr(path, '/');
  return b ? b + 1 : path;
}

static int jsonl_name(const char *path) {
  return has_suffix(path, ".jsonl") || has_suffix(path, ".ndjson") || has_suffix(path, ".json");
}

/* The events format a file name tells, or FMT_NONE. */
static imp_format events_by_name(const char *path) {
  const char *b = base_name(path);
  if (jsonl_name(path)) return FMT_JSONL;
  if (!strcmp(b, "u.data") || (strlen(b) == 7 && b[0] == 'u' && (has_suffix(b, ".base") || has_suffix(b, ".test"))))
    return FMT_ML_100K; /* u.data and its splits u1.base .. ub.test */
  if (!strcasecmp(b, "ratings.dat")) return FMT_ML_1M;
  if (has_suffix(path, ".csv")) return FMT_CSV;
  return FMT_NONE;
}

/* The first line of a file (without a UTF-8 BOM; at most cap - 1 bytes). 0 or -errno. */
static int first_line(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  ssize_t n;
  do n = read(fd, buf, cap - 1);
  while (n < 0 && errno == EINTR);
  int rc = n < 0 ? -errno : 0;
  close(fd);
  if (rc) return rc;
  buf[n] = 0;
  char *nl = strchr(buf, '\n');
  if (nl) *nl = 0;
  if (!strncmp(buf, "\xEF\xBB\xBF", 3)) memmove(buf, buf + 3, strlen(buf + 3) + 1);
  return 0;
}

static int starts_json(const char *s) {
  while (isspace((unsigned char)*s)) s++;
  return *s == '{';
}

/* u.data: four tab-separated numbers */
static int looks_ml100k(const char *s) {
  int tabs = 0;
  for (; *s && *s != '\r'; s++) {
    if (*s == '\t') tabs++;
    else if (!isdigit((unsigned char)*s) && *s != '.') return 0;
  }
  return tabs == 3;
}

/* The events format: --format, the file name, then the first line. */
static int events_detect(const import_params *p, imp_format *fmt) {
  if (p->format) return fmt_parse(p->format, 0, fmt);
  if ((*fmt = events_by_name(p->events_path)) != FMT_NONE) return 0;
  char line[4096];
  int rc = first_line(p->events_path, line, sizeof line);
  if (rc) return rc;
  int plain = !p->map && !p->sep && !p->no_header; /* the user did not describe the file */
  if (starts_json(line)) *fmt = FMT_JSONL;
  else if (plain && strstr(line, "::") && !strchr(line, ',')) *fmt = FMT_ML_1M;
  else if (plain && looks_ml100k(line)) *fmt = FMT_ML_100K;
  else *fmt = FMT_CSV;
  return 0;
}

/* The items format: --items-format, the file name, then the first line. */
static int items_detect(const import_params *p, imp_format *fmt) {
  const char *path = p->items_path, *b = base_name(path);
  if (p->items_format) return fmt_parse(p->items_format, 1, fmt);
  if (!strcasecmp(b, "u.item")) *fmt = FMT_ML_100K;
  else if (has_suffix(path, ".dat")) *fmt = FMT_ML_1M;
  else if (has_suffix(path, ".csv")) *fmt = FMT_ML_CSV;
  else if (jsonl_name(path)) *fmt = FMT_JSONL;
  else {
    char line[4096];
    int rc = first_line(path, line, sizeof line);
    if (rc) return rc;
    size_t bars = 0;
    for (const char *s = line; *s; s++) bars += *s == '|';
    if (starts_json(line)) *fmt = FMT_JSONL;
    else if (!strncmp(line, "movieId,title,genres", 20)) *fmt = FMT_ML_CSV;
    else if (strstr(line, "::")) *fmt = FMT_ML_1M;
    else if (bars == 23) *fmt = FMT_ML_100K;
    else *fmt = FMT_JSONL;
  }
  return 0;
}

const char *import_check_params(const import_params *p, const recd_config *cfg, char *buf, size_t len) {
  imp_format f = FMT_NONE, g;
  if (p->format && fmt_parse(p->format, 0, &f)) {
    snprintf(buf, len, "--format: unknown format '%s' (csv, jsonl, movielens-csv, movielens-100k, movielens-1m)",
             p->format);
    return buf;
  }
  if (p->items_format && fmt_parse(p->items_format, 1, &g)) {
    snprintf(buf, len, "--items-format: unknown format '%s' (jsonl, movielens-csv, movielens-100k, movielens-1m)",
             p->items_format);
    return buf;
  }
  if (f == FMT_NONE && p->events_path) f = events_by_name(p->events_path);
  if (f == FMT_NONE) f = FMT_CSV; /* the content decides later; check the syntax now */
  imp_opts o;
  return opts_resolve(p, cfg, f, &o, buf, len) ? buf : NULL;
}

/* ----------------------------------------------------------------- run --- */

static int import_events(imp_run *run, const char *path) {
  imp_reader rd;
  int rc = reader_open(&rd, path);
  if (rc) {
    fatal(run, "%s: %s", path, recd_strerror(rc));
    return rc;
  }
  rc = run->o.fmt == FMT_JSONL ? import_jsonl(run, &rd, path) : import_csv(run, &rd, path);
  int rc2 = run_flush(run);
  if (!rc) rc = rc2;
  rc2 = run_drain(run);
  if (!rc) rc = rc2;
  if (rc == run->engine_rc && rc) fatal(run, "%s: the engine refused a batch: %s", path, recd_strerror(rc));
  bar_draw(run, path, &rd, run->r->lines, "events", 1);
  reader_close(&rd);
  return rc;
}

/* Formats and options before anything is written: a bad option must not
 * leave a half-imported catalog behind. */
static int run_prepare(imp_run *run, imp_format *items_fmt) {
  const import_params *p = run->p;
  char err[512];
  int rc;
  if (import_check_params(p, run->cfg, err, sizeof err)) {
    fatal(run, "%s", err);
    return RECD_EINVAL;
  }
  if (p->items_path) {
    if ((rc = items_detect(p, items_fmt))) {
      fatal(run, "%s: %s", p->items_path, recd_strerror(rc));
      return rc;
    }
    run->r->items_format = fmt_names[*items_fmt];
  }
  if (p->events_path) {
    imp_format f;
    if ((rc = events_detect(p, &f))) {
      fatal(run, "%s: %s", p->events_path, recd_strerror(rc));
      return rc;
    }
    if (opts_resolve(p, run->cfg, f, &run->o, err, sizeof err)) {
      fatal(run, "%s: %s (read as %s)", p->events_path, err, fmt_names[f]);
      return RECD_EINVAL;
    }
    run->r->format = fmt_names[f];
  }
  return 0;
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
  run.fill = p->batch > 0 ? run.batch : IMP_FIRST_BATCH;
  run.t0 = clock_mono_ns();
  run.now_ms = clock_now_ms();
  pthread_mutex_init(&run.m, NULL);
  pthread_cond_init(&run.c, NULL);
  imp_format items_fmt = FMT_NONE;
  int rc = run_prepare(&run, &items_fmt);
  if (!rc && p->items_path) rc = import_items(&run, p->items_path, items_fmt);
  if (!rc && p->events_path) {
    for (int i = 0; i < IMP_SLOTS; i++) {
      imp_slot *s = &run.slots[i];
      s->run = &run;
      s->ev = xmalloc(run.batch * sizeof *s->ev);
      s->str_cap = run.batch * 48 + 16 * IMP_EVENT_STR;
      s->str = xmalloc(s->str_cap);
    }
    rc = import_events(&run, p->events_path);
    r->accepted = run.committed;
    for (int i = 0; i < IMP_SLOTS; i++) {
      free(run.slots[i].ev);
      free(run.slots[i].str);
    }
  }
  if (!rc) { /* durability is established here, inside the timed import (see bulk_load) */
    engine_op op = {.kind = OP_SYNC};
    if ((rc = engine_submit_wait(e, &op))) fatal(&run, "syncing %s: %s", run.cfg->data, recd_strerror(rc));
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
          "usage: recd import [--data DIR] [engine options] [--items FILE] [--items-format NAME]\n"
          "                   [--format NAME] [--map FIELD=COLUMN,...] [--sep SEP] [--no-header]\n"
          "                   [--no-quotes] [--type-rule RULE | --event-type TYPE] [--batch N]\n"
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
          "                       per line, as in POST /api/v1/events. Or a MovieLens\n"
          "                       ratings file (see --format), or any delimited text or\n"
          "                       JSON Lines described by --map/--sep/--type-rule.\n"
          "  --format NAME        how to read EVENTS_FILE (default: by its name, then its\n"
          "                       first line):\n"
          "                         csv             the header format above\n"
          "                         jsonl           JSON Lines (.jsonl, .ndjson, .json)\n"
          "                         movielens-csv   ratings.csv: userId,movieId,rating,timestamp\n"
          "                                         (also recognised by that header)\n"
          "                         movielens-100k  u.data (and u1.base ...): user item rating\n"
          "                                         timestamp, tab-separated, no header\n"
          "                         movielens-1m    ratings.dat: UserID::MovieID::Rating::Timestamp\n"
          "                       MovieLens ratings become events of the raw user and movie\n"
          "                       ids with value = the rating and the type rule\n"
          "                       value>=4:like,view (change it with --type-rule/--event-type).\n"
          "  --map FIELD=COLUMN,...\n"
          "                       which column holds each event field. FIELD: user, item,\n"
          "                       type, timestamp, value, session, rec (or user_id, item_id,\n"
          "                       event_type, ..., recommendation_id). COLUMN: a header name,\n"
          "                       or a column number from 1 (needed with --no-header); for\n"
          "                       JSON Lines a key (integer ids become strings). With --map,\n"
          "                       columns named like event fields are still used and all\n"
          "                       others are ignored; it overrides a --format's mapping.\n"
          "  --sep SEP            field separator: ',' (default), tab (or '\\t'), '::', '|',\n"
          "                       ';', space, or any string of up to 7 bytes\n"
          "  --no-header          the first line is data; map columns by number\n"
          "  --no-quotes          '\"' is an ordinary character (the MovieLens u.data and\n"
          "                       .dat presets already read it so); otherwise RFC 4180\n"
          "                       quoting applies with any separator\n"
          "  --type-rule RULE     event_type when no column gives it: conditions on value,\n"
          "                       first match wins, a bare type last is the default, 'skip'\n"
          "                       drops the line (counted as skipped):\n"
          "                         value>=4:like,view       ratings of 4 and up are likes\n"
          "                         value>=4:like,skip       only those, the rest dropped\n"
          "                         value==5:purchase,value>=3:click,view\n"
          "                       operators: >=, >, <=, <, ==\n"
          "  --event-type TYPE    every event is of this type (a rule of one bare type)\n"
          "  --items FILE         catalog, loaded before events: JSON Lines of item objects;\n"
          "                       or MovieLens movies.csv (movieId,title,genres), movies.dat\n"
          "                       (MovieID::Title::Genres) or u.item (id|title|dates|URL|19\n"
          "                       genre flags): item_id = the movie id, categories = the\n"
          "                       genres, properties.title = the title; text that is not\n"
          "                       UTF-8 is read as latin-1 (Windows-1252)\n"
          "  --items-format NAME  jsonl, movielens-csv, movielens-1m or movielens-100k\n"
          "                       (default: by the file name, then its first line)\n"
          "  --batch N            events per engine submission (default: 50000,\n"
          "                       doubling up to 200000)\n"
          "  --no-progress        no progress bar (it is shown only when stderr is a terminal)\n"
          "  --max-errors N       print at most N rejected lines (default 100; 0 = all);\n"
          "                       all are counted in the summary\n"
          "  --help               this text\n"
          "\n"
          "Examples:\n"
          "  recd import --data d --items items.jsonl events.csv\n"
          "  recd import --data d --items ../shared/data/ml-latest-small/movies.csv \\\n"
          "              ../shared/data/ml-latest-small/ratings.csv\n"
          "  recd import --data d --items ml-100k/u.item ml-100k/u.data\n"
          "  recd import --data d --items ml-1m/movies.dat --type-rule 'value>=4:like,skip' \\\n"
          "              ml-1m/ratings.dat\n"
          "  recd import --data d --map user=customer,item=sku,type=action,timestamp=ts log.csv\n"
          "  recd import --data d --sep tab --no-header --map user=1,item=3,timestamp=4 \\\n"
          "              --event-type view clicks.tsv\n"
          "  recd import --data d --map user=uid,item=pid,value=stars --type-rule 'value>=4:like,view' \\\n"
          "              reviews.jsonl\n"
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

  static const char *const valued[] = {"--items", "--batch",     "--max-errors", "--format",    "--items-format",
                                       "--map",   "--sep",       "--type-rule",  "--event-type"};
  import_params p = {.progress = 1, .max_errors = 100};
  const char *event_type = NULL;
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
      if (!strcmp(a, "--no-header")) {
        p.no_header = 1;
        continue;
      }
      if (!strcmp(a, "--no-quotes")) {
        p.no_quotes = 1;
        continue;
      }
      const char *val = eq ? eq + 1 : i + 1 < argc ? argv[i + 1] : NULL;
      const char *name = NULL;
      for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++)
        if (strlen(valued[k]) == nl && !strncmp(a, valued[k], nl)) name = valued[k];
      if (!name) {
        fprintf(stderr, "recd import: unknown option '%.*s' (see recd import --help)\n", (int)nl, a);
        return 2;
      }
      if (!val) {
        fprintf(stderr, "recd import: %s needs a value\n", name);
        return 2;
      }
      if (!eq) i++;
      if (!strcmp(name, "--items")) {
        p.items_path = val;
      } else if (!strcmp(name, "--batch")) {
        if (parse_uint(val, IMP_MAX_BATCH, &v) || v < 1) {
          fprintf(stderr, "recd import: --batch must be 1 to %d, not '%s'\n", IMP_MAX_BATCH, val);
          return 2;
        }
        p.batch = (int)v;
      } else if (!strcmp(name, "--max-errors")) {
        if (parse_uint(val, 1000000000L, &v)) {
          fprintf(stderr, "recd import: --max-errors must be a count, not '%s'\n", val);
          return 2;
        }
        p.max_errors = (uint64_t)v;
      } else if (!strcmp(name, "--format")) {
        p.format = val;
      } else if (!strcmp(name, "--items-format")) {
        p.items_format = val;
      } else if (!strcmp(name, "--map")) {
        p.map = val;
      } else if (!strcmp(name, "--sep")) {
        p.sep = val;
      } else if (!strcmp(name, "--type-rule")) {
        p.type_rule = val;
      } else {
        event_type = val;
      }
      continue;
    }
    if (p.events_path) {
      fprintf(stderr, "recd import: one events file at a time ('%s' and '%s')\n", p.events_path, a);
      return 2;
    }
    p.events_path = a;
  }
  if (event_type) {
    if (p.type_rule) {
      fprintf(stderr, "recd import: give --type-rule or --event-type, not both\n");
      return 2;
    }
    if (strchr(event_type, ',') || strchr(event_type, ':')) {
      fprintf(stderr, "recd import: --event-type takes one type name, not '%s' (see --type-rule)\n", event_type);
      return 2;
    }
    p.type_rule = event_type;
  }
  if (!p.events_path && !p.items_path) {
    fprintf(stderr, "recd import: nothing to import (give an events file and/or --items; see --help)\n");
    return 2;
  }
  if (import_check_params(&p, &cfg, err, sizeof err)) {
    fprintf(stderr, "recd import: %s\n", err);
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
  /* a bulk load takes no background snapshots (each fork would copy-on-write
   * pages under the load); closing writes one, so the server starts at once */
  if (cfg.snapshot_every) cfg.snapshot_every = INT64_MAX / 4;
  cfg.snapshot_max_replay_ms = 0; /* nor for the replay bound: writes never wait for one */
  /* nor an fsync per batch (with fsync=full): import_run syncs everything once at
   * the end, before it reports success. A crash or power loss during the import
   * can lose the last batches, never corrupt the database; import again into a
   * fresh data dir. */
  cfg.bulk_load = 1;
  if (engine_open(&cfg, &e, err, sizeof err)) {
    fprintf(stderr, "recd import: %s\n", err);
    return 1;
  }
  double open_s = (double)(clock_mono_ns() - t0) / 1e9;
  import_report r;
  int rc = import_run(e, &p, &r, stderr);
  int64_t t1 = clock_mono_ns();
  engine_close(e);
  double close_s = (double)(clock_mono_ns() - t1) / 1e9;

  char ni[32], na[32], nl[32], nr[32], ns[32], rate[32];
  fmt_count(r.items, ni, sizeof ni);
  fmt_count(r.accepted, na, sizeof na);
  fmt_count(r.lines, nl, sizeof nl);
  fmt_count(r.rejected, nr, sizeof nr);
  fmt_count(r.skipped, ns, sizeof ns);
  fmt_count(r.seconds > 0 ? (uint64_t)((double)r.accepted / r.seconds) : 0, rate, sizeof rate);
  if (p.items_path)
    printf("items:  %s imported, %llu rejected (%s)\n", ni, (unsigned long long)r.items_rejected,
           r.items_format ? r.items_format : "not read");
  if (p.events_path) {
    printf("events: %s lines, %s accepted, %s rejected", nl, na, nr);
    if (r.skipped) printf(", %s skipped by the type rule", ns);
    if (r.format) printf(" (%s%s%s)", r.format, r.type_rule[0] ? "; event_type by " : "", r.type_rule);
    putchar('\n');
  }
  printf("time:   %.2f s import (%s events/s), %.2f s opening and %.2f s closing %s\n", r.seconds, rate, open_s,
         close_s, cfg.data);
  if (rc) {
    fprintf(stderr, "recd import: stopped: %s\n", recd_strerror(rc));
    return 1;
  }
  return 0;
}
