#include <doctest/doctest.h>

#include "db/migrations.hpp"
#include "db/pool.hpp"

using archiver::db::embedded_migrations;
using archiver::db::with_connect_timeout;

TEST_CASE("with_connect_timeout adds the setting once, in the string's own syntax") {
  CHECK(with_connect_timeout("postgresql://u@h:5432/db", 5) ==
        "postgresql://u@h:5432/db?connect_timeout=5");
  CHECK(with_connect_timeout("postgres://u@h/db?sslmode=require", 3) ==
        "postgres://u@h/db?sslmode=require&connect_timeout=3");
  CHECK(with_connect_timeout("postgresql://h/db?connect_timeout=9", 3) ==
        "postgresql://h/db?connect_timeout=9");
  CHECK(with_connect_timeout("host=/tmp port=5432 dbname=x", 2) ==
        "host=/tmp port=5432 dbname=x connect_timeout=2");
  CHECK(with_connect_timeout("host=h connect_timeout=1", 2) == "host=h connect_timeout=1");
  CHECK(with_connect_timeout("", 2) == "connect_timeout=2");
}

TEST_CASE("the embedded migrations are ordered and start with the initial schema") {
  const auto& all = embedded_migrations();
  REQUIRE_FALSE(all.empty());
  CHECK(all.front().version == 1);
  CHECK(all.front().name == "initial");
  for (std::size_t i = 1; i < all.size(); ++i) {
    CHECK(all[i - 1].version < all[i].version);
  }
  CHECK(all.front().sql.find("CREATE TABLE webhook_events") != std::string::npos);
}
