// Internal to daemon/config: what its .cpp files share (the key table, the steps of load()).
// Not for use outside this folder; the public interface is config.hpp.
#pragma once

#include "config/config.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

namespace archiver::config::detail {

constexpr std::string_view env_prefix = "CERTN_ARCHIVER_";

// Where one key's value lands in the config being built.
using target = std::variant<std::string*, std::size_t*, int*, bool*, std::vector<std::string>*,
                            std::chrono::milliseconds*, std::chrono::seconds*, signature_scheme*,
                            log_format*>;

// One settable key: its TOML section and name, and the member it sets. Secrets may also be
// given as "<name>_file" and must never appear in an error message.
struct field {
  std::string section;  // "server", "storage.s3"
  std::string name;     // "listen", "header_timeout_ms"
  target where;
  bool secret = false;

  std::string key() const { return section + "." + name; }
};

// keys.cpp: the key table and how a key's text becomes a value.

// The whole key table, pointing into `c`; the only list of keys there is.
std::vector<field> fields_of(config& c);
// The field for `section`.`name`, or nullptr.
field* find_field(std::vector<field>& fields, std::string_view section, std::string_view name);
// CERTN_ARCHIVER_<SECTION>_<NAME>, e.g. CERTN_ARCHIVER_STORAGE_S3_BUCKET.
std::string env_name(const field& f);

// Set `out` from its TOML spelling; throws config_error listing the accepted spellings.
void set_enum_value(const std::string& key, std::string_view text, signature_scheme& out);
void set_enum_value(const std::string& key, std::string_view text, log_format& out);

template <typename T>
constexpr bool is_integer_target = std::is_same_v<T, std::size_t> || std::is_same_v<T, int> ||
                                   std::is_same_v<T, std::chrono::milliseconds> ||
                                   std::is_same_v<T, std::chrono::seconds>;

template <typename T>
constexpr bool is_enum_target = std::is_same_v<T, signature_scheme> ||
                                std::is_same_v<T, log_format>;

// Stores a parsed integer into a member of any integer or duration type, refusing values the
// member cannot hold. Ranges that matter to the daemon are checked later by validate().
template <typename T>
void set_integer(const std::string& key, std::int64_t value, T& out) {
  if constexpr (std::is_same_v<T, std::size_t>) {
    if (value < 0) {
      throw config_error(key, "expected a non-negative integer, got " + std::to_string(value));
    }
    out = static_cast<std::size_t>(value);
  } else if constexpr (std::is_same_v<T, int>) {
    if (value < std::numeric_limits<int>::min() || value > std::numeric_limits<int>::max()) {
      throw config_error(key, "integer out of range: " + std::to_string(value));
    }
    out = static_cast<int>(value);
  } else {
    out = T{value};  // std::chrono::milliseconds / seconds hold any int64
  }
}

// config.cpp: text helpers for values and messages.

// "abc" with quotes and control characters escaped, so a value prints on one line.
std::string quote_value(std::string_view value);
std::string_view trim_right(std::string_view text);
std::string_view trim(std::string_view text);

// secrets.cpp: secrets given as a path, and reading small files.

// How one source (the file, or the environment) gave a secret: as a value, as a path, or both.
struct secret_source {
  bool has_value = false;
  std::optional<std::string> path;
  std::string path_origin;  // "webhook.secrets_file" or the environment variable, for messages
};
using secret_sources = std::map<std::string, secret_source>;  // by field key

// The whole file, or config_error(key, "cannot read <what>"path": reason"). Reads with POSIX
// calls so a directory or a permission problem gets its real errno text.
std::string read_small_file(const std::string& key, const std::string& what,
                            const std::string& path, std::size_t limit);
// Both `x` and `x_file` from one source is ambiguous; say which names collided, never values.
void reject_value_and_file(const std::vector<field>& fields, const secret_sources& sources,
                           bool from_env);
// Replaces each secret given as a path by the file's contents. The environment wins over the
// file, as for every other key, so only the winning source's path is read.
void read_secret_files(std::vector<field>& fields, const secret_sources& from_file,
                       const secret_sources& from_env, const environment& env);

// parse.cpp: reads and parses the TOML file at `path` and sets the fields it names; secrets
// given as "<name>_file" are recorded in `secrets`. Throws config_error.
void apply_file(const std::filesystem::path& path, std::vector<field>& fields,
                secret_sources& secrets);

// environment.cpp: sets the fields named by CERTN_ARCHIVER_* variables of `env`; secrets given
// as "<NAME>_FILE" are recorded in `secrets`. Throws config_error on an unknown variable.
void apply_environment(const environment& env, std::vector<field>& fields,
                       secret_sources& secrets);

// validate.cpp: throws config_error naming the first key whose value breaks a rule.
void validate(const config& c);

}  // namespace archiver::config::detail
