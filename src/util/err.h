/* err.h — the one error convention.
 *
 * Functions return int: 0 on success, a negative RECD_E* code on failure.
 * System errors pass through as -errno (always < RECD__ERRBASE is false:
 * our codes live below -1000 so they never collide with errno values).
 * recd_strerror()/recd_errname() accept both kinds. Thread-safe. */
#ifndef RECD_UTIL_ERR_H
#define RECD_UTIL_ERR_H

#define RECD_ERRNO_MAP(X)                                         \
  X(INVAL,    "invalid argument")                                 \
  X(NOMEM,    "out of memory")                                    \
  X(NOTFOUND, "not found")                                        \
  X(EXISTS,   "already exists")                                   \
  X(TOOBIG,   "too large")                                        \
  X(IO,       "I/O error")                                        \
  X(CORRUPT,  "data is corrupt")                                  \
  X(STORE,    "storage engine error")                             \
  X(FATAL,    "store is in a failed state after an I/O error")    \
  X(CLOSED,   "engine is shutting down")                          \
  X(FULL,     "queue is full")                                    \
  X(PARSE,    "parse error")                                      \
  X(CANCELED, "stopped early")

enum {
  RECD__ERRBASE = -1000,
#define X(name, msg) RECD_E##name##__SLOT,
  RECD_ERRNO_MAP(X)
#undef X
};

#define X(name, msg) RECD_E##name = -(RECD_E##name##__SLOT - RECD__ERRBASE) - 1000,
enum { RECD_ERRNO_MAP(X) RECD__ERRLAST = 0 };
#undef X

const char *recd_strerror(int err);
const char *recd_errname(int err);

#endif
