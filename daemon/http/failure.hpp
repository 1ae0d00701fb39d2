// How an HTTP fetch failed without an answer, apart from the client so that the retry table
// (retry/table.hpp) can decide on it without Asio.
#pragma once

namespace archiver::http {

// The closed set of ways a fetch fails; fetch_result::message says which host and why.
enum class failure {
  none,
  invalid_url,        // not an absolute http(s) URL the client may send
  refused_by_policy,  // plain http, https without TLS, host not allowed, non-public address
  dns,                // the name did not resolve
  connect,            // TCP connect failed, or the proxy refused the tunnel
  tls,                // handshake (certificate, host name) or a TLS error later
  timeout,            // a connect, read or total deadline passed (waiting for a slot included)
  truncated,          // the connection broke before the request was sent or the response ended
  too_large,          // the body passed the sink's cap, or the header passed 64 KiB
  protocol            // malformed response, unsafe request method/header, short body_stream
};
// The enumerator's name ("timeout"); a static string, never null. Thread-safe.
const char* to_string(failure kind);

}  // namespace archiver::http
