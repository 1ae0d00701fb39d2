// The connection: reads each request under its deadlines and size caps, checks its framing
// strictly, refuses what cannot be read, hands the rest to routing, writes the answer and keeps
// the connection alive while the request, the per-connection cap and the drain allow.
#include "http/server_detail.hpp"

#include "http/framing.hpp"

namespace archiver::http {
namespace bhttp = beast::http;
using server_detail::status_for_read_error;
using std::chrono::steady_clock;

namespace {

std::string_view buffer_view(const beast::flat_buffer& buffer) {
  const auto bytes = buffer.data();
  return {static_cast<const char*>(bytes.data()), bytes.size()};
}

// A read that ended because the peer went away or a deadline passed: nothing to answer.
bool is_disconnect(const error_code& ec) {
  return ec == beast::error::timeout || ec == asio::error::operation_aborted ||
         ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
         ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::ssl::error::stream_truncated;
}

// Feeds `parser` what `buffer` already holds until `enough(parser)`, with no I/O. Returns false
// when it needs more bytes (the async read then goes on from where this stopped); else `ec` is
// what Beast's async read would have reported. An async read whose bytes are all buffered still
// completes through a post, and under load each post waits behind every other connection's
// ready work: most requests arrive in one segment, so this saves two such waits per request.
template <class Enough>
bool parse_buffered(beast::flat_buffer& buffer, bhttp::request_parser<bhttp::string_body>& parser,
                    error_code& ec, Enough enough) {
  ec = {};
  while (!enough(parser)) {
    if (buffer.size() == 0) {
      return false;
    }
    const std::size_t used = parser.put(buffer.data(), ec);
    buffer.consume(used);
    if (ec == bhttp::error::need_more || (!ec && used == 0)) {
      ec = {};
      return false;
    }
    if (ec) {
      return true;
    }
  }
  return true;
}

}  // namespace

template <class Stream>
awaitable<void> server::impl::serve_connection(Stream& stream, connection& state) {
  auto& lowest = beast::get_lowest_layer(stream);
  beast::flat_buffer buffer;
  error_code ec;

  // Answers an unreadable request and ends the connection. The peer may still be sending, so
  // read (and drop) a little before closing: closing with unread data sends a reset that can
  // destroy the answer before the client reads it.
  auto refuse = [&](unsigned version, status code, std::string message,
                    std::string_view route) -> awaitable<void> {
    response res = text_response(code, std::move(message) + "\n");
    res.version(version == 10 ? 10 : 11);
    res.keep_alive(false);
    res.prepare_payload();
    metrics_.requests.inc({name_, route, std::to_string(static_cast<unsigned>(code))});
    lowest.expires_after(limits_.body_timeout);
    co_await bhttp::async_write(stream, res, with_error(ec));
    if (ec) {
      co_return;
    }
    lowest.socket().shutdown(tcp::socket::shutdown_send, ec);
    lowest.expires_after(std::chrono::milliseconds(500));
    std::size_t drained = 0;
    while (!ec && drained < 256 * 1024) {
      buffer.clear();
      drained += co_await stream.async_read_some(buffer.prepare(16 * 1024), with_error(ec));
    }
  };

  for (std::size_t served = 0;; ++served) {
    state.idle = true;
    state.in_handler = false;
    if (served > 0) {
      note_progress(state);
    }
    // Empty lines between requests are ignored (RFC 9112 2.2), so a CRLF after a body is no
    // request of its own.
    buffer.consume(framing::empty_line_prefix(buffer_view(buffer)));
    // The first request must arrive whole within the header timeout of the accept (a client that
    // connects and says nothing is a slowloris too); later ones get the idle timeout to start.
    auto header_deadline = steady_clock::now() + limits_.header_timeout;
    if (buffer.size() == 0) {
      if (draining_) {
        co_return;
      }
      if (served == 0) {
        lowest.expires_at(header_deadline);
      } else {
        lowest.expires_after(limits_.idle_timeout);
      }
      const std::size_t n = co_await stream.async_read_some(buffer.prepare(4096), with_error(ec));
      if (ec) {
        co_return;  // closed, idle too long, or closed by the drain
      }
      buffer.commit(n);
      if (served > 0) {
        header_deadline = steady_clock::now() + limits_.header_timeout;
      }
    }
    state.idle = false;

    // The raw head is checked strictly (framing.hpp) as it arrives, then Beast parses it from
    // the buffer.
    lowest.expires_at(header_deadline);
    framing::head_checker checker;
    framing::head_result head = checker.check(buffer_view(buffer));
    while (head.state == framing::head_state::incomplete &&
           buffer.size() < limits_.max_header_bytes) {
      const std::size_t n = co_await stream.async_read_some(buffer.prepare(4096), with_error(ec));
      if (ec) {
        co_return;  // closed mid-head or too slow: nothing to answer
      }
      buffer.commit(n);
      head = checker.check(buffer_view(buffer));
    }
    if (head.state == framing::head_state::incomplete) {
      co_await refuse(
          11, status::request_header_fields_too_large,
          "request header larger than " + std::to_string(limits_.max_header_bytes) + " bytes",
          "unmatched");
      co_return;
    }
    if (head.state == framing::head_state::invalid) {
      co_await refuse(11, status::bad_request, "bad request: " + head.problem, "unmatched");
      co_return;
    }
    buffer.consume(head.skip);

    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(limits_.max_header_bytes));
    parser.body_limit(limits_.max_body_bytes);
    parser.eager(false);  // as async_read_header: the header alone first
    const auto header_done = [](const auto& p) { return p.is_header_done(); };
    if (!parse_buffered(buffer, parser, ec, header_done)) {
      // Not expected, since the checker read the whole head; a head Beast still finds
      // incomplete is read on rather than refused.
      co_await bhttp::async_read_header(stream, buffer, parser, with_error(ec));
    }
    if (ec) {
      if (!is_disconnect(ec)) {
        co_await refuse(11, status_for_read_error(ec), "bad request: " + ec.message(), "unmatched");
      }
      co_return;
    }

    const request& header = parser.get();
    const auto route = routes_.match(header.target());
    const std::string route_label = route ? std::string(route->label) : "unmatched";
    if (header.target().size() > limits_.max_uri_bytes) {
      co_await refuse(header.version(), status::uri_too_long, "request target too long",
                      route_label);
      co_return;
    }
    if (head.other_codings) {
      // Framed by its final chunked coding, but we decode no other transfer coding, and a proxy
      // in front of us may not frame it alike.
      co_await refuse(header.version(), status::bad_request,
                      "bad request: transfer coding other than chunked", route_label);
      co_return;
    }
    if (beast::iequals(header[bhttp::field::expect], "100-continue")) {
      bhttp::response<bhttp::empty_body> go_on{status::continue_, header.version()};
      lowest.expires_after(limits_.body_timeout);
      co_await bhttp::async_write(stream, go_on, with_error(ec));
      if (ec) {
        co_return;
      }
    }

    lowest.expires_after(limits_.body_timeout);
    if (parser.chunked()) {
      // A chunked body is checked strictly (framing.hpp) as it arrives, then Beast parses it from
      // the buffer. The buffer is capped: chunk data by the body limit, chunk lines and trailer
      // by the header limit.
      framing::chunked_checker checker(limits_.max_body_bytes);
      framing::body_result body = checker.check(buffer_view(buffer));
      while (body.state == framing::body_state::incomplete &&
             buffer.size() < limits_.max_body_bytes + limits_.max_header_bytes) {
        const std::size_t n = co_await stream.async_read_some(buffer.prepare(4096), with_error(ec));
        if (ec) {
          co_return;  // closed mid-body or too slow: nothing to answer
        }
        buffer.commit(n);
        body = checker.check(buffer_view(buffer));
      }
      if (body.state == framing::body_state::invalid) {
        co_await refuse(header.version(), status::bad_request, "bad request: " + body.problem,
                        route_label);
        co_return;
      }
      if (body.state != framing::body_state::complete) {
        co_await refuse(
            header.version(), status::payload_too_large,
            "request body larger than " + std::to_string(limits_.max_body_bytes) + " bytes",
            route_label);
        co_return;
      }
    }
    parser.eager(true);  // as async_read
    const auto message_done = [](const auto& p) { return p.is_done(); };
    if (!parse_buffered(buffer, parser, ec, message_done)) {
      co_await bhttp::async_read(stream, buffer, parser, with_error(ec));
    }
    if (ec) {
      if (ec == bhttp::error::body_limit) {
        co_await refuse(header.version(), status::payload_too_large,
                        "request body larger than " + std::to_string(limits_.max_body_bytes) +
                            " bytes",
                        route_label);
      } else if (!is_disconnect(ec)) {
        co_await refuse(header.version(), status::bad_request, "bad request: " + ec.message(),
                        route_label);
      }
      co_return;
    }

    // No deadline while the handler runs: it does no I/O on this connection (a streaming
    // handler's writes set their own).
    lowest.expires_never();
    request req = parser.release();
    state.in_handler = true;
    if (route && route->on_stream != nullptr) {
      const bool go_on = co_await serve_streamed(
          stream, req, *route->on_stream,
          req.keep_alive() && served + 1 < limits_.max_requests_per_connection, route_label);
      if (!go_on) {
        co_return;
      }
      continue;
    }
    response res = co_await dispatch(req, route, route_label);
    // Writing the answer waits on the peer again (a slow reader may stall it): sheddable.
    state.in_handler = false;
    const bool keep_alive =
        req.keep_alive() && !draining_ && served + 1 < limits_.max_requests_per_connection;
    res.version(req.version());
    res.keep_alive(keep_alive);
    res.prepare_payload();
    metrics_.requests.inc({name_, route_label, std::to_string(res.result_int())});

    lowest.expires_after(limits_.body_timeout);
    co_await bhttp::async_write(stream, res, with_error(ec));
    if (ec || !keep_alive) {
      co_return;
    }
  }
}

template awaitable<void> server::impl::serve_connection(server_detail::plain_stream&, connection&);
template awaitable<void> server::impl::serve_connection(server_detail::tls_stream&, connection&);

}  // namespace archiver::http
