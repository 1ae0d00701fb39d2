// Fuzzes the Certn answer parsers (certn/model.hpp): every input goes through all six, with and
// without the id of the request path, since a body that is nearly one shape is an interesting
// input for the others. Properties: exactly one of value and error, errors and skip reasons on
// one line; every id that will become a storage key passes is_valid_id (derived file keys too);
// a case keeps the exact body; a list entry with a status parses as a case with the same fields;
// every name a shape report matched is an accepted name; re-serialised JSON (raw_json,
// information_json) is stable when parsed again.
#include "certn/model.hpp"
#include "fuzz_support.hpp"

#include <simdjson.h>

#include <string>

using archiver::fuzz::require;
namespace certn = archiver::certn;

namespace {

template <class T>
bool check_shape(const certn::parsed<T>& result) {
  if (!result.value) {
    require(!result.error.empty(), "a refused body comes with an error");
    require(result.error.find('\n') == std::string::npos, "the error is one line", result.error);
    return false;
  }
  require(result.error.empty(), "an accepted body has no error", result.error);
  return true;
}

void check_id(const std::string& id) { require(certn::is_valid_id(id), "ids are valid keys", id); }

bool same_checks(const std::vector<certn::check>& a, const std::vector<certn::check>& b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].id != b[i].id || a[i].type != b[i].type || a[i].status != b[i].status ||
        a[i].result != b[i].result || a[i].created != b[i].created ||
        a[i].modified != b[i].modified) {
      return false;
    }
  }
  return true;
}

bool same_case(const certn::case_record& a, const certn::case_record& b) {
  return a.id == b.id && a.overall_status == b.overall_status &&
         a.overall_score == b.overall_score && a.email_address == b.email_address &&
         a.created == b.created && a.modified == b.modified && same_checks(a.checks, b.checks);
}

void check_case(const certn::case_record& record) {
  check_id(record.id);
  for (const certn::check& c : record.checks) {
    check_id(c.id);
  }
}

// minify(parse(json)) == json: what we re-serialised reads back as the same bytes.
void check_stable_json(const std::string& json) {
  simdjson::dom::parser parser;
  simdjson::dom::element value;
  const auto error = parser.parse(json).get(value);
  require(error == simdjson::SUCCESS, "re-serialised JSON parses", json);
  require(simdjson::minify(value) == json, "re-serialised JSON is stable", json);
}

// Every name a shape report says matched is one of the accepted names of that field.
void check_report(const certn::shape_report& report) {
  for (const auto& match : report.fields) {
    if (match.matched.empty()) {
      continue;
    }
    bool accepted = false;
    for (const certn::accepted_field& field : certn::accepted_fields()) {
      if (field.field != match.field) {
        continue;
      }
      for (const std::string_view name : field.names) {
        accepted = accepted || name == match.matched;
      }
    }
    require(accepted, "a matched name is an accepted name", match.field + "=" + match.matched);
  }
}

void check_lines(const std::vector<std::string>& lines) {
  for (const std::string& line : lines) {
    require(!line.empty() && line.find('\n') == std::string::npos, "entry reasons are one line",
            line);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  const std::string_view body = archiver::fuzz::as_text(data, size);

  if (const auto one = certn::parse_case(body); check_shape(one)) {
    check_case(*one.value);
    require(one.value->raw_json == body, "a case keeps the exact body");
    require(!one.value->overall_status.empty(), "a single case always has a status");
  }
  {
    // With the id of the path we called, and a shape report: the same case, or a case where the
    // plain parse wanted an id.
    certn::shape_report report;
    const auto with_path = certn::parse_case(body, "path-id", &report);
    if (check_shape(with_path)) {
      check_case(*with_path.value);
    }
    check_report(report);
  }

  if (const auto page = certn::parse_case_page(body); check_shape(page)) {
    check_lines(page.value->skipped);
    (void)certn::has_more_pages(*page.value, 100);
    for (const certn::case_record& record : page.value->results) {
      check_case(record);
      check_stable_json(record.raw_json);
      if (record.overall_status.empty()) {
        continue;  // list entries need no status; a single case does
      }
      const auto again = certn::parse_case(record.raw_json);
      require(again.value.has_value(), "a list entry with a status parses as a case",
              record.raw_json);
      require(same_case(*again.value, record), "a list entry parses to the same case",
              record.raw_json);
    }
  }

  if (const auto file = certn::parse_report_file(body); check_shape(file)) {
    check_id(file.value->id);
  }
  if (const auto file = certn::parse_report_file(body, "rf-path"); check_shape(file)) {
    check_id(file.value->id);
    require(!file.value->url || !file.value->url->empty(), "a report URL is never empty");
  }

  if (const auto id = certn::parse_generate_report(body); check_shape(id)) {
    check_id(*id.value);
  }

  if (const auto files = certn::parse_supplementary_files(body, "case-path"); check_shape(files)) {
    check_id(files.value->case_id);
    check_lines(files.value->unusable);
    for (const certn::supplementary_check& c : files.value->checks) {
      check_id(c.id);
      for (const certn::supplementary_file& f : c.files) {
        check_id(f.id);
        require(!f.url.empty(), "a file we keep has a URL");
        require(!f.size || *f.size >= 0, "sizes are not negative");
        if (f.id_derived) {
          require(f.id == certn::file_id_from_url(f.url), "a derived key comes from the URL");
        }
      }
    }
  }

  if (const auto info = certn::parse_supplementary_information(body, "case-path");
      check_shape(info)) {
    check_id(info.value->case_id);
    for (const certn::supplementary_information_check& c : info.value->checks) {
      if (!c.id.empty()) {
        check_id(c.id);
      }
      check_stable_json(c.information_json);
    }
  }
  return 0;
}
