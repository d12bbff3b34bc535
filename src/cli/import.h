/* import.h — bulk import of a catalog and an event history into an open engine
 * (`recd import`).
 *
 * Formats:
 *   items file   JSON Lines, one catalog object per line in the HTTP API's item
 *                schema (validated by engine_parse_item); loaded before events.
 *   events file  either
 *     .csv       RFC 4180 (quoted fields, "" for a quote, CRLF or LF) with a header
 *                row naming the columns in any order: user_id, item_id, event_type
 *                (required), timestamp, value, session_id, recommendation_id
 *                (optional; an empty field means absent). timestamp is unix seconds
 *                (fractions allowed) or RFC 3339; absent means the time of import.
 *                Any other column is an error that stops the import.
 *     .jsonl     one event object per line in the HTTP API's schema
 *                (validated by engine_parse_event); `.ndjson` and `.json` too.
 *   The format is chosen by extension; otherwise a file starting with '{' is JSON
 *   Lines and anything else CSV. The validation rules are the HTTP API's: ids of
 *   1..256 bytes without control characters, a known event type, a time from 1970
 *   to at most 24 hours ahead of the import, a finite value.
 *
 * A line that fails validation is reported on `errout` as
 *   "events.csv:123: event_type: unknown type 'clik'"
 * (the line where the record starts), counted as rejected and skipped; the import
 * goes on. An unreadable file, a bad CSV header or a failed engine write stops it.
 *
 * Events go to the engine in OP_EVENTS batches of `batch` events; two batches are
 * in flight so parsing overlaps the writer's commit. The CSV parser does not
 * allocate per line. Thread rules: one import_run per engine at a time is the
 * intended use; import_run itself only calls thread-safe engine functions. */
#ifndef RECD_CLI_IMPORT_H
#define RECD_CLI_IMPORT_H

#include <stdint.h>
#include <stdio.h>

#include "engine/engine.h"

typedef struct {
  const char *events_path;   /* may be NULL when items_path is set */
  const char *items_path;    /* NULL: no catalog */
  int batch;                 /* events (or items) per engine submission; <= 0: 50,000 */
  int progress;              /* draw a progress bar on stderr (caller checks isatty) */
  uint64_t max_errors;       /* report at most this many rejected lines; 0 = all */
} import_params;

typedef struct {
  uint64_t lines;            /* event records read (header and blank lines excluded) */
  uint64_t accepted;         /* events committed by the engine */
  uint64_t rejected;         /* event records that failed validation */
  uint64_t items;            /* catalog items committed */
  uint64_t items_rejected;   /* items lines that failed validation */
  double seconds;            /* wall time of import_run */
} import_report;

/* Import p->items_path then p->events_path into `e`. `r` is filled even on
 * failure (with what was committed). Rejected lines and fatal problems are
 * described on `errout` (may be NULL). Returns 0 when both files were read to
 * the end (rejected lines do not make it fail), RECD_EINVAL for an unusable
 * file (bad CSV header, unknown format), -errno for I/O errors, or the engine's
 * error code if a submission failed. */
int import_run(recd_engine *e, const import_params *p, import_report *r, FILE *errout);

#endif
