"""recd export: the event log as the CSV that recd import reads.

The log is stored in blocks (not readable with SELECT in the sqlite3 shell),
so export is how a user sees or moves it: every acknowledged event, in order,
with its keys, type, time, value, session and recommendation id; the same
whether a server holds the data dir or not (also after kill -9); and
importing the export into a fresh data dir exports the same text."""
import csv
import io
import os
import subprocess
import time

from harness import API, RecdTestCase, ev, make_temp_dir, now_s, recd_bin

HEADER = ["user_id", "item_id", "event_type", "timestamp", "value", "session_id", "recommendation_id"]


def export(data, *args):
    return subprocess.run([recd_bin(), "export", "--data", data] + list(args), capture_output=True,
                           text=True, timeout=120)


class ExportTest(RecdTestCase):
    class_server = False

    def expected_rows(self):
        t0 = now_s() - 3600
        rows, events = [], []
        for i in range(1200):
            user = "u,%d" % (i % 7) if i % 9 == 0 else "user_%d" % (i % 23)
            item = 'it"em %d' % (i % 5) if i % 13 == 0 else "item_%d" % (i % 41)
            etype = ("view", "click", "purchase")[i % 3]
            ms = t0 * 1000 + i * 1500 + i % 1000
            ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)
            e = ev(user, item, etype, ts=ts)
            value = session = rec = ""
            if etype == "purchase":
                e["value"] = [12.5, 0.1, 3, 1e-7][i % 4]
                value = ["12.5", "0.1", "3", "1e-07"][i % 4]
            if i % 4:
                session = e["session_id"] = "s-%d" % (i // 10)
            if i % 17 == 0:
                rec = e["recommendation_id"] = "rec %d" % i
            events.append(e)
            rows.append([user, item, etype, ts, value, session, rec])
        return events, rows

    def parse(self, text):
        got = list(csv.reader(io.StringIO(text)))
        self.assertEqual(got[0], HEADER)
        return got[1:]

    def test_export_is_the_log_and_imports_back(self):
        events, rows = self.expected_rows()
        s = self.new_server()
        self.post_events(events, server=s, chunk=100)
        r = s.post(API + "/events", ev("late", "item_1", "view"))
        self.assertEqual(self.ok(r), {"accepted": 1})
        # a server holds the data dir: read through a second connection
        p = export(s.data_dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        got = self.parse(p.stdout)
        self.assertEqual(len(got), len(rows) + 1)
        self.assertEqual(got[:-1], rows)
        self.assertEqual(got[-1][:3], ["late", "item_1", "view"])
        self.assertIn("1201 events", p.stderr)
        # after kill -9, without a server, and from a log position on
        s.kill()
        p2 = export(s.data_dir)
        self.assertEqual(p2.returncode, 0, p2.stderr)
        self.assertEqual(p2.stdout, p.stdout)
        p3 = export(s.data_dir, "--after", "1000")
        self.assertEqual(self.parse(p3.stdout), got[1000:])
        # import it into a fresh data dir: the same export
        tmp = make_temp_dir("recd-bb-export-")
        csv_path = os.path.join(tmp, "events.csv")
        out = export(s.data_dir, "--out", csv_path)
        self.assertEqual(out.returncode, 0, out.stderr)
        fresh = os.path.join(tmp, "fresh")
        imp = subprocess.run([recd_bin(), "import", "--data", fresh, "--no-progress", csv_path],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(imp.returncode, 0, imp.stderr + imp.stdout)
        again = export(fresh)
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertEqual(again.stdout, p.stdout)

    def test_errors_are_clear(self):
        tmp = make_temp_dir("recd-bb-export-")
        missing = os.path.join(tmp, "nothing-here")
        p = export(missing)
        self.assertEqual(p.returncode, 1)
        self.assertIn("no data dir at " + missing, p.stderr)
        self.assertFalse(os.path.exists(missing), "export must not create a data dir")
        p = export(tmp, "--after", "-3")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--after: '-3' is not a log position", p.stderr)
        p = subprocess.run([recd_bin(), "export", "--bogus", "1"], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown flag '--bogus'", p.stderr)
