"""Learned models over HTTP: train (wait and job polling), registry, promote,
rollback, errors, a restart serving the production version, and the model
changing a new user's list after one event (fold-in)."""

import json
import subprocess
import time

from harness import API, RecdTestCase, ev, item_ids, recd_bin


class ModelsTest(RecdTestCase):
    @classmethod
    def prepare(cls):
        # two tastes: users 0..59 like a0..a19, users 60..119 like b0..b19
        evs = []
        for u in range(120):
            for k in range(8):
                block = "a" if u < 60 else "b"
                evs.append(ev("mu%d" % u, "%s%d" % (block, (u * 7 + k * 3) % 20), "click"))
        r = cls.server.post(API + "/events", {"events": evs})
        assert r.status == 200, r.describe()

    def test_1_empty_registry(self):
        d = self.ok(self.server.get(API + "/models"))
        self.assertIsNone(d["production"])
        self.assertEqual(d["models"], [])

    def test_2_train_wait_promotes_first_model_and_serves_it(self):
        r = self.server.post(API + "/models/train?wait=true&kind=ials")
        m = self.ok(r)
        self.assertEqual(m["kind"], "ials")
        self.assertEqual(m["stage"], "production")
        self.assertGreater(m["metrics"]["holdout_users"], 0)
        self.assertGreater(m["metrics"]["ndcg_at_10"], 0.1, m)
        self.assertEqual(m["data"]["events_seq"], 960)
        self.assertEqual(m["data"]["events_seq_from"], 1)
        self.assertLessEqual(m["data"]["first_event"], m["data"]["latest_event"])
        d = self.ok(self.server.get(API + "/models"))
        self.assertEqual(d["production"], m["version"])
        # a brand-new user: one event, and the model's block follows at once
        self.ok(self.server.post(API + "/events", ev("mnew", "a3", "click")))
        rec = self.ok(self.server.get(API + "/recommendations/mnew?n=5"))
        ids = item_ids(rec)
        self.assertTrue(all(i.startswith("a") for i in ids), rec)
        self.assertTrue(any("taste" in x for it in rec["items"] for x in it["reasons"]), rec)

    def test_3_job_polling_candidate_promote_rollback(self):
        r = self.server.post(API + "/models/train?kind=ease&promote=never")
        self.assertEqual(r.status, 202, r.describe())
        job = r.json["job_id"]
        for _ in range(600):
            j = self.ok(self.server.get(API + "/models/jobs/%d" % job))
            if j["status"] != "running":
                break
            time.sleep(0.05)
        self.assertEqual(j["status"], "succeeded", j)
        v = j["model"]["version"]
        self.assertEqual(j["model"]["stage"], "candidate")
        prod = self.ok(self.server.get(API + "/models"))["production"]
        self.assertNotEqual(prod, v)
        m = self.ok(self.server.post(API + "/models/v%d/promote" % v))
        self.assertEqual(m["stage"], "production")
        self.assertEqual(self.ok(self.server.get(API + "/models"))["production"], v)
        m = self.ok(self.server.post(API + "/models/rollback"))
        self.assertEqual(m["version"], prod)
        self.assertEqual(self.ok(self.server.get(API + "/models"))["production"], prod)

    def test_4_errors(self):
        self.assertError(self.server.post(API + "/models/train?kind=svd"), 400, "invalid_parameter", field="kind")
        self.assertError(self.server.post(API + "/models/train?wait=maybe"), 400, "invalid_parameter", field="wait")
        self.assertError(self.server.post(API + "/models/train?promote=sometimes"), 400, "invalid_parameter",
                         field="promote")
        self.assertError(self.server.post(API + "/models/train?colour=red"), 400, "invalid_parameter", field="colour")
        self.assertError(self.server.post(API + "/models/99/promote"), 404, "not_found", field="version")
        self.assertError(self.server.post(API + "/models/x1/promote"), 400, "invalid_parameter", field="version")
        self.assertError(self.server.get(API + "/models/jobs/999"), 404, "not_found", field="job_id")
        self.assertError(self.server.get(API + "/models/train"), 405, "method_not_allowed")

    def test_5_restart_serves_production(self):
        before = self.ok(self.server.get(API + "/models"))["production"]
        self.assertIsNotNone(before)
        self.server.stop()
        self.server.start()
        self.assertEqual(self.ok(self.server.get(API + "/models"))["production"], before)
        rec = self.ok(self.server.get(API + "/recommendations/mnew?n=5"))
        self.assertTrue(any("taste" in x for it in rec["items"] for x in it["reasons"]), rec)


