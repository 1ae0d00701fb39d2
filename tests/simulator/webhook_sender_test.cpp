// certn-sim's webhook sender against a receiver on 127.0.0.1 built with the daemon's HTTP server:
// the challenge, the signatures (checked here with OpenSSL directly), Certn's retry rule, the
// injected faults, reproducible ids, and the deliveries report. Waits are conditions polled with a
// deadline; retry delays are shortened to tens of milliseconds.
#include "webhook_sender.hpp"

#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <simdjson.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "http/server.hpp"
#include "support/sim_fixture.hpp"

using namespace archiver;
using certn_sim::delivery;
using certn_sim::signature_scheme;
using certn_sim::webhook_sender;
using certn_sim::webhook_settings;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

struct received {
  std::string method;
  std::string target;
  std::string body;
  std::string content_type;
  std::string x_signature;
  std::string certn_signature;
  steady_clock::time_point at;
};

enum class challenge_answer { echo, wrong_echo, not_found };

// Records every request to /hook and answers POSTs with the scripted statuses (200 once the
// script is used up) and challenge GETs as `challenge` says.
class receiver {
 public:
  explicit receiver(asio::io_context& io)
      : server_(io, [this](const http::request& req) { return answer(req); }) {}

  std::string url() const { return server_.url(); }

  std::deque<int> statuses;
  challenge_answer challenge = challenge_answer::echo;
  std::vector<received> requests;

  std::vector<received> posts() const {
    std::vector<received> out;
    for (const received& r : requests) {
      if (r.method == "POST") {
        out.push_back(r);
      }
    }
    return out;
  }

 private:
  http::response answer(const http::request& req) {
    received r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    r.body = req.body();
    r.content_type = std::string(req[beast::http::field::content_type]);
    r.x_signature = std::string(req["X-Signature"]);
    r.certn_signature = std::string(req["Certn-Signature"]);
    r.at = steady_clock::now();
    requests.push_back(r);
    if (r.method == "GET") {
      const std::size_t at = r.target.find("challenge=");
      const std::string value =
          at == std::string::npos ? "" : r.target.substr(at + 10, r.target.find('&', at) - at - 10);
      switch (challenge) {
        case challenge_answer::echo:
          return http::text_response(http::status::ok, value);
        case challenge_answer::wrong_echo:
          return http::text_response(http::status::ok, "nope");
        case challenge_answer::not_found:
          return http::text_response(http::status::not_found, "no such hook");
      }
    }
    int code = 200;
    if (!statuses.empty()) {
      code = statuses.front();
      statuses.pop_front();
    }
    return http::text_response(static_cast<http::status>(code), "ok");
  }

  testing::hook_server server_;
};

// Runs `io` until `done()` holds; fails the test after `limit`.
void run_until(asio::io_context& io, const std::function<bool()>& done,
               milliseconds limit = milliseconds(5000)) {
  const auto deadline = steady_clock::now() + limit;
  while (!done()) {
    REQUIRE_MESSAGE(steady_clock::now() < deadline, "condition not reached in time");
    io.run_one_for(milliseconds(20));
  }
}

// The challenge's exception message, or "" when it passed.
std::string run_challenge(asio::io_context& io, webhook_sender& sender) {
  bool finished = false;
  std::string message;
  asio::co_spawn(io, sender.verify_challenge(), [&](std::exception_ptr error) {
    finished = true;
    if (error) {
      try {
        std::rethrow_exception(error);
      } catch (const std::runtime_error& e) {
        message = e.what();
      }
    }
  });
  run_until(
      io, [&] { return finished; }, milliseconds(15000));
  return message;
}

// A URL on 127.0.0.1 where nothing listens (a port just bound and released).
std::string dead_url(asio::io_context& io) {
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const auto port = acceptor.local_endpoint().port();
  acceptor.close();
  return "http://127.0.0.1:" + std::to_string(port) + "/hook";
}

webhook_settings quick(const std::string& url) {
  webhook_settings settings;
  settings.url = url;
  settings.secret = "test-secret";
  settings.retry_base_delay = milliseconds(20);
  settings.timeout = milliseconds(3000);
  return settings;
}

std::string hmac(const std::string& key, const std::string& data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &length);
  return std::string(reinterpret_cast<const char*>(mac), length);
}

std::string lower_hex(const std::string& bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (const unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 0x0f];
  }
  return out;
}

