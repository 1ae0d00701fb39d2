// The S3 store against a real S3 server: s3rver 4.0.4 (it checks SigV4), started by
// scripts/test.sh (scripts/s3.sh) and named by TEST_S3_ENDPOINT (bucket TEST_S3_BUCKET, default
// testbucket; credentials S3RVER/S3RVER). The store reaches the server through a small TCP relay
// in this test, which counts the requests it sees (multipart parts) and can be stopped like a
// server going away. One object is read back with awscli for an independent byte comparison.
#include "storage/s3_store.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "http/url.hpp"
#include "ops/clock.hpp"
#include "ops/logging.hpp"

using namespace archiver;
using namespace archiver::storage;
namespace fs = std::filesystem;

namespace {

constexpr std::uint64_t mib = 1024 * 1024;

std::string required_env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') {
    FAIL(std::string(name)
         << " is not set: scripts/test.sh starts s3rver (bash scripts/s3.sh start DIR PORT) "
            "and sets TEST_S3_ENDPOINT to the URL it prints");
  }
  return value;
}

std::string bucket() {
  const char* value = std::getenv("TEST_S3_BUCKET");
  return value != nullptr && *value != '\0' ? value : "testbucket";
}

// Runs `work` to completion on `io`; the relay sharing `io` keeps running meanwhile. The store's
// idle pooled connections keep timers on `io`, so it is stopped rather than run dry.
template <class T>
T run(asio::io_context& io, awaitable<T> work) {
  std::optional<T> out;
  std::exception_ptr escaped;
  io.restart();
  asio::co_spawn(io, std::move(work), [&](std::exception_ptr error, T result) {
    escaped = error;
    out = std::move(result);
    io.stop();
  });
  io.run();
  if (escaped) {
    std::rethrow_exception(escaped);
  }
  REQUIRE(out);
  return std::move(*out);
}

// A TCP relay from a port of its own to the S3 server. Counts occurrences of a few request
// markers in what clients send; stop() closes the listener and every connection, as a server
// that goes away would.
class relay {
 public:
  relay(asio::io_context& io, tcp::endpoint upstream)
      : io_(io),
        upstream_(upstream),
        acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    asio::co_spawn(io_, accept_loop(), [](std::exception_ptr error) {
      ops::log_exception("relay accept loop", error);
    });
  }
  unsigned short port() const { return acceptor_.local_endpoint().port(); }
  std::size_t seen(const std::string& marker) const {
    const auto it = counts_.find(marker);
    return it == counts_.end() ? 0 : it->second;
  }
  void count(std::string marker) { counts_[std::move(marker)] = 0; }
  void stop() {
    error_code ignored;
    acceptor_.close(ignored);
    for (const auto& socket : sockets_) {
      socket->close(ignored);
    }
  }

 private:
  awaitable<void> accept_loop() {
    for (;;) {
      auto client = std::make_shared<tcp::socket>(io_);
      error_code ec;
      co_await acceptor_.async_accept(*client, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        co_return;  // stopped
      }
      auto server = std::make_shared<tcp::socket>(io_);
      co_await server->async_connect(upstream_, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        continue;
      }
      sockets_.push_back(client);
      sockets_.push_back(server);
      const auto log = [](std::exception_ptr error) { ops::log_exception("relay pump", error); };
      asio::co_spawn(io_, pump(client, server, true), log);
      asio::co_spawn(io_, pump(server, client, false), log);
    }
  }

  awaitable<void> pump(std::shared_ptr<tcp::socket> from, std::shared_ptr<tcp::socket> to,
                       bool from_client) {
    std::vector<char> buffer(64 * 1024);
    std::string carry;
    for (;;) {
      error_code ec;
      const std::size_t got = co_await from->async_read_some(
          asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        break;
      }
      if (from_client) {
        // Markers may straddle reads: search the end of the previous read too, counting only
        // matches that end in the new bytes.
        const std::string window = carry + std::string(buffer.data(), got);
        for (auto& [marker, total] : counts_) {
          for (std::size_t at = window.find(marker); at != std::string::npos;
               at = window.find(marker, at + 1)) {
            total += at + marker.size() > carry.size() ? 1 : 0;
          }
        }
        carry = window.substr(window.size() - std::min<std::size_t>(window.size(), 64));
      }
      co_await asio::async_write(*to, asio::buffer(buffer.data(), got),
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        break;
      }
    }
    error_code ignored;
    to->shutdown(tcp::socket::shutdown_send, ignored);
  }

  asio::io_context& io_;
  tcp::endpoint upstream_;
  tcp::acceptor acceptor_;
  std::vector<std::shared_ptr<tcp::socket>> sockets_;
  std::map<std::string, std::size_t> counts_;
};

