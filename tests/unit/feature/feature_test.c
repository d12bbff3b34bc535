/* tests for src/feature: userprof, itemstats */
#include <malloc.h>
#include <math.h>

#include "feature/itemstats.h"
#include "feature/userprof.h"
#include "unit.h"

#define DAY 86400000LL

START_TEST(ring_and_counts) {
  userprof_params pp = {.affinity_half_life_ms = DAY, .engagement_half_life_ms = DAY, .recent_cap = 5};
  userprof *p = userprof_new(5);
  uint32_t cat = 7;
  for (uint32_t i = 0; i < 12; i++) userprof_apply(p, &pp, i, (int)(i % 5), 1.0f, 1000 + i, &cat, 1, NULL);
  ck_assert_uint_eq(p->total, 12);
  ck_assert_uint_eq(p->counts[0], 3);
  ck_assert_uint_eq(p->ring_len, 5);
  ck_assert_uint_eq(userprof_recent(p, 0)->iid, 11);  /* newest first */
  ck_assert_uint_eq(userprof_recent(p, 4)->iid, 7);
  ck_assert_ptr_null(userprof_recent(p, 5));
  ck_assert_uint_eq(p->seen.count, 12);
  ck_assert_int_eq(p->first_ts, 1000);
  ck_assert_int_eq(p->last_ts, 1011);
  /* the same (item, type) twice is not fresh; a new type on it is */
  ck_assert_int_eq(userprof_apply(p, &pp, 11, 1, 1.0f, 2000, &cat, 1, NULL), 0);
  ck_assert_int_eq(userprof_apply(p, &pp, 11, 4, 1.0f, 2001, &cat, 1, NULL), 1);
  userprof_free(p);
}
END_TEST

/* userprof_memory counts what the profile's allocations hold: each part
 * against malloc's own size of the blocks behind it (usable size: the asked
 * bytes rounded up by less than a 16-byte step and a header word) */
static void near_usable(size_t counted, size_t usable, const char *what) {
  ck_assert_msg(counted <= usable && usable < counted + 32, "%s: counted %zu, malloc holds %zu", what, counted, usable);
}

START_TEST(memory_counts_the_blocks) {
  userprof_params pp = {.affinity_half_life_ms = DAY, .engagement_half_life_ms = DAY, .recent_cap = 100};
  userprof *p = userprof_new(5);
  userprof_mem m0 = userprof_memory(p, 5);
  ck_assert_uint_eq(m0.ring, 0);
  ck_assert_uint_eq(m0.seen, 0);
  for (uint32_t i = 0; i < 300; i++) {
    uint32_t cat = i % 11;
    userprof_apply(p, &pp, i % 170, (int)(i % 5), 1.0f, 1000 + i, &cat, 1,
                   "a-session-id-longer-than-the-inline-sixteen-bytes");
  }
  userprof_mem m = userprof_memory(p, 5);
  near_usable(m.ring, malloc_usable_size(p->ring), "ring");
  ck_assert_uint_eq(m.seen, (size_t)p->seen.cap * 8);
  near_usable(m.seen / 2, malloc_usable_size(p->seen.keys), "seen keys");
  near_usable(m.seen / 2, malloc_usable_size(p->seen.vals), "seen vals");
  size_t blocks = malloc_usable_size(p) + malloc_usable_size(p->aff) + malloc_usable_size(p->session);
  ck_assert_msg(m.profile <= blocks && blocks < m.profile + 3 * 32, "profile: counted %zu, malloc holds %zu", m.profile,
                blocks);
  userprof_free(p);
}
END_TEST

START_TEST(affinity_decays) {
  userprof_params pp = {.affinity_half_life_ms = DAY, .engagement_half_life_ms = DAY, .recent_cap = 5};
  userprof *p = userprof_new(5);
  uint32_t books = 1, toys = 2;
  userprof_apply(p, &pp, 1, 0, 4.0f, 0, &books, 1, NULL);
  userprof_apply(p, &pp, 2, 0, 4.0f, DAY, &toys, 1, NULL);
  ck_assert_int_eq(p->naff, 2);
  /* at t = DAY, books has decayed by half, toys not at all */
  double b = 0, t = 0;
  for (int i = 0; i < p->naff; i++) {
    if (p->aff[i].cat == books) b = userprof_affinity(p, i, DAY, DAY);
    if (p->aff[i].cat == toys) t = userprof_affinity(p, i, DAY, DAY);
  }
  ck_assert_double_eq_tol(b, 2.0, 1e-4);
  ck_assert_double_eq_tol(t, 4.0, 1e-4);
  /* an out-of-order event adds its pre-decayed weight */
  userprof_apply(p, &pp, 3, 0, 4.0f, 0, &toys, 1, NULL);
  for (int i = 0; i < p->naff; i++)
    if (p->aff[i].cat == toys) t = userprof_affinity(p, i, DAY, DAY);
  ck_assert_double_eq_tol(t, 6.0, 1e-4);
  userprof_free(p);
}
END_TEST

