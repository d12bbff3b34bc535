#include "eval/dataset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/err.h"
#include "util/mem.h"

void eval_data_init(eval_data *d) {
  memset(d, 0, sizeof *d);
  strmap_init(&d->users);
  strmap_init(&d->items);
}

void eval_data_release(eval_data *d) {
  for (size_t i = 0; i < d->genres_cap; i++) free(d->genres[i]);
  free(d->genres);
  free(d->r);
  strmap_release(&d->users);
  strmap_release(&d->items);
  memset(d, 0, sizeof *d);
}

/* split a line in place on `sep`; quoted fields ("a, b") only when sep is ",". */
static int split_fields(char *line, const char *sep, char **f, int max) {
  size_t sl = strlen(sep);
  int n = 0;
  char *p = line;
  line[strcspn(line, "\r\n")] = 0;
  while (n < max) {
    if (sl == 1 && *sep == ',' && *p == '"') {
      char *o = ++p;
      f[n++] = o;
      while (*p) {
        if (*p == '"' && p[1] == '"') {
          *o++ = '"';
          p += 2;
        } else if (*p == '"') {
          p++;
          break;
        } else {
          *o++ = *p++;
        }
      }
      *o = 0;
      char *nx = strstr(p, sep);
      if (!nx) break;
      p = nx + sl;
      continue;
    }
    f[n++] = p;
    char *nx = strstr(p, sep);
    if (!nx) break;
    *nx = 0;
    p = nx + sl;
  }
  return n;
}

static const char *sep_of(const char *format) {
  if (!strcmp(format, "tab")) return "\t";
  if (!strcmp(format, "dat")) return "::";
  if (!strcmp(format, "item")) return "|";
  return ",";
}

int eval_load_ratings(eval_data *d, const char *path, const char *format, char *err, size_t errlen) {
  FILE *f = fopen(path, "r");
  if (!f) {
    int e = errno;
    snprintf(err, errlen, "%s: %s", path, strerror(e));
    return -e;
  }
  const char *sep = sep_of(format);
  char line[4096];
  long lineno = 0;
  int rc = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    if (lineno == 1 && !strcmp(format, "csv") && !strncmp(line, "userId", 6)) continue;
    if (!line[0] || line[0] == '\n') continue;
    char *fl[4];
    char *end1, *end2;
    if (split_fields(line, sep, fl, 4) != 4) {
      snprintf(err, errlen, "%s:%ld: expected user%sitem%srating%stimestamp", path, lineno, sep, sep, sep);
      rc = RECD_EPARSE;
      break;
    }
    float rating = strtof(fl[2], &end1);
    long long ts = strtoll(fl[3], &end2, 10);
    if (end1 == fl[2] || *end1 || end2 == fl[3] || *end2 || !*fl[0] || !*fl[1]) {
      snprintf(err, errlen, "%s:%ld: rating and timestamp must be numbers", path, lineno);
      rc = RECD_EPARSE;
      break;
    }
    if (d->n == d->cap) {
      d->cap = d->cap ? d->cap * 2 : 65536;
      d->r = xrealloc(d->r, d->cap * sizeof *d->r);
    }
    eval_rating *r = &d->r[d->n++];
    r->user = strmap_intern(&d->users, fl[0], strlen(fl[0]), NULL);
    r->item = strmap_intern(&d->items, fl[1], strlen(fl[1]), NULL);
    r->rating = rating;
    r->ts_ms = ts * 1000;
  }
  fclose(f);
  return rc;
}

static const char *const u_item_genres[19] = {"unknown", "Action", "Adventure", "Animation", "Children's",
                                              "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
                                              "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
                                              "Sci-Fi", "Thriller", "War", "Western"};

int eval_load_genres(eval_data *d, const char *path, const char *format, char *err, size_t errlen) {
  FILE *f = fopen(path, "r");
  if (!f) {
    int e = errno;
    snprintf(err, errlen, "%s: %s", path, strerror(e));
    return -e;
  }
  if (d->genres_cap < strmap_count(&d->items)) {
    size_t ncap = strmap_count(&d->items);
    d->genres = xrealloc(d->genres, (ncap ? ncap : 1) * sizeof *d->genres);
    memset(d->genres + d->genres_cap, 0, (ncap - d->genres_cap) * sizeof *d->genres);
    d->genres_cap = ncap;
  }
  int is_item = !strcmp(format, "item");
  const char *sep = sep_of(format);
  char line[8192];
  long lineno = 0;
  while (fgets(line, sizeof line, f)) {
    char *fl[24];
    if (++lineno == 1 && !strcmp(format, "csv") && !strncmp(line, "movieId", 7)) continue;
    int nf = split_fields(line, sep, fl, 24);
    uint32_t id = nf > 0 ? strmap_find(&d->items, fl[0], strlen(fl[0])) : STRMAP_NONE;
    if (id == STRMAP_NONE || id >= d->genres_cap) continue; /* items nobody rated */
    char g[512] = "";
    if (is_item) {
      if (nf < 24) continue;
      for (int k = 1; k < 19; k++) /* skip "unknown" */
        if (fl[5 + k][0] == '1')
          snprintf(g + strlen(g), sizeof g - strlen(g), "%s%s", g[0] ? "|" : "", u_item_genres[k]);
    } else {
      if (nf < 3 || !strcmp(fl[2], "(no genres listed)")) continue;
      snprintf(g, sizeof g, "%s", fl[2]);
    }
    if (!g[0]) continue;
    free(d->genres[id]);
    d->genres[id] = xstrdup(g);
  }
  fclose(f);
  return 0;
}

int eval_load_movielens(eval_data *d, const char *ratings_csv, const char *movies_csv, char *err, size_t errlen) {
  int rc = eval_load_ratings(d, ratings_csv, "csv", err, errlen);
  if (!rc && movies_csv) rc = eval_load_genres(d, movies_csv, "csv", err, errlen);
  return rc;
}

int eval_load_dir(eval_data *d, const char *dir, char *err, size_t errlen) {
  static const char *const rfiles[][2] = {{"ratings.csv", "csv"}, {"u.data", "tab"}, {"ratings.dat", "dat"}};
  static const char *const ifiles[][2] = {{"movies.csv", "csv"}, {"u.item", "item"}, {"movies.dat", "dat"}};
  char path[1024];
  int found = -1;
  for (int i = 0; i < 3 && found < 0; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, rfiles[i][0]);
    if (!access(path, R_OK)) found = i;
  }
  if (found < 0) {
    snprintf(err, errlen, "%s: no ratings.csv, u.data or ratings.dat found", dir);
    return RECD_ENOTFOUND;
  }
  int rc = eval_load_ratings(d, path, rfiles[found][1], err, errlen);
  if (rc) return rc;
  for (int i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, ifiles[i][0]);
    if (!access(path, R_OK)) return eval_load_genres(d, path, ifiles[i][1], err, errlen);
  }
  return 0;
}
