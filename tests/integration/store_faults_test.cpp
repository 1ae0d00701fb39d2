// Storage faults met by the real archiving pipeline: the workers, a real PostgreSQL (TEST_PG_DSN)
// and certn-sim in-process, archiving into a faulty_store that wraps a filesystem_store in a
// temporary directory. A retryable failure is retried, a permanent one ends the job dead, a crash
// mid-write leaves only a staging file (which remove_stale_staging takes away), and a write slower
// than the lease completes under one lease. Every wait polls with a deadline.
#include <doctest/doctest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <future>
#include <pqxx/pqxx>
#include <sstream>
#include <thread>

#include "archive/workflows.hpp"
#include "db/pool.hpp"
#include "ops/metrics.hpp"
#include "queue/queue.hpp"
#include "service/pipeline.hpp"
#include "simulator.hpp"
#include "storage/digest.hpp"
#include "storage/faulty_store.hpp"
#include "storage/filesystem_store.hpp"
#include "support/harness.hpp"
#include "support/sim_fixture.hpp"

using namespace archiver;
using namespace std::chrono_literals;
using storage::fault;
using storage::fault_plan;
using storage::key_contains;
using testing::eventually;
using testing::running_sim;
using testing::scratch_database;
namespace fs = std::filesystem;

namespace {

constexpr auto deadline = 60s;

certn_sim::settings sim_settings() {
  certn_sim::settings config;
  config.report_delay = 100ms;
  config.default_file_size = 100'000;
  return config;
}

// As tests/scripts/archive_test.sh configures `serve` for certn-sim.
config::config archiver_config(const std::string& dsn, const running_sim& sim,
                               const fs::path& root) {
  config::config cfg;
  cfg.webhook.secrets = {"sim-webhook-secret"};
  cfg.certn.base_url = sim.base_url();
  cfg.certn.api_key = "sim-key";
  cfg.certn.allow_plain_http = true;
  cfg.certn.allow_special_addresses = true;
  cfg.certn.download_hosts = {"127.0.0.1"};
  cfg.certn.requests_per_minute = 6000;
  cfg.database.url = dsn;
  cfg.database.pool_size = 4;
  cfg.database.connect_timeout = 2s;
  cfg.storage.path = root.string();
  cfg.workers.report_poll_delay = 1s;
  cfg.workers.backoff_base = 1s;
  cfg.workers.reconcile_interval = 0s;
  cfg.workers.poll_interval = 200ms;
  return cfg;
}

class temp_dir {
 public:
  temp_dir() {
    std::string name = (fs::temp_directory_path() / "store-faults.XXXXXX").string();
    REQUIRE(::mkdtemp(name.data()) != nullptr);
    path_ = name;
  }
  ~temp_dir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// The archiving side of `serve` on its own io thread, over a faulty_store wrapping a
// filesystem_store at `root`. Declaration order is destruction order in reverse, as in serve.cpp.
class archiving_rig {
  // Runs the coroutine `task` makes on the io thread; its std::future.
  template <class F>
  auto on_io(F task) {
    return asio::co_spawn(io_, std::move(task), asio::use_future);
  }

 public:
  archiving_rig(const config::config& cfg, const fs::path& root)
      : database_(cfg.database.url, cfg.database.pool_size,
                  static_cast<int>(cfg.database.connect_timeout.count())),
        disk_(root),
        faulty_(disk_),
        pipeline_(io_, cfg, database_, registry_, faulty_) {
    thread_ = std::thread([this] { io_.run(); });
    try {
      on_io([this]() -> awaitable<void> { co_await pipeline_.start(); }).get();
    } catch (...) {
      stop();
      throw;
    }
  }
  ~archiving_rig() {
    on_io([this]() -> awaitable<void> { co_await pipeline_.drain(); }).get();
    stop();
  }

  storage::faulty_store& faults() { return faulty_; }