std::string decode_base64(const std::string& text) {
  std::string out(text.size(), '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  REQUIRE(n >= 0);
  out.resize(static_cast<std::size_t>(n));
  // EVP_DecodeBlock counts the padding as zero bytes.
  for (auto pad = text.rbegin(); pad != text.rend() && *pad == '='; ++pad) {
    out.pop_back();
  }
  return out;
}

bool is_uuid_v4(const std::string& id) {
  if (id.size() != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-') {
    return false;
  }
  for (std::size_t i = 0; i < id.size(); ++i) {
    if (i != 8 && i != 13 && i != 18 && i != 23 &&
        std::string("0123456789abcdef").find(id[i]) == std::string::npos) {
      return false;
    }
  }
  return id[14] == '4' && std::string("89ab").find(id[19]) != std::string::npos;
}

std::vector<int> statuses_of(const webhook_sender& sender, std::size_t index) {
  return sender.deliveries().at(index).statuses;
}

}  // namespace

TEST_CASE("the challenge passes when the receiver echoes the value") {
  asio::io_context io;
  receiver hook(io);
  std::string url = hook.url();
  std::string separator = "?";
  SUBCASE("plain URL") {}
  SUBCASE("URL with a query") {
    url += "?tenant=a";
    separator = "&";
  }
  webhook_sender sender(io, quick(url), 1);
  CHECK(run_challenge(io, sender) == "");
  REQUIRE(hook.requests.size() == 1);
  const received& get = hook.requests[0];
  CHECK(get.method == "GET");
  const std::size_t at = get.target.find(separator + "challenge=");
  REQUIRE(at != std::string::npos);
  const std::string value = get.target.substr(at + 11);
  CHECK(value.size() == 32);
  CHECK(
      value.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
      std::string::npos);
  CHECK(get.x_signature.empty());
}

TEST_CASE("a failed challenge throws naming the URL and what was wrong") {
  asio::io_context io;
  receiver hook(io);
  std::string url = hook.url();
  std::string expected;
  SUBCASE("an echo that differs") {
    hook.challenge = challenge_answer::wrong_echo;
    expected = "the body \"nope\" is not the challenge value";
  }
  SUBCASE("a status other than 200") {
    hook.challenge = challenge_answer::not_found;
    expected = "status 404 instead of 200, body \"no such hook\"";
  }
  SUBCASE("nobody listening") {
    url = dead_url(io);
    expected = "no answer (";
  }
  webhook_sender sender(io, quick(url), 1);
  const std::string message = run_challenge(io, sender);
  INFO(message);
  CHECK(message.rfind("webhook challenge to " + url + " failed: ", 0) == 0);
  CHECK(message.find(expected) != std::string::npos);
}

TEST_CASE("each signature scheme signs the exact body with HMAC-SHA256 of the secret") {
  asio::io_context io;
  receiver hook(io);
  webhook_settings settings = quick(hook.url());
  SUBCASE("X-Signature, lower-case hex") { settings.scheme = signature_scheme::x_signature_hex; }
  SUBCASE("X-Signature, base64") { settings.scheme = signature_scheme::x_signature_base64; }
  SUBCASE("X-Signature, sha256= prefix") { settings.scheme = signature_scheme::sha256_prefixed; }
  SUBCASE("Certn-Signature") { settings.scheme = signature_scheme::certn_signature; }
  webhook_sender sender(io, settings, 3);
  const std::string id = sender.send("CASE_STATUS_CHANGED", "case-1");
  run_until(io, [&] { return sender.idle(); });
  REQUIRE(hook.posts().size() == 1);
  const received post = hook.posts()[0];
  CHECK(post.content_type == "application/json");
  CHECK(post.body == sender.deliveries().at(0).body);
  const std::string mac = hmac("test-secret", post.body);
  switch (settings.scheme) {
    case signature_scheme::x_signature_hex:
      CHECK(post.x_signature == lower_hex(mac));
      CHECK(post.certn_signature.empty());
      break;
    case signature_scheme::x_signature_base64:
      CHECK(post.x_signature.size() == 44);
      CHECK(decode_base64(post.x_signature) == mac);
      break;
    case signature_scheme::sha256_prefixed:
      CHECK(post.x_signature == "sha256=" + lower_hex(mac));
      break;
    case signature_scheme::certn_signature: {
      CHECK(post.x_signature.empty());
      const std::string& header = post.certn_signature;
      const std::size_t comma = header.find(",v1=");
      REQUIRE(header.rfind("t=", 0) == 0);
      REQUIRE(comma != std::string::npos);
      const std::string t = header.substr(2, comma - 2);
      const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count();
      CHECK(std::abs(std::stoll(t) - now) < 60);
      CHECK(header.substr(comma + 4) == lower_hex(hmac("test-secret", t + "." + post.body)));
      break;
    }
  }

  simdjson::dom::parser parser;
  simdjson::dom::object body;
  REQUIRE(parser.parse(post.body).get(body) == simdjson::SUCCESS);
  std::string_view field;
  CHECK((body["id"].get(field) == simdjson::SUCCESS && field == id));
  CHECK(is_uuid_v4(id));
  CHECK((body["event_type"].get(field) == simdjson::SUCCESS && field == "CASE_STATUS_CHANGED"));
  CHECK((body["object_id"].get(field) == simdjson::SUCCESS && field == "case-1"));
  CHECK((body["object_type"].get(field) == simdjson::SUCCESS && field == "CASE"));
  REQUIRE(body["created"].get(field) == simdjson::SUCCESS);
  CHECK(field.size() == 20);  // 2026-11-29T05:00:00Z
  CHECK(field[10] == 'T');
  CHECK(field.back() == 'Z');
}

