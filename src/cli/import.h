/* import.h — bulk import of a catalog and an event history into an open engine
 * (`recd import`).
 *
 * Events files. One mechanism, a delimited-text reader with a column mapping;
 * the MovieLens formats are presets of it (import_params.format):
 *   csv          (the default) RFC 4180 (quoted fields, "" for a quote, CRLF or
 *                LF) with a header row naming the columns in any order: user_id,
 *                item_id, event_type (required), timestamp, value, session_id,
 *                recommendation_id (optional; an empty field means absent).
 *                timestamp is unix seconds (fractions allowed) or RFC 3339;
 *                absent means the time of import. Without a map any other column
 *                is an error that stops the import.
 *   jsonl        one event object per line in the HTTP API's schema (validated
 *                by engine_parse_event); `.jsonl`, `.ndjson` and `.json`.
 *   movielens-csv   ratings.csv: header userId,movieId,rating,timestamp
 *   movielens-100k  u.data: user item rating timestamp, tab-separated, no header
 *   movielens-1m    ratings.dat: UserID::MovieID::Rating::Timestamp, no header
 *                The MovieLens presets map the ids to user_id/item_id as they
 *                are, the rating to value, and derive event_type by the rule
 *                "value>=4:like,view".
 *   With format NULL: by file name (.jsonl/.ndjson/.json; u.data, u1.base, ...;
 *   ratings.dat; .csv), then by content (a first line starting with '{' is JSON
 *   Lines; a CSV header userId,movieId,rating,timestamp is movielens-csv).
 *
 *   map          "FIELD=COLUMN,..."; FIELD is user, item, type, timestamp, value,
 *                session or rec (or the API names user_id, ...); COLUMN a header
 *                name or a 1-based column number (JSON Lines: a key). With a map
 *                a column named like an event field is still used for it unless
 *                the map says otherwise, and every other column is ignored.
 *                A preset's map comes first; these entries override it.
 *   sep          field separator, 1..7 bytes ("tab" or "\t" for a tab); quoting
 *                applies unless no_quotes (the headerless presets set no_quotes).
 *   type_rule    event_type when no type column is mapped: "value>=4:like,view"
 *                (conditions on value with >=, >, <=, <, ==; first match wins; a
 *                bare type last is the default; "skip" drops the line, counted in
 *                import_report.skipped). A single type ("view") is a constant.
 *
 * Items files (import_params.items_format, or by name/extension and content):
 *   jsonl           one catalog object per line (engine_parse_item)
 *   movielens-csv   movies.csv: movieId,title,genres (genres '|'-separated)
 *   movielens-1m    movies.dat: MovieID::Title::Genres
 *   movielens-100k  u.item: id|title|release date|video release date|URL|19 flags
 *   MovieLens items become {item_id: the movie id, categories: the genres (none
 *   for "(no genres listed)" and u.item's "unknown"), properties: {title}}. Text
 *   that is not valid UTF-8 is read as Windows-1252/latin-1 and converted.
 *
 * Validation is the HTTP API's: ids of 1..256 bytes without control characters,
 * a known event type, a time from 1970 to at most 24 hours ahead of the import,
 * a finite value. A record that fails it is reported on `errout` as
 *   "events.csv:123: event_type: unknown type 'clik'"
 * (the line where the record starts), counted as rejected and skipped; the import
 * goes on. An unreadable file, a bad header, an unusable option or a failed
 * engine write stops it.
 *
 * Events go to the engine in OP_EVENTS batches of `batch` events; two batches are
 * in flight so parsing overlaps the writer's commit. The CSV parser does not
 * allocate per line. Thread rules: one import_run per engine at a time is the
 * intended use; import_run itself only calls thread-safe engine functions.
 * Strings in import_params are borrowed for the duration of the call. */
#ifndef RECD_CLI_IMPORT_H
#define RECD_CLI_IMPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/engine.h"

typedef struct {
  const char *events_path;   /* may be NULL when items_path is set */
  const char *items_path;    /* NULL: no catalog */
  const char *format;        /* events format name (above); NULL: detect */
  const char *items_format;  /* items format name (above); NULL: detect */
  const char *map;           /* column mapping "user=userId,item=2"; NULL: none */
  const char *sep;           /* field separator; NULL: the format's (",") */
  int no_header;             /* 1: the CSV has no header row (map by number) */
  int no_quotes;             /* 1: '"' is an ordinary character */
  const char *type_rule;     /* NULL: the format's rule, or an event_type column */
  int batch;                 /* events (or items) per engine submission; <= 0: 50,000
                              * at first, doubling with each batch up to 200,000 */
  int progress;              /* draw a progress bar on stderr (caller checks isatty) */
  uint64_t max_errors;       /* report at most this many rejected lines; 0 = all */
} import_params;

typedef struct {
  uint64_t lines;            /* event records read (header and blank lines excluded) */
  uint64_t accepted;         /* events committed by the engine */
  uint64_t rejected;         /* event records that failed validation */
  uint64_t skipped;          /* event records the type rule mapped to "skip" */
  uint64_t items;            /* catalog items committed */
  uint64_t items_rejected;   /* items records that failed validation */
  double seconds;            /* wall time of import_run */
  const char *format;        /* events format used (static string), NULL if none */
  const char *items_format;  /* items format used (static string), NULL if none */
  char type_rule[160];       /* the rule that set event types, "" if a column did */
} import_report;

/* Check the option syntax of `p` (format names, map, separator, type rule and
 * its types in `cfg`) without touching the files. Returns NULL when usable, or
 * `buf` holding a one-line message. */
const char *import_check_params(const import_params *p, const recd_config *cfg, char *buf, size_t len);

/* Import p->items_path then p->events_path into `e`. `r` is filled even on
 * failure (with what was committed). Rejected lines and fatal problems are
 * described on `errout` (may be NULL). Returns 0 when both files were read to
 * the end (rejected lines do not make it fail), RECD_EINVAL for an unusable
 * file or option (bad header, unknown format, see import_check_params), -errno
 * for I/O errors, or the engine's error code if a submission failed. */
int import_run(recd_engine *e, const import_params *p, import_report *r, FILE *errout);

#endif
