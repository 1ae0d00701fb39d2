// When the Certn API key runs out. Certn's keys expire 365 days after they are created
// (../shared/certn-api.md, [doc]); certn.api_key_created tells the daemon that day, and from it
// come a gauge, a warning from 30 days before, and a line of `doctor`. Pure.
#pragma once

#include <chrono>
#include <string>

namespace archiver::certn {

inline constexpr std::chrono::days key_lifetime{365};
inline constexpr std::chrono::days key_warning_window{30};

// Days (fractional) from `now` until a key created on `created` (UTC, at midnight) expires;
// negative once it has.
double days_until_key_expires(std::chrono::sys_days created,
                              std::chrono::system_clock::time_point now);

enum class key_expiry_state { fine, expiring_soon, expired };
key_expiry_state key_expiry_state_of(double days_left);

// One line for logs and `doctor`: "the Certn API key (created 2026-01-10) expires on 2027-01-10,
// in 12 days"; names what to do when the state is not fine.
std::string describe_key_expiry(std::chrono::sys_days created, double days_left);

}  // namespace archiver::certn
