/* gen.c — synthetic shop data (`recd gen`).
 *
 * Design. The generator is a small simulation whose state is O(users + items):
 *
 *  1. Categories get power-law weights (with seeded noise). Items are spread over
 *     categories by weight; inside a category each item gets a random popularity
 *     rank and is drawn with probability ~ 1/(rank+1) (Zipf, s = 1, sampled by
 *     inverting the continuous CDF: one exp() per draw). Each item has 2–3 tags,
 *     mostly from a small "style" pool of its category, so items sharing a tag are
 *     content-similar; a created_at (most before the window, ~10% inside it, ~3% in
 *     its last two days) and, for unavailable items, the time they went out of stock.
 *     An item never gets events before its creation or after it went out of stock.
 *     Rank 0 of each category is always old and available: the fallback draw.
 *  2. Each user has 1–3 favourite categories with Gamma(0.6) weights normalised
 *     (a sparse Dirichlet draw) and an activity weight from a capped Pareto, sampled
 *     through an alias table, so a few users are heavy and most are light.
 *  3. Sessions. The number of sessions S and each session's length are drawn first
 *     (pass 1, one RNG stream for lengths and one for spacings, no output) so that
 *     the lengths add up to exactly `events`. Pass 2 replays both streams: session
 *     start fractions are sorted uniforms (cumulative exponential spacings divided by
 *     their total), mapped through the inverse of an hourly intensity curve (daily
 *     rhythm, busier weekends, slow growth) onto [end - days, end].
 *  4. Active sessions sit in a min-heap keyed by (next event time, session number);
 *     before a session starts, every event due earlier is emitted, so events.csv is
 *     in non-decreasing time order while only the concurrently active sessions are
 *     in memory. Each step either moves the current item one funnel stage further
 *     (view→click 35%, click→cart 25%, cart→purchase 55%) or views a new item: 30% a
 *     popular item sharing a tag with the current one (co-visitation that agrees with
 *     content), else an item of the session's focus category (which switches to
 *     another of the user's tastes 15% of the time; 10% of draws explore any category).
 *
 * Determinism: all randomness comes from splitmix64 streams derived from the seed;
 * output depends only on the parameters (and on libm giving the same exp/log/pow,
 * i.e. on the same build). */
#include "cli/gen.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/commands.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/mem.h"

/* ---------------------------------------------------------------- PRNG ---- */

/* splitmix64: a Weyl sequence through a 64-bit finaliser. Period 2^64 per stream. */
typedef struct {
  uint64_t s;
} gen_rng;

static inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

static void rng_seed(gen_rng *r, uint64_t seed, uint64_t stream) {
  r->s = mix64(seed + 0x632BE59BD9B4E019ULL) ^ mix64(stream * 0x9E3779B97F4A7C15ULL + 1);
}

static inline uint64_t rng_next(gen_rng *r) {
  r->s += 0x9E3779B97F4A7C15ULL;
  return mix64(r->s);
}

