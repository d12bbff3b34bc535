"""Recommendation rules on a tiny catalog where the answer is fully determined:
exclude-seen on/off, purchased always excluded, n items when n are eligible."""

from harness import API, RecdTestCase, ev, item_ids, now_s

ITEMS = [{"item_id": "r_%d" % i, "categories": ["rc_%d" % i]} for i in range(1, 4)]


class RulesTest(RecdTestCase):
    class_server = False

    def load(self, s):
        self.assertEqual(self.ok(s.post(API + "/items", {"items": ITEMS})), {"upserted": 3})
        t = now_s() - 100
        self.post_events([ev("r_user", "r_1", "view", t), ev("r_user", "r_2", "click", t + 1),
                          ev("r_user", "r_3", "view", t + 2)], server=s)

    def test_exclude_seen_default_true(self):
        s = self.new_server([])
        self.load(s)
        rec = self.recs("r_user", n=3, server=s)
        self.assertEqual(item_ids(rec), [], "every item was seen: %s" % rec)
        rec = self.recs("r_fresh", n=3, server=s)
        self.assertEqual(sorted(item_ids(rec)), ["r_1", "r_2", "r_3"], rec)

    def test_exclude_seen_false(self):
        s = self.new_server(["--exclude-seen", "false"])
        self.load(s)
        rec = self.recs("r_user", n=3, server=s)
        self.check_rec_shape(rec, n=3, user_id="r_user", msg=str(rec))
        self.assertEqual(sorted(item_ids(rec)), ["r_1", "r_2", "r_3"],
                         "seen items are eligible with --exclude-seen false: %s" % rec)
        self.post_events([ev("r_user", "r_2", "purchase")], server=s)
        rec = self.recs("r_user", n=3, server=s)
        self.assertEqual(sorted(item_ids(rec)), ["r_1", "r_3"],
                         "purchased items are excluded regardless: %s" % rec)
