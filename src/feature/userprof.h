/* userprof.h — one user's live features, updated on every event.
 *
 * Not thread-safe: the engine guards each profile with its user stripe lock.
 * Only the engine's writer thread mutates profiles; readers copy what they
 * need under the lock. */
#ifndef RECD_FEATURE_USERPROF_H
#define RECD_FEATURE_USERPROF_H

#include <stddef.h>
#include <stdint.h>

#include "util/u32map.h"

#define USERPROF_MAX_AFF 32     /* categories tracked per user */
#define USERPROF_SESSION_GAP_MS (30 * 60 * 1000)

typedef struct {
  int64_t affinity_half_life_ms;
  int64_t engagement_half_life_ms;
  int recent_cap;               /* last N items kept */
  int click_type, purchase_type; /* type indexes used by engagement rate and exclusion */
} userprof_params;

typedef struct {
  int64_t ts;
  uint32_t iid;
  uint16_t type;
} recent_ev;

typedef struct {
  uint32_t cat;
  float score;                  /* as of aff_t */
} aff_ent;

typedef struct userprof {
  int64_t first_ts, last_ts;
  int64_t eng_t, aff_t;
  float eng_score;
  uint32_t total;
  uint16_t ring_cap, ring_len, ring_head; /* ring_head: next write slot */
  uint8_t naff, aff_cap;
  uint8_t ring_sorted;          /* 1: the ring's times never decrease from oldest to newest
                                 * (so a newest-first walk may stop at the first entry older
                                 * than a bound); derived, recomputed by userprof_ring_check */
  recent_ev *ring;
  aff_ent *aff;                 /* grows 2, 4, ... USERPROF_MAX_AFF (most users have few) */
  u32map seen;                  /* iid -> bitmask of event types (bit 31: any) */
  char *session;                /* current session id or NULL: sess_in when it fits
                                 * there (generated ids do), else xmalloc'ed */
  int64_t session_start, session_last;
  uint32_t session_events, sessions;
  char sess_in[16];             /* a short session id, in the line the event touches
                                 * anyway: no allocation, no miss to compare it */
  uint32_t counts[];            /* per event type */
} userprof;

userprof *userprof_new(int ntypes);
void userprof_free(userprof *p);

/* Apply one event. `cats` are the item's category ids. Returns 1 if this
 * (item, type) pair is new for the user, else 0. */
int userprof_apply(userprof *p, const userprof_params *pp, uint32_t iid, int type, float weight,
                   int64_t ts, const uint32_t *cats, int ncats, const char *session);

/* Make the current session id s[0..len) (not NUL-terminated), or none if s is
 * NULL; used by userprof_apply and the snapshot load. */
void userprof_set_session(userprof *p, const char *s, size_t len);
/* Recompute ring_sorted after the ring was filled in directly (snapshot load). */
void userprof_ring_check(userprof *p);
/* A hint that userprof_apply(p, ..., iid, ...) and userprof_recent() come
 * soon: fetches the newest ring entries and iid's slot of the seen set. */
void userprof_prefetch(const userprof *p, uint32_t iid);
/* A hint that a reader walks the newest `recent` ring entries, the category
 * affinities and the seen set soon (recommend.c): fetched at once instead of
 * one miss after another. The seen set only when small. */
void userprof_prefetch_read(const userprof *p, int recent);
/* i-th most recent entry (0 = newest); NULL past the end. Inline: the writer
 * walks the ring for every event. */
static inline const recent_ev *userprof_recent(const userprof *p, int i) {
  if (i < 0 || i >= p->ring_len) return NULL;
  int idx = (int)p->ring_head - 1 - i; /* >= -ring_cap, as i < ring_len <= ring_cap */
  if (idx < 0) idx += p->ring_cap;
  return &p->ring[idx];
}
/* category affinity value at `now` */
double userprof_affinity(const userprof *p, int i, int64_t now, int64_t half_life_ms);
/* the bytes p holds, in three parts: the profile itself (counters, category
 * affinities, a long session id), its recent-item ring, its seen set */
typedef struct {
  size_t profile, ring, seen;
} userprof_mem;
userprof_mem userprof_memory(const userprof *p, int ntypes);

#endif
