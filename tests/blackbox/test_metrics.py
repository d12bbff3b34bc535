"""/metrics counters move after requests; /health counts."""

import math
import os
import re
import time

from harness import API, REPO_ROOT, RecdTestCase, ev, metric_sum, parse_metrics


def has_route(word):
    return lambda v: word in v


class HealthTest(RecdTestCase):

    def test_health_shape(self):
        h = self.health()
        self.assertEqual(h["status"], "ok", h)
        self.assertIsInstance(h["version"], str, h)
        vf = os.path.join(REPO_ROOT, "VERSION")
        if os.path.exists(vf):
            with open(vf) as f:
                self.assertEqual(h["version"], f.read().strip(), h)
        self.assertIsInstance(h["uptime_s"], (int, float), h)
        self.assertGreaterEqual(h["uptime_s"], 0, h)
        for k in ("users", "items", "events"):
            self.assertIsInstance(h[k], int, h)
            self.assertGreaterEqual(h[k], 0, h)
        self.assertIsInstance(h["store"], dict, h)

    def test_health_counts_move(self):
        h0 = self.health()
        self.ok(self.server.post(API + "/events", {"events": [
            ev("hc_u1", "hc_i1", "view"), ev("hc_u1", "hc_i2", "click"),
            ev("hc_u2", "hc_i1", "purchase")]}))
        h1 = self.health()
        self.assertEqual(h1["events"], h0["events"] + 3, (h0, h1))
        self.assertEqual(h1["users"], h0["users"] + 2, (h0, h1))
        self.ok(self.server.post(API + "/events", ev("hc_u1", "hc_i1", "like")))
        h2 = self.health()
        self.assertEqual(h2["events"], h1["events"] + 1, (h1, h2))
        self.assertEqual(h2["users"], h1["users"], (h1, h2))
        self.ok(self.server.put(API + "/items/hc_brand_new", {"categories": ["c"]}))
        h3 = self.health()
        self.assertEqual(h3["items"], h2["items"] + 1, (h2, h3))
        self.assertEqual(h3["events"], h2["events"], (h2, h3))
        # reads change nothing
        self.recs("hc_u1")
        self.recs("hc_nobody")
        self.ok(self.server.get(API + "/popular"))
        h4 = self.health()
        for k in ("users", "items", "events"):
            self.assertEqual(h4[k], h3[k], (h3, h4))


