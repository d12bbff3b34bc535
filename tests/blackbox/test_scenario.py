"""The end-to-end scenario: a catalog, background co-visitation history, three
users with different histories, a cold-start user, and a restart."""

import random
import uuid

from harness import API, RecdTestCase, count, ev, id_of, item_ids, now_s, q, qs, rfc3339

CATS = ["electronics", "books", "home", "sports", "toys"]
NITEMS = 30


def item(i):
    return "item_%d" % i


def cat_of(iid):
    i = int(iid.split("_")[1])
    return CATS[(i - 1) % len(CATS)]


# the co-visitation planted in the background history, and who should see it
A, B, C = "user_a", "user_b", "user_c"
ANCHOR = {A: ("item_1", "item_4"), B: ("item_5", "item_6"), C: ("item_7", "item_9")}
HISTORY = {
    A: [("item_1", "click"), ("item_2", "click"), ("item_3", "view")],
    B: [("item_5", "click"), ("item_10", "click"), ("item_15", "like")],
    C: [("item_7", "view"), ("item_7", "click"), ("item_7", "purchase"), ("item_8", "purchase")],
}
HEAVY = {"item_1", "item_4", "item_5", "item_6", "item_7", "item_9"}


def catalog(now):
    items = []
    for i in range(1, NITEMS + 1):
        items.append({
            "item_id": item(i),
            "categories": [cat_of(item(i))],
            "tags": ["tag%d" % (i % 3)],
            "available": True,
            "created_at": now - 30 * 86400,
            "properties": {"price": i * 1.5, "title": "Item %d" % i},
        })
    return items


def background(now):
    """Other users' history: viewed item_1 -> also item_4, viewed item_5 ->
    also item_6, bought item_7 -> also bought item_9; plus light noise."""
    evs = []
    base = now - 2 * 3600
    for k in range(8):
        t = base + k * 120
        u = "bg_a_%d" % k
        evs += [ev(u, "item_1", "view", t), ev(u, "item_4", "view", t + 20)]
        u = "bg_b_%d" % k
        evs += [ev(u, "item_5", "view", t + 1), ev(u, "item_6", "view", t + 21)]
        u = "bg_c_%d" % k
        evs += [ev(u, "item_7", "view", t + 2), ev(u, "item_7", "purchase", t + 12),
                ev(u, "item_9", "view", t + 22), ev(u, "item_9", "purchase", t + 32)]
    rnd = random.Random(42)
    for k in range(12):
        u = "bg_noise_%d" % k
        picks = rnd.sample(range(16, NITEMS + 1), 3)
        for j, i in enumerate(picks):
            evs.append(ev(u, item(i), "view", base + 2000 + k * 60 + j * 15))
    return evs


def user_events(now):
    evs = []
    t = now - 600
    for u, hist in sorted(HISTORY.items()):
        for j, (iid, et) in enumerate(hist):
            # mix timestamp forms: unix seconds and RFC 3339
            ts = t + j * 30
            evs.append(ev(u, iid, et, ts if j % 2 == 0 else rfc3339(ts)))
        t += 5
    return evs