/* uniform in [0,1) */
static inline double rng_unit(gen_rng *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

/* uniform integer in [0,n), n < 2^32 */
static inline uint32_t rng_below(gen_rng *r, uint32_t n) {
  return (uint32_t)(((rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* exponential with mean 1 */
static inline double rng_exp(gen_rng *r) { return -log1p(-rng_unit(r)); }

/* standard normal (Box–Muller, one value per call) */
static double rng_normal(gen_rng *r) {
  double u1 = 1.0 - rng_unit(r); /* (0,1] */
  double u2 = rng_unit(r);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Gamma(alpha, 1), Marsaglia–Tsang; alpha < 1 via the U^(1/alpha) boost */
static double rng_gamma(gen_rng *r, double alpha) {
  if (alpha < 1.0) {
    double u = 1.0 - rng_unit(r);
    return rng_gamma(r, alpha + 1.0) * pow(u, 1.0 / alpha);
  }
  double d = alpha - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
  for (;;) {
    double x = rng_normal(r), v = 1.0 + c * x;
    if (v <= 0) continue;
    v = v * v * v;
    double u = 1.0 - rng_unit(r);
    if (log(u) < 0.5 * x * x + d - d * v + d * log(v)) return d * v;
  }
}

/* Zipf-like rank in [0,n): density ~ 1/x on [1, n+1], log(n+1) precomputed */
static inline uint32_t rng_zipf1(gen_rng *r, uint32_t n, double logn1) {
  uint32_t k = (uint32_t)exp(rng_unit(r) * logn1) - 1;
  return k < n ? k : n - 1;
}

/* Alias table (Vose) for O(1) draws from a fixed discrete distribution. */
typedef struct {
  float *prob;
  uint32_t *alias;
  uint32_t n;
} gen_alias;

static void alias_build(gen_alias *t, const double *w, uint32_t n) {
  t->n = n;
  t->prob = xmalloc(n * sizeof(float));
  t->alias = xmalloc(n * sizeof(uint32_t));
  double sum = 0;
  for (uint32_t i = 0; i < n; i++) sum += w[i];
  double *scaled = xmalloc(n * sizeof(double));
  uint32_t *small = xmalloc(n * sizeof(uint32_t)), *large = xmalloc(n * sizeof(uint32_t));
  uint32_t ns = 0, nl = 0;
  for (uint32_t i = 0; i < n; i++) {
    scaled[i] = w[i] * n / sum;
    if (scaled[i] < 1.0) small[ns++] = i;
    else large[nl++] = i;
  }
  while (ns && nl) {
    uint32_t s = small[--ns], l = large[nl - 1];
    t->prob[s] = (float)scaled[s];
    t->alias[s] = l;
    scaled[l] -= 1.0 - scaled[s];
    if (scaled[l] < 1.0) {
      nl--;
      small[ns++] = l;
    }
  }
  while (nl) {
    uint32_t l = large[--nl];
    t->prob[l] = 1.0f;
    t->alias[l] = l;
  }
  while (ns) { /* rounding leftovers */
    uint32_t s = small[--ns];
    t->prob[s] = 1.0f;
    t->alias[s] = s;
  }
  free(scaled);
  free(small);
  free(large);
}

static inline uint32_t alias_draw(const gen_alias *t, gen_rng *r) {
  uint32_t i = rng_below(r, t->n);
  return (float)rng_unit(r) < t->prob[i] ? i : t->alias[i];
}

static void alias_release(gen_alias *t) {
  free(t->prob);
  free(t->alias);
}

/* ------------------------------------------------------------ the world --- */

typedef struct {
  const char *name;
  double price;          /* typical price */
  const char *nouns[5];
} cat_def;

static const cat_def cat_defs[] = {
    {"books", 16, {"Novel", "Cookbook", "Biography", "Travel Guide", "Poetry Collection"}},
    {"electronics", 160, {"Headphones", "Speaker", "Charger", "Monitor", "Camera"}},
    {"home", 45, {"Lamp", "Cushion", "Rug", "Vase", "Mirror"}},
    {"garden", 30, {"Planter", "Hose", "Trowel", "Seed Kit", "Bird Feeder"}},
    {"toys", 25, {"Puzzle", "Robot", "Doll", "Building Set", "Plush Bear"}},
    {"fashion", 40, {"Jacket", "Scarf", "Dress", "Shirt", "Hat"}},
    {"sports", 50, {"Yoga Mat", "Dumbbell", "Racket", "Water Bottle", "Jersey"}},
    {"beauty", 20, {"Serum", "Lipstick", "Shampoo", "Face Mask", "Perfume"}},
    {"grocery", 6, {"Coffee", "Tea", "Olive Oil", "Pasta", "Chocolate"}},
    {"music", 15, {"Vinyl", "Album", "Songbook", "Guitar Strings", "Ukulele"}},
    {"movies", 13, {"Blu-ray", "Box Set", "Documentary", "Thriller", "Comedy"}},
    {"games", 40, {"Board Game", "Controller", "Card Game", "Video Game", "Dice Set"}},
    {"health", 18, {"Vitamins", "Thermometer", "First Aid Kit", "Protein Powder", "Massager"}},
    {"automotive", 35, {"Car Mat", "Dash Cam", "Wiper Blades", "Phone Mount", "Polish"}},
    {"pets", 22, {"Dog Bed", "Cat Toy", "Leash", "Aquarium", "Pet Food"}},
    {"baby", 28, {"Stroller", "Onesie", "Bottle", "Baby Monitor", "Teether"}},
    {"office", 14, {"Notebook", "Pen Set", "Desk Organizer", "Stapler", "Planner"}},
    {"jewelry", 70, {"Necklace", "Ring", "Bracelet", "Earrings", "Watch"}},
    {"shoes", 65, {"Sneakers", "Boots", "Sandals", "Loafers", "Slippers"}},
    {"outdoors", 55, {"Tent", "Backpack", "Sleeping Bag", "Headlamp", "Camping Stove"}},
    {"kitchen", 32, {"Frying Pan", "Knife Set", "Blender", "Cutting Board", "Kettle"}},
    {"tools", 38, {"Drill", "Hammer", "Screwdriver Set", "Tape Measure", "Wrench"}},
    {"crafts", 12, {"Yarn", "Paint Set", "Sketchbook", "Glue Gun", "Bead Kit"}},
    {"travel", 60, {"Suitcase", "Neck Pillow", "Packing Cubes", "Adapter", "Toiletry Bag"}},
};
#define NCAT_DEFS ((int)(sizeof cat_defs / sizeof cat_defs[0]))

static const char *adjectives[] = {
    "Classic", "Compact", "Deluxe", "Essential", "Everyday", "Premium", "Vintage", "Modern",
    "Silent", "Bright", "Cozy", "Rugged", "Elegant", "Smart", "Organic", "Handmade",
    "Wireless", "Portable", "Mini", "Ultra", "Golden", "Midnight", "Urban", "Nordic",
    "Sunny", "Wild", "Gentle", "Bold", "Pure", "Swift", "Little", "Grand",
};
#define NADJ ((uint32_t)(sizeof adjectives / sizeof adjectives[0]))

#define TAGS_PER_CAT 12   /* 4 styles x 3 tags */
#define GLOBAL_TAGS 20    /* cross-category tags */
#define NO_ITEM UINT32_MAX

typedef struct {
  uint32_t rank;         /* popularity rank inside the primary category, 0 = top */
  uint32_t price_cents;
  int64_t created_ms;
  int64_t gone_ms;       /* went out of stock at; INT64_MAX if available */
  uint16_t cat, cat2;    /* cat2 == UINT16_MAX: single category */
  uint16_t tags[3];
  uint8_t ntags;
} gen_item;

typedef struct {
  char name[48];
  double cum;            /* cumulative weight, normalised */
  uint32_t first, count; /* slice of by_rank */
  double logn1;          /* log(count + 1) */
} gen_cat;

typedef struct {
  uint16_t cat[3];
  uint8_t n;
  float cum[3];          /* cumulative mixture weights, cum[n-1] == 1 */
} gen_user;

typedef struct {
  int64_t next_ms;
  uint64_t sid;          /* session number, also the heap tie-breaker */
  uint32_t user, item;
  uint32_t left;         /* events still to emit */
  uint16_t focus;
  uint8_t stage;         /* funnel stage of `item`: 0 viewed .. 3 purchased */
} gen_session;

typedef struct {
  const gen_params *p;
  int64_t start_ms, end_ms;
  int ncat;
  gen_cat *cats;
  gen_item *items;
  uint32_t *by_rank;     /* items of each category, most popular first */
  uint32_t ntags;
  uint32_t *tag_first;   /* ntags + 1 offsets into tag_items */
  uint32_t *tag_items;
  gen_user *users;
  gen_alias activity;
  /* hourly intensity: cumulative, normalised, nhours + 1 entries */
  double *hour_cum;
  uint32_t nhours;
  /* session heap */
  gen_session *heap;
  size_t nheap, capheap;
} gen_world;

static const char *const type_names[4] = {"view", "click", "add_to_cart", "purchase"};
static const double p_advance[3] = {0.35, 0.25, 0.55};

enum { ST_LENGTHS = 1, ST_SPACING, ST_ITEMS, ST_USERS, ST_SESSIONS, ST_TITLES };

static uint16_t pick_cat(const gen_world *w, gen_rng *r) {
  double u = rng_unit(r);
  int lo = 0, hi = w->ncat - 1;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (u < w->cats[mid].cum) hi = mid;
    else lo = mid + 1;
  }
  return (uint16_t)lo;
}

static void world_build(gen_world *w, const gen_params *p, int64_t end_ms) {
  memset(w, 0, sizeof *w);
  w->p = p;
  w->end_ms = end_ms;
  w->start_ms = end_ms - (int64_t)p->days * 86400000;
  w->ncat = p->categories;
  uint32_t nitems = (uint32_t)p->items, nusers = (uint32_t)p->users;
  gen_rng r;

  /* categories */
  rng_seed(&r, p->seed, ST_ITEMS);
  w->cats = xcalloc((size_t)w->ncat, sizeof(gen_cat));
  double *cw = xmalloc((size_t)w->ncat * sizeof(double)), tot = 0;
  for (int c = 0; c < w->ncat; c++) {
    if (c < NCAT_DEFS) snprintf(w->cats[c].name, sizeof w->cats[c].name, "%s", cat_defs[c].name);
    else
      snprintf(w->cats[c].name, sizeof w->cats[c].name, "%s-%d", cat_defs[c % NCAT_DEFS].name,
               c / NCAT_DEFS + 1);
    cw[c] = pow(c + 1.0, -0.7) * (0.6 + 0.8 * rng_unit(&r));
    tot += cw[c];
  }
  double acc = 0;
  for (int c = 0; c < w->ncat; c++) {
    acc += cw[c] / tot;
    w->cats[c].cum = acc;
  }
  w->cats[w->ncat - 1].cum = 1.0;
  free(cw);

  /* items: category, then rank by shuffling each category's slice */
  w->items = xcalloc(nitems, sizeof(gen_item));
  for (uint32_t i = 0; i < nitems; i++) {
    gen_item *it = &w->items[i];
    it->cat = i < (uint32_t)w->ncat ? (uint16_t)i : pick_cat(w, &r);
    it->cat2 = UINT16_MAX;
    if (w->ncat > 1 && rng_unit(&r) < 0.08) {
      uint16_t c2 = pick_cat(w, &r);
      if (c2 != it->cat) it->cat2 = c2;
    }
    w->cats[it->cat].count++;
  }
  uint32_t off = 0;
  for (int c = 0; c < w->ncat; c++) {
    w->cats[c].first = off;
    off += w->cats[c].count;
    w->cats[c].logn1 = log(w->cats[c].count + 1.0);
    w->cats[c].count = 0;
  }
  w->by_rank = xmalloc(nitems * sizeof(uint32_t));
  for (uint32_t i = 0; i < nitems; i++) {
    gen_cat *c = &w->cats[w->items[i].cat];
    w->by_rank[c->first + c->count++] = i;
  }
  for (int c = 0; c < w->ncat; c++) {
    uint32_t *s = w->by_rank + w->cats[c].first, n = w->cats[c].count;
    for (uint32_t k = n; k > 1; k--) {
      uint32_t j = rng_below(&r, k), t = s[k - 1];
      s[k - 1] = s[j];
      s[j] = t;
    }
    for (uint32_t k = 0; k < n; k++) w->items[s[k]].rank = k;
  }

  /* item attributes */
  int64_t window = w->end_ms - w->start_ms;
  int64_t recent = window < 2 * 86400000LL ? window : 2 * 86400000LL;
  w->ntags = (uint32_t)w->ncat * TAGS_PER_CAT + GLOBAL_TAGS;
  w->tag_first = xcalloc(w->ntags + 1, sizeof(uint32_t));
  for (uint32_t i = 0; i < nitems; i++) {
    gen_item *it = &w->items[i];
    double u = rng_unit(&r);
    if (it->rank > 0 && u < 0.03) it->created_ms = w->end_ms - (int64_t)(rng_unit(&r) * recent);
    else if (it->rank > 0 && u < 0.13) it->created_ms = w->start_ms + (int64_t)(rng_unit(&r) * window);
    else it->created_ms = w->start_ms - 60000 - (int64_t)(rng_unit(&r) * 730 * 86400000.0);
    it->created_ms -= it->created_ms % 1000; /* whole seconds */
    it->gone_ms = INT64_MAX;
    if (it->rank > 0 && rng_unit(&r) < p->unavailable_share) {
      int64_t from = it->created_ms > w->start_ms ? it->created_ms : w->start_ms;
      it->gone_ms = from + (int64_t)(rng_unit(&r) * (double)(w->end_ms - from));
    }
    double price = cat_defs[it->cat % NCAT_DEFS].price * exp(0.6 * rng_normal(&r));
    uint32_t whole = (uint32_t)price;
    it->price_cents = whole * 100 + (rng_unit(&r) < 0.7 ? 99 : 49);
    uint32_t base = (uint32_t)it->cat * TAGS_PER_CAT, style = rng_below(&r, 4);
    it->tags[0] = (uint16_t)(base + style * 3 + rng_below(&r, 3));
    it->ntags = 1;
    uint16_t t1 = (uint16_t)(base + rng_below(&r, TAGS_PER_CAT));
    if (t1 != it->tags[0]) it->tags[it->ntags++] = t1;
    if (rng_unit(&r) < 0.35)
      it->tags[it->ntags++] = (uint16_t)(w->ncat * TAGS_PER_CAT + rng_below(&r, GLOBAL_TAGS));
    for (int k = 0; k < it->ntags; k++) w->tag_first[it->tags[k] + 1]++;
  }
  for (uint32_t t = 0; t < w->ntags; t++) w->tag_first[t + 1] += w->tag_first[t];
  w->tag_items = xmalloc((w->tag_first[w->ntags] + 1) * sizeof(uint32_t));
  uint32_t *fill = xcalloc(w->ntags, sizeof(uint32_t));
  for (uint32_t i = 0; i < nitems; i++)
    for (int k = 0; k < w->items[i].ntags; k++) {
      uint16_t t = w->items[i].tags[k];
      w->tag_items[w->tag_first[t] + fill[t]++] = i;
    }
  free(fill);

  /* users: tastes and activity */
  rng_seed(&r, p->seed, ST_USERS);
  w->users = xmalloc(nusers * sizeof(gen_user));
  double *act = xmalloc(nusers * sizeof(double));
  for (uint32_t u = 0; u < nusers; u++) {
    gen_user *us = &w->users[u];
    double x = rng_unit(&r);
    int want = x < 0.4 ? 1 : x < 0.8 ? 2 : 3;
    if (want > w->ncat) want = w->ncat;
    us->n = 0;
    for (int tries = 0; us->n < want && tries < 20; tries++) {
      uint16_t c = pick_cat(w, &r);
      int dup = 0;
      for (int k = 0; k < us->n; k++) dup |= us->cat[k] == c;
      if (!dup) us->cat[us->n++] = c;
    }
    double g[3], sum = 0;
    for (int k = 0; k < us->n; k++) sum += g[k] = rng_gamma(&r, 0.6) + 1e-3;
    double cum = 0;
    for (int k = 0; k < us->n; k++) {
      cum += g[k] / sum;
      us->cum[k] = (float)cum;
    }
    us->cum[us->n - 1] = 1.0f;
    double a = pow(1.0 - rng_unit(&r), -1.0 / 1.2); /* Pareto, alpha 1.2 */
    act[u] = a < 100 ? a : 100;
  }
  alias_build(&w->activity, act, nusers);
  free(act);

  /* hourly intensity over the window */
  static const double diurnal[24] = {0.35, 0.25, 0.18, 0.14, 0.13, 0.16, 0.28, 0.50,
                                     0.70, 0.80, 0.85, 0.90, 0.95, 0.92, 0.88, 0.87,
                                     0.90, 0.98, 1.10, 1.25, 1.35, 1.30, 1.00, 0.60};
  w->nhours = (uint32_t)p->days * 24;
  w->hour_cum = xmalloc((w->nhours + 1) * sizeof(double));
  w->hour_cum[0] = 0;
  for (uint32_t h = 0; h < w->nhours; h++) {
    int64_t t = w->start_ms + (int64_t)h * 3600000;
    int64_t hours = (t >= 0 ? t : t - 3599999) / 3600000;
    int hod = (int)(((hours % 24) + 24) % 24);
    int dow = (int)((((hours / 24) + 4) % 7 + 7) % 7); /* 0 = Sunday */
    double v = diurnal[hod] * (dow == 0 || dow == 6 ? 1.15 : 1.0) * (1.0 + 0.25 * h / w->nhours);
    w->hour_cum[h + 1] = w->hour_cum[h] + v;
  }
  double total = w->hour_cum[w->nhours];
  for (uint32_t h = 0; h <= w->nhours; h++) w->hour_cum[h] /= total;
}

static void world_release(gen_world *w) {
  free(w->cats);
  free(w->items);
  free(w->by_rank);
  free(w->tag_first);
  free(w->tag_items);
  free(w->users);
  alias_release(&w->activity);
  free(w->hour_cum);
  free(w->heap);
}

/* --------------------------------------------------------------- output --- */

typedef struct {
  FILE *f;
  char *buf;
  size_t len, cap;
  int err;               /* sticky: first errno */
} gen_out;

static void out_flush(gen_out *o) {
  if (o->len && !o->err && fwrite(o->buf, 1, o->len, o->f) != o->len) o->err = errno ? errno : EIO;
  o->len = 0;
}

static inline void out_reserve(gen_out *o, size_t n) {
  if (o->cap - o->len < n) out_flush(o);
}

static inline void out_mem(gen_out *o, const char *s, size_t n) {
  memcpy(o->buf + o->len, s, n);
  o->len += n;
}

static inline void out_str(gen_out *o, const char *s) { out_mem(o, s, strlen(s)); }

static inline void out_u64(gen_out *o, uint64_t v) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) o->buf[o->len++] = tmp[--n];
}

static inline void out_cents(gen_out *o, uint32_t cents) {
  out_u64(o, cents / 100);
  o->buf[o->len++] = '.';
  o->buf[o->len++] = (char)('0' + cents / 10 % 10);
  o->buf[o->len++] = (char)('0' + cents % 10);
}

static int out_open(gen_out *o, const char *path) {
  memset(o, 0, sizeof *o);
  o->f = fopen(path, "w");
  if (!o->f) return -errno;
  o->cap = 4u << 20;
  o->buf = xmalloc(o->cap);
  return 0;
}

/* flush and close; 0 or -errno (the first error seen) */
static int out_close(gen_out *o) {
  out_flush(o);
  if (o->f) {
    if (fflush(o->f) && !o->err) o->err = errno ? errno : EIO;
    if (fclose(o->f) && !o->err) o->err = errno ? errno : EIO;
  }
  free(o->buf);
  o->f = NULL;
  o->buf = NULL;
  return o->err ? -o->err : 0;
}

/* ---------------------------------------------------------------- items --- */

static void write_items(const gen_world *w, gen_out *o) {
  gen_rng r;
  rng_seed(&r, w->p->seed, ST_TITLES);
  char line[1024], ts[32];
  for (uint32_t i = 0; i < (uint32_t)w->p->items; i++) {
    const gen_item *it = &w->items[i];
    const char *noun = cat_defs[it->cat % NCAT_DEFS].nouns[rng_below(&r, 5)];
    const char *a1 = adjectives[rng_below(&r, NADJ)], *a2 = adjectives[rng_below(&r, NADJ)];
    char title[128];
    if (a1 != a2 && rng_unit(&r) < 0.4) snprintf(title, sizeof title, "%s %s %s", a1, a2, noun);
    else snprintf(title, sizeof title, "%s %s", a1, noun);
    clock_format_rfc3339(it->created_ms, ts, sizeof ts);
    int n = snprintf(line, sizeof line, "{\"item_id\":\"item_%u\",\"categories\":[\"%s\"", i + 1,
                     w->cats[it->cat].name);
    if (it->cat2 != UINT16_MAX)
      n += snprintf(line + n, sizeof line - (size_t)n, ",\"%s\"", w->cats[it->cat2].name);
    n += snprintf(line + n, sizeof line - (size_t)n, "],\"tags\":[");
    for (int k = 0; k < it->ntags; k++)
      n += snprintf(line + n, sizeof line - (size_t)n, "%s\"t%u\"", k ? "," : "", it->tags[k]);
    n += snprintf(line + n, sizeof line - (size_t)n,
                  "],\"available\":%s,\"created_at\":\"%s\",\"properties\":{\"price\":%u.%02u,"
                  "\"title\":\"%s\"}}\n",
                  it->gone_ms == INT64_MAX ? "true" : "false", ts, it->price_cents / 100,
                  it->price_cents % 100, title);
    out_reserve(o, (size_t)n);
    out_mem(o, line, (size_t)n);
  }
}

/* --------------------------------------------------------------- events --- */

/* session length: 1 + geometric (mean 5), capped */
static uint32_t draw_length(gen_rng *r) {
  uint32_t n = 1 + (uint32_t)(rng_exp(r) * 4.0);
  return n < 200 ? n : 200;
}

static inline int heap_less(const gen_session *a, const gen_session *b) {
  return a->next_ms < b->next_ms || (a->next_ms == b->next_ms && a->sid < b->sid);
}

static void heap_push(gen_world *w, const gen_session *s) {
  if (w->nheap == w->capheap) {
    w->capheap = w->capheap ? w->capheap * 2 : 1024;
    w->heap = xrealloc(w->heap, w->capheap * sizeof(gen_session));
  }
  size_t i = w->nheap++;
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!heap_less(s, &w->heap[parent])) break;
    w->heap[i] = w->heap[parent];
    i = parent;
  }
  w->heap[i] = *s;
}

/* the top changed (or was replaced by the last element): restore order */
static void heap_sift_top(gen_world *w) {
  gen_session *h = w->heap, x = h[0];
  size_t n = w->nheap, i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && heap_less(&h[c + 1], &h[c])) c++;
    if (!heap_less(&h[c], &x)) break;
    h[i] = h[c];
    i = c;
  }
  h[i] = x;
}

