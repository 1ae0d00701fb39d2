// systemd service notification (sd_notify). Every function does nothing when NOTIFY_SOCKET is
// unset, so the daemon runs the same outside systemd. Thread-safe.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace archiver::ops {

void notify_ready();                         // READY=1
void notify_stopping();                      // STOPPING=1
void notify_status(std::string_view text);   // STATUS=<text>
void notify_watchdog();                      // WATCHDOG=1

// The interval at which to send WATCHDOG=1 (half of WatchdogSec=), or nullopt when the
// service manager did not ask for watchdog pings.
std::optional<std::chrono::microseconds> watchdog_ping_interval();

}  // namespace archiver::ops
