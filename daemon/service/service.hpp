// The daemon's commands, wired from the parts: `serve` (listeners, database pool, signals,
// systemd notification, drain) and `migrate`. Each returns the process exit code.
#pragma once

#include "config/config.hpp"

namespace archiver::service {

// Runs until SIGTERM or SIGINT, then drains and returns 0. Start-up failures (database
// unreachable, schema behind, address in use) are logged and return 1.
int serve(const config::config& cfg);

// Applies missing migrations and prints what it did; returns 0, or 1 on failure.
int migrate(const config::config& cfg);

}  // namespace archiver::service
