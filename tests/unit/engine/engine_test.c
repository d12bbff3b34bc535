/* tests for src/engine: event/item validation, and the engine end to end
 * (ingest, read-your-writes, rules, restart). */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/engine.h"
#include "engine/engine_int.h"
#include "unit.h"
#include "util/err.h"

static recd_engine *open_engine(const char *dir, recd_config *c) {
  config_defaults(c);
  snprintf(c->data, sizeof c->data, "%s", dir);
  char err[512];
  recd_engine *e = NULL;
  int rc = engine_open(c, &e, err, sizeof err);
  ck_assert_msg(rc == 0, "engine_open: %s", err);
  return e;
}

static int parse_ev(recd_engine *e, const char *js, recd_event *ev, recd_fail *f, json_t **keep) {
  json_error_t je;
  *keep = json_loads(js, 0, &je);
  ck_assert_ptr_nonnull(*keep);
  return engine_parse_event(e, *keep, 3, 1700000000000LL, ev, f);
}

START_TEST(event_validation) {
  char *dir = unit_tmpdir();
  recd_config c;
  recd_engine *e = open_engine(dir, &c);
  recd_event ev;
  recd_fail f;
  json_t *j;
  ck_assert_int_eq(parse_ev(e, "{\"user_id\":\"u\",\"item_id\":\"i\",\"event_type\":\"click\",\"timestamp\":1600000000.5}", &ev, &f, &j), 0);
  ck_assert_int_eq(ev.type, 1);
  ck_assert_int_eq(ev.ts_ms, 1600000000500LL);
  json_decref(j);
  ck_assert_int_eq(parse_ev(e, "{\"user_id\":\"u\",\"item_id\":\"i\",\"event_type\":\"view\",\"timestamp\":\"2023-11-14T22:13:20Z\",\"value\":2}", &ev, &f, &j), 0);
  ck_assert_int_eq(ev.ts_ms, 1700000000000LL);
  ck_assert_int_eq(ev.has_value, 1);
  json_decref(j);

  static const struct {
    const char *js, *field, *needle;
  } bad[] = {
      {"{\"user_id\":\"u\",\"item_id\":\"i\",\"event_type\":\"clik\"}", "event_type", "events[3].event_type: unknown type 'clik'"},
      {"{\"user_id\":7,\"item_id\":\"i\",\"event_type\":\"view\"}", "user_id", "must be a string"},
      {"{\"item_id\":\"i\",\"event_type\":\"view\"}", "user_id", "is required"},
      {"{\"user_id\":\"\",\"item_id\":\"i\",\"event_type\":\"view\"}", "user_id", "must not be empty"},
      {"{\"user_id\":\"a\\u0001b\",\"item_id\":\"i\",\"event_type\":\"view\"}", "user_id", "control character"},
      {"{\"user_id\":\"u\",\"item_id\":\"i\",\"event_type\":\"view\",\"value\":\"5\"}", "value", "finite number"},
      {"{\"user_id\":\"u\",\"item_id\":\"i\",\"event_type\":\"view\",\"timestamp\":true}", "timestamp", "RFC 3339"},
      {"{\"user_id\":\"u\",\"item_id\":\"i\",\"event_type\":\"view\",\"timestamp\":\"soon\"}", "timestamp", "RFC 3339"},
      {"{\"user_id\":\"u\",\"item_id\":\"i\",\"event_type\":\"view\",\"timestamp\":1800000000}", "timestamp", "future"},
      {"{\"user_id\":\"u\",\"item_id\":\"i\",\"event_type\":\"view\",\"colour\":1}", "colour", "unknown field"},
  };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    ck_assert_int_ne(parse_ev(e, bad[k].js, &ev, &f, &j), 0);
    ck_assert_int_eq(f.status, 400);
    ck_assert_str_eq(f.code, "invalid_event");
    ck_assert_str_eq(f.field, bad[k].field);
    ck_assert_int_eq(f.index, 3);
    ck_assert_msg(strstr(f.message, bad[k].needle), "case %zu: '%s' lacks '%s'", k, f.message, bad[k].needle);
    json_decref(j);
  }
  char big[400];
  memset(big, 'x', 257);
  big[257] = 0;
  char js[600];
  snprintf(js, sizeof js, "{\"user_id\":\"%s\",\"item_id\":\"i\",\"event_type\":\"view\"}", big);
  ck_assert_int_ne(parse_ev(e, js, &ev, &f, &j), 0);
  ck_assert_ptr_nonnull(strstr(f.message, "257 bytes"));
  json_decref(j);
  engine_free(e);
  unit_rmrf(dir);
  free(dir);
}
END_TEST

/* the catalog's plain-text reader: what it accepts is read as jansson and
 * engine_parse_item read it (properties byte for byte); the rest it declines */