  // The store's remove_stale_staging, run on the io thread as the pipeline runs it.
  std::size_t remove_stale_staging(std::chrono::seconds older_than) {
    return on_io([this, older_than]() -> awaitable<std::size_t> {
             const std::size_t removed = co_await faulty_.remove_stale_staging(older_than);
             co_return removed;
           })
        .get();
  }

 private:
  void stop() {
    work_.reset();
    io_.stop();
    thread_.join();
  }

  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  ops::registry registry_;
  db::pool database_;
  storage::filesystem_store disk_;
  storage::faulty_store faulty_;
  service::pipeline pipeline_;
  std::thread thread_;
};

// One case in certn-sim with two checks of one file each, moved to COMPLETE; its id.
std::string completed_case(const running_sim& sim) {
  const std::vector<std::string> ids =
      testing::create_cases(sim.port(), R"({"count":1,"files_per_check":1})");
  REQUIRE(ids.size() == 1);
  const testing::sim_reply moved =
      testing::sim_request(sim.port(), beast::http::verb::post, "/_sim/cases/" + ids[0] + "/status",
                           R"({"status":"COMPLETE"})");
  REQUIRE(moved.status == 200);
  return ids[0];
}

// What a webhook about the case would lead to: a sync_case job.
void enqueue_sync(const scratch_database& db, const std::string& case_id) {
  pqxx::connection conn(db.dsn());
  pqxx::work tx(conn);
  queue::enqueue(tx, {archive::sync_case_kind, case_id,
                      R"({"case_id":")" + case_id + R"(","source":"test"})", 10});
  tx.commit();
}

std::int64_t count(const scratch_database& db, const std::string& sql) {
  return std::stoll(db.scalar(sql));
}

// The report, both files and a manifest recorded, and no job left to run.
bool archived(const scratch_database& db) {
  return count(db, "SELECT count(*) FROM artifacts WHERE kind = 'report'") == 1 &&
         count(db, "SELECT count(*) FROM artifacts WHERE kind = 'supplementary_file'") == 2 &&
         count(db, "SELECT count(*) FROM artifacts WHERE kind = 'manifest'") == 1 &&
         count(db, "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running', 'failed')") == 0;
}

std::string file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Every artifact row against the bytes at its key: present, same size, same sha256.
void check_objects_match_rows(const scratch_database& db, const fs::path& root) {
  pqxx::connection conn(db.dsn());
  pqxx::nontransaction tx(conn);
  const pqxx::result rows = tx.exec("SELECT object_key, sha256, size_bytes FROM artifacts");
  REQUIRE(rows.size() >= 6);
  for (const auto& row : rows) {
    const fs::path at = root / row[0].as<std::string>();
    INFO("artifact " << at.string());
    REQUIRE(fs::is_regular_file(at));
    const std::string bytes = file_bytes(at);
    CHECK(static_cast<std::int64_t>(bytes.size()) == row[2].as<std::int64_t>());
    CHECK(storage::sha256_hex(bytes) == row[1].as<std::string>());
  }
}

// Files named as staged_file names them (".<stem>.<hex>.tmp"), anywhere under `root`.
std::vector<fs::path> staging_files(const fs::path& root) {
  std::vector<fs::path> found;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file() && name.starts_with(".") && name.ends_with(".tmp")) {
      found.push_back(entry.path());
    }
  }
  return found;
}

// The key a staging file was meant for: ".<name>.<hex>.tmp" in the key's directory.
fs::path final_path_of(const fs::path& staging) {
  std::string name = staging.filename().string();
  name = name.substr(1, name.size() - 1 - 4);  // no leading '.', no ".tmp"
  return staging.parent_path() / name.substr(0, name.rfind('.'));
}

std::string job_field(const scratch_database& db, const std::string& kind,
                      const std::string& field) {
  return db.scalar("SELECT " + field + " FROM jobs WHERE kind = '" + kind + "' ORDER BY id DESC");
}

}  // namespace