class MetricsTest(RecdTestCase):

    def metrics(self):
        r = self.server.get("/metrics")
        self.assertEqual(r.status, 200, r.describe())
        self.assertTrue(r.headers.get("content-type", "").startswith("text/plain"), r.headers)
        return parse_metrics(r.text), r.text

    def test_connection_gauge(self):
        """Open keep-alive connections are counted, and uncounted once closed."""
        import socket
        # the connections of earlier requests are closed by the client; the server
        # uncounts each when it reads the EOF, which may come after the next request
        # is counted: wait for them to go (only this request's own is left)
        deadline = time.time() + 10
        while True:
            base, _ = self.metrics()
            n0 = metric_sum(base, "recd_http_connections")
            if n0 <= 1 or time.time() > deadline:
                break
            time.sleep(0.05)
        t0 = metric_sum(base, "recd_http_connections_total")
        socks = []
        for _ in range(5):
            s = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
            s.sendall(b"GET /api/v1/health HTTP/1.1\r\n\r\n")
            self.assertTrue(s.recv(65536).startswith(b"HTTP/1.1 200"))
            socks.append(s)
        m, _ = self.metrics()  # its own connection is open too
        self.assertGreaterEqual(metric_sum(m, "recd_http_connections"), n0 + 5)
        self.assertGreaterEqual(metric_sum(m, "recd_http_connections_total"), t0 + 6)
        for s in socks:
            s.close()
        deadline = time.time() + 10
        while True:
            m, _ = self.metrics()
            if metric_sum(m, "recd_http_connections") <= n0 or time.time() > deadline:
                break
            time.sleep(0.05)
        self.assertLessEqual(metric_sum(m, "recd_http_connections"), n0, "closed connections still counted")

    def test_request_counter_moves(self):
        m0, _ = self.metrics()
        for _ in range(3):
            self.health()
        m1, text = self.metrics()
        name = "recd_http_requests_total"
        self.assertIn(name, text)
        a = metric_sum(m0, name, route=has_route("health"), status="200")
        b = metric_sum(m1, name, route=has_route("health"), status="200")
        self.assertGreaterEqual(b - a, 3, "health 200 counter moved %s -> %s" % (a, b))
        # an error status is counted under its own label
        e0 = metric_sum(m1, name, status="404")
        self.server.get(API + "/definitely/not/here")
        m2, _ = self.metrics()
        self.assertGreaterEqual(metric_sum(m2, name, status="404") - e0, 1)

    def test_duration_histogram(self):
        self.health()
        m, text = self.metrics()
        name = "recd_http_request_duration_seconds_bucket"
        series = {}
        for n, labels, v in m:
            if n == name:
                key = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
                series.setdefault(key, []).append((labels.get("le"), v))
        self.assertTrue(series, "no %s series:\n%s" % (name, text[:3000]))
        for key, buckets in series.items():
            les = [le for le, _ in buckets]
            self.assertIn("+Inf", les, "%s %s has no +Inf bucket" % (name, key))
            ordered = sorted(buckets, key=lambda b: math.inf if b[0] == "+Inf" else float(b[0]))
            vals = [v for _, v in ordered]
            self.assertEqual(vals, sorted(vals), "buckets not cumulative: %s %s" % (key, ordered))
        self.assertIn("recd_http_request_duration_seconds_count", text)
        self.assertIn("recd_http_request_duration_seconds_sum", text)

    def test_events_total_by_type(self):
        m0, _ = self.metrics()
        v0 = metric_sum(m0, "recd_events_total", type="view")
        p0 = metric_sum(m0, "recd_events_total", type="purchase")
        self.ok(self.server.post(API + "/events", {"events": [
            ev("mt_u1", "mt_i1", "view"), ev("mt_u1", "mt_i2", "view"),
            ev("mt_u2", "mt_i1", "purchase")]}))
        # a rejected batch is not counted
        self.server.post(API + "/events", {"events": [ev("mt_u1", "mt_i1", "view"),
                                                      ev("mt_u1", "mt_i1", "nope")]})
        m1, text = self.metrics()
        self.assertEqual(metric_sum(m1, "recd_events_total", type="view") - v0, 2, text[:3000])
        self.assertEqual(metric_sum(m1, "recd_events_total", type="purchase") - p0, 1)

    def test_write_stage_histograms_count_every_write(self):
        m0, _ = self.metrics()
        stages = ("queue", "apply", "answer")
        c0 = {s: metric_sum(m0, "recd_write_stage_seconds_count", stage=s) for s in stages}
        for k in range(3):
            self.ok(self.server.post(API + "/events", ev("mt_stage%d" % k, "mt_i8", "view")))
        self.ok(self.server.post(API + "/events", {"events": [ev("mt_stage", "mt_i7", "view")] * 40}))
        m1, text = self.metrics()
        for stage in stages:
            self.assertEqual(metric_sum(m1, "recd_write_stage_seconds_count", stage=stage) - c0[stage], 4,
                             stage + "\n" + text[:3000])
        for stage in stages:
            inf = metric_sum(m1, "recd_write_stage_seconds_bucket", stage=stage, le="+Inf")
            self.assertEqual(inf, metric_sum(m1, "recd_write_stage_seconds_count", stage=stage), stage)
            self.assertGreaterEqual(metric_sum(m1, "recd_write_stage_seconds_sum", stage=stage), 0)

    def test_log_sync_histogram_and_queue_depth(self):
        m0, _ = self.metrics()
        c0 = metric_sum(m0, "recd_log_sync_duration_seconds_bucket", le="+Inf")
        self.ok(self.server.post(API + "/events", ev("mt_sync", "mt_i9", "click")))
        m1, text = self.metrics()
        self.assertIn("recd_log_sync_duration_seconds_bucket", text)
        c1 = metric_sum(m1, "recd_log_sync_duration_seconds_bucket", le="+Inf")
        self.assertGreaterEqual(c1 - c0, 1, "a durable write should record a log sync")
        depth = [v for n, _, v in m1 if n == "recd_queue_depth"]
        self.assertEqual(len(depth), 1, "recd_queue_depth missing:\n%s" % text[:3000])
        self.assertGreaterEqual(depth[0], 0)
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                parts = line.split()
                self.assertEqual(len(parts), 4, line)
                self.assertIn(parts[3], ("counter", "gauge", "histogram", "summary",
                                         "untyped"), line)


