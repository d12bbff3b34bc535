/* parse.c — validation of events and catalog items from JSON. Every failure
 * names the field and the problem; nothing here touches engine state. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/engine_int.h"
#include "util/clock.h"
#include "util/err.h"

#define MAX_FUTURE_MS (24LL * 3600 * 1000)

/* "events[3].user_id", or "user_id" for a single event. Only error messages
 * use it: PATH() builds it in place, so a field that parses fine never pays
 * for the formatting. */
static const char *path_of(char *buf, size_t n, const char *prefix, long index, const char *field) {
  if (index >= 0) snprintf(buf, n, "%s[%ld].%s", prefix, index, field);
  else snprintf(buf, n, "%s", field);
  return buf;
}
#define PATH(prefix, index, field) path_of((char[96]){0}, 96, (prefix), (index), (field))

int engine_check_id(const char *s, size_t len, const char *what, long index, const char *field, recd_fail *fail) {
  size_t bad = len;
  if (len > 0 && len <= RECD_MAX_ID_LEN)
    for (size_t i = 0; i < len; i++) {
      unsigned char c = (unsigned char)s[i];
      if (c < 0x20 || c == 0x7f) {
        bad = i;
        break;
      }
    }
  if (len > 0 && len <= RECD_MAX_ID_LEN && bad == len) return 0;
  /* the message is only built on failure: this runs for every id of every event */
  const char *code = !strcmp(what, "items") ? "invalid_item" : "invalid_event";
  const char *path = PATH(what, index, field);
  if (len == 0) recd_fail_set(fail, 400, code, index, field, "%s: must not be empty", path);
  else if (len > RECD_MAX_ID_LEN)
    recd_fail_set(fail, 400, code, index, field, "%s: %zu bytes long, the limit is %d", path, len, RECD_MAX_ID_LEN);
  else recd_fail_set(fail, 400, code, index, field, "%s: contains a control character (byte %zu)", path, bad);
  return RECD_EINVAL;
}

static const char *json_kind(const json_t *v) {
  switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
  }
  return "?";
}

static int parse_time(json_t *v, const char *what, long index, const char *field, const char *code, int64_t now,
                      int64_t *out, recd_fail *fail) {
  if (json_is_string(v)) {
    if (clock_parse_rfc3339(json_string_value(v), json_string_length(v), out)) {
      recd_fail_set(fail, 400, code, index, field, "%s: '%.64s' is not an RFC 3339 time like 2024-05-01T12:00:00Z",
                    PATH(what, index, field), json_string_value(v));
      return RECD_EINVAL;
    }
  } else if (json_is_number(v)) {
    double sec = json_number_value(v);
    if (!isfinite(sec) || sec < 0 || sec > 4102444800.0) {
      recd_fail_set(fail, 400, code, index, field, "%s: unix time %g is out of range (0 to 4102444800)", PATH(what, index, field), sec);
      return RECD_EINVAL;
    }
    *out = (int64_t)llround(sec * 1000.0);
  } else {
    recd_fail_set(fail, 400, code, index, field, "%s: must be an RFC 3339 string or unix seconds, not %s", PATH(what, index, field),
                  json_kind(v));
    return RECD_EINVAL;
  }
  if (*out < 0) {
    recd_fail_set(fail, 400, code, index, field, "%s: before 1970 is not supported", PATH(what, index, field));
    return RECD_EINVAL;
  }
  if (now && *out > now + MAX_FUTURE_MS) {
    recd_fail_set(fail, 400, code, index, field, "%s: more than 24 hours in the future", PATH(what, index, field));
    return RECD_EINVAL;
  }
  return 0;
}

static int get_id(json_t *obj, const char *key, const char *what, long index, int required, const char **out,
                  recd_fail *fail) {
  const char *code = !strcmp(what, "items") ? "invalid_item" : "invalid_event";
  json_t *v = json_object_get(obj, key);
  if (!v || json_is_null(v)) {
    if (!required) {
      *out = NULL;
      return 0;
    }
    recd_fail_set(fail, 400, code, index, key, "%s: is required", PATH(what, index, key));
    return RECD_EINVAL;
  }
  if (!json_is_string(v)) {
    recd_fail_set(fail, 400, code, index, key, "%s: must be a string, not %s", PATH(what, index, key), json_kind(v));
    return RECD_EINVAL;
  }
  if (engine_check_id(json_string_value(v), json_string_length(v), what, index, key, fail)) return RECD_EINVAL;
  if (strlen(json_string_value(v)) != json_string_length(v)) {
    recd_fail_set(fail, 400, code, index, key, "%s: contains a NUL byte", PATH(what, index, key));
    return RECD_EINVAL;
  }
  *out = json_string_value(v);
  return 0;
}