TEST_CASE("a retryable failure of a put is retried and the case ends archived whole") {
  scratch_database db;
  running_sim sim(sim_settings());
  temp_dir dir;
  archiving_rig rig(archiver_config(db.dsn(), sim, dir.path()), dir.path());

  const std::string id = completed_case(sim);
  // The first download of a supplementary file to reach the store fails, once.
  rig.faults().set_plan(
      {key_contains("cases/" + id + "/supplementary-files/"), 1, fault::fail_retryable});
  enqueue_sync(db, id);

  REQUIRE(eventually([&] { return archived(db); }, deadline));
  CHECK(rig.faults().counts().injected == 1);
  CHECK(job_field(db, "archive_supplementary", "state") == "succeeded");
  CHECK(job_field(db, "archive_supplementary", "attempts") == "2");
  check_objects_match_rows(db, dir.path());
  CHECK(staging_files(dir.path()).empty());
  CHECK(count(db, "SELECT count(*) FROM jobs WHERE state = 'dead'") == 0);
}

TEST_CASE("a permanent failure of a put ends the job dead, naming the operation and the key") {
  scratch_database db;
  running_sim sim(sim_settings());
  temp_dir dir;
  archiving_rig rig(archiver_config(db.dsn(), sim, dir.path()), dir.path());

  const std::string id = completed_case(sim);
  rig.faults().set_plan({key_contains("cases/" + id + "/report/"), 0, fault::fail_permanent});
  enqueue_sync(db, id);

  REQUIRE(eventually([&] { return job_field(db, "fetch_report", "state") == "dead"; }, deadline));
  const std::string report_id = db.scalar("SELECT id FROM report_files");
  REQUIRE_FALSE(report_id.empty());
  const std::string key = "cases/" + id + "/report/" + report_id + ".pdf";
  const std::string error = job_field(db, "fetch_report", "last_error");
  INFO("last_error: " << error);
  CHECK(error.find("put \"" + key + "\"") != std::string::npos);
  CHECK(job_field(db, "fetch_report", "attempts") == "1");
  CHECK_FALSE(fs::exists(dir.path() / key));
  CHECK(count(db, "SELECT count(*) FROM artifacts WHERE kind = 'report'") == 0);
  CHECK(rig.faults().counts().injected == 1);
  // The rest of the case is archived; the failed download left no staging file behind.
  REQUIRE(eventually(
      [&] {
        return count(db, "SELECT count(*) FROM artifacts WHERE kind = 'supplementary_file'") == 2 &&
               count(db, "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')") == 0;
      },
      deadline));
  CHECK(staging_files(dir.path()).empty());
}

TEST_CASE("a crash mid-write leaves only a staging file, which stale-staging removal takes") {
  scratch_database db;
  running_sim sim(sim_settings());
  temp_dir dir;
  config::config cfg = archiver_config(db.dsn(), sim, dir.path());
  // The crashed job waits for the test to move it forward, not for its backoff.
  cfg.workers.backoff_base = 600s;
  cfg.workers.backoff_max = 600s;
  archiving_rig rig(cfg, dir.path());

  const std::string id = completed_case(sim);
  rig.faults().set_plan({key_contains("cases/" + id + "/supplementary-files/"), 0, fault::crash});
  enqueue_sync(db, id);

  // The crash, and everything else settled, so that no live write is staging right now.
  REQUIRE(eventually(
      [&] {
        return job_field(db, "archive_supplementary", "state") == "failed" &&
               count(db, "SELECT count(*) FROM artifacts WHERE kind = 'report'") == 1 &&
               count(db, "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')") == 0;
      },
      deadline));
  CHECK(rig.faults().counts().crashed == 1);
  CHECK(job_field(db, "archive_supplementary", "last_error").find("simulated crash") !=
        std::string::npos);
  const std::vector<fs::path> left = staging_files(dir.path());
  REQUIRE(left.size() == 1);
  CHECK(fs::file_size(left[0]) == sim_settings().default_file_size / 2);
  const fs::path target = final_path_of(left[0]);
  INFO("final key: " << target.string());
  CHECK(target.parent_path().parent_path().filename() == "supplementary-files");
  CHECK_FALSE(fs::exists(target));
  CHECK(count(db, "SELECT count(*) FROM artifacts WHERE kind = 'supplementary_file'") == 0);

  CHECK(rig.remove_stale_staging(0s) == 1);
  CHECK(staging_files(dir.path()).empty());

  rig.faults().clear_plan();
  db.scalar("UPDATE jobs SET run_at = now() WHERE state = 'failed' RETURNING id");
  REQUIRE(eventually([&] { return archived(db); }, deadline));
  CHECK(rig.faults().counts().crashed == 1);
  CHECK(fs::is_regular_file(target));
  check_objects_match_rows(db, dir.path());
  CHECK(staging_files(dir.path()).empty());
}

