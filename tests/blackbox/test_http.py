"""HTTP/1.1 on the wire: keep-alive, pipelining, HTTP/1.0, Expect: 100-continue,
chunked bodies, slow clients, and malformed requests (each refused with a JSON
error that names the problem, the connection closed, nothing stored). Raw
sockets, so the bytes are exactly what a client could send."""

import json
import socket
import time

from harness import API, RecdTestCase, ev, now_s

MAX_BODY = 65536


def event_body(user, item="h_item", etype="view"):
    return json.dumps(ev(user, item, etype, now_s() - 60)).encode()


def post_head(path, body_len, extra=b""):
    return (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(body_len).encode() + b"\r\n" + extra + b"\r\n")


class Wire(object):
    """One raw connection; reads answers framed by Content-Length."""

    def __init__(self, port, timeout=10):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def _fill(self):
        chunk = self.s.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def answer(self):
        """(status, headers{lower: value}, body bytes)"""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        hdrs = {}
        for ln in lines[1:]:
            k, v = ln.split(":", 1)
            hdrs[k.strip().lower()] = v.strip()
        n = int(hdrs.get("content-length", "0"))
        if status == 100:
            return status, hdrs, b""
        while len(self.buf) < n:
            self._fill()
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, hdrs, body

    def closed(self, wait=5):
        """True if the server closes the connection (EOF) within `wait` s."""
        self.s.settimeout(wait)
        try:
            while True:
                chunk = self.s.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def close(self):
        self.s.close()


