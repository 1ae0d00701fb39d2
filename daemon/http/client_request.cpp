// The request half of the outgoing client: building a request from the caller's options, sending
// it (body from memory or a body_source), reading the response header under the deadlines.
#include <algorithm>
#include <cctype>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "http/client_detail.hpp"

namespace archiver::http::client_detail {

namespace {

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

bool is_tls_error(const error_code& ec) {
  return ec.category() == asio::error::get_ssl_category() && ec != ssl::error::stream_truncated;
}

// The connection was closed (or reset) under us: on a pooled connection, the server closed it
// while idle.
bool is_closed_connection(const error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
         ec == ssl::error::stream_truncated || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::connection_aborted ||
         ec == asio::error::not_connected;
}

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

}  // namespace

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
  co_await read_body(stream, lowest, buffer, *parser, limits, host, sink, outcome);
  co_return outcome;
}

template awaitable<exchange_outcome> exchange(beast::tcp_stream&, beast::tcp_stream&,
                                              const outgoing_request&, body_source*,
                                              const deadlines&, const std::string&, body_sink&);
template awaitable<exchange_outcome> exchange(ssl::stream<beast::tcp_stream>&, beast::tcp_stream&,
                                              const outgoing_request&, body_source*,
                                              const deadlines&, const std::string&, body_sink&);

}  // namespace archiver::http::client_detail