TEST_CASE("a write slower than the lease completes under the same lease") {
  scratch_database db;
  running_sim sim(sim_settings());
  temp_dir dir;
  config::config cfg = archiver_config(db.dsn(), sim, dir.path());
  cfg.workers.lease_seconds = 2;
  archiving_rig rig(cfg, dir.path());

  const std::string id = completed_case(sim);
  // Each of the two files takes 3 s to store: the job runs twice as long as its lease.
  fault_plan slow{key_contains("cases/" + id + "/supplementary-files/"), 0, fault::none};
  slow.delay = 3s;
  rig.faults().set_plan(slow);
  enqueue_sync(db, id);

  REQUIRE(eventually([&] { return archived(db); }, deadline));
  CHECK(rig.faults().counts().delayed == 2);
  CHECK(rig.faults().counts().failed == 0);
  // One attempt: the heartbeat kept the lease, no rescuer took the job from under the write.
  CHECK(job_field(db, "archive_supplementary", "attempts") == "1");
  CHECK(count(db, "SELECT count(*) FROM jobs WHERE attempts <> 1") == 0);
  CHECK(std::stod(job_field(db, "archive_supplementary",
                            "extract(epoch FROM finished_at - created_at)")) >= 6.0);
  check_objects_match_rows(db, dir.path());
}

