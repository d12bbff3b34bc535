/* event_fuzz.c — libFuzzer driver for the JSON validation of events and catalog
 * items (src/engine/parse.c), fed the way the HTTP handlers feed it.
 *
 * The input is a request body, loaded with the handlers' flags
 * (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL). It is then validated as
 *   - POST /api/v1/events: {"events": [...]} element by element with its batch
 *     index, otherwise the whole body as one event (non-objects too);
 *   - POST /api/v1/items: {"items": [...]} element by element;
 *   - PUT /api/v1/items/{id}: the body as one item, without a path id, with the
 *     path id "item-1", and with its own item_id as the path id.
 * engine_parse_event reads only the engine's configuration; the engine is opened
 * once (fuzz_util.h). `now` is fixed so every run of an input is the same.
 *
 * Properties checked: a success yields only valid ids (1..256 bytes, no control
 * characters or NUL), a configured event type, a time from 1970 to now + 24 h, a
 * finite value; items within the category/tag limits with properties that are a
 * serialised JSON object. A failure is a 400 with a code, a message and the batch
 * index it was given.
 *
 * The plain-text fast path (engine_parse_events_text) is checked against the
 * general one: whatever body it accepts, jansson + engine_parse_event accept
 * too, as the same events (same ids, type, time, value), in the same shape
 * (one event, or a batch of the same length). So is the catalog's
 * (engine_parse_item_text, recd import's lines): the same item, its
 * properties serialised byte for byte alike; and the POST /items one
 * (engine_parse_items_text). */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "engine/engine.h"
#include "feature/itemstats.h"
#include "fuzz_util.h"
#include "util/clock.h"
#include "util/mem.h"

#define FUZZ_NOW_MS 1714564800000LL /* 2024-05-01T12:00:00Z */
#define MAX_FUTURE_MS (24LL * 3600 * 1000)

static void check_id(const char *s, const char *what) {
  FUZZ_CHECK(s != NULL, "%s is NULL", what);
  size_t len = strlen(s);
  FUZZ_CHECK(len >= 1 && len <= RECD_MAX_ID_LEN, "%s is %zu bytes", what, len);
  for (size_t i = 0; i < len; i++)
    FUZZ_CHECK((unsigned char)s[i] >= 0x20 && s[i] != 0x7f, "%s has a control character at %zu", what, i);
}

static void check_fail(const recd_fail *f, long index, const char *what) {
  FUZZ_CHECK(f->status == 400, "%s: status %d", what, f->status);
  FUZZ_CHECK(f->code[0] && f->message[0], "%s: empty code or message", what);
  FUZZ_CHECK(f->index == index, "%s: index %ld, given %ld", what, f->index, index);
}

static void event(const recd_engine *e, json_t *obj, long index) {
  recd_event ev;
  recd_fail f;
  memset(&f, 0, sizeof f);
  if (engine_parse_event(e, obj, index, FUZZ_NOW_MS, &ev, &f)) {
    check_fail(&f, index, "event");
    return;
  }
  check_id(ev.user_id, "user_id");
  check_id(ev.item_id, "item_id");
  if (ev.session_id) check_id(ev.session_id, "session_id");
  if (ev.rec_id) check_id(ev.rec_id, "recommendation_id");
  FUZZ_CHECK(ev.type >= 0 && ev.type < engine_config(e)->ntypes, "type %d", ev.type);
  FUZZ_CHECK(ev.ts_ms >= 0 && ev.ts_ms <= FUZZ_NOW_MS + MAX_FUTURE_MS, "ts_ms %lld", (long long)ev.ts_ms);
  if (ev.has_value) FUZZ_CHECK(isfinite(ev.value), "value %g", ev.value);
}

