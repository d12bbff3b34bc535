#include "model/covis.h"

#include <math.h>
#include <stdlib.h>

#include "util/decay.h"
#include "util/mem.h"

#define REBASE_HALF_LIVES 40.0

covis_list *covis_new(int64_t t0) {
  covis_list *l = xcalloc(1, sizeof *l);
  l->t0 = t0;
  return l;
}

void covis_free(covis_list *l) {
  if (!l) return;
  free(l->e);
  free(l);
}

static void rebase(covis_list *l, int64_t t, int64_t hl) {
  double f = exp2(-(double)(t - l->t0) / (double)hl);
  for (int i = 0; i < l->n; i++) {
    l->e[i].w = (float)(l->e[i].w * f);
    l->e[i].err = (float)(l->e[i].err * f);
  }
  l->norm = (float)(l->norm * f);
  l->t0 = t;
}

void covis_add(covis_list *l, const covis_params *p, uint32_t nb, double w, int64_t ts) {
  double ex = (double)(ts - l->t0) / (double)p->half_life_ms;
  if (ex > REBASE_HALF_LIVES) {
    rebase(l, ts, p->half_life_ms);
    ex = 0;
  }
  double sw = w * exp2(ex);
  l->norm += (float)sw;
  int min = -1;
  for (int i = 0; i < l->n; i++) {
    if (l->e[i].iid == nb) {
      l->e[i].w += (float)sw;
      return;
    }
    if (min < 0 || l->e[i].w < l->e[min].w) min = i;
  }
  if (l->n < p->max_neighbors) {
    if (l->n == l->cap) {
      int ncap = l->cap ? l->cap * 2 : 4;
      if (ncap > p->max_neighbors) ncap = p->max_neighbors;
      l->e = xrealloc(l->e, (size_t)ncap * sizeof *l->e);
      l->cap = (uint16_t)ncap;
    }
    l->e[l->n++] = (covis_ent){.iid = nb, .w = (float)sw, .err = 0};
    return;
  }
  /* Space-Saving: replace the weakest, inheriting its weight */
  l->e[min].iid = nb;
  l->e[min].err = l->e[min].w;
  l->e[min].w += (float)sw;
}

double covis_scale(const covis_list *l, int64_t now, int64_t half_life_ms) {
  return exp2(-(double)(now - l->t0) / (double)half_life_ms);
}

size_t covis_memory(const covis_list *l) { return sizeof *l + (size_t)l->cap * sizeof(covis_ent); }