tcp::endpoint endpoint_of(const std::string& url_text) {
  std::string error;
  const auto parsed = http::parse_url(url_text, &error);
  REQUIRE_MESSAGE(parsed, "TEST_S3_ENDPOINT: " << error);
  return tcp::endpoint(asio::ip::make_address(parsed->host), parsed->port);
}

config::storage_settings settings_for(const std::string& endpoint, const fs::path& dir) {
  config::storage_settings settings;
  settings.backend = "s3";
  settings.path = dir.string();
  settings.s3.endpoint = endpoint;
  settings.s3.bucket = bucket();
  settings.s3.region = "us-east-1";
  settings.s3.access_key_id = "S3RVER";
  settings.s3.secret_access_key = "S3RVER";
  settings.s3.path_style = true;
  settings.s3.multipart_threshold_bytes = 5 * mib;
  settings.s3.part_size_bytes = 5 * mib;  // S3's minimum
  settings.s3.max_parallel_parts = 2;
  settings.s3.timeout = std::chrono::milliseconds(20'000);
  return settings;
}

std::string random_bytes(std::size_t size, std::uint64_t seed) {
  std::mt19937_64 generator(seed);
  std::string out(size, '\0');
  for (char& c : out) {
    c = static_cast<char>(generator() & 0xFF);
  }
  return out;
}

std::string unique_prefix() {
  std::random_device device;
  return "it-" + std::to_string(device()) + "-" + std::to_string(device()) + "/";
}

std::unique_ptr<staged_file> staged(object_store& store, const std::string& key,
                                    const std::string& bytes) {
  auto file = store.stage(key, bytes.size());
  // Written in pieces, as a download would.
  for (std::size_t at = 0; at < bytes.size(); at += 1 << 20) {
    file->write(std::string_view(bytes).substr(at, 1 << 20));
  }
  file->finish();
  return file;
}

std::string read_whole(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The object as awscli reads it (independent of our client and signer).
std::string read_with_awscli(const std::string& endpoint, const std::string& key,
                             const fs::path& dir) {
  const fs::path target = dir / "awscli-copy";
  const std::string command =
      "AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_DEFAULT_REGION=us-east-1 "
      "AWS_EC2_METADATA_DISABLED=true /usr/bin/aws --endpoint-url '" +
      endpoint + "' s3 cp --only-show-errors 's3://" + bucket() + "/" + key + "' '" +
      target.string() + "'";
  const int status = std::system(command.c_str());
  REQUIRE_MESSAGE(status == 0, "awscli failed (" << status << "): " << command);
  return read_whole(target);
}

// The keys awscli lists under `key_prefix`, one per line.
std::string list_with_awscli(const std::string& endpoint, const std::string& key_prefix,
                             const fs::path& dir) {
  fs::create_directories(dir);
  const fs::path target = dir / "awscli-list";
  const std::string command =
      "AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_DEFAULT_REGION=us-east-1 "
      "AWS_EC2_METADATA_DISABLED=true /usr/bin/aws --endpoint-url '" +
      endpoint + "' s3api list-objects-v2 --bucket " + bucket() + " --prefix '" + key_prefix +
      "' --query 'Contents[].Key' --output text > '" + target.string() + "'";
  const int status = std::system(command.c_str());
  REQUIRE_MESSAGE(status == 0, "awscli failed (" << status << "): " << command);
  std::string listed = read_whole(target);
  // awscli prints "None" for an empty listing.
  return listed == "None\n" ? std::string() : listed;
}

struct fixture {
  fixture()
      : endpoint(required_env("TEST_S3_ENDPOINT")),
        dir(fs::temp_directory_path() /
            ("s3-store-test-" + std::to_string(std::random_device{}()))),
        prefix(unique_prefix()),
        proxy(io, endpoint_of(endpoint)),
        store(io, settings_for("http://127.0.0.1:" + std::to_string(proxy.port()), dir)) {}
  ~fixture() {
    std::error_code ignored;
    fs::remove_all(dir, ignored);
  }
  asio::io_context io;
  std::string endpoint;
  fs::path dir;
  std::string prefix;
  relay proxy;
  s3_store store;
};

}  // namespace

TEST_CASE_FIXTURE(fixture, "puts a small object once, then finds it already present") {
  const std::string key = prefix + "cases/c-1/report one.pdf";
  const std::string bytes = random_bytes(100'000, 1);
  CHECK(store.describe() == "s3 http://127.0.0.1:" + std::to_string(proxy.port()) + "/" + bucket());

  auto file = staged(store, key, bytes);
  CHECK(file->path().parent_path() == dir / ".staging");
  const put_result first = run(io, store.put(key, *file, "application/pdf", {}));
  REQUIRE_MESSAGE(!first.failure, first.failure->message);
  CHECK_FALSE(first.already_present);

  const read_result back = run(io, store.read_digest(key));
  REQUIRE_MESSAGE(!back.failure, back.failure->message);
  CHECK(back.digest.sha256_hex == file->digest().sha256_hex);
  CHECK(back.digest.md5_base64 == file->digest().md5_base64);
  CHECK(back.digest.size == bytes.size());
  CHECK(read_with_awscli(endpoint, key, dir) == bytes);

  proxy.count("PUT /");
  auto again = staged(store, key, bytes);
  const put_result second = run(io, store.put(key, *again, "application/pdf", {}));
  REQUIRE_MESSAGE(!second.failure, second.failure->message);
  CHECK(second.already_present);
  const put_result from_memory = run(io, store.put_bytes(key, bytes, "application/pdf", {}));
  REQUIRE_MESSAGE(!from_memory.failure, from_memory.failure->message);
  CHECK(from_memory.already_present);
  CHECK(proxy.seen("PUT /") == 0);

  // Other bytes at the same key replace the object.
  const std::string changed = bytes + "!";
  const put_result replaced = run(io, store.put_bytes(key, changed, "application/pdf", {}));
  REQUIRE_MESSAGE(!replaced.failure, replaced.failure->message);
  CHECK_FALSE(replaced.already_present);
  CHECK(proxy.seen("PUT /") == 1);
  const read_result changed_back = run(io, store.read_digest(key));
  REQUIRE_MESSAGE(!changed_back.failure, changed_back.failure->message);
  CHECK(changed_back.digest.sha256_hex == digest_of(changed).sha256_hex);
}

TEST_CASE_FIXTURE(fixture, "puts a large object as a multipart upload streamed from the file") {
  const std::string key = prefix + "cases/c-2/big.bin";
  const std::string bytes = random_bytes(12 * mib, 2);
  proxy.count("?uploads");
  proxy.count("?partNumber=");
  proxy.count("?uploadId=");
  auto file = staged(store, key, bytes);
  const put_result put = run(io, store.put(key, *file, "application/octet-stream", {}));
  REQUIRE_MESSAGE(!put.failure, put.failure->message);
  CHECK_FALSE(put.already_present);
  CHECK(proxy.seen("?uploads") == 1);      // create
  CHECK(proxy.seen("?partNumber=") == 3);  // 5 + 5 + 2 MiB
  CHECK(proxy.seen("?uploadId=") == 1);    // complete (no abort)

  const read_result back = run(io, store.read_digest(key));
  REQUIRE_MESSAGE(!back.failure, back.failure->message);
  CHECK(back.digest.sha256_hex == file->digest().sha256_hex);
  CHECK(back.digest.size == bytes.size());
  CHECK(read_with_awscli(endpoint, key, dir) == bytes);

  const put_result second = run(io, store.put(key, *file, "application/octet-stream", {}));
  REQUIRE_MESSAGE(!second.failure, second.failure->message);
  CHECK(second.already_present);
  CHECK(proxy.seen("?uploads") == 1);
}

TEST_CASE_FIXTURE(fixture, "asks for encryption at rest on single and multipart uploads, signed") {
  // s3rver ignores these headers: what is asserted is what was sent, counted at the relay.
  auto settings = settings_for("http://127.0.0.1:" + std::to_string(proxy.port()), dir);
  settings.s3.sse = "aws:kms";
  settings.s3.sse_kms_key_id = "test-key-1";
  s3_store encrypting(io, settings);
  const std::string asked = "\r\nx-amz-server-side-encryption: aws:kms\r\n";
  const std::string key_id = "\r\nx-amz-server-side-encryption-aws-kms-key-id: test-key-1\r\n";
  const std::string signed_headers =
      ";x-amz-server-side-encryption;x-amz-server-side-encryption-aws-kms-key-id, Signature=";
  for (const auto& marker : {asked, key_id, signed_headers, std::string("?partNumber=")}) {
    proxy.count(marker);
  }

  const std::string small_key = prefix + "cases/c-9/small.json";
  const put_result small =
      run(io, encrypting.put_bytes(small_key, "{\"a\":1}", "application/json", {}));
  REQUIRE_MESSAGE(!small.failure, small.failure->message);
  CHECK(proxy.seen(asked) == 1);
  CHECK(proxy.seen(key_id) == 1);
  CHECK(proxy.seen(signed_headers) == 1);

  const std::string big_key = prefix + "cases/c-9/big.bin";
  const std::string bytes = random_bytes(12 * mib, 9);
  auto file = staged(encrypting, big_key, bytes);
  const put_result big = run(io, encrypting.put(big_key, *file, "application/octet-stream", {}));
  REQUIRE_MESSAGE(!big.failure, big.failure->message);
  CHECK(proxy.seen("?partNumber=") == 3);
  // Once more, on CreateMultipartUpload only: the parts inherit the upload's encryption.
  CHECK(proxy.seen(asked) == 2);
  CHECK(proxy.seen(key_id) == 2);
  CHECK(proxy.seen(signed_headers) == 2);
  CHECK(read_with_awscli(endpoint, big_key, dir) == bytes);
}

TEST_CASE_FIXTURE(fixture,
                  "asks for Object Lock and a legal hold on single and multipart uploads") {
  // s3rver ignores these headers too: asserted at the relay, as sent and signed.
  auto settings = settings_for("http://127.0.0.1:" + std::to_string(proxy.port()), dir);
  settings.s3.object_lock_mode = "GOVERNANCE";
  s3_store locking(io, settings);
  const std::string mode = "\r\nx-amz-object-lock-mode: GOVERNANCE\r\n";
  const std::string until = "\r\nx-amz-object-lock-retain-until-date: 2033-01-02T03:04:05.000Z\r\n";
  const std::string hold = "\r\nx-amz-object-lock-legal-hold: ON\r\n";
  const std::string signed_headers =
      ";x-amz-object-lock-legal-hold;x-amz-object-lock-mode;x-amz-object-lock-retain-until-date, "
      "Signature=";
  for (const auto& marker : {mode, until, hold, signed_headers}) {
    proxy.count(marker);
  }
  const object_protection held{
      std::chrono::sys_days(std::chrono::year(2033) / 1 / 2) + std::chrono::seconds(11045), true};

  const std::string small_key = prefix + "cases/c-10/small.json";
  const put_result small =
      run(io, locking.put_bytes(small_key, "{\"a\":1}", "application/json", held));
  REQUIRE_MESSAGE(!small.failure, small.failure->message);
  CHECK(proxy.seen(mode) == 1);
  CHECK(proxy.seen(until) == 1);
  CHECK(proxy.seen(hold) == 1);
  CHECK(proxy.seen(signed_headers) == 1);

  const std::string big_key = prefix + "cases/c-10/big.bin";
  const std::string bytes = random_bytes(12 * mib, 10);
  auto file = staged(locking, big_key, bytes);
  const put_result big = run(io, locking.put(big_key, *file, "application/octet-stream", held));
  REQUIRE_MESSAGE(!big.failure, big.failure->message);
  // On CreateMultipartUpload only: the object's lock is the upload's.
  CHECK(proxy.seen(mode) == 2);
  CHECK(proxy.seen(until) == 2);
  CHECK(proxy.seen(hold) == 2);
  CHECK(proxy.seen(signed_headers) == 2);

  // Without a hold, no legal-hold header.
  const put_result plain =
      run(io, locking.put_bytes(prefix + "cases/c-10/plain.json", "{}", "application/json",
                                {held.retain_until, false}));
  REQUIRE_MESSAGE(!plain.failure, plain.failure->message);
  CHECK(proxy.seen(mode) == 3);
  CHECK(proxy.seen(hold) == 2);
}

TEST_CASE_FIXTURE(fixture,
                  "s3rver does not enforce Object Lock: the probe says so, start-up refuses") {
  auto settings = settings_for(endpoint, dir);
  settings.prefix = prefix;
  s3_store probing(io, settings);
  const s3_store::lock_probe probe = run(io, probing.probe_object_lock());
  CHECK_FALSE(probe.bucket_enabled);
  CHECK_FALSE(probe.enforced);
  REQUIRE(probe.findings.size() == 3);
  CHECK(probe.findings[0].find("no Object Lock configuration") != std::string::npos);
  CHECK(probe.findings[2].find("the store does not enforce Object Lock") != std::string::npos);
  // The probe cleaned up after itself: nothing is left under its prefix.
  CHECK(list_with_awscli(endpoint, prefix + ".certn-archiver/", dir).empty());

  // Nothing asked: nothing checked.
  CHECK_FALSE(run(io, probing.check_protection()));
  settings.s3.object_lock_mode = "COMPLIANCE";
  s3_store locking(io, settings);
  const std::optional<store_failure> refused = run(io, locking.check_protection());
  REQUIRE(refused);
  CHECK_FALSE(refused->retryable);
  CHECK(refused->message.find("storage.s3.object_lock_mode is COMPLIANCE but bucket testbucket "
                              "does not have Object Lock enabled") != std::string::npos);
}

TEST_CASE_FIXTURE(fixture, "protects an object already written: retention read first, then set") {
  // s3rver implements neither GetObjectRetention (501) nor PutObjectLegalHold (405): what is
  // asserted is what was sent, and that its refusal is a failure naming the operation.
  auto settings = settings_for("http://127.0.0.1:" + std::to_string(proxy.port()), dir);
  settings.s3.object_lock_mode = "COMPLIANCE";
  s3_store locking(io, settings);
  const std::string key = prefix + "cases/c-11/report.pdf";
  const put_result put = run(io, store.put_bytes(key, "%PDF-1.4", "application/pdf", {}));
  REQUIRE_MESSAGE(!put.failure, put.failure->message);
  const std::string read_retention =
      "GET /" + bucket() + "/" + prefix + "cases/c-11/report.pdf?retention= ";
  const std::string set_hold =
      "PUT /" + bucket() + "/" + prefix + "cases/c-11/report.pdf?legal-hold= ";
  const std::string hold_body = "<Status>OFF</Status>";
  for (const auto& marker :
       {read_retention, set_hold, hold_body, std::string("\r\nContent-MD5: ")}) {
    proxy.count(marker);
  }
  const object_protection dated{
      std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now()) +
          std::chrono::days(400),
      false};
  const std::optional<store_failure> no_retention_api = run(io, locking.protect(key, dated));
  REQUIRE(no_retention_api);
  CHECK(no_retention_api->message.find("s3 get retention " + key + ": HTTP 501 NotImplemented") ==
        0);
  CHECK(proxy.seen(read_retention) == 1);
  CHECK(proxy.seen(set_hold) == 0);

  // Without a date (an open case), only the legal hold is sent.
  const std::optional<store_failure> no_hold_api = run(io, locking.protect(key, {}));
  REQUIRE(no_hold_api);
  CHECK(no_hold_api->message.find("s3 put legal hold " + key + ": HTTP 405") == 0);
  CHECK(proxy.seen(read_retention) == 1);
  CHECK(proxy.seen(set_hold) == 1);
  CHECK(proxy.seen(hold_body) == 1);

  // Without Object Lock configured, nothing is sent.
  CHECK_FALSE(run(io, store.protect(key, dated)));
  CHECK(proxy.seen(read_retention) == 1);
  CHECK(proxy.seen(set_hold) == 1);

  // The same bytes put again under Object Lock (a run that wrote them and failed before recording
  // them may have read an older protection): not rewritten, but protected as asked.
  proxy.count("PUT /" + bucket() + "/" + prefix + "cases/c-11/report.pdf HTTP");
  const put_result again = run(io, locking.put_bytes(key, "%PDF-1.4", "application/pdf", dated));
  CHECK(again.already_present);
  REQUIRE(again.failure);
  CHECK(again.failure->message.find("s3 get retention " + key + ": HTTP 501 NotImplemented") == 0);
  CHECK(proxy.seen(read_retention) == 2);
  CHECK(proxy.seen("PUT /" + bucket() + "/" + prefix + "cases/c-11/report.pdf HTTP") == 0);
  // Only what adds to the object's protection: a hold placed, never one lifted (the run that
  // puts may have read the protection from before a release; protect_case lifts holds).
  const put_result unheld = run(io, locking.put_bytes(key, "%PDF-1.4", "application/pdf", {}));
  REQUIRE_MESSAGE(!unheld.failure, unheld.failure->message);
  CHECK(unheld.already_present);
  CHECK(proxy.seen(set_hold) == 1);
  const put_result held_again =
      run(io, locking.put_bytes(key, "%PDF-1.4", "application/pdf", {std::nullopt, true}));
  REQUIRE(held_again.failure);
  CHECK(held_again.failure->message.find("s3 put legal hold " + key + ": HTTP 405") == 0);
  CHECK(proxy.seen(set_hold) == 2);
  CHECK(proxy.seen(hold_body) == 1);  // the one above asked ON
  // Without Object Lock, an object already there is left as it is.
  const put_result plain_again =
      run(io, store.put_bytes(key, "%PDF-1.4", "application/pdf", dated));
  REQUIRE_MESSAGE(!plain_again.failure, plain_again.failure->message);
  CHECK(plain_again.already_present);
  CHECK(proxy.seen(read_retention) == 2);
}

TEST_CASE_FIXTURE(fixture, "lists the keys under a prefix") {
  for (const std::string name : {"audit/digests/2.json", "audit/digests/1.json", "audit/x.json"}) {
    const put_result put = run(io, store.put_bytes(prefix + name, "{}", "application/json", {}));
    REQUIRE_MESSAGE(!put.failure, put.failure->message);
  }
  const list_result listed = run(io, store.list(prefix + "audit/digests/"));
  REQUIRE_MESSAGE(!listed.failure, listed.failure->message);
  CHECK(listed.keys ==
        std::vector<std::string>{prefix + "audit/digests/1.json", prefix + "audit/digests/2.json"});
  const list_result none = run(io, store.list(prefix + "nothing/"));
  REQUIRE_MESSAGE(!none.failure, none.failure->message);
  CHECK(none.keys.empty());
}

TEST_CASE_FIXTURE(fixture, "removes an object: every version where the store lists them") {
  const std::string key = prefix + "cases/c-7/gone.json";
  proxy.count("&versions=");
  proxy.count("DELETE /");
  const put_result put = run(io, store.put_bytes(key, "{\"gone\":true}", "application/json", {}));
  REQUIRE_MESSAGE(!put.failure, put.failure->message);
  const remove_result removed = run(io, store.remove(key));
  REQUIRE_MESSAGE(!removed.failure, removed.failure->message);
  // s3rver has no versions API (405): one plain DELETE.
  CHECK(proxy.seen("&versions=") == 1);
  CHECK(proxy.seen("DELETE /") == 1);
  CHECK(removed.removed == 1);
  const read_result back = run(io, store.read_digest(key));
  CHECK(back.not_found);
  const remove_result again = run(io, store.remove(key));
  CHECK_FALSE(again.failure);
}

TEST_CASE_FIXTURE(fixture, "reports a missing key as not found") {
  const read_result missing = run(io, store.read_digest(prefix + "no/such/key"));
  CHECK(missing.not_found);
  REQUIRE(missing.failure);
  CHECK_FALSE(missing.failure->retryable);
  CHECK(missing.failure->message.find(prefix + "no/such/key") != std::string::npos);
}

TEST_CASE_FIXTURE(fixture, "a wrong secret is a permanent failure naming SignatureDoesNotMatch") {
  config::storage_settings settings = settings_for(endpoint, dir);
  const std::string secret = "not-the-secret-9f2c";
  settings.s3.secret_access_key = secret;
  s3_store wrong(io, settings);
  const std::string key = prefix + "denied.txt";
  for (const std::size_t size : {std::size_t{10}, std::size_t{6 * mib}}) {
    INFO("size " << size);
    const put_result put = run(io, wrong.put_bytes(key, random_bytes(size, 3), "text/plain", {}));
    REQUIRE(put.failure);
    CHECK_FALSE(put.failure->retryable);
    CHECK(put.failure->message.find("SignatureDoesNotMatch") != std::string::npos);
    CHECK(put.failure->message.find(key) != std::string::npos);
    CHECK(put.failure->message.find(secret) == std::string::npos);
  }
  const read_result read = run(io, wrong.read_digest(key));
  REQUIRE(read.failure);
  CHECK_FALSE(read.failure->retryable);
  CHECK(read.failure->message.find("SignatureDoesNotMatch") != std::string::npos);
}

TEST_CASE_FIXTURE(fixture, "a clock an hour off is a permanent failure that says to fix the time") {
  ops::manual_clock late;
  late.set_wall(late.wall_now() - std::chrono::hours(1));
  s3_store skewed(io, settings_for(endpoint, dir), late);
  const std::string key = prefix + "skewed.txt";
  const put_result put = run(io, skewed.put_bytes(key, "dated an hour ago", "text/plain", {}));
  REQUIRE(put.failure);
  CHECK_FALSE(put.failure->retryable);
  CHECK(put.failure->message.find("RequestTimeTooSkewed") != std::string::npos);
  CHECK(put.failure->message.find("fix the time") != std::string::npos);
  // Nothing reached the key; the same store with the right time stores it.
  CHECK(run(io, store.read_digest(key)).not_found);
  late.set_wall(std::chrono::system_clock::now());
  CHECK_FALSE(run(io, skewed.put_bytes(key, "dated now", "text/plain", {})).failure);
}

TEST_CASE_FIXTURE(fixture, "a server that went away is a retryable failure") {
  const std::string key = prefix + "gone.txt";
  const put_result before = run(io, store.put_bytes(key, "first", "text/plain", {}));
  REQUIRE_MESSAGE(!before.failure, before.failure->message);
  // The store now holds an idle keep-alive connection; the server goes away.
  proxy.stop();
  const put_result after = run(io, store.put_bytes(key, "second", "text/plain", {}));
  REQUIRE(after.failure);
  CHECK(after.failure->retryable);
  CHECK(after.failure->message.find(key) != std::string::npos);
  const read_result read = run(io, store.read_digest(key));
  REQUIRE(read.failure);
  CHECK(read.failure->retryable);
  CHECK_FALSE(read.not_found);
}