START_TEST(item_text_fast_path) {
  char *dir = unit_tmpdir();
  recd_config c;
  recd_engine *e = open_engine(dir, &c);
  int64_t now = 1700000000000LL;
  static const char *plain[] = {
      "{\"item_id\":\"item_1\",\"categories\":[\"books\"],\"tags\":[\"t9\",\"t10\"],\"available\":true,"
      "\"created_at\":\"2023-07-18T00:22:35.000Z\",\"properties\":{\"price\":21.99,\"title\":\"Nordic Poetry\"}}",
      " { \"item_id\" : \"i2\" , \"categories\" : [ ] , \"tags\" : null , \"available\" : false , \"created_at\" : 1600000000 ,"
      " \"properties\" : { \"a\" : -0.0 , \"b\" : -5 , \"c\" : 1.0 , \"d\" : 0.1 , \"e\" : 123456789012345678 ,"
      " \"f\" : null , \"g\" : true , \"\" : \"x\" , \"h\" : 1.00000000000000000001 } } ",
      "{\"item_id\":\"i3\"}",
      "{\"properties\":{},\"item_id\":\"i4\",\"created_at\":null,\"available\":null}",
  };
  for (size_t k = 0; k < sizeof plain / sizeof plain[0]; k++) {
    arena a;
    arena_init(&a);
    recd_item fast, gen;
    recd_fail f;
    ck_assert_msg(!engine_parse_item_text(e, plain[k], strlen(plain[k]), NULL, now, &a, &fast), "case %zu declined", k);
    json_t *j = json_loads(plain[k], 0, NULL);
    ck_assert_int_eq(engine_parse_item(e, j, NULL, -1, &a, &gen, &f), 0);
    ck_assert_str_eq(fast.item_id, gen.item_id);
    ck_assert_uint_eq(fast.ncategories, gen.ncategories);
    for (size_t i = 0; i < gen.ncategories; i++) ck_assert_str_eq(fast.categories[i], gen.categories[i]);
    ck_assert_uint_eq(fast.ntags, gen.ntags);
    for (size_t i = 0; i < gen.ntags; i++) ck_assert_str_eq(fast.tags[i], gen.tags[i]);
    ck_assert_int_eq(fast.available, gen.available);
    ck_assert_int_eq(fast.created_at_ms, gen.created_at_ms);
    if (gen.properties_json) ck_assert_str_eq(fast.properties_json, gen.properties_json);
    else ck_assert_ptr_null(fast.properties_json);
    json_decref(j);
    arena_release(&a);
  }
  /* valid or not, these are the general path's */
  static const char *declined[] = {
      "{\"item_id\":\"i\",\"properties\":{\"a\":1e5}}",         /* exponent */
      "{\"item_id\":\"i\",\"properties\":{\"a\":-0}}",           /* jansson writes 0 */
      "{\"item_id\":\"i\",\"properties\":{\"a\":1,\"a\":2}}",    /* a key twice */
      "{\"item_id\":\"i\",\"properties\":{\"a\":{\"b\":1}}}",    /* nested */
      "{\"item_id\":\"i\",\"properties\":{\"a\":[1]}}",
      "{\"item_id\":\"caf\\u00e9\"}",                            /* an escape */
      "{\"item_id\":\"i\",\"item_id\":\"j\"}",
      "{\"item_id\":\"i\",\"colour\":\"red\"}",                    /* unknown: explained there */
      "{\"categories\":[\"a\"]}",                                /* no item_id */
      "{\"item_id\":\"i\",\"categories\":[\"\"]}",
      "{\"item_id\":\"i\",\"created_at\":2000000000}",           /* the future */
      "{\"item_id\":\"i\",\"available\":1}",
      "{\"item_id\":\"i\"} x",
      "{\"item_id\":\"i\",\"properties\":{\"a\":01}}",
  };
  for (size_t k = 0; k < sizeof declined / sizeof declined[0]; k++) {
    arena a;
    arena_init(&a);
    recd_item it;
    ck_assert_msg(engine_parse_item_text(e, declined[k], strlen(declined[k]), NULL, now, &a, &it), "case %zu accepted", k);
    arena_release(&a);
  }
  /* PUT /items/{id}: the body's item_id may be left out, and must be the path's if it is not */
  {
    arena a;
    arena_init(&a);
    recd_item it;
    const char *no_id = "{\"categories\":[\"c\"]}", *same = "{\"item_id\":\"p1\"}", *other = "{\"item_id\":\"p2\"}";
    ck_assert_int_eq(engine_parse_item_text(e, no_id, strlen(no_id), "p1", now, &a, &it), 0);
    ck_assert_str_eq(it.item_id, "p1");
    ck_assert_str_eq(it.categories[0], "c");
    ck_assert_int_eq(engine_parse_item_text(e, same, strlen(same), "p1", now, &a, &it), 0);
    ck_assert_int_ne(engine_parse_item_text(e, other, strlen(other), "p1", now, &a, &it), 0);
    ck_assert_int_ne(engine_parse_item_text(e, no_id, strlen(no_id), "p\x01", now, &a, &it), 0);
    ck_assert_int_ne(engine_parse_item_text(e, no_id, strlen(no_id), NULL, now, &a, &it), 0);
    arena_release(&a);
  }
  /* POST /items bodies: a batch of plain items, else declined (the empty batch and one past max are the
   * general path's 400 and 413) */
  static const struct {
    const char *body;
    int ok;
    size_t n;
  } batch[] = {
      {"{\"items\":[{\"item_id\":\"a\"},{\"item_id\":\"b\",\"tags\":[\"x\"]}]}", 1, 2},
      {" { \"items\" : [ {\"item_id\":\"a\"} ] } ", 1, 1},
      {"{\"items\":[]}", 0, 0},
      {"{\"items\":[{\"item_id\":\"a\"},{\"item_id\":\"b\"},{\"item_id\":\"c\"}]}", 0, 0}, /* max 2 */
      {"{\"items\":[{\"item_id\":\"a\"},{\"item_id\":\"b\",\"x\":1}]}", 0, 0},
      {"{\"items\":[{\"item_id\":\"a\"}],\"more\":1}", 0, 0},
      {"{\"item_id\":\"a\"}", 0, 0},
  };
  for (size_t k = 0; k < sizeof batch / sizeof batch[0]; k++) {
    arena a;
    arena_init(&a);
    recd_item *items;
    size_t n = 0;
    int rc = engine_parse_items_text(e, batch[k].body, strlen(batch[k].body), now, 2, &a, &items, &n);
    ck_assert_msg((rc == 0) == batch[k].ok, "batch case %zu: %d", k, rc);
    if (!rc) {
      ck_assert_uint_eq(n, batch[k].n);
      ck_assert_str_eq(items[0].item_id, "a");
      if (n == 2) ck_assert_str_eq(items[1].tags[0], "x");
    }
    arena_release(&a);
  }
  /* the events' reader keeps max too (it took up to 64 events whatever max was) */
  const char *evs = "{\"events\":[{\"user_id\":\"u\",\"item_id\":\"a\",\"event_type\":\"view\"},"
                    "{\"user_id\":\"u\",\"item_id\":\"b\",\"event_type\":\"view\"},"
                    "{\"user_id\":\"u\",\"item_id\":\"c\",\"event_type\":\"view\"}]}";
  for (size_t max = 1; max <= 4; max++) {
    arena a;
    arena_init(&a);
    recd_event *ev;
    size_t n = 0;
    int rc = engine_parse_events_text(e, evs, strlen(evs), now, max, &a, &ev, &n);
    ck_assert_msg((rc == 0) == (max >= 3), "max %zu: %d", max, rc);
    if (!rc) ck_assert_uint_eq(n, 3);
    arena_release(&a);
  }
  engine_free(e);
  unit_rmrf(dir);
  free(dir);
}
END_TEST

Suite *eventparse_suite(void) {
  Suite *s = suite_create("eventparse");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, event_validation);
  tcase_add_test(tc, item_text_fast_path);
  suite_add_tcase(s, tc);
  return s;
}

static void put_item(recd_engine *e, const char *id, const char *cat, int available) {
  const char *cats[] = {cat};
  recd_item it = {.item_id = id, .categories = cats, .ncategories = 1, .available = available, .created_at_ms = -1};
  engine_op op = {.kind = OP_ITEMS, .items = &it, .nitems = 1};
  ck_assert_int_eq(engine_submit_wait(e, &op), 0);
}

static void event(recd_engine *e, const char *u, const char *i, int type, int64_t ts) {
  recd_event ev = {.user_id = u, .item_id = i, .type = type, .ts_ms = ts};
  engine_op op = {.kind = OP_EVENTS, .events = &ev, .nevents = 1};
  ck_assert_int_eq(engine_submit_wait(e, &op), 0);
}

static int in_list(const recd_rec_result *r, const char *id) {
  for (size_t i = 0; i < r->count; i++)
    if (!strcmp(r->items[i].item_id, id)) return (int)i + 1;
  return 0;
}

static void recommend(recd_engine *e, const char *user, size_t n, recd_rec_result *r) {
  recd_rec_request rq = {.user_id = user, .n = n};
  ck_assert_int_eq(engine_recommend(e, &rq, r), 0);
}

START_TEST(read_your_writes_rules_restart) {
  char *dir = unit_tmpdir();
  recd_config c;
  recd_engine *e = open_engine(dir, &c);
  char id[32];
  for (int i = 0; i < 20; i++) {
    snprintf(id, sizeof id, "item_%d", i);
    put_item(e, id, i < 10 ? "books" : "toys", 1);
  }
  int64_t t = 1700000000000LL;
  /* others who viewed item_1 also viewed item_4 */
  for (int u = 0; u < 5; u++) {
    char user[16];
    snprintf(user, sizeof user, "bg%d", u);
    event(e, user, "item_1", 0, t + u * 1000);
    event(e, user, "item_4", 0, t + u * 1000 + 10);
  }
  recd_rec_result r;
  recommend(e, "alice", 10, &r);
  ck_assert_uint_eq(r.count, 10);       /* cold start still fills the list */
  ck_assert_int_eq(r.known_user, 0);
  engine_result_release(&r);

  event(e, "alice", "item_1", 1, t + 100000);
  recommend(e, "alice", 10, &r);
  ck_assert_int_eq(r.known_user, 1);
  int pos = in_list(&r, "item_4");
  ck_assert_msg(pos >= 1 && pos <= 3, "item_4 at %d", pos);
  ck_assert_int_eq(in_list(&r, "item_1"), 0); /* seen items are excluded by default */
  ck_assert_ptr_nonnull(strstr(r.items[pos - 1].reasons[0], "item_1"));
  engine_result_release(&r);

  /* unavailable: gone from the very next list */
  put_item(e, "item_4", "books", 0);
  recommend(e, "alice", 10, &r);
  ck_assert_int_eq(in_list(&r, "item_4"), 0);
  engine_result_release(&r);

  /* purchases are excluded even when exclude_seen is off */
  event(e, "bob", "item_2", 4, t + 200000);
  engine_free(e);

  config_defaults(&c);
  snprintf(c.data, sizeof c.data, "%s", dir);
  c.exclude_seen = 0;
  char err[256];
  ck_assert_int_eq(engine_open(&c, &e, err, sizeof err), 0);
  recommend(e, "bob", 19, &r);
  ck_assert_int_eq(in_list(&r, "item_2"), 0);
  ck_assert_int_eq(in_list(&r, "item_4"), 0); /* unavailability survived the restart */
  ck_assert_uint_eq(r.count, 18);             /* everything else that is eligible */
  engine_result_release(&r);
  json_t *f = engine_user_features(e, "alice");
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(f, "counts"), "click")), 1);
  json_decref(f);
  recd_stats st;
  engine_stats(e, &st);
  ck_assert_uint_eq(st.events, 12);
  ck_assert_uint_eq(st.catalog_items, 20);
  engine_free(e);
  unit_rmrf(dir);
  free(dir);
}
END_TEST

