// The day's budget of Certn calls (certn-api.md: about 7,220 a day per account), as pure
// decisions: which class of work may make its next call now, and how long it waits otherwise.
// The count itself lives in the rate limiter (this process) and in table rate_limits (every
// replica of one database, service/shared_rate_limit). The window is the UTC day [assumed: Certn
// does not say how its daily limit is counted].
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include "ops/priority.hpp"

namespace archiver::certn {

struct budget_settings {
  int per_day = 7000;             // 0: no daily budget
  int live_reserve_percent = 20;  // the part of the day's budget only live work may spend
};

struct budget_facts {
  int used = 0;                                 // calls charged in this window, by everyone
  std::chrono::steady_clock::duration left;     // until the window rolls over
  std::chrono::steady_clock::duration since_last_bulk;  // since this process's last bulk call
};

// The calls of the day after which work of `priority` gets no more: the whole budget for live
// work, the budget less the live reserve for the rest; 0 when there is no daily budget. Pure.
int budget_cap(ops::priority priority, const budget_settings& s);

// How long work of class `priority` waits for the budget before its next call; zero: it may go.
// Live work may spend the whole budget. Other work stops where only the live reserve is left,
// until the window rolls over (`left`). Bulk work is also paced to what the day has left: one
// call per `left / (remaining - reserve)`, so that a backfill spreads over the day instead of
// spending it in two hours. Pure.
std::chrono::steady_clock::duration budget_wait(ops::priority priority, const budget_settings& s,
                                                const budget_facts& f);

// How long a class is held back after Certn answered 429 to one of its calls without saying for
// how long: twice the previous hold, from 5 s up to 5 minutes. Pure.
std::chrono::seconds next_throttle(std::chrono::seconds previous);

// At `used` calls `hours_elapsed` into the day, when (hours after the day began) the day's budget
// runs out at the same rate; nullopt when it lasts the day (or there is no budget). Pure.
std::optional<double> budget_runs_out_at(int used, double hours_elapsed, int per_day);

// Calls one archived case costs on the steady flow (GET case, generate-report, report file,
// supplementary information and files); an open case costs its GET.
inline constexpr int calls_per_archived_case = 5;

// What syncing `cases` cases costs at most (every one closed, so archived) and how many days that
// takes spending at most the budget less the live reserve a day (0: no daily budget). Pure.
struct backfill_estimate {
  std::int64_t calls = 0;
  double days = 0;
};
backfill_estimate estimate_backfill(std::int64_t cases, const budget_settings& s);

// From `now` to the end of its UTC day.
std::chrono::system_clock::duration left_in_utc_day(std::chrono::system_clock::time_point now);

}  // namespace archiver::certn
