#include "shapes.hpp"

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include "api.hpp"
#include "encoding/json.hpp"

namespace certn_sim {

using archiver::encoding::json_quote;
using archiver::encoding::json_writer;

namespace {

constexpr std::string_view alternate = "alternate";

bool observed(const shape_settings& shapes) { return shapes.family == "observed"; }

bool is(const shape_settings& shapes, std::string_view knob, std::string_view value) {
  return knob_value(shapes, knob) == value;
}

std::string joined(const std::vector<std::string_view>& values, std::string_view separator = "|") {
  std::string out;
  for (const std::string_view value : values) {
    out += (out.empty() ? "" : std::string(separator)) + std::string(value);
  }
  return out;
}

// The items of a comma-separated list (empty items skipped).
std::vector<std::string_view> list_items(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    if (comma != 0) {
      out.push_back(text.substr(0, comma));
    }
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
  }
  return out;
}

bool names_endpoint(std::string_view item, std::string_view endpoint) {
  constexpr std::string_view prefix = "cases.";
  return item == endpoint ||
         (endpoint.substr(0, prefix.size()) == prefix && item == endpoint.substr(prefix.size()));
}

const knob* find_knob(std::string_view name) {
  for (const knob& k : knobs()) {
    if (k.name == name) {
      return &k;
    }
  }
  return nullptr;
}

// Deterministic stand-ins for the fields only the observed shapes have: they derive from the
// record, so they add no draw to the seeded generator (ids stay the same in every family).
std::string short_id(const check_record& check) {
  std::string out = check.id.substr(0, 8);
  for (char& ch : out) {
    ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  }
  return out;
}

void write_check(json_writer& out, const check_record& check, const shape_settings& shapes) {
  out.begin_object();
  out.key("id").value(check.id);
  if (observed(shapes)) {
    out.key("short_id").value(short_id(check));
  }
  out.key(knob_value(shapes, "check.type_name")).value(check.type);
  out.key("status").value(check.status);
  if (!observed(shapes)) {
    out.key("result").value_or_null(check.result);
    out.key("created").value(iso8601(check.created));
    out.key("modified").value(iso8601(check.modified));
    out.end_object();
    return;
  }
  // Scores only once a result exists; adjudication stays null so that both forms show up.
  if (check.result) {
    out.key("score").number(100).key("sub_score").number(100);
  } else {
    out.key("score").null().key("sub_score").null();
  }
  out.key("adjudication_score").null();
  out.key("output_claims").begin_object();
  if (check.result) {
    out.key("result").value(*check.result);
  }
  out.end_object();
  out.end_object();
}

}  // namespace

const std::vector<knob>& knobs() {
  static const std::vector<knob> all = {
      {"report_file.id", {"present", "absent"}, "present", "absent"},
      {"report_file.url_name",
       {alternate, "pdf_url", "url", "report_url", "file_url", "download_url", "presigned_url"},
       "pdf_url",
       alternate},
      {"generate_report.id_name",
       {alternate, "case_report_file_id", "report_file_id", "id"},
       "case_report_file_id",
       alternate},
      {"generate_report.status", {alternate, "200", "201", "202"}, "201", alternate},
      {"generate_report.body", {"normal", "empty"}, "normal", "normal"},
      {"check.type_name", {"type", "check_type"}, "type", "check_type"},
      {"case.status_name", {"overall_status", "status"}, "overall_status", "overall_status"},
      {"case.created_name", {"created", "created_at", "absent"}, "created", "created"},
      {"list.form", {"django", "pagination", "bare"}, "django", "pagination"},
      {"list.bad_entry", {"none", "first"}, "none", "none"},
      {"files.key", {"files", "supplementary_files", "documents"}, "files", "files"},
      {"file.name_name", {"name", "file_name", "filename"}, "name", "name"},
      {"file.id", {"present", "absent"}, "present", "present"},
      {"file.url_name", {"url", "file_url", "download_url", "presigned_url"}, "url", "url"},
      {"supplementary_information.body", {"normal", "invalid"}, "normal", "normal"},
      {"cancel.status", {"200", "202", "204"}, "200", "204"},
      {"webhook.id_name", {"id", "event_id"}, "id", "event_id"},
      {"webhook.check_object", {"case", "check"}, "case", "check"},
      {"forbidden", {}, "", ""},
  };
  return all;
}