static int has_reason(const recd_rec_result *r, const char *id, const char *reason) {
  int pos = in_list(r, id);
  if (!pos) return 0;
  for (int k = 0; k < r->items[pos - 1].nreasons; k++)
    if (strstr(r->items[pos - 1].reasons[k], reason)) return 1;
  return 0;
}

/* content neighbours are memoised per item; a catalog write must show in the
 * very next answer (the memo is tagged with the catalog version) */
START_TEST(content_neighbours_follow_catalog_writes) {
  char *dir = unit_tmpdir();
  recd_config c;
  recd_engine *e = open_engine(dir, &c);
  put_item(e, "a", "books", 1);
  put_item(e, "b", "books", 1);
  char id[16];
  for (int i = 0; i < 6; i++) {
    snprintf(id, sizeof id, "t%d", i);
    put_item(e, id, "toys", 1);
  }
  recd_rec_result r;
  for (int round = 0; round < 2; round++) { /* the second answer comes from the memo */
    ck_assert_int_eq(engine_similar(e, "a", 5, &r), 0);
    ck_assert(has_reason(&r, "b", "similar to a"));
    engine_result_release(&r);
  }
  put_item(e, "b", "toys", 1);  /* b leaves the category, n joins it */
  put_item(e, "n", "books", 1);
  ck_assert_int_eq(engine_similar(e, "a", 5, &r), 0);
  ck_assert(!has_reason(&r, "b", "similar to a"));
  ck_assert(has_reason(&r, "n", "similar to a"));
  engine_result_release(&r);
  /* the anchor's own categories change: its neighbours follow */
  put_item(e, "a", "toys", 1);
  ck_assert_int_eq(engine_similar(e, "a", 5, &r), 0);
  ck_assert(!has_reason(&r, "n", "similar to a"));
  ck_assert(has_reason(&r, "t5", "similar to a"));
  engine_result_release(&r);
  engine_free(e);
  unit_rmrf(dir);
  free(dir);
}
END_TEST

START_TEST(diversity_and_filters) {
  char *dir = unit_tmpdir();
  recd_config c;
  recd_engine *e = open_engine(dir, &c);
  char id[32];
  for (int i = 0; i < 30; i++) {
    snprintf(id, sizeof id, "p%d", i);
    put_item(e, id, i < 20 ? "books" : (i < 25 ? "toys" : "garden"), 1);
    event(e, "someone", id, 0, 1700000000000LL + i);
  }
  recd_rec_result r;
  recommend(e, "new", 10, &r);
  ck_assert_uint_eq(r.count, 10);
  engine_result_release(&r);
  const char *cats[] = {"toys"};
  recd_rec_request rq = {.user_id = "new", .n = 10, .categories = cats, .ncategories = 1};
  ck_assert_int_eq(engine_recommend(e, &rq, &r), 0);
  ck_assert_uint_eq(r.count, 5); /* only 5 toys exist */
  for (size_t i = 0; i < r.count; i++) {
    int n = atoi(r.items[i].item_id + 1);
    ck_assert(n >= 20 && n < 25);
  }
  engine_result_release(&r);
  const char *excl[] = {"p20"};
  rq.exclude = excl;
  rq.nexclude = 1;
  ck_assert_int_eq(engine_recommend(e, &rq, &r), 0);
  ck_assert_uint_eq(r.count, 4);
  ck_assert_int_eq(in_list(&r, "p20"), 0);
  engine_result_release(&r);
  engine_free(e);
  unit_rmrf(dir);
  free(dir);
}
END_TEST

static char *features_of(recd_engine *e, const char *user, const char *item) {
  json_t *u = engine_user_features(e, user), *i = engine_item_features(e, item);
  json_t *o = json_pack("{s:o*,s:o*}", "u", u, "i", i);
  char *s = json_dumps(o, JSON_SORT_KEYS);
  json_decref(o);
  return s;
}

static recd_engine *reopen(const char *dir, int snapshots) {
  recd_config c;
  config_defaults(&c);
  snprintf(c.data, sizeof c.data, "%s", dir);
  c.snapshot_every = snapshots ? 1000000 : 0;
  char err[256];
  recd_engine *e = NULL;
  ck_assert_msg(engine_open(&c, &e, err, sizeof err) == 0, "%s", err);
  return e;
}

START_TEST(snapshot_equals_replay) {
  char *dir = unit_tmpdir();
  recd_config c;
  recd_engine *e = open_engine(dir, &c);
  char id[32], user[32];
  for (int i = 0; i < 30; i++) {
    snprintf(id, sizeof id, "p%d", i);
    put_item(e, id, i % 3 ? "books" : "toys", 1);
  }
  int64_t t = 1700000000000LL;
  for (int k = 0; k < 600; k++) {
    snprintf(user, sizeof user, "u%d", k % 37);
    snprintf(id, sizeof id, "p%d", (k * 7) % 30);
    event(e, user, id, k % 5, t + k * 60000);
  }
  /* seen sets of 12 and 24 items: the sizes at which a map sized in one go
   * for n keys could differ from one that grew key by key (snapshot.c) */
  for (int k = 0; k < 24; k++) {
    snprintf(id, sizeof id, "p%d", k);
    if (k < 12) event(e, "w12", id, 0, t + k * 1000);
    event(e, "w24", id, 1, t + k * 1000);
  }
  uint32_t nusers = (uint32_t)strmap_count(&e->users), seen_cap[64];
  ck_assert_uint_le(nusers, 64);
  for (uint32_t u = 0; u < nusers; u++) seen_cap[u] = engine__user_prof(e, u, 0)->seen.cap;
  char *before = features_of(e, "u3", "p7");
  recd_rec_result r0;
  recommend(e, "u3", 10, &r0);
  char ids0[10][32]; /* item ids point into the engine: copy them before it goes */
  for (size_t i = 0; i < r0.count; i++) snprintf(ids0[i], sizeof ids0[i], "%s", r0.items[i].item_id);
  engine_free(e); /* writes state.snap */
  char snap[600];
  snprintf(snap, sizeof snap, "%s/state.snap", dir);
  ck_assert_int_eq(access(snap, R_OK), 0);

  /* 1. from the snapshot (nothing to replay), then more events, then from snapshot + tail */
  e = reopen(dir, 1);
  uint64_t snap_seq = atomic_load(&e->last_snap_seq);
  ck_assert_uint_eq(snap_seq, 600 + 36); /* loaded (on two threads), not replayed */
  char *snapped = features_of(e, "u3", "p7");
  ck_assert_str_eq(snapped, before);
  for (uint32_t u = 0; u < nusers; u++) ck_assert_uint_eq(engine__user_prof(e, u, 0)->seen.cap, seen_cap[u]);
  recd_rec_result r1;
  recommend(e, "u3", 10, &r1);
  ck_assert_uint_eq(r1.count, r0.count);
  for (size_t i = 0; i < r0.count; i++) ck_assert_str_eq(r1.items[i].item_id, ids0[i]);
  engine_result_release(&r1);
  engine_result_release(&r0);
  event(e, "u3", "p1", 4, t + 999999);
  char *after = features_of(e, "u3", "p1");
  engine_free(e);

  /* 2. the full replay (snapshots off) reaches the same state */
  e = reopen(dir, 0);
  char *replayed = features_of(e, "u3", "p1");
  ck_assert_str_eq(replayed, after);
  engine_free(e);

  /* 3. a corrupt snapshot is refused (checksum) and the log is replayed instead */
  FILE *f = fopen(snap, "r+b");
  ck_assert_ptr_nonnull(f);
  fseek(f, 200, SEEK_SET);
  int ch = fgetc(f);
  fseek(f, 200, SEEK_SET);
  fputc(ch ^ 0x5a, f);
  fclose(f);
  e = reopen(dir, 1);
  char *recovered = features_of(e, "u3", "p1");
  ck_assert_str_eq(recovered, after);
  recd_stats st;
  engine_stats(e, &st);
  ck_assert_uint_eq(st.events, 600 + 36 + 1);
  engine_free(e);

  /* 4. an option that shapes the live state changed (covis_window): the
   * snapshot is refused and the whole log replayed, not just what followed it */
  recd_config c4;
  config_defaults(&c4);
  snprintf(c4.data, sizeof c4.data, "%s", dir);
  c4.covis_window = 5;
  char err4[256];
  ck_assert_msg(engine_open(&c4, &e, err4, sizeof err4) == 0, "%s", err4);
  uint64_t from4 = atomic_load(&e->last_snap_seq);
  ck_assert_uint_eq(from4, 0);
  engine_stats(e, &st);
  ck_assert_uint_eq(st.events, 600 + 36 + 1);
  json_t *u3 = engine_user_features(e, "u3");
  ck_assert_ptr_nonnull(u3);
  json_decref(u3);
  engine_free(e);
  free(before);
  free(snapped);
  free(after);
  free(replayed);
  free(recovered);
  unit_rmrf(dir);
  free(dir);
}
END_TEST

