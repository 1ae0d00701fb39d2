// The purge against a real PostgreSQL and the filesystem store, where a script cannot time it: a
// legal hold placed while a case is being purged stops the purge before its next object, and the
// rows say exactly what is gone.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <pqxx/pqxx>
#include <random>
#include <string>

#include "records/purger.hpp"
#include "storage/filesystem_store.hpp"
#include "support/harness.hpp"

using namespace archiver;
namespace fs = std::filesystem;

namespace {

// The filesystem store, whose first remove() also places a legal hold on the case (as an
// operator would, in the middle of the purge).
class holding_store final : public storage::object_store {
 public:
  holding_store(const fs::path& root, std::string dsn, std::string case_id)
      : inner_(root), dsn_(std::move(dsn)), case_id_(std::move(case_id)) {}
  std::unique_ptr<storage::staged_file> stage(const std::string& key,
                                              std::uint64_t max_bytes) override {
    return inner_.stage(key, max_bytes);
  }
  awaitable<storage::put_result> put(const std::string& key, storage::staged_file& file,
                                     const std::string& content_type,
                                     const storage::object_protection& protection) override {
    co_return co_await inner_.put(key, file, content_type, protection);
  }
  awaitable<storage::put_result> put_bytes(const std::string& key, std::string bytes,
                                           const std::string& content_type,
                                           const storage::object_protection& protection) override {
    co_return co_await inner_.put_bytes(key, std::move(bytes), content_type, protection);
  }
  awaitable<storage::read_result> read_digest(const std::string& key) override {
    co_return co_await inner_.read_digest(key);
  }
  awaitable<storage::read_result> copy_to(const std::string& key,
                                          const fs::path& destination) override {
    co_return co_await inner_.copy_to(key, destination);
  }
  awaitable<storage::remove_result> remove(const std::string& key) override {
    if (removes_++ == 0) {
      pqxx::connection conn(dsn_);
      pqxx::work tx(conn);
      tx.exec_params("INSERT INTO legal_holds (case_id, reason, held_by) VALUES ($1, 'late', 'x')",
                     case_id_);
      tx.commit();
    }
    co_return co_await inner_.remove(key);
  }
  awaitable<std::optional<storage::store_failure>> protect(
      const std::string& key, const storage::object_protection& protection) override {
    co_return co_await inner_.protect(key, protection);
  }
  awaitable<storage::list_result> list(const std::string& prefix) override {
    co_return co_await inner_.list(prefix);
  }
  awaitable<std::optional<storage::store_failure>> check_protection() override {
    co_return co_await inner_.check_protection();
  }
  awaitable<std::size_t> remove_stale_staging(std::chrono::seconds older_than) override {
    co_return co_await inner_.remove_stale_staging(older_than);
  }
  std::string describe() const override { return "holding " + inner_.describe(); }
  int removes() const { return removes_; }

 private:
  storage::filesystem_store inner_;
  std::string dsn_;
  std::string case_id_;
  int removes_ = 0;
};

template <class T>
T run(asio::io_context& io, awaitable<T> work) {
  std::optional<T> out;
  std::exception_ptr escaped;
  asio::co_spawn(io, std::move(work), [&](std::exception_ptr error, T value) {
    escaped = error;
    out = std::move(value);
  });
  io.run();
  io.restart();
  if (escaped) {
    std::rethrow_exception(escaped);
  }
  return std::move(*out);
}

}  // namespace

TEST_CASE("a legal hold placed during a purge stops it before the next object") {
  testing::scratch_database scratch;
  const fs::path root =
      fs::temp_directory_path() / ("purge-test-" + std::to_string(std::random_device{}()));
  fs::create_directories(root / "cases/c1");
  {
    pqxx::connection conn(scratch.dsn());
    pqxx::work tx(conn);
    tx.exec(
        "INSERT INTO cases (id, overall_status, closed_at, retain_until, retention_rule) "
        "VALUES ('c1', 'COMPLETE', now() - interval '2 days', now() - interval '1 day', "
        "'COMPLETE=1d')");
    for (int i = 1; i <= 3; ++i) {
      const std::string key = "cases/c1/f" + std::to_string(i);
      std::ofstream(root / key) << "object " << i;
      tx.exec_params(
          "INSERT INTO artifacts (case_id, kind, object_key, sha256, size_bytes) "
          "VALUES ('c1', 'supplementary_file', $1, repeat('a', 64), 8)",
          key);
    }
    tx.commit();
  }
  asio::io_context io(1);
  db::pool database(scratch.dsn(), 1, 5);
  holding_store store(root, scratch.dsn(), "c1");
  records::purge_order order;
  order.case_id = "c1";
  order.purger = order.actor = "test";
  records::purge_tally tally;
  const records::purge_verdict verdict =
      run(io, records::purge_case(database, store, order, tally));
  database.stop();

  CHECK(verdict == records::purge_verdict::busy);
  CHECK(store.removes() == 1);  // the first object, before the hold was seen
  REQUIRE(tally.problems.size() == 1);
  CHECK(tally.problems[0].find("legal hold") != std::string::npos);
  CHECK(tally.cases == 0);
  CHECK(!fs::exists(root / "cases/c1/f1"));
  CHECK(fs::exists(root / "cases/c1/f2"));
  CHECK(fs::exists(root / "cases/c1/f3"));
  CHECK(scratch.scalar("SELECT string_agg(object_key, ',' ORDER BY id) FROM artifacts "
                       "WHERE purged_at IS NOT NULL") == "cases/c1/f1");
  CHECK(scratch.scalar("SELECT purged_at IS NULL AND purge_owner IS NULL FROM cases") == "t");
  CHECK(scratch.scalar("SELECT count(*) FROM audit_log WHERE action = 'purge'") == "0");
  fs::remove_all(root);
}