static uint16_t user_cat(const gen_world *w, gen_rng *r, uint32_t user) {
  const gen_user *u = &w->users[user];
  if (rng_unit(r) < 0.10) return pick_cat(w, r);
  float x = (float)rng_unit(r);
  for (int k = 0; k < u->n - 1; k++)
    if (x < u->cum[k]) return u->cat[k];
  return u->cat[u->n - 1];
}

static inline int item_live(const gen_item *it, int64_t t) {
  return it->created_ms <= t && t < it->gone_ms;
}

static uint32_t pick_item(const gen_world *w, gen_rng *r, gen_session *s, int64_t t) {
  for (int tries = 0; tries < 8; tries++) {
    uint32_t it;
    if (s->item != NO_ITEM && rng_unit(r) < 0.30) {
      const gen_item *cur = &w->items[s->item];
      uint16_t tag = cur->tags[rng_below(r, cur->ntags)];
      uint32_t a = w->tag_first[tag], n = w->tag_first[tag + 1] - a;
      uint32_t x = w->tag_items[a + rng_below(r, n)], y = w->tag_items[a + rng_below(r, n)];
      it = w->items[x].rank <= w->items[y].rank ? x : y;
      if (it == s->item) continue;
    } else {
      if (rng_unit(r) < 0.15) s->focus = user_cat(w, r, s->user);
      const gen_cat *c = &w->cats[s->focus];
      it = w->by_rank[c->first + rng_zipf1(r, c->count, c->logn1)];
    }
    if (item_live(&w->items[it], t)) return it;
  }
  return w->by_rank[w->cats[s->focus].first]; /* rank 0: always live */
}

