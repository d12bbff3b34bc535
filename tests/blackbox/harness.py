"""harness.py - shared machinery for the recd black-box tests.

Starts the real `recd serve` binary on a free port with a temporary data dir,
talks to it over HTTP, and kills it afterwards (even when a test fails or the
run is interrupted).  Python 3 standard library only.

Environment:
  RECD_BIN            path of the recd binary (default: <repo>/build/recd)
  RECD_START_TIMEOUT  seconds to wait for /api/v1/health (default 30); this is
                      a liveness limit, not a performance assertion
  RECD_KEEP_DATA=1    keep temp data dirs and logs (their paths are printed)
"""

import atexit
import calendar
import http.client
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
API = "/api/v1"
EVENT_TYPES = ("view", "click", "like", "add_to_cart", "purchase")


def recd_bin():
    path = os.environ.get("RECD_BIN") or os.path.join(REPO_ROOT, "build", "recd")
    if not os.path.isabs(path):
        path = os.path.join(REPO_ROOT, path)
    return path


def start_timeout():
    try:
        return float(os.environ.get("RECD_START_TIMEOUT", "30"))
    except ValueError:
        return 30.0


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def q(s):
    """Percent-encode one path segment (ids may contain anything)."""
    return urllib.parse.quote(s, safe="")


# ---------------------------------------------------------------- time helpers

def now_s():
    return int(time.time())


def rfc3339(ts):
    """unix seconds (int/float) -> 'YYYY-MM-DDTHH:MM:SSZ' (or with .mmm)."""
    whole = int(math.floor(ts))
    frac = ts - whole
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    if frac:
        return "%s.%03dZ" % (base, int(round(frac * 1000)) % 1000)
    return base + "Z"


_RFC_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def parse_ts(v):
    """A timestamp as the server may render it -> unix seconds (float).

    Accepts RFC 3339 strings, unix seconds, or unix milliseconds (numbers
    larger than 1e11 are taken as ms).  Raises ValueError otherwise."""
    if isinstance(v, bool) or v is None:
        raise ValueError("not a timestamp: %r" % (v,))
    if isinstance(v, (int, float)):
        return v / 1000.0 if abs(v) > 1e11 else float(v)
    if isinstance(v, str):
        m = _RFC_RE.match(v)
        if not m:
            raise ValueError("not an RFC 3339 timestamp: %r" % (v,))
        y, mo, d, h, mi, s = (int(m.group(i)) for i in range(1, 7))
        t = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
        if m.group(7):
            t += float(m.group(7))
        tz = m.group(8)
        if tz not in ("Z", "z"):
            sign = 1 if tz[0] == "+" else -1
            t -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
        return float(t)
    raise ValueError("not a timestamp: %r" % (v,))


# ---------------------------------------------------------------- responses

class Resp(object):
    """An HTTP response.  Unpacks as (status, json, headers)."""

    def __init__(self, method, path, status, headers, data, sent=None):
        self.method = method
        self.path = path
        self.status = status
        self.headers = headers            # dict, lower-case names
        self.data = data                  # raw bytes
        self.text = data.decode("utf-8", "replace")
        self.sent = sent
        self.json = None
        self.json_error = None
        if data:
            try:
                self.json = json.loads(self.text)
            except ValueError as e:
                self.json_error = str(e)

    def __iter__(self):
        return iter((self.status, self.json, self.headers))

    def describe(self, limit=1500):
        sent = ""
        if self.sent is not None:
            s = self.sent if isinstance(self.sent, str) else self.sent.decode("utf-8", "replace")
            if len(s) > 600:
                s = s[:600] + "...(%d bytes)" % len(s)
            sent = " body=" + s
        text = self.text if len(self.text) <= limit else self.text[:limit] + "..."
        return "%s %s%s -> %s %s" % (self.method, self.path, sent, self.status, text)

    def __repr__(self):
        return "<Resp %s>" % self.describe(300)


# ---------------------------------------------------------------- the server

_LIVE = set()
_LIVE_LOCK = threading.Lock()

# Server logs live in one directory per run (not in the per-test data dirs, which
# cleanups remove before a failure is reported).  Removed at exit unless a test
# failed or RECD_KEEP_DATA is set.
LOG_DIR = tempfile.mkdtemp(prefix="recd-bb-logs-")
_LOG_SEQ = [0]
_KEEP_LOGS = [False]


def _new_log_path(name):
    with _LIVE_LOCK:
        _LOG_SEQ[0] += 1
        n = _LOG_SEQ[0]
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:80]
    return os.path.join(LOG_DIR, "%03d-%s.log" % (n, safe))


_LOGS_DONE = [False]


