/* tests for src/model: covis, content, popularity */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/content.h"
#include "model/covis.h"
#include "model/popularity.h"
#include "unit.h"
#include "util/topkeys.h"

#define DAY 86400000LL

START_TEST(covis_accumulates_and_bounds) {
  covis_params p = {.max_neighbors = 4, .half_life_ms = DAY};
  covis_list *l = covis_new(0);
  covis_add(l, &p, 10, 1.0, 0);
  covis_add(l, &p, 10, 1.0, 0);
  covis_add(l, &p, 11, 1.0, 0);
  ck_assert_int_eq(l->n, 2);
  ck_assert_float_eq_tol(l->e[0].w, 2.0f, 1e-6);
  ck_assert_float_eq_tol(l->norm, 3.0f, 1e-6);
  for (uint32_t k = 12; k < 20; k++) covis_add(l, &p, k, 0.1, 0);
  ck_assert_int_le(l->n, COVIS_LIMIT(4)); /* bounded */
  int has10 = 0;
  for (int i = 0; i < l->n; i++) has10 |= l->e[i].iid == 10;
  ck_assert_int_eq(has10, 1); /* the heavy pair survives Space-Saving eviction */
  /* decay: a weight added one half-life later counts double relative to old ones */
  covis_add(l, &p, 11, 1.0, DAY);
  double sc = covis_scale(l, DAY, DAY);
  for (int i = 0; i < l->n; i++)
    if (l->e[i].iid == 10) ck_assert_double_eq_tol(l->e[i].w * sc, 1.0, 1e-5);
  /* rebasing far in the future keeps values finite and right */
  covis_add(l, &p, 10, 1.0, 100 * DAY);
  sc = covis_scale(l, 100 * DAY, DAY);
  for (int i = 0; i < l->n; i++) {
    ck_assert(isfinite(l->e[i].w));
    if (l->e[i].iid == 10) ck_assert_double_eq_tol(l->e[i].w * sc, 1.0, 1e-5);
  }
  covis_free(l);
}
END_TEST

static int cmp_float_desc(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return x < y ? 1 : x > y ? -1 : 0;
}

/* the top set of l holds the COVIS_TOP largest guaranteed weights */
static void assert_top_set(const covis_list *l) {
  float all[COVIS_LIMIT(700) + 1], got[COVIS_TOP];
  for (int i = 0; i < l->n; i++) all[i] = l->e[i].w - l->e[i].err;
  qsort(all, l->n, sizeof *all, cmp_float_desc);
  const covis_ent *top;
  int n = covis_top_set(l, &top);
  ck_assert_int_eq(n, l->n < COVIS_TOP ? l->n : COVIS_TOP);
  for (int i = 0; i < n; i++) got[i] = top[i].w - top[i].err;
  qsort(got, n, sizeof *got, cmp_float_desc);
  for (int i = 0; i < n; i++) ck_assert_float_eq(got[i], all[i]);
}

/* every entry of l is found through the index: a zero add (eager) to it
 * neither appends nor moves anything */
static void assert_indexed(covis_list *l, int max_neighbors, int64_t ts) {
  covis_params p = {.max_neighbors = max_neighbors, .half_life_ms = DAY};
  int before = l->n;
  for (int i = 0; i < l->n; i++) {
    uint32_t id = l->e[i].iid;
    covis_add(l, &p, id, 0.0, ts);
    ck_assert_int_eq(l->n, before);
    ck_assert_uint_eq(l->e[i].iid, id);
  }
}

/* covis_top_set reads the top set kept at write time: it must hold the
 * same guaranteed weights a full sort would pick, through growth, pruning,
 * rebasing and a reload (covis_reindex), and the index must stay right */
