"""Custom event types (--event-types share:2.5)."""

from harness import API, RecdTestCase, count, ev, metric_sum, parse_metrics


class CustomEventTypeTest(RecdTestCase):
    server_args = ["--event-types", "share:2.5"]

    def test_custom_type_accepted_and_counted(self):
        r = self.server.post(API + "/events", ev("ct_u1", "ct_i1", "share"))
        self.assertEqual(self.ok(r), {"accepted": 1})
        r = self.server.post(API + "/events", {"events": [ev("ct_u1", "ct_i2", "share"),
                                                          ev("ct_u1", "ct_i2", "view"),
                                                          ev("ct_u1", "ct_i1", "purchase")]})
        self.assertEqual(self.ok(r), {"accepted": 3})
        f = self.features("ct_u1")
        self.assertEqual(count(f["counts"], "share"), 2, f)
        self.assertEqual(count(f["counts"], "view"), 1, f)
        self.assertEqual(count(f["counts"], "purchase"), 1, f)
        self.assertEqual(f["total"], 4, f)
        fi = self.ok(self.server.get(API + "/items/ct_i1/features"))
        self.assertEqual(count(fi["counts"], "share"), 1, fi)
        m = parse_metrics(self.server.get("/metrics").text)
        self.assertGreaterEqual(metric_sum(m, "recd_events_total", type="share"), 2)

    def test_unknown_type_still_rejected(self):
        h0 = self.health()
        for bad in ("tweet", "Share", "share:2.5", "shar"):
            r = self.server.post(API + "/events", ev("ct_u2", "ct_i1", bad))
            self.assertError(r, 400, "invalid_event", field="event_type")
        r = self.server.post(API + "/events", {"events": [ev("ct_u2", "ct_i1", "share"),
                                                          ev("ct_u2", "ct_i1", "tweet")]})
        self.assertError(r, 400, "invalid_event", field="event_type", index=1)
        self.assertEqual(self.health()["events"], h0["events"])
        self.assertEqual(self.server.get(API + "/users/ct_u2/features").status, 404)

    def test_builtin_types_still_accepted(self):
        evs = [ev("ct_u3", "ct_i3", t) for t in ("view", "click", "like", "add_to_cart",
                                                  "purchase", "share")]
        self.assertEqual(self.ok(self.server.post(API + "/events", {"events": evs})),
                         {"accepted": 6})
        f = self.features("ct_u3")
        for t in ("view", "click", "like", "add_to_cart", "purchase", "share"):
            self.assertEqual(count(f["counts"], t), 1, f)

    def test_custom_type_survives_restart(self):
        self.ok(self.server.post(API + "/events", ev("ct_u4", "ct_i4", "share")))
        self.assertEqual(self.server.stop(), 0)
        self.server.start()
        f = self.features("ct_u4")
        self.assertEqual(count(f["counts"], "share"), 1, f)

    def test_share_unknown_without_flag(self):
        s = self.new_server([])
        r = s.post(API + "/events", ev("ct_u5", "ct_i5", "share"))
        self.assertError(r, 400, "invalid_event", field="event_type")
        self.assertIn("share", r.json["error"]["message"])
