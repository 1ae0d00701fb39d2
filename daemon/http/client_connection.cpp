// The connection half of the outgoing client: resolution under a deadline, the address policy
// check, TCP connect, a CONNECT tunnel through a proxy, and the verified TLS handshake.
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "http/client_detail.hpp"

namespace archiver::http::client_detail {

namespace {

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

awaitable<fetch_result> open_connection(asio::io_context& io, const destination_policy& policy,
                                        ssl::context* tls, const url& target,
                                        const proxy_endpoint* proxy, const deadlines& limits,
                                        connection& conn) {
  fetch_result failure;
  const std::string& host = target.host;
  // Through a proxy the destination is resolved only for the policy check (see client.hpp).
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

}  // namespace archiver::http::client_detail