TEST_CASE("a 503 is retried and the event then delivered") {
  asio::io_context io;
  receiver hook(io);
  hook.statuses = {503, 200};
  webhook_sender sender(io, quick(hook.url()), 4);
  sender.send("CASE_STATUS_CHANGED", "case-1");
  CHECK_FALSE(sender.idle());
  run_until(io, [&] { return sender.idle(); });
  CHECK(statuses_of(sender, 0) == std::vector<int>{503, 200});
  CHECK(sender.deliveries()[0].outcome == "delivered");
  const auto posts = hook.posts();
  REQUIRE(posts.size() == 2);
  CHECK(posts[0].body == posts[1].body);
}

TEST_CASE("a retryable status four times fails after exactly four attempts with growing delays") {
  asio::io_context io;
  receiver hook(io);
  hook.statuses = {500, 500, 500, 500, 500, 500};
  webhook_sender sender(io, quick(hook.url()), 5);
  sender.send("CASE_STATUS_CHANGED", "case-1");
  run_until(io, [&] { return sender.idle(); });
  CHECK(statuses_of(sender, 0) == std::vector<int>{500, 500, 500, 500});
  CHECK(sender.deliveries()[0].outcome == "failed");
  const auto posts = hook.posts();
  REQUIRE(posts.size() == 4);
  // Attempt n+1 waits at least 20 ms * 2^(n-1) after attempt n was answered.
  CHECK(posts[1].at - posts[0].at >= milliseconds(20));
  CHECK(posts[2].at - posts[1].at >= milliseconds(40));
  CHECK(posts[3].at - posts[2].at >= milliseconds(80));
}

TEST_CASE("Certn's retry rule: which statuses are retried") {
  asio::io_context io;
  receiver hook(io);
  for (const int status : {408, 500, 502, 503, 504}) {
    CAPTURE(status);
    hook.statuses = {status, 200};
    webhook_sender sender(io, quick(hook.url()), 6);
    sender.send("CASE_STATUS_CHANGED", "case-1");
    run_until(io, [&] { return sender.idle(); });
    CHECK(statuses_of(sender, 0) == std::vector<int>{status, 200});
    CHECK(sender.deliveries()[0].outcome == "delivered");
  }
  for (const int status : {400, 401, 403, 404, 409, 422, 429, 501}) {
    CAPTURE(status);
    hook.statuses = {status, 200};
    hook.requests.clear();
    webhook_sender sender(io, quick(hook.url()), 6);
    sender.send("CASE_STATUS_CHANGED", "case-1");
    run_until(io, [&] { return sender.idle(); });
    CHECK(statuses_of(sender, 0) == std::vector<int>{status});
    CHECK(sender.deliveries()[0].outcome == "failed");
    CHECK(hook.posts().size() == 1);
  }
}

TEST_CASE("no answer counts as status 0 and is retried") {
  asio::io_context io;
  webhook_sender sender(io, quick(dead_url(io)), 7);
  sender.send("CASE_STATUS_CHANGED", "case-1");
  run_until(io, [&] { return sender.idle(); });
  CHECK(statuses_of(sender, 0) == std::vector<int>{0, 0, 0, 0});
  CHECK(sender.deliveries()[0].outcome == "failed");
}

