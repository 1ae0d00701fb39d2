#include "webhook/event.hpp"

#include <simdjson.h>

#include <array>

namespace archiver::webhook {

namespace {

constexpr std::size_t max_id_length = 128;
constexpr std::size_t max_type_length = 64;

bool is_id_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == ':' || c == '-';
}

bool is_type_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

// Reads `name` from `object` as a checked string; on failure returns the message to report.
std::string read_field(simdjson::dom::object object, std::string_view name, std::size_t max_length,
                       bool (*allowed)(char), std::string& out, std::string_view allowed_text) {
  simdjson::dom::element value;
  if (object.at_key(name).get(value) != simdjson::SUCCESS) {
    return std::string(name) + ": missing";
  }
  std::string_view text;
  if (value.get_string().get(text) != simdjson::SUCCESS) {
    return std::string(name) + ": expected a string";
  }
  if (text.empty()) {
    return std::string(name) + ": empty";
  }
  if (text.size() > max_length) {
    return std::string(name) + ": longer than " + std::to_string(max_length) + " characters";
  }
  for (const char c : text) {
    if (!allowed(c)) {
      return std::string(name) + ": contains characters other than " + std::string(allowed_text);
    }
  }
  out.assign(text);
  return {};
}

}  // namespace

parsed_event parse_event(std::string_view body) {
  if (body.empty()) {
    return {std::nullopt, "body: empty"};
  }
  // The DOM parser validates the whole document (ondemand would not), so trailing bytes after
  // the object are an error too.
  simdjson::dom::parser parser;
  const simdjson::padded_string padded(body);
  simdjson::dom::element root;
  if (const auto error = parser.parse(padded).get(root); error != simdjson::SUCCESS) {
    return {std::nullopt, std::string("body: not valid JSON (") + simdjson::error_message(error) + ")"};
  }
  simdjson::dom::object object;
  if (root.get_object().get(object) != simdjson::SUCCESS) {
    return {std::nullopt, "body: expected a JSON object"};
  }

  event received;
  std::string problem;
  // The id comes from "id"; only when "id" is absent from "event_id". An "id" of the wrong type
  // is an error, not a reason to look elsewhere.
  simdjson::dom::element ignored;
  const bool has_id = object.at_key("id").get(ignored) == simdjson::SUCCESS;
  const bool has_event_id = object.at_key("event_id").get(ignored) == simdjson::SUCCESS;
  if (!has_id && !has_event_id) {
    return {std::nullopt, "id: missing (neither id nor event_id)"};
  }
  problem = read_field(object, has_id ? "id" : "event_id", max_id_length, is_id_char, received.id,
                       "[A-Za-z0-9._:-]");
  if (problem.empty()) {
    problem = read_field(object, "event_type", max_type_length, is_type_char, received.event_type,
                         "[A-Za-z0-9_.-]");
  }
  if (problem.empty()) {
    problem = read_field(object, "object_id", max_id_length, is_id_char, received.object_id,
                         "[A-Za-z0-9._:-]");
  }
  // Optional fields: absent and null are the same.
  const auto present = [&object](std::string_view name) {
    simdjson::dom::element value;
    return object.at_key(name).get(value) == simdjson::SUCCESS && !value.is_null();
  };
  if (problem.empty() && present("object_type")) {
    problem = read_field(object, "object_type", max_type_length, is_type_char,
                         received.object_type, "[A-Za-z0-9_.-]");
  }
  if (problem.empty() && present("case_id")) {
    problem = read_field(object, "case_id", max_id_length, is_id_char, received.case_id,
                         "[A-Za-z0-9._:-]");
  }
  if (!problem.empty()) {
    return {std::nullopt, problem};
  }
  std::string_view created;
  if (object.at_key("created").get_string().get(created) == simdjson::SUCCESS) {
    received.created.assign(created.substr(0, 64));
  }
  return {std::move(received), {}};
}

bool is_known_event_type(std::string_view event_type) {
  static constexpr std::array<std::string_view, 4> known = {
      "CASE_STATUS_CHANGED", "CHECK_STATUS_CHANGED", "CASE_REPORT_READY",
      "CASE_INPUT_CLAIMS_AUTOMATICALLY_GENERATED"};
  for (const std::string_view type : known) {
    if (type == event_type) {
      return true;
    }
  }
  return false;
}

object_kind kind_of_object(std::string_view object_type) {
  std::string upper(object_type);
  for (char& c : upper) {
    if (c >= 'a' && c <= 'z') {
      c = static_cast<char>(c - 'a' + 'A');
    }
  }
  if (upper.find("REPORT") != std::string::npos) {
    return object_kind::report_file;
  }
  if (upper.find("CHECK") != std::string::npos) {
    return object_kind::check;
  }
  if (upper.empty() || upper == "CASE") {
    return object_kind::case_object;
  }
  return object_kind::unknown;
}

}  // namespace archiver::webhook
