// certn-sim: Certn's Cases API (certn-api.md), its presigned downloads, its webhooks, faults on
// demand, and a control API (/_sim/...) to create and advance cases. One instance runs on one
// io_context thread; tests run it in-process, certn-sim's main() runs it as a process.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "net/asio.hpp"
#include "webhook_sender.hpp"

namespace certn_sim {

struct fault_settings {
  double rate_429 = 0;             // chance an API request is answered 429
  double retry_after_rate = 1.0;   // chance such a 429 carries Retry-After
  int retry_after_seconds = 1;
  double rate_500 = 0;             // chance an API request is answered 500 (error envelope)
  double slow_rate = 0;            // chance an API request waits `slow_delay` before answering
  std::chrono::milliseconds slow_delay{0};
  double truncate_rate = 0;        // chance a download stops half-way
  int requests_per_minute_per_key = 0;  // per API key, sliding minute; 0 = unlimited
  // The next N presigned URLs handed out (by any API answer) are already expired, as if the
  // client had waited past their lifetime before using them.
  std::int64_t expire_next_urls = 0;
  // The 429 and 500 faults hit only this endpoint (a name of api_endpoint_names(), e.g.
  // "cases.supplementary_information"); empty: every endpoint.
  std::string endpoint;
};

// The response shapes the API speaks (README "Response shapes"): a family of shapes, "assumed"
// (certn-api.md "Shapes") or "observed" (its "Observed in public examples"), and per-field
// overrides so that a test can provoke one variant. The simulator refuses unknown names.
struct shape_settings {
  std::string family = "assumed";
  std::map<std::string, std::string> vary;  // knob -> value; a knob not listed follows the family
};

struct package {
  std::string id;
  bool active = true;
  std::vector<std::string> check_types;
};

struct settings {
  std::string listen = "127.0.0.1:0";  // host:port; port 0 picks a free one
  std::vector<std::string> api_keys = {"sim-key"};
  // How a missing or refused key is answered: 401, or 403 as Django REST Framework answers when
  // the authentication scheme sends no WWW-Authenticate challenge (same envelope codes).
  int refused_key_status = 401;
  std::string public_base_url;         // how clients reach us; empty: http://<bound address>
  std::chrono::milliseconds report_delay{2000};  // generate-report -> COMPLETE + CASE_REPORT_READY
  std::chrono::seconds url_ttl{3 * 3600};        // presigned URL lifetime
  std::uint64_t default_file_size = 64 * 1024;   // per supplementary file unless the control API says
  std::uint64_t seed = 1;                        // every random choice and id derives from it
  std::string report_ready_object_type = "CASE"; // or "CASE_REPORT_FILE"
  std::vector<package> packages = {{"pkg-basic", true, {"IDENTITY_VERIFICATION", "CRIMINAL_RECORD_CHECK"}},
                                   {"pkg-retired", false, {"CRIMINAL_RECORD_CHECK"}}};
  webhook_settings webhooks;
  fault_settings faults;
  shape_settings shapes;
  int initial_cases = 0;  // cases created by start() (APPLICANT_INVITED, default checks)
};

class simulator {
 public:
  // Binds the listener now (throws boost::system::system_error when it cannot; throws
  // std::invalid_argument naming the setting when `listen` or `shapes` is not valid).
  simulator(boost::asio::io_context& io, settings config);
  ~simulator();

  unsigned short port() const;
  std::string base_url() const;  // "http://127.0.0.1:<port>" (or public_base_url)

  // Verifies the webhook URL with a challenge when one is set (throws std::runtime_error when the
  // receiver fails it), then serves.
  boost::asio::awaitable<void> start();
  // Stops serving (requests in flight finish).
  boost::asio::awaitable<void> stop();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace certn_sim
