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
#include <stdexcept>

#include "http/connection_pool.hpp"
#include "http/url.hpp"

namespace archiver::http {
namespace bhttp = beast::http;
using std::chrono::steady_clock;

namespace {

using outgoing_request = bhttp::request<bhttp::string_body>;

constexpr std::size_t max_response_header_bytes = 64 * 1024;
constexpr std::size_t body_chunk_bytes = 64 * 1024;

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
                                              bool keep_alive, std::string& error) {
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
  // HTTP/1.1 connections persist by default; without the pool, say that this one will not.
  if (!keep_alive) {
    req.set(bhttp::field::connection, "close");
  }
  if (options.body_stream != nullptr) {
    if (!options.body.empty()) {
      error = "a request has either a body or a body stream, not both";
      return std::nullopt;
    }
    // Only the header goes through Beast; exchange() writes the body from the source.
    req.content_length(options.body_stream->size());
    return req;
  }
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

// What one request/response exchange on a connection came to.
struct exchange_outcome {
  fetch_result result;
  bool reusable = false;          // complete, the server keeps the connection open, nothing extra
  bool nothing_received = false;  // failed as a connection closed before any response byte
};

// The connection was closed (or reset) under us: on a pooled connection, the server closed it
// while idle.
bool is_closed_connection(const error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
         ec == ssl::error::stream_truncated || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::connection_aborted ||
         ec == asio::error::not_connected;
}

// Writes the request and streams the response into `sink`. `lowest` is the tcp_stream under
// `stream` (the same object for plain HTTP), whose expiry bounds each step.
// Writes the header of `req`, then the body from `source`, each chunk under the read deadline.
// Sets `ec`; a source that ends early sets `short_by` to the missing byte count.
template <class Stream>
awaitable<void> write_streamed(Stream& stream, beast::tcp_stream& lowest,
                               const outgoing_request& req, body_source& source,
                               const deadlines& limits, error_code& ec, std::uint64_t& short_by) {
  source.rewind();
  bhttp::request_serializer<bhttp::string_body> serializer(req);
  lowest.expires_at(limits.for_read());
  co_await bhttp::async_write_header(stream, serializer, with_error(ec));
  std::vector<char> chunk(body_chunk_bytes);
  std::uint64_t left = source.size();
  while (!ec && left > 0) {
    const std::size_t wanted =
        static_cast<std::size_t>(std::min<std::uint64_t>(left, chunk.size()));
    const std::size_t got = source.read(chunk.data(), wanted);
    if (got == 0) {
      short_by = left;
      co_return;
    }
    left -= got;
    lowest.expires_at(limits.for_read());
    co_await asio::async_write(stream, asio::buffer(chunk.data(), got), with_error(ec));
  }
}

template <class Stream>
awaitable<exchange_outcome> exchange(Stream& stream, beast::tcp_stream& lowest,
                                     const outgoing_request& req, body_source* source,
                                     const deadlines& limits, const std::string& host,
                                     body_sink& sink) {
  exchange_outcome outcome;
  fetch_result& result = outcome.result;
  error_code ec;
  if (source != nullptr) {
    std::uint64_t short_by = 0;
    co_await write_streamed(stream, lowest, req, *source, limits, ec, short_by);
    if (short_by > 0) {
      fail(result, failure::protocol,
           "the request body for " + host + " ended " + std::to_string(short_by) +
               " bytes short of its announced " + std::to_string(source->size()));
      co_return outcome;
    }
  } else {
    lowest.expires_at(limits.for_read());
    co_await bhttp::async_write(stream, req, with_error(ec));
  }
  if (ec) {
    if (ec == beast::error::timeout) {
      fail(result, failure::timeout,
           limits.timeout_message("sending the request to " + host, false));
      co_return outcome;
    }
    outcome.nothing_received = is_closed_connection(ec);
    fail(result, is_tls_error(ec) ? failure::tls : failure::truncated,
         "sending the request to " + host + " failed: " + ec.message());
    co_return outcome;
  }

  beast::flat_buffer buffer;
  // Beast reads as much as the buffer's free capacity: a fresh buffer would mean 512-byte reads.
  buffer.reserve(body_chunk_bytes);
  std::optional<bhttp::response_parser<bhttp::buffer_body>> parser;
  bool interim_seen = false;
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
      outcome.nothing_received = !interim_seen && buffer.size() == 0 && is_closed_connection(ec);
      read_failure(result, ec, false, limits, host);
      co_return outcome;
    }
    // Interim responses (100 Continue, 103 Early Hints) precede the real one.
    const int status = parser->get().result_int();
    if (status < 100 || status >= 200 || status == 101) {
      break;
    }
    interim_seen = true;
  }
  result.head.status = parser->get().result_int();
  for (const auto& field : parser->get()) {
    result.head.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  // A HEAD, 204 or 304 response is done here: its Content-Length announces no body.
  if (const auto length = parser->content_length();
      length && !parser->is_done() && *length > sink.max_bytes()) {
    fail(result, failure::too_large,
         "response from " + host + " announces " + std::to_string(*length) +
             " bytes, more than the " + std::to_string(sink.max_bytes()) + " allowed");
    co_return outcome;
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
        fail(result, failure::too_large,
             "response body from " + host + " is longer than the " +
                 std::to_string(sink.max_bytes()) + " bytes allowed");
        co_return outcome;
      }
      sink.write(std::string_view(chunk.data(), received));
      result.body_bytes += received;
    }
    if (ec) {
      read_failure(result, ec, true, limits, host);
      co_return outcome;
    }
  }
  // Bytes after the response would be read as the next response: such a connection is not reused.
  outcome.reusable = parser->keep_alive() && buffer.size() == 0;
  co_return outcome;
}