/* emit the top session's next event and reschedule or retire it */
static void session_step(gen_world *w, gen_rng *r, gen_out *o) {
  gen_session *s = &w->heap[0];
  int64_t t = s->next_ms;
  int type;
  if (s->item != NO_ITEM && s->stage < 3 && item_live(&w->items[s->item], t) &&
      rng_unit(r) < p_advance[s->stage]) {
    type = ++s->stage;
  } else {
    s->item = pick_item(w, r, s, t);
    s->stage = 0;
    type = 0;
  }
  int64_t ts = t < w->end_ms ? t : w->end_ms;
  out_reserve(o, 160);
  out_mem(o, "user_", 5);
  out_u64(o, (uint64_t)s->user + 1);
  out_mem(o, ",item_", 6);
  out_u64(o, (uint64_t)s->item + 1);
  o->buf[o->len++] = ',';
  out_str(o, type_names[type]);
  o->buf[o->len++] = ',';
  out_u64(o, (uint64_t)(ts / 1000));
  o->buf[o->len++] = '.';
  int ms = (int)(ts % 1000);
  o->buf[o->len++] = (char)('0' + ms / 100);
  o->buf[o->len++] = (char)('0' + ms / 10 % 10);
  o->buf[o->len++] = (char)('0' + ms % 10);
  o->buf[o->len++] = ',';
  if (type >= 2) out_cents(o, w->items[s->item].price_cents);
  out_mem(o, ",sess_", 6);
  out_u64(o, s->sid + 1);
  o->buf[o->len++] = '\n';

  if (--s->left == 0) {
    w->heap[0] = w->heap[--w->nheap];
    if (w->nheap) heap_sift_top(w);
    return;
  }
  /* think time: log-normal, median 25 s, capped at 30 min */
  double gap = 25000.0 * exp(1.0 * rng_normal(r));
  s->next_ms += 1000 + (int64_t)(gap < 1800000 ? gap : 1800000);
  heap_sift_top(w);
}

