#include "webhook_sender.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string_view>

#include "encoding/encoding.hpp"
#include "http/client.hpp"
#include "encoding/json.hpp"
#include "ops/logging.hpp"

namespace certn_sim {

using archiver::encoding::json_quote;
using archiver::encoding::json_writer;

namespace http = archiver::http;
namespace ssl = archiver::ssl;

namespace {

constexpr int max_attempts = 4;  // the first and three more (Certn's documented retry rule)
constexpr std::chrono::seconds hold_limit{1};  // a reordered event waits at most this long
constexpr std::size_t excerpt_bytes = 60;

// An event's delivery and, when it was duplicated, the delivery of its second copy.
struct job {
  std::size_t index = 0;
  std::optional<std::size_t> duplicate;
};

// Receivers' answers are not read, only their statuses.
class discard_sink final : public http::body_sink {
 public:
  void write(std::string_view) override {}
};

bool retryable(int status) {
  return status == 0 || status == 408 || status == 500 || status == 502 || status == 503 ||
         status == 504;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &length);
  return std::string(reinterpret_cast<const char*>(mac), length);
}

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                      reinterpret_cast<const unsigned char*>(bytes.data()),
                                      static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(written));
  return out;
}

std::pair<std::string, std::string> signature_header(const webhook_settings& settings,
                                                     std::string_view body) {
  switch (settings.scheme) {
    case signature_scheme::x_signature_hex:
      return {"X-Signature", archiver::encoding::to_hex(hmac_sha256(settings.secret, body))};
    case signature_scheme::x_signature_base64:
      return {"X-Signature", base64(hmac_sha256(settings.secret, body))};
    case signature_scheme::sha256_prefixed:
      return {"X-Signature",
              "sha256=" + archiver::encoding::to_hex(hmac_sha256(settings.secret, body))};
    case signature_scheme::certn_signature: {
      // Signed at each attempt: the timestamp says when this request was made.
      const std::string t = std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                               std::chrono::system_clock::now().time_since_epoch())
                                               .count());
      std::string signed_text = t + ".";
      signed_text += body;
      return {"Certn-Signature",
              "t=" + t +
                  ",v1=" + archiver::encoding::to_hex(hmac_sha256(settings.secret, signed_text))};
    }
  }
  throw std::logic_error("unknown webhook signature scheme");
}

std::string uuid_v4(std::mt19937_64& random) {
  const std::uint64_t high = random();
  const std::uint64_t low = random();
  std::string bytes(16, '\0');
  for (int i = 0; i < 8; ++i) {
    bytes[i] = static_cast<char>(high >> (56 - 8 * i));
    bytes[8 + i] = static_cast<char>(low >> (56 - 8 * i));
  }
  bytes[6] = static_cast<char>((bytes[6] & 0x0f) | 0x40);  // version 4
  bytes[8] = static_cast<char>((bytes[8] & 0x3f) | 0x80);  // RFC 4122 variant
  const std::string hex = archiver::encoding::to_hex(bytes);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20);
}

std::string challenge_value(std::mt19937_64& random) {
  static constexpr std::string_view alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string value;
  for (int i = 0; i < 32; ++i) {
    value += alphabet[random() % alphabet.size()];
  }
  return value;
}

std::string utc_now_iso8601() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm parts{};
  gmtime_r(&now, &parts);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

// The first bytes of a body, quoted and escaped, for error messages.
std::string excerpt(std::string_view body) {
  if (body.size() <= excerpt_bytes) {
    return json_quote(body);
  }
  return json_quote(body.substr(0, excerpt_bytes)) + "...";
}

ssl::context make_tls(const webhook_settings& settings) {
  ssl::context tls(ssl::context::tls_client);
  tls.set_default_verify_paths();
  if (!settings.ca_file.empty()) {
    archiver::error_code ec;
    tls.load_verify_file(settings.ca_file, ec);
    if (ec) {
      throw std::runtime_error("webhook ca_file: cannot load " + settings.ca_file + ": " +
                               ec.message());
    }
  }
  return tls;
}

http::destination_policy receiver_policy() {
  // The receiver is whatever the operator points certn-sim at, loopback in tests and demos.
  http::destination_policy policy;
  policy.allow_plain_http = true;
  policy.allow_special_addresses = true;
  return policy;
}

http::client_settings receiver_client_settings() {
  // One connection per attempt: a pooled connection's silent resend could deliver a POST twice,
  // and the recorded attempts must be exactly what receivers saw.
  http::client_settings settings;
  settings.keep_alive = false;
  return settings;
}

void log_failure(std::exception_ptr error) {
  archiver::ops::log_exception("certn-sim webhook delivery", error);
}

}  // namespace

