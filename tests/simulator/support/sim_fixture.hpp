// Shared set-up of the tests that talk to certn-sim in-process: the simulator served on its own
// thread at a free port, webhook receivers on 127.0.0.1, a blocking HTTP client and JSON readers.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "http/server.hpp"
#include "net/asio.hpp"
#include "ops/metrics.hpp"
#include "simulator.hpp"

namespace archiver::testing {

// An HTTP server on 127.0.0.1 at a free port, served on `io`, that hands every request to /hook
// to `answer` (called on `io`'s thread).
class hook_server {
 public:
  using handler = std::function<http::response(const http::request&)>;
  hook_server(asio::io_context& io, handler answer);
  hook_server(const hook_server&) = delete;  // the routes point at this object
  hook_server& operator=(const hook_server&) = delete;
  // "http://127.0.0.1:<port>/hook".
  std::string url() const;

 private:
  handler answer_;
  ops::registry registry_;
  http::server_metrics metrics_;
  std::unique_ptr<http::server> server_;
};

// A webhook receiver that echoes challenges and keeps the bodies of the POSTs. Served on `io`;
// bodies() may be called from any thread.
class webhook_recorder {
 public:
  explicit webhook_recorder(asio::io_context& io);
  // The URL to give the simulator as its webhook URL.
  std::string url() const { return server_.url(); }
  // The POST bodies received so far, in order.
  std::vector<std::string> bodies() const;

 private:
  http::response answer(const http::request& req);

  mutable std::mutex mutex_;
  std::vector<std::string> bodies_;
  hook_server server_;
};

// certn-sim served by its own io_context thread, started on construction (listening on a free
// port unless `config.listen` names one), stopped and joined on destruction. With
// `with_receiver`, a webhook_recorder on the same thread is the simulator's webhook URL.
class running_sim {
 public:
  explicit running_sim(certn_sim::settings config, bool with_receiver = false);
  ~running_sim();
  running_sim(const running_sim&) = delete;
  running_sim& operator=(const running_sim&) = delete;

  // Read before the io_context thread starts: the simulator is not thread-safe.
  unsigned short port() const { return port_; }
  // "http://127.0.0.1:<port>" (or the configured public_base_url).
  const std::string& base_url() const { return base_url_; }
  // The webhook receiver; only with `with_receiver`.
  const webhook_recorder& hooks() const { return *receiver_; }

 private:
  certn_sim::settings with_webhooks(certn_sim::settings config) const;

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  std::unique_ptr<webhook_recorder> receiver_;
  certn_sim::simulator sim_;
  unsigned short port_;
  std::string base_url_;
  std::thread thread_;
};

// What one blocking request got back, with the response headers the tests read.
struct sim_reply {
  int status = 0;
  std::string body;
  std::string content_type;
  std::string retry_after;
  std::string allow;
};

// One blocking HTTP/1.1 request to 127.0.0.1:`port` on a connection of its own. A non-empty `key`
// goes out as "Authorization: Api-Key <key>", a non-empty `body` as application/json.
sim_reply sim_request(unsigned short port, beast::http::verb method, const std::string& target,
                      const std::string& body = "", const std::string& key = "");

// Creates cases through the control API (POST /_sim/cases, which must answer 201); returns their
// ids.
std::vector<std::string> create_cases(unsigned short port, const std::string& body);

// A parsed JSON document that keeps its parser alive (elements read from it live as long).
class json {
 public:
  // Throws simdjson_error when `text` is not JSON.
  explicit json(const std::string& text);
  // The member `key` of the top-level object (throws when there is none).
  simdjson::dom::element operator[](std::string_view key) const { return root_[key].value(); }
  // Whether the top-level object has a member `key`.
  bool has(std::string_view key) const { return root_[key].error() == simdjson::SUCCESS; }
  // The whole document (an array, for some list shapes).
  simdjson::dom::element root() const { return root_; }

 private:
  std::unique_ptr<simdjson::dom::parser> parser_;
  simdjson::dom::element root_;
};

// Typed readers of one element; each throws when the element is of another type.
std::string str(simdjson::dom::element e);
std::int64_t num(simdjson::dom::element e);
std::size_t len(simdjson::dom::element e);  // array length
// Whether `object` has a member `key`.
bool has(simdjson::dom::element object, std::string_view key);

}  // namespace archiver::testing
