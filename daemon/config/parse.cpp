// Reading the TOML file: its syntax errors, and each key it sets, checked against the key table
// for name and TOML type.
#include "config/detail.hpp"

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <toml++/toml.h>

namespace archiver::config::detail {

namespace {

constexpr std::size_t max_config_file_bytes = 1024 * 1024;

const char* type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

const std::string& require_string(const std::string& key, const toml::node& node) {
  if (const auto* s = node.as_string()) {
    return s->get();
  }
  throw config_error(key, std::string("expected a string, got ") + type_name(node));
}

// Sets `f` from a TOML value; a value of the wrong type names the key and the expected type.
void assign_toml(const field& f, const toml::node& node) {
  const std::string key = f.key();
  std::visit(
      [&](auto* out) {
        using T = std::remove_pointer_t<decltype(out)>;
        if constexpr (std::is_same_v<T, std::string>) {
          *out = require_string(key, node);
        } else if constexpr (std::is_same_v<T, bool>) {
          const auto* b = node.as_boolean();
          if (b == nullptr) {
            throw config_error(key, std::string("expected a boolean, got ") + type_name(node));
          }
          *out = b->get();
        } else if constexpr (is_integer_target<T>) {
          const auto* i = node.as_integer();
          if (i == nullptr) {
            throw config_error(key, std::string("expected an integer, got ") + type_name(node));
          }
          set_integer(key, i->get(), *out);
        } else if constexpr (is_enum_target<T>) {
          set_enum_value(key, require_string(key, node), *out);
        } else {
          static_assert(std::is_same_v<T, std::vector<std::string>>);
          const auto* array = node.as_array();
          if (array == nullptr) {
            throw config_error(key,
                               std::string("expected an array of strings, got ") + type_name(node));
          }
          std::vector<std::string> values;
          for (std::size_t i = 0; i < array->size(); ++i) {
            const auto* s = (*array)[i].as_string();
            if (s == nullptr) {
              throw config_error(key, "expected an array of strings, element " +
                                          std::to_string(i + 1) + " is " +
                                          type_name((*array)[i]));
            }
            values.push_back(s->get());
          }
          *out = std::move(values);
        }
      },
      f.where);
}

// Walks one TOML table ("[server]", "[storage.s3]"); every key must be known.
void apply_toml_section(const std::string& section, const toml::table& table,
                        std::vector<field>& fields, secret_sources& secrets) {
  for (auto&& [toml_key, node] : table) {
    const std::string name(toml_key.str());
    const std::string key = section + "." + name;
    if (section == "storage" && name == "s3") {
      const auto* sub = node.as_table();
      if (sub == nullptr) {
        throw config_error(key, std::string("expected a table, got ") + type_name(node));
      }
      apply_toml_section(key, *sub, fields, secrets);
      continue;
    }
    if (field* f = find_field(fields, section, name)) {
      assign_toml(*f, node);
      if (f->secret) {
        secrets[key].has_value = true;
      }
      continue;
    }
    if (name.ends_with("_file")) {
      field* f = find_field(fields, section, std::string_view(name).substr(0, name.size() - 5));
      if (f != nullptr && f->secret) {
        secret_source& source = secrets[f->key()];
        source.path = require_string(key, node);
        source.path_origin = key;
        continue;
      }
    }
    throw config_error(key, "unknown key");
  }
}

void apply_toml(const toml::table& root, std::vector<field>& fields, secret_sources& secrets) {
  for (auto&& [toml_key, node] : root) {
    const std::string section(toml_key.str());
    const bool known = std::any_of(fields.begin(), fields.end(),
                                   [&](const field& f) { return f.section == section; });
    if (!known) {
      throw config_error(section, node.is_table() ? "unknown section" : "unknown key");
    }
    const auto* table = node.as_table();
    if (table == nullptr) {
      throw config_error(section, std::string("expected a table, got ") + type_name(node));
    }
    apply_toml_section(section, *table, fields, secrets);
  }
}

}  // namespace

void apply_file(const std::filesystem::path& file, std::vector<field>& fields,
                secret_sources& secrets) {
  const std::string path = file.string();
  const std::string text = read_small_file("", "config file ", path, max_config_file_bytes);
  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    throw config_error("", path + ":" + std::to_string(where.line) + ":" +
                               std::to_string(where.column) + ": " + std::string(e.description()));
  }
  apply_toml(root, fields, secrets);
}

}  // namespace archiver::config::detail
