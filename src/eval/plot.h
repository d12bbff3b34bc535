/* plot.h — metric-vs-k curves as a self-contained SVG file (no dependencies):
 * one panel per metric, one line per model. */
#ifndef RECD_EVAL_PLOT_H
#define RECD_EVAL_PLOT_H

#include <stddef.h>

typedef struct {
  const char *name;
  const double *y;   /* y[c] for c = 1..n */
} plot_series;

typedef struct {
  const char *title;  /* "nDCG@k" */
  const plot_series *series;
  size_t nseries;
} plot_panel;

/* n = largest k; returns 0 or -errno */
int plot_svg(const char *path, const char *title, const plot_panel *panels, size_t npanels, size_t n);

#endif