std::optional<std::string> shape_error(const shape_settings& shapes) {
  if (shapes.family != "assumed" && shapes.family != "observed") {
    return "shapes: unknown family " + json_quote(shapes.family) +
           " (expected assumed or observed)";
  }
  for (const auto& [name, value] : shapes.vary) {
    const knob* k = find_knob(name);
    if (k == nullptr) {
      std::vector<std::string_view> names;
      for (const knob& each : knobs()) {
        names.push_back(each.name);
      }
      return "vary: unknown knob " + json_quote(name) + " (knobs: " + joined(names, ", ") + ")";
    }
    if (!k->values.empty() &&
        std::find(k->values.begin(), k->values.end(), value) == k->values.end()) {
      return "vary: " + name + ": unknown value " + json_quote(value) + " (expected " +
             joined(k->values) + ")";
    }
    if (k->values.empty()) {
      const auto& endpoints = api_endpoint_names();
      for (const std::string_view item : list_items(value)) {
        if (std::none_of(endpoints.begin(), endpoints.end(),
                         [&](std::string_view e) { return names_endpoint(item, e); })) {
          return "vary: " + name + ": unknown endpoint " + json_quote(item) +
                 " (endpoints: " + joined(endpoints) + ", each with or without \"cases.\")";
        }
      }
    }
  }
  return std::nullopt;
}

std::string_view knob_value(const shape_settings& shapes, std::string_view name) {
  const knob* k = find_knob(name);
  if (k == nullptr) {
    throw std::logic_error("certn-sim: no knob " + std::string(name));
  }
  const auto found = shapes.vary.find(std::string(name));
  if (found != shapes.vary.end()) {
    return found->second;
  }
  return observed(shapes) ? k->observed : k->assumed;
}

bool is_forbidden(const shape_settings& shapes, std::string_view endpoint) {
  const auto items = list_items(knob_value(shapes, "forbidden"));
  return std::any_of(items.begin(), items.end(),
                     [&](std::string_view item) { return names_endpoint(item, endpoint); });
}

std::string shapes_json(const shape_settings& shapes) {
  json_writer out;
  out.begin_object();
  out.key("shapes").value(shapes.family);
  out.key("vary").begin_object();
  for (const auto& [name, value] : shapes.vary) {
    out.key(name).value(value);
  }
  out.end_object();
  out.key("knobs").begin_object();
  for (const knob& k : knobs()) {
    out.key(k.name).value(knob_value(shapes, k.name));
  }
  out.end_object();
  out.end_object();
  return out.str();
}

std::string case_json(const case_record& c, const shape_settings& shapes,
                      const case_options& options) {
  const bool seen = observed(shapes);
  json_writer out;
  out.begin_object();
  if (!options.without_id) {
    out.key("id").value(c.id);
  }
  out.key(knob_value(shapes, "case.status_name")).value(c.overall_status);
  out.key("overall_score");
  if (!seen) {
    out.value_or_null(c.overall_score);
  } else if (c.overall_score) {
    out.number(100);
  } else {
    out.null();
  }
  out.key("email_address").value(c.email_address);
  out.key("group").value(c.group);
  out.key("ordered_by");
  if (seen) {
    out.begin_object().key("email").value(c.ordered_by).end_object();
  } else {
    out.value(c.ordered_by);
  }
  out.key("tags").begin_array();
  for (const std::string& tag : c.tags) {
    out.value(tag);
  }
  out.end_array();
  if (seen) {
    out.key("custom_fields").begin_object();
    out.key("reference").value("SIM-" + c.id.substr(0, 8));
    out.end_object();
  }
  if (const std::string_view created = knob_value(shapes, "case.created_name");
      created != "absent") {
    out.key(created).value(iso8601(c.created));
  }
  out.key("modified").value(iso8601(c.modified));
  out.key("checks").begin_array();
  for (const check_record& check : c.checks) {
    write_check(out, check, shapes);
  }
  out.end_array();
  if (options.invite_link) {
    out.key("invite_link").value(*options.invite_link);
  }
  out.end_object();
  return out.str();
}

