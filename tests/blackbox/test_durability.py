"""Durability: every event acknowledged with 200 survives SIGKILL."""

import http.client
import json
import random
import re
import socket
import threading
import time

from harness import API, RecdTestCase, count, ev, q

THREADS = 4
KILL_AFTER = 2000         # acknowledged events before the SIGKILL
STALL_LIMIT = 60          # seconds without any ack -> give up (liveness, not perf)


class Writer(threading.Thread):
    """Sends small batches (1-3 events) until stopped or the server dies; records
    every event whose request was answered 200 {"accepted": n}."""

    def __init__(self, server, tid, cycle, stop):
        super(Writer, self).__init__(daemon=True)
        self.server, self.tid, self.cycle, self.stop = server, tid, cycle, stop
        self.acked = []           # (user, item)
        self.rejected = []        # unexpected non-200 answers
        self.error = None
        self.rnd = random.Random(tid * 1000 + cycle)

    def run(self):
        seq = 0
        while not self.stop.is_set():
            n = self.rnd.randint(1, 3)
            batch = []
            for j in range(n):
                user = "dur_c%d_t%d_u%d" % (self.cycle, self.tid, seq % 7)
                item = "dur_c%d_t%d_i%d" % (self.cycle, self.tid, seq)
                batch.append(ev(user, item, "view"))
                seq += 1
            body = batch[0] if n == 1 else {"events": batch}
            try:
                r = self.server.post(API + "/events", body, timeout=20)
            except (OSError, http.client.HTTPException) as e:
                self.error = e            # server gone: expected after the kill
                return
            if r.status == 200 and isinstance(r.json, dict) and r.json.get("accepted") == n:
                self.acked.extend((e["user_id"], e["item_id"]) for e in batch)
            else:
                self.rejected.append(r.describe())
                if not self.server.alive():
                    return


