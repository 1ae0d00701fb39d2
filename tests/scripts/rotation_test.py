"""Posts signed webhook events over one keep-alive connection until told to stop, for
rotation_test.sh. Each round reads the phase file and posts with the secrets the phase names,
writing "<phase> <secret> <status>" per POST. A dropped connection (any exception) is written as
"<phase> <secret> dropped: <error>" and ends the run with exit 1: the connection must survive
every reload.

usage: rotation_test.py PORT PATH CASE_ID PHASE_FILE LOG_FILE
phases: old (old secret only), both (old and new), new (new only), after (new, then old, which
must now be refused), stop."""
import hashlib
import hmac
import http.client
import itertools
import sys
import time

port, path, case_id, phase_file, log_file = sys.argv[1:6]
SECRETS = {"old": b"old-webhook-secret", "new": b"new-webhook-secret"}
PHASES = {"old": ["old"], "both": ["old", "new"], "new": ["new"], "after": ["new", "old"]}

connection = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
with open(log_file, "a", buffering=1) as log:
    for n in itertools.count():
        with open(phase_file) as f:
            phase = f.read().strip()
        if phase == "stop":
            break
        for secret in PHASES[phase]:
            body = ('{"id":"evt-rotation-%d-%s","event_type":"CASE_STATUS_CHANGED",'
                    '"object_id":"%s","object_type":"CASE"}' % (n, secret, case_id)).encode()
            signature = hmac.new(SECRETS[secret], body, hashlib.sha256).hexdigest()
            try:
                connection.request("POST", path, body=body, headers={
                    "Content-Type": "application/json", "X-Signature": signature})
                response = connection.getresponse()
                response.read()
            except Exception as error:  # noqa: BLE001 - any failure is the finding
                log.write("%s %s dropped: %r\n" % (phase, secret, error))
                sys.exit(1)
            log.write("%s %s %d\n" % (phase, secret, response.status))
        time.sleep(0.02)
