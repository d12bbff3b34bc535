/* model_fuzz.c — libFuzzer driver for the model file readers: ials_load,
 * ease_load and ranker_load. The input is written to a file and given to each
 * reader. Any input must be refused with a message or loaded; never a crash,
 * a sanitizer report, or a "loaded" model without a message on refusal. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_util.h"
#include "model/ease.h"
#include "model/ials.h"
#include "model/ranker.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_write_file("model.bin", data, size);
  char err[512];
  err[0] = 0;
  ials_model *im = ials_load(path, err, sizeof err);
  FUZZ_CHECK(im || err[0], "ials_load refused without a message");
  ials_free(im);
  err[0] = 0;
  ease_model *em = ease_load(path, err, sizeof err);
  FUZZ_CHECK(em || err[0], "ease_load refused without a message");
  ease_free(em);
  err[0] = 0;
  ranker *rk = ranker_load(path, err, sizeof err);
  FUZZ_CHECK(rk || err[0], "ranker_load refused without a message");
  ranker_free(rk);
  return 0;
}