static char *read_file(const char *path, long *len) {
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  fseek(f, 0, SEEK_END);
  *len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)*len);
  ck_assert_int_eq((long)fread(b, 1, (size_t)*len, f), *len);
  fclose(f);
  return b;
}

/* the catalog both snapshot-comparing tests start from */
static void put_catalog(recd_engine *e) {
  for (int i = 0; i < 50; i++) {
    char id[16];
    snprintf(id, sizeof id, "i%d", i);
    put_item(e, id, i % 3 ? "books" : "toys", 1);
  }
}

/* the two files' bytes are the same; frees them and the data dirs */
static void same_snapshots_then_clean(char *b[2], const long len[2], char *dir[2]) {
  ck_assert_int_gt(len[0], 100000);
  ck_assert_int_eq(len[0], len[1]);
  ck_assert_int_eq(memcmp(b[0], b[1], (size_t)len[0]), 0);
  for (int m = 0; m < 2; m++) {
    free(b[m]);
    unit_rmrf(dir[m]);
    free(dir[m]);
  }
}

/* Batches big enough for the two apply threads (writer.c: PAR_MIN) give the
 * same state as the same events applied in small batches on one thread: the
 * snapshots written at close are byte for byte equal. Some users' events come
 * out of time order, a few carry sessions. Item ids go past 2^11, so the
 * co-visitation adds are sorted by list in two radix passes. The two threads'
 * working memory is freed after every round (RECD_TEST_PAR_KEEP_BYTES=1), so
 * each big batch after the first starts from none. */
START_TEST(parallel_apply_equals_sequential) {
  enum { N = 30000, USERS = 700, ITEMS = 3000 };
  recd_event *ev = calloc(N, sizeof *ev);
  char(*uid)[16] = calloc(N, 16), (*iid)[16] = calloc(N, 16);
  uint32_t x = 12345;
  int64_t t = 1700000000000LL;
  for (int k = 0; k < N; k++) {
    x = x * 1103515245u + 12345u;
    int u = (int)(x >> 8) % USERS;
    x = x * 1103515245u + 12345u;
    int i = (int)((x >> 8) % ITEMS) * ((x >> 30) & 1 ? 1 : 0) + (int)((x >> 12) % 40); /* a popular head */
    snprintf(uid[k], 16, "u%d", u);
    snprintf(iid[k], 16, "i%d", i);
    t += 20000;
    ev[k] = (recd_event){.user_id = uid[k], .item_id = iid[k], .type = (int)(x >> 4) % 5,
                         .ts_ms = u % 7 == 0 ? t - (int64_t)(x % 3600000) : t, /* some out of order */
                         .session_id = u % 5 == 0 ? "s1" : NULL};
  }
  char *dir[2], snap[2][600], *raw[2], *b[2];
  long rawlen[2], len[2];
  for (int m = 0; m < 2; m++) {
    dir[m] = unit_tmpdir();
    recd_config c;
    if (m == 0) setenv("RECD_TEST_PAR_KEEP_BYTES", "1", 1); /* read when the engine opens */
    recd_engine *e = open_engine(dir[m], &c);
    unsetenv("RECD_TEST_PAR_KEEP_BYTES");
    put_catalog(e);
    size_t step = m == 0 ? N / 3 : 1000; /* three batches over PAR_MIN, or batches below it */
    for (size_t k = 0; k < N; k += step) {
      engine_op op = {.kind = OP_EVENTS, .events = ev + k, .nevents = k + step <= N ? step : N - k};
      ck_assert_int_eq(engine_submit_wait(e, &op), 0);
    }
    snprintf(snap[m], sizeof snap[m], "%s/state.snap", dir[m]);
    ck_assert_int_eq(engine__snapshot_save(e), 0); /* the state as it is */
    raw[m] = read_file(snap[m], &rawlen[m]);
    engine__covis_each(e, covis_canonicalize); /* canonical order, for the replay below */
    engine_free(e); /* writes state.snap */
    b[m] = read_file(snap[m], &len[m]);
  }
  ck_assert_int_eq(rawlen[0], rawlen[1]);
  ck_assert_int_eq(memcmp(raw[0], raw[1], (size_t)rawlen[0]), 0);
  /* canonical order is a real change: some list's entries moved */
  ck_assert_int_eq(rawlen[1], len[1]);
  ck_assert_int_ne(memcmp(raw[1], b[1], (size_t)len[1]), 0);
  free(raw[0]);
  free(raw[1]);
  /* and a full replay of the log (chunks big enough for two threads) too. It
   * keeps the co-visitation lists' top sets lazily (covis.h) and settles them
   * at its end: its lists hold the same entries, in another order, so it is
   * compared in canonical order */
  recd_engine *e = reopen(dir[0], 0);
  engine_free(e);
  unlink(snap[0]);
  e = reopen(dir[0], 1); /* no snapshot: replays, writes one at close */
  engine__covis_each(e, covis_canonicalize);
  engine_free(e);
  long len2;
  char *b2 = read_file(snap[0], &len2);
  ck_assert_int_eq(len2, len[1]);
  ck_assert_int_eq(memcmp(b2, b[1], (size_t)len2), 0);
  free(b2);
  same_snapshots_then_clean(b, len, dir);
  free(ev);
  free(uid);
  free(iid);
}
END_TEST

/* Writers on several threads, each with its own users and items, some sending
 * single events and some 40-event batches: the writer applies small rounds on
 * the store thread while the apply thread is idle and hands the others over
 * (writer.c, round_small). Whatever the interleaving, every event is applied
 * exactly once and in each writer's order: each user's and item's features
 * equal those of an engine that got the same streams one after the other. */