START_TEST(covis_top_set_kept_at_write_time) {
  covis_params p = {.max_neighbors = 256, .half_life_ms = DAY};
  covis_list *l = covis_new(0);
  uint64_t x = 777;
  for (int k = 0; k < 60000; k++) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    uint32_t nb = (x >> 40) % 4 ? (uint32_t)((x >> 20) % 40) : 40 + (uint32_t)((x >> 33) % 3000);
    int64_t ts = (int64_t)k * (DAY / 500); /* 120 half-lives: several rebases */
    covis_add(l, &p, nb, (double)((x >> 50) % 7 + 1), ts);
    if (k % 997 && k != 59999 && !(k < 200 && k % 7 == 0)) continue; /* early: lists shorter than the top set */
    if (k == 30000) { /* as a snapshot load does: same entries, rebuilt index and top set */
      covis_list *c = covis_new(l->t0);
      c->norm = l->norm, c->floor = l->floor, c->n = c->cap = l->n;
      c->e = malloc(l->n * sizeof *c->e);
      for (int i = 0; i < l->n; i++) c->e[l->n - 1 - i] = l->e[i]; /* reversed: the top set must be rebuilt */
      covis_reindex(c);
      covis_free(l);
      l = c;
    }
    assert_top_set(l);
    assert_indexed(l, p.max_neighbors, ts);
  }
  covis_free(l);
}
END_TEST


/* Lazy upkeep (a bulk load) skips the top set; settled, the list has a right
 * top set, and it holds the very entries eager adds give, even where prunes
 * cut through equal weights (many entries get one add of the same weight at
 * the same time). The lazy list then goes on eagerly, as a server does after
 * its replay. Compared in canonical order. */
START_TEST(covis_lazy_settles_to_the_eager_list) {
  /* 700: lists of over 512 entries select in heap buffers (covis.c) */
  covis_params eager = {.max_neighbors = _i ? 700 : 256, .half_life_ms = DAY}, lazy = eager;
  lazy.lazy = 1;
  covis_list *a = covis_new(0), *b = covis_new(0);
  uint64_t x = 4242;
  for (int k = 0; k < 80000; k++) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    uint32_t nb = (x >> 40) % 3 ? (uint32_t)((x >> 20) % 60) : 60 + (uint32_t)((x >> 33) % (_i ? 9000 : 5000));
    int64_t ts = (int64_t)(k / 16) * (DAY / 200); /* 16 adds at a time: equal weights; rebases too */
    double w = (double)((x >> 50) % 3 + 1);
    covis_add(a, &eager, nb, w, ts);
    covis_add(b, k < 50000 ? &lazy : &eager, nb, w, ts);
    if (k == 49999) {
      ck_assert_int_eq(b->unsettled, 1);
      covis_settle(b);
      ck_assert_int_eq(b->unsettled, 0);
      assert_top_set(b);
      assert_indexed(b, eager.max_neighbors, ts); /* the settle moved entries */
    }
    if (k > 50000 && k % 1999 == 0) assert_top_set(b);
  }
  covis_canonicalize(a);
  covis_canonicalize(b);
  ck_assert_int_eq(a->n, b->n);
  ck_assert_int_eq(a->t0, b->t0);
  ck_assert_float_eq(a->norm, b->norm);
  ck_assert_float_eq(a->floor, b->floor);
  ck_assert_float_gt(a->floor, 0); /* it pruned */
  ck_assert_int_eq(memcmp(a->e, b->e, a->n * sizeof *a->e), 0);
  assert_top_set(a);
  covis_free(a);
  covis_free(b);
}
END_TEST

START_TEST(covis_index_and_lower_bounds) {
  covis_params p = {.max_neighbors = 64, .half_life_ms = DAY};
  covis_list *l = covis_new(0);
  double truth[2000] = {0};
  uint64_t x = 12345;
  for (int k = 0; k < 50000; k++) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    /* 30% of the mass on ten heavy ids (each above N / max_neighbors), the rest a long tail */
    uint32_t nb = (x >> 40) % 10 < 3 ? (uint32_t)((x >> 20) % 10) : 10 + (uint32_t)((x >> 33) % 1990);
    covis_add(l, &p, nb, 1.0, 0);
    truth[nb] += 1.0;
  }
  ck_assert_int_le(l->n, COVIS_LIMIT(64));
  ck_assert_int_ge(l->n, 64);
  ck_assert_int_gt(l->hcap, 0);
  for (int i = 0; i < l->n; i++) {
    /* w - err never over-states, w never under-states */
    ck_assert_double_le(l->e[i].w - l->e[i].err, truth[l->e[i].iid] + 1e-3);
    ck_assert_double_ge(l->e[i].w + 1e-3, truth[l->e[i].iid]);
  }
  /* the heaviest ten true neighbours are all kept */
  for (int r = 0; r < 10; r++) {
    int best = 0;
    for (int j = 1; j < 2000; j++)
      if (truth[j] > truth[best]) best = j;
    int found = 0;
    for (int i = 0; i < l->n; i++) found |= l->e[i].iid == (uint32_t)best;
    ck_assert_msg(found, "heavy neighbour %d (weight %.0f) lost", best, truth[best]);
    truth[best] = -1;
  }
  covis_free(l);
}
END_TEST