TEST_CASE("protect_case waits for the case's running jobs only, then protects each live object") {
  scratch_database db;
  running_sim sim(sim_settings());
  temp_dir dir;
  archiving_rig rig(archiver_config(db.dsn(), sim, dir.path()), dir.path());

  const std::string id = completed_case(sim);
  enqueue_sync(db, id);
  REQUIRE(eventually([&] { return archived(db); }, deadline));
  REQUIRE(rig.faults().protect_calls().empty());  // nothing asked it while archiving

  // A hold and a date, as `hold` and the purge run's dating leave them; one job of the case
  // running (a worker elsewhere holds it), one queued far ahead (a paused backfill, say), and the
  // protect_case they queue.
  const std::string case_literal = "'" + id + "'";
  db.scalar("UPDATE cases SET retain_until = now() + interval '400 days' WHERE id = " +
            case_literal + " RETURNING id");
  db.scalar("INSERT INTO legal_holds (case_id, reason, held_by) VALUES (" + case_literal +
            ", 'litigation', 'test') RETURNING id");
  const std::string payload = "'{\"case_id\": \"" + id + "\", \"source\": \"test\"}'";
  const std::string running = db.scalar(
      "INSERT INTO jobs (kind, key, payload, state, lease_owner, lease_expires, lease_token) "
      "VALUES ('archive_supplementary', " +
      case_literal + ", " + payload +
      ", 'running', 'elsewhere', now() + interval '1 hour', 1) RETURNING id");
  db.scalar("INSERT INTO jobs (kind, key, payload, run_at) VALUES ('sync_case', " + case_literal +
            ", " + payload + ", now() + interval '1 day') RETURNING id");
  db.scalar("INSERT INTO jobs (kind, key, payload) VALUES ('protect_case', " + case_literal +
            ", '{}') RETURNING id");

  REQUIRE(eventually(
      [&] {
        return job_field(db, "protect_case", "COALESCE(last_error, '')")
            .starts_with("waiting for 1 running job(s) of the case");
      },
      deadline));
  // Waiting uses no attempt (0 between runs, 1 while one runs).
  CHECK(std::stoi(job_field(db, "protect_case", "attempts")) <= 1);
  CHECK(rig.faults().protect_calls().empty());

  // The run ends: protect_case goes on, although the queued job is still to run.
  db.scalar("UPDATE jobs SET state = 'succeeded', finished_at = now() WHERE id = " + running +
            " RETURNING id");
  REQUIRE(
      eventually([&] { return job_field(db, "protect_case", "state") == "succeeded"; }, deadline));
  const std::vector<storage::protect_call> calls = rig.faults().protect_calls();
  std::vector<std::string> keys;
  for (const storage::protect_call& call : calls) {
    INFO("protected " << call.key);
    CHECK(call.protection.legal_hold);
    REQUIRE(call.protection.retain_until);
    const auto days_ahead = std::chrono::floor<std::chrono::days>(*call.protection.retain_until -
                                                                  std::chrono::system_clock::now());
    CHECK(days_ahead.count() >= 399);
    CHECK(days_ahead.count() <= 400);
    keys.push_back(call.key);
  }
  std::sort(keys.begin(), keys.end());
  const std::string live = db.scalar(
      "SELECT string_agg(object_key, ',' ORDER BY object_key) FROM artifacts WHERE case_id = " +
      case_literal + " AND purged_at IS NULL");
  std::string asked;
  for (const std::string& key : keys) {
    asked += (asked.empty() ? "" : ",") + key;
  }
  CHECK(asked == live);
  CHECK(keys.size() >= 4);  // report, two files, manifest at least
  CHECK(job_field(db, "sync_case", "state") == "queued");
}

TEST_CASE("a manifest whose stored bytes differ from its record is written again") {
  scratch_database db;
  running_sim sim(sim_settings());
  temp_dir dir;
  archiving_rig rig(archiver_config(db.dsn(), sim, dir.path()), dir.path());

  const std::string id = completed_case(sim);
  enqueue_sync(db, id);
  REQUIRE(eventually([&] { return archived(db); }, deadline));
  // Other bytes at the key, as a put that was never recorded leaves them (a run killed between
  // its put and its record, or one that lost its lease meanwhile).
  const fs::path manifest =
      dir.path() / db.scalar("SELECT object_key FROM artifacts WHERE kind = 'manifest'");
  const std::string recorded = file_bytes(manifest);
  std::ofstream(manifest, std::ios::binary | std::ios::trunc) << "{\"stale\": true}";
  {
    pqxx::connection conn(db.dsn());
    pqxx::work tx(conn);
    queue::enqueue(tx,
                   {"write_manifest", id, R"({"case_id":")" + id + R"(","source":"test"})", 10});
    tx.commit();
  }
  REQUIRE(eventually([&] { return archived(db); }, deadline));
  CHECK(job_field(db, "write_manifest", "state") == "succeeded");
  CHECK(file_bytes(manifest) == recorded);
  check_objects_match_rows(db, dir.path());
}

