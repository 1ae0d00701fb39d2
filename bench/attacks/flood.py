#!/usr/bin/env python3
"""A connection flood: keeps TARGET connections open to 127.0.0.1:PORT, sending nothing, and opens a
new one (at most RATE a second) whenever the server closes one, for SECONDS.

Usage: flood.py PORT TARGET RATE SECONDS OUT_JSON
Writes to OUT_JSON what happened to the connections: how many were opened, how many the server
closed within 1 s of connecting (refused or shed at the cap) or later (a deadline), how many
connects failed or never completed, and the most open at once.
"""
import errno
import json
import selectors
import socket
import sys
import time

port, target, rate, seconds, out = (int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]),
                                    float(sys.argv[4]), sys.argv[5])
selector = selectors.DefaultSelector()
stats = {"target": target, "opened": 0, "established": 0, "closed_within_1s": 0,
         "closed_after_1s": 0, "connect_failed": 0, "open_at_end": 0, "max_open": 0}
started = {}  # socket -> monotonic connect time
established = set()


def open_one():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    code = sock.connect_ex(("127.0.0.1", port))
    stats["opened"] += 1
    if code not in (0, errno.EINPROGRESS):
        stats["connect_failed"] += 1
        sock.close()
        return
    started[sock] = time.monotonic()
    selector.register(sock, selectors.EVENT_WRITE)


def forget(sock):
    selector.unregister(sock)
    started.pop(sock, None)
    established.discard(sock)
    sock.close()


begin = time.monotonic()
budget = 0.0  # connections we may still open now, refilled at RATE a second
last = begin
while True:
    now = time.monotonic()
    if now - begin >= seconds:
        break
    budget = min(budget + (now - last) * rate, rate)
    last = now
    while len(started) < target and budget >= 1:
        open_one()
        budget -= 1
    for key, events in selector.select(timeout=0.01):
        sock = key.fileobj
        if sock not in established:
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error != 0:
                stats["connect_failed"] += 1
                forget(sock)
                continue
            established.add(sock)
            stats["established"] += 1
            selector.modify(sock, selectors.EVENT_READ)
            continue
        try:
            data = sock.recv(4096)
        except OSError:
            data = b""
        if not data:
            lifetime = time.monotonic() - started[sock]
            stats["closed_within_1s" if lifetime < 1.0 else "closed_after_1s"] += 1
            forget(sock)
    stats["max_open"] = max(stats["max_open"], len(established))

stats["open_at_end"] = len(established)
stats["never_established"] = len(started) - len(established)
for sock in list(started):
    forget(sock)
with open(out, "w") as f:
    json.dump(stats, f)
print("flood: %s" % json.dumps(stats))
