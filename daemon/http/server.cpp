#include "http/server.hpp"

#include "http/framing.hpp"
#include "ops/logging.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <stdexcept>

namespace archiver::http {
namespace bhttp = beast::http;
using std::chrono::steady_clock;

namespace {

auto with_error(error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

status status_for_read_error(const error_code& ec) {
  if (ec == bhttp::error::header_limit) {
    return status::request_header_fields_too_large;
  }
  if (ec == bhttp::error::body_limit) {
    return status::payload_too_large;
  }
  return status::bad_request;
}

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

}  // namespace

response text_response(status code, std::string body) {
  response res{code, 11};
  res.set(bhttp::field::content_type, "text/plain; charset=utf-8");
  res.body() = std::move(body);
  return res;
}

void router::add(std::string path, handler on_request) {
  routes_.emplace_back(std::move(path), std::move(on_request));
}

void router::add_prefix(std::string prefix, handler on_request) {
  prefixes_.emplace_back(std::move(prefix), std::move(on_request));
}

void router::add_prefix_streaming(std::string prefix, streaming_handler on_request) {
  streaming_prefixes_.emplace_back(std::move(prefix), std::move(on_request));
}

std::optional<router::match_result> router::match(std::string_view target) const {
  const std::string_view path = target_path(target);
  for (const auto& route : routes_) {
    if (route.first == path) {
      return match_result{route.first, &route.second, nullptr};
    }
  }
  std::optional<match_result> longest;
  for (const auto& route : prefixes_) {
    if (path.starts_with(route.first) && (!longest || route.first.size() > longest->label.size())) {
      longest = match_result{route.first, &route.second, nullptr};
    }
  }
  for (const auto& route : streaming_prefixes_) {
    if (path.starts_with(route.first) && (!longest || route.first.size() > longest->label.size())) {
      longest = match_result{route.first, nullptr, &route.second};
    }
  }
  return longest;
}

const std::pair<std::string, handler>* router::find(std::string_view target) const {
  const std::string_view path = target_path(target);
  for (const auto& route : routes_) {
    if (route.first == path) {
      return &route;
    }
  }
  const std::pair<std::string, handler>* longest = nullptr;
  for (const auto& route : prefixes_) {
    if (path.starts_with(route.first) &&
        (longest == nullptr || route.first.size() > longest->first.size())) {
      longest = &route;
    }
  }
  return longest;
}

std::string_view target_path(std::string_view target) {
  return target.substr(0, target.find('?'));
}

awaitable<bool> response_stream::send_header(response_header head) {
  if (header_sent_) {
    throw std::logic_error("response_stream: header sent twice");
  }
  const auto length = head.find(bhttp::field::content_length);
  if (length == head.end()) {
    throw std::logic_error("response_stream: the header must carry Content-Length");
  }
  content_length_ = std::stoull(std::string(length->value()));
  header_sent_ = true;
  status_ = head.result_int();
  if (failed_ || aborted_) {
    co_return false;
  }
  keep_alive_ = keep_alive_ && !(draining_ != nullptr && *draining_);
  bhttp::response<bhttp::empty_body> message{std::move(head)};
  message.version(version_);
  message.keep_alive(keep_alive_);
  // (Awaited outside the condition: GCC 12 miscompiles co_await inside an if condition.)
  const error_code ec = co_await write_header(message);
  failed_ = static_cast<bool>(ec);
  co_return !failed_;
}

awaitable<bool> response_stream::write(std::string_view chunk) {
  if (!header_sent_) {
    throw std::logic_error("response_stream: body written before the header");
  }
  if (chunk.size() > content_length_ - bytes_sent_) {
    throw std::logic_error("response_stream: body longer than its Content-Length");
  }
  if (failed_ || aborted_) {
    co_return false;
  }
  if (head_only_) {
    co_return true;
  }
  const error_code ec = co_await write_bytes(asio::buffer(chunk.data(), chunk.size()));
  if (ec) {
    failed_ = true;
    co_return false;
  }
  bytes_sent_ += chunk.size();
  co_return true;
}

namespace {

// response_stream over one connection's stream (plain or TLS), each write under `write_timeout`.
template <class Stream>
class connection_response_stream final : public response_stream {
 public:
  connection_response_stream(Stream& stream, std::chrono::milliseconds write_timeout,
                             unsigned version, bool head_only, bool keep_alive,
                             const bool* draining)
      : response_stream(version, head_only, keep_alive, draining),
        stream_(stream),
        write_timeout_(write_timeout) {}

 private:
  awaitable<error_code> write_header(bhttp::response<bhttp::empty_body>& head) override {
    bhttp::response_serializer<bhttp::empty_body> serializer{head};
    error_code ec;
    beast::get_lowest_layer(stream_).expires_after(write_timeout_);
    co_await bhttp::async_write_header(stream_, serializer, with_error(ec));
    co_return ec;
  }