// Resolution is not a tcp_stream operation and getaddrinfo cannot be interrupted, so the fetch
// waits on a timer that either the deadline or the resolver's completion ends. A resolution that
// outlives its deadline finishes in the background: its handler holds the shared state.
struct resolve_state {
  explicit resolve_state(asio::io_context& io) : resolver(io), wake(io) {}
  tcp::resolver resolver;
  asio::steady_timer wake;
  bool done = false;
  error_code error;
  std::vector<tcp::endpoint> endpoints;
};

awaitable<std::vector<tcp::endpoint>> resolve(asio::io_context& io, const std::string& host,
                                              unsigned short port, steady_clock::time_point until,
                                              error_code& ec, bool& timed_out) {
  if (steady_clock::now() >= until) {
    timed_out = true;
    co_return std::vector<tcp::endpoint>{};
  }
  auto state = std::make_shared<resolve_state>(io);
  state->wake.expires_at(until);
  state->resolver.async_resolve(
      host, std::to_string(port), tcp::resolver::numeric_service,
      [state](const error_code& error, const tcp::resolver::results_type& results) {
        state->done = true;
        state->error = error;
        for (const auto& entry : results) {
          state->endpoints.push_back(entry.endpoint());
        }
        state->wake.cancel();
      });
  error_code ignored;
  co_await state->wake.async_wait(with_error(ignored));
  timed_out = !state->done;
  if (timed_out) {
    state->resolver.cancel();
    co_return std::vector<tcp::endpoint>{};
  }
  ec = state->error;
  co_return std::move(state->endpoints);
}

// The addresses of `host`: itself when an IP literal, else resolved under the connect deadline.
// Sets `failure` (dns or timeout) and returns nothing when that fails.
awaitable<std::vector<tcp::endpoint>> addresses_of(asio::io_context& io, const std::string& host,
                                                   unsigned short port, const deadlines& limits,
                                                   fetch_result& failure) {
  error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (!ec) {
    co_return std::vector<tcp::endpoint>{tcp::endpoint(address, port)};
  }
  bool timed_out = false;
  auto endpoints = co_await resolve(io, host, port, limits.for_connect(), ec, timed_out);
  if (timed_out) {
    fail(failure, failure::timeout, limits.timeout_message("resolving " + host, true));
  } else if (ec || endpoints.empty()) {
    fail(failure, failure::dns,
         "cannot resolve " + host + ": " + (ec ? ec.message() : std::string("no addresses")));
  }
  co_return endpoints;
}