/* map a start fraction (non-decreasing between calls) to a time; *hour is the cursor */
static int64_t frac_to_ms(const gen_world *w, double f, uint32_t *hour) {
  while (*hour + 1 < w->nhours && w->hour_cum[*hour + 1] <= f) (*hour)++;
  double lo = w->hour_cum[*hour], hi = w->hour_cum[*hour + 1];
  double x = hi > lo ? (f - lo) / (hi - lo) : 0;
  if (x < 0) x = 0;
  if (x > 1) x = 1;
  return w->start_ms + (int64_t)*hour * 3600000 + (int64_t)(x * 3599999.0);
}

static void write_events(gen_world *w, gen_out *o, void (*progress)(void *, double), void *arg) {
  const gen_params *p = w->p;
  uint64_t target = (uint64_t)p->events;
  out_reserve(o, 64);
  out_str(o, "user_id,item_id,event_type,timestamp,value,session_id\n");
  if (!target) return;

  /* pass 1: session count and total spacing */
  gen_rng lens, gaps;
  rng_seed(&lens, p->seed, ST_LENGTHS);
  rng_seed(&gaps, p->seed, ST_SPACING);
  uint64_t nsess = 0, sum = 0;
  double total = 0;
  while (sum < target) {
    sum += draw_length(&lens);
    total += rng_exp(&gaps);
    nsess++;
  }
  total += rng_exp(&gaps);

  /* pass 2 */
  rng_seed(&lens, p->seed, ST_LENGTHS);
  rng_seed(&gaps, p->seed, ST_SPACING);
  gen_rng r;
  rng_seed(&r, p->seed, ST_SESSIONS);
  uint32_t hour = 0;
  double cum = 0;
  uint64_t emitted_sum = 0, next_report = 0, step = target / 200 + 1;
  for (uint64_t i = 0; i < nsess; i++) {
    uint32_t len = draw_length(&lens);
    if (i == nsess - 1) len = (uint32_t)(target - emitted_sum);
    emitted_sum += len;
    cum += rng_exp(&gaps);
    int64_t start = frac_to_ms(w, cum / total, &hour);
    while (w->nheap && w->heap[0].next_ms <= start) session_step(w, &r, o);
    gen_session s = {.next_ms = start, .sid = i, .item = NO_ITEM, .left = len, .stage = 0};
    s.user = alias_draw(&w->activity, &r);
    s.focus = user_cat(w, &r, s.user);
    heap_push(w, &s);
    if (progress && emitted_sum >= next_report) {
      progress(arg, 0.02 + 0.98 * (double)emitted_sum / (double)target);
      next_report += step;
    }
    if (o->err) return;
  }
  while (w->nheap) session_step(w, &r, o);
}

