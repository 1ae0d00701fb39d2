// certn-sim's response shapes: the knobs (one per field whose shape differs between what we assume
// of Certn and what public examples show), the value each family gives them, and the JSON writers
// whose output they change. README "Response shapes" lists them. Pure: no I/O, no state.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "simulator.hpp"
#include "state.hpp"

namespace certn_sim {

struct knob {
  std::string_view name;
  std::vector<std::string_view> values;  // empty: the value is a list (see "forbidden")
  std::string_view assumed;              // its value in the family "assumed"
  std::string_view observed;             // its value in the family "observed"
};

// Every knob, in README order.
const std::vector<knob>& knobs();

// nullopt when `shapes` names a known family and only known knobs with allowed values; otherwise
// one line naming the bad family, knob or value and what is allowed.
std::optional<std::string> shape_error(const shape_settings& shapes);

// The value of the knob `name` in force: its override, else its family's. `shapes` must be valid
// and `name` a knob (std::logic_error otherwise).
std::string_view knob_value(const shape_settings& shapes, std::string_view name);

// Whether the knob "forbidden" lists the API endpoint named `endpoint` (as in /_sim/stats,
// "cases.report_file"; the list may leave out the "cases." prefix).
bool is_forbidden(const shape_settings& shapes, std::string_view endpoint);

// {"shapes": family, "vary": {overrides}, "knobs": {every knob: its value in force}}.
std::string shapes_json(const shape_settings& shapes);

struct case_options {
  std::optional<std::string> invite_link;
  bool without_id = false;  // list.bad_entry: an entry a client cannot use
};

// A case as the API shows it in `shapes` (GET cases/{id}/, list entries, order, cancel).
std::string case_json(const case_record& c, const shape_settings& shapes,
                      const case_options& options = {});

// One page of GET cases/: `entries` are case_json() texts; `next`/`previous` are URLs or empty.
struct list_page {
  std::vector<std::string> entries;
  std::int64_t count = 0;  // matches on every page
  std::int64_t page = 1;
  std::int64_t pages = 1;
  std::int64_t page_size = 10;
  std::string next;
  std::string previous;
};
std::string list_json(const list_page& page, const shape_settings& shapes);

// The body of GET cases/report-files/{id}/; `url` is the presigned PDF URL once COMPLETE.
std::string report_file_json(const report_file& report, const std::optional<std::string>& url,
                             const shape_settings& shapes);

// The status and body of POST cases/{id}/generate-report/ for the report it created.
struct shaped_answer {
  int status = 200;
  std::string body;  // empty: no body at all
};
shaped_answer generate_report_answer(const report_file& report, const shape_settings& shapes);

// GET cases/{id}/supplementary-files/; `presign` gives a fresh URL for a file of a closed check.
std::string supplementary_files_json(const case_record& c, const shape_settings& shapes,
                                     const std::function<std::string(const file_record&)>& presign);

// GET cases/{id}/supplementary-information/ (not JSON at all when the knob says "invalid").
std::string supplementary_information_body(const case_record& c, const shape_settings& shapes);

}  // namespace certn_sim
