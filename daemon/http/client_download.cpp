// The download half of the outgoing client: a response body streamed chunk by chunk into the
// caller's body_sink, refused as too_large once it would pass the sink's cap.
#include <array>
#include <string>
#include <string_view>

#include "http/client_detail.hpp"

namespace archiver::http::client_detail {

template <class Stream>
awaitable<void> read_body(Stream& stream, beast::tcp_stream& lowest, beast::flat_buffer& buffer,
                          bhttp::response_parser<bhttp::buffer_body>& parser,
                          const deadlines& limits, const std::string& host, body_sink& sink,
                          exchange_outcome& outcome) {
  fetch_result& result = outcome.result;
  error_code ec;
  // A HEAD, 204 or 304 response is done here: its Content-Length announces no body.
  if (const auto length = parser.content_length();
      length && !parser.is_done() && *length > sink.max_bytes()) {
    fail(result, failure::too_large,
         "response from " + host + " announces " + std::to_string(*length) +
             " bytes, more than the " + std::to_string(sink.max_bytes()) + " allowed");
    co_return;
  }

  std::array<char, body_chunk_bytes> chunk;
  while (!parser.is_done()) {
    auto& body = parser.get().body();
    body.data = chunk.data();
    body.size = chunk.size();
    lowest.expires_at(limits.for_read());
    co_await bhttp::async_read_some(stream, buffer, parser, with_error(ec));
    if (ec == bhttp::error::need_buffer) {
      ec = {};
    }
    const std::size_t received = chunk.size() - parser.get().body().size;
    if (received > 0) {
      if (result.body_bytes + received > sink.max_bytes()) {
        fail(result, failure::too_large,
             "response body from " + host + " is longer than the " +
                 std::to_string(sink.max_bytes()) + " bytes allowed");
        co_return;
      }
      sink.write(std::string_view(chunk.data(), received));
      result.body_bytes += received;
    }
    if (ec) {
      read_failure(result, ec, true, limits, host);
      co_return;
    }
  }
  // Bytes after the response would be read as the next response: such a connection is not reused.
  outcome.reusable = parser.keep_alive() && buffer.size() == 0;
}

template awaitable<void> read_body(beast::tcp_stream&, beast::tcp_stream&, beast::flat_buffer&,
                                   bhttp::response_parser<bhttp::buffer_body>&, const deadlines&,
                                   const std::string&, body_sink&, exchange_outcome&);
template awaitable<void> read_body(ssl::stream<beast::tcp_stream>&, beast::tcp_stream&,
                                   beast::flat_buffer&, bhttp::response_parser<bhttp::buffer_body>&,
                                   const deadlines&, const std::string&, body_sink&,
                                   exchange_outcome&);

}  // namespace archiver::http::client_detail