  awaitable<error_code> write_bytes(asio::const_buffer bytes) override {
    error_code ec;
    beast::get_lowest_layer(stream_).expires_after(write_timeout_);
    co_await asio::async_write(stream_, bytes, with_error(ec));
    co_return ec;
  }

  Stream& stream_;
  std::chrono::milliseconds write_timeout_;
};

}  // namespace

tls_credentials::tls_credentials(std::string cert_file, std::string key_file)
    : cert_file_(std::move(cert_file)), key_file_(std::move(key_file)), context_(load()) {}

void tls_credentials::reload() { context_ = load(); }

std::shared_ptr<ssl::context> tls_credentials::load() const {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                       ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
  error_code ec;
  context->use_certificate_chain_file(cert_file_, ec);
  if (ec) {
    throw std::runtime_error("server.tls_cert_file: cannot load certificate chain from " +
                             cert_file_ + ": " + ec.message());
  }
  context->use_private_key_file(key_file_, ssl::context::pem, ec);
  if (ec) {
    throw std::runtime_error("server.tls_key_file: cannot load private key from " + key_file_ +
                             ": " + ec.message());
  }
  return context;
}

server_metrics::server_metrics(ops::registry& registry)
    : requests(registry.counter("certn_archiver_http_requests_total",
                                "HTTP requests answered, by listener, route and status code.",
                                {"listener", "route", "status"})),
      open_connections(registry.gauge("certn_archiver_http_open_connections",
                                      "HTTP connections open now, by listener.", {"listener"})),
      refused_connections(registry.counter(
          "certn_archiver_http_refused_connections_total",
          "Connections refused, or shed to make room, because a cap was reached, by listener "
          "and reason.",
          {"listener", "reason"})) {}

// One open connection as the drain and the connection cap see it.
struct server::connection {
  std::function<void()> close;  // closes the socket, cancelling its pending I/O
  bool idle = true;             // between requests: safe to close when draining
  bool in_handler = false;      // our handler is working for it: never shed
  bool shed = false;            // closed by the cap; counted in shed_unwinding_ until it ends
  std::list<connection*>::iterator position;  // in connections_
};

server::server(asio::io_context& io, std::string name, tcp::endpoint endpoint, router routes,
               limits limits, server_metrics& metrics, std::shared_ptr<tls_credentials> tls)
    : io_(io),
      name_(std::move(name)),
      acceptor_(io, endpoint),
      routes_(std::move(routes)),
      limits_(limits),
      metrics_(metrics),
      tls_(std::move(tls)) {}

server::~server() {
  error_code ec;
  acceptor_.close(ec);
}

tcp::endpoint server::local_endpoint() const { return acceptor_.local_endpoint(); }

void server::start() {
  asio::co_spawn(io_, accept_loop(), [name = name_](std::exception_ptr error) {
    ops::log_exception(name + " accept loop", error);
  });
}

awaitable<void> server::accept_loop() {
  asio::steady_timer backoff(io_);
  for (;;) {
    error_code ec;
    tcp::socket socket = co_await acceptor_.async_accept(with_error(ec));
    if (draining_ || !acceptor_.is_open() || ec == asio::error::operation_aborted) {
      co_return;
    }
    if (ec) {
      // EMFILE and friends: wait a little rather than spin.
      spdlog::warn("{} listener: accept failed: {}", name_, ec.message());
      backoff.expires_after(std::chrono::milliseconds(100));
      co_await backoff.async_wait(with_error(ec));
      continue;
    }
    // Refusing at the cap would let a slow or silent client hold every slot for a whole
    // deadline (slowloris, a connection flood); shedding the longest waiting one instead keeps
    // the newest, which a legitimate sender fills at once, and lets a flood only churn.
    if (connections_.size() - shed_unwinding_ >= limits_.max_connections &&
        !shed_longest_waiting()) {
      metrics_.refused_connections.inc({name_, "max_connections"});
      socket.close(ec);
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    auto on_done = [name = name_](std::exception_ptr error) {
      ops::log_exception(name + " connection", error);
    };
    if (tls_) {
      asio::co_spawn(io_, run_tls(std::move(socket), tls_->current()), on_done);
    } else {
      asio::co_spawn(io_, run_plain(std::move(socket)), on_done);
    }
  }
}

bool server::shed_longest_waiting() {
  for (connection* open : connections_) {
    if (!open->shed && !open->in_handler) {
      open->shed = true;
      ++shed_unwinding_;
      metrics_.refused_connections.inc({name_, "max_connections_shed"});
      open->close();
      return true;
    }
  }
  return false;
}

void server::note_progress(connection& state) {
  connections_.splice(connections_.end(), connections_, state.position);
}

awaitable<void> server::run_plain(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  connection state;
  state.close = [&stream] {
    error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream.socket().close(ec);
  };
  state.position = connections_.insert(connections_.end(), &state);
  metrics_.open_connections.add({name_}, 1);
  std::exception_ptr failure;
  try {
    co_await serve_connection(stream, state);
  } catch (...) {
    failure = std::current_exception();
  }
  connections_.erase(state.position);
  shed_unwinding_ -= state.shed ? 1 : 0;
  metrics_.open_connections.add({name_}, -1);
  error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream.socket().close(ec);
  if (failure) {
    std::rethrow_exception(failure);
  }
}

awaitable<void> server::run_tls(tcp::socket socket, std::shared_ptr<ssl::context> context) {
  beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), *context);
  connection state;
  state.close = [&stream] {
    error_code ec;
    auto& lowest = beast::get_lowest_layer(stream);
    lowest.socket().shutdown(tcp::socket::shutdown_both, ec);
    lowest.socket().close(ec);
  };
  state.position = connections_.insert(connections_.end(), &state);
  metrics_.open_connections.add({name_}, 1);
  std::exception_ptr failure;
  try {
    error_code ec;
    beast::get_lowest_layer(stream).expires_after(limits_.header_timeout);
    co_await stream.async_handshake(ssl::stream_base::server, with_error(ec));
    if (!ec) {
      co_await serve_connection(stream, state);
      beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(1));
      co_await stream.async_shutdown(with_error(ec));  // stream_truncated here is benign
    }
  } catch (...) {
    failure = std::current_exception();
  }
  connections_.erase(state.position);
  shed_unwinding_ -= state.shed ? 1 : 0;
  metrics_.open_connections.add({name_}, -1);
  error_code ec;
  beast::get_lowest_layer(stream).socket().close(ec);
  if (failure) {
    std::rethrow_exception(failure);
  }
}

