/* evblock.h — the event log's block codec: a run of consecutive events as one
 * compact byte string (one row of the store's event_blocks table).
 *
 * An event is, in order:
 *   ts      zigzag varint of ts_ms minus the previous event's (0 before the first)
 *   uid     varint (< 2^32)
 *   iid     varint (< 2^32)
 *   head    varint: tid << 3 | rec_id? << 2 | session? << 1 | value?
 *   value   8 bytes, the double's bits little-endian (if value?)
 *   session bytes then a NUL (if session?)
 *   rec_id  bytes then a NUL (if rec_id?)
 * Varints are LEB128 (7 bits per byte, low first, at most 10 bytes). A block
 * holds no seq: its row's seq0 is the first event's, and the others follow by
 * one. Events from the generator take ~23 bytes each; as rows of their own
 * they took ~41 and cost SQLite ~0.5 µs of CPU each.
 *
 * The decoder trusts nothing: every read is bounds-checked, and a block that
 * ends mid-event, overlong varints, ids past 32 bits or strings without their
 * NUL make it fail (fuzz/evblock_fuzz.c). */
#ifndef RECD_STORE_EVBLOCK_H
#define RECD_STORE_EVBLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

typedef struct {
  unsigned char *buf;
  size_t len, cap;
  uint32_t n;       /* events in the block */
  int64_t last_ts;  /* the last event's ts_ms (deltas are against it) */
} evblock_enc;

void evblock_enc_init(evblock_enc *b);
void evblock_enc_reset(evblock_enc *b); /* empty, keeping the buffer */
void evblock_enc_free(evblock_enc *b);
/* Append one event (its seq is not stored). */
void evblock_put(evblock_enc *b, const store_event *ev);

typedef struct {
  const unsigned char *p, *end;
  int64_t ts;
} evblock_dec;

void evblock_dec_init(evblock_dec *d, const void *data, size_t len);
/* The next event into *ev (all but seq; its strings point into the block):
 * 1, or 0 at the block's end, or -1 if the block is malformed. */
int evblock_next(evblock_dec *d, store_event *ev);

#endif
