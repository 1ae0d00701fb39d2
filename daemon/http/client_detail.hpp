// Internal to http/: what the parts of the outgoing client (client.cpp, client_connection.cpp,
// client_request.cpp, client_download.cpp) share. Not to be included outside daemon/http.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "http/client.hpp"
#include "http/connection_pool.hpp"
#include "http/url.hpp"
#include "net/asio.hpp"

namespace archiver::http::client_detail {
namespace bhttp = beast::http;
using std::chrono::steady_clock;

using outgoing_request = bhttp::request<bhttp::string_body>;

inline constexpr std::size_t max_response_header_bytes = 64 * 1024;
inline constexpr std::size_t body_chunk_bytes = 64 * 1024;


inline fetch_result& fail(fetch_result& result, failure kind, std::string message) {
  result.error = kind;
  result.message = std::move(message);
  return result;
}

inline fetch_result failed(failure kind, std::string message) {
  fetch_result result;
  return fail(result, kind, std::move(message));
}

inline std::string millis(std::chrono::milliseconds duration) {
  return std::to_string(duration.count()) + " ms";
}

// The three deadlines of one fetch. Every I/O step runs under the earliest that applies to it.
struct deadlines {
  steady_clock::time_point connect_until;
  steady_clock::time_point total_until;
  std::chrono::milliseconds connect;
  std::chrono::milliseconds read;
  std::chrono::milliseconds total;

  steady_clock::time_point for_connect() const { return std::min(connect_until, total_until); }
  steady_clock::time_point for_read() const {
    return std::min(steady_clock::now() + read, total_until);
  }
  // "while <step>": which deadline passed, for the failure message.
  std::string timeout_message(const std::string& step, bool connecting) const {
    if (steady_clock::now() >= total_until) {
      return "total timeout (" + millis(total) + ") passed while " + step;
    }
    return (connecting ? "connect timeout (" + millis(connect) : "read timeout (" + millis(read)) +
           ") passed while " + step;
  }
};

// --- client_connection.cpp

// A new connection to `target` (through `proxy` when not null), ready for requests: the policy
// checked on the addresses, TCP connected, the tunnel open, TLS verified. Returns error == none
// on success; otherwise the failure (dns, refused_by_policy, connect, tls, timeout, protocol).
// REQUIRES: `tls` not null for an https target.
awaitable<fetch_result> open_connection(asio::io_context& io, const destination_policy& policy,
                                        ssl::context* tls, const url& target,
                                        const proxy_endpoint* proxy, const deadlines& limits,
                                        connection& conn);

// --- client_request.cpp

// The request as sent, or nullopt with `error` set when the caller's method or headers are unsafe
// to put on the wire (header injection) or try to replace the framing the client owns.
std::optional<outgoing_request> build_request(const url& target, const request_options& options,
                                              bool keep_alive, std::string& error);

// Maps a failed read (or request write) to a failure. `in_body`: the response header had arrived.
fetch_result& read_failure(fetch_result& result, const error_code& ec, bool in_body,
                           const deadlines& limits, const std::string& host);

// What one request/response exchange on a connection came to.
struct exchange_outcome {
  fetch_result result;
  bool reusable = false;          // complete, the server keeps the connection open, nothing extra
  bool nothing_received = false;  // failed as a connection closed before any response byte
};

// Writes the request and streams the response into `sink`. `lowest` is the tcp_stream under
// `stream` (the same object for plain HTTP), whose expiry bounds each step. Instantiated for
// beast::tcp_stream and ssl::stream<beast::tcp_stream>.
template <class Stream>
awaitable<exchange_outcome> exchange(Stream& stream, beast::tcp_stream& lowest,
                                     const outgoing_request& req, body_source* source,
                                     const deadlines& limits, const std::string& host,
                                     body_sink& sink);

// --- client_download.cpp

// Streams the body of the response whose header `parser` has read into `sink`, under the sink's
// cap; sets `outcome.result` on failure, else `outcome.reusable`. Instantiated for
// beast::tcp_stream and ssl::stream<beast::tcp_stream>.
template <class Stream>
awaitable<void> read_body(Stream& stream, beast::tcp_stream& lowest, beast::flat_buffer& buffer,
                          bhttp::response_parser<bhttp::buffer_body>& parser,
                          const deadlines& limits, const std::string& host, body_sink& sink,
                          exchange_outcome& outcome);

}  // namespace archiver::http::client_detail