def _remove_logs():
    if _LOGS_DONE[0]:
        return
    _LOGS_DONE[0] = True
    if _KEEP_LOGS[0] or os.environ.get("RECD_KEEP_DATA"):
        sys.stderr.write("server logs kept in %s\n" % LOG_DIR)
        return
    shutil.rmtree(LOG_DIR, ignore_errors=True)


_TEMP_DIRS = set()


def make_temp_dir(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    _TEMP_DIRS.add(d)
    return d


def _remove_temp_dirs():
    for d in list(_TEMP_DIRS):
        _cleanup_dir(d)


def finish():
    """Kill any server still running, remove temp dirs left by an interrupted
    run and tidy the log dir (run.py calls this before its summary line; also
    registered with atexit)."""
    _kill_all_live()
    _remove_temp_dirs()
    _remove_logs()


def _kill_all_live():
    with _LIVE_LOCK:
        servers = list(_LIVE)
    for s in servers:
        try:
            s.kill()
        except Exception:
            pass


atexit.register(finish)


class ServerError(Exception):
    pass


class Server(object):
    """One `recd serve` process (restartable on the same data dir)."""

    def __init__(self, data_dir, args=(), log_path=None, name="recd"):
        self.data_dir = data_dir
        self.args = list(args)
        self.name = name
        self.log_path = log_path or _new_log_path(name)
        self.proc = None
        self.port = None
        self.starts = 0
        self.last_exit = None

    # -- lifecycle
    def start(self, timeout=None):
        binary = recd_bin()
        if not os.path.isfile(binary):
            raise ServerError("recd binary not found at %s (set RECD_BIN or run `make`)" % binary)
        timeout = start_timeout() if timeout is None else timeout
        last = None
        for attempt in range(3):
            self.port = free_port()
            cmd = [binary, "serve", "--listen", "127.0.0.1:%d" % self.port,
                   "--data", self.data_dir] + self.args
            self.starts += 1
            with open(self.log_path, "ab") as log:
                log.write(("\n===== [%s] start #%d: %s\n" % (
                    time.strftime("%H:%M:%S"), self.starts, " ".join(cmd))).encode())
                log.flush()
                self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=log, cwd=REPO_ROOT, start_new_session=True)
            with _LIVE_LOCK:
                _LIVE.add(self)
            try:
                self._wait_ready(timeout)
                return self
            except ServerError as e:
                last = e
                self.kill()
                tail = self.log_tail(20).lower()
                if "in use" in tail or "eaddrinuse" in tail:
                    continue          # lost the race for the port: retry
                break
        _KEEP_LOGS[0] = True
        raise last

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        err = None
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                self.last_exit = rc
                raise ServerError("recd exited with status %s before becoming ready\n%s"
                                  % (rc, self.log_tail()))
            try:
                r = self.request("GET", API + "/health", timeout=2)
                if r.status == 200:
                    return
                err = r.describe()
            except (OSError, http.client.HTTPException) as e:
                err = repr(e)
            time.sleep(0.05)
        raise ServerError("recd did not answer GET /api/v1/health with 200 within %.0fs "
                          "(last: %s)\n%s" % (timeout, err, self.log_tail()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=30):
        """SIGTERM and wait; returns the exit status (SIGKILLs after timeout
        and raises ServerError so the hang is reported)."""
        if self.proc is None:
            return self.last_exit
        hung = False
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                hung = True
                self.proc.kill()
                self.proc.wait()
        self.last_exit = self.proc.returncode
        self.proc = None
        with _LIVE_LOCK:
            _LIVE.discard(self)
        if hung:
            raise ServerError("recd did not exit within %ss of SIGTERM (killed)\n%s"
                              % (timeout, self.log_tail()))
        return self.last_exit

    def kill(self):
        """SIGKILL (crash simulation / cleanup)."""
        if self.proc is None:
            return self.last_exit
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            pass
        self.last_exit = self.proc.returncode
        self.proc = None
        with _LIVE_LOCK:
            _LIVE.discard(self)
        return self.last_exit

    def restart(self):
        rc = self.stop()
        self.start()
        return rc

    def log_tail(self, lines=150):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
        except OSError:
            return "(no log at %s)" % self.log_path
        text = data.decode("utf-8", "replace").splitlines()
        if len(text) > lines:
            text = ["... (%d earlier lines)" % (len(text) - lines)] + text[-lines:]
        return "\n".join(text)

    # -- HTTP
    def request(self, method, path, body=None, raw=None, headers=None,
                content_type="application/json", timeout=30, chunked=False):
        """Send one request on a fresh connection.  `body` is JSON-encoded;
        `raw` (str/bytes) is sent as is.  content_type=None sends none.
        chunked=True sends the body with Transfer-Encoding: chunked."""
        hdrs = dict(headers or {})
        data = None
        if raw is not None:
            data = raw.encode("utf-8") if isinstance(raw, str) else raw
        elif body is not None:
            data = json.dumps(body).encode("utf-8")
        if data is not None and content_type is not None:
            hdrs.setdefault("Content-Type", content_type)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            try:
                if chunked and data is not None:
                    parts = (data[i:i + 8192] for i in range(0, len(data), 8192))
                    conn.request(method, path, body=parts, headers=hdrs, encode_chunked=True)
                else:
                    conn.request(method, path, body=data, headers=hdrs)
            except (BrokenPipeError, ConnectionResetError):
                # the server may answer (413) and close before reading it all;
                # try to read whatever answer it sent
                pass
            r = conn.getresponse()
            payload = r.read()
            hd = {k.lower(): v for k, v in r.getheaders()}
            return Resp(method, path, r.status, hd, payload, sent=data)
        finally:
            conn.close()

    def connection(self, timeout=30):
        """A raw http.client connection (for keep-alive tests)."""
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


# ---------------------------------------------------------------- data helpers

def ev(user, item, etype="view", ts=None, **extra):
    e = {"user_id": user, "item_id": item, "event_type": etype}
    if ts is not None:
        e["timestamp"] = ts
    e.update(extra)
    return e


def count(counts, etype):
    """counts object lookup; absent types count as 0."""
    if not isinstance(counts, dict):
        return None
    v = counts.get(etype, 0)
    return v


def item_ids(rec_json):
    return [it.get("item_id") for it in (rec_json or {}).get("items", [])]


def id_of(x):
    """'item' or {'item_id': 'item', ...} -> 'item'."""
    if isinstance(x, dict):
        return x.get("item_id")
    return x


def parse_metrics(text):
    """Prometheus text -> list of (name, labels dict, value float)."""
    out = []
    line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?\s*$')
    lab_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = line_re.match(line)
        if not m:
            continue
        labels = dict(lab_re.findall(m.group(2) or ""))
        v = m.group(3)
        try:
            val = float(v.replace("Inf", "inf"))
        except ValueError:
            continue
        out.append((m.group(1), labels, val))
    return out


def metric_sum(samples, name, **match):
    """Sum of samples with this name whose labels match (value or callable)."""
    total = 0.0
    for n, labels, v in samples:
        if n != name:
            continue
        ok = True
        for k, want in match.items():
            have = labels.get(k)
            if callable(want):
                if have is None or not want(have):
                    ok = False
                    break
            elif have != want:
                ok = False
                break
        if ok:
            total += v
    return total


# ---------------------------------------------------------------- test base

_ANY = object()

class RecdTestCase(unittest.TestCase):
    """Base class: optionally one server per class (server_args), helpers to
    start more servers per test, assertion helpers, and the server log appended
    to any failure report."""

    class_server = True
    server_args = []
    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        super(RecdTestCase, cls).setUpClass()
        cls.class_servers = []
        cls.server = None
        if not cls.class_server:
            return
        cls.class_tmp = make_temp_dir("recd-bb-%s-" % cls.__name__)
        cls.addClassCleanup(_cleanup_dir, cls.class_tmp)
        cls.server = Server(os.path.join(cls.class_tmp, "data"), cls.server_args,
                            name=cls.__name__)
        cls.class_servers.append(cls.server)
        cls.addClassCleanup(cls.server.kill)
        cls.server.start()
        try:
            cls.prepare()
        except Exception as e:
            _KEEP_LOGS[0] = True
            raise ServerError("%s.prepare failed: %r\n%s" % (cls.__name__, e,
                                                            cls.server.log_tail()))

    @classmethod
    def prepare(cls):
        """Hook: load class-wide data into cls.server."""

    def setUp(self):
        self.test_servers = []

    def new_server(self, args=(), data_dir=None, start=True, name=None):
        """A server owned by this test (killed in cleanup)."""
        if data_dir is None:
            tmp = make_temp_dir("recd-bb-t-")
            self.addCleanup(_cleanup_dir, tmp)
            data_dir = os.path.join(tmp, "data")
        s = Server(data_dir, args, name=name or self._testMethodName)
        self.test_servers.append(s)
        self.addCleanup(s.kill)
        if start:
            s.start()
        return s

    # attach server logs to failures
    def run(self, result=None):
        if result is None:
            return super(RecdTestCase, self).run(result)
        nf, ne = len(result.failures), len(result.errors)
        out = super(RecdTestCase, self).run(result)
        for lst, n0 in ((result.failures, nf), (result.errors, ne)):
            for i in range(n0, len(lst)):
                test, tb = lst[i]
                if test is self:
                    lst[i] = (test, tb + self._logs_text())
        return out

    def _logs_text(self):
        _KEEP_LOGS[0] = True
        parts = []
        servers = list(getattr(self, "class_servers", []) or []) + \
            list(getattr(self, "test_servers", []) or [])
        for s in servers:
            parts.append("\n----- server log: %s (%s) -----\n%s" % (s.name, s.log_path,
                                                                  s.log_tail(80)))
        return "".join(parts)

    # -- request + assertion helpers
    @property
    def srv(self):
        return self.server

    def ok(self, resp, status=200):
        self.assertEqual(resp.status, status, "expected %d: %s" % (status, resp.describe()))
        self.assertIsNotNone(resp.json, "response is not JSON (%s): %s"
                             % (resp.json_error, resp.describe()))
        return resp.json

    def assertError(self, resp, status, code, field=None, index=None, msg_contains=None):
        d = resp.describe()
        self.assertEqual(resp.status, status, "status: %s" % d)
        self.assertIsNotNone(resp.json, "error body is not JSON (%s): %s" % (resp.json_error, d))
        self.assertIsInstance(resp.json, dict, d)
        err = resp.json.get("error")
        self.assertIsInstance(err, dict, "no error object: %s" % d)
        self.assertEqual(err.get("code"), code, "error code: %s" % d)
        self.assertIsInstance(err.get("message"), str, "error message: %s" % d)
        self.assertTrue(err.get("message"), "empty error message: %s" % d)
        if field is not None:
            self.assertEqual(err.get("field"), field, "error field: %s" % d)
            self.assertIn(field, err["message"], "message should name the field: %s" % d)
        if index is not None:
            self.assertEqual(err.get("index"), index, "error index: %s" % d)
        if msg_contains is not None:
            self.assertIn(msg_contains, err["message"], d)
        return err

    def post_events(self, events, server=None, chunk=500):
        server = server or self.server
        return post_events(server, events, chunk, self)

    def features(self, user, server=None):
        server = server or self.server
        return self.ok(server.get(API + "/users/%s/features" % q(user)))

    def recs(self, user, n=10, server=None, **params):
        server = server or self.server
        path = API + "/recommendations/%s?%s" % (q(user), _qs(n=n, **params))
        return self.ok(server.get(path))

    def health(self, server=None):
        server = server or self.server
        return self.ok(server.get(API + "/health"))

    def check_rec_shape(self, rec, n=None, user_id=_ANY, msg=""):
        """Common shape of a recommendation response; returns the item ids.
        n: exact item count expected; user_id: expected user_id (None for
        anonymous requests)."""
        self.assertIsInstance(rec, dict, msg)
        self.assertIn("recommendation_id", rec, msg)
        self.assertIsInstance(rec["recommendation_id"], str, msg)
        self.assertTrue(rec["recommendation_id"], msg)
        self.assertIn("user_id", rec, msg)
        if user_id is not _ANY:
            self.assertEqual(rec["user_id"], user_id, msg)
        items = rec.get("items")
        self.assertIsInstance(items, list, msg)
        ids = [it.get("item_id") for it in items]
        self.assertEqual(len(ids), len(set(ids)), "duplicate items %s %s" % (ids, msg))
        scores = []
        for it in items:
            self.assertIsInstance(it.get("item_id"), str, msg)
            self.assertIsInstance(it.get("score"), (int, float), "%r %s" % (it, msg))
            self.assertFalse(isinstance(it.get("score"), bool))
            self.assertTrue(math.isfinite(it["score"]), "%r %s" % (it, msg))
            scores.append(it["score"])
            self.assertIsInstance(it.get("reasons"), list, "%r %s" % (it, msg))
            for r in it["reasons"]:
                self.assertIsInstance(r, str, "%r %s" % (it, msg))
        self.assertEqual(scores, sorted(scores, reverse=True),
                         "items not ranked by descending score: %s %s" % (items, msg))
        if n is not None:
            self.assertEqual(len(items), n, "expected %d items, got %s %s" % (n, ids, msg))
        return ids


def _qs(**params):
    pairs = []
    for k, v in params.items():
        if v is None:
            continue
        if isinstance(v, (list, tuple)):
            pairs.extend((k, x) for x in v)
        else:
            pairs.append((k, v))
    return urllib.parse.urlencode(pairs)


qs = _qs


def post_events(server, events, chunk=500, tc=None):
    total = 0
    for i in range(0, len(events), chunk):
        part = events[i:i + chunk]
        r = server.post(API + "/events", {"events": part})
        if r.status != 200 or not isinstance(r.json, dict) or r.json.get("accepted") != len(part):
            msg = "posting %d events failed: %s" % (len(part), r.describe())
            if tc is not None:
                tc.fail(msg)
            raise AssertionError(msg)
        total += len(part)
    return total


def _cleanup_dir(path):
    if path not in _TEMP_DIRS and not os.path.exists(path):
        return
    _TEMP_DIRS.discard(path)
    if os.environ.get("RECD_KEEP_DATA"):
        sys.stderr.write("keeping %s\n" % path)
        return
    shutil.rmtree(path, ignore_errors=True)
