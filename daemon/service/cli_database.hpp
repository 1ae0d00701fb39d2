// For the one-shot commands (status, jobs, verify): one connection, the schema checked first, and
// a database that fails is one line on stderr rather than a stack of libpq text.
#pragma once

#include <functional>
#include <pqxx/connection>

#include "config/config.hpp"

namespace archiver::service {

// Runs `command` on a fresh connection once the schema is known to be current and returns its
// exit code; returns 1 (with one line on stderr) when the database cannot be reached or used, or
// the schema is behind.
int with_database(const config::config& cfg, const std::function<int(pqxx::connection&)>& command);

}  // namespace archiver::service