TEST_CASE("dropped events are never sent") {
  asio::io_context io;
  receiver hook(io);
  webhook_settings dropping = quick(hook.url());
  dropping.drop_rate = 1.0;
  webhook_sender sender(io, dropping, 8);
  sender.send("CASE_STATUS_CHANGED", "case-1");
  sender.send("CASE_STATUS_CHANGED", "case-2");
  CHECK(sender.idle());
  CHECK(sender.deliveries().size() == 2);
  for (const delivery& d : sender.deliveries()) {
    CHECK(d.outcome == "dropped");
    CHECK(d.statuses.empty());
  }
  // A sender that does not drop, to the same receiver: its event is the only one to arrive.
  webhook_settings keeping = quick(hook.url());
  keeping.drop_rate = 0.0;
  webhook_sender other(io, keeping, 8);
  other.send("CASE_STATUS_CHANGED", "case-3");
  run_until(io, [&] { return other.idle(); });
  CHECK(other.deliveries().at(0).outcome == "delivered");
  REQUIRE(hook.posts().size() == 1);
  CHECK(hook.posts()[0].body == other.deliveries()[0].body);
}

TEST_CASE("duplicated events are delivered twice with the same body and id") {
  asio::io_context io;
  receiver hook(io);
  webhook_settings settings = quick(hook.url());
  settings.duplicate_rate = 1.0;
  webhook_sender sender(io, settings, 9);
  const std::string id = sender.send("CASE_REPORT_READY", "file-1", "CASE_REPORT_FILE");
  run_until(io, [&] { return sender.idle(); });
  REQUIRE(sender.deliveries().size() == 2);
  const delivery& first = sender.deliveries()[0];
  const delivery& second = sender.deliveries()[1];
  CHECK(first.event_id == id);
  CHECK(second.event_id == id);
  CHECK_FALSE(first.duplicate);
  CHECK(second.duplicate);
  CHECK(first.outcome == "delivered");
  CHECK(second.outcome == "delivered");
  const auto posts = hook.posts();
  REQUIRE(posts.size() == 2);
  CHECK(posts[0].body == posts[1].body);
  CHECK(posts[0].body.find("\"object_type\":\"CASE_REPORT_FILE\"") != std::string::npos);
}

TEST_CASE("with every rate 0 each event is delivered once, without holding it back") {
  asio::io_context io;
  receiver hook(io);
  webhook_settings settings = quick(hook.url());
  settings.drop_rate = 0.0;
  settings.duplicate_rate = 0.0;
  settings.reorder_rate = 0.0;
  webhook_sender sender(io, settings, 10);
  const auto started = steady_clock::now();
  sender.send("CASE_STATUS_CHANGED", "case-1");
  run_until(io, [&] { return sender.idle(); });
  // A held-back event would wait a whole second for a next one.
  CHECK(steady_clock::now() - started < milliseconds(900));
  REQUIRE(sender.deliveries().size() == 1);
  CHECK(sender.deliveries()[0].outcome == "delivered");
  CHECK_FALSE(sender.deliveries()[0].duplicate);
  CHECK(hook.posts().size() == 1);
}

TEST_CASE("a reordered event arrives after the next one") {
  asio::io_context io;
  receiver hook(io);
  webhook_settings settings = quick(hook.url());
  settings.reorder_rate = 1.0;
  webhook_sender sender(io, settings, 11);
  const std::string first = sender.send("CASE_STATUS_CHANGED", "case-1");
  const std::string second = sender.send("CASE_STATUS_CHANGED", "case-2");
  run_until(io, [&] { return sender.idle(); });
  const auto posts = hook.posts();
  REQUIRE(posts.size() == 2);
  CHECK(posts[0].body.find(second) != std::string::npos);
  CHECK(posts[1].body.find(first) != std::string::npos);
  CHECK(sender.deliveries()[0].outcome == "delivered");
  CHECK(sender.deliveries()[1].outcome == "delivered");
}

TEST_CASE("a reordered event with no next one is sent after a second") {
  asio::io_context io;
  receiver hook(io);
  webhook_settings settings = quick(hook.url());
  settings.reorder_rate = 1.0;
  webhook_sender sender(io, settings, 12);
  const auto started = steady_clock::now();
  sender.send("CASE_STATUS_CHANGED", "case-1");
  run_until(io, [&] { return sender.idle(); });
  CHECK(steady_clock::now() - started >= milliseconds(1000));
  CHECK(sender.deliveries()[0].outcome == "delivered");
  CHECK(hook.posts().size() == 1);
}

