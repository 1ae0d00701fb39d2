// The Certn rate limit shared through PostgreSQL by every replica of one database (DESIGN.md,
// "Scaling out"): each API call books the account's next turn in table `rate_limits` with one
// statement, by the same GCRA as certn::rate_limiter, on the database's clock so that replicas
// agree. While the database cannot be reached each process falls back to its own limit.
#pragma once

#include <string>
#include <string_view>

#include "certn/rate_limiter.hpp"
#include "db/pool.hpp"
#include "net/asio.hpp"

namespace archiver::service {

// `name` is the account's row; `per_minute` and `burst` as certn::rate_limiter's.
certn::rate_limiter::shared_limit shared_rate_limit(db::pool& database, asio::io_context& io,
                                                   std::string name, int per_minute,
                                                   int burst = 1);

// The row of one Certn account: "certn " + the first 16 hex digits of sha256(base URL, API key),
// so that the key itself is never stored.
std::string rate_limit_name(std::string_view base_url, std::string_view api_key);

}  // namespace archiver::service
