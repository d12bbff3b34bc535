/* decay.h — exponentially decayed quantities with a half-life.
 * A decayed value is stored with the time it refers to; reading it at `now`
 * multiplies by 2^-((now - t) / half_life). Events may arrive out of order:
 * an add at a time before the reference decays the added amount instead. */
#ifndef RECD_UTIL_DECAY_H
#define RECD_UTIL_DECAY_H

#include <math.h>
#include <stdint.h>

static inline double decay_factor(int64_t dt_ms, int64_t half_life_ms) {
  if (dt_ms <= 0) return 1.0;
  return exp2(-(double)dt_ms / (double)half_life_ms);
}

/* value at `now` of v stored as of time t */
static inline double decay_read(double v, int64_t t, int64_t now, int64_t half_life_ms) {
  return now >= t ? v * decay_factor(now - t, half_life_ms) : v;
}

/* add w happening at ts into (v, t) */
static inline void decay_add(float *v, int64_t *t, double w, int64_t ts, int64_t half_life_ms) {
  if (ts >= *t) {
    *v = (float)((double)*v * decay_factor(ts - *t, half_life_ms) + w);
    *t = ts;
  } else {
    *v = (float)((double)*v + w * decay_factor(*t - ts, half_life_ms));
  }
}

#endif