/* covis_load_cap: a list rebuilt from a snapshot has at least the room adds
 * gave it (the same while it never reached max_neighbors), and from
 * max_neighbors on the room it grows to before any prune */
START_TEST(covis_load_cap_is_what_adds_reach) {
  static const int maxes[] = {4, 10, 64, 256};
  for (size_t m = 0; m < sizeof maxes / sizeof maxes[0]; m++) {
    int max = maxes[m], limit = COVIS_LIMIT(max);
    covis_params p = {.max_neighbors = max, .half_life_ms = DAY};
    covis_list *l = covis_new(0);
    int pruned = 0;
    for (uint32_t nb = 0; nb < (uint32_t)(3 * limit); nb++) {
      int before = l->n;
      covis_add(l, &p, nb, 1.0 + nb % 7, 0);
      pruned |= l->n < before;
      int lc = covis_load_cap(l->n, max);
      ck_assert_int_ge(lc, l->cap);
      ck_assert_int_le(lc, limit + 1);
      if (!pruned && l->n < max) ck_assert_int_eq(lc, l->cap);
      if (l->n >= max) ck_assert_int_eq(lc, limit + 1);
    }
    ck_assert_msg(pruned, "max %d: never pruned", max);
    covis_free(l);
  }
}
END_TEST

Suite *covis_suite(void) {
  Suite *s = suite_create("covis");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, covis_accumulates_and_bounds);
  tcase_add_test(tc, covis_index_and_lower_bounds);
  tcase_add_test(tc, covis_load_cap_is_what_adds_reach);
  tcase_add_test(tc, covis_top_set_kept_at_write_time);
  tcase_add_loop_test(tc, covis_lazy_settles_to_the_eager_list, 0, 2);
  suite_add_tcase(s, tc);
  return s;
}

START_TEST(content_similarity) {
  content_index c;
  content_init(&c);
  uint32_t books = content_category_id(&c, "books", 5), toys = content_category_id(&c, "toys", 4);
  uint32_t scifi = content_tag_id(&c, "scifi", 5), kids = content_tag_id(&c, "kids", 4);
  uint32_t cb[] = {books}, ct[] = {toys}, ts[] = {scifi}, tk[] = {kids};
  content_set(&c, 0, NULL, 0, NULL, 0, cb, 1, ts, 1); /* book, scifi */
  content_set(&c, 1, NULL, 0, NULL, 0, cb, 1, tk, 1); /* book, kids */
  content_set(&c, 2, NULL, 0, NULL, 0, ct, 1, tk, 1); /* toy, kids */
  content_set(&c, 3, NULL, 0, NULL, 0, cb, 1, ts, 1); /* book, scifi: most like 0 */
  content_hit hits[8];
  size_t n = content_similar(&c, cb, 1, ts, 1, 0, 8, 100, NULL, hits);
  ck_assert_uint_eq(n, 2);           /* 3 and 1 share something; 2 shares nothing */
  ck_assert_uint_eq(hits[0].iid, 3);
  ck_assert_uint_eq(hits[1].iid, 1);
  ck_assert_float_gt(hits[0].score, hits[1].score);
  /* moving item 3 to toys/kids updates postings */
  content_set(&c, 3, cb, 1, ts, 1, ct, 1, tk, 1);
  n = content_similar(&c, cb, 1, ts, 1, 0, 8, 100, NULL, hits);
  ck_assert_uint_eq(n, 1);
  ck_assert_uint_eq(hits[0].iid, 1);
  ck_assert_uint_eq(content_find_category(&c, "toys", 4), toys);
  ck_assert_str_eq(content_category_name(&c, books), "books");
  content_release(&c);
}
END_TEST

Suite *content_suite(void) {
  Suite *s = suite_create("content");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, content_similarity);
  suite_add_tcase(s, tc);
  return s;
}

