#include "service/shared_rate_limit.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <pqxx/pqxx>

#include "ops/logging.hpp"
#include "storage/digest.hpp"

namespace archiver::service {

namespace {

using clock = certn::rate_limiter::clock;

struct shared_state {
  shared_state(db::pool& database, asio::io_context& io, std::string name, double interval,
               double tolerance)
      : database(database),
        io(io),
        name(std::move(name)),
        interval_seconds(interval),
        tolerance_seconds(tolerance) {}
  db::pool& database;
  asio::io_context& io;
  std::string name;
  double interval_seconds;
  double tolerance_seconds;
  std::atomic<bool> failing{false};  // logged once per outage

  void failed(const std::exception& e) {
    if (!failing.exchange(true)) {
      std::string why = e.what();
      std::replace(why.begin(), why.end(), '\n', ' ');
      spdlog::warn("shared Certn rate limit unavailable ({}); this process keeps its own limit",
                   why);
    }
  }
  void succeeded() {
    if (failing.exchange(false)) {
      spdlog::info("shared Certn rate limit available again");
    }
  }
};

struct booked {
  double wait_seconds = 0;  // <= 0: at once
  int used_today = 0;
  bool charged = true;
};

// Books a turn: the slot starts when the last booked one ends (or now), and the caller may go
// up to the burst tolerance before its slot; and charges the call to the day's count (a new UTC
// day starts it again), unless `cap` calls are charged already (0: no cap), or a Retry-After
// holds every turn for more than `max_wait_seconds` from now. The row is locked while it
// decides, so replicas never charge past the cap together.
booked book(pqxx::connection& conn, const shared_state& s, int cap, double max_wait_seconds) {
  pqxx::work tx(conn, "book");
  tx.exec_params0(
      "INSERT INTO rate_limits (name, next_turn_end, day, day_used) "
      "VALUES ($1, clock_timestamp(), (clock_timestamp() AT TIME ZONE 'UTC')::date, 0) "
      "ON CONFLICT (name) DO NOTHING",
      s.name);
  const pqxx::row held = tx.exec_params1(
      "SELECT CASE WHEN day = (clock_timestamp() AT TIME ZONE 'UTC')::date THEN day_used ELSE 0 "
      "END, COALESCE(extract(epoch FROM held_until - clock_timestamp())::float8, 0) "
      "FROM rate_limits WHERE name = $1 FOR UPDATE",
      s.name);
  const int used = held[0].as<int>();
  const double hold = held[1].as<double>();
  if (cap > 0 && used >= cap) {
    tx.commit();
    return {0, used, false};
  }
  if (hold > max_wait_seconds) {
    tx.commit();
    return {hold, used, false};
  }
  const pqxx::row row = tx.exec_params1(
      "UPDATE rate_limits AS r SET "
      "  next_turn_end = GREATEST(r.next_turn_end, clock_timestamp()) + make_interval(secs => $2), "
      "  day = (clock_timestamp() AT TIME ZONE 'UTC')::date, day_used = $4 "
      "WHERE name = $1 "
      "RETURNING extract(epoch FROM r.next_turn_end - clock_timestamp())::float8 - $2 - $3",
      s.name, s.interval_seconds, s.tolerance_seconds, used + 1);
  tx.commit();
  return {row[0].as<double>(), used + 1, true};
}

}  // namespace

certn::rate_limiter::shared_limit shared_rate_limit(db::pool& database, asio::io_context& io,
                                                   std::string name, int per_minute, int burst) {
  if (per_minute < 1 || burst < 1) {
    throw std::invalid_argument("shared rate limit: per_minute and burst must be at least 1");
  }
  const double interval = 60.0 / per_minute;
  auto state =
      std::make_shared<shared_state>(database, io, std::move(name), interval, interval * (burst - 1));
  certn::rate_limiter::shared_limit limit;
  limit.book = [state](int cap, clock::duration max_wait)
      -> awaitable<std::optional<certn::rate_limiter::shared_booking>> {
    try {
      const double max_wait_seconds = std::chrono::duration<double>(max_wait).count();
      const booked turn = co_await state->database.query<booked>(
          [&](pqxx::connection& conn) { return book(conn, *state, cap, max_wait_seconds); });
      state->succeeded();
      co_return certn::rate_limiter::shared_booking{
          std::chrono::duration_cast<clock::duration>(
              std::chrono::duration<double>(std::max(0.0, turn.wait_seconds))),
          turn.used_today, turn.charged};
    } catch (const std::exception& e) {
      state->failed(e);
    }
    co_return std::nullopt;
  };
  limit.hold = [state](clock::duration pause) {
    const double from_now = std::chrono::duration<double>(pause).count();
    asio::co_spawn(
        state->io,
        [state, from_now]() -> awaitable<void> {
          try {
            co_await state->database.run([&](pqxx::connection& conn) {
              pqxx::nontransaction(conn).exec_params0(
                  "INSERT INTO rate_limits AS r (name, next_turn_end, held_until) "
                  "VALUES ($1, clock_timestamp() + make_interval(secs => $2::float8 + $3::float8), "
                  "  clock_timestamp() + make_interval(secs => $2::float8)) "
                  "ON CONFLICT (name) DO UPDATE SET next_turn_end = GREATEST(r.next_turn_end, "
                  "  clock_timestamp() + make_interval(secs => $2::float8 + $3::float8)), "
                  "  held_until = GREATEST(r.held_until, "
                  "  clock_timestamp() + make_interval(secs => $2::float8))",
                  state->name, std::max(0.0, from_now), state->tolerance_seconds);
            });
            state->succeeded();
          } catch (const std::exception& e) {
            state->failed(e);
          }
        },
        [](std::exception_ptr error) { ops::log_exception("shared rate limit hold", error); });
  };
  return limit;
}

std::optional<budget_today> read_budget_today(pqxx::transaction_base& tx, const std::string& name) {
  const pqxx::result row = tx.exec_params(
      "SELECT day_used, extract(epoch FROM (clock_timestamp() AT TIME ZONE 'UTC') - "
      "  day::timestamp)::float8 / 3600 FROM rate_limits "
      "WHERE name = $1 AND day = (clock_timestamp() AT TIME ZONE 'UTC')::date",
      name);
  if (row.empty()) {
    return std::nullopt;
  }
  return budget_today{row[0][0].as<int>(), row[0][1].as<double>()};
}

std::string rate_limit_name(std::string_view base_url, std::string_view account) {
  std::string material(base_url);
  material += '\n';
  material += account;
  return "certn " + storage::sha256_hex(material).substr(0, 16);
}

}  // namespace archiver::service
