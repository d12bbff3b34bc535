#include "util/err.h"

#include <string.h>

const char *recd_strerror(int err) {
  switch (err) {
#define X(name, msg) case RECD_E##name: return msg;
    RECD_ERRNO_MAP(X)
#undef X
    default: break;
  }
  if (err < 0 && err > -1000) return strerror(-err);
  return "unknown error";
}

const char *recd_errname(int err) {
  switch (err) {
#define X(name, msg) case RECD_E##name: return "RECD_E" #name;
    RECD_ERRNO_MAP(X)
#undef X
    default: break;
  }
  if (err < 0 && err > -1000) return "ERRNO";
  return "UNKNOWN";
}