class DurabilityTest(RecdTestCase):
    class_server = False

    def kill_mid_stream(self, server, cycle):
        stop = threading.Event()
        writers = [Writer(server, t, cycle, stop) for t in range(THREADS)]
        for w in writers:
            w.start()
        try:
            last, last_change = 0, time.monotonic()
            while True:
                acked = sum(len(w.acked) for w in writers)
                if acked >= KILL_AFTER:
                    break
                if acked != last:
                    last, last_change = acked, time.monotonic()
                if not any(w.is_alive() for w in writers):
                    self.fail("all writers stopped after %d acks: errors=%s rejected=%s"
                              % (acked, [w.error for w in writers],
                                 [w.rejected[:2] for w in writers]))
                if time.monotonic() - last_change > STALL_LIMIT:
                    self.fail("no event acknowledged for %ds (stuck at %d)"
                              % (STALL_LIMIT, acked))
                time.sleep(0.005)
            self.assertTrue(any(w.is_alive() for w in writers))
            server.kill()                 # SIGKILL while the writers are still sending
        finally:
            stop.set()
            for w in writers:
                w.join(60)
        for w in writers:
            self.assertFalse(w.is_alive(), "writer thread hung")
            self.assertEqual(w.rejected, [], "unexpected rejections before the kill")
        acked = []
        for w in writers:
            acked.extend(w.acked)
        return acked

    def verify(self, server, acked):
        h = self.health(server)
        self.assertGreaterEqual(h["events"], len(acked),
                                "health events %s < acknowledged %d" % (h["events"], len(acked)))
        per_user = {}
        for user, _ in acked:
            per_user[user] = per_user.get(user, 0) + 1
        for user, n in sorted(per_user.items()):
            r = server.get(API + "/users/%s/features" % q(user))
            self.assertEqual(r.status, 200, "acknowledged user lost: %s" % r.describe())
            self.assertGreaterEqual(r.json["total"], n, "user %s lost events: %s" % (user, r.json))
            self.assertGreaterEqual(count(r.json["counts"], "view"), n, r.json)
        lost = []
        for user, item in acked:
            r = server.get(API + "/items/%s/features" % q(item))
            if r.status != 200 or count(r.json.get("counts"), "view") < 1:
                lost.append((user, item, r.describe(200)))
        self.assertEqual(lost[:10], [], "%d of %d acknowledged events lost"
                         % (len(lost), len(acked)))

    def run_cycles(self, args, cycles):
        server = self.new_server(args)
        all_acked = []
        for cycle in range(cycles):
            acked = self.kill_mid_stream(server, cycle)
            self.assertGreaterEqual(len(acked), KILL_AFTER)
            all_acked.extend(acked)
            server.start()
            self.verify(server, all_acked)
            # still writable after recovery
            r = server.post(API + "/events", ev("dur_after_%d" % cycle, "dur_after_item", "view"))
            self.assertEqual(self.ok(r), {"accepted": 1})
            all_acked.append(("dur_after_%d" % cycle, "dur_after_item"))
        # and a clean restart on top of the crash-recovered store keeps everything
        self.assertEqual(server.stop(), 0)
        server.start()
        self.verify(server, all_acked)

    def test_acked_events_survive_sigkill(self):
        self.run_cycles([], cycles=2)

    def test_acked_events_survive_sigkill_fsync_full(self):
        self.run_cycles(["--fsync", "full"], cycles=1)

    def test_background_snapshots_survive_sigkill(self):
        """Snapshots written in the background while writes go on: a crash
        recovers from the newest one plus the log after it, and they are
        spaced by both snapshot_every and snapshot_growth."""
        args = ["--snapshot-every", "300", "--snapshot-growth", "0.4", "--log-level", "info"]
        self.run_cycles(args, cycles=2)
        with open(self.test_servers[-1].log_path, "rb") as f:
            log = f.read().decode("utf-8", "replace")
        taken = [int(m) for m in re.findall(r"state at event (\d+) written in the background", log)]
        loaded = [int(m) for m in re.findall(r"snapshot: loaded the state at event (\d+)", log)]
        self.assertTrue(taken, "no background snapshot was written:\n" + log[-3000:])
        # each restart after a kill loaded the newest background snapshot taken before it
        self.assertTrue(loaded and max(loaded) >= min(taken), (taken, loaded))
        starts = log.split("===== [")
        for part in starts[1:]:
            got = re.findall(r"state at event (\d+) written in the background", part)
            seqs = [int(x) for x in got]
            prev = None
            m = re.search(r"snapshot: loaded the state at event (\d+)", part)
            if m:
                prev = int(m.group(1))
            for seq in seqs:
                if prev is not None:
                    since = seq - prev
                    self.assertGreaterEqual(since, 300, (prev, seq))
                    self.assertGreaterEqual(since, 0.4 * seq - 1, (prev, seq))
                prev = seq

    def test_shutdown_finishes_a_write_whose_client_left(self):
        """SIGTERM while a big batch is being made durable and its client is
        already gone: the batch is stored, and the server exits at once with
        status 0 (no leak under the sanitizers). (The workers' event loops used to end as soon as they had no
        event left, dropping the write's completion: the server waited out its
        10-s grace for it, then exited leaking it.)"""
        n = 100000
        server = self.new_server(["--max-batch", str(n)])
        body = json.dumps({"events": [ev("sd_u%d" % (i % 97), "sd_i%d" % (i % 501)) for i in range(n)]}).encode()
        s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        s.sendall(b"POST " + API.encode() + b"/events HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                  b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        s.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until the server holds it (this poll is the other request)
            m = re.search(r"^recd_http_requests_in_flight (\d+)", server.get("/metrics").text, re.M)
            if m and int(m.group(1)) >= 2:
                break
            time.sleep(0.01)
        else:
            self.fail("the batch never showed as in flight")
        self.assertEqual(server.stop(timeout=8), 0)
        server.start()
        # all of it (the usual case: SIGTERM came while it was being stored), or
        # none if SIGTERM came while the worker still parsed it (refused: 503)
        self.assertIn(self.health(server)["events"], (n, 0))

    def test_catalog_writes_survive_sigkill(self):
        server = self.new_server([])
        items = [{"item_id": "dk_%d" % i, "categories": ["dk_c%d" % (i % 3)],
                  "tags": ["t%d" % i], "available": i % 5 != 0} for i in range(60)]
        self.assertEqual(self.ok(server.post(API + "/items", {"items": items[:30]})),
                         {"upserted": 30})
        for it in items[30:]:
            body = dict(it)
            del body["item_id"]
            self.ok(server.put(API + "/items/" + it["item_id"], body))
        for i in range(0, 60, 6):
            self.assertIs(self.ok(server.delete(API + "/items/dk_%d" % i)).get("deleted"), True)
        server.kill()
        server.start()
        for i, it in enumerate(items):
            r = server.get(API + "/items/" + it["item_id"])
            if i % 6 == 0:
                self.assertError(r, 404, "not_found")
                continue
            got = self.ok(r)
            self.assertEqual(got["categories"], it["categories"], got)
            self.assertEqual(got["tags"], it["tags"], got)
            self.assertIs(got["available"], it["available"], got)
        # deleted / unavailable stay out of recommendations after recovery
        ids = [x["item_id"] for x in self.recs("dk_someone", n=60, server=server)["items"]]
        for i in range(60):
            if i % 6 == 0 or i % 5 == 0:
                self.assertNotIn("dk_%d" % i, ids)