bool is_literal(const std::string& host) {
  error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// Refuses when any of the addresses `host` resolved to is not a public one. Every address is
// checked, and only these checked endpoints are connected to: no second resolution that a
// rebinding DNS server could answer differently.
bool check_addresses(const std::string& host, const std::vector<tcp::endpoint>& endpoints,
                     fetch_result& failure) {
  for (const tcp::endpoint& endpoint : endpoints) {
    const address_kind kind = classify(endpoint.address());
    if (kind != address_kind::public_address) {
      const std::string address = endpoint.address().to_string();
      fail(failure, failure::refused_by_policy,
           (is_literal(host) ? "address " + address : "host " + host + " resolves to " + address) +
               ", a " + describe(kind) + " address, which is not allowed");
      return false;
    }
  }
  return true;
}

// Connects `tcp` to the first of `endpoints` that accepts. `what` names the peer in messages.
awaitable<bool> connect_any(beast::tcp_stream& tcp, const std::vector<tcp::endpoint>& endpoints,
                            const deadlines& limits, const std::string& what,
                            fetch_result& failure) {
  error_code ec;
  error_code last_error;
  tcp::endpoint last_endpoint;
  for (const tcp::endpoint& endpoint : endpoints) {
    tcp.expires_at(limits.for_connect());
    co_await tcp.async_connect(endpoint, with_error(ec));
    if (!ec) {
      co_return true;
    }
    last_error = ec;
    last_endpoint = endpoint;
    tcp.close();
    if (ec == beast::error::timeout) {
      break;
    }
  }
  std::ostringstream where;
  where << last_endpoint;
  const std::string step = "connecting to " + what + " (" + where.str() + ")";
  if (last_error == beast::error::timeout) {
    fail(failure, failure::timeout, limits.timeout_message(step, true));
  } else {
    fail(failure, failure::connect, step + " failed: " + last_error.message());
  }
  co_return false;
}

// Asks the proxy on `tcp` for a tunnel to target:port. The Proxy-Authorization value never
// appears in a failure message.
awaitable<bool> open_tunnel(beast::tcp_stream& tcp, const proxy_endpoint& proxy, const url& target,
                            const deadlines& limits, fetch_result& failure) {
  const std::string authority =
      (target.host.find(':') != std::string::npos ? "[" + target.host + "]" : target.host) + ":" +
      std::to_string(target.port);
  std::string request = "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n";
  if (!proxy.authorization.empty()) {
    request += "Proxy-Authorization: " + proxy.authorization + "\r\n";
  }
  request += "\r\n";
  const std::string step = "opening a tunnel to " + authority + " through proxy " + proxy.display();
  error_code ec;
  tcp.expires_at(limits.for_connect());
  co_await asio::async_write(tcp, asio::buffer(request), with_error(ec));
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::empty_body> parser;
  parser.header_limit(max_response_header_bytes);
  // A 2xx answer to CONNECT has no body; the tunnel starts right after the header.
  parser.skip(true);
  if (!ec) {
    co_await bhttp::async_read_header(tcp, buffer, parser, with_error(ec));
  }
  if (ec) {
    if (ec == beast::error::timeout) {
      fail(failure, failure::timeout, limits.timeout_message(step, true));
    } else {
      fail(failure, failure::connect, step + " failed: " + ec.message());
    }
    co_return false;
  }
  const auto& head = parser.get();
  if (head.result_int() < 200 || head.result_int() >= 300) {
    fail(failure, failure::connect,
         "proxy " + proxy.display() + " refused the tunnel to " + authority + ": HTTP/" +
             std::to_string(head.version() / 10) + "." + std::to_string(head.version() % 10) +
             " " + std::to_string(head.result_int()) + " " + std::string(head.reason()));
    co_return false;
  }
  if (buffer.size() != 0) {
    fail(failure, failure::protocol, step + ": the proxy sent data before the tunnel was used");
    co_return false;
  }
  co_return true;
}

// TLS over `conn`'s TCP stream, verifying the certificate against `host`.
awaitable<bool> start_tls(connection& conn, ssl::context& tls, const std::string& host,
                          const deadlines& limits, fetch_result& failure) {
  auto& stream = conn.secure.emplace(std::move(*conn.plain), tls);
  conn.plain.reset();
  // SNI carries names only, never IP literals (RFC 6066).
  if (!is_literal(host) && !SSL_set_tlsext_host_name(stream.native_handle(), host.c_str())) {
    fail(failure, failure::tls, "cannot set the TLS server name " + host);
    co_return false;
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
  error_code ec;
  conn.lowest().expires_at(limits.for_connect());
  co_await stream.async_handshake(ssl::stream_base::client, with_error(ec));
  // The callback refers to this frame's name_mismatch; a reused connection must not call it.
  stream.set_verify_callback([](bool preverified, ssl::verify_context&) { return preverified; });
  if (!ec) {
    co_return true;
  }
  const std::string step = "TLS handshake with " + host;
  if (ec == beast::error::timeout) {
    fail(failure, failure::timeout, limits.timeout_message(step, true));
    co_return false;
  }
  std::string message = step + " failed: " + ec.message();
  const long verify = SSL_get_verify_result(stream.native_handle());
  if (name_mismatch) {
    message += " (the certificate is not for " + host + ")";
  } else if (verify != X509_V_OK) {
    message += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
  }
  fail(failure, failure::tls, message);
  co_return false;
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

namespace {

// A new connection to `target` (through `proxy` when not null), ready for requests: the policy
// checked on the addresses, TCP connected, the tunnel open, TLS verified.
awaitable<fetch_result> open_connection(asio::io_context& io, const destination_policy& policy,
                                        ssl::context* tls, const url& target,
                                        const proxy_endpoint* proxy, const deadlines& limits,
                                        connection& conn) {
  fetch_result failure;
  const std::string& host = target.host;
  // Through a proxy the destination is resolved only for the policy check (see the header).
  std::vector<tcp::endpoint> endpoints;
  if (!proxy || !policy.allow_special_addresses) {
    endpoints = co_await addresses_of(io, host, target.port, limits, failure);
    if (failure.error != failure::none) {
      co_return failure;
    }
    if (!policy.allow_special_addresses && !check_addresses(host, endpoints, failure)) {
      co_return failure;
    }
  }
  conn.plain.emplace(io);
  // Each step is its own statement: GCC 12 miscompiles co_await inside || and ?:.
  bool ok = false;
  if (proxy) {
    const auto proxy_addresses =
        co_await addresses_of(io, proxy->host, proxy->port, limits, failure);
    if (failure.error != failure::none) {
      co_return failure;
    }
    ok = co_await connect_any(*conn.plain, proxy_addresses, limits, "proxy " + proxy->display(),
                              failure);
    if (ok) {
      ok = co_await open_tunnel(*conn.plain, *proxy, target, limits, failure);
    }
  } else {
    ok = co_await connect_any(*conn.plain, endpoints, limits, host, failure);
  }
  if (ok && target.scheme == "https") {
    co_await start_tls(conn, *tls, host, limits, failure);
  }
  co_return failure;
}

}  // namespace

client::client(asio::io_context& io, destination_policy policy, ssl::context* tls,
               client_settings settings)
    : io_(io), policy_(std::move(policy)), tls_(tls), settings_(std::move(settings)) {
  if (settings_.max_connections_per_host == 0) {
    throw std::invalid_argument("http client: max_connections_per_host must be at least 1");
  }
  const auto parse_proxy = [](const std::string& text, const char* name) {
    std::optional<proxy_endpoint> endpoint;
    if (!text.empty()) {
      std::string error;
      endpoint = parse_proxy_url(text, &error);
      if (!endpoint) {
        throw std::invalid_argument(std::string("http client: ") + name + ": " + error);
      }
    }
    return endpoint;
  };
  https_proxy_ = parse_proxy(settings_.proxy.https_proxy, "https_proxy");
  http_proxy_ = parse_proxy(settings_.proxy.http_proxy, "http_proxy");
  pool_limits limits;
  limits.max_per_host = settings_.max_connections_per_host;
  limits.max_idle_per_host = settings_.keep_alive ? settings_.max_idle_per_host : 0;
  limits.idle_timeout = settings_.idle_timeout;
  pool_ = std::make_shared<connection_pool>(io_, limits);
}

client::~client() = default;

client_stats client::stats() const {
  return client_stats{pool_->opened(), pool_->reused()};
}

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
  std::optional<outgoing_request> req = build_request(*target, options, settings_.keep_alive, error);
  if (!req) {
    co_return failed(failure::protocol, error);
  }
  const std::optional<proxy_endpoint>& configured = https ? https_proxy_ : http_proxy_;
  const proxy_endpoint* proxy =
      configured && !bypasses_proxy(host, target->port, settings_.proxy.no_proxy) ? &*configured
                                                                                  : nullptr;
  const std::string key = target->scheme + "://" + host_header(*target) + ":" +
                          std::to_string(target->port) +
                          (proxy ? " via " + proxy->display() : std::string());

  for (int attempt = 0;; ++attempt) {
    std::optional<connection_lease> lease =
        co_await pool_->acquire(key, limits.for_connect(), attempt > 0);
    if (!lease) {
      co_return failed(failure::timeout,
                       limits.timeout_message("waiting for one of the " +
                                                  std::to_string(settings_.max_connections_per_host) +
                                                  " connections to " + host + " to be free",
                                              true));
    }
    if (!lease->conn) {
      auto conn = std::make_unique<connection>();
      fetch_result failure = co_await open_connection(io_, policy_, tls_, *target, proxy, limits, *conn);
      if (failure.error != failure::none) {
        co_return failure;
      }
      lease->conn = std::move(conn);
      pool_->count_opened();
    }
    connection& conn = *lease->conn;
    // Not a conditional expression: GCC 12 miscompiles co_await inside one.
    exchange_outcome outcome;
    if (conn.secure) {
      outcome = co_await exchange(*conn.secure, conn.lowest(), *req, options.body_stream, limits,
                                  host, sink);
    } else {
      outcome = co_await exchange(*conn.plain, conn.lowest(), *req, options.body_stream, limits,
                                  host, sink);
    }
    if (outcome.result.error == failure::none) {
      if (outcome.reusable) {
        lease->keep();
      }
      co_return outcome.result;
    }
    // Only a kept-alive connection the server closed before answering is worth a second try;
    // the lease going out of scope closes it.
    if (!(lease->reused() && outcome.nothing_received && attempt == 0)) {
      co_return outcome.result;
    }
  }
}

}  // namespace archiver::http
