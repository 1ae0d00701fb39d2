#!/usr/bin/env python3
"""The legitimate sender during an attack: posts signed webhook events at a steady rate, each on a
fresh connection, and records every request's latency and status.

Fresh connections, because that is how a webhook sender that delivers one event at a time usually
behaves, and because it is the case a connection cap endangers: a keep-alive connection opened
before the attack never meets the cap again, so it would prove nothing.

Usage: legit_client.py PORT SECRET SECONDS RATE_PER_S OUT_JSON
Writes {"requests", "ok", "success_pct", "p50_ms", "p99_ms", "failures": {kind: n}} to OUT_JSON and
one summary line to stdout. Success is a 2xx answer within the per-request timeout (10 s).
"""
import hashlib
import hmac
import http.client
import json
import sys
import threading
import time
import uuid

port, secret, seconds, rate, out = (int(sys.argv[1]), sys.argv[2].encode(), float(sys.argv[3]),
                                    float(sys.argv[4]), sys.argv[5])
timeout_s = 10.0
results = []  # (latency seconds, status or failure kind)
lock = threading.Lock()


def post_one():
    body = ('{"id":"%s","event_type":"CASE_STATUS_CHANGED","object_id":"%s","object_type":"CASE"}'
            % (uuid.uuid4(), uuid.uuid4())).encode()
    signature = hmac.new(secret, body, hashlib.sha256).hexdigest()
    start = time.monotonic()
    outcome = None
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        conn.request("POST", "/webhooks/certn", body=body,
                     headers={"Content-Type": "application/json", "X-Signature": signature,
                              "Connection": "close"})
        response = conn.getresponse()
        response.read()
        outcome = response.status
    except (OSError, http.client.HTTPException) as error:
        outcome = type(error).__name__
    finally:
        conn.close()
    with lock:
        results.append((time.monotonic() - start, outcome))


# Open loop: a request starts every 1/rate seconds whether or not the previous one has answered,
# so a stalled server cannot slow the sender down and hide its own latency.
threads = []
interval = 1.0 / rate
begin = time.monotonic()
n = 0
while True:
    due = begin + n * interval
    if due - begin >= seconds:
        break
    now = time.monotonic()
    if due > now:
        time.sleep(due - now)
    thread = threading.Thread(target=post_one)
    thread.start()
    threads.append(thread)
    n += 1
for thread in threads:
    thread.join()

ok = sorted(latency for latency, outcome in results if isinstance(outcome, int) and 200 <= outcome < 300)
failures = {}
for _, outcome in results:
    if not (isinstance(outcome, int) and 200 <= outcome < 300):
        failures[str(outcome)] = failures.get(str(outcome), 0) + 1
all_latencies = sorted(latency for latency, _ in results)


def percentile(values, p):
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))] * 1000.0


summary = {
    "requests": len(results),
    "ok": len(ok),
    "success_pct": 100.0 * len(ok) / len(results) if results else 0.0,
    # Latency over every request, failed ones included (a refused connection is fast but no use).
    "p50_ms": percentile(all_latencies, 50),
    "p99_ms": percentile(all_latencies, 99),
    "failures": failures,
}
with open(out, "w") as f:
    json.dump(summary, f)
print("legit: %(requests)d requests, %(ok)d ok (%(success_pct).2f%%), p50 %(p50_ms).1f ms, "
      "p99 %(p99_ms).1f ms, failures %(failures)s" % summary)
