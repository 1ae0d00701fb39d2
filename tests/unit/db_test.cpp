// The db module's pure parts: connection strings and the embedded migrations. No database.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "db/migrations.hpp"
#include "db/pool.hpp"

using archiver::db::embedded_migrations;
using archiver::db::migration_checksum;
using archiver::db::with_connect_timeout;
using archiver::db::with_dead_connection_limit;
using archiver::db::with_statement_limits;

TEST_CASE("with_dead_connection_limit: keepalives and tcp_user_timeout, unless already set") {
  CHECK(with_dead_connection_limit("postgresql://h/db", 20) ==
        "postgresql://h/db?keepalives=1&keepalives_idle=10&keepalives_interval=3&"
        "keepalives_count=3&tcp_user_timeout=20000");
  CHECK(with_dead_connection_limit("host=h dbname=db tcp_user_timeout=5000", 6) ==
        "host=h dbname=db tcp_user_timeout=5000 keepalives=1 keepalives_idle=3 "
        "keepalives_interval=1 keepalives_count=3");
  CHECK(with_dead_connection_limit("postgresql://h/db?keepalives=0", 2) ==
        "postgresql://h/db?keepalives=0&keepalives_idle=1&keepalives_interval=1&"
        "keepalives_count=3&tcp_user_timeout=2000");
  CHECK(with_dead_connection_limit("postgresql://h/db", 0) == "postgresql://h/db");
}

TEST_CASE("with_statement_limits: libpq options, percent-encoded in a URI, quoted as a keyword") {
  CHECK(with_statement_limits("postgresql://h/db", 60000, 15000) ==
        "postgresql://h/db?options=-c%20statement_timeout%3D60000%20-c%20lock_timeout%3D15000");
  CHECK(with_statement_limits("host=h dbname=db", 5000, 0) ==
        "host=h dbname=db options='-c statement_timeout=5000'");
  CHECK(with_statement_limits("host=h options='-c search_path=x'", 5000, 100) ==
        "host=h options='-c search_path=x'");
  CHECK(with_statement_limits("postgresql://h/db", 0, 0) == "postgresql://h/db");
  CHECK(with_statement_limits("postgresql://h/db", 0, 0, {{"enable_bitmapscan", "off"}}) ==
        "postgresql://h/db?options=-c%20enable_bitmapscan%3Doff");
  CHECK(with_statement_limits("host=h", 10, 0, {{"enable_bitmapscan", "off"}}) ==
        "host=h options='-c statement_timeout=10 -c enable_bitmapscan=off'");
}

TEST_CASE("with_connect_timeout adds the setting to a URI as a query parameter") {
  SUBCASE("without a query string") {
    CHECK(with_connect_timeout("postgresql://u@h:5432/db", 5) ==
          "postgresql://u@h:5432/db?connect_timeout=5");
    CHECK(with_connect_timeout("postgres://h", 5) == "postgres://h?connect_timeout=5");
  }
  SUBCASE("after an existing query string") {
    CHECK(with_connect_timeout("postgres://u@h/db?sslmode=require", 3) ==
          "postgres://u@h/db?sslmode=require&connect_timeout=3");
    CHECK(with_connect_timeout("postgresql://h/db?", 3) == "postgresql://h/db?connect_timeout=3");
    CHECK(with_connect_timeout("postgresql://h/db?a=1&", 3) ==
          "postgresql://h/db?a=1&connect_timeout=3");
  }
  SUBCASE("the URI names connect_timeout already") {
    CHECK(with_connect_timeout("postgresql://h/db?connect_timeout=9", 3) ==
          "postgresql://h/db?connect_timeout=9");
    CHECK(with_connect_timeout("postgresql://h/db?sslmode=disable&connect_timeout=9", 3) ==
          "postgresql://h/db?sslmode=disable&connect_timeout=9");
  }
  SUBCASE("connect_timeout as part of another name is not the parameter") {
    CHECK(with_connect_timeout("postgresql://h/connect_timeout", 3) ==
          "postgresql://h/connect_timeout?connect_timeout=3");
    CHECK(with_connect_timeout("postgresql://h/db?application_name=connect_timeout", 3) ==
          "postgresql://h/db?application_name=connect_timeout&connect_timeout=3");
  }
}

TEST_CASE("with_connect_timeout adds the setting to a key=value string as a keyword") {
  CHECK(with_connect_timeout("host=/tmp port=5432 dbname=x", 2) ==
        "host=/tmp port=5432 dbname=x connect_timeout=2");
  CHECK(with_connect_timeout("", 2) == "connect_timeout=2");
  SUBCASE("the string names connect_timeout already") {
    CHECK(with_connect_timeout("host=h connect_timeout=1", 2) == "host=h connect_timeout=1");
    CHECK(with_connect_timeout("connect_timeout = 7 host=h", 2) == "connect_timeout = 7 host=h");
  }
  SUBCASE("connect_timeout inside a value is not the keyword") {
    CHECK(with_connect_timeout("host=h password='a connect_timeout=1'", 2) ==
          "host=h password='a connect_timeout=1' connect_timeout=2");
    CHECK(with_connect_timeout("host=h dbname=connect_timeout", 2) ==
          "host=h dbname=connect_timeout connect_timeout=2");
    CHECK(with_connect_timeout(R"(password='it\'s connect_timeout=1' host=h)", 2) ==
          R"(password='it\'s connect_timeout=1' host=h connect_timeout=2)");
  }
}

TEST_CASE("the embedded migrations are ordered and start with the initial schema") {
  const auto& all = embedded_migrations();
  REQUIRE_FALSE(all.empty());
  CHECK(all.front().version == 1);
  CHECK(all.front().name == "initial");
  for (std::size_t i = 1; i < all.size(); ++i) {
    CHECK(all[i - 1].version < all[i].version);
  }
  for (const auto& m : all) {
    CAPTURE(m.version);
    CHECK_FALSE(m.name.empty());
    CHECK_FALSE(m.sql.empty());
  }
  CHECK(all.front().sql.find("CREATE TABLE webhook_events") != std::string::npos);
}

TEST_CASE("the embedded SQL is byte for byte the file in migrations/") {
  const auto& first = embedded_migrations().front();
  std::ifstream file(std::string(ARCHIVER_SOURCE_DIR) + "/migrations/0001_initial.sql",
                     std::ios::binary);
  REQUIRE(file);
  std::ostringstream text;
  text << file.rdbuf();
  CHECK(first.sql == text.str());
}

TEST_CASE("a migration's checksum is the lowercase hex SHA-256 of its SQL") {
  CHECK(migration_checksum("") ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(migration_checksum("abc") ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
