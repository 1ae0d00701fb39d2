// sd_notify wrappers. Failures to notify are ignored on purpose: the service manager notices a
// missing READY=1 or WATCHDOG=1 by itself, and there is nothing better the daemon could do.
#include "ops/notify.hpp"

#include <cstdint>
#include <string>

#include <systemd/sd-daemon.h>

namespace archiver::ops {
namespace {

void send(const std::string& state) {
  // unset_environment = 0: NOTIFY_SOCKET must stay for later notifications and for threads.
  static_cast<void>(sd_notify(0, state.c_str()));
}

}  // namespace

void notify_ready() { send("READY=1"); }

void notify_stopping() { send("STOPPING=1"); }

void notify_status(std::string_view text) {
  // Each line of a notification is one assignment: a newline in `text` must not start another
  // (e.g. a forged READY=1), and a NUL would cut the message short.
  std::string state = "STATUS=";
  state.reserve(state.size() + text.size());
  for (const char c : text) {
    state += (c == '\n' || c == '\0') ? ' ' : c;
  }
  send(state);
}

void notify_watchdog() { send("WATCHDOG=1"); }

std::optional<std::chrono::microseconds> watchdog_ping_interval() {
  std::uint64_t usec = 0;
  // > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID (if set) is this process.
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) {
    return std::nullopt;
  }
  return std::chrono::microseconds(static_cast<std::chrono::microseconds::rep>(usec / 2));
}

}  // namespace archiver::ops