namespace {

// A completed case whose first manifest put waits 2 s and then meets `late_put`: meanwhile its run
// loses its lease, as when its database did not answer for longer than the lease, and the job is
// rescued (its next run an hour away), or merged into a pending successor when `merged`.
void check_stale_manifest_run(fault late_put, bool merged) {
  scratch_database db;
  running_sim sim(sim_settings());
  temp_dir dir;
  archiving_rig rig(archiver_config(db.dsn(), sim, dir.path()), dir.path());

  const std::string id = completed_case(sim);
  fault_plan slow{key_contains("cases/" + id + "/manifest.json"), 1, late_put};
  slow.delay = 2s;
  rig.faults().set_plan(slow);
  enqueue_sync(db, id);
  REQUIRE(eventually([&] { return rig.faults().counts().delayed >= 1; }, deadline));
  if (!merged) {
    CHECK(db.scalar("UPDATE jobs SET state = 'failed', lease_owner = NULL, lease_expires = NULL, "
                    "run_at = now() + interval '1 hour' WHERE kind = 'write_manifest' AND "
                    "state = 'running' RETURNING state") == "failed");
  } else {
    db.scalar("INSERT INTO jobs (kind, key, payload, run_at) VALUES ('write_manifest', '" + id +
              "', '{}', now() + interval '1 hour') RETURNING id");
    CHECK(db.scalar("UPDATE jobs SET state = 'cancelled', lease_owner = NULL, "
                    "lease_expires = NULL, finished_at = now(), last_error = 'merged' "
                    "WHERE kind = 'write_manifest' AND state = 'running' RETURNING state") ==
          "cancelled");
  }
  // The late put ends; its run records nothing, and asks for a fresh look at once (the job
  // keeps its place, not an hour away), which writes and records the manifest.
  REQUIRE(eventually([&] { return archived(db); }, deadline));
  CHECK(rig.faults().counts().delayed == 2);
  CHECK(rig.faults().counts().injected == (late_put == fault::none ? 0 : 1));
  CHECK(count(db,
              "SELECT count(*) FROM audit_log WHERE action = 'artifact_written' AND detail "
              "LIKE 'manifest %'") == 1);
  check_objects_match_rows(db, dir.path());
}

}  // namespace

TEST_CASE("a manifest write that lost its lease records nothing; a fresh look writes it") {
  SUBCASE("rescued by another replica") { check_stale_manifest_run(fault::none, false); }
  SUBCASE("rescued and merged into a pending successor (which cancels the job)") {
    check_stale_manifest_run(fault::none, true);
  }
}

TEST_CASE("a manifest put that failed after its run lost its lease also queues a fresh look") {
  // A put that failed here may still land later (an S3 PUT that timed out on our side), over the
  // manifest of a newer run.
  check_stale_manifest_run(fault::fail_retryable, false);
}

TEST_CASE("Certn's Retry-After counts from its answer, not from the end of the run that went on") {
  scratch_database db;
  // Every supplementary-information call answers 429 with a Retry-After of 20 s until the test
  // lifts it; the other endpoints answer.
  certn_sim::settings config = sim_settings();
  config.faults.endpoint = "cases.supplementary_information";
  config.faults.rate_429 = 1;
  config.faults.retry_after_rate = 1;
  config.faults.retry_after_seconds = 20;
  running_sim sim(config);
  temp_dir dir;
  archiving_rig rig(archiver_config(db.dsn(), sim, dir.path()), dir.path());

  const std::string id = completed_case(sim);
  enqueue_sync(db, id);
  REQUIRE(eventually(
      [&] {
        const testing::sim_reply stats =
            testing::sim_request(sim.port(), beast::http::verb::get, "/_sim/stats");
        return testing::num(testing::json(stats.body)["injected_429"]) >= 1;
      },
      deadline));
  REQUIRE(
      testing::sim_request(sim.port(), beast::http::verb::post, "/_sim/faults", R"({"rate_429":0})")
          .status == 200);
  REQUIRE(eventually([&] { return archived(db); }, deadline));
  // archive_supplementary waited the 20 s for its files listing, archived the files, and then
  // owed nothing more of that wait: its next run (which got the information) came within the
  // backoff, not 20 s after the first run ended.
  const double took = std::stod(
      job_field(db, "archive_supplementary", "extract(epoch FROM finished_at - created_at)"));
  CHECK(took >= 19.0);
  CHECK(took < 36.0);  // 40 s when the wait counted from the end of the run
  CHECK(job_field(db, "archive_supplementary", "attempts") == "1");  // the 429 used none
  check_objects_match_rows(db, dir.path());
}
