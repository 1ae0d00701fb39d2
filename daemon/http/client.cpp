#include "http/client.hpp"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>

#include "http/url.hpp"

namespace archiver::http {
namespace bhttp = beast::http;
using std::chrono::steady_clock;

namespace {

using outgoing_request = bhttp::request<bhttp::string_body>;

constexpr std::size_t max_response_header_bytes = 64 * 1024;
constexpr std::size_t body_chunk_bytes = 16 * 1024;

auto with_error(error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

fetch_result& fail(fetch_result& result, failure kind, std::string message) {
  result.error = kind;
  result.message = std::move(message);
  return result;
}

fetch_result failed(failure kind, std::string message) {
  fetch_result result;
  return fail(result, kind, std::move(message));
}

std::string millis(std::chrono::milliseconds duration) {
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

bool is_token(std::string_view text) {
  static constexpr std::string_view extra = "!#$%&'*+-.^_`|~";
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || extra.find(c) != std::string_view::npos;
  });
}

bool is_field_value(std::string_view text) {
  return std::none_of(text.begin(), text.end(),
                      [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

// The request as sent, or nullopt with `error` set when the caller's method or headers are unsafe
// to put on the wire (header injection) or try to replace the framing the client owns.
std::optional<outgoing_request> build_request(const url& target, const request_options& options,
                                              std::string& error) {
  if (!is_token(options.method)) {
    error = "request method '" + options.method + "' is not a valid token";
    return std::nullopt;
  }
  outgoing_request req;
  const bhttp::verb verb = bhttp::string_to_verb(options.method);
  if (verb == bhttp::verb::unknown) {
    req.method_string(options.method);
  } else {
    req.method(verb);
  }
  req.target(target.target);
  req.version(11);
  req.set(bhttp::field::host, host_header(target));
  req.set(bhttp::field::user_agent, "certn-archiver/" ARCHIVER_VERSION);
  for (const auto& [name, value] : options.headers) {
    if (!is_token(name) || !is_field_value(value)) {
      error = "request header '" + name + "' has characters not allowed in a header";
      return std::nullopt;
    }
    if (beast::iequals(name, "host") || beast::iequals(name, "content-length") ||
        beast::iequals(name, "transfer-encoding") || beast::iequals(name, "connection")) {
      error = "request header '" + name + "' is set by the client and cannot be given";
      return std::nullopt;
    }
    if (beast::iequals(name, "user-agent")) {
      req.set(bhttp::field::user_agent, value);
    } else {
      req.insert(name, value);
    }
  }
  // One request per connection until the keep-alive pool exists.
  req.set(bhttp::field::connection, "close");
  req.body() = options.body;
  if (!options.body.empty() || verb == bhttp::verb::post || verb == bhttp::verb::put ||
      verb == bhttp::verb::patch) {
    req.content_length(options.body.size());
  }
  return req;
}

bool is_tls_error(const error_code& ec) {
  return ec.category() == asio::error::get_ssl_category() && ec != ssl::error::stream_truncated;
}

// Maps a failed read (or request write) to a failure. `in_body`: the response header had arrived.
fetch_result& read_failure(fetch_result& result, const error_code& ec, bool in_body,
                           const deadlines& limits, const std::string& host) {
  const std::string step =
      in_body ? "reading the response body from " + host : "waiting for the response from " + host;
  if (ec == beast::error::timeout) {
    return fail(result, failure::timeout, limits.timeout_message(step, false));
  }
  if (ec == bhttp::error::header_limit) {
    return fail(result, failure::too_large,
                "response header from " + host + " is larger than " +
                    std::to_string(max_response_header_bytes) + " bytes");
  }
  if (ec == bhttp::error::end_of_stream && !in_body) {
    return fail(result, failure::protocol, host + " closed the connection without a response");
  }
  if (ec == bhttp::error::partial_message || ec == bhttp::error::end_of_stream ||
      ec == asio::error::eof || ec == ssl::error::stream_truncated ||
      ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
      ec == asio::error::connection_aborted) {
    return fail(result, failure::truncated,
                "response from " + host + " ended early while " + step + " (" + ec.message() + ")");
  }
  if (is_tls_error(ec)) {
    return fail(result, failure::tls, "TLS error while " + step + ": " + ec.message());
  }
  return fail(result, failure::protocol, "malformed response while " + step + ": " + ec.message());
}

// Writes the request and streams the response into `sink`. `lowest` is the tcp_stream under
// `stream` (the same object for plain HTTP), whose expiry bounds each step.
template <class Stream>
awaitable<fetch_result> exchange(Stream& stream, beast::tcp_stream& lowest,
                                 const outgoing_request& req, const deadlines& limits,
                                 const std::string& host, body_sink& sink) {
  fetch_result result;
  error_code ec;
  lowest.expires_at(limits.for_read());
  co_await bhttp::async_write(stream, req, with_error(ec));
  if (ec) {
    if (ec == beast::error::timeout) {
      co_return fail(result, failure::timeout,
                     limits.timeout_message("sending the request to " + host, false));
    }
    co_return fail(result, is_tls_error(ec) ? failure::tls : failure::truncated,
                   "sending the request to " + host + " failed: " + ec.message());
  }

  beast::flat_buffer buffer;
  std::optional<bhttp::response_parser<bhttp::buffer_body>> parser;
  for (;;) {
    parser.emplace();
    parser->header_limit(max_response_header_bytes);
    parser->body_limit(std::numeric_limits<std::uint64_t>::max());  // the sink's cap applies
    if (req.method() == bhttp::verb::head) {
      parser->skip(true);
    }
    lowest.expires_at(limits.for_read());
    co_await bhttp::async_read_header(stream, buffer, *parser, with_error(ec));
    if (ec) {
      co_return read_failure(result, ec, false, limits, host);
    }
    // Interim responses (100 Continue, 103 Early Hints) precede the real one.
    const int status = parser->get().result_int();
    if (status < 100 || status >= 200 || status == 101) {
      break;
    }
  }
  result.head.status = parser->get().result_int();
  for (const auto& field : parser->get()) {
    result.head.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  // A HEAD, 204 or 304 response is done here: its Content-Length announces no body.
  if (const auto length = parser->content_length();
      length && !parser->is_done() && *length > sink.max_bytes()) {
    co_return fail(result, failure::too_large,
                   "response from " + host + " announces " + std::to_string(*length) +
                       " bytes, more than the " + std::to_string(sink.max_bytes()) + " allowed");
  }

  std::array<char, body_chunk_bytes> chunk;
  while (!parser->is_done()) {
    auto& body = parser->get().body();
    body.data = chunk.data();
    body.size = chunk.size();
    lowest.expires_at(limits.for_read());
    co_await bhttp::async_read_some(stream, buffer, *parser, with_error(ec));
    if (ec == bhttp::error::need_buffer) {
      ec = {};
    }
    const std::size_t received = chunk.size() - parser->get().body().size;
    if (received > 0) {
      if (result.body_bytes + received > sink.max_bytes()) {
        co_return fail(result, failure::too_large,
                       "response body from " + host + " is longer than the " +
                           std::to_string(sink.max_bytes()) + " bytes allowed");
      }
      sink.write(std::string_view(chunk.data(), received));
      result.body_bytes += received;
    }
    if (ec) {
      co_return read_failure(result, ec, true, limits, host);
    }
  }
  co_return result;
}

// Resolution is not a tcp_stream operation, so a timer cancels it. The state is shared with the
// timer's handler, which may run after this coroutine has finished.
struct resolve_state {
  explicit resolve_state(asio::io_context& io) : resolver(io), timer(io) {}
  tcp::resolver resolver;
  asio::steady_timer timer;
  bool timed_out = false;
};

awaitable<std::vector<tcp::endpoint>> resolve(asio::io_context& io, const std::string& host,
                                              unsigned short port, steady_clock::time_point until,
                                              error_code& ec, bool& timed_out) {
  auto state = std::make_shared<resolve_state>(io);
  state->timer.expires_at(until);
  state->timer.async_wait([state](const error_code& wait_error) {
    if (!wait_error) {
      state->timed_out = true;
      state->resolver.cancel();
    }
  });
  const auto results = co_await state->resolver.async_resolve(
      host, std::to_string(port), tcp::resolver::numeric_service, with_error(ec));
  state->timer.cancel();
  timed_out = state->timed_out;
  std::vector<tcp::endpoint> endpoints;
  if (!ec) {
    for (const auto& entry : results) {
      endpoints.push_back(entry.endpoint());
    }
  }
  co_return endpoints;
}

}  // namespace

const char* to_string(failure kind) {
  switch (kind) {
    case failure::none:
      return "none";
    case failure::invalid_url:
      return "invalid_url";
    case failure::refused_by_policy:
      return "refused_by_policy";
    case failure::dns:
      return "dns";
    case failure::connect:
      return "connect";
    case failure::tls:
      return "tls";
    case failure::timeout:
      return "timeout";
    case failure::truncated:
      return "truncated";
    case failure::too_large:
      return "too_large";
    case failure::protocol:
      return "protocol";
  }
  return "unknown";
}

client::client(asio::io_context& io, destination_policy policy, ssl::context* tls)
    : io_(io), policy_(std::move(policy)), tls_(tls) {}

awaitable<fetch_result> client::fetch(std::string_view text, const request_options& options,
                                      body_sink& sink) {
  // Timeouts are clamped to a day so that adding them to now() cannot overflow.
  const auto clamp = [](std::chrono::milliseconds value) {
    return std::clamp(value, std::chrono::milliseconds(0), std::chrono::milliseconds(86'400'000));
  };
  const auto started = steady_clock::now();
  const deadlines limits{started + clamp(options.connect_timeout),
                         started + clamp(options.total_timeout), clamp(options.connect_timeout),
                         clamp(options.read_timeout), clamp(options.total_timeout)};
  std::string error;
  const std::optional<url> target = parse_url(text, &error);
  if (!target) {
    co_return failed(failure::invalid_url, error);
  }
  const std::string& host = target->host;
  const bool https = target->scheme == "https";
  if (!https && !policy_.allow_plain_http) {
    co_return failed(failure::refused_by_policy,
                     "plain http to " + host + " is not allowed (https only)");
  }
  if (https && tls_ == nullptr) {
    co_return failed(failure::refused_by_policy,
                     "https to " + host + " is not possible: no TLS context configured");
  }
  if (!policy_.allowed_hosts.empty() && !host_matches(host, policy_.allowed_hosts)) {
    co_return failed(failure::refused_by_policy, "host " + host + " is not in the allowed hosts");
  }
  std::optional<outgoing_request> req = build_request(*target, options, error);
  if (!req) {
    co_return failed(failure::protocol, error);
  }

  error_code ec;
  std::vector<tcp::endpoint> endpoints;
  const bool literal = [&] {
    error_code parse_error;
    const auto address = asio::ip::make_address(host, parse_error);
    if (!parse_error) {
      endpoints.emplace_back(address, target->port);
    }
    return !parse_error;
  }();
  if (!literal) {
    bool timed_out = false;
    endpoints = co_await resolve(io_, host, target->port, limits.for_connect(), ec, timed_out);
    if (timed_out) {
      co_return failed(failure::timeout, limits.timeout_message("resolving " + host, true));
    }
    if (ec || endpoints.empty()) {
      co_return failed(failure::dns, "cannot resolve " + host + ": " +
                                         (ec ? ec.message() : std::string("no addresses")));
    }
  }
  // Every address is checked, and only these checked endpoints are connected to: no second
  // resolution that a rebinding DNS server could answer differently.
  if (!policy_.allow_special_addresses) {
    for (const tcp::endpoint& endpoint : endpoints) {
      const address_kind kind = classify(endpoint.address());
      if (kind != address_kind::public_address) {
        const std::string address = endpoint.address().to_string();
        co_return failed(
            failure::refused_by_policy,
            (literal ? "address " + address : "host " + host + " resolves to " + address) + ", a " +
                describe(kind) + " address, which is not allowed");
      }
    }
  }

  beast::tcp_stream tcp(io_);
  error_code last_error;
  tcp::endpoint last_endpoint;
  bool connected = false;
  for (const tcp::endpoint& endpoint : endpoints) {
    tcp.expires_at(limits.for_connect());
    co_await tcp.async_connect(endpoint, with_error(ec));
    if (!ec) {
      connected = true;
      break;
    }
    last_error = ec;
    last_endpoint = endpoint;
    tcp.close();
    if (ec == beast::error::timeout) {
      break;
    }
  }
  if (!connected) {
    std::ostringstream where;
    where << last_endpoint;
    const std::string step = "connecting to " + host + " (" + where.str() + ")";
    if (last_error == beast::error::timeout) {
      co_return failed(failure::timeout, limits.timeout_message(step, true));
    }
    co_return failed(failure::connect, step + " failed: " + last_error.message());
  }

  if (!https) {
    co_return co_await exchange(tcp, tcp, *req, limits, host, sink);
  }

  ssl::stream<beast::tcp_stream> stream(std::move(tcp), *tls_);
  // SNI carries names only, never IP literals (RFC 6066).
  if (!literal && !SSL_set_tlsext_host_name(stream.native_handle(), host.c_str())) {
    co_return failed(failure::tls, "cannot set the TLS server name " + host);
  }
  stream.set_verify_mode(ssl::verify_peer);
  // OpenSSL records no reason when the name check fails; note it for the failure message.
  bool name_mismatch = false;
  stream.set_verify_callback([&name_mismatch, check = ssl::host_name_verification(host)](
                                 bool preverified, ssl::verify_context& context) {
    const bool verified = check(preverified, context);
    name_mismatch = name_mismatch || (preverified && !verified);
    return verified;
  });
  beast::get_lowest_layer(stream).expires_at(limits.for_connect());
  co_await stream.async_handshake(ssl::stream_base::client, with_error(ec));
  if (ec) {
    const std::string step = "TLS handshake with " + host;
    if (ec == beast::error::timeout) {
      co_return failed(failure::timeout, limits.timeout_message(step, true));
    }
    std::string message = step + " failed: " + ec.message();
    const long verify = SSL_get_verify_result(stream.native_handle());
    if (name_mismatch) {
      message += " (the certificate is not for " + host + ")";
    } else if (verify != X509_V_OK) {
      message += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
    }
    co_return failed(failure::tls, message);
  }
  co_return co_await exchange(stream, beast::get_lowest_layer(stream), *req, limits, host, sink);
}

}  // namespace archiver::http
