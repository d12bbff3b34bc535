/* userprof.c — per-user live features.
 *
 * Invariants:
 *  1. ring holds the last min(total, recent_cap) events, newest at
 *     ring[(ring_head - 1) mod ring_cap]; it grows by doubling up to recent_cap.
 *  2. aff[] scores are decayed to aff_t, the latest event time seen; an event
 *     older than aff_t adds its weight pre-decayed instead of moving aff_t.
 *  3. seen maps every item the user touched to the set of types used on it.
 */
#include "feature/userprof.h"

#include <stdlib.h>
#include <string.h>

#include "util/decay.h"
#include "util/mem.h"

userprof *userprof_new(int ntypes) {
  userprof *p = xcalloc(1, sizeof *p + (size_t)ntypes * sizeof(uint32_t));
  u32map_init(&p->seen);
  p->first_ts = INT64_MAX;
  p->last_ts = INT64_MIN;
  p->ring_sorted = 1;
  return p;
}

void userprof_free(userprof *p) {
  if (!p) return;
  free(p->ring);
  free(p->aff);
  userprof_set_session(p, NULL, 0);
  u32map_release(&p->seen);
  free(p);
}

void userprof_ring_check(userprof *p) {
  p->ring_sorted = 1;
  for (int i = 1; i < p->ring_len; i++)
    if (userprof_recent(p, i - 1)->ts < userprof_recent(p, i)->ts) p->ring_sorted = 0;
}

static void ring_push(userprof *p, int cap, uint32_t iid, int type, int64_t ts) {
  if (p->ring_len && ts < userprof_recent(p, 0)->ts) p->ring_sorted = 0;
  if (p->ring_len == p->ring_cap && p->ring_cap < cap) {
    /* grow: unroll into a bigger buffer, oldest first */
    uint16_t ncap = p->ring_cap ? (uint16_t)(p->ring_cap * 2) : 4;
    if (ncap > cap) ncap = (uint16_t)cap;
    recent_ev *nr = xmalloc(ncap * sizeof *nr);
    for (int i = 0; i < p->ring_len; i++) nr[i] = p->ring[(p->ring_head + i) % p->ring_cap];
    free(p->ring);
    p->ring = nr;
    p->ring_head = p->ring_len % ncap;
    p->ring_cap = ncap;
  }
  p->ring[p->ring_head] = (recent_ev){.ts = ts, .iid = iid, .type = (uint16_t)type};
  p->ring_head = (uint16_t)((p->ring_head + 1) % p->ring_cap);
  if (p->ring_len < p->ring_cap) p->ring_len++;
}

/* the current session id is xmalloc'ed (too long for sess_in) */
static int session_on_heap(const userprof *p) { return p->session && p->session != p->sess_in; }

/* the newest n ring entries, 4 to a cache line, walking back from the head */
static void prefetch_recent(const userprof *p, int n) {
  for (int i = 0; i < p->ring_len && i < n; i += 4) __builtin_prefetch(userprof_recent(p, i));
}

void userprof_prefetch_read(const userprof *p, int recent) {
  prefetch_recent(p, recent);
  if (p->aff) __builtin_prefetch(p->aff);
  if (p->seen.cap && p->seen.cap <= 64) /* a small set whole (4 lines at most each) */
    for (uint32_t i = 0; i < p->seen.cap; i += 16) {
      __builtin_prefetch(&p->seen.keys[i]);
      __builtin_prefetch(&p->seen.vals[i]);
    }
}

void userprof_prefetch(const userprof *p, uint32_t iid) {
  prefetch_recent(p, 12);
  if (p->seen.cap) {
    uint32_t s = u32_hash(iid) & (p->seen.cap - 1);
    __builtin_prefetch(&p->seen.keys[s]);
    __builtin_prefetch(&p->seen.vals[s]);
  }
  if (p->aff) __builtin_prefetch(p->aff);
  if (session_on_heap(p)) __builtin_prefetch(p->session);
}

void userprof_set_session(userprof *p, const char *s, size_t len) {
  if (session_on_heap(p)) free(p->session);
  if (!s) {
    p->session = NULL;
    return;
  }
  p->session = len < sizeof p->sess_in ? p->sess_in : xmalloc(len + 1);
  memcpy(p->session, s, len);
  p->session[len] = 0;
}

static void aff_add(userprof *p, const userprof_params *pp, const uint32_t *cats, int ncats, float w, int64_t ts) {
  if (ncats <= 0) return;
  double share = w / ncats, f = 1.0;
  if (ts > p->aff_t) {
    double d = decay_factor(ts - p->aff_t, pp->affinity_half_life_ms);
    for (int i = 0; i < p->naff; i++) p->aff[i].score = (float)(p->aff[i].score * d);
    p->aff_t = ts;
  } else {
    f = decay_factor(p->aff_t - ts, pp->affinity_half_life_ms);
  }
  for (int c = 0; c < ncats; c++) {
    int i;
    for (i = 0; i < p->naff; i++)
      if (p->aff[i].cat == cats[c]) break;
    if (i == p->naff) {
      if (p->naff < USERPROF_MAX_AFF) {
        if (p->naff == p->aff_cap) {
          p->aff_cap = (uint8_t)(p->aff_cap ? p->aff_cap * 2 : 2);
          p->aff = xrealloc(p->aff, p->aff_cap * sizeof *p->aff);
        }
        p->naff++;
      } else { /* replace the weakest */
        i = 0;
        for (int k = 1; k < p->naff; k++)
          if (p->aff[k].score < p->aff[i].score) i = k;
      }
      p->aff[i].cat = cats[c];
      p->aff[i].score = 0;
    }
    p->aff[i].score += (float)(share * f);
  }
}

int userprof_apply(userprof *p, const userprof_params *pp, uint32_t iid, int type, float weight,
                   int64_t ts, const uint32_t *cats, int ncats, const char *session) {
  p->counts[type]++;
  p->total++;
  if (ts < p->first_ts) p->first_ts = ts;
  if (ts > p->last_ts) p->last_ts = ts;
  decay_add(&p->eng_score, &p->eng_t, weight, ts, pp->engagement_half_life_ms);
  ring_push(p, pp->recent_cap, iid, type, ts);
  aff_add(p, pp, cats, ncats, weight, ts);

  int created;
  uint32_t *mask = u32map_put(&p->seen, iid, 0, &created);
  uint32_t bit = 1u << (type & 31);
  int fresh = !(*mask & bit);
  *mask |= bit;

  /* session: explicit ids switch sessions; without one, a 30-minute gap does */
  int newsess;
  if (session) newsess = !p->session || strcmp(p->session, session);
  else newsess = !p->sessions || ts - p->session_last > USERPROF_SESSION_GAP_MS || p->session;
  if (newsess) {
    userprof_set_session(p, session, session ? strlen(session) : 0);
    p->session_start = ts;
    p->session_events = 0;
    p->sessions++;
  }
  p->session_events++;
  if (ts > p->session_last || newsess) p->session_last = ts;
  return fresh;
}

double userprof_affinity(const userprof *p, int i, int64_t now, int64_t half_life_ms) {
  return decay_read(p->aff[i].score, p->aff_t, now, half_life_ms);
}

userprof_mem userprof_memory(const userprof *p, int ntypes) {
  return (userprof_mem){.profile = sizeof *p + (size_t)ntypes * 4 + (size_t)p->aff_cap * sizeof(aff_ent) +
                                   (session_on_heap(p) ? strlen(p->session) + 1 : 0),
                        .ring = (size_t)p->ring_cap * sizeof(recent_ev),
                        .seen = u32map_memory(&p->seen)};
}