TEST_CASE("the same seed gives the same event ids, whatever the other settings") {
  asio::io_context io;
  receiver hook(io);
  webhook_sender a(io, quick(""), 42);
  webhook_sender b(io, quick(""), 42);
  webhook_settings faulty = quick(hook.url());
  faulty.drop_rate = 1.0;
  webhook_sender c(io, faulty, 42);
  webhook_sender d(io, quick(""), 43);
  std::set<std::string> seen;
  for (int i = 0; i < 3; ++i) {
    const std::string id = a.send("CASE_STATUS_CHANGED", "case-" + std::to_string(i));
    CHECK(is_uuid_v4(id));
    CHECK(b.send("CASE_STATUS_CHANGED", "case-" + std::to_string(i)) == id);
    CHECK(c.send("CASE_STATUS_CHANGED", "case-" + std::to_string(i)) == id);
    CHECK(d.send("CASE_STATUS_CHANGED", "case-" + std::to_string(i)) != id);
    seen.insert(id);
  }
  CHECK(seen.size() == 3);
}

TEST_CASE("without a URL events are recorded as not_sent") {
  asio::io_context io;
  webhook_sender sender(io, quick(""), 13);
  sender.send("CASE_STATUS_CHANGED", "case-1");
  CHECK(sender.idle());
  REQUIRE(sender.deliveries().size() == 1);
  CHECK(sender.deliveries()[0].outcome == "not_sent");
  CHECK(sender.deliveries()[0].statuses.empty());
  CHECK(io.poll() == 0);  // nothing was scheduled
}

TEST_CASE("deliveries_json is a valid JSON array of every delivery") {
  asio::io_context io;
  receiver hook(io);
  hook.statuses = {503, 200};
  webhook_sender sender(io, quick(hook.url()), 14);
  const std::string awkward = "case \"1\" \\ \n\x01 é";
  const std::string id = sender.send("CASE_STATUS_CHANGED", awkward);
  run_until(io, [&] { return sender.idle(); });

  simdjson::dom::parser parser;
  simdjson::dom::array all;
  const std::string json = sender.deliveries_json();
  INFO(json);
  REQUIRE(parser.parse(json).get(all) == simdjson::SUCCESS);
  REQUIRE(all.size() == 1);
  simdjson::dom::object one;
  REQUIRE(all.at(0).get(one) == simdjson::SUCCESS);
  std::string_view text;
  CHECK((one["event_id"].get(text) == simdjson::SUCCESS && text == id));
  CHECK((one["event_type"].get(text) == simdjson::SUCCESS && text == "CASE_STATUS_CHANGED"));
  CHECK((one["object_id"].get(text) == simdjson::SUCCESS && text == awkward));
  CHECK((one["object_type"].get(text) == simdjson::SUCCESS && text == "CASE"));
  CHECK((one["outcome"].get(text) == simdjson::SUCCESS && text == "delivered"));
  bool duplicate = true;
  CHECK((one["duplicate"].get(duplicate) == simdjson::SUCCESS && !duplicate));
  simdjson::dom::array statuses;
  REQUIRE(one["statuses"].get(statuses) == simdjson::SUCCESS);
  std::vector<std::int64_t> got;
  for (const simdjson::dom::element status : statuses) {
    got.push_back(status.get_int64().value());
  }
  CHECK(got == std::vector<std::int64_t>{503, 200});

  // The body POSTed is valid JSON too, with the same awkward object id.
  simdjson::dom::object body;
  REQUIRE(parser.parse(hook.posts().at(0).body).get(body) == simdjson::SUCCESS);
  CHECK((body["object_id"].get(text) == simdjson::SUCCESS && text == awkward));
}

TEST_CASE("a sender destroyed while deliveries are pending stops them") {
  asio::io_context io;
  webhook_settings settings = quick(dead_url(io));
  settings.retry_base_delay = milliseconds(10000);
  auto sender = std::make_unique<webhook_sender>(io, settings, 15);
  SUBCASE("waiting to retry") {
    sender->send("CASE_STATUS_CHANGED", "case-1");
    run_until(io, [&] { return sender->deliveries()[0].statuses.size() == 1; });
  }
  SUBCASE("an attempt in flight") { sender->send("CASE_STATUS_CHANGED", "case-1"); }
  SUBCASE("an event held back") {
    settings.reorder_rate = 1.0;
    sender = std::make_unique<webhook_sender>(io, settings, 15);
    sender->send("CASE_STATUS_CHANGED", "case-1");
  }
  sender.reset();
  // Nothing else runs on `io`: it runs out of work as soon as the abandoned deliveries stop,
  // long before the 10 s retry delay or the 1 s hold.
  const auto started = steady_clock::now();
  io.run_for(std::chrono::seconds(5));
  CHECK(io.stopped());
  CHECK(steady_clock::now() - started < milliseconds(900));
}
