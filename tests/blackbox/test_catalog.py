"""Catalog: upsert, get, unavailable and deleted items never recommended,
content-similar items for a brand-new item."""

import time

from harness import API, RecdTestCase, ev, item_ids, now_s, parse_ts, q, qs


def all_rec_surfaces(tc, user, anchor, n=20):
    """Item ids from every endpoint that recommends: user recs, anonymous recs
    from `anchor`, similar-to-anchor, popular (all and 1d window)."""
    out = {}
    out["user"] = item_ids(tc.recs(user, n=n))
    out["anonymous"] = item_ids(tc.ok(tc.server.post(API + "/recommendations",
                                                     {"items": [anchor], "n": n})))
    out["similar"] = item_ids(tc.ok(tc.server.get(API + "/items/%s/similar?n=%d"
                                                  % (q(anchor), n))))
    out["popular"] = item_ids(tc.ok(tc.server.get(API + "/popular?n=%d" % n)))
    out["popular_1d"] = item_ids(tc.ok(tc.server.get(API + "/popular?n=%d&window=1d" % n)))
    return out


class CatalogTest(RecdTestCase):

    def make_world(self, prefix, nitems=12, cats=("x", "y", "z", "w")):
        """A small catalog `prefix_1..N`; background users view prefix_1 then
        prefix_2 (so prefix_2 is the obvious pick after prefix_1) and make
        prefix_2 popular."""
        items = [{"item_id": "%s_%d" % (prefix, i),
                  "categories": ["%s_%s" % (prefix, cats[i % len(cats)])],
                  "available": True} for i in range(1, nitems + 1)]
        r = self.server.post(API + "/items", {"items": items})
        self.assertEqual(self.ok(r), {"upserted": nitems})
        # window=1d is the engine clock's UTC day (docs/api.md): in the first
        # half hour of a day, "30 minutes ago" is yesterday, so the events
        # start no earlier than today (some may then be a few minutes ahead,
        # which the engine accepts)
        now = now_s()
        today = now - now % 86400
        t = max(today + 1, now - 1800)
        evs = []
        for k in range(10):
            u = "%s_bg_%d" % (prefix, k)
            evs += [ev(u, "%s_1" % prefix, "view", t + k * 60),
                    ev(u, "%s_2" % prefix, "view", t + k * 60 + 10),
                    ev(u, "%s_2" % prefix, "click", t + k * 60 + 20)]
        self.post_events(evs)
        user = "%s_user" % prefix
        self.post_events([ev(user, "%s_1" % prefix, "view", max(today + 1, now - 60))])
        return user, "%s_1" % prefix, "%s_2" % prefix

    def test_upsert_and_get(self):
        body = {"categories": ["shoes", "running"], "tags": ["red", "sale"], "available": True,
                "created_at": "2024-01-02T03:04:05Z",
                "properties": {"price": 59.9, "brand": "Acme", "sizes": [41, 42]}}
        r = self.server.put(API + "/items/cat_shoe_1", body)
        it = self.ok(r)
        for got in (it, self.ok(self.server.get(API + "/items/cat_shoe_1"))):
            self.assertEqual(got["item_id"], "cat_shoe_1", got)
            self.assertEqual(got["categories"], ["shoes", "running"], got)
            self.assertEqual(got["tags"], ["red", "sale"], got)
            self.assertIs(got["available"], True, got)
            self.assertEqual(parse_ts(got["created_at"]), parse_ts("2024-01-02T03:04:05Z"), got)
            self.assertEqual(got["properties"], body["properties"], got)
        # update replaces fields
        r = self.server.put(API + "/items/cat_shoe_1", {"categories": ["boots"], "tags": [],
                                                         "available": False,
                                                         "created_at": 1700000000})
        self.ok(r)
        got = self.ok(self.server.get(API + "/items/cat_shoe_1"))
        self.assertEqual(got["categories"], ["boots"], got)
        self.assertEqual(got["tags"], [], got)
        self.assertIs(got["available"], False, got)
        self.assertEqual(parse_ts(got["created_at"]), 1700000000.0, got)
        # ids with odd characters round-trip through the path
        odd = "cat odd/id?\u00e9"
        r = self.server.put(API + "/items/" + q(odd), {"categories": ["c"]})
        self.assertEqual(self.ok(r)["item_id"], odd)
        self.assertEqual(self.ok(self.server.get(API + "/items/" + q(odd)))["item_id"], odd)

    def test_new_item_defaults(self):
        before = now_s()
        it = self.ok(self.server.put(API + "/items/cat_plain", {}))
        self.assertEqual(it["item_id"], "cat_plain")
        self.assertIs(it["available"], True, "available defaults to true: %s" % it)
        self.assertEqual(it["categories"], [], it)
        self.assertEqual(it["tags"], [], it)
        self.assertGreaterEqual(parse_ts(it["created_at"]), before - 5,
                                "created_at defaults to now: %s" % it)

    def test_batch_upsert(self):
        items = [{"item_id": "cat_b_%d" % i, "categories": ["bulk"], "tags": ["t%d" % i]}
                 for i in range(25)]
        r = self.server.post(API + "/items", {"items": items})
        self.assertEqual(self.ok(r), {"upserted": 25})
        for i in (0, 13, 24):
            got = self.ok(self.server.get(API + "/items/cat_b_%d" % i))
            self.assertEqual(got["tags"], ["t%d" % i])
            self.assertEqual(got["categories"], ["bulk"])
        h = self.health()
        self.assertGreaterEqual(h["items"], 25)

    def test_unavailable_item_never_recommended(self):
        user, anchor, target = self.make_world("cu")
        # precondition: the target is recommended everywhere
        surf = all_rec_surfaces(self, user, anchor)
        for name, ids in surf.items():
            self.assertIn(target, ids, "precondition: %s should be in %s: %s"
                          % (target, name, ids))
        r = self.server.put(API + "/items/" + target, {"categories": ["cu_z"],
                                                       "available": False})
        self.assertIs(self.ok(r)["available"], False)
        self.assertIs(self.ok(self.server.get(API + "/items/" + target))["available"], False)
        for _ in range(2):
            surf = all_rec_surfaces(self, user, anchor)
            for name, ids in surf.items():
                self.assertNotIn(target, ids, "unavailable item in %s: %s" % (name, ids))
                self.assertTrue(ids, "%s returned nothing" % name)
        # new activity on it does not bring it back
        self.post_events([ev("cu_late_%d" % k, target, "purchase") for k in range(5)])
        surf = all_rec_surfaces(self, user, anchor)
        for name, ids in surf.items():
            self.assertNotIn(target, ids, "unavailable item in %s after events: %s"
                             % (name, ids))
        # cold start too
        self.assertNotIn(target, item_ids(self.recs("cu_cold_user", n=20)))
        # available again -> may be recommended again
        self.ok(self.server.put(API + "/items/" + target, {"categories": ["cu_z"],
                                                           "available": True}))
        self.assertIn(target, item_ids(self.ok(self.server.get(
            API + "/items/%s/similar?n=20" % anchor))))

    def test_deleted_item_never_recommended(self):
        user, anchor, target = self.make_world("cd")
        surf = all_rec_surfaces(self, user, anchor)
        for name, ids in surf.items():
            self.assertIn(target, ids, "precondition: %s should be in %s: %s"
                          % (target, name, ids))
        r = self.server.delete(API + "/items/" + target)
        self.assertIs(self.ok(r).get("deleted"), True, r.describe())
        self.assertError(self.server.get(API + "/items/" + target), 404, "not_found")
        self.assertError(self.server.delete(API + "/items/" + target), 404, "not_found")
        for _ in range(2):
            surf = all_rec_surfaces(self, user, anchor)
            for name, ids in surf.items():
                self.assertNotIn(target, ids, "deleted item in %s: %s" % (name, ids))
                self.assertTrue(ids, "%s returned nothing" % name)
        self.assertNotIn(target, item_ids(self.recs("cd_cold_user", n=20)))
        self.assertNotIn(target, item_ids(self.ok(self.server.get(
            API + "/popular?" + qs(n=20, category="cd_z")))))

    def test_exclusions_survive_restart_and_crash(self):
        """What the rule check reads of an item (recommendable, first category)
        is rebuilt at every start, from the snapshot and the catalog: an
        unavailable and a deleted item stay out of every list after a clean
        restart and after kill -9, and one made available again comes back."""
        user_u, anchor_u, target_u = self.make_world("cr")
        user_d, anchor_d, target_d = self.make_world("cq")
        self.ok(self.server.put(API + "/items/" + target_u, {"categories": ["cr_z"],
                                                             "available": False}))
        self.ok(self.server.delete(API + "/items/" + target_d))
        for how in ("restart", "kill"):
            if how == "restart":
                self.server.restart()
            else:
                self.server.kill()
                self.server.start()
            for user, anchor, target in ((user_u, anchor_u, target_u), (user_d, anchor_d, target_d)):
                for name, ids in all_rec_surfaces(self, user, anchor).items():
                    self.assertNotIn(target, ids, "after %s: %s in %s: %s" % (how, target, name, ids))
                    self.assertTrue(ids, "after %s: %s returned nothing" % (how, name))
        self.ok(self.server.put(API + "/items/" + target_u, {"categories": ["cr_z"],
                                                             "available": True}))
        self.server.restart()
        self.assertIn(target_u, item_ids(self.ok(self.server.get(
            API + "/items/%s/similar?n=20" % anchor_u))))

    def test_new_item_has_content_similar_items(self):
        items = [{"item_id": "cn_%d" % i, "categories": [c], "tags": [t]}
                 for i, (c, t) in enumerate([("garden", "green"), ("garden", "tool"),
                                             ("garden", "green"), ("kitchen", "tool"),
                                             ("kitchen", "steel"), ("bath", "white")])]
        self.ok(self.server.post(API + "/items", {"items": items}))
        # some activity so that other items are "better" on popularity alone
        self.post_events([ev("cn_bg_%d" % k, "cn_4", "view") for k in range(5)] +
                         [ev("cn_bg_%d" % k, "cn_5", "view") for k in range(5)])
        it = self.ok(self.server.put(API + "/items/cn_new", {"categories": ["garden"],
                                                             "tags": ["green"]}))
        self.assertEqual(it["categories"], ["garden"])
        sim = self.ok(self.server.get(API + "/items/cn_new/similar?n=10"))
        ids = item_ids(sim)
        self.assertTrue(ids, "a new item should have content-similar items at once: %s" % sim)
        self.assertNotIn("cn_new", ids)
        garden = {"cn_0", "cn_1", "cn_2"}
        self.assertIn(ids[0], garden, "top similar item should share a category: %s" % sim)
        self.assertTrue(garden <= set(ids), "all same-category items expected: %s" % sim)
        self.assertTrue(set(ids[:3]) <= garden,
                        "same-category items should rank before others: %s" % sim)
        # and the new item is similar to them
        sim = self.ok(self.server.get(API + "/items/cn_0/similar?n=10"))
        self.assertIn("cn_new", item_ids(sim), sim)

    def test_events_create_unknown_items(self):
        self.post_events([ev("cat_ev_user", "cat_never_cataloged", "view")])
        f = self.ok(self.server.get(API + "/items/cat_never_cataloged/features"))
        self.assertEqual(f["counts"].get("view"), 1, f)