static void item(const recd_engine *e, json_t *obj, const char *path_id, long index, arena *a) {
  recd_item it;
  recd_fail f;
  memset(&f, 0, sizeof f);
  if (engine_parse_item(e, obj, path_id, index, a, &it, &f)) {
    check_fail(&f, index, "item");
    return;
  }
  check_id(it.item_id, "item_id");
  if (path_id) FUZZ_CHECK(!strcmp(it.item_id, path_id), "item_id '%s' is not the path id", it.item_id);
  FUZZ_CHECK(it.ncategories <= ITEM_MAX_CATS && it.ntags <= ITEM_MAX_TAGS, "%zu categories, %zu tags",
             it.ncategories, it.ntags);
  for (size_t i = 0; i < it.ncategories; i++) check_id(it.categories[i], "categories[]");
  for (size_t i = 0; i < it.ntags; i++) check_id(it.tags[i], "tags[]");
  FUZZ_CHECK(it.available == 0 || it.available == 1, "available %d", it.available);
  FUZZ_CHECK(it.created_at_ms >= -1, "created_at_ms %lld", (long long)it.created_at_ms);
  if (it.properties_json) {
    json_t *p = json_loads(it.properties_json, JSON_ALLOW_NUL, NULL);
    FUZZ_CHECK(p && json_is_object(p), "properties_json does not reload: %.100s", it.properties_json);
    json_decref(p);
  }
}

static int same_str(const char *a, const char *b) { return a == b || (a && b && !strcmp(a, b)); }

static void same_event(const recd_event *fast, const recd_event *gen, long index) {
  FUZZ_CHECK(same_str(fast->user_id, gen->user_id) && same_str(fast->item_id, gen->item_id) &&
                 same_str(fast->session_id, gen->session_id) && same_str(fast->rec_id, gen->rec_id),
             "event %ld: the fast path read other ids", index);
  FUZZ_CHECK(fast->type == gen->type && fast->ts_ms == gen->ts_ms && fast->has_value == gen->has_value &&
                 (!fast->has_value || fast->value == gen->value),
             "event %ld: type/time/value differ (%d/%lld/%g vs %d/%lld/%g)", index, fast->type,
             (long long)fast->ts_ms, fast->value, gen->type, (long long)gen->ts_ms, gen->value);
}

static void fast_path(const recd_engine *e, const uint8_t *data, size_t size) {
  char *text = xmalloc(size ? size : 1);
  memcpy(text, data, size);
  recd_event *evs;
  size_t n;
  arena a;
  arena_init(&a);
  if (engine_parse_events_text(e, text, size, FUZZ_NOW_MS, (size_t)engine_config(e)->max_batch, &a, &evs, &n)) {
    FUZZ_CHECK(!memcmp(text, data, size), "the fast path declined but changed the text");
    arena_release(&a);
    free(text);
    return;
  }
  json_error_t je;
  json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
  FUZZ_CHECK(root && json_is_object(root), "the fast path accepted what jansson refuses: %s", root ? "" : je.text);
  json_t *list = json_object_get(root, "events");
  recd_event ev;
  recd_fail f;
  if (list) {
    FUZZ_CHECK(json_is_array(list) && json_object_size(root) == 1 && json_array_size(list) == n,
               "the fast path read a batch of %zu, jansson sees another shape", n);
    for (size_t i = 0; i < n; i++) {
      FUZZ_CHECK(!engine_parse_event(e, json_array_get(list, i), (long)i, FUZZ_NOW_MS, &ev, &f),
                 "event %zu: the fast path accepted what engine_parse_event refuses: %s", i, f.message);
      same_event(&evs[i], &ev, (long)i);
    }
  } else {
    FUZZ_CHECK(n == 1, "the fast path read %zu events from one object", n);
    FUZZ_CHECK(!engine_parse_event(e, root, -1, FUZZ_NOW_MS, &ev, &f),
               "the fast path accepted what engine_parse_event refuses: %s", f.message);
    same_event(&evs[0], &ev, -1);
  }
  json_decref(root);
  arena_release(&a);
  free(text);
}

static void same_list(const char *const *a, size_t na, const char *const *b, size_t nb, const char *what) {
  FUZZ_CHECK(na == nb, "%s: %zu entries by the fast path, %zu by jansson", what, na, nb);
  for (size_t i = 0; i < na; i++) FUZZ_CHECK(!strcmp(a[i], b[i]), "%s[%zu] differs", what, i);
}

