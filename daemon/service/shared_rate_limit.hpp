// The Certn rate limit shared through PostgreSQL by every replica of one database (DESIGN.md,
// "Scaling out"): each API call books the account's next turn in table `rate_limits` with one
// statement, by the same GCRA as certn::rate_limiter, on the database's clock so that replicas
// agree, and charges it to the account's count of the UTC day (the daily budget). While the
// database cannot be reached each process falls back to its own limit and count.
#pragma once

#include <optional>
#include <pqxx/transaction_base>
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

// The account's calls charged today (UTC, by every process sharing the database) and the day's
// budget left at the current rate: for `status`. nullopt when no call was charged today.
struct budget_today {
  int used = 0;
  double hours_elapsed = 0;  // since the UTC day began
};
std::optional<budget_today> read_budget_today(pqxx::transaction_base& tx, const std::string& name);

// The row of one Certn account: "certn " + the first 16 hex digits of sha256(base URL, account),
// `account` being certn.account ("" by default). Not the API key: keys are rotated every year
// and an account may have several, which must all share the account's limit and budget.
std::string rate_limit_name(std::string_view base_url, std::string_view account);

}  // namespace archiver::service