class HttpWireTest(RecdTestCase):
    server_args = ["--max-body", str(MAX_BODY)]

    @classmethod
    def prepare(cls):
        r = cls.server.put(API + "/items/h_item", {"categories": ["c"]})
        assert r.status == 200, r.describe()

    def wire(self):
        w = Wire(self.server.port)
        self.addCleanup(w.close)
        return w

    def total(self, user):
        r = self.server.get(API + "/users/%s/features" % user)
        return r.json["total"] if r.status == 200 else 0

    def events_count(self):
        return self.health()["events"]

    def assertWireError(self, answer, status, code, field=None):
        st, hdrs, body = answer
        self.assertEqual(st, status, body)
        self.assertEqual(hdrs.get("content-type"), "application/json")
        err = json.loads(body)["error"]
        self.assertEqual(err["code"], code, body)
        self.assertTrue(err["message"], body)
        if field is not None:
            self.assertEqual(err.get("field"), field, body)
        return err

    # ------------------------------------------------------------ good clients
    def test_pipelined_requests_answer_in_order(self):
        """Three requests in one packet: three answers, in order; the POST's
        effect is visible to the GET behind it (read-your-writes)."""
        w = self.wire()
        body = event_body("h_pipe")
        w.send(b"GET " + API.encode() + b"/health HTTP/1.1\r\nHost: t\r\n\r\n" +
               post_head(API + "/events", len(body)) + body +
               b"GET " + API.encode() + b"/users/h_pipe/features HTTP/1.1\r\nHost: t\r\n\r\n")
        st1, _, b1 = w.answer()
        st2, _, b2 = w.answer()
        st3, _, b3 = w.answer()
        self.assertEqual((st1, st2, st3), (200, 200, 200), (b1, b2, b3))
        self.assertIn("status", json.loads(b1))
        self.assertEqual(json.loads(b2), {"accepted": 1})
        self.assertEqual(json.loads(b3)["total"], 1)

    def test_keep_alive_many_requests_one_connection(self):
        w = self.wire()
        for i in range(50):
            body = event_body("h_ka")
            w.send(post_head(API + "/events", len(body)) + body)
            st, hdrs, b = w.answer()
            self.assertEqual(st, 200, b)
            self.assertNotIn("connection", hdrs)
        self.assertEqual(self.total("h_ka"), 50)

    def test_http10_closes_unless_keep_alive(self):
        w = self.wire()
        w.send(b"GET " + API.encode() + b"/health HTTP/1.0\r\n\r\n")
        st, hdrs, _ = w.answer()
        self.assertEqual(st, 200)
        self.assertTrue(w.closed(), "HTTP/1.0 without keep-alive must close")
        w2 = self.wire()
        for _ in range(2):
            w2.send(b"GET " + API.encode() + b"/health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            st, hdrs, _ = w2.answer()
            self.assertEqual(st, 200)
            self.assertEqual(hdrs.get("connection", "").lower(), "keep-alive")

    def test_connection_close_is_honoured(self):
        w = self.wire()
        w.send(b"GET " + API.encode() + b"/health HTTP/1.1\r\nConnection: close\r\n\r\n"
               b"GET " + API.encode() + b"/health HTTP/1.1\r\n\r\n")
        st, hdrs, _ = w.answer()
        self.assertEqual(st, 200)
        self.assertEqual(hdrs.get("connection"), "close")
        self.assertTrue(w.closed())
        self.assertEqual(w.buf, b"", "a request after Connection: close was answered")

    def test_expect_100_continue(self):
        w = self.wire()
        body = event_body("h_expect")
        w.send(post_head(API + "/events", len(body), b"Expect: 100-continue\r\n"))
        st, _, _ = w.answer()
        self.assertEqual(st, 100, "the server should invite the body")
        w.send(body)
        st, _, b = w.answer()
        self.assertEqual(st, 200, b)
        self.assertEqual(self.total("h_expect"), 1)

    def test_chunked_body(self):
        w = self.wire()
        body = event_body("h_chunked")
        parts = [body[:10], body[10:11], body[11:]]
        raw = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\nX-Trailer: y\r\n\r\n"
        w.send(b"POST " + API.encode() + b"/events HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n" + raw)
        st, _, b = w.answer()
        self.assertEqual(st, 200, b)
        self.assertEqual(self.total("h_chunked"), 1)
        # the connection is still good
        w.send(b"GET " + API.encode() + b"/health HTTP/1.1\r\n\r\n")
        self.assertEqual(w.answer()[0], 200)

    def test_slow_client_byte_by_byte(self):
        w = self.wire()
        body = event_body("h_slow")
        raw = post_head(API + "/events", len(body)) + body
        for i in range(0, len(raw), 7):
            w.send(raw[i:i + 7])
            time.sleep(0.002)
        st, _, b = w.answer()
        self.assertEqual(st, 200, b)
        self.assertEqual(self.total("h_slow"), 1)

    def test_slow_reader_gets_every_answer(self):
        """Pipelined requests whose answers do not fit the socket buffers: the
        server queues what the socket does not take and goes on once it
        drains; every answer arrives whole and in order."""
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", self.server.port))
        w = Wire.__new__(Wire)
        w.s, w.buf = s, b""
        self.addCleanup(w.close)
        pair = (b"GET /metrics HTTP/1.1\r\n\r\n"
                b"GET " + API.encode() + b"/items/h_item HTTP/1.1\r\n\r\n")
        w.send(pair * 40)
        time.sleep(1.0)  # nothing read meanwhile: the server's writes back up
        for i in range(40):
            st, hdrs, body = w.answer()
            self.assertEqual(st, 200)
            self.assertTrue(body.startswith(b"# HELP"), body[:60])
            st, hdrs, body = w.answer()
            self.assertEqual(st, 200)
            self.assertEqual(json.loads(body)["item_id"], "h_item")

    def test_many_connections_pipelined_all_answered_in_order(self):
        """Answers to requests that are not cheap are corked and sent together
        at the end of the worker's turn: with many connections each sending a
        pipelined burst, every connection gets every answer, whole and in
        order, and nothing waits for another request to arrive."""
        conns = [self.wire() for _ in range(12)]
        for i, w in enumerate(conns):
            reqs = b""
            for k in range(15):
                reqs += b"GET /metrics HTTP/1.1\r\n\r\n" if k % 3 == 0 else (
                    b"GET " + API.encode() + b"/recommendations/h_c%d?n=%d HTTP/1.1\r\n\r\n" % (i, 1 + k))
            w.send(reqs)
        for i, w in enumerate(conns):
            for k in range(15):
                st, _, body = w.answer()
                self.assertEqual(st, 200, (i, k, body[:80]))
                if k % 3 == 0:
                    self.assertTrue(body.startswith(b"# HELP"), body[:60])
                else:
                    self.assertEqual(json.loads(body)["user_id"], "h_c%d" % i)
            w.s.settimeout(0.2)  # and nothing more
            with self.assertRaises(socket.timeout):
                w.s.recv(1)

    def test_half_closed_client_gets_its_answers(self):
        """A client that shuts down its sending side after its requests (nc -N,
        some HTTP/1.0 clients) still gets every answer, then the close; the
        durable write among them is answered after it is stored."""
        body = event_body("h_half")
        s = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        self.addCleanup(s.close)
        s.sendall(b"GET " + API.encode() + b"/health HTTP/1.1\r\n\r\n" +
                  post_head(API + "/events", len(body)) + body +
                  b"GET " + API.encode() + b"/users/h_half/features HTTP/1.1\r\n\r\n" +
                  b"GET " + API.encode() + b"/hea")  # and the start of one never finished
        s.shutdown(socket.SHUT_WR)
        w = Wire.__new__(Wire)
        w.s, w.buf = s, b""
        self.assertEqual(w.answer()[0], 200)
        st, _, b = w.answer()
        self.assertEqual((st, json.loads(b)), (200, {"accepted": 1}))
        st, _, b = w.answer()
        self.assertEqual(st, 200)
        self.assertEqual(json.loads(b)["total"], 1)
        self.assertTrue(w.closed())
        self.assertEqual(w.buf, b"")

    def test_head_has_length_but_no_body(self):
        g = self.server.get(API + "/health")
        w = self.wire()
        w.send(b"HEAD " + API.encode() + b"/items/h_item HTTP/1.1\r\n\r\n"
               b"GET " + API.encode() + b"/items/h_item HTTP/1.1\r\n\r\n")
        # HEAD's answer has Content-Length but no body: read the head only
        while b"\r\n\r\n" not in w.buf:
            w._fill()
        head, w.buf = w.buf.split(b"\r\n\r\n", 1)
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
        length = [ln for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length:")]
        self.assertTrue(length, head)
        st, _, body = w.answer()  # the GET right behind it
        self.assertEqual(st, 200)
        self.assertEqual(int(length[0].split(b":")[1]), len(body))
        self.assertEqual(g.status, 200)

    def test_client_gone_mid_body_loses_nothing_else(self):
        before = self.events_count()
        w = Wire(self.server.port)
        body = event_body("h_gone")
        w.send(post_head(API + "/events", len(body)) + body[:len(body) // 2])
        w.close()
        time.sleep(0.2)
        self.assertEqual(self.events_count(), before)
        self.assertEqual(self.total("h_gone"), 0)
        self.health()

    # ------------------------------------------------------------ bad clients
    def test_malformed_request_line(self):
        for raw in (b"GARBAGE\r\n\r\n", b"GET /x HTTP/1.1 extra\r\n\r\n", b"G(T / HTTP/1.1\r\n\r\n",
                    b"GET nopath HTTP/1.1\r\n\r\n", b"GET / HTTX/1.1\r\n\r\n"):
            w = self.wire()
            w.send(raw)
            err = self.assertWireError(w.answer(), 400, "bad_request")
            self.assertIn(err.get("field"), ("request", "version"), err)
            self.assertTrue(w.closed(), raw)

    def test_unsupported_version(self):
        w = self.wire()
        w.send(b"GET " + API.encode() + b"/health HTTP/2.0\r\n\r\n")
        self.assertWireError(w.answer(), 505, "http_version_not_supported", "version")

    def test_bad_headers(self):
        before = self.events_count()
        body = event_body("h_badhdr")
        cases = (
            (b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", 400, "bad_request"),
            (b"Transfer-Encoding: gzip\r\n", 501, "not_implemented"),
            (b"Content-Length: 12x\r\n", 400, "bad_request"),
            (b"Content-Length: %d\r\nContent-Length: 3\r\n" % len(body), 400, "bad_request"),
            (b" folded: value\r\n", 400, "bad_request"),
            (b"No Colon Here\r\n", 400, "bad_request"),
            (b"Expect: something-else\r\n", 417, "expectation_failed"),
        )
        for extra, status, code in cases:
            w = self.wire()
            w.send(b"POST " + API.encode() + b"/events HTTP/1.1\r\nHost: t\r\n" + extra +
                   (b"Content-Length: %d\r\n" % len(body) if b"Content-Length" not in extra and
                    b"Transfer-Encoding" not in extra else b"") + b"\r\n" + body)
            err = self.assertWireError(w.answer(), status, code)
            self.assertTrue(err.get("field"), err)
            self.assertTrue(w.closed(), extra)
        self.assertEqual(self.events_count(), before)
        self.assertEqual(self.total("h_badhdr"), 0)

    def test_headers_too_large(self):
        w = self.wire()
        w.send(b"GET " + API.encode() + b"/health HTTP/1.1\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n")
        self.assertWireError(w.answer(), 431, "headers_too_large", "headers")

    def test_declared_body_far_over_the_limit(self):
        """A Content-Length far over max_body is refused from the head alone."""
        before = self.events_count()
        w = self.wire()
        w.send(post_head(API + "/events", 10 ** 9) + b'{"user_id":')
        err = self.assertWireError(w.answer(), 413, "body_too_large")
        self.assertIn("max_body", err["message"])
        self.assertTrue(w.closed())
        self.assertEqual(self.events_count(), before)

    def test_malformed_chunked_body(self):
        before = self.events_count()
        w = self.wire()
        w.send(b"POST " + API.encode() + b"/events HTTP/1.1\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n")
        self.assertWireError(w.answer(), 400, "bad_request", "body")
        self.assertEqual(self.events_count(), before)

    def test_server_survives_garbage(self):
        for raw in (b"\x00\x01\x02\r\n\r\n", b"\r\n" * 1000, b"GET /" + b"a" * 100000, b"\xff" * 5000 + b"\r\n\r\n"):
            w = Wire(self.server.port)
            try:
                w.send(raw)
                w.closed(wait=2)
            except (ConnectionResetError, BrokenPipeError):
                pass
            w.close()
        self.health()