/* The object shape shared by events and items: a JSON object whose keys are
 * all in `known`. 0, or RECD_EINVAL with `fail` naming the field. */
static int check_object(json_t *obj, const char *what, const char *noun, const char *code, const char *const *known,
                        size_t nknown, long index, recd_fail *fail) {
  char path[96];
  if (!json_is_object(obj)) {
    recd_fail_set(fail, 400, code, index, "", "%s: %s must be a JSON object, not %s",
                  index >= 0 ? (snprintf(path, sizeof path, "%s[%ld]", what, index), path) : "body", noun,
                  json_kind(obj));
    return RECD_EINVAL;
  }
  const char *key;
  json_t *v;
  json_object_foreach(obj, key, v) {
    int ok = 0;
    for (size_t i = 0; i < nknown; i++) ok |= !strcmp(key, known[i]);
    if (ok) continue;
    char list[256] = "";
    for (size_t i = 0; i < nknown; i++)
      snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", known[i]);
    recd_fail_set(fail, 400, code, index, key, "%s: unknown field (known: %s)", PATH(what, index, key), list);
    return RECD_EINVAL;
  }
  return 0;
}

int engine_parse_event(const recd_engine *e, json_t *obj, long index, int64_t now_ms, recd_event *ev,
                       recd_fail *fail) {
  static const char *known[] = {"user_id", "item_id", "event_type", "timestamp", "value", "session_id",
                                "recommendation_id"};
  memset(ev, 0, sizeof *ev);
  if (check_object(obj, "events", "an event", "invalid_event", known, sizeof known / sizeof known[0], index, fail))
    return RECD_EINVAL;
  json_t *v;
  if (get_id(obj, "user_id", "events", index, 1, &ev->user_id, fail) ||
      get_id(obj, "item_id", "events", index, 1, &ev->item_id, fail))
    return RECD_EINVAL;
  v = json_object_get(obj, "event_type");
  if (!v || json_is_null(v)) {
    recd_fail_set(fail, 400, "invalid_event", index, "event_type", "%s: is required", PATH("events", index, "event_type"));
    return RECD_EINVAL;
  }
  if (!json_is_string(v)) {
    recd_fail_set(fail, 400, "invalid_event", index, "event_type", "%s: must be a string, not %s",
                  PATH("events", index, "event_type"), json_kind(v));
    return RECD_EINVAL;
  }
  ev->type = config_type_index(&e->cfg, json_string_value(v), json_string_length(v));
  if (ev->type < 0) {
    recd_fail_set(fail, 400, "invalid_event", index, "event_type", "%s: unknown type '%.64s'", PATH("events", index, "event_type"),
                  json_string_value(v));
    return RECD_EINVAL;
  }
  v = json_object_get(obj, "timestamp");
  if (v && !json_is_null(v)) {
    if (parse_time(v, "events", index, "timestamp", "invalid_event", now_ms, &ev->ts_ms, fail)) return RECD_EINVAL;
  } else {
    ev->ts_ms = now_ms;
  }
  v = json_object_get(obj, "value");
  if (v && !json_is_null(v)) {
    if (!json_is_number(v) || !isfinite(json_number_value(v))) {
      recd_fail_set(fail, 400, "invalid_event", index, "value", "%s: must be a finite number, not %s", PATH("events", index, "value"),
                    json_kind(v));
      return RECD_EINVAL;
    }
    ev->value = json_number_value(v);
    ev->has_value = 1;
  }
  if (get_id(obj, "session_id", "events", index, 0, &ev->session_id, fail) ||
      get_id(obj, "recommendation_id", "events", index, 0, &ev->rec_id, fail))
    return RECD_EINVAL;
  return 0;
}

