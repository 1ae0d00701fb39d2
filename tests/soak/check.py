#!/usr/bin/env python3
"""The soak's invariants that need the database and certn-sim side by side (tests/soak/soak.sh).

  check.py DSN SIM_URL LIVE_PIDS SAMPLE_CASES SAMPLE_FILE STATS_FILE

Prints one line "VIOLATION: ..." per violation of
  1. every case with an acknowledged event (a webhook_events row) that Certn now shows in an
     archive status is archived here (same status, a report, the supplementary information, every
     file Certn lists, a manifest) or has a dead job with a non-empty reason; and every webhook
     certn-sim saw answered 2xx is a webhook_events row;
  3. no job is `running` without a live lease (unexpired, held by a live replica: LIVE_PIDS is a
     comma-separated list of the replicas' process ids);
and some counts as key=value lines into STATS_FILE. SAMPLE_FILE gets up to SAMPLE_CASES archived
cases' artifacts as "key<TAB>sha256<TAB>size<TAB>fresh URL at certn-sim, or -" for the byte checks
that need awscli (invariant 2). The faults of the API must be off. Exit status 0 even with
violations (the caller counts them); 1 when the check itself cannot run.
"""
import json
import random
import subprocess
import sys
import urllib.request

ARCHIVE_STATUSES = {"COMPLETE", "CANCELLED"}
API_KEY = "sim-key"


def query(dsn, sql):
    wrapped = f"SELECT coalesce(json_agg(t), '[]') FROM ({sql}) t"
    out = subprocess.run(["psql", "-w", "-qtAX", dsn, "-c", wrapped], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def get_json(url, api=False):
    request = urllib.request.Request(url)
    if api:
        request.add_header("Authorization", f"Api-Key {API_KEY}")
    # Faults are off, but a slow answer or a refused connection must not end the check.
    for attempt in range(5):
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())
        except Exception:  # noqa: BLE001 - retried, then raised
            if attempt == 4:
                raise
    return None