enum { MW_THREADS = 4, MW_EVENTS = 1200, MW_USERS = 9, MW_ITEMS = 25 };

typedef struct {
  recd_engine *e;
  int t;
} mw_arg;

static void mw_event(int t, int k, char *u, char *i, recd_event *ev) {
  uint32_t x = (uint32_t)(t * 7919 + k) * 2654435761u;
  snprintf(u, 32, "t%du%u", t, (x >> 7) % MW_USERS);
  snprintf(i, 32, "t%di%u", t, (x >> 13) % MW_ITEMS);
  *ev = (recd_event){.user_id = u, .item_id = i, .type = (int)((x >> 20) % 5),
                     .ts_ms = 1700000000000LL + (int64_t)k * 30000};
}

static int cmp_json_str(const void *a, const void *b) {
  return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

/* features_of with the user's purchased set in id order (a set is listed in
 * the engine's id order, which is the order writers first named the items) */
static char *features_sorted(recd_engine *e, const char *user, const char *item) {
  json_t *u = engine_user_features(e, user), *p = json_object_get(u, "purchased");
  size_t n = json_array_size(p);
  json_t **v = malloc((n + 1) * sizeof *v), *sorted = json_array();
  for (size_t k = 0; k < n; k++) v[k] = json_array_get(p, k);
  qsort(v, n, sizeof *v, cmp_json_str);
  for (size_t k = 0; k < n; k++) json_array_append(sorted, v[k]);
  free(v);
  json_object_set_new(u, "purchased", sorted);
  json_t *o = json_pack("{s:o*,s:o*}", "u", u, "i", engine_item_features(e, item));
  char *s = json_dumps(o, JSON_SORT_KEYS);
  json_decref(o);
  return s;
}

static void *mw_writer(void *arg) {
  mw_arg *a = arg;
  static __thread char u[40][32], it[40][32];
  recd_event ev[40];
  for (int k = 0; k < MW_EVENTS;) {
    int n = (k / 40) % 3 == 0 ? 40 : 1; /* a batch, then 80 single events */
    for (int j = 0; j < n; j++) mw_event(a->t, k + j, u[j], it[j], &ev[j]);
    engine_op op = {.kind = OP_EVENTS, .events = ev, .nevents = (size_t)n};
    if (engine_submit_wait(a->e, &op)) return (void *)1;
    k += n;
  }
  return NULL;
}

START_TEST(concurrent_writers_small_and_big_rounds) {
  char *dir[2];
  recd_engine *e[2];
  for (int m = 0; m < 2; m++) {
    dir[m] = unit_tmpdir();
    recd_config c;
    e[m] = open_engine(dir[m], &c);
  }
  /* engine 0: the writers at once; engine 1: one writer after the other */
  pthread_t th[MW_THREADS];
  mw_arg args[MW_THREADS];
  for (int t = 0; t < MW_THREADS; t++) {
    args[t] = (mw_arg){e[0], t};
    ck_assert_int_eq(pthread_create(&th[t], NULL, mw_writer, &args[t]), 0);
  }
  for (int t = 0; t < MW_THREADS; t++) {
    void *rv;
    pthread_join(th[t], &rv);
    ck_assert_ptr_null(rv);
    mw_arg one = {e[1], t};
    ck_assert_ptr_null(mw_writer(&one));
  }
  recd_stats st[2];
  for (int m = 0; m < 2; m++) engine_stats(e[m], &st[m]);
  ck_assert_uint_eq(st[0].events, (uint64_t)MW_THREADS * MW_EVENTS);
  ck_assert_uint_eq(st[1].events, st[0].events);
  for (int t = 0; t < MW_THREADS; t++)
    for (int k = 0; k < MW_ITEMS; k++) {
      char u[32], i[32];
      snprintf(u, sizeof u, "t%du%d", t, k % MW_USERS);
      snprintf(i, sizeof i, "t%di%d", t, k);
      char *f0 = features_sorted(e[0], u, i), *f1 = features_sorted(e[1], u, i);
      ck_assert_msg(!strcmp(f0, f1), "features of %s / %s differ", u, i);
      free(f0);
      free(f1);
    }
  for (int m = 0; m < 2; m++) {
    engine_free(e[m]);
    unit_rmrf(dir[m]);
    free(dir[m]);
  }
}
END_TEST

/* Group commit's delay: while several clients write at once, a round waits
 * for more writes (8 events, or until its oldest has waited commit_delay_us);
 * one client's writes in a row never wait; commit_delay_us = 0 never waits. */
enum { CD_THREADS = 8, CD_WRITES = 10 };

typedef struct {
  recd_engine *e;
  int t;
  pthread_barrier_t *go;
} cd_arg;

static void *cd_writer(void *arg) {
  cd_arg *a = arg;
  char u[32], i[32];
  if (a->go) pthread_barrier_wait(a->go);
  for (int k = 0; k < CD_WRITES; k++) {
    recd_event ev;
    mw_event(a->t, k, u, i, &ev);
    engine_op op = {.kind = OP_EVENTS, .events = &ev, .nevents = 1};
    if (engine_submit_wait(a->e, &op)) return (void *)1;
  }
  return NULL;
}

START_TEST(commit_delay_groups_concurrent_writes) {
  for (int delay = 0; delay <= 1; delay++) {
    char *dir = unit_tmpdir();
    recd_config c;
    config_defaults(&c);
    snprintf(c.data, sizeof c.data, "%s", dir);
    c.commit_delay_us = delay ? 100000 : 0; /* 100 ms: a round of 8 writers fills long before */
    char err[512];
    recd_engine *e = NULL;
    ck_assert_msg(engine_open(&c, &e, err, sizeof err) == 0, "engine_open: %s", err);
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, CD_THREADS);
    pthread_t th[CD_THREADS];
    cd_arg args[CD_THREADS];
    for (int t = 0; t < CD_THREADS; t++) {
      args[t] = (cd_arg){e, t, &go};
      ck_assert_int_eq(pthread_create(&th[t], NULL, cd_writer, &args[t]), 0);
    }
    for (int t = 0; t < CD_THREADS; t++) {
      void *rv;
      pthread_join(th[t], &rv);
      ck_assert_ptr_null(rv);
    }
    pthread_barrier_destroy(&go);
    recd_stats st;
    engine_stats(e, &st);
    ck_assert_uint_eq(st.events, (uint64_t)CD_THREADS * CD_WRITES);
    if (delay) {
      ck_assert_uint_gt(st.commit_waits, 0);
      /* rounds of all 8 writers but the first two or so (19 commits without
       * the delay on the dev box's disk) */
      ck_assert_msg(st.commits <= CD_WRITES + 4, "%llu commits for %d writes", (unsigned long long)st.commits, CD_THREADS * CD_WRITES);
    } else {
      ck_assert_uint_eq(st.commit_waits, 0);
    }
    /* then one client: a commit each, and at most the first waits (the last
     * round may have held several writers) */
    cd_arg one = {e, CD_THREADS, NULL};
    ck_assert_ptr_null(cd_writer(&one));
    recd_stats st2;
    engine_stats(e, &st2);
    ck_assert_uint_eq(st2.commits - st.commits, CD_WRITES);
    ck_assert_uint_le(st2.commit_waits - st.commit_waits, (uint64_t)delay);
    engine_free(e);
    unit_rmrf(dir);
    free(dir);
  }
}
END_TEST

/* A failed commit (the test knob stands for a full disk): every write of its
 * group fails, including a batch that was handed to the apply stage before the
 * commit; later writes are refused; the next start has exactly the committed
 * events. */
