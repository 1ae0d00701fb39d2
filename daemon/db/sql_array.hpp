// PostgreSQL array literals, for passing many values as one statement parameter
// ("... FROM unnest($1::text[], $2::bigint[])"): libpqxx 6.4 has no array parameters. Pure.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace archiver::db {

// {"a","b\"c"}: every element quoted, backslashes and double quotes escaped, so any text
// (empty, "NULL", commas, braces) arrives as itself. REQUIRES: no NUL bytes (Postgres text
// cannot hold them).
std::string array_literal(const std::vector<std::string>& values);

// {1,-2,3}
std::string array_literal(const std::vector<std::int64_t>& values);

// {t,f}
std::string array_literal(const std::vector<bool>& values);

}  // namespace archiver::db
