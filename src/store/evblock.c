/* evblock.c — the event log's block codec (format in evblock.h). */
#include "store/evblock.h"

#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

void evblock_enc_init(evblock_enc *b) { memset(b, 0, sizeof *b); }

void evblock_enc_reset(evblock_enc *b) {
  b->len = 0;
  b->n = 0;
  b->last_ts = 0;
}

void evblock_enc_free(evblock_enc *b) {
  free(b->buf);
  evblock_enc_init(b);
}

static unsigned char *put_varint(unsigned char *p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = (unsigned char)(v | 0x80);
    v >>= 7;
  }
  *p++ = (unsigned char)v;
  return p;
}

static unsigned char *put_string(unsigned char *p, const char *s, size_t len) {
  memcpy(p, s, len);
  p[len] = 0;
  return p + len + 1;
}

void evblock_put(evblock_enc *b, const store_event *ev) {
  size_t slen = ev->session ? strlen(ev->session) : 0, rlen = ev->rec_id ? strlen(ev->rec_id) : 0;
  size_t need = 4 * 10 + 8 + slen + 1 + rlen + 1;
  if (b->cap - b->len < need) {
    b->cap = b->cap * 2 > b->len + need ? b->cap * 2 : b->len + need + 4096;
    b->buf = xrealloc(b->buf, b->cap);
  }
  unsigned char *p = b->buf + b->len;
  uint64_t d = (uint64_t)ev->ts_ms - (uint64_t)b->last_ts; /* wraps: no overflow */
  p = put_varint(p, (d << 1) ^ (uint64_t)-(int64_t)(d >> 63));
  p = put_varint(p, ev->uid);
  p = put_varint(p, ev->iid);
  p = put_varint(p, (uint64_t)(unsigned)ev->tid << 3 | (ev->rec_id ? 4u : 0u) | (ev->session ? 2u : 0u) |
                        (ev->has_value ? 1u : 0u));
  if (ev->has_value) {
    uint64_t bits;
    memcpy(&bits, &ev->value, 8);
    for (int i = 0; i < 8; i++) *p++ = (unsigned char)(bits >> (8 * i));
  }
  if (ev->session) p = put_string(p, ev->session, slen);
  if (ev->rec_id) p = put_string(p, ev->rec_id, rlen);
  b->len = (size_t)(p - b->buf);
  b->last_ts = ev->ts_ms;
  b->n++;
}

void evblock_dec_init(evblock_dec *d, const void *data, size_t len) {
  d->p = data; /* SQLite gives an empty blob as NULL */
  d->end = data ? d->p + len : NULL;
  d->ts = 0;
}

/* 0, or -1 past the end or beyond 64 bits */
static int get_varint(evblock_dec *d, uint64_t *out) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (d->p == d->end) return -1;
    unsigned c = *d->p++;
    if (shift == 63 && c > 1) return -1;
    v |= (uint64_t)(c & 0x7f) << shift;
    if (!(c & 0x80)) {
      *out = v;
      return 0;
    }
  }
  return -1;
}

static int get_string(evblock_dec *d, const char **out) {
  const unsigned char *z = memchr(d->p, 0, (size_t)(d->end - d->p));
  if (!z) return -1;
  *out = (const char *)d->p;
  d->p = z + 1;
  return 0;
}

int evblock_next(evblock_dec *d, store_event *ev) {
  if (d->p == d->end) return 0;
  uint64_t zz, uid, iid, head;
  if (get_varint(d, &zz) || get_varint(d, &uid) || get_varint(d, &iid) || get_varint(d, &head)) return -1;
  if (uid > UINT32_MAX || iid > UINT32_MAX || head >> 3 > INT32_MAX) return -1;
  uint64_t delta = (zz >> 1) ^ (uint64_t)-(int64_t)(zz & 1);
  d->ts = (int64_t)((uint64_t)d->ts + delta);
  ev->ts_ms = d->ts;
  ev->uid = (uint32_t)uid;
  ev->iid = (uint32_t)iid;
  ev->tid = (int)(head >> 3);
  ev->has_value = (int)(head & 1);
  ev->value = 0;
  ev->session = ev->rec_id = NULL;
  if (head & 1) {
    if (d->end - d->p < 8) return -1;
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++) bits |= (uint64_t)d->p[i] << (8 * i);
    memcpy(&ev->value, &bits, 8);
    d->p += 8;
  }
  if ((head & 2) && get_string(d, &ev->session)) return -1;
  if ((head & 4) && get_string(d, &ev->rec_id)) return -1;
  return 1;
}