/* ------------------------------------------------------------------ API --- */

void gen_default_params(gen_params *p) {
  memset(p, 0, sizeof *p);
  p->seed = 42;
  p->users = 10000;
  p->items = 2000;
  p->events = 200000;
  p->categories = 12;
  p->days = 28;
  p->end_ms = 0;
  p->unavailable_share = 0.05;
}

const char *gen_check_params(const gen_params *p) {
  if (p->users < 1 || p->users > 50000000) return "users must be between 1 and 50,000,000";
  if (p->items < 1 || p->items > 20000000) return "items must be between 1 and 20,000,000";
  if (p->events < 0 || p->events > 10000000000L) return "events must be between 0 and 10^10";
  if (p->categories < 1 || p->categories > GEN_MAX_CATEGORIES)
    return "categories must be between 1 and 200";
  if (p->categories > p->items) return "categories must not exceed items";
  if (p->days < 1 || p->days > 3650) return "days must be between 1 and 3650";
  if (p->end_ms < 0 || p->end_ms > 253402300799000LL) return "end must be a time before year 10000";
  if (!(p->unavailable_share >= 0 && p->unavailable_share < 1))
    return "unavailable_share must be in [0, 1)";
  if (p->end_ms && p->end_ms - (int64_t)p->days * 86400000 - 731 * 86400000LL < 0)
    return "end is too early for the window (items are created up to 2 years before it)";
  return NULL;
}

