// Environment overrides: each CERTN_ARCHIVER_<SECTION>_<KEY> variable (and <KEY>_FILE for a
// secret) sets its key, parsed from text; and from_environ(), the process environment as a map.
#include <unistd.h>  // environ (declared under _GNU_SOURCE, which g++ defines)

#include <charconv>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "config/detail.hpp"
#include "encoding/encoding.hpp"

namespace archiver::config::detail {

namespace {

// Sets `f` from an environment variable's text. Integers must be the whole string; errors
// quote the text only for keys that are not secrets (and secrets are all plain strings).
void assign_env(const field& f, const std::string& variable, const std::string& text) {
  const std::string key = f.key();
  const std::string origin = " (from " + variable + ")";
  std::visit(
      [&](auto* out) {
        using T = std::remove_pointer_t<decltype(out)>;
        if constexpr (std::is_same_v<T, std::string>) {
          *out = text;
        } else if constexpr (std::is_same_v<T, bool>) {
          const std::string word = encoding::ascii_lower(text);
          if (word == "true" || word == "1" || word == "yes") {
            *out = true;
          } else if (word == "false" || word == "0" || word == "no") {
            *out = false;
          } else {
            throw config_error(key, "expected true/false/1/0/yes/no, got " + quote_value(text) + origin);
          }
        } else if constexpr (is_integer_target<T>) {
          std::int64_t value = 0;
          const char* first = text.data();
          const char* last = text.data() + text.size();
          const auto [end, ec] = std::from_chars(first, last, value);
          if (ec == std::errc::result_out_of_range) {
            throw config_error(key, "integer out of range: " + quote_value(text) + origin);
          }
          if (ec != std::errc{} || end != last) {
            throw config_error(key, "expected an integer, got " + quote_value(text) + origin);
          }
          set_integer(key, value, *out);
        } else if constexpr (is_enum_target<T>) {
          set_enum_value(key, text, *out);
        } else {
          static_assert(std::is_same_v<T, std::vector<std::string>>);
          std::vector<std::string> values;
          std::string_view rest = text;
          for (;;) {
            const std::size_t comma = rest.find(',');
            const std::string_view item = trim(rest.substr(0, comma));
            if (!item.empty()) {
              values.emplace_back(item);
            }
            if (comma == std::string_view::npos) {
              break;
            }
            rest.remove_prefix(comma + 1);
          }
          *out = std::move(values);
        }
      },
      f.where);
}

}  // namespace

void apply_environment(const environment& env, std::vector<field>& fields,
                       secret_sources& secrets) {
  std::map<std::string, field*> by_name;
  std::map<std::string, field*> by_file_name;
  for (field& f : fields) {
    by_name[env_name(f)] = &f;
    if (f.secret) {
      by_file_name[env_name(f) + "_FILE"] = &f;
    }
  }
  for (const auto& [variable, text] : env) {
    if (!variable.starts_with(env_prefix) || variable == "CERTN_ARCHIVER_CONFIG") {
      continue;
    }
    if (const auto it = by_name.find(variable); it != by_name.end()) {
      assign_env(*it->second, variable, text);
      if (it->second->secret) {
        secrets[it->second->key()].has_value = true;
      }
      continue;
    }
    if (const auto it = by_file_name.find(variable); it != by_file_name.end()) {
      secret_source& source = secrets[it->second->key()];
      source.path = text;
      source.path_origin = variable;
      continue;
    }
    throw config_error("", "unknown environment variable " + variable);
  }
}

}  // namespace archiver::config::detail

namespace archiver::config {

environment from_environ() {
  environment env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const std::size_t equals = text.find('=');
    if (equals == std::string_view::npos) {
      continue;
    }
    env.emplace(std::string(text.substr(0, equals)), std::string(text.substr(equals + 1)));
  }
  return env;
}

}  // namespace archiver::config