START_TEST(topk_lists) {
  trending *t = trending_new(2, 3, 2, 2);
  uint32_t c0[] = {0}, c1[] = {1};
  for (uint32_t i = 0; i < 10; i++) trending_offer(t, i, (float)i, i % 2 ? c1 : c0, 1, i == 4 ? 0.5f : 0);
  trending_finish(t);
  ck_assert_uint_eq(t->global.n, 3);
  ck_assert_uint_eq(t->global.e[0].iid, 9);
  ck_assert_uint_eq(t->global.e[2].iid, 7);
  ck_assert_uint_eq(t->cat[0].n, 2);
  ck_assert_uint_eq(t->cat[0].e[0].iid, 8);
  ck_assert_uint_eq(t->cat[1].e[1].iid, 7);
  ck_assert_uint_eq(t->fresh.n, 1);
  ck_assert_uint_eq(t->fresh.e[0].iid, 4);
  ck_assert_float_eq(t->max_global, 9.0f);
  trending *r = trending_retain(t);
  trending_release(t);
  ck_assert_uint_eq(r->global.n, 3); /* still alive */
  trending_release(r);
}
END_TEST

/* the heap's own sort gives the full descending order, ties by larger id first */
START_TEST(pop_list_sorted_like_a_full_sort) {
  uint64_t x = 12345;
  for (int round = 0; round < 200; round++) {
    uint32_t k = 1 + (uint32_t)(round % 50), n = (uint32_t)(round * 7 % 300);
    pop_list l;
    pop_list_init(&l, k);
    float all[300];
    for (uint32_t i = 0; i < n; i++) {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      all[i] = (float)(x >> 60); /* few distinct scores: many ties */
      pop_list_offer(&l, i, all[i]);
    }
    pop_list_sort(&l);
    ck_assert_uint_eq(l.n, n < k ? n : k);
    for (uint32_t i = 0; i + 1 < l.n; i++)
      ck_assert(l.e[i].score > l.e[i + 1].score || (l.e[i].score == l.e[i + 1].score && l.e[i].iid > l.e[i + 1].iid));
    /* and they are the best: nothing left out beats the last one kept */
    for (uint32_t i = 0; l.n && i < n; i++) {
      int kept = 0;
      for (uint32_t j = 0; j < l.n; j++) kept |= l.e[j].iid == i;
      const pop_ent *last = &l.e[l.n - 1];
      if (!kept) ck_assert(all[i] < last->score || (all[i] == last->score && i < last->iid));
    }
    pop_list_release(&l);
  }
}
END_TEST

/* topkeys over topkeys_key(score, id) (what finish_list orders candidates
 * with) gives exactly what the heap gives, and leaves every key in place */
START_TEST(topkeys_equals_the_heap) {
  uint64_t x = 777;
  for (int round = 0; round < 400; round++) {
    uint32_t k = 1 + (uint32_t)(round % 70), n = (uint32_t)(round * 13 % 2000); /* both methods (sample or sort all) */
    int distinct = round % 3 == 0 ? 4 : round % 3 == 1 ? 64 : 1 << 20; /* ties, some, none */
    pop_list l;
    pop_list_init(&l, k);
    uint64_t *all = xmalloc((n ? n : 1) * sizeof *all);
    for (uint32_t i = 0; i < n; i++) {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      pop_ent pe = {.iid = n - 1 - i, .score = (float)((x >> 33) % (uint64_t)distinct)};
      all[i] = topkeys_key(pe.score, pe.iid);
      pop_list_offer(&l, pe.iid, pe.score);
    }
    pop_list_sort(&l);
    ck_assert_uint_ge(topkeys_front(all, n, k), l.n);
    for (uint32_t i = 0; i < l.n; i++) {
      ck_assert_uint_eq((uint32_t)all[i], l.e[i].iid);
      ck_assert(all[i] == topkeys_key(l.e[i].score, l.e[i].iid));
    }
    /* the others are all still there after them (callers select further chunks from the rest) */
    uint8_t *seen = xcalloc(n ? n : 1, 1);
    for (uint32_t i = 0; i < n; i++) {
      ck_assert_uint_lt((uint32_t)all[i], n);
      ck_assert(!seen[(uint32_t)all[i]]);
      seen[(uint32_t)all[i]] = 1;
    }
    free(seen);
    free(all);
    pop_list_release(&l);
  }
}
END_TEST

Suite *popularity_suite(void) {
  Suite *s = suite_create("popularity");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, topk_lists);
  tcase_add_test(tc, pop_list_sorted_like_a_full_sort);
  tcase_add_test(tc, topkeys_equals_the_heap);
  suite_add_tcase(s, tc);
  return s;
}
