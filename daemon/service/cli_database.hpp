// For the one-shot commands (status, jobs, verify): one connection, the schema checked first, and
// a database that fails is one line on stderr rather than a stack of libpq text. The operator
// commands' connections have limits of their own (the admin class of database.*_statement_timeout).
#pragma once

#include <functional>
#include <pqxx/connection>

#include "config/config.hpp"
#include "db/pool.hpp"

namespace archiver::service {

// Runs `command` on a fresh connection once the schema is known to be current and returns its
// exit code; returns 1 (with one line on stderr) when the database cannot be reached or used, or
// the schema is behind.
int with_database(const config::config& cfg, const std::function<int(pqxx::connection&)>& command);

// The limits of the operator commands' connections, with_database's and their pools' alike:
// database.admin_statement_timeout_ms, lock_timeout_ms (capped by it) and dead_connection_seconds.
db::pool_limits admin_limits(const config::config& cfg);

}  // namespace archiver::service