static int string_list(json_t *obj, const char *key, long index, size_t max, arena *a, const char ***out, size_t *n,
                       recd_fail *fail) {
  json_t *v = json_object_get(obj, key);
  *out = NULL;
  *n = 0;
  if (!v || json_is_null(v)) return 0;
  if (!json_is_array(v)) {
    recd_fail_set(fail, 400, "invalid_item", index, key, "%s: must be a list of strings, not %s", PATH("items", index, key), json_kind(v));
    return RECD_EINVAL;
  }
  if (json_array_size(v) > max) {
    recd_fail_set(fail, 400, "invalid_item", index, key, "%s: %zu entries, the limit is %zu", PATH("items", index, key),
                  json_array_size(v), max);
    return RECD_EINVAL;
  }
  *out = arena_alloc(a, (json_array_size(v) + 1) * sizeof(char *));
  size_t i;
  json_t *s;
  json_array_foreach(v, i, s) {
    if (!json_is_string(s)) {
      recd_fail_set(fail, 400, "invalid_item", index, key, "%s[%zu]: must be a string, not %s", PATH("items", index, key), i, json_kind(s));
      return RECD_EINVAL;
    }
    size_t len = json_string_length(s);
    const char *str = json_string_value(s);
    if (len == 0 || len > RECD_MAX_ID_LEN || strlen(str) != len) {
      recd_fail_set(fail, 400, "invalid_item", index, key, "%s[%zu]: must be 1 to %d bytes", PATH("items", index, key), i, RECD_MAX_ID_LEN);
      return RECD_EINVAL;
    }
    for (size_t k = 0; k < len; k++)
      if ((unsigned char)str[k] < 0x20 || str[k] == 0x7f) {
        recd_fail_set(fail, 400, "invalid_item", index, key, "%s[%zu]: contains a control character", PATH("items", index, key), i);
        return RECD_EINVAL;
      }
    (*out)[(*n)++] = str;
  }
  return 0;
}

int engine_parse_item(const recd_engine *e, json_t *obj, const char *path_id, long index, arena *a, recd_item *it,
                      recd_fail *fail) {
  static const char *known[] = {"item_id", "categories", "tags", "available", "created_at", "properties"};
  (void)e;
  memset(it, 0, sizeof *it);
  it->available = 1;
  it->created_at_ms = -1;
  if (check_object(obj, "items", "an item", "invalid_item", known, sizeof known / sizeof known[0], index, fail))
    return RECD_EINVAL;
  json_t *v;
  if (path_id) {
    const char *bid;
    if (get_id(obj, "item_id", "items", index, 0, &bid, fail)) return RECD_EINVAL;
    if (bid && strcmp(bid, path_id)) {
      recd_fail_set(fail, 400, "invalid_item", index, "item_id", "item_id: '%.64s' in the body differs from '%.64s' in the URL",
                    bid, path_id);
      return RECD_EINVAL;
    }
    if (engine_check_id(path_id, strlen(path_id), "items", index, "item_id", fail)) return RECD_EINVAL;
    it->item_id = path_id;
  } else if (get_id(obj, "item_id", "items", index, 1, &it->item_id, fail)) {
    return RECD_EINVAL;
  }
  if (string_list(obj, "categories", index, ITEM_MAX_CATS, a, &it->categories, &it->ncategories, fail) ||
      string_list(obj, "tags", index, ITEM_MAX_TAGS, a, &it->tags, &it->ntags, fail))
    return RECD_EINVAL;
  v = json_object_get(obj, "available");
  if (v && !json_is_null(v)) {
    if (!json_is_boolean(v)) {
      recd_fail_set(fail, 400, "invalid_item", index, "available", "%s: must be true or false, not %s", PATH("items", index, "available"),
                    json_kind(v));
      return RECD_EINVAL;
    }
    it->available = json_is_true(v);
  }
  v = json_object_get(obj, "created_at");
  if (v && !json_is_null(v) &&
      parse_time(v, "items", index, "created_at", "invalid_item", clock_now_ms(), &it->created_at_ms, fail))
    return RECD_EINVAL;
  v = json_object_get(obj, "properties");
  if (v && !json_is_null(v)) {
    if (!json_is_object(v)) {
      recd_fail_set(fail, 400, "invalid_item", index, "properties", "%s: must be an object, not %s", PATH("items", index, "properties"),
                    json_kind(v));
      return RECD_EINVAL;
    }
    char *s = json_dumps(v, JSON_COMPACT);
    it->properties_json = arena_strndup(a, s, strlen(s));
    free(s);
  }
  return 0;
}