class SnapshotMetricsTest(RecdTestCase):
    """Background snapshots show in /metrics: how many finished, how long the
    last took, and how many durable events a crash now would replay."""

    def scrape(self, server):
        r = server.get("/metrics")
        self.assertEqual(r.status, 200, r.describe())
        m = parse_metrics(r.text)
        one = lambda name, **kw: metric_sum(m, name, **kw)
        return one, r.text

    def test_memory_by_part(self):
        """recd_memory_bytes: every part, from a background walk that the first
        scrape starts; they add up to the resident size the walk read."""
        server = self.new_server()
        self.ok(server.put(API + "/items/mm_i0", {"categories": ["c1"], "tags": ["t1"]}))
        batch = [ev("mm_u%d" % (i % 40), "mm_i%d" % (i % 13), "view") for i in range(400)]
        self.ok(server.post(API + "/events", {"events": batch}))
        one, text = self.scrape(server)
        self.assertGreater(one("process_resident_memory_bytes"), 1 << 20, text)
        deadline = time.time() + 20
        while "recd_memory_bytes{" not in text:  # the first scrape starts the walk
            self.assertLess(time.time(), deadline, text)
            time.sleep(0.05)
            one, text = self.scrape(server)
        self.assertIn("# TYPE recd_memory_bytes gauge", text)
        parts = ("profiles", "recent_rings", "seen_sets", "items", "content_memos", "covisitation",
                 "content_index", "id_maps", "trending", "models", "sqlite_cache", "heap_other",
                 "heap_free", "non_heap")
        got = [labels["part"] for n, labels, _ in parse_metrics(text) if n == "recd_memory_bytes"]
        self.assertEqual(sorted(got), sorted(parts), text)
        for part in ("profiles", "recent_rings", "seen_sets", "items", "covisitation", "content_index",
                     "id_maps"):
            self.assertGreater(one("recd_memory_bytes", part=part), 0, part + "\n" + text)
        self.assertEqual(one("recd_memory_bytes", part="models"), 0, text)  # none trained
        resident = one("recd_memory_resident_bytes")
        total = one("recd_memory_bytes")
        self.assertLess(abs(total - resident), 0.05 * resident + (16 << 20), text)
        self.assertLess(abs(one("recd_memory_measured_timestamp_seconds") - time.time()), 60, text)
        self.assertGreaterEqual(one("recd_memory_walk_seconds"), 0, text)

    def test_snapshot_counters_and_lag(self):
        server = self.new_server(["--snapshot-every", "200", "--snapshot-growth", "0"])
        one, text = self.scrape(server)
        for name in ("recd_snapshots_total", "recd_snapshot_last_duration_seconds",
                     "recd_snapshot_running", "recd_snapshot_lag_events"):
            self.assertIn("# TYPE " + name + " ", text)
        self.assertEqual(one("recd_snapshots_total", result="ok"), 0)
        self.assertEqual(one("recd_snapshot_lag_events"), 0)
        # 150 events: below snapshot_every, so the lag is all of them
        batch = [ev("sm_u%d" % (i % 7), "sm_i%d" % (i % 11), "view") for i in range(150)]
        self.ok(server.post(API + "/events", {"events": batch}))
        one, _ = self.scrape(server)
        self.assertEqual(one("recd_snapshot_lag_events"), 150)
        self.assertEqual(one("recd_snapshots_total", result="ok"), 0)
        # past it: a background snapshot starts; once it is done, the lag is
        # what came after the event it was taken at
        self.ok(server.post(API + "/events", {"events": batch}))
        deadline = time.time() + 30
        while True:
            one, text = self.scrape(server)
            if one("recd_snapshots_total", result="ok") >= 1 and one("recd_snapshot_running") == 0:
                break
            # the apply stage reaps the child on its next round or wake-up
            self.ok(server.post(API + "/events", ev("sm_tick", "sm_i0", "view")))
            self.assertLess(time.time(), deadline, text)
        self.assertEqual(one("recd_snapshots_total", result="failed"), 0)
        self.assertGreater(one("recd_snapshot_last_duration_seconds"), 0)
        health = self.health(server)
        lag = one("recd_snapshot_lag_events")
        self.assertLess(lag, health["store"]["last_seq"], (lag, health))
        with open(server.log_path, "rb") as f:
            log = f.read().decode("utf-8", "replace")

        taken = [int(x) for x in re.findall(r"state at event (\d+) written in the background", log)]
        self.assertTrue(taken, log[-2000:])
        self.assertEqual(lag, health["store"]["last_seq"] - taken[-1], (lag, taken, health))
