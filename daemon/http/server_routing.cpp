// Routing: the router, dispatch of a request to its handler (plain or streaming, through a
// response_stream on the connection), and the mapping of handler failures and unreadable
// requests to statuses.
#include "http/server_detail.hpp"

#include "ops/logging.hpp"

#include <spdlog/spdlog.h>

#include <stdexcept>

namespace archiver::http {
namespace bhttp = beast::http;

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

status server_detail::status_for_read_error(const error_code& ec) {
  if (ec == bhttp::error::header_limit) {
    return status::request_header_fields_too_large;
  }
  if (ec == bhttp::error::body_limit) {
    return status::payload_too_large;
  }
  return status::bad_request;
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

awaitable<response> server::impl::dispatch(const request& req,
                                           const std::optional<router::match_result>& route,
                                           const std::string& route_label) {
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
  co_return res;
}

// Runs a streaming handler and reports whether the connection can carry another request: only
// after a complete response that promised keep-alive. `keep_alive` is what the request and the
// per-connection cap allow; a drain begun meanwhile still closes.
template <class Stream>
awaitable<bool> server::impl::serve_streamed(Stream& stream, const request& req,
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

template awaitable<bool> server::impl::serve_streamed(server_detail::plain_stream&, const request&,
                                                      const streaming_handler&, bool,
                                                      const std::string&);
template awaitable<bool> server::impl::serve_streamed(server_detail::tls_stream&, const request&,
                                                      const streaming_handler&, bool,
                                                      const std::string&);

}  // namespace archiver::http