class LargeCatalogTrendingTest(RecdTestCase):
    """Above 2,000 items trending is rebuilt by its own thread, at most once per
    trending_refresh, and still follows writes; with trending_refresh 0 every
    write shows at once."""
    class_server = False

    def load(self, server, n=2500):
        items = [{"item_id": "lc_%d" % i, "categories": ["lc_c%d" % (i % 7)]} for i in range(n)]
        self.assertEqual(self.ok(server.post(API + "/items", {"items": items})), {"upserted": n})
        # some history so trending exists, then read it once (the first read builds it)
        self.ok(server.post(API + "/events", {"events": [ev("lc_u%d" % i, "lc_%d" % (i % 50), "view")
                                                         for i in range(200)]}))
        self.assertTrue(item_ids(self.ok(server.get(API + "/popular?n=5"))))

    def burst(self, server, item):
        self.ok(server.post(API + "/events", {"events": [ev("lc_b%d" % i, item, "purchase")
                                                         for i in range(40)]}))

    def wait_top(self, server, item, why):
        """Poll /popular until `item` leads it (20 s at most)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < 20:
            top = item_ids(self.ok(server.get(API + "/popular?n=3")))
            if top and top[0] == item:
                return
            time.sleep(0.05)
        self.fail("%s: %s" % (why, top))

    def test_thread_rebuilds_within_refresh(self):
        server = self.new_server(["--trending-refresh", "300ms"])
        self.load(server)
        self.burst(server, "lc_2400")
        self.wait_top(server, "lc_2400", "trending never showed the burst")
        # and it keeps following: a second burst on another item
        self.burst(server, "lc_2401")
        self.burst(server, "lc_2401")
        self.wait_top(server, "lc_2401", "trending stopped following writes")

    def test_refresh_zero_is_read_your_writes(self):
        server = self.new_server(["--trending-refresh", "0"])
        self.load(server)
        self.burst(server, "lc_2300")
        self.assertEqual(item_ids(self.ok(server.get(API + "/popular?n=3")))[0], "lc_2300")