START_TEST(failed_commit_fails_its_group_and_restart_has_the_committed) {
  char *dir = unit_tmpdir();
  setenv("RECD_TEST_FAIL_COMMIT_AFTER", "6", 1);
  recd_config c;
  recd_engine *e = open_engine(dir, &c);
  int64_t t = 1700000000000LL;
  for (int k = 0; k < 6; k++) event(e, "u1", k % 2 ? "a" : "b", 0, t + k * 1000); /* commits 1-6 */
  char *committed = features_of(e, "u1", "a");
  /* a 40-event batch is not a small round: handed to the apply stage before
   * its commit, which fails */
  recd_event ev[40];
  for (int k = 0; k < 40; k++) ev[k] = (recd_event){.user_id = "u1", .item_id = "a", .type = 4, .ts_ms = t + 10000 + k};
  engine_op op = {.kind = OP_EVENTS, .events = ev, .nevents = 40};
  int rc = engine_submit_wait(e, &op);
  ck_assert_int_ne(rc, 0);
  recd_event one = {.user_id = "u2", .item_id = "b", .type = 0, .ts_ms = t + 20000};
  engine_op op2 = {.kind = OP_EVENTS, .events = &one, .nevents = 1};
  ck_assert_int_eq(engine_submit_wait(e, &op2), RECD_EFATAL);
  recd_stats st;
  engine_stats(e, &st);
  ck_assert_int_ne(st.fatal, 0);
  engine_free(e); /* no snapshot: the engine failed */
  unsetenv("RECD_TEST_FAIL_COMMIT_AFTER");
  e = reopen(dir, 1);
  engine_stats(e, &st);
  ck_assert_uint_eq(st.events, 6);
  ck_assert_int_eq(st.fatal, 0);
  char *after = features_of(e, "u1", "a");
  ck_assert_str_eq(after, committed);
  ck_assert_ptr_null(engine_user_features(e, "u2"));
  engine_free(e);
  free(committed);
  free(after);
  unit_rmrf(dir);
  free(dir);
}
END_TEST

/* n events of round r (users u0..u<users-1>, items i0..i<items-1>, each round
 * after the one before) submitted as one op: one write round */
static void submit_round(recd_engine *e, int r, int n, int users, int items) {
  recd_event *ev = calloc((size_t)n, sizeof *ev);
  char(*uid)[16] = calloc((size_t)n, 16), (*iid)[16] = calloc((size_t)n, 16);
  for (int k = 0; k < n; k++) {
    snprintf(uid[k], 16, "u%d", (k * 7 + r * 3) % users);
    snprintf(iid[k], 16, "i%d", (k * 13 + r * 5) % items);
    ev[k] = (recd_event){.user_id = uid[k], .item_id = iid[k], .type = k % 5,
                         .ts_ms = 1700000000000LL + ((int64_t)r * n + k) * 1000};
  }
  engine_op op = {.kind = OP_EVENTS, .events = ev, .nevents = (size_t)n};
  ck_assert_int_eq(engine_submit_wait(e, &op), 0);
  free(ev);
  free(uid);
  free(iid);
}

/* Each background snapshot replaces the one before, which stays as
 * state.snap.old, and is written over that file in place (the snapshots
 * alternate between two files: no gigabyte of blocks allocated or freed).
 * The last round plays what a crash between the link and the rename leaves:
 * the reused file half written as state.snap.tmp, and state.snap.old a second
 * name of state.snap, which is only unlinked. */
START_TEST(background_snapshots_replace_their_files) {
  enum { BATCH = 300, ROUNDS = 4 };
  char *dir = unit_tmpdir(), snap[600], old[600], tmp[600];
  snprintf(snap, sizeof snap, "%s/state.snap", dir);
  snprintf(old, sizeof old, "%s/state.snap.old", dir);
  snprintf(tmp, sizeof tmp, "%s/state.snap.tmp", dir);
  recd_config c;
  config_defaults(&c);
  snprintf(c.data, sizeof c.data, "%s", dir);
  c.snapshot_every = 200;
  c.snapshot_growth = 0;
  char err[256];
  recd_engine *e = NULL;
  ck_assert_msg(engine_open(&c, &e, err, sizeof err) == 0, "%s", err);
  ino_t ino[ROUNDS];
  struct stat sst;
  for (int r = 0; r < ROUNDS; r++) {
    if (r == ROUNDS - 1) {
      ck_assert_int_eq(rename(old, tmp), 0);
      FILE *f = fopen(tmp, "r+b");
      ck_assert_ptr_nonnull(f);
      fputs("half a snapshot", f);
      fclose(f);
      ck_assert_int_eq(link(snap, old), 0);
    }
    submit_round(e, r, BATCH, 41, 97); /* one snapshot is due after it */
    recd_stats st;
    for (int tries = 0; tries < 3000; tries++) {
      engine_stats(e, &st);
      if (st.snapshots_ok + st.snapshots_failed >= (uint64_t)r + 1 && !st.snapshot_running) break;
      usleep(10000);
    }
    ck_assert_uint_eq(st.snapshots_ok, r + 1);
    ck_assert_uint_eq(st.snapshot_seq, (r + 1) * BATCH);
    ck_assert_int_eq(stat(snap, &sst), 0);
    ck_assert_int_eq(sst.st_nlink, 1);
    ino[r] = sst.st_ino;
    ck_assert_msg(access(tmp, F_OK), "round %d left state.snap.tmp", r);
    if (r == 0) {
      ck_assert_msg(access(old, F_OK), "a first snapshot replaced nothing, yet state.snap.old is there");
      continue;
    }
    ck_assert_int_eq(stat(old, &sst), 0); /* the replaced one, kept */
    ck_assert_int_eq(sst.st_nlink, 1);
    ck_assert(sst.st_ino == ino[r - 1]);
    if (r >= 2) ck_assert(ino[r] == ino[r - 2]); /* written over the one kept the round before */
  }
  engine_free(e);
  e = reopen(dir, 1);
  recd_stats st;
  engine_stats(e, &st);
  ck_assert_uint_eq(st.snapshot_seq, ROUNDS * BATCH); /* loaded, nothing replayed */
  ck_assert_uint_eq(st.events, ROUNDS * BATCH);
  engine_free(e);
  unit_rmrf(dir);
  free(dir);
}
END_TEST

/* snapshot_max_replay: a snapshot starts once the events since the last one
 * took half of it to apply, and writes wait while they took all of it and a
 * snapshot is being written (slowed here by the test knob): every write still
 * completes, the wait is counted, and the restart loads the newest snapshot. */
START_TEST(writes_wait_for_a_snapshot_past_max_replay) {
  enum { BATCH = 400, ROUNDS = 30 };
  char *dir = unit_tmpdir();
  recd_config c;
  config_defaults(&c);
  snprintf(c.data, sizeof c.data, "%s", dir);
  c.snapshot_every = 1000000; /* the counts never make one due */
  c.snapshot_growth = 0;
  c.snapshot_max_replay_ms = 2;
  setenv("RECD_TEST_SNAPSHOT_PAUSE_US", "2000", 1);
  char err[256];
  recd_engine *e = NULL;
  ck_assert_msg(engine_open(&c, &e, err, sizeof err) == 0, "%s", err);
  for (int r = 0; r < ROUNDS; r++) submit_round(e, r, BATCH, 300, 400);
  recd_stats st;
  engine_stats(e, &st);
  ck_assert_uint_eq(st.events, ROUNDS * BATCH);
  ck_assert_uint_ge(st.snapshots_ok, 1);
  ck_assert_msg(st.writes_held_s > 0, "no write waited for a snapshot (held %.3f s)", st.writes_held_s);
  engine_free(e);
  unsetenv("RECD_TEST_SNAPSHOT_PAUSE_US");
  e = reopen(dir, 1);
  engine_stats(e, &st);
  ck_assert_uint_eq(st.events, ROUNDS * BATCH);
  ck_assert_uint_eq(st.snapshot_seq, ROUNDS * BATCH); /* the close's snapshot, loaded */
  engine_free(e);
  unit_rmrf(dir);
  free(dir);
}
END_TEST

