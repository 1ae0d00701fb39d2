#!/usr/bin/env python3
"""Writes N pre-signed webhook events for wrk, one per line: "<hex signature> <json body>"."""
import hashlib
import hmac
import sys
import uuid

count, secret, out = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3]
types = ["CASE_STATUS_CHANGED", "CHECK_STATUS_CHANGED", "CASE_REPORT_READY"]
with open(out, "w") as f:
    for i in range(count):
        body = ('{"id":"%s","event_type":"%s","object_id":"%s","object_type":"CASE",'
                '"created":"2026-11-28T12:00:00Z"}' % (uuid.uuid4(), types[i % 3], uuid.uuid4()))
        sig = hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()
        f.write(sig + " " + body + "\n")
