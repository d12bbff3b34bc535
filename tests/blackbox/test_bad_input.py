"""Bad input: every rejected request gets the documented 4xx, a JSON error with
the right code/field, and changes nothing."""

import email.utils
import re
import time

from harness import API, RecdTestCase, count, ev, now_s, q, rfc3339

PROBE = "probe_user"
MAX_BODY = 65536
MAX_BATCH = 100


class BadInputTest(RecdTestCase):
    server_args = ["--max-body", str(MAX_BODY), "--max-batch", str(MAX_BATCH)]

    @classmethod
    def prepare(cls):
        s = cls.server
        r = s.put(API + "/items/probe_item", {"categories": ["c1"], "tags": [], "available": True})
        assert r.status == 200, r.describe()
        t = now_s() - 300
        r = s.post(API + "/events", {"events": [ev(PROBE, "probe_item", "view", t),
                                                ev(PROBE, "probe_item", "click", t + 1)]})
        assert r.status == 200, r.describe()

    # ------------------------------------------------------------- helpers
    def snapshot(self):
        h = self.health()
        f = self.features(PROBE)
        it = self.ok(self.server.get(API + "/items/probe_item"))
        return {"events": h["events"], "users": h["users"], "items": h["items"],
                "counts": f["counts"], "total": f["total"],
                "unique_items": f["unique_items"], "recent_items": f["recent_items"],
                "catalog_item": it}

    def assertUnchanged(self, before, also_absent=()):
        after = self.snapshot()
        self.assertEqual(after, before, "a rejected request changed state")
        for u in also_absent:
            # 404 (unknown) or 400 (an id that is itself invalid): anything but 200
            r = self.server.get(API + "/users/%s/features" % q(u))
            self.assertIn(r.status, (400, 404), "user %r was created by a rejected request: %s"
                          % (u, r.describe()))

    def reject_event(self, event, field, code="invalid_event", status=400, absent=()):
        """POST one event; expect rejection naming `field`, and no change."""
        before = self.snapshot()
        r = self.server.post(API + "/events", event)
        err = self.assertError(r, status, code, field=field)
        self.assertIn(err.get("index", -1), (-1, None), "single event: index absent or -1: %s"
                      % r.describe())
        self.assertUnchanged(before, absent)
        return err

    def good(self, **kw):
        e = ev(PROBE, "probe_item", "view")
        e.update(kw)
        return e

    # ------------------------------------------------------------- malformed JSON
    def test_malformed_json(self):
        before = self.snapshot()
        body = '{\n  "user_id": "probe_user",\n  "item_id": oops,\n  "event_type": "view"\n}'
        r = self.server.post(API + "/events", raw=body)
        err = self.assertError(r, 400, "invalid_json")
        msg = err["message"].lower()
        self.assertIn("line", msg, "message should give the line: %s" % r.describe())
        self.assertTrue("column" in msg or "col" in msg,
                        "message should give the column: %s" % r.describe())
        self.assertTrue(re.search(r"line\D{0,3}3\b", msg), "error is on line 3: %s" % r.describe())
        for raw in ('{"user_id": "probe_user", "item_id": "probe_item", "event_type": "view"',
                    '', 'null', '[1,2', '{"events": [', '\xff\xfe'):
            r = self.server.post(API + "/events", raw=raw.encode("latin-1"))
            self.assertEqual(r.status, 400, r.describe())
            self.assertIsNotNone(r.json, "error must be JSON: %s" % r.describe())
        self.assertUnchanged(before)

    def test_trailing_garbage_is_malformed(self):
        before = self.snapshot()
        body = '{"user_id":"probe_user","item_id":"probe_item","event_type":"view"} xyz'
        r = self.server.post(API + "/events", raw=body)
        self.assertError(r, 400, "invalid_json")
        self.assertUnchanged(before)

    def test_top_level_not_an_object(self):
        for body in ([self.good()], "view", 42):
            before = self.snapshot()
            r = self.server.post(API + "/events", body)
            self.assertEqual(r.status, 400, r.describe())
            self.assertIn(r.json["error"]["code"], ("invalid_event", "invalid_json"),
                          r.describe())
            self.assertUnchanged(before)

    # ------------------------------------------------------------- wrong types
    def test_user_id_number(self):
        self.reject_event(self.good(user_id=12345), "user_id", absent=["12345"])

    def test_item_id_number(self):
        self.reject_event(self.good(item_id=7), "item_id")

    def test_value_string(self):
        self.reject_event(self.good(value="12.5"), "value")

    def test_timestamp_bool(self):
        self.reject_event(self.good(timestamp=True), "timestamp")

    def test_timestamp_garbage_string(self):
        self.reject_event(self.good(timestamp="yesterday"), "timestamp")

    def test_timestamp_far_future(self):
        self.reject_event(self.good(timestamp=now_s() + 25 * 3600), "timestamp")
        self.reject_event(self.good(timestamp=rfc3339(now_s() + 48 * 3600)), "timestamp")

    def test_event_type_not_string(self):
        self.reject_event(self.good(event_type=["view"]), "event_type")

    def test_session_id_number(self):
        self.reject_event(self.good(session_id=5), "session_id")

    def test_unknown_event_type(self):
        err = self.reject_event(self.good(event_type="clik"), "event_type")
        self.assertIn("clik", err["message"])

    def test_missing_required_fields(self):
        for f in ("user_id", "item_id", "event_type"):
            e = self.good()
            del e[f]
            self.reject_event(e, f)

    def test_null_user_id(self):
        self.reject_event(self.good(user_id=None), "user_id")

    # ------------------------------------------------------------- ids
    def test_empty_user_id(self):
        self.reject_event(self.good(user_id=""), "user_id")

    def test_empty_item_id(self):
        self.reject_event(self.good(item_id=""), "item_id")

    def test_257_byte_id(self):
        self.reject_event(self.good(user_id="u" * 257), "user_id", absent=["u" * 257])
        self.reject_event(self.good(item_id="i" * 257), "item_id")
        # byte length, not characters: 129 x 'e-acute' is 258 bytes
        self.reject_event(self.good(user_id="\u00e9" * 129), "user_id")

    def test_control_char_in_id(self):
        for bad in ("probe\u0001user", "probe\nuser", "probe\u007fuser", "\u001f"):
            self.reject_event(self.good(user_id=bad), "user_id")
        self.reject_event(self.good(item_id="x\ty"), "item_id")

    def test_nul_in_id(self):
        """'\\u0000' is valid JSON; the id then holds a control character."""
        self.reject_event(self.good(user_id="\u0000"), "user_id")
        self.reject_event(self.good(item_id="a\u0000b"), "item_id")

    def test_unknown_field(self):
        err = self.reject_event(self.good(colour="blue"), "colour")
        self.assertIn("colour", err["message"])

    # ------------------------------------------------------------- sizes
    def test_oversize_body(self):
        before = self.snapshot()
        head = '{"user_id":"probe_user","item_id":"probe_item","event_type":"view"'
        body = head + " " * (70000 - len(head) - 1) + "}"
        self.assertEqual(len(body), 70000)
        r = self.server.post(API + "/events", raw=body)
        self.assertError(r, 413, "body_too_large")
        self.assertUnchanged(before)

    def test_oversize_body_chunked(self):
        """No Content-Length: the limit still applies to the bytes received."""
        before = self.snapshot()
        head = '{"user_id":"probe_user","item_id":"probe_item","event_type":"view"'
        body = head + " " * (70000 - len(head) - 1) + "}"
        r = self.server.post(API + "/events", raw=body, chunked=True)
        self.assertError(r, 413, "body_too_large")
        self.assertUnchanged(before)

    def test_date_and_length_headers(self):
        """Every answer, error or not, names its body's length and the time."""
        for method, path, body in (("GET", API + "/health", None), ("GET", API + "/recommendations/hd_u?n=3", None),
                                   ("POST", API + "/events", {"user_id": "x"}), ("GET", "/metrics", None),
                                   ("HEAD", API + "/health", None)):
            t0 = time.time()
            r = self.server.request(method, path, body=body)
            t1 = time.time()
            if method != "HEAD":
                self.assertEqual(int(r.headers["content-length"]), len(r.data), r.describe())
            else:
                self.assertGreater(int(r.headers["content-length"]), 0, r.headers)
            when = email.utils.parsedate_to_datetime(r.headers["date"]).timestamp()
            self.assertTrue(int(t0) <= when <= t1, (r.headers["date"], t0, t1))
            self.assertTrue(r.headers["date"].endswith(" GMT"), r.headers["date"])
            self.assertEqual(r.headers["date"],
                             email.utils.formatdate(when, usegmt=True), r.headers["date"])

    def test_keep_alive_survives_errors(self):
        before = self.snapshot()
        conn = self.server.connection()
        try:
            for body, status in ((b'{"user_id":"probe_user","item_id":"probe_item",'
                                  b'"event_type":"oops"}', 400), (b'{bad', 400)):
                conn.request("POST", API + "/events", body=body,
                             headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
                self.assertEqual(r.status, status, data)
            conn.request("GET", API + "/health")
            r = conn.getresponse()
            self.assertEqual(r.status, 200, "connection unusable after an error")
            r.read()
        finally:
            conn.close()
        self.assertUnchanged(before)

    def test_batch_over_max_batch(self):
        before = self.snapshot()
        evs = [ev(PROBE, "probe_item", "view") for _ in range(MAX_BATCH + 1)]
        r = self.server.post(API + "/events", {"events": evs})
        self.assertError(r, 413, "batch_too_large")
        self.assertUnchanged(before)

    def test_items_batch_over_max_batch(self):
        # plain items: the fast reader must keep the limit as jansson's path does
        before = self.snapshot()
        items = [{"item_id": "over_%d" % i, "categories": ["c1"], "properties": {"price": 1.5}}
                 for i in range(MAX_BATCH + 1)]
        r = self.server.post(API + "/items", {"items": items})
        self.assertError(r, 413, "batch_too_large")
        self.assertUnchanged(before)
        r = self.server.post(API + "/items", {"items": []})
        self.assertError(r, 400, "invalid_item")
        self.assertUnchanged(before)

    def test_bad_event_at_index_3_rejects_whole_batch(self):
        before = self.snapshot()
        evs = [ev(PROBE, "probe_item", "view"),
               ev("batch_new_user", "probe_item", "click"),
               ev(PROBE, "batch_new_item", "like"),
               ev(PROBE, "probe_item", "clik"),
               ev(PROBE, "probe_item", "purchase")]
        r = self.server.post(API + "/events", {"events": evs})
        err = self.assertError(r, 400, "invalid_event", field="event_type", index=3)
        self.assertTrue(re.search(r"\b3\b", err["message"]),
                        "message should name index 3: %s" % r.describe())
        self.assertUnchanged(before, also_absent=["batch_new_user"])
        r = self.server.get(API + "/items/batch_new_item/features")
        self.assertEqual(r.status, 404, "item from a rejected batch exists: %s" % r.describe())

    def test_empty_batch(self):
        before = self.snapshot()
        r = self.server.post(API + "/events", {"events": []})
        self.assertEqual(r.status, 400, r.describe())
        self.assertIsInstance((r.json or {}).get("error", {}).get("code"), str, r.describe())
        r = self.server.post(API + "/events", {"events": "nope"})
        self.assertEqual(r.status, 400, r.describe())
        self.assertUnchanged(before)

    def test_batch_item_not_object(self):
        before = self.snapshot()
        r = self.server.post(API + "/events", {"events": [self.good(), "x"]})
        self.assertError(r, 400, "invalid_event", index=1)
        self.assertUnchanged(before)

    # ------------------------------------------------------------- query params
    def test_bad_query_params(self):
        before = self.snapshot()
        for n in ("0", "abc", "1000", "101", "-1", "1.5"):
            for path in (API + "/recommendations/%s?n=%s" % (PROBE, n),
                         API + "/popular?n=%s" % n,
                         API + "/items/probe_item/similar?n=%s" % n):
                r = self.server.get(path)
                self.assertError(r, 400, "invalid_parameter", field="n")
        for w in ("xyz", "-1d", "d", "7x"):
            r = self.server.get(API + "/popular?window=%s" % w)
            self.assertError(r, 400, "invalid_parameter", field="window")
        r = self.server.post(API + "/recommendations", {"items": ["probe_item"], "n": 0})
        self.assertEqual(r.status, 400, r.describe())
        self.assertEqual(r.json["error"].get("field"), "n", r.describe())
        self.assertUnchanged(before)

    def test_good_query_param_bounds(self):
        for n in (1, 100):
            r = self.server.get(API + "/recommendations/%s?n=%d" % (PROBE, n))
            self.ok(r)
            self.assertLessEqual(len(r.json["items"]), n)
        self.ok(self.server.get(API + "/popular?n=5&window=7d"))
        self.ok(self.server.get(API + "/popular?n=5&window=1d"))

    # ------------------------------------------------------------- HTTP level
    def test_wrong_content_type(self):
        before = self.snapshot()
        r = self.server.post(API + "/events", self.good(), content_type="text/plain")
        self.assertError(r, 415, "unsupported_media_type")
        r = self.server.put(API + "/items/probe_item", {"categories": ["zzz"]},
                            content_type="application/x-www-form-urlencoded")
        self.assertError(r, 415, "unsupported_media_type")
        self.assertUnchanged(before)

    def test_json_content_type_variants_accepted(self):
        r = self.server.post(API + "/events", self.good(user_id="ct_user_1"),
                             content_type="application/json; charset=utf-8")
        self.assertEqual(self.ok(r), {"accepted": 1})
        r = self.server.post(API + "/events", self.good(user_id="ct_user_2"), content_type=None)
        self.assertEqual(self.ok(r), {"accepted": 1}, "no Content-Type must be accepted")

    def test_unknown_route(self):
        for path in (API + "/nope", "/nope", API + "/users/x/nope", API + "/eventsX"):
            r = self.server.get(path)
            self.assertError(r, 404, "not_found")
            self.assertIn("application/json", r.headers.get("content-type", ""), r.describe())

    def test_wrong_method(self):
        before = self.snapshot()
        for method, path in (("DELETE", API + "/events"), ("GET", API + "/events"),
                             ("PUT", API + "/events"), ("POST", API + "/health"),
                             ("DELETE", API + "/popular"),
                             ("POST", API + "/users/%s/features" % PROBE)):
            r = self.server.request(method, path, raw=b"{}" if method != "GET" else None)
            self.assertError(r, 405, "method_not_allowed")
        self.assertUnchanged(before)

    def test_unknown_lookups_are_404(self):
        for path in (API + "/users/nobody_here/features", API + "/items/no_such_item",
                     API + "/items/no_such_item/similar", API + "/items/no_such_item/features"):
            self.assertError(self.server.get(path), 404, "not_found")
        before = self.snapshot()
        self.assertError(self.server.delete(API + "/items/no_such_item"), 404, "not_found")
        self.assertUnchanged(before)

    # ------------------------------------------------------------- items
    def test_bad_items(self):
        before = self.snapshot()
        for body, field in (({"categories": "c1"}, "categories"),
                            ({"categories": [1, 2]}, "categories"),
                            ({"tags": "t"}, "tags"),
                            ({"available": "yes"}, "available"),
                            ({"created_at": "not a time"}, "created_at"),
                            ({"properties": [1]}, "properties")):
            r = self.server.put(API + "/items/probe_item", body)
            self.assertError(r, 400, "invalid_item", field=field)
        r = self.server.put(API + "/items/%s" % ("i" * 257), {"categories": ["c1"]})
        self.assertEqual(r.status, 400, r.describe())
        r = self.server.post(API + "/items", {"items": [
            {"item_id": "bad_batch_ok", "categories": ["c1"]},
            {"item_id": "bad_batch_bad", "available": 3}]})
        self.assertError(r, 400, "invalid_item", field="available", index=1)
        r = self.server.post(API + "/items", {"items": [{"categories": ["c1"]}]})
        self.assertError(r, 400, "invalid_item", field="item_id", index=0)
        r = self.server.put(API + "/items/probe_item", raw="{oops")
        self.assertError(r, 400, "invalid_json")
        self.assertUnchanged(before)
        self.assertError(self.server.get(API + "/items/bad_batch_ok"), 404, "not_found")

    # ------------------------------------------------------------- accepted edges
    def test_zz_boundaries_accepted(self):
        """The edges just inside the limits are accepted (runs last: changes state)."""
        f0 = self.features(PROBE)
        h0 = self.health()
        r = self.server.post(API + "/events", self.good(user_id="u" * 256))
        self.assertEqual(self.ok(r), {"accepted": 1})
        self.features("u" * 256)
        r = self.server.post(API + "/events", self.good(user_id="\u00e9" * 128))
        self.assertEqual(self.ok(r), {"accepted": 1})
        self.features("\u00e9" * 128)
        evs = [self.good(value=float(i)) for i in range(MAX_BATCH)]
        r = self.server.post(API + "/events", {"events": evs})
        self.assertEqual(self.ok(r), {"accepted": MAX_BATCH})
        head = '{"user_id":"probe_user","item_id":"probe_item","event_type":"click"'
        body = head + " " * (60000 - len(head) - 1) + "}"
        r = self.server.post(API + "/events", raw=body)
        self.assertEqual(self.ok(r), {"accepted": 1})
        r = self.server.post(API + "/events", self.good(timestamp=now_s() + 3600))
        self.assertEqual(self.ok(r), {"accepted": 1}, "1 h in the future is allowed")
        f1 = self.features(PROBE)
        self.assertEqual(f1["total"], f0["total"] + MAX_BATCH + 2)
        self.assertEqual(count(f1["counts"], "view"), count(f0["counts"], "view") + MAX_BATCH + 1)
        self.assertEqual(count(f1["counts"], "click"), count(f0["counts"], "click") + 1)
        h1 = self.health()
        self.assertEqual(h1["events"], h0["events"] + MAX_BATCH + 4)
        self.assertEqual(h1["users"], h0["users"] + 2)
