// Reading one JSON object by its accepted names (certn::model_detail::reader), recording what
// matched in the shape report, and the check that makes a text a usable id.
#include <algorithm>
#include <cstdint>
#include <string>

#include "certn/model_detail.hpp"

namespace archiver::certn {

namespace model_detail {

namespace {

constexpr std::size_t max_id_length = 128;

bool is_id_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == ':' || c == '-';
}

std::string joined(names_t names) {
  std::string out;
  for (const std::string_view name : names) {
    out += out.empty() ? "" : ", ";
    out += name;
  }
  return out;
}

}  // namespace

std::string check_id(std::string_view name, std::string_view text) {
  if (text.empty()) {
    return std::string(name) + ": empty";
  }
  if (text.size() > max_id_length) {
    return std::string(name) + ": longer than " + std::to_string(max_id_length) + " characters";
  }
  for (const char c : text) {
    if (!is_id_char(c)) {
      return std::string(name) + ": contains characters other than [A-Za-z0-9._:-]";
    }
  }
  // "." and ".." would walk directories in a storage key and in a URL path.
  if (text.find_first_not_of('.') == std::string_view::npos) {
    return std::string(name) + ": only dots";
  }
  return {};
}

// A scalar as text: strings as they are, numbers and booleans as JSON prints them. Objects,
// arrays and null give nullopt.
std::optional<std::string> scalar_text(element value) {
  std::string_view text;
  if (value.get_string().get(text) == simdjson::SUCCESS) {
    return std::string(text);
  }
  if (value.is_number() || value.is_bool()) {
    return simdjson::minify(value);
  }
  return std::nullopt;
}

// ---- reader -------------------------------------------------------------------------------------

std::optional<element> reader::find(std::string_view field, names_t names, when_missing missing) {
  for (const std::string_view name : names) {
    looked_at_.insert(name);
  }
  for (const std::string_view name : names) {
    element value;
    if (from_.at_key(name).get(value) == simdjson::SUCCESS && !value.is_null()) {
      record(field, name, missing);
      matched_name_ = name;
      return value;
    }
  }
  record(field, "", missing);
  return std::nullopt;
}

std::string reader::name_of(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

std::string reader::missing_message(std::string_view field, names_t names) const {
  return name_of(field) + ": missing (none of " + joined(names) + ")";
}

std::string reader::text(std::string_view field, names_t names) {
  const auto value = find(field, names, tolerated);
  if (!value) {
    return {};
  }
  return scalar_text(*value).value_or("");
}

std::optional<std::string> reader::optional_text(std::string_view field, names_t names) {
  const auto value = find(field, names, tolerated);
  if (!value) {
    return std::nullopt;
  }
  return scalar_text(*value);
}

std::optional<std::string> reader::id(std::string_view field, names_t names, when_missing missing,
                                      std::string& problem) {
  const auto value = find(field, names, missing);
  if (!value) {
    return std::nullopt;
  }
  std::string text;
  std::string_view view;
  std::int64_t integer = 0;
  std::uint64_t unsigned_integer = 0;
  if (value->get_string().get(view) == simdjson::SUCCESS) {
    text.assign(view);
  } else if (value->get_int64().get(integer) == simdjson::SUCCESS) {
    text = std::to_string(integer);
  } else if (value->get_uint64().get(unsigned_integer) == simdjson::SUCCESS) {
    text = std::to_string(unsigned_integer);
  } else {
    problem = name_of(matched_name_) + ": expected a string or an integer";
    return std::nullopt;
  }
  problem = check_id(name_of(matched_name_), text);
  if (!problem.empty()) {
    return std::nullopt;
  }
  return text;
}

std::optional<array> reader::list(std::string_view field, names_t names) {
  const auto value = find(field, names, tolerated);
  array out;
  if (!value || value->get_array().get(out) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  return out;
}

void reader::record(std::string_view field, std::string_view matched, when_missing missing) {
  if (report_ == nullptr) {
    return;
  }
  for (const auto& seen : report_->fields) {
    if (seen.where == where_ && seen.field == field && seen.matched == matched) {
      return;
    }
  }
  report_->fields.push_back({where_, std::string(field), std::string(matched), missing});
}

void reader::record_unknown() {
  if (report_ == nullptr) {
    return;
  }
  for (const auto [key, value] : from_) {
    if (looked_at_.count(key)) {
      continue;
    }
    std::string name = where_ + "." + std::string(key);
    if (std::find(report_->unknown.begin(), report_->unknown.end(), name) ==
        report_->unknown.end()) {
      report_->unknown.push_back(std::move(name));
    }
  }
}

std::string indexed(const reader& parent, std::string_view key, std::size_t index) {
  return parent.name_of(key) + "[" + std::to_string(index) + "]";
}

}  // namespace model_detail

bool is_valid_id(std::string_view text) { return model_detail::check_id("id", text).empty(); }

}  // namespace archiver::certn