/* A background snapshot is the state as of its event, whatever the writes
 * that go on while it is written: byte for byte the snapshot an engine that
 * only ever saw those events writes at close. The snapshot thread is slowed
 * (a test knob) so that later batches, on both apply threads and on one, change
 * records before it gets to them and after. */
START_TEST(background_snapshot_is_the_state_at_its_event) {
  enum { S0 = 12000, MORE = 11000, USERS = 700, ITEMS = 900 };
  recd_event *ev = calloc(S0 + MORE, sizeof *ev);
  char(*uid)[16] = calloc(S0 + MORE, 16), (*iid)[16] = calloc(S0 + MORE, 16);
  uint32_t x = 777;
  int64_t t = 1700000000000LL;
  for (int k = 0; k < S0 + MORE; k++) {
    x = x * 1103515245u + 12345u;
    /* every user and item shows up in the first S0 events: later ones intern nothing */
    int u = k < ITEMS ? k % USERS : (int)(x >> 8) % USERS;
    x = x * 1103515245u + 12345u;
    int i = k < ITEMS ? k : (int)((x >> 8) % ITEMS) * (int)((x >> 30) & 1) + (int)((x >> 12) % 40);
    snprintf(uid[k], 16, "u%d", u);
    snprintf(iid[k], 16, "i%d", i);
    t += 20000;
    ev[k] = (recd_event){.user_id = uid[k], .item_id = iid[k], .type = (int)(x >> 4) % 5,
                         .ts_ms = u % 7 == 0 ? t - (int64_t)(x % 3600000) : t, .session_id = u % 5 ? NULL : "s1"};
  }
  char *dir[2] = {unit_tmpdir(), unit_tmpdir()};
  char snap[2][600];
  long len[2];
  char *b[2];
  for (int m = 0; m < 2; m++) snprintf(snap[m], sizeof snap[m], "%s/state.snap", dir[m]);
  /* A: a background snapshot after the first S0 events, MORE events while it runs.
   * On one CPU (this thread and the engine's, which inherit its affinity) the store
   * stage often writes the next round, interning its new items, before the
   * apply stage has started the snapshot: those ids must not be in it. */
  cpu_set_t all, one;
  ck_assert_int_eq(sched_getaffinity(0, sizeof all, &all), 0);
  CPU_ZERO(&one);
  for (int c = 0; c < CPU_SETSIZE; c++)
    if (CPU_ISSET(c, &all)) {
      CPU_SET(c, &one);
      break;
    }
  ck_assert_int_eq(sched_setaffinity(0, sizeof one, &one), 0);
  setenv("RECD_TEST_SNAPSHOT_PAUSE_US", "3000", 1);
  recd_config c;
  config_defaults(&c);
  snprintf(c.data, sizeof c.data, "%s", dir[0]);
  c.snapshot_every = S0;
  c.snapshot_growth = 0;
  char err[256];
  recd_engine *e = NULL;
  ck_assert_msg(engine_open(&c, &e, err, sizeof err) == 0, "%s", err);
  put_catalog(e);
  engine_op op = {.kind = OP_EVENTS, .events = ev, .nevents = S0};
  ck_assert_int_eq(engine_submit_wait(e, &op), 0);
  int during = 0;
  for (size_t k = S0; k < S0 + MORE;) {
    size_t step = k < S0 + 8000 ? 4096 : 300; /* both apply threads, then one */
    if (k + step > S0 + MORE) step = S0 + MORE - k;
    engine_op o2 = {.kind = OP_EVENTS, .events = ev + k, .nevents = step};
    ck_assert_int_eq(engine_submit_wait(e, &o2), 0);
    recd_stats st;
    engine_stats(e, &st);
    during += st.snapshot_running && st.snapshots_ok == 0;
    k += step;
  }
  ck_assert_msg(during > 0, "no write was applied while the snapshot ran");
  recd_stats st;
  for (int tries = 0; tries < 3000; tries++) {
    engine_stats(e, &st);
    if (st.snapshots_ok + st.snapshots_failed) break;
    usleep(10000);
  }
  ck_assert_uint_eq(st.snapshots_ok, 1);
  ck_assert_uint_eq(st.snapshot_seq, S0);
  b[0] = read_file(snap[0], &len[0]); /* before the close writes its own */
  /* a snapshot still running at close is stopped, and the close's own covers everything */
  ck_assert_int_eq(engine_submit_wait(e, &op), 0); /* S0 more: the next one is due */
  for (int tries = 0; tries < 500; tries++) { /* started by the apply stage after it acknowledged */
    engine_stats(e, &st);
    if (st.snapshot_running) break;
    usleep(10000);
  }
  ck_assert_int_eq(st.snapshot_running, 1);
  ck_assert_uint_eq(st.snapshots_ok, 1);
  engine_free(e);
  unsetenv("RECD_TEST_SNAPSHOT_PAUSE_US");
  ck_assert_int_eq(sched_setaffinity(0, sizeof all, &all), 0);
  e = reopen(dir[0], 1);
  engine_stats(e, &st);
  ck_assert_uint_eq(st.snapshot_seq, 2 * S0 + MORE); /* loaded, nothing replayed */
  ck_assert_uint_eq(st.events, 2 * S0 + MORE);
  engine_free(e);
  /* B: only the first S0 events; its snapshot at close */
  e = open_engine(dir[1], &c);
  put_catalog(e);
  ck_assert_int_eq(engine_submit_wait(e, &op), 0);
  engine_free(e);
  b[1] = read_file(snap[1], &len[1]);
  same_snapshots_then_clean(b, len, dir);
  free(ev);
  free(uid);
  free(iid);
}
END_TEST

/* engine_memory: the parts grow with what was written, the walk counts no
 * more than malloc has in use, and with nothing clamped the parts add up to
 * the resident size it read. engine_memory_latest answers at once and has a
 * thread walk in the background; engine_free stops that thread. */
