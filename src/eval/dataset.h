/* dataset.h — a rating data set held in memory for offline evaluation:
 * (user, item, rating, time) rows with interned ids and optional item genres.
 * Readers for the MovieLens formats: ratings.csv / movies.csv (latest-small,
 * 20M, 25M), u.data / u.item (100k) and ratings.dat / movies.dat (1M, 10M).
 * Not thread-safe; read-only once loaded. */
#ifndef RECD_EVAL_DATASET_H
#define RECD_EVAL_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "util/strmap.h"

typedef struct {
  uint32_t user, item;
  float rating;
  int64_t ts_ms;
} eval_rating;

typedef struct {
  strmap users, items;
  eval_rating *r;
  size_t n, cap;
  char **genres;            /* per item: "Action|Comedy" (xmalloc'ed) or NULL */
  size_t genres_cap;
} eval_data;

void eval_data_init(eval_data *d);
void eval_data_release(eval_data *d);
/* Load the ratings and item genres found in `dir` (ratings.csv, u.data or
 * ratings.dat; movies.csv, u.item or movies.dat). err gets a message. */
int eval_load_dir(eval_data *d, const char *dir, char *err, size_t errlen);
/* Load one ratings file in a known format: "csv" (header userId,movieId,
 * rating,timestamp), "tab" (u.data) or "dat" (:: separated). */
int eval_load_ratings(eval_data *d, const char *path, const char *format, char *err, size_t errlen);
/* Item genres: "csv" (movies.csv), "item" (u.item flags) or "dat" (movies.dat). */
int eval_load_genres(eval_data *d, const char *path, const char *format, char *err, size_t errlen);
/* Back-compatible helper: ratings.csv and (optional) movies.csv. */
int eval_load_movielens(eval_data *d, const char *ratings_csv, const char *movies_csv, char *err, size_t errlen);

#endif
