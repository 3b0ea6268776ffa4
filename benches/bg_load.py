#!/usr/bin/env python3
"""Steady HTTP load for benches/bluegreen.sh: counts failed requests by class.

usage: bg_load.py PORT MODE WORKERS STOPFILE
MODE: close      a new connection per request (`Connection: close`)
      keepalive  one persistent connection per worker; any error counts, then reconnects
      retry      keepalive, but a request that fails on a reused connection before any byte
                 of the answer arrived is sent again once on a new connection (what browsers
                 and most HTTP client libraries do for idempotent requests)
Runs until STOPFILE exists, then prints one JSON line with the counts.
"""

import http.client
import json
import os
import socket
import sys
import threading
import time

port, mode, workers, stopfile = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
lock = threading.Lock()
counts = {"ok": 0, "non2xx": 0, "connect": 0, "reset_or_eof": 0, "timeout": 0, "retried": 0}


def add(key, n=1):
    with lock:
        counts[key] += n


def classify(e):
    if isinstance(e, socket.timeout):
        return "timeout"
    if isinstance(e, ConnectionRefusedError):
        return "connect"
    return "reset_or_eof"


def once_close():
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/healthz", headers={"Connection": "close"})
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


def worker():
    conn = None
    reused = False
    while not os.path.exists(stopfile):
        if mode == "close":
            try:
                status = once_close()
                add("ok" if 200 <= status < 300 else "non2xx")
            except Exception as e:  # noqa: BLE001 - every failure is counted by class
                add(classify(e))
            continue
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            reused = False
        try:
            conn.request("GET", "/healthz")
            r = conn.getresponse()
            r.read()
            add("ok" if 200 <= r.status < 300 else "non2xx")
            reused = True
            if r.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except Exception as e:  # noqa: BLE001
            conn.close()
            conn = None
            stale = reused and isinstance(
                e, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
            )
            if mode == "retry" and stale:
                add("retried")
                try:
                    status = once_close()
                    add("ok" if 200 <= status < 300 else "non2xx")
                except Exception as e2:  # noqa: BLE001
                    add(classify(e2))
            else:
                add(classify(e))


start = time.monotonic()
threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
for t in threads:
    t.start()
for t in threads:
    t.join()
counts["seconds"] = round(time.monotonic() - start, 2)
counts["failed"] = counts["non2xx"] + counts["connect"] + counts["reset_or_eof"] + counts["timeout"]
print(json.dumps(counts))
