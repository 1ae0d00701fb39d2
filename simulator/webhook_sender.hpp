// certn-sim's webhook sender: the challenge GET when started, then signed POSTs of events with
// Certn's documented retry rule (408/500/502/503/504 retried up to three more times with growing
// delays; any other status >= 400 is final), and configurable faults (duplicated, reordered and
// dropped deliveries). Runs on one io_context thread; no member may be called from another.
// Deliveries run in the background and keep the sender's state alive: destroying the sender
// while some are pending is safe (they stop at their next step, recording nothing more).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "net/asio.hpp"

namespace certn_sim {

namespace asio = boost::asio;

enum class signature_scheme {
  x_signature_hex,     // X-Signature: <lower-case hex HMAC-SHA256 of the body> (Certn's default)
  x_signature_base64,  // X-Signature: <base64>
  sha256_prefixed,     // X-Signature: sha256=<hex>
  certn_signature,     // Certn-Signature: t=<unix>,v1=<hex of HMAC over "<t>.<body>">
};

struct webhook_settings {
  std::string url;  // empty: no webhooks are sent (deliveries are still recorded as "not_sent")
  std::string secret = "sim-webhook-secret";
  signature_scheme scheme = signature_scheme::x_signature_hex;
  std::chrono::milliseconds retry_base_delay{2000};  // attempt n waits base * 2^(n-1) before retry
  std::chrono::milliseconds timeout{10000};          // per attempt
  std::string ca_file;  // extra CA for an https webhook URL (tests); empty: system trust store
  double duplicate_rate = 0;  // chance an event is delivered twice
  double reorder_rate = 0;    // chance an event is held back and sent after the next one
  double drop_rate = 0;       // chance an event is never sent (recorded as "dropped")
};

// One event and what became of it.
struct delivery {
  std::string event_id;
  std::string event_type;
  std::string object_id;
  std::string object_type;
  std::string body;            // exactly the bytes POSTed
  std::vector<int> statuses;   // one per attempt; 0 = no answer (connect error, timeout)
  std::string outcome;         // "pending", "delivered", "failed", "dropped", "not_sent"
  bool duplicate = false;      // this is the second copy of a duplicated event
};

struct webhook_sender_state;  // defined in webhook_sender.cpp

class webhook_sender {
 public:
  // Throws std::runtime_error when settings.ca_file cannot be loaded. Event ids, challenge values
  // and fault choices all come from generators seeded with `seed`.
  webhook_sender(asio::io_context& io, webhook_settings settings, std::uint64_t seed);
  ~webhook_sender();
  webhook_sender(const webhook_sender&) = delete;
  webhook_sender& operator=(const webhook_sender&) = delete;

  // GET <url>?challenge=<random>; throws std::runtime_error naming the URL and what was wrong
  // (no answer, status, or an echo that differs) when the receiver fails the challenge.
  asio::awaitable<void> verify_challenge();

  // Queues an event for delivery and returns at once; delivery runs in the background.
  // Returns the event id (a UUID). object_type is "CASE", "CASE_REPORT_FILE" or "CHECK";
  // id_field names the body's event-id field ("id", or "event_id" as seen in public examples).
  // Faults: a dropped event is never sent; a duplicated one is POSTed again (same body) once the
  // first copy is done; a reordered one is held back until the next event sent has had its first
  // attempt (or for 1 s when none comes), so receivers see the two out of order.
  std::string send(const std::string& event_type, const std::string& object_id,
                   const std::string& object_type = "CASE", const std::string& id_field = "id");

  // Every event sent so far, oldest first, as a JSON array of delivery objects.
  std::string deliveries_json() const;
  const std::vector<delivery>& deliveries() const;

  // True when no delivery is pending or waiting to retry.
  bool idle() const;

 private:
  // Shared with the deliveries running in the background, which may outlive the sender.
  std::shared_ptr<webhook_sender_state> state_;
};

}  // namespace certn_sim