class RankerTest(RecdTestCase):
    """A "ranker" version: a retrieval model plus a learned reranker trained on
    point-in-time requests replayed from the log."""

    @classmethod
    def prepare(cls):
        # 80 users in two tastes browse 3 items of their taste per visit, one
        # visit every 80 minutes, over 100 items per taste; sometimes click or buy
        t0 = 1700000000
        evs = []
        for k in range(2400):
            u = (k * 7) % 80
            block = "a" if u < 40 else "b"
            item = "%s%d" % (block, (u * 3 + k // 80 * 5 + k % 3) % 100)
            etype = "purchase" if k % 11 == 0 else "click" if k % 5 == 0 else "view"
            evs.append(ev("ru%d" % u, item, etype, ts=t0 + k * 60))
        for s in range(0, len(evs), 1000):
            r = cls.server.post(API + "/events", {"events": evs[s:s + 1000]})
            assert r.status == 200, r.describe()

    def test_1_train_ranker_serves_reranked_lists(self):
        m = self.ok(self.server.post(API + "/models/train?wait=true&kind=ranker&promote=always"))
        self.assertEqual(m["kind"], "ranker")
        self.assertEqual(m["base"], "ials")
        self.assertEqual(m["stage"], "production")
        rk = m["ranker"]
        for key in ("ndcg_at_10", "blend_ndcg_at_10", "groups_train", "groups_heldout", "rows", "features", "trees"):
            self.assertIn(key, rk)
        self.assertGreater(rk["groups_train"], 10, rk)
        self.assertGreater(rk["ndcg_at_10"], 0, rk)
        self.assertEqual(self.ok(self.server.get(API + "/models"))["production"], m["version"])
        rec = self.ok(self.server.get(API + "/recommendations/ru7?n=8"))
        self.assertEqual(len(rec["items"]), 8, rec)
        scores = [it["score"] for it in rec["items"]]
        self.assertEqual(scores, sorted(scores, reverse=True), rec)
        seen = self.ok(self.server.get(API + "/users/ru7/features"))
        recent = {r["item_id"] for r in seen["recent_items"]}
        self.assertFalse(recent & set(item_ids(rec)), rec)
        # read-your-writes holds with the ranker on: a bought item leaves the list
        top = item_ids(rec)[0]
        self.ok(self.server.post(API + "/events", ev("ru7", top, "purchase")))
        self.assertNotIn(top, item_ids(self.ok(self.server.get(API + "/recommendations/ru7?n=8"))))

    def test_2_restart_keeps_the_ranker(self):
        prod = self.ok(self.server.get(API + "/models"))["production"]
        self.server.stop()
        self.server.start()
        d = self.ok(self.server.get(API + "/models"))
        self.assertEqual(d["production"], prod)
        kinds = {m["version"]: m["kind"] for m in d["models"]}
        self.assertEqual(kinds[prod], "ranker")
        self.assertEqual(len(item_ids(self.ok(self.server.get(API + "/recommendations/ru9?n=5")))), 5)

    def test_3_cli_registry_on_a_stopped_server(self):
        prod = self.ok(self.server.get(API + "/models"))["production"]
        self.server.stop()
        try:
            def cli(*args):
                return subprocess.run([recd_bin()] + list(args) + ["--data", self.server.data_dir],
                                      capture_output=True, text=True, timeout=300)
            r = cli("models", "--json")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(json.loads(r.stdout)["production"], prod)
            r = cli("models")
            self.assertIn("production: v%d" % prod, r.stdout)
            self.assertIn("ranker", r.stdout)
            r = cli("promote", "v99")
            self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
            self.assertIn("v99", r.stderr)
            r = cli("promote", "x")
            self.assertEqual(r.returncode, 2)
            self.assertIn("VERSION", r.stderr)
            r = cli("train", "--kind", "ials", "--promote", "never")
            self.assertEqual(r.returncode, 0, r.stderr)
            m = json.loads(r.stdout)
            self.assertEqual((m["kind"], m["stage"]), ("ials", "candidate"))
            r = cli("promote", str(m["version"]))
            self.assertEqual(r.returncode, 0, r.stderr)
            r = cli("rollback")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(json.loads(r.stdout)["version"], prod)
        finally:
            self.server.start()
        self.assertEqual(self.ok(self.server.get(API + "/models"))["production"], prod)


class RankerTooLittleDataTest(RecdTestCase):
    @classmethod
    def prepare(cls):
        r = cls.server.post(API + "/events", {"events": [ev("x%d" % i, "i%d" % i, "view") for i in range(30)]})
        assert r.status == 200, r.describe()

    def test_ranker_needs_labelled_requests(self):
        before = self.ok(self.server.get(API + "/models"))
        r = self.server.post(API + "/models/train?wait=true&kind=ranker")
        self.assertError(r, 422, "training_failed")
        self.assertIn("ranker_horizon", r.json["error"]["message"])
        self.assertEqual(self.ok(self.server.get(API + "/models")), before)