static int mkdir_p(const char *dir) {
  char path[4096];
  size_t n = strlen(dir);
  if (n == 0 || n >= sizeof path) return -ENAMETOOLONG;
  memcpy(path, dir, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (path[i] != '/' && path[i] != 0) continue;
    char c = path[i];
    path[i] = 0;
    if (mkdir(path, 0777) && errno != EEXIST) return -errno;
    path[i] = c;
  }
  struct stat st;
  if (stat(dir, &st)) return -errno;
  return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* write DIR/name through DIR/.name.tmp, renamed into place when complete */
static int write_file(gen_world *w, const char *dir, const char *name, int events,
                      void (*progress)(void *, double), void *arg, char *err, size_t errlen) {
  char tmp[4200], final[4200];
  snprintf(final, sizeof final, "%s/%s", dir, name);
  snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
  gen_out o;
  int rc = out_open(&o, tmp);
  if (rc) {
    snprintf(err, errlen, "%s: %s", tmp, strerror(-rc));
    return rc;
  }
  if (events) write_events(w, &o, progress, arg);
  else write_items(w, &o);
  rc = out_close(&o);
  if (!rc && rename(tmp, final)) rc = -errno;
  if (rc) {
    snprintf(err, errlen, "%s: %s", final, strerror(-rc));
    unlink(tmp);
  }
  return rc;
}

int gen_write(const gen_params *p, const char *outdir, void (*progress)(void *arg, double frac),
              void *arg, char *err, size_t errlen) {
  const char *msg = gen_check_params(p);
  if (msg) {
    snprintf(err, errlen, "%s", msg);
    return RECD_EINVAL;
  }
  int rc = mkdir_p(outdir);
  if (rc) {
    snprintf(err, errlen, "%s: %s", outdir, strerror(-rc));
    return rc;
  }
  gen_params q = *p;
  if (!q.end_ms) q.end_ms = clock_now_ms() / 1000 * 1000;
  gen_world w;
  world_build(&w, &q, q.end_ms);
  if (progress) progress(arg, 0.0);
  rc = write_file(&w, outdir, "items.jsonl", 0, NULL, NULL, err, errlen);
  if (!rc) rc = write_file(&w, outdir, "events.csv", 1, progress, arg, err, errlen);
  if (!rc && progress) progress(arg, 1.0);
  world_release(&w);
  return rc;
}

/* ------------------------------------------------------------------ CLI --- */

static void gen_usage(FILE *f) {
  fprintf(f,
          "usage: recd gen [options]\n"
          "Write a synthetic shop (catalog + event stream) for demos, tests and benchmarks.\n"
          "\n"
          "  --out DIR                output directory, created if missing (default: .)\n"
          "                           writes DIR/items.jsonl and DIR/events.csv\n"
          "  --seed N                 random seed; same flags, same bytes (default 42)\n"
          "  --users N                number of users (default 10000)\n"
          "  --items N                number of catalog items (default 2000)\n"
          "  --events N               exact number of events (default 200000)\n"
          "  --categories N           number of categories, 1..200 (default 12)\n"
          "  --days N                 days of history the events cover (default 28)\n"
          "  --end TIME               end of the history, RFC 3339 or unix seconds\n"
          "                           (default: now, so runs differ unless set)\n"
          "  --unavailable-share F    share of items marked \"available\":false (default 0.05)\n"
          "  --quiet                  no progress bar\n"
          "  --help                   this text\n"
          "\n"
          "Counts accept k/M suffixes (100k, 20M). Memory is O(users + items); events are\n"
          "streamed in time order. Load the result with:\n"
          "  recd import --items DIR/items.jsonl DIR/events.csv\n");
}

static int parse_count(const char *s, long *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || errno) return -1;
  if (*end == 'k' || *end == 'K') v *= 1e3, end++;
  else if (*end == 'm' || *end == 'M') v *= 1e6, end++;
  else if (*end == 'g' || *end == 'G') v *= 1e9, end++;
  if (*end || v < 0 || v > 1e15 || v != floor(v)) return -1;
  *out = (long)v;
  return 0;
}