struct webhook_sender_state {
  webhook_sender_state(asio::io_context& io_context, webhook_settings settings_, std::uint64_t seed)
      : io(io_context),
        settings(std::move(settings_)),
        random(seed),
        challenge_random(seed ^ 0x5eed'c4a1'1e46'e000ull),
        tls(make_tls(settings)),
        client(io_context, receiver_policy(), &tls, receiver_client_settings()),
        hold_timer(io_context) {}

  asio::io_context& io;
  webhook_settings settings;
  std::mt19937_64 random;            // event ids and fault choices
  std::mt19937_64 challenge_random;  // separate, so challenges do not shift event ids
  ssl::context tls;
  http::client client;
  std::vector<delivery> deliveries;
  std::optional<job> held;  // a reordered event waiting for the next one
  std::uint64_t hold_generation = 0;
  asio::steady_timer hold_timer;
  std::set<asio::steady_timer*> retry_timers;  // waits in progress, cancelled when abandoned
  bool abandoned = false;                      // the sender is gone: stop at the next step
};

namespace {

using state_ptr = std::shared_ptr<webhook_sender_state>;

// Lists a timer in `timers` for as long as it exists.
class timer_listing {
 public:
  timer_listing(std::set<asio::steady_timer*>& timers, asio::steady_timer& timer)
      : timers_(timers), timer_(&timer) {
    timers_.insert(timer_);
  }
  ~timer_listing() { timers_.erase(timer_); }
  timer_listing(const timer_listing&) = delete;
  timer_listing& operator=(const timer_listing&) = delete;