/* what engine_parse_item makes of obj (it must accept it) is fast, field by field */
static void same_item(const recd_engine *e, const recd_item *fast, json_t *obj, const char *path_id, long index,
                      arena *a) {
  recd_item gen;
  recd_fail f;
  FUZZ_CHECK(!engine_parse_item(e, obj, path_id, index, a, &gen, &f),
             "item %ld: the fast path accepted what engine_parse_item refuses: %s", index, f.message);
  FUZZ_CHECK(!strcmp(fast->item_id, gen.item_id), "item %ld: item_id differs", index);
  same_list(fast->categories, fast->ncategories, gen.categories, gen.ncategories, "categories");
  same_list(fast->tags, fast->ntags, gen.tags, gen.ntags, "tags");
  FUZZ_CHECK(fast->available == gen.available && fast->created_at_ms == gen.created_at_ms,
             "item %ld: available/created_at differ (%d/%lld vs %d/%lld)", index, fast->available,
             (long long)fast->created_at_ms, gen.available, (long long)gen.created_at_ms);
  FUZZ_CHECK(same_str(fast->properties_json, gen.properties_json), "item %ld: properties differ: %.100s vs %.100s",
             index, fast->properties_json ? fast->properties_json : "(none)",
             gen.properties_json ? gen.properties_json : "(none)");
}

/* the catalog's fast paths: whatever recd import's line reader accepts,
 * jansson (with the import's flags) and engine_parse_item accept as the same
 * item, and so for PUT /items/{id} with a path id (the handlers' flags);
 * whatever the POST /items reader accepts, jansson reads as a batch of as
 * many items, each the same */
static void item_fast_path(const recd_engine *e, const uint8_t *data, size_t size) {
  char *text = xmalloc(size ? size : 1);
  memcpy(text, data, size);
  arena a;
  arena_init(&a);
  recd_item one, *many;
  size_t n;
  int64_t now = clock_now_ms();
  json_error_t je;
  /* as recd import reads a line (no path id, jansson's default flags), then as
   * PUT /items/{id} reads a body, with "item-1" and with the body's own id */
  const char *own = NULL;
  for (int k = 0; k < 3; k++) {
    const char *pid = k == 0 ? NULL : k == 1 ? "item-1" : own;
    if (k == 2 && !own) break;
    if (engine_parse_item_text(e, text, size, pid, now, &a, &one)) continue;
    json_t *root = json_loadb((const char *)data, size, k ? JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL : 0, &je);
    FUZZ_CHECK(root != NULL, "the item fast path accepted what jansson refuses: %s", je.text);
    same_item(e, &one, root, pid, -1, &a);
    if (k == 0) own = one.item_id;
    json_decref(root);
  }
  if (!engine_parse_items_text(e, text, size, now, (size_t)engine_config(e)->max_batch, &a, &many, &n)) {
    json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    FUZZ_CHECK(root != NULL, "the items fast path accepted what jansson refuses: %s", je.text);
    json_t *list = json_object_get(root, "items");
    FUZZ_CHECK(json_object_size(root) == 1 && json_is_array(list) && json_array_size(list) == n && n > 0,
               "the items fast path read a batch of %zu, jansson sees another shape", n);
    for (size_t i = 0; i < n; i++) same_item(e, &many[i], json_array_get(list, i), NULL, (long)i, &a);
    json_decref(root);
  }
  FUZZ_CHECK(!memcmp(text, data, size), "an item fast path changed the text");
  arena_release(&a);
  free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fast_path(fuzz_engine(), data, size);
  item_fast_path(fuzz_engine(), data, size);
  json_error_t je;
  json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
  if (!root) return 0;
  const recd_engine *e = fuzz_engine();

  size_t i;
  json_t *v;
  json_t *list = json_object_get(root, "events");
  if (json_is_array(list)) {
    json_array_foreach(list, i, v) event(e, v, (long)i);
  } else {
    event(e, root, -1);
  }

  arena a;
  arena_init(&a);
  list = json_object_get(root, "items");
  if (json_is_array(list)) json_array_foreach(list, i, v) item(e, v, NULL, (long)i, &a);
  item(e, root, NULL, -1, &a);
  item(e, root, "item-1", -1, &a);
  json_t *id = json_object_get(root, "item_id");
  if (json_is_string(id)) item(e, root, json_string_value(id), -1, &a);
  arena_release(&a);
  json_decref(root);
  return 0;
}