class ScenarioTest(RecdTestCase):

    @classmethod
    def prepare(cls):
        s = cls.server
        now = now_s()
        cls.now = now
        r = s.post(API + "/items", {"items": catalog(now)})
        assert r.status == 200 and r.json.get("upserted") == NITEMS, r.describe()
        bg = background(now)
        cls.n_background = len(bg)
        r = s.post(API + "/events", {"events": bg})
        assert r.status == 200 and r.json.get("accepted") == len(bg), r.describe()
        ue = user_events(now)
        cls.n_user_events = len(ue)
        r = s.post(API + "/events", {"events": ue})
        assert r.status == 200 and r.json.get("accepted") == len(ue), r.describe()

    # ------------------------------------------------------------- checks
    def check_lists(self, when=""):
        lists = {}
        for u in (A, B, C):
            rec = self.recs(u, n=10)
            msg = "[%s] recommendations for %s: %s" % (when, u, rec)
            ids = self.check_rec_shape(rec, n=10, user_id=u, msg=msg)
            lists[u] = (ids, rec)
            for iid in ids:
                self.assertTrue(iid.startswith("item_"), "not a catalog item: %s" % msg)
            # the item co-visited with this user's history is in the top 5
            anchor, target = ANCHOR[u]
            self.assertIn(target, ids[:5], "%s should be in the top 5 (co-visited with %s): %s"
                          % (target, anchor, msg))
            # ... and its reasons mention the anchoring item
            entry = rec["items"][ids.index(target)]
            self.assertTrue(any(anchor in r for r in entry["reasons"]),
                            "a reason for %s should mention %s: %s" % (target, anchor, entry))
            # default rules: nothing the user already interacted with
            seen = {iid for iid, _ in HISTORY[u]}
            self.assertFalse(seen & set(ids), "already-seen items recommended: %s" % msg)
            # diversity: at most ~30% of the list from one category
            per = {}
            for iid in ids:
                per[cat_of(iid)] = per.get(cat_of(iid), 0) + 1
            self.assertLessEqual(max(per.values()), 3,
                                 "more than 30%% from one category %s: %s" % (per, msg))
        # purchased items never in C's list
        self.assertNotIn("item_7", lists[C][0])
        self.assertNotIn("item_8", lists[C][0])
        # three different lists
        a, b, c = lists[A][0], lists[B][0], lists[C][0]
        self.assertNotEqual(a, b, "A and B got the same list")
        self.assertNotEqual(a, c, "A and C got the same list")
        self.assertNotEqual(b, c, "B and C got the same list")
        return lists

    def check_features(self):
        fa = self.features(A)
        self.assertEqual(count(fa["counts"], "click"), 2, fa)
        self.assertEqual(count(fa["counts"], "view"), 1, fa)
        self.assertEqual(fa["total"], 3, fa)
        self.assertEqual(fa["unique_items"], 3, fa)
        fb = self.features(B)
        self.assertEqual(count(fb["counts"], "click"), 2, fb)
        self.assertEqual(count(fb["counts"], "like"), 1, fb)
        self.assertEqual(fb["total"], 3, fb)
        fc = self.features(C)
        self.assertEqual(count(fc["counts"], "purchase"), 2, fc)
        self.assertEqual(count(fc["counts"], "view"), 1, fc)
        self.assertEqual(count(fc["counts"], "click"), 1, fc)
        self.assertEqual(fc["total"], 4, fc)
        self.assertEqual(fc["unique_items"], 2, fc)
        self.assertEqual(sorted(id_of(x) for x in fc["purchased"]), ["item_7", "item_8"], fc)
        return {u: f for u, f in ((A, fa), (B, fb), (C, fc))}

    # ------------------------------------------------------------- tests
    def test_01_three_users_get_personal_lists(self):
        self.check_lists("before restart")
        self.check_features()

    def test_02_cold_start_gets_trending_then_adapts(self):
        user = "cold_" + uuid.uuid4().hex[:8]
        r = self.server.get(API + "/users/%s/features" % q(user))
        self.assertError(r, 404, "not_found")
        rec = self.recs(user, n=10)
        cold = self.check_rec_shape(rec, n=10, user_id=user, msg=str(rec))
        heavy = HEAVY & set(cold)
        self.assertGreaterEqual(len(heavy), 3,
                                "cold-start list should be trending items (%s): %s"
                                % (sorted(HEAVY), cold))
        # the cold-start list agrees with /popular
        pop = item_ids(self.ok(self.server.get(API + "/popular?n=10")))
        self.assertTrue(set(cold[:5]) & set(pop),
                        "cold-start top 5 %s shares nothing with /popular %s" % (cold, pop))
        # a cold-start read does not create the user
        r = self.server.get(API + "/users/%s/features" % q(user))
        self.assertError(r, 404, "not_found")

        self.post_events([ev(user, "item_5", "view")])
        rec2 = self.recs(user, n=10)
        warm = self.check_rec_shape(rec2, n=10, user_id=user, msg=str(rec2))
        self.assertNotEqual(cold, warm, "list did not change after the user's first event")
        self.assertNotIn("item_5", warm, "just-viewed item recommended (exclude-seen)")
        self.assertIn("item_6", warm[:5], "item_6 (co-viewed with item_5) not in top 5: %s" % rec2)

    def test_03_filters_category_and_exclude(self):
        rec = self.recs(A, n=10, exclude=["item_4", "item_5"])
        ids = self.check_rec_shape(rec, n=10, user_id=A, msg=str(rec))
        self.assertNotIn("item_4", ids)
        self.assertNotIn("item_5", ids)
        rec = self.recs(A, n=3, category="sports")
        ids = self.check_rec_shape(rec, user_id=A, msg=str(rec))
        self.assertTrue(ids, "no sports items recommended: %s" % rec)
        for iid in ids:
            self.assertEqual(cat_of(iid), "sports", "category filter ignored: %s" % rec)
        self.assertIn("item_4", ids, "item_4 is A's best sports item: %s" % rec)
        rec = self.recs(B, n=4, category=["books", "home"])
        ids = self.check_rec_shape(rec, user_id=B, msg=str(rec))
        self.assertTrue(ids)
        for iid in ids:
            self.assertIn(cat_of(iid), ("books", "home"), "category filter ignored: %s" % rec)

    def test_04_similar_popular_anonymous(self):
        sim = self.ok(self.server.get(API + "/items/item_1/similar?n=5"))
        ids = item_ids(sim)
        self.assertIn("item_4", ids, "item_4 should be similar to item_1: %s" % sim)
        self.assertNotIn("item_1", ids, "an item is not similar to itself: %s" % sim)
        sim = self.ok(self.server.get(API + "/items/item_7/similar?n=5"))
        self.assertIn("item_9", item_ids(sim), sim)

        pop = self.ok(self.server.get(API + "/popular?" + qs(n=6, window="7d")))
        ids = item_ids(pop)
        self.assertTrue(ids, pop)
        self.assertLessEqual(len(ids), 6, pop)
        self.assertGreaterEqual(len(HEAVY & set(ids)), 3, "popular should be the busy items: %s"
                                % pop)
        pop = self.ok(self.server.get(API + "/popular?" + qs(n=5, category="sports")))
        ids = item_ids(pop)
        self.assertTrue(ids, pop)
        for iid in ids:
            self.assertEqual(cat_of(iid), "sports", pop)

        anon = self.ok(self.server.post(API + "/recommendations", {"items": ["item_5"], "n": 5}))
        ids = self.check_rec_shape(anon, n=5, user_id=None, msg=str(anon))
        self.assertIn("item_6", ids, "anonymous recs from item_5 should include item_6: %s" % anon)

    def test_05_feedback_with_recommendation_id(self):
        user = "fb_" + uuid.uuid4().hex[:8]
        rec = self.recs(user, n=5)
        rid = rec["recommendation_id"]
        first = rec["items"][0]["item_id"]
        r = self.server.post(API + "/events", ev(user, first, "click", recommendation_id=rid,
                                                 session_id="s-1"))
        self.assertEqual(self.ok(r), {"accepted": 1})
        f = self.features(user)
        self.assertEqual(count(f["counts"], "click"), 1, f)
        self.assertNotIn(first, item_ids(self.recs(user, n=5)))

    def test_06_restart_keeps_everything(self):
        before = self.check_features()
        h0 = self.health()
        rc = self.server.stop()
        self.assertEqual(rc, 0, "recd should exit 0 on SIGTERM, got %s" % rc)
        self.server.start()
        h1 = self.health()
        for k in ("users", "items", "events"):
            self.assertEqual(h1[k], h0[k], "health %s changed across restart: %s -> %s"
                             % (k, h0, h1))
        after = self.check_features()
        for u in (A, B, C):
            for k in ("counts", "total", "unique_items", "recent_items", "first_seen",
                      "last_seen"):
                self.assertEqual(after[u][k], before[u][k],
                                 "%s.%s changed across restart" % (u, k))
            self.assertEqual(sorted(id_of(x) for x in after[u]["purchased"]),
                             sorted(id_of(x) for x in before[u]["purchased"]))
            self.assertEqual(sorted(after[u]["category_affinity"]),
                             sorted(before[u]["category_affinity"]))
        # catalog survived
        it = self.ok(self.server.get(API + "/items/item_4"))
        self.assertEqual(it["categories"], ["sports"])
        self.check_lists("after restart")