typedef struct {
  int tty;
  int64_t t0;
  int last;
} gen_bar;

static void gen_progress(void *arg, double frac) {
  gen_bar *b = arg;
  int pct = (int)(frac * 100);
  if (pct == b->last) return;
  b->last = pct;
  double s = (double)(clock_mono_ns() - b->t0) / 1e9;
  fprintf(stderr, "\rgen: %3d%%  %.1f s", pct, s);
  if (pct >= 100) fputc('\n', stderr);
  fflush(stderr);
}

int cmd_gen(int argc, char **argv) {
  gen_params p;
  gen_default_params(&p);
  const char *out = ".";
  int quiet = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = NULL;
    char name[64];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      gen_usage(stdout);
      return 0;
    }
    if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
      quiet = 1;
      continue;
    }
    if (strncmp(a, "--", 2)) {
      fprintf(stderr, "recd gen: unexpected argument '%s' (see --help)\n", a);
      return 2;
    }
    const char *eq = strchr(a, '=');
    size_t nl = eq ? (size_t)(eq - a) : strlen(a);
    if (nl >= sizeof name) nl = sizeof name - 1;
    memcpy(name, a, nl);
    name[nl] = 0;
    if (eq) v = eq + 1;
    else if (i + 1 < argc) v = argv[++i];
    else {
      fprintf(stderr, "recd gen: %s needs a value (see --help)\n", name);
      return 2;
    }
    long n = 0;
    int bad = 0;
    if (!strcmp(name, "--out")) {
      out = v;
    } else if (!strcmp(name, "--seed")) {
      char *end;
      errno = 0;
      p.seed = strtoull(v, &end, 0);
      bad = end == v || *end || errno || *v == '-';
    } else if (!strcmp(name, "--users")) {
      bad = parse_count(v, &n);
      p.users = n;
    } else if (!strcmp(name, "--items")) {
      bad = parse_count(v, &n);
      p.items = n;
    } else if (!strcmp(name, "--events")) {
      bad = parse_count(v, &n);
      p.events = n;
    } else if (!strcmp(name, "--categories")) {
      bad = parse_count(v, &n) || n > 100000;
      p.categories = (int)n;
    } else if (!strcmp(name, "--days")) {
      bad = parse_count(v, &n) || n > 100000;
      p.days = (int)n;
    } else if (!strcmp(name, "--unavailable-share")) {
      char *end;
      p.unavailable_share = strtod(v, &end);
      bad = end == v || *end;
    } else if (!strcmp(name, "--end")) {
      int64_t ms;
      char *end;
      double secs = strtod(v, &end);
      if (end != v && !*end && secs >= 0) p.end_ms = (int64_t)(secs * 1000);
      else if (clock_parse_rfc3339(v, strlen(v), &ms) == 0 && ms >= 0) p.end_ms = ms;
      else bad = 1;
      if (!bad && p.end_ms == 0) p.end_ms = 1; /* 0 would mean now */
    } else {
      fprintf(stderr, "recd gen: unknown option '%s' (see --help)\n", name);
      return 2;
    }
    if (bad) {
      fprintf(stderr, "recd gen: bad value '%s' for %s\n", v, name);
      return 2;
    }
  }
  const char *msg = gen_check_params(&p);
  if (msg) {
    fprintf(stderr, "recd gen: %s\n", msg);
    return 2;
  }
  gen_bar bar = {.tty = !quiet && isatty(2), .t0 = clock_mono_ns(), .last = -1};
  char err[512];
  int rc = gen_write(&p, out, bar.tty ? gen_progress : NULL, &bar, err, sizeof err);
  if (rc) {
    fprintf(stderr, "recd gen: %s\n", err);
    return 1;
  }
  double s = (double)(clock_mono_ns() - bar.t0) / 1e9;
  printf("wrote %s/items.jsonl (%ld items, %d categories) and %s/events.csv (%ld events, %ld "
         "users, %d days) in %.2f s\n",
         out, p.items, p.categories, out, p.events, p.users, p.days, s);
  return 0;
}
