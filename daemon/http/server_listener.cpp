// The listener: the server's public face, the accept loop with its connection cap (shedding the
// longest waiting connection), each connection's registration from accept to close, the drain,
// and TLS credentials and metrics.
#include "http/server_detail.hpp"

#include "ops/logging.hpp"

#include <spdlog/spdlog.h>

#include <stdexcept>
#include <vector>

namespace archiver::http {
using std::chrono::steady_clock;

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

server::server(asio::io_context& io, std::string name, tcp::endpoint endpoint, router routes,
               limits limits, server_metrics& metrics, std::shared_ptr<tls_credentials> tls)
    : impl_(std::make_unique<impl>(io, std::move(name), endpoint, std::move(routes), limits,
                                   metrics, std::move(tls))) {}

server::~server() {
  error_code ec;
  impl_->acceptor_.close(ec);
}

tcp::endpoint server::local_endpoint() const { return impl_->acceptor_.local_endpoint(); }

void server::start() { impl_->start(); }

awaitable<void> server::drain(std::chrono::milliseconds deadline) { return impl_->drain(deadline); }

std::size_t server::open_connections() const { return impl_->connections_.size(); }

server::impl::impl(asio::io_context& io, std::string name, tcp::endpoint endpoint, router routes,
                   limits limits, server_metrics& metrics, std::shared_ptr<tls_credentials> tls)
    : io_(io),
      name_(std::move(name)),
      acceptor_(io, endpoint),
      routes_(std::move(routes)),
      limits_(limits),
      metrics_(metrics),
      tls_(std::move(tls)) {}

void server::impl::start() {
  asio::co_spawn(io_, accept_loop(), [name = name_](std::exception_ptr error) {
    ops::log_exception(name + " accept loop", error);
  });
}

awaitable<void> server::impl::accept_loop() {
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

bool server::impl::shed_longest_waiting() {
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

void server::impl::note_progress(connection& state) {
  connections_.splice(connections_.end(), connections_, state.position);
}

awaitable<void> server::impl::run_plain(tcp::socket socket) {
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

awaitable<void> server::impl::run_tls(tcp::socket socket, std::shared_ptr<ssl::context> context) {
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

awaitable<void> server::impl::drain(std::chrono::milliseconds deadline) {
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
