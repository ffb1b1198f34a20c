#!/usr/bin/env python3
"""Load test of `ember serve` under bad input: well-formed requests from many threads while
other clients send malformed JSON, huge bodies, unknown users and items, huge k, and hold
connections open without finishing their request (slow clients).

    python3 scripts/load_serve.py --addr 127.0.0.1:8080 --users 1,2,3 --items 1,2,3 \
        --requests 20000 --threads 32

Prints the requests sent, the errors among the well-formed ones (the goal is 0), the answers
to the bad ones by status, and latency percentiles. Standard library only.
"""

import argparse
import http.client
import json
import random
import socket
import threading
import time
from collections import Counter


def post(addr, path, body, timeout=60):
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        data = body if isinstance(body, bytes) else body.encode()
        conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status
    except Exception as e:  # a reset or a timeout is an error of the request
        return type(e).__name__
    finally:
        conn.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--addr", required=True)
    p.add_argument("--users", required=True, help="comma-separated known user ids")
    p.add_argument("--items", required=True, help="comma-separated known item ids")
    p.add_argument("--requests", type=int, default=20000)
    p.add_argument("--threads", type=int, default=32)
    p.add_argument("--slow", type=int, default=50, help="slow clients held open")
    p.add_argument("--bad-threads", type=int, default=4)
    a = p.parse_args()
    users = [int(u) for u in a.users.split(",")]
    items = [int(i) for i in a.items.split(",")]
    host, port = a.addr.rsplit(":", 1)

    stop = threading.Event()
    # Slow clients: a request head sent a byte at a time, never finished.
    slow_outcomes = Counter()

    def slow_client():
        s = socket.create_connection((host, int(port)))
        s.settimeout(60)
        started = time.time()
        head = b"POST /v1/recommend HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
        try:
            for byte in head:
                if stop.is_set():
                    break
                s.send(bytes([byte]))
                time.sleep(0.5)
            s.recv(1024)
            slow_outcomes["closed by the server after %ds" % round(time.time() - started, -1)] += 1
        except Exception as e:
            slow_outcomes[type(e).__name__] += 1
        finally:
            s.close()

    slow = [threading.Thread(target=slow_client, daemon=True) for _ in range(a.slow)]
    for t in slow:
        t.start()

    bad_statuses = Counter()
    bad_lock = threading.Lock()
    bad_bodies = [
        ("/v1/recommend", "not json"),
        ("/v1/recommend", '{"user": '),
        ("/v1/recommend", json.dumps({"user": -987654321})),
        ("/v1/recommend", json.dumps({"user": users[0], "k": 10**9})),
        ("/v1/recommend", json.dumps({"user": users[0], "k": "ten"})),
        ("/v1/audience", json.dumps({"item": -987654321})),
        ("/v1/recommend", b"{" + b" " * (2 << 20) + b"}"),
        ("/v1/nowhere", "{}"),
    ]

    def bad_client():
        rng = random.Random(1)
        while not stop.is_set():
            path, body = rng.choice(bad_bodies)
            status = post(a.addr, path, body)
            with bad_lock:
                bad_statuses[status] += 1

    bad = [threading.Thread(target=bad_client, daemon=True) for _ in range(a.bad_threads)]
    for t in bad:
        t.start()

    latencies = []
    errors = Counter()
    lock = threading.Lock()
    per_thread = a.requests // a.threads

    def good_client(seed):
        rng = random.Random(seed)
        mine, wrong = [], Counter()
        for n in range(per_thread):
            if n % 5 == 4:
                path, body = "/v1/audience", {"item": rng.choice(items), "k": 50}
            else:
                path, body = "/v1/recommend", {"user": rng.choice(users), "k": 10}
            started = time.perf_counter()
            status = post(a.addr, path, json.dumps(body))
            mine.append(time.perf_counter() - started)
            if status != 200:
                wrong[status] += 1
        with lock:
            latencies.extend(mine)
            errors.update(wrong)

    started = time.time()
    good = [threading.Thread(target=good_client, args=(k,)) for k in range(a.threads)]
    for t in good:
        t.start()
    for t in good:
        t.join()
    elapsed = time.time() - started
    stop.set()
    for t in bad:
        t.join(timeout=70)
    for t in slow:
        t.join(timeout=70)
    latencies.sort()
    sent = len(latencies)
    pct = lambda q: 1000 * latencies[min(sent - 1, int(q * sent))]
    print(f"well-formed requests: {sent} in {elapsed:.1f} s ({sent / elapsed:.0f}/s) from {a.threads} threads")
    print(f"errors among them: {sum(errors.values())} {dict(errors)}")
    print(f"latency ms: p50 {pct(0.5):.1f}, p99 {pct(0.99):.1f}, max {1000 * latencies[-1]:.1f}")
    print(f"bad requests meanwhile: {sum(bad_statuses.values())} by status {dict(sorted(bad_statuses.items(), key=str))}")
    print(f"slow clients ({a.slow}): {dict(slow_outcomes)}")


if __name__ == "__main__":
    main()
