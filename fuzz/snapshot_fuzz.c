/* snapshot_fuzz.c — libFuzzer driver for the snapshot loader
 * (engine__snapshot_load, src/engine/snapshot.c), the reader of DATA/state.snap.
 *
 * A file that fails its hash never reaches the record parser, so the driver
 * makes the input the records themselves: byte 0 and byte 1 are the users and
 * items the header claims (at most the SNAP_IDS of each that the data dir
 * holds), the rest are the records. It wraps them in a valid header (this
 * engine's fingerprint) and trailer (their hash) and loads them into an
 * engine opened on a small data dir, whose live state is emptied first as it
 * is at a real start (no profiles, no co-visitation lists). The skip that finds
 * where the load's second thread starts reads the same bytes, and stops at the
 * same place, or the load refuses the file.
 *
 * Any input must load (1) or be refused (0, or < 0 once state was touched)
 * with a reason; never a crash or a sanitizer report (leaks included: the
 * engine is freed after each input). A loaded state is written again as a
 * snapshot. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_int.h"
#include "fuzz_util.h"
#include "util/fileio.h"

#define SNAP_IDS 8

static recd_config snap_cfg;

/* the data dir: SNAP_IDS users and items, interned by one event each */
static void snap_setup(void) {
  static int done;
  if (done) return;
  done = 1;
  char err[1024];
  fuzz_engine_config(&snap_cfg, "snapdata");
  snap_cfg.snapshot_every = 0; /* nothing written at close; the driver loads by hand */
  recd_engine *e;
  if (engine_open(&snap_cfg, &e, err, sizeof err)) FUZZ_SETUP_FAIL("engine_open: %s", err);
  char uid[SNAP_IDS][16], iid[SNAP_IDS][16];
  recd_event ev[SNAP_IDS];
  for (int i = 0; i < SNAP_IDS; i++) {
    snprintf(uid[i], sizeof uid[i], "u%d", i);
    snprintf(iid[i], sizeof iid[i], "i%d", i);
    ev[i] = (recd_event){.user_id = uid[i], .item_id = iid[i], .type = i % 3, .ts_ms = 1700000000000LL + i};
  }
  engine_op op = {.kind = OP_EVENTS, .events = ev, .nevents = SNAP_IDS};
  if (engine_submit_wait(e, &op)) FUZZ_SETUP_FAIL("the setup events were refused");
  engine_free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  snap_setup();
  recd_engine *e;
  char err[1024];
  if (engine_open(&snap_cfg, &e, err, sizeof err)) FUZZ_SETUP_FAIL("engine_open: %s", err);
  /* the live state a start has before its snapshot: item statistics (from the
   * catalog), no profiles, no lists */
  for (uint32_t i = 0; i < SNAP_IDS; i++) {
    userprof_free(ptrvec_get(&e->uprof, i));
    ptrvec_set(&e->uprof, i, NULL);
    covis_free(ptrvec_get(&e->covis, i));
    ptrvec_set(&e->covis, i, NULL);
  }
  /* header (snapshot.c: magic, seq, fingerprint, clock, users, items, events,
   * events by type), records (padded to 8), hash, end */
  enum { HEAD = 8 + 6 * 8 + RECD_MAX_TYPES * 8 };
  size_t nrec = size - 2, pad = (8 - (HEAD + nrec) % 8) % 8, n = HEAD + nrec + pad + 16;
  unsigned char *f = calloc(1, n);
  if (!f) FUZZ_SETUP_FAIL("out of memory");
  uint64_t head[6] = {0, engine__fingerprint(e), 1700000000000ULL, data[0] % (SNAP_IDS + 1),
                      data[1] % (SNAP_IDS + 1), SNAP_IDS};
  memcpy(f, "RECDSNP1", 8);
  memcpy(f + 8, head, sizeof head);
  memcpy(f + HEAD, data + 2, nrec);
  uint64_t h = fileio_hash(0x5eed, f, n - 16);
  memcpy(f + n - 16, &h, 8);
  memcpy(f + n - 8, "RECDEND1", 8);
  fuzz_write_file("snapdata/state.snap", f, n);
  free(f);

  uint64_t seq = 12345;
  char why[256] = "";
  int rc = engine__snapshot_load(e, &seq, why, sizeof why);
  FUZZ_CHECK(rc == 1 || why[0], "refused without a reason (rc %d)", rc);
  FUZZ_CHECK(rc == 1 ? seq == 0 : seq == 12345, "the event to replay from was %s (rc %d, seq %llu)",
             rc == 1 ? "not the snapshot's" : "changed by a refusal", rc, (unsigned long long)seq);
  if (rc == 1) FUZZ_CHECK(engine__snapshot_save(e) == 0, "a loaded state could not be written again");
  engine_free(e);
  return 0;
}
