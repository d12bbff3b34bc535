#!/usr/bin/env python3
"""fuzz/wire.py — black-box fuzzing of recd's HTTP connections (src/http/conn.c).

libFuzzer covers the parser (fuzz/http_fuzz.c); this drives the whole connection
layer of a running server: mutated requests (valid ones with bytes changed, cut,
repeated), pipelined 1-4 to a connection, sent in random pieces, sometimes
half-closed. At the end the server must still answer, and its log must hold no
sanitizer report. Build with `make SAN=1` and point it at build/san/recd.

    python3 fuzz/wire.py build/san/recd --seconds 120 [--seed 7]
"""
import argparse
import os
import random
import socket
import subprocess
import sys
import tempfile
import time

EV = b'{"user_id":"u%d","item_id":"i%d","event_type":"view"}'
SEEDS = [
    b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /api/v1/recommendations/u1?n=5&category=a&exclude=i1 HTTP/1.1\r\n\r\n",
    b"POST /api/v1/events HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n"
    + (EV % (1, 2)).ljust(50),
    b"POST /api/v1/events HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n" + (EV % (3, 4))[:16]
    + b"\r\n0\r\n\r\n",
    b"PUT /api/v1/items/i9 HTTP/1.1\r\nContent-Length: 20\r\nExpect: 100-continue\r\n\r\n"
    b'{"categories":["c"]}',
    b"HEAD /api/v1/items/i9 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\n\r\n",
    b"DELETE /api/v1/items/i9 HTTP/1.1\r\n\r\n",
]


def mutate(rng, b):
    b = bytearray(b)
    for _ in range(rng.randint(0, 4)):
        op = rng.random()
        if op < 0.3 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op < 0.5 and b:
            del b[rng.randrange(len(b))]
        elif op < 0.7:
            b.insert(rng.randrange(len(b) + 1), rng.choice(b"\r\n :0123456789abcdefxX;{}\"%"))
        elif op < 0.85 and b:
            i = rng.randrange(len(b))
            j = min(len(b), i + rng.randint(1, 40))
            b[i:i] = b[i:j] * rng.randint(1, 5)
        else:
            b = b[:rng.randrange(len(b) + 1)]
    return bytes(b)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("recd")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    tmp = tempfile.mkdtemp(prefix="recd-wire-")
    port = free_port()
    logp = os.path.join(tmp, "server.log")
    env = dict(os.environ, ASAN_OPTIONS="abort_on_error=1:detect_leaks=1")
    with open(logp, "w") as log:
        p = subprocess.Popen([a.recd, "serve", "--data", os.path.join(tmp, "data"), "--listen",
                              "127.0.0.1:%d" % port, "--max-body", "4096", "--log-level", "warn"],
                             stdout=log, stderr=log, env=env)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            break
        except OSError:
            time.sleep(0.1)
    t0, n = time.time(), 0
    while time.time() - t0 < a.seconds and p.poll() is None:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            data = b"".join(mutate(rng, rng.choice(SEEDS)) for _ in range(rng.randint(1, 4)))
            i = 0
            while i < len(data):
                k = rng.randint(1, 200)
                s.sendall(data[i:i + k])
                i += k
                if rng.random() < 0.05:
                    time.sleep(0.001)
            if rng.random() < 0.3:
                s.shutdown(socket.SHUT_WR)
            s.settimeout(0.3)
            try:
                while s.recv(65536):
                    pass
            except (socket.timeout, ConnectionResetError):
                pass
            s.close()
        except (ConnectionResetError, BrokenPipeError, socket.timeout):
            pass
        n += 1
    answer = b""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /api/v1/health HTTP/1.1\r\n\r\n")
        answer = s.recv(100)
        s.close()
    except OSError as e:
        answer = repr(e).encode()
    alive = p.poll() is None
    if alive:
        p.terminate()
    rc = p.wait(timeout=120)
    text = open(logp, errors="replace").read()
    bad = any(m in text for m in ("Sanitizer", "runtime error"))
    ok = alive and answer.startswith(b"HTTP/1.1 200") and rc == 0 and not bad
    print("wire fuzz: seed %d, %d connections in %.0f s; server %s, health %r, exit %d, sanitizer report: %s"
          % (seed, n, time.time() - t0, "alive" if alive else "DEAD", answer[:15], rc, "YES" if bad else "no"))
    if not ok:
        print(text[-4000:])
        print("log and data kept in", tmp)
        return 1
    subprocess.call(["rm", "-rf", tmp])
    return 0


if __name__ == "__main__":
    sys.exit(main())
