// The outgoing HTTP/1.1 client: one request per connection (Connection: close), strict destination
// policy (SSRF guard), TLS with peer and host-name verification, deadlines on every step, response
// bodies streamed into a caller's sink. Runs on the caller's io_context; a client may run many
// fetches at once, all on that io_context's thread. Expected failures are values.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/address_policy.hpp"
#include "net/asio.hpp"

namespace archiver::http {

struct request_options {
  std::string method = "GET";
  std::vector<std::pair<std::string, std::string>> headers;  // may replace User-Agent, not framing
  std::string body;  // sent with Content-Length (also "0" for an empty POST/PUT/PATCH)
  std::chrono::milliseconds connect_timeout{10000};  // resolve + connect + TLS handshake
  std::chrono::milliseconds read_timeout{30000};     // each read (and the request write)
  std::chrono::milliseconds total_timeout{300000};   // the whole fetch, body included
};

// Receives a response body chunk by chunk, in order. Exceptions thrown by write() escape fetch().
class body_sink {
 public:
  virtual ~body_sink() = default;
  virtual void write(std::string_view chunk) = 0;
  // The most bytes this sink accepts; a longer body fails the fetch as failure::too_large before
  // the chunk that would pass the cap is written.
  virtual std::uint64_t max_bytes() const { return std::numeric_limits<std::uint64_t>::max(); }
};

// Collects the body in memory, up to `cap` bytes.
class string_sink final : public body_sink {
 public:
  explicit string_sink(std::uint64_t cap) : cap_(cap) {}
  void write(std::string_view chunk) override { data_.append(chunk); }
  std::uint64_t max_bytes() const override { return cap_; }
  const std::string& data() const { return data_; }

 private:
  std::uint64_t cap_;
  std::string data_;
};

enum class failure {
  none,
  invalid_url,
  refused_by_policy,
  dns,
  connect,
  tls,
  timeout,
  truncated,
  too_large,
  protocol
};
const char* to_string(failure kind);

struct response_head {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // as received, in order
};

struct fetch_result {
  failure error = failure::none;
  std::string message;  // empty on success; otherwise names the host/address and the cause
  response_head head;   // filled once the response header arrived (even if the body then failed)
  std::uint64_t body_bytes = 0;  // bytes handed to the sink
};

class client {
 public:
  // `tls` (not owned, must outlive the client) verifies servers; nullptr refuses https URLs.
  client(asio::io_context& io, destination_policy policy, ssl::context* tls);

  // One request. 3xx responses are returned, not followed. error == none means a complete
  // response (any status) whose body went to `sink`. `url`, `options` and `sink` must stay valid
  // until the returned awaitable completes.
  awaitable<fetch_result> fetch(std::string_view url, const request_options& options,
                                body_sink& sink);

 private:
  asio::io_context& io_;
  destination_policy policy_;
  ssl::context* tls_;
};

}  // namespace archiver::http
