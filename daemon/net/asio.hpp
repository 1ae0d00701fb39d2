// The one place Asio and Beast are included. <utility> must come first: Boost 1.74's
// awaitable.hpp uses std::exchange without including it (a GCC 12 build error otherwise).
#pragma once

#include <utility>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace archiver {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;
using error_code = boost::system::error_code;

template <class T>
using awaitable = boost::asio::awaitable<T>;

// The completion token for an awaited operation whose failure is a value, not an exception:
// `co_await timer.async_wait(with_error(ec));`
inline auto with_error(error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

}  // namespace archiver
