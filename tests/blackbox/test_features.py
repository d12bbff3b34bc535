"""Live features after a known sequence of events."""

import math

from harness import API, RecdTestCase, count, ev, id_of, now_s, parse_ts, q, rfc3339

T0 = None


def is_num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


class FeaturesTest(RecdTestCase):

    @classmethod
    def prepare(cls):
        s = cls.server
        items = [{"item_id": "fa", "categories": ["alpha"]},
                 {"item_id": "fb", "categories": ["beta"]},
                 {"item_id": "fc", "categories": ["alpha"]},
                 {"item_id": "fz", "categories": ["gamma"]}]
        r = s.post(API + "/items", {"items": items})
        assert r.status == 200, r.describe()
        t0 = now_s() - 3600
        cls.t0 = t0
        # (item, type, offset seconds, extra)
        cls.seq = [("fa", "view", 0, {}),
                   ("fa", "click", 10, {"session_id": "s1"}),
                   ("fb", "view", 20, {"session_id": "s1"}),
                   ("fa", "add_to_cart", 30, {}),
                   ("fa", "purchase", 40, {"value": 19.99}),
                   ("fc", "view", 50, {}),
                   ("fb", "like", 60, {})]
        evs = []
        for k, (iid, et, off, extra) in enumerate(cls.seq):
            ts = t0 + off if k % 2 == 0 else rfc3339(t0 + off)
            evs.append(ev("feat_user", iid, et, ts, **extra))
        # one event per request for the first half, a batch for the rest
        for e in evs[:3]:
            r = s.post(API + "/events", e)
            assert r.status == 200, r.describe()
        r = s.post(API + "/events", {"events": evs[3:]})
        assert r.status == 200, r.describe()
        # another user on fa/fz for item-level numbers
        r = s.post(API + "/events", {"events": [ev("feat_other", "fa", "view", t0 + 100),
                                                ev("feat_other", "fz", "view", t0 + 110)]})
        assert r.status == 200, r.describe()

    def test_user_counts_and_totals(self):
        f = self.features("feat_user")
        c = f["counts"]
        self.assertIsInstance(c, dict, f)
        self.assertEqual(count(c, "view"), 3, f)
        self.assertEqual(count(c, "click"), 1, f)
        self.assertEqual(count(c, "add_to_cart"), 1, f)
        self.assertEqual(count(c, "purchase"), 1, f)
        self.assertEqual(count(c, "like"), 1, f)
        self.assertEqual(f["total"], 7, f)
        self.assertEqual(f["unique_items"], 3, f)

    def test_user_times(self):
        f = self.features("feat_user")
        self.assertAlmostEqual(parse_ts(f["first_seen"]), self.t0, delta=1, msg=f)
        self.assertAlmostEqual(parse_ts(f["last_seen"]), self.t0 + 60, delta=1, msg=f)
        for k in ("recency", "engagement_rate", "engagement_score"):
            self.assertTrue(is_num(f[k]), "%s should be a number: %s" % (k, f))
        self.assertGreater(f["engagement_score"], 0, f)
        self.assertIn("session", f)

    def test_recent_items_newest_first(self):
        f = self.features("feat_user")
        ri = f["recent_items"]
        self.assertIsInstance(ri, list, f)
        self.assertTrue(ri, f)
        expect = [(iid, et) for iid, et, _, _ in reversed(self.seq)]
        got = [(x["item_id"], x["event_type"]) for x in ri]
        self.assertEqual(got, expect[:len(got)], "recent_items newest first: %s" % ri)
        self.assertGreaterEqual(len(got), min(5, len(expect)), ri)
        ts = [parse_ts(x["timestamp"]) for x in ri]
        self.assertEqual(ts, sorted(ts, reverse=True), ri)
        self.assertAlmostEqual(ts[0], self.t0 + 60, delta=1)

    def test_purchased_and_affinity(self):
        f = self.features("feat_user")
        self.assertEqual([id_of(x) for x in f["purchased"]], ["fa"], f)
        aff = f["category_affinity"]
        self.assertIsInstance(aff, dict, f)
        self.assertIn("alpha", aff, f)
        self.assertIn("beta", aff, f)
        self.assertNotIn("gamma", aff, f)
        self.assertTrue(is_num(aff["alpha"]) and is_num(aff["beta"]), f)
        self.assertGreater(aff["beta"], 0, f)
        self.assertGreater(aff["alpha"], aff["beta"], "alpha had far more activity: %s" % aff)

    def test_user_vector(self):
        f = self.features("feat_user")
        v = f["vector"]
        self.assertIsInstance(v["names"], list, v)
        self.assertIsInstance(v["values"], list, v)
        self.assertTrue(v["names"], v)
        self.assertEqual(len(v["names"]), len(v["values"]), v)
        self.assertEqual(len(set(v["names"])), len(v["names"]), "duplicate names: %s" % v)
        for n, x in zip(v["names"], v["values"]):
            self.assertIsInstance(n, str, v)
            self.assertTrue(is_num(x), "%s=%r not a finite number" % (n, x))

    def test_item_features(self):
        f = self.ok(self.server.get(API + "/items/fa/features"))
        c = f["counts"]
        self.assertEqual(count(c, "view"), 2, f)
        self.assertEqual(count(c, "click"), 1, f)
        self.assertEqual(count(c, "add_to_cart"), 1, f)
        self.assertEqual(count(c, "purchase"), 1, f)
        for k in ("popularity", "ctr", "conversion", "age_days"):
            self.assertTrue(is_num(f[k]), "%s should be a number: %s" % (k, f))
        self.assertGreater(f["popularity"], 0, f)
        self.assertGreater(f["ctr"], 0, f)
        self.assertGreater(f["conversion"], 0, f)
        self.assertAlmostEqual(parse_ts(f["first_event"]), self.t0, delta=1, msg=f)
        self.assertAlmostEqual(parse_ts(f["last_event"]), self.t0 + 100, delta=1, msg=f)
        v = f["vector"]
        self.assertTrue(v["names"], v)
        self.assertEqual(len(v["names"]), len(v["values"]), v)
        for x in v["values"]:
            self.assertTrue(is_num(x), v)
        # popularity orders items by activity
        fz = self.ok(self.server.get(API + "/items/fz/features"))
        self.assertGreater(f["popularity"], fz["popularity"], (f, fz))
        self.assertEqual(count(fz["counts"], "view"), 1, fz)
        self.assertGreater(f["ctr"], fz["ctr"], "fa was clicked, fz not: %s" % ((f, fz),))

    def test_catalog_only_item(self):
        """An item with no events yet (just PUT) has features with zero counts."""
        self.ok(self.server.put(API + "/items/f_quiet", {"categories": ["alpha"]}))
        r = self.server.get(API + "/items/f_quiet/features")
        f = self.ok(r)
        self.assertEqual(sum(v for v in f["counts"].values()), 0, f)

    def test_features_update_immediately(self):
        """Read-your-writes: a 200 means the next read reflects the event."""
        for k in range(1, 6):
            self.ok(self.server.post(API + "/events", ev("feat_ryw", "f_ryw_%d" % k, "click")))
            f = self.features("feat_ryw")
            self.assertEqual(count(f["counts"], "click"), k, f)
            self.assertEqual(f["total"], k, f)
            self.assertEqual(f["unique_items"], k, f)
            self.assertEqual(f["recent_items"][0]["item_id"], "f_ryw_%d" % k, f)

    def test_unknown_user_404(self):
        r = self.server.get(API + "/users/%s/features" % q("nobody_at_all"))
        self.assertError(r, 404, "not_found")
