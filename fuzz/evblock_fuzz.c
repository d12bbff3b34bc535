/* evblock_fuzz.c — libFuzzer driver for the event log's block decoder
 * (src/store/evblock.c), which reads rows of the data dir's event_blocks.
 *
 * The input is one block's bytes, decoded from an exact-size copy (a read past
 * the end is caught by ASan). Whatever it yields before its end or its first
 * error is encoded again: that block decodes to the same events, field by field
 * (value compared bit for bit), and ends cleanly. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "store/evblock.h"

static int same_str(const char *a, const char *b) { return (!a && !b) || (a && b && !strcmp(a, b)); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  unsigned char *copy = malloc(size ? size : 1);
  if (!copy) return 0;
  memcpy(copy, data, size);
  evblock_dec d;
  evblock_dec_init(&d, copy, size);
  evblock_enc b;
  evblock_enc_init(&b);
  store_event ev;
  int r;
  while ((r = evblock_next(&d, &ev)) == 1) {
    FUZZ_CHECK(d.p <= d.end, "decoder past its end");
    evblock_put(&b, &ev);
  }
  FUZZ_CHECK(r == 0 || r == -1, "evblock_next returned %d", r);

  /* decode the input and the re-encoding side by side */
  evblock_dec a, c;
  evblock_dec_init(&a, copy, size);
  evblock_dec_init(&c, b.buf, b.len);
  for (uint32_t i = 0; i < b.n; i++) {
    store_event x, y;
    FUZZ_CHECK(evblock_next(&a, &x) == 1, "input event %u gone", i);
    FUZZ_CHECK(evblock_next(&c, &y) == 1, "re-encoded event %u does not decode", i);
    FUZZ_CHECK(x.ts_ms == y.ts_ms && x.uid == y.uid && x.iid == y.iid && x.tid == y.tid &&
                   x.has_value == y.has_value && !memcmp(&x.value, &y.value, sizeof x.value) &&
                   same_str(x.session, y.session) && same_str(x.rec_id, y.rec_id),
               "event %u differs after re-encoding", i);
  }
  FUZZ_CHECK(evblock_next(&c, &ev) == 0, "re-encoded block does not end cleanly");
  evblock_enc_free(&b);
  free(copy);
  return 0;
}