START_TEST(sessions) {
  userprof_params pp = {.affinity_half_life_ms = DAY, .engagement_half_life_ms = DAY, .recent_cap = 5};
  userprof *p = userprof_new(5);
  userprof_apply(p, &pp, 1, 0, 1, 0, NULL, 0, "s1");
  userprof_apply(p, &pp, 2, 0, 1, 1000, NULL, 0, "s1");
  ck_assert_uint_eq(p->sessions, 1);
  ck_assert_uint_eq(p->session_events, 2);
  userprof_apply(p, &pp, 3, 0, 1, 2000, NULL, 0, "s2");
  ck_assert_uint_eq(p->sessions, 2);
  ck_assert_str_eq(p->session, "s2");
  /* ids of 15 bytes live in the profile, longer ones on the heap: switching
   * between the two keeps each id and counts each switch (ASan: no leak, no
   * bad free) */
  static const char *const ids[] = {"0123456789abcde", "0123456789abcdef", "0123456789abcdef-and-more", "", "s2",
                                    "0123456789abcdef"};
  for (int i = 0; i < 6; i++) {
    userprof_apply(p, &pp, 4, 0, 1, 3000 + i, NULL, 0, ids[i]);
    userprof_apply(p, &pp, 5, 0, 1, 3000 + i, NULL, 0, ids[i]);
    ck_assert_str_eq(p->session, ids[i]);
    ck_assert_uint_eq(p->sessions, 3 + (uint32_t)i);
    ck_assert_uint_eq(p->session_events, 2);
  }
  userprof_apply(p, &pp, 6, 0, 1, 4000, NULL, 0, NULL); /* no id: a new session without one */
  ck_assert_ptr_null(p->session);
  userprof_set_session(p, "0123456789abcdef0123", 20);
  ck_assert_str_eq(p->session, "0123456789abcdef0123");
  userprof_free(p);
}
END_TEST

Suite *userprof_suite(void) {
  Suite *s = suite_create("userprof");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, ring_and_counts);
  tcase_add_test(tc, affinity_decays);
  tcase_add_test(tc, sessions);
  tcase_add_test(tc, memory_counts_the_blocks);
  suite_add_tcase(s, tc);
  return s;
}

START_TEST(popularity_and_window) {
  itemstats_params pp = {.popularity_half_life_ms = DAY};
  itemstats *s = itemstats_new(5);
  itemstats_apply(s, &pp, 0, 1.0f, 0);
  itemstats_apply(s, &pp, 4, 6.0f, 10 * DAY);
  ck_assert_double_eq_tol(itemstats_popularity(s, 10 * DAY, DAY), 6.0 + exp2(-10), 1e-4);
  ck_assert_double_eq_tol(itemstats_popularity(s, 11 * DAY, DAY), (6.0 + exp2(-10)) / 2, 1e-4);
  ck_assert_double_eq_tol(itemstats_window(s, 10 * DAY, 7, 0), 6.0, 1e-6);  /* day 0 is outside 7 days */
  ck_assert_double_eq_tol(itemstats_window(s, 10 * DAY, 11, 0), 7.0, 1e-6);
  ck_assert_double_eq_tol(itemstats_window(s, 11 * DAY + 5, 7, DAY), 3.0, 1e-4); /* one day old: half */
  ck_assert_uint_eq(s->counts[4], 1);
  ck_assert_double_eq_tol(itemstats_ratio(1, 10, 0.1, 10), 0.1, 1e-9);
  ck_assert_int_eq(itemstats_recommendable(s), 1);
  s->deleted = 1;
  ck_assert_int_eq(itemstats_recommendable(s), 0);
  itemstats_free(s);
}
END_TEST

Suite *itemstats_suite(void) {
  Suite *s = suite_create("itemstats");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, popularity_and_window);
  suite_add_tcase(s, tc);
  return s;
}