 private:
  std::set<asio::steady_timer*>& timers_;
  asio::steady_timer* timer_;
};

// The status of one POST of `body`, 0 when no complete answer came.
asio::awaitable<int> post_once(state_ptr s, const std::string& body) {
  http::request_options options;
  options.method = "POST";
  options.headers.emplace_back("Content-Type", "application/json");
  options.headers.push_back(signature_header(s->settings, body));
  options.body = body;
  options.connect_timeout = s->settings.timeout;
  options.read_timeout = s->settings.timeout;
  options.total_timeout = s->settings.timeout;
  discard_sink sink;
  const http::fetch_result result = co_await s->client.fetch(s->settings.url, options, sink);
  if (result.error != http::failure::none) {
    spdlog::warn("certn-sim: webhook POST to {} got no answer: {}", s->settings.url,
                 result.message.empty() ? http::to_string(result.error) : result.message);
    co_return 0;
  }
  co_return result.head.status;
}

asio::awaitable<void> deliver(state_ptr s, job work, std::optional<job> release);

void spawn_delivery(const state_ptr& s, job work, std::optional<job> release) {
  asio::co_spawn(s->io, deliver(s, work, release), log_failure);
}

// Attempts deliveries[index] under the retry rule and records every status and the outcome.
// `release` (a held-back event) is spawned right after the first attempt.
asio::awaitable<void> attempt_all(state_ptr s, std::size_t index, std::optional<job>& release) {
  const std::string body = s->deliveries[index].body;
  for (int attempt = 1;; ++attempt) {
    if (s->abandoned) {
      co_return;
    }
    const int status = co_await post_once(s, body);
    if (s->abandoned) {
      co_return;
    }
    s->deliveries[index].statuses.push_back(status);
    if (release) {
      spawn_delivery(s, *release, std::nullopt);
      release.reset();
    }
    delivery& d = s->deliveries[index];
    if (status >= 200 && status < 300) {
      d.outcome = "delivered";
      co_return;
    }
    if (!retryable(status) || attempt == max_attempts) {
      d.outcome = "failed";
      spdlog::warn("certn-sim: webhook {} ({}) failed after {} attempt(s), last status {}",
                   d.event_id, d.event_type, attempt, status);
      co_return;
    }
    asio::steady_timer wait(s->io, s->settings.retry_base_delay * (1 << (attempt - 1)));
    // Unlisted however the frame ends (also when the io_context destroys it unfinished).
    const timer_listing listed(s->retry_timers, wait);
    archiver::error_code ec;
    co_await wait.async_wait(archiver::with_error(ec));
  }
}

asio::awaitable<void> deliver(state_ptr s, job work, std::optional<job> release) {
  co_await attempt_all(s, work.index, release);
  if (work.duplicate && !s->abandoned) {
    co_await attempt_all(s, *work.duplicate, release);
  }
}

// Releases the held event `generation` when no next event came within hold_limit.
asio::awaitable<void> hold(state_ptr s, std::uint64_t generation) {
  // co_spawn starts coroutines later: the sender may be gone, or the event released, already.
  if (s->abandoned || s->hold_generation != generation || !s->held) {
    co_return;
  }
  archiver::error_code ec;
  co_await s->hold_timer.async_wait(archiver::with_error(ec));
  if (s->abandoned || s->hold_generation != generation || !s->held) {
    co_return;
  }
  const job work = *s->held;
  s->held.reset();
  co_await deliver(s, work, std::nullopt);
}

}  // namespace

webhook_sender::webhook_sender(asio::io_context& io, webhook_settings settings, std::uint64_t seed)
    : state_(std::make_shared<webhook_sender_state>(io, std::move(settings), seed)) {}

webhook_sender::~webhook_sender() {
  state_->abandoned = true;
  state_->hold_timer.cancel();
  for (asio::steady_timer* timer : state_->retry_timers) {
    timer->cancel();
  }
}

asio::awaitable<void> webhook_sender::verify_challenge() {
  const state_ptr s = state_;
  const std::string& url = s->settings.url;
  if (url.empty()) {
    throw std::runtime_error("webhook challenge failed: no webhook URL is set");
  }
  const std::string value = challenge_value(s->challenge_random);
  const std::string target =
      url + (url.find('?') == std::string::npos ? "?" : "&") + "challenge=" + value;
  http::request_options options;
  options.connect_timeout = s->settings.timeout;
  options.read_timeout = s->settings.timeout;
  options.total_timeout = s->settings.timeout;
  http::string_sink sink(64 * 1024);
  const http::fetch_result result = co_await s->client.fetch(target, options, sink);
  const std::string prefix = "webhook challenge to " + url + " failed: ";
  if (result.error != http::failure::none) {
    throw std::runtime_error(
        prefix + "no answer (" +
        (result.message.empty() ? http::to_string(result.error) : result.message) + ")");
  }
  if (result.head.status != 200) {
    throw std::runtime_error(prefix + "status " + std::to_string(result.head.status) +
                             " instead of 200, body " + excerpt(sink.data()));
  }
  if (sink.data() != value) {
    throw std::runtime_error(prefix + "the body " + excerpt(sink.data()) +
                             " is not the challenge value " + json_quote(value));
  }
}

std::string webhook_sender::send(const std::string& event_type, const std::string& object_id,
                                 const std::string& object_type, const std::string& id_field) {
  webhook_sender_state& s = *state_;
  // Every choice is drawn for every event, so the ids of a seed do not depend on the settings.
  std::uniform_real_distribution<double> chance(0.0, 1.0);
  delivery d;
  d.event_id = uuid_v4(s.random);
  const bool drop = chance(s.random) < s.settings.drop_rate;
  const bool duplicate = chance(s.random) < s.settings.duplicate_rate;
  const bool reorder = chance(s.random) < s.settings.reorder_rate;
  d.event_type = event_type;
  d.object_id = object_id;
  d.object_type = object_type;
  json_writer body;
  body.begin_object();
  body.key(id_field).value(d.event_id);
  body.key("event_type").value(event_type);
  body.key("object_id").value(object_id);
  body.key("object_type").value(object_type);
  body.key("created").value(utc_now_iso8601());
  body.end_object();
  d.body = body.str();
  d.outcome = s.settings.url.empty() ? "not_sent" : drop ? "dropped" : "pending";
  const std::string id = d.event_id;
  s.deliveries.push_back(d);
  if (s.settings.url.empty() || drop) {
    return id;
  }

  job work{s.deliveries.size() - 1, std::nullopt};
  if (duplicate) {
    delivery copy = s.deliveries.back();
    copy.duplicate = true;
    s.deliveries.push_back(std::move(copy));
    work.duplicate = s.deliveries.size() - 1;
  }
  // At most one event is held: with one already waiting, this one goes now and releases it.
  if (reorder && !s.held) {
    s.held = work;
    ++s.hold_generation;
    s.hold_timer.expires_after(hold_limit);
    asio::co_spawn(s.io, hold(state_, s.hold_generation), log_failure);
    return id;
  }
  std::optional<job> release = s.held;
  if (release) {
    s.held.reset();
    s.hold_timer.cancel();
  }
  spawn_delivery(state_, work, release);
  return id;
}

std::string webhook_sender::deliveries_json() const {
  json_writer out;
  out.begin_array();
  for (const delivery& d : state_->deliveries) {
    out.begin_object();
    out.key("event_id").value(d.event_id);
    out.key("event_type").value(d.event_type);
    out.key("object_id").value(d.object_id);
    out.key("object_type").value(d.object_type);
    out.key("statuses").begin_array();
    for (const int status : d.statuses) {
      out.number(status);
    }
    out.end_array();
    out.key("outcome").value(d.outcome);
    out.key("duplicate").boolean(d.duplicate);
    out.end_object();
  }
  out.end_array();
  return out.str();
}

const std::vector<delivery>& webhook_sender::deliveries() const { return state_->deliveries; }

bool webhook_sender::idle() const {
  return std::none_of(state_->deliveries.begin(), state_->deliveries.end(),
                      [](const delivery& d) { return d.outcome == "pending"; });
}

}  // namespace certn_sim