std::string list_json(const list_page& page, const shape_settings& shapes) {
  auto url_or_null = [](json_writer& out, const std::string& url) {
    if (url.empty()) {
      out.null();
    } else {
      out.value(url);
    }
  };
  auto entries = [&](json_writer& out) {
    out.begin_array();
    for (const std::string& entry : page.entries) {
      out.raw(entry);
    }
    out.end_array();
  };
  json_writer out;
  const std::string_view form = knob_value(shapes, "list.form");
  if (form == "bare") {
    entries(out);
    return out.str();
  }
  out.begin_object();
  if (form == "pagination") {
    out.key("results");
    entries(out);
    out.key("pagination").begin_object();
    out.key("next");
    url_or_null(out, page.next);
    out.key("previous");
    url_or_null(out, page.previous);
    out.key("page").number(page.page);
    out.key("total_pages").number(page.pages);
    out.key("page_size").number(page.page_size);
    out.end_object();
  } else {
    out.key("count").number(page.count);
    out.key("next");
    url_or_null(out, page.next);
    out.key("previous");
    url_or_null(out, page.previous);
    out.key("results");
    entries(out);
  }
  out.end_object();
  return out.str();
}

std::string report_file_json(const report_file& report, const std::optional<std::string>& url,
                             const shape_settings& shapes) {
  std::string url_name(knob_value(shapes, "report_file.url_name"));
  bool url_first = false;
  if (url_name == alternate) {
    // The two forms seen in public examples, in their order: {status, pdf_url}, {url, status}.
    const bool even = report.number % 2 == 0;
    url_name = even ? "pdf_url" : "url";
    url_first = !even;
  }
  auto write_url = [&](json_writer& out) {
    out.key(url_name);
    if (url) {
      out.value(*url);
    } else {
      out.null();
    }
  };
  json_writer out;
  out.begin_object();
  if (is(shapes, "report_file.id", "present")) {
    out.key("id").value(report.id);
  }
  if (!observed(shapes)) {
    out.key("case_id").value(report.case_id);
  }
  if (url_first) {
    write_url(out);
  }
  out.key("status").value(report.status);
  if (!url_first) {
    write_url(out);
  }
  if (!observed(shapes)) {
    out.key("created").value(iso8601(report.created));
  }
  out.end_object();
  return out.str();
}

shaped_answer generate_report_answer(const report_file& report, const shape_settings& shapes) {
  const bool even = report.number % 2 == 0;
  std::string id_name(knob_value(shapes, "generate_report.id_name"));
  if (id_name == alternate) {
    id_name = even ? "case_report_file_id" : "id";
  }
  const std::string_view status = knob_value(shapes, "generate_report.status");
  shaped_answer answer;
  if (status == alternate) {
    answer.status = even ? 201 : 202;
  } else {
    answer.status = std::stoi(std::string(status));
  }
  if (is(shapes, "generate_report.body", "normal")) {
    json_writer out;
    out.begin_object().key(id_name).value(report.id).end_object();
    answer.body = out.str();
  }
  return answer;
}

std::string supplementary_files_json(
    const case_record& c, const shape_settings& shapes,
    const std::function<std::string(const file_record&)>& presign) {
  const bool with_id = is(shapes, "file.id", "present");
  const std::string_view name_name = knob_value(shapes, "file.name_name");
  const std::string_view url_name = knob_value(shapes, "file.url_name");
  json_writer out;
  out.begin_object().key("id").value(c.id).key("checks").begin_array();
  for (const check_record& check : c.checks) {
    out.begin_object();
    out.key("id").value(check.id).key("type").value(check.type).key("status").value(check.status);
    out.key(knob_value(shapes, "files.key")).begin_array();
    if (is_closed_check_status(check.status)) {
      for (const file_record& file : check.files) {
        out.begin_object();
        if (with_id) {
          out.key("id").value(file.id);
        }
        out.key(name_name).value(file.name);
        out.key("content_type").value(file.content_type);
        out.key("size").number(static_cast<std::int64_t>(file.size));
        out.key(url_name).value(presign(file));
        out.key("created").value(iso8601(file.created));
        out.end_object();
      }
    }
    out.end_array().end_object();
  }
  out.end_array().end_object();
  return out.str();
}

std::string supplementary_information_body(const case_record& c, const shape_settings& shapes) {
  json_writer out;
  out.begin_object().key("id").value(c.id).key("checks").begin_array();
  for (const check_record& check : c.checks) {
    out.begin_object();
    out.key("id").value(check.id).key("type").value(check.type).key("status").value(check.status);
    out.key("supplementary_information").raw(supplementary_information_json(c, check));
    out.end_object();
  }
  out.end_array().end_object();
  if (is(shapes, "supplementary_information.body", "invalid")) {
    // Cut off half-way, as a proxy or a failing server might: 200, yet not JSON.
    return out.str().substr(0, out.str().size() / 2);
  }
  return out.str();
}

}  // namespace certn_sim
