#!/bin/bash
# serve as a process: TLS termination with a certificate made here (and re-read on SIGHUP), the
# admin listener carrying /healthz, /readyz and /metrics, the watchdog, and SIGTERM letting a
# request in flight finish.
source "$(dirname "$0")/fixture.sh"
create_database --migrate

# A CA and a server certificate for localhost, made at test time.
make_cert() {  # name common-name
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=test CA $1" \
    -keyout "$scratch/$1-ca.key" -out "$scratch/$1-ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$2" -keyout "$scratch/$1.key" \
    -out "$scratch/$1.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$scratch/$1.ext"
  openssl x509 -req -in "$scratch/$1.csr" -CA "$scratch/$1-ca.pem" -CAkey "$scratch/$1-ca.key" \
    -CAcreateserial -days 1 -extfile "$scratch/$1.ext" -out "$scratch/$1.pem" 2>/dev/null
}
make_cert first "first.localhost"
make_cert second "second.localhost"
cp "$scratch/first.pem" "$scratch/server.pem"
cp "$scratch/first.key" "$scratch/server.key"

admin_port=$(free_port)
secret=serve-test-secret
socket="$scratch/notify.sock"
start_notify_listener "$socket" "$scratch/notify.log"

# /readyz is on the admin listener and the main one speaks TLS: READY=1 says it is up.
NOTIFY_SOCKET=$socket WATCHDOG_USEC=400000 CERTN_ARCHIVER_SERVER_ADMIN_LISTEN=127.0.0.1:$admin_port \
CERTN_ARCHIVER_SERVER_TLS_CERT_FILE=$scratch/server.pem CERTN_ARCHIVER_SERVER_TLS_KEY_FILE=$scratch/server.key \
CERTN_ARCHIVER_WEBHOOK_SECRETS=$secret CERTN_ARCHIVER_SERVER_SHUTDOWN_TIMEOUT_MS=10000 spawn_serve
wait_for grep -q 'READY=1' "$scratch/notify.log" || { cat "$scratch/serve.log"; fail "no READY=1"; }

url="https://localhost:$port/webhooks/certn"
body=$(curl -sS --cacert "$scratch/first-ca.pem" --resolve "localhost:$port:127.0.0.1" "$url?challenge=over-tls") ||
  fail "TLS challenge"
[[ $body == over-tls ]] || fail "TLS challenge answered '$body'"
pass "TLS termination with a verified certificate"
if curl -s -o /dev/null --resolve "localhost:$port:127.0.0.1" "$url?challenge=x"; then
  fail "curl accepted a certificate from an unknown CA"
fi
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$scratch/first-ca.pem" \
  --resolve "localhost:$port:127.0.0.1" "https://localhost:$port/metrics")
[[ $code == 404 ]] || fail "/metrics on the main listener answered $code, expected 404 with admin_listen set"
for path in healthz readyz metrics; do
  curl -sf "http://127.0.0.1:$admin_port/$path" >/dev/null || fail "admin /$path"
done
curl -s "http://127.0.0.1:$admin_port/metrics" | grep -q 'certn_archiver_http_requests_total{listener="main",route="/webhooks/certn",status="200"} 1' ||
  fail "metrics do not count the TLS request"
pass "admin listener serves /healthz, /readyz, /metrics; the main one does not"

pings() { [[ $(grep -c 'WATCHDOG=1' "$scratch/notify.log") -ge 3 ]]; }
wait_for pings || fail "fewer than 3 WATCHDOG=1 pings"
pass "WATCHDOG=1 pings at half of WATCHDOG_USEC"

# SIGHUP: the certificate on disk changes, new connections get the new one.
cp "$scratch/second.pem" "$scratch/server.pem"
cp "$scratch/second.key" "$scratch/server.key"
kill -HUP "$daemon_pid"
wait_for grep -q 'TLS certificate and key re-read' "$scratch/serve.log" || fail "SIGHUP not logged"
subject=$(openssl s_client -connect "127.0.0.1:$port" -servername localhost </dev/null 2>/dev/null |
  openssl x509 -noout -subject)
[[ $subject == *second.localhost* ]] || fail "after SIGHUP the server presents: $subject"
pass "SIGHUP re-reads the certificate"

# A request in flight when SIGTERM arrives is finished; then the process exits 0.
event='{"id":"evt-drain","event_type":"CASE_STATUS_CHANGED","object_id":"case-drain","object_type":"CASE"}'
signature=$(printf '%s' "$event" | openssl dgst -sha256 -hmac "$secret" -hex | sed 's/^.* //')
python3 - "$port" "$event" "$signature" "$daemon_pid" "$scratch/second-ca.pem" >"$scratch/drain.out" <<'PY'
import os, signal, socket, ssl, sys, time
port, body, signature, pid, ca = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3], int(sys.argv[4]), sys.argv[5]
context = ssl.create_default_context(cafile=ca)
conn = context.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
head = ("POST /webhooks/certn HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        "X-Signature: %s\r\nContent-Length: %d\r\n\r\n" % (signature, len(body))).encode()
conn.sendall(head + body[:10])
time.sleep(0.3)
os.kill(pid, signal.SIGTERM)
time.sleep(0.3)
conn.sendall(body[10:])
answer = b""
conn.settimeout(10)
while True:
    chunk = conn.recv(4096)
    if not chunk:
        break
    answer += chunk
print(answer.decode(errors="replace"))
PY
head -1 "$scratch/drain.out" | grep -q '200' || { cat "$scratch/drain.out" "$scratch/serve.log"; fail "request in flight at SIGTERM: $(head -1 "$scratch/drain.out")"; }
grep -qi 'connection: close' "$scratch/drain.out" || fail "the drained answer does not close the connection"
wait_serve_exit_0  # the client above sent the SIGTERM
[[ $(q "SELECT count(*) FROM webhook_events WHERE id = 'evt-drain'") == 1 ]] ||
  fail "the drained event is not stored"
pass "SIGTERM: the request in flight finished (200, stored), then exit 0"