template <class Stream>
awaitable<void> server::serve_connection(Stream& stream, connection& state) {
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
    co_await bhttp::async_read_header(stream, buffer, parser, with_error(ec));
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
    co_await bhttp::async_read(stream, buffer, parser, with_error(ec));
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
    response res;
    if (!route) {
      res = text_response(status::not_found, "not found\n");
    } else {
      std::exception_ptr failure;
      try {
        res = co_await (*route->on_request)(req);
      } catch (...) {
        failure = std::current_exception();
      }
      if (failure) {
        ops::log_exception(name_ + " " + route_label + " handler", failure);
        res = text_response(status::internal_server_error, "internal error\n");
      }
    }
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

// Runs a streaming handler and reports whether the connection can carry another request: only
// after a complete response that promised keep-alive. `keep_alive` is what the request and the
// per-connection cap allow; a drain begun meanwhile still closes.
template <class Stream>
awaitable<bool> server::serve_streamed(Stream& stream, const request& req,
                                       const streaming_handler& on_stream, bool keep_alive,
                                       const std::string& route_label) {
  connection_response_stream<Stream> out(stream, limits_.body_timeout, req.version(),
                                         req.method() == bhttp::verb::head, keep_alive, &draining_);
  std::exception_ptr failure;
  try {
    co_await on_stream(req, out);
  } catch (...) {
    failure = std::current_exception();
  }
  if (failure) {
    ops::log_exception(name_ + " " + route_label + " handler", failure);
  } else if (!out.header_sent_) {
    spdlog::error("{} listener: {} handler sent no response", name_, route_label);
  }
  if (!out.header_sent_) {
    // Nothing went out yet, so a plain 500 can still be the answer.
    keep_alive = keep_alive && !draining_;
    response res = text_response(status::internal_server_error, "internal error\n");
    res.version(req.version());
    res.keep_alive(keep_alive);
    res.prepare_payload();
    metrics_.requests.inc({name_, route_label, "500"});
    error_code ec;
    beast::get_lowest_layer(stream).expires_after(limits_.body_timeout);
    co_await bhttp::async_write(stream, res, with_error(ec));
    co_return !ec && keep_alive;
  }
  metrics_.requests.inc({name_, route_label, std::to_string(out.status_)});
  const bool complete = out.head_only_ || out.bytes_sent_ == out.content_length_;
  // A handler that threw is not trusted with the connection, even after a whole body.
  co_return complete && out.keep_alive_ && !out.failed_ && !out.aborted_ && !failure;
}

awaitable<void> server::drain(std::chrono::milliseconds deadline) {
  draining_ = true;
  error_code ec;
  acceptor_.close(ec);
  for (connection* open : connections_) {
    if (open->idle) {
      open->close();
    }
  }
  asio::steady_timer tick(io_);
  const auto until = steady_clock::now() + deadline;
  while (!connections_.empty() && steady_clock::now() < until) {
    tick.expires_after(std::chrono::milliseconds(10));
    co_await tick.async_wait(with_error(ec));
  }
  if (!connections_.empty()) {
    spdlog::warn("{} listener: closing {} connection(s) still open after the drain deadline", name_,
                 connections_.size());
    const std::vector<connection*> left(connections_.begin(), connections_.end());
    for (connection* open : left) {
      open->close();
    }
  }
  // Closed connections unwind on their next resumption; give them that turn.
  for (int turns = 0; !connections_.empty() && turns < 100; ++turns) {
    tick.expires_after(std::chrono::milliseconds(10));
    co_await tick.async_wait(with_error(ec));
  }
}

}  // namespace archiver::http