START_TEST(memory_by_part) {
  enum { USERS = 300, ITEMS = 40 };
  char *dir = unit_tmpdir();
  recd_config c;
  recd_engine *e = open_engine(dir, &c);
  recd_memory m0, m1;
  engine_memory(e, &m0);
  ck_assert_uint_eq(m0.bytes[RECD_MEM_PROFILES], 0);
  ck_assert_uint_eq(m0.bytes[RECD_MEM_COVIS], 0);
  char id[32], user[32];
  for (int i = 0; i < ITEMS; i++) {
    snprintf(id, sizeof id, "item_%d", i);
    put_item(e, id, i % 2 ? "books" : "toys", 1);
  }
  int64_t t = 1700000000000LL;
  for (int u = 0; u < USERS; u++) {
    snprintf(user, sizeof user, "user_%d", u);
    recd_event ev[6];
    char iids[6][32];
    for (int k = 0; k < 6; k++) {
      snprintf(iids[k], sizeof iids[k], "item_%d", (u * 7 + k * 3) % ITEMS);
      ev[k] = (recd_event){.user_id = user, .item_id = iids[k], .type = k % 3, .ts_ms = t + u * 100 + k};
    }
    engine_op op = {.kind = OP_EVENTS, .events = ev, .nevents = 6};
    ck_assert_int_eq(engine_submit_wait(e, &op), 0);
  }
  recd_rec_result r;
  recommend(e, "user_1", 10, &r); /* builds trending and content memos */
  engine_result_release(&r);
  engine_memory(e, &m1);
  for (int k = 0; k < RECD_MEM_NPARTS; k++) ck_assert_ptr_nonnull(recd_memory_part_names[k]);
  ck_assert_uint_ge(m1.bytes[RECD_MEM_PROFILES], USERS * sizeof(userprof));
  ck_assert_uint_ge(m1.bytes[RECD_MEM_RINGS], USERS * 6 * sizeof(recent_ev));
  ck_assert_uint_ge(m1.bytes[RECD_MEM_SEEN], USERS * 6 * 8);
  ck_assert_uint_ge(m1.bytes[RECD_MEM_ITEMS], ITEMS * sizeof(itemstats));
  ck_assert_uint_gt(m1.bytes[RECD_MEM_MEMOS], 0);
  ck_assert_uint_ge(m1.bytes[RECD_MEM_COVIS], ITEMS * sizeof(covis_list));
  ck_assert_uint_gt(m1.bytes[RECD_MEM_CONTENT], 0);
  ck_assert_uint_gt(m1.bytes[RECD_MEM_IDS], m0.bytes[RECD_MEM_IDS]);
  ck_assert_uint_gt(m1.bytes[RECD_MEM_TRENDING], 0);
  ck_assert_uint_gt(m1.bytes[RECD_MEM_SQLITE], 0);
  ck_assert_uint_gt(m1.rss, 0);
  ck_assert_int_gt(m1.measured_ms, 0);
  uint64_t named = 0, all = 0;
  for (int k = 0; k < RECD_MEM_NPARTS; k++) {
    if (k < RECD_MEM_HEAP_OTHER) named += m1.bytes[k];
    all += m1.bytes[k];
  }
  struct mallinfo2 mi = mallinfo2();
  if (mi.uordblks > (1u << 20)) { /* glibc's malloc (AddressSanitizer has its own) */
    ck_assert_msg(named <= mi.uordblks + mi.hblkhd, "the walk counted %llu bytes, malloc has %zu in use",
                  (unsigned long long)named, mi.uordblks + mi.hblkhd);
    if (m1.bytes[RECD_MEM_HEAP_OTHER] && m1.bytes[RECD_MEM_NON_HEAP])
      ck_assert_uint_eq(all, m1.rss);
  }

  recd_memory l;
  engine_memory_latest(e, 30000, &l);
  ck_assert_int_eq(l.measured_ms, 0); /* none yet: a walk starts */
  for (int i = 0; i < 500 && !l.measured_ms; i++) {
    usleep(10000);
    engine_memory_latest(e, 30000, &l);
  }
  ck_assert_int_gt(l.measured_ms, 0);
  ck_assert_uint_eq(l.bytes[RECD_MEM_PROFILES], m1.bytes[RECD_MEM_PROFILES]);
  ck_assert_uint_eq(l.bytes[RECD_MEM_COVIS], m1.bytes[RECD_MEM_COVIS]);
  event(e, "user_new", "item_3", 0, t + 1000000);
  engine_memory_latest(e, 0, &l); /* older than 0 ms: another walk */
  for (int i = 0; i < 500 && l.bytes[RECD_MEM_PROFILES] == m1.bytes[RECD_MEM_PROFILES]; i++) {
    usleep(10000);
    engine_memory_latest(e, 60000, &l);
  }
  ck_assert_uint_gt(l.bytes[RECD_MEM_PROFILES], m1.bytes[RECD_MEM_PROFILES]);
  engine_free(e);
  unit_rmrf(dir);
  free(dir);
}
END_TEST

START_TEST(models_train_promote_restart_corrupt) {
  char *dir = unit_tmpdir();
  recd_config c;
  recd_engine *e = open_engine(dir, &c);
  char id[32], user[32];
  /* two tastes: users 0..59 like a0..a19, users 60..119 like b0..b19 */
  int64_t t = 1700000000000LL;
  for (int u = 0; u < 120; u++)
    for (int k = 0; k < 8; k++) {
      snprintf(user, sizeof user, "u%d", u);
      snprintf(id, sizeof id, "%c%d", u < 60 ? 'a' : 'b', (u * 7 + k * 3) % 20);
      event(e, user, id, 1, t++);
    }
  recd_train_request rq = {.kind = "ials", .promote = RECD_PROMOTE_IF_BETTER};
  json_t *meta;
  recd_fail f;
  ck_assert_int_eq(engine_train(e, &rq, &meta, &f), 0);
  ck_assert_str_eq(json_string_value(json_object_get(meta, "stage")), "production");
  ck_assert_int_eq(json_integer_value(json_object_get(meta, "version")), 1);
  double ndcg = json_real_value(json_object_get(json_object_get(meta, "metrics"), "ndcg_at_10"));
  ck_assert_msg(ndcg > 0.2, "held-out nDCG@10 %.3f", ndcg);
  json_decref(meta);
  /* a new user with one event gets the model's block at once (fold-in) */
  event(e, "fresh", "a3", 1, t++);
  recd_rec_request rr = {.user_id = "fresh", .n = 5};
  recd_rec_result res;
  ck_assert_int_eq(engine_recommend(e, &rr, &res), 0);
  for (size_t i = 0; i < res.count; i++) ck_assert_msg(res.items[i].item_id[0] == 'a', "%s", res.items[i].item_id);
  int mf = 0;
  for (int k = 0; k < res.items[0].nreasons; k++) mf |= strstr(res.items[0].reasons[k], "taste") != NULL;
  ck_assert(mf);
  engine_result_release(&res);
  /* a second model, never promoted, stays a candidate */
  rq.promote = RECD_PROMOTE_NEVER;
  rq.kind = "ease";
  ck_assert_int_eq(engine_train(e, &rq, &meta, &f), 0);
  ck_assert_str_eq(json_string_value(json_object_get(meta, "stage")), "candidate");
  json_decref(meta);
  /* corrupt v2's file: promoting it is refused and v1 keeps serving */
  char path[700];
  snprintf(path, sizeof path, "%s/models/v2/model.bin", dir);
  FILE *fp = fopen(path, "r+b");
  ck_assert_ptr_nonnull(fp);
  fseek(fp, 100, SEEK_SET);
  fputc('X', fp);
  fclose(fp);
  ck_assert_int_ne(engine_promote(e, 2, &meta, &f), 0);
  ck_assert_str_eq(f.code, "model_corrupt");
  json_t *list = engine_models(e);
  ck_assert_int_eq(json_integer_value(json_object_get(list, "production")), 1);
  json_decref(list);
  ck_assert_int_ne(engine_rollback(e, &meta, &f), 0); /* nothing before v1 */
  engine_free(e);
  /* a restart serves the production version */
  e = reopen(dir, 1);
  list = engine_models(e);
  ck_assert_int_eq(json_integer_value(json_object_get(list, "production")), 1);
  ck_assert_uint_eq(json_array_size(json_object_get(list, "models")), 2);
  json_decref(list);
  engine_free(e);
  unit_rmrf(dir);
  free(dir);
}
END_TEST

Suite *engine_suite(void) {
  Suite *s = suite_create("engine");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, read_your_writes_rules_restart);
  tcase_add_test(tc, memory_by_part);
  tcase_add_test(tc, diversity_and_filters);
  tcase_add_test(tc, content_neighbours_follow_catalog_writes);
  tcase_add_test(tc, snapshot_equals_replay);
  tcase_add_test(tc, background_snapshot_is_the_state_at_its_event);
  tcase_add_test(tc, background_snapshots_replace_their_files);
  tcase_add_test(tc, writes_wait_for_a_snapshot_past_max_replay);
  tcase_add_test(tc, parallel_apply_equals_sequential);
  tcase_add_test(tc, concurrent_writers_small_and_big_rounds);
  tcase_add_test(tc, commit_delay_groups_concurrent_writes);
  tcase_add_test(tc, failed_commit_fails_its_group_and_restart_has_the_committed);
  tcase_add_test(tc, models_train_promote_restart_corrupt);
  suite_add_tcase(s, tc);
  return s;
}
