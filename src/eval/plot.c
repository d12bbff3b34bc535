#include "eval/plot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                     "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

static void xml_text(FILE *f, const char *s) {
  for (; *s; s++) {
    if (*s == '<') fputs("&lt;", f);
    else if (*s == '>') fputs("&gt;", f);
    else if (*s == '&') fputs("&amp;", f);
    else fputc(*s, f);
  }
}

int plot_svg(const char *path, const char *title, const plot_panel *panels, size_t npanels, size_t n) {
  FILE *f = fopen(path, "w");
  if (!f) return -errno;
  const double pw = 360, ph = 260, ml = 55, mt = 45, mb = 40, gap = 70;
  double W = ml + npanels * (pw + gap) + 230, H = mt + ph + mb + 20;
  if (W < ml + 8.0 * (double)strlen(title)) W = ml + 8.0 * (double)strlen(title);
  fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H);
  fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n<text x=\"%.0f\" y=\"20\" font-size=\"14\" font-weight=\"bold\">", ml);
  xml_text(f, title);
  fprintf(f, "</text>\n");
  for (size_t p = 0; p < npanels; p++) {
    const plot_panel *pn = &panels[p];
    double x0 = ml + p * (pw + gap), y0 = mt;
    double ymax = 0;
    for (size_t s = 0; s < pn->nseries; s++)
      for (size_t c = 1; c <= n; c++)
        if (pn->series[s].y[c] > ymax) ymax = pn->series[s].y[c];
    if (ymax <= 0) ymax = 1;
    double step = pow(10, floor(log10(ymax / 4)));
    double nice = ceil(ymax / step) * step;
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#999\"/>\n", x0, y0, pw, ph);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-weight=\"bold\">", x0 + 5, y0 - 8);
    xml_text(f, pn->title);
    fprintf(f, "</text>\n");
    for (int t = 0; t <= 4; t++) {
      double v = nice * t / 4, y = y0 + ph - ph * v / nice;
      fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>", x0, y, x0 + pw, y);
      fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.3g</text>\n", x0 - 4, y + 4, v);
    }
    for (size_t c = 1; c <= n; c++) {
      if (n > 10 && c % 5 && c != 1) continue;
      double x = x0 + pw * (double)(c - 1) / (double)(n > 1 ? n - 1 : 1);
      fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%zu</text>\n", x, y0 + ph + 15, c);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">k</text>\n", x0 + pw / 2, y0 + ph + 32);
    for (size_t s = 0; s < pn->nseries; s++) {
      fprintf(f, "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"%s\" points=\"", colors[s % 10]);
      for (size_t c = 1; c <= n; c++) {
        double x = x0 + pw * (double)(c - 1) / (double)(n > 1 ? n - 1 : 1);
        double y = y0 + ph - ph * pn->series[s].y[c] / nice;
        fprintf(f, "%.1f,%.1f ", x, y);
      }
      fprintf(f, "\"/>\n");
    }
  }
  /* legend */
  double lx = ml + npanels * (pw + gap);
  if (npanels)
    for (size_t s = 0; s < panels[0].nseries; s++) {
      double y = mt + 10 + 18.0 * (double)s;
      fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"3\"/>", lx, y, lx + 20, y,
              colors[s % 10]);
      fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">", lx + 26, y + 4);
      xml_text(f, panels[0].series[s].name);
      fprintf(f, "</text>\n");
    }
  fprintf(f, "</svg>\n");
  return fclose(f) ? -errno : 0;
}