def main():
    dsn, sim, live_pids, sample_cases, sample_file, stats_file = sys.argv[1:7]
    live = {pid for pid in live_pids.split(",") if pid}
    violations = []

    def violation(text):
        violations.append(text)
        print(f"VIOLATION: {text}", flush=True)

    events = query(dsn, "SELECT id, event_type, object_id FROM webhook_events")
    cases = {row["id"]: row for row in query(dsn, "SELECT id, overall_status FROM cases")}
    artifacts = query(dsn, "SELECT case_id, kind, source_id, object_key, sha256, size_bytes "
                           "FROM artifacts")
    jobs = query(dsn, "SELECT j.id, j.kind, j.key, j.state, j.attempts, j.last_error, "
                      "j.lease_owner, j.lease_expires::text AS lease_expires, "
                      "(j.lease_expires IS NULL OR j.lease_expires <= now()) AS lease_over, "
                      "coalesce(r.case_id, j.key) AS case_id "
                      "FROM jobs j LEFT JOIN report_files r ON r.id = j.key")

    history = {row["case_id"]: row["statuses"] for row in query(
        dsn, "SELECT case_id, string_agg(status, ' > ' ORDER BY id) AS statuses "
             "FROM case_status_history GROUP BY case_id")}

    # Acknowledged by us as certn-sim saw it: some attempt answered 2xx.
    webhooks = get_json(f"{sim}/_sim/webhooks")["webhooks"]
    stored = {event["id"] for event in events}
    acknowledged = [w for w in webhooks if any(200 <= s < 300 for s in w["statuses"])]
    lost = [w for w in acknowledged if w["event_id"] not in stored]
    for w in lost:
        violation(f"webhook {w['event_id']} ({w['event_type']}, {w['object_id']}) was answered "
                  f"{w['statuses']} but is not in webhook_events")

    by_case = {}
    for a in artifacts:
        by_case.setdefault(a["case_id"], []).append(a)
    jobs_by_case = {}
    for j in jobs:
        jobs_by_case.setdefault(j["case_id"], []).append(j)

    acknowledged_cases = sorted({event["object_id"] for event in events})
    archived, dead_cases, open_cases = [], 0, 0
    fresh_urls = {}
    for case_id in acknowledged_cases:
        certn = get_json(f"{sim}/_sim/cases/{case_id}")
        status = certn.get("overall_status")
        if status not in ARCHIVE_STATUSES:
            open_cases += 1
            continue
        dead = [j for j in jobs_by_case.get(case_id, []) if j["state"] == "dead"]
        if dead:
            dead_cases += 1
            for j in dead:
                if not (j["last_error"] or "").strip():
                    violation(f"case {case_id}: job {j['id']} {j['kind']}({j['key']}) is dead "
                              "without a reason")
            continue
        problems = []
        here = cases.get(case_id, {}).get("overall_status")
        if here != status:
            problems.append(f"status {here} here, {status} at Certn")
        mine = by_case.get(case_id, [])
        kinds = {}
        for a in mine:
            kinds.setdefault(a["kind"], []).append(a)
        for kind in ("report", "supplementary_information", "manifest"):
            if kind not in kinds:
                problems.append(f"no {kind}")
        files = get_json(f"{sim}/api/public/cases/{case_id}/supplementary-files/", api=True)
        by_source = {a["source_id"]: a for a in kinds.get("supplementary_file", [])}
        for check in files.get("checks", []):
            for f in check.get("files", []):
                if f["id"] not in by_source:
                    problems.append(f"file {f['id']} of check {check['id']} not archived")
                else:
                    fresh_urls[by_source[f["id"]]["object_key"]] = f["url"]
        if problems:
            case_jobs = ", ".join(
                f"{j['kind']}#{j['id']} {j['state']}"
                + (f" ({j['attempts']} attempt(s), last error: {j['last_error']})"
                   if j["last_error"] else "")
                for j in sorted(jobs_by_case.get(case_id, []), key=lambda j: j["id"]))
            violation(f"case {case_id} is {status} at Certn ({len(certn.get('checks', []))} checks), "
                      f"{sum(1 for e in events if e['object_id'] == case_id)} acknowledged events: "
                      f"{', '.join(problems)}; statuses seen here: {history.get(case_id)}; "
                      f"jobs: {case_jobs or 'none'}")
        else:
            archived.append(case_id)

    for j in jobs:
        if j["state"] != "running":
            continue
        owner_pid = (j["lease_owner"] or "::").split(":")[1]
        if j["lease_over"] or owner_pid not in live:
            violation(f"job {j['id']} {j['kind']}({j['key']}) is running without a live lease: "
                      f"owner {j['lease_owner']} (live replicas: {sorted(live)}), lease until "
                      f"{j['lease_expires']}")

    # The byte checks' sample: every artifact of some archived cases, with the URL certn-sim
    # serves it at now (files: from the listing above; reports: a fresh report-file answer).
    rng = random.Random(7)
    sample = rng.sample(archived, min(int(sample_cases), len(archived)))
    with open(sample_file, "w", encoding="utf-8") as out:
        for case_id in sample:
            for a in by_case[case_id]:
                url = fresh_urls.get(a["object_key"], "-")
                if a["kind"] == "report":
                    report = get_json(f"{sim}/api/public/cases/report-files/{a['source_id']}/",
                                      api=True)
                    url = report.get("pdf_url") or "-"
                out.write(f"{a['object_key']}\t{a['sha256']}\t{a['size_bytes']}\t{url}\n")

    states = {}
    for j in jobs:
        states[j["state"]] = states.get(j["state"], 0) + 1
    with open(stats_file, "w", encoding="utf-8") as out:
        out.write(f"events={len(events)}\n")
        out.write(f"acknowledged_deliveries={len(acknowledged)}\n")
        out.write(f"events_lost={len(lost)}\n")
        out.write(f"acknowledged_cases={len(acknowledged_cases)}\n")
        out.write(f"archived_cases={len(archived)}\n")
        out.write(f"dead_cases={dead_cases}\n")
        out.write(f"open_cases={open_cases}\n")
        out.write(f"cases_here={len(cases)}\n")
        out.write(f"artifacts={len(artifacts)}\n")
        for state in ("succeeded", "dead", "cancelled"):
            out.write(f"jobs_{state}={states.get(state, 0)}\n")
        # The next periodic reconcile is always queued: not pending work.
        pending = sum(1 for j in jobs if j["state"] in ("queued", "failed", "running")
                      and j["kind"] != "reconcile")
        out.write(f"jobs_pending={pending}\n")
        out.write(f"webhooks_sent={len(webhooks)}\n")
        out.write(f"webhooks_duplicated={sum(1 for w in webhooks if w['duplicate'])}\n")
        out.write(f"webhooks_dropped={sum(1 for w in webhooks if w['outcome'] == 'dropped')}\n")
        out.write(f"webhooks_failed={sum(1 for w in webhooks if w['outcome'] == 'failed')}\n")
        out.write(f"violations={len(violations)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
