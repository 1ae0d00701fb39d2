#include "webhook/intake.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "encoding/encoding.hpp"
#include "ops/logging.hpp"
#include "webhook/event.hpp"
#include "webhook/signature.hpp"
#include "webhook/store.hpp"

namespace archiver::webhook {
namespace bhttp = beast::http;

namespace {

// Label value for an event type: the documented ones by name, anything else as "other", so a
// sender cannot grow the metric's series without bound.
std::string_view type_label(std::string_view event_type) {
  return is_known_event_type(event_type) ? event_type : "other";
}

http::response plain(http::status code, std::string body) {
  http::response res = http::text_response(code, std::move(body));
  res.set(bhttp::field::cache_control, "no-store");
  return res;
}

}  // namespace

std::optional<std::string> query_parameter(std::string_view target, std::string_view name) {
  const auto question = target.find('?');
  if (question == std::string_view::npos) {
    return std::nullopt;
  }
  std::string_view query = target.substr(question + 1);
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const auto equals = pair.find('=');
    const auto key = encoding::percent_decode(pair.substr(0, equals));
    if (key && *key == name) {
      return encoding::percent_decode(equals == std::string_view::npos ? std::string_view{}
                                                             : pair.substr(equals + 1));
    }
  }
  return std::nullopt;
}

intake_metrics::intake_metrics(ops::registry& registry)
    : events(registry.counter("certn_archiver_webhook_events_total",
                              "Webhook POSTs by event type and outcome.", {"type", "outcome"})),
      latency(registry.histogram("certn_archiver_webhook_intake_seconds",
                                 "Time from a webhook POST's last byte to its answer.",
                                 ops::latency_buckets(), {"outcome"})),
      group_events(registry.histogram("certn_archiver_webhook_commit_group_events",
                                      "Webhook events stored per transaction (group commit).",
                                      {1, 2, 4, 8, 16, 32, 64, 128, 256})),
      waiting_commit(registry.gauge("certn_archiver_webhook_events_waiting_commit",
                                    "Webhook events waiting for their commit group to start.")) {}

intake::intake(config::webhook_settings settings, int max_attempts, db::pool& database,
               intake_metrics& metrics, const ops::clock& time)
    : settings_(std::move(settings)),
      max_attempts_(max_attempts),
      metrics_(metrics),
      groups_(database,
              std::min(settings_.concurrent_commits, static_cast<int>(database.size())),
              settings_.max_events_per_commit,
              metrics.group_events, metrics.waiting_commit),
      time_(time) {}

void intake::on_job_due_later(std::function<void(std::chrono::seconds)> notify) {
  job_due_later_ = std::move(notify);
}

awaitable<http::response> intake::handle(const http::request& req) {
  if (req.method() == bhttp::verb::get) {
    co_return answer_challenge(req);
  }
  if (req.method() == bhttp::verb::post) {
    co_return co_await receive_event(req);
  }
  http::response res = plain(http::status::method_not_allowed, "method not allowed\n");
  res.set(bhttp::field::allow, "GET, POST");
  co_return res;
}

http::response intake::answer_challenge(const http::request& req) const {
  const std::optional<std::string> challenge = query_parameter(req.target(), "challenge");
  if (!challenge || challenge->empty()) {
    return plain(http::status::bad_request, "missing challenge query parameter\n");
  }
  if (challenge->size() > settings_.max_challenge_bytes) {
    return plain(http::status::bad_request,
                 "challenge longer than " + std::to_string(settings_.max_challenge_bytes) +
                     " bytes\n");
  }
  // Certn checks that the body is exactly the value; nosniff keeps a browser from reading an
  // attacker-chosen challenge as HTML.
  http::response res{http::status::ok, 11};
  res.set(bhttp::field::content_type, "text/plain");
  res.set("X-Content-Type-Options", "nosniff");
  res.set(bhttp::field::cache_control, "no-store");
  res.body() = *challenge;
  return res;
}

awaitable<http::response> intake::receive_event(const http::request& req) {
  const auto started = std::chrono::steady_clock::now();
  auto finish = [&](std::string_view type, std::string_view outcome, http::status code,
                    std::string body) {
    metrics_.events.inc({type, outcome});
    metrics_.latency.observe(
        {outcome},
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    return plain(code, std::move(body));
  };

  // The signature is checked over the raw bytes before anything parses them.
  const std::string_view body = req.body();
  const signature_check check = verify_request_signature(
      settings_.scheme, req["X-Signature"], req["Certn-Signature"], body, settings_.secrets,
      time_.wall_now(), settings_.timestamp_tolerance);
  if (check.verdict != signature_verdict::valid) {
    spdlog::warn("webhook rejected: signature {} ({} header, scheme {})",
                 to_string(check.verdict), signature_header(check.scheme),
                 config::to_string(settings_.scheme));
    co_return finish("unknown", "bad_signature", http::status::unauthorized,
                     std::string("signature ") + to_string(check.verdict) + "\n");
  }

  parsed_event parsed = parse_event(body);
  if (!parsed.value) {
    spdlog::warn("webhook rejected: malformed body: {}", parsed.error);
    co_return finish("unknown", "malformed", http::status::bad_request,
                     "malformed event: " + parsed.error + "\n");
  }
  const event received = std::move(*parsed.value);
  const std::optional<queue::job_spec> job = job_for(received, max_attempts_, settings_.coalesce);
  // The form that verified it (under auto: hex, base64 or certn), so operators learn which one
  // their account sends.
  const std::string scheme = config::to_string(check.scheme);

  store_outcome outcome{};
  std::string failure;
  try {
    // Bounded, so that a database that stops answering gets Certn a 503 in time, not a hung
    // connection; the group may still commit after that answer (Certn's retry then finds a
    // duplicate). The record is built apart from the co_await: see db::pool::query_within.
    event_record record{received, std::string(body), scheme, job};
    outcome = co_await groups_.store(std::move(record), settings_.store_timeout);
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (!failure.empty()) {
    while (!failure.empty() && failure.back() == '\n') {
      failure.pop_back();  // libpqxx messages end with a newline
    }
    spdlog::error("webhook event {} ({}) not stored, answering 503: {}", received.id,
                  received.event_type, failure);
    http::response res = finish(type_label(received.event_type), "store_failed",
                                http::status::service_unavailable, "event not stored; retry\n");
    res.set(bhttp::field::retry_after, "5");
    co_return res;
  }
  if (outcome == store_outcome::duplicate) {
    spdlog::info("webhook event {} ({}) already stored", received.id, received.event_type);
    co_return finish(type_label(received.event_type), "duplicate", http::status::ok,
                     "duplicate\n");
  }
  ops::log_with(
      spdlog::level::info,
      {{"event_id", received.id},
       {"event_type", received.event_type},
       {"case_id", !received.case_id.empty()        ? std::string_view(received.case_id)
                   : received.object_type == "CASE" ? std::string_view(received.object_id)
                                                    : std::string_view()},
       {"object_type", received.object_type},
       {"object_id", received.object_id}},
      fmt::format("webhook event {} ({} {} {}) stored{}", received.id, received.event_type,
                  received.object_type, received.object_id, job ? ", job " + job->kind : ""));
  if (job && job->delay.count() > 0 && job_due_later_) {
    job_due_later_(job->delay);
  }
  co_return finish(type_label(received.event_type), "accepted", http::status::ok, "accepted\n");
}

}  // namespace archiver::webhook
