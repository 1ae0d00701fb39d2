// Internal to http/: the server's state and the steps its parts (server_listener.cpp,
// server_connection.cpp, server_routing.cpp) share. Not to be included outside daemon/http; the
// public interface is server.hpp.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>

#include "http/server.hpp"
#include "net/asio.hpp"

namespace archiver::http {

namespace server_detail {

// The two streams a connection runs on.
using plain_stream = beast::tcp_stream;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;

// The status answering a request Beast could not read (server_routing.cpp).
status status_for_read_error(const error_code& ec);

}  // namespace server_detail

// Everything a server is, behind its public face. Lives exactly as long as its server; the accept
// loop and every connection coroutine refer to it. Used on the io_context thread only.
struct server::impl {
  // One open connection as the drain and the connection cap see it.
  struct connection {
    std::function<void()> close;  // closes the socket, cancelling its pending I/O
    bool idle = true;             // between requests: safe to close when draining
    bool in_handler = false;      // our handler is working for it: never shed
    bool shed = false;            // closed by the cap; counted in shed_unwinding_ until it ends
    std::list<connection*>::iterator position;  // in connections_
  };

  impl(asio::io_context& io, std::string name, tcp::endpoint endpoint, router routes, limits limits,
       server_metrics& metrics, std::shared_ptr<tls_credentials> tls);

  // The listener (server_listener.cpp): accept loop, connection cap, drain.
  void start();
  awaitable<void> drain(std::chrono::milliseconds deadline);
  awaitable<void> accept_loop();
  // Makes room for one more connection at the cap; false when every open one is busy.
  bool shed_longest_waiting();
  // A request on `state` was answered: it goes to the back of the shedding order.
  void note_progress(connection& state);
  // One accepted connection from start to close, registered in connections_ meanwhile.
  awaitable<void> run_plain(tcp::socket socket);
  awaitable<void> run_tls(tcp::socket socket, std::shared_ptr<ssl::context> context);

  // The connection (server_connection.cpp): reads requests under deadlines and caps, answers
  // them, keeps the connection alive while it may. Instantiated for plain_stream and tls_stream.
  template <class Stream>
  awaitable<void> serve_connection(Stream& stream, connection& state);

  // Routing (server_routing.cpp). Runs the plain handler of `route` (nullopt: 404) for `req`; a
  // handler's exception is logged under `route_label` and answered 500.
  awaitable<response> dispatch(const request& req, const std::optional<router::match_result>& route,
                               const std::string& route_label);
  // Runs a streaming handler and reports whether the connection can carry another request.
  // Instantiated for plain_stream and tls_stream.
  template <class Stream>
  awaitable<bool> serve_streamed(Stream& stream, const request& req,
                                 const streaming_handler& on_stream, bool keep_alive,
                                 const std::string& route_label);

  asio::io_context& io_;
  std::string name_;
  tcp::acceptor acceptor_;
  router routes_;
  limits limits_;
  server_metrics& metrics_;
  std::shared_ptr<tls_credentials> tls_;
  // Open connections, longest without a completed request (or since the accept) first.
  std::list<connection*> connections_;
  std::size_t shed_unwinding_ = 0;  // shed, closed, but not yet off connections_
  bool draining_ = false;
};

extern template awaitable<void> server::impl::serve_connection(server_detail::plain_stream&,
                                                               connection&);
extern template awaitable<void> server::impl::serve_connection(server_detail::tls_stream&,
                                                               connection&);
extern template awaitable<bool> server::impl::serve_streamed(server_detail::plain_stream&,
                                                             const request&,
                                                             const streaming_handler&, bool,
                                                             const std::string&);
extern template awaitable<bool> server::impl::serve_streamed(server_detail::tls_stream&,
                                                             const request&,
                                                             const streaming_handler&, bool,
                                                             const std::string&);

}  // namespace archiver::http
