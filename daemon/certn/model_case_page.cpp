// GET /cases/: a list page in any of its envelopes (Django's, a pagination object, a bare array),
// entries that cannot be used left out and named, and whether another page follows.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "certn/model_detail.hpp"

namespace archiver::certn {

using namespace model_detail;

parsed<case_page> parse_case_page(std::string_view body, shape_report* report) {
  return parse_root<case_page>(body, [report](element root, case_page& out) -> std::string {
    array results;
    std::string results_key = "results";
    object root_object;
    std::optional<reader> envelope;
    if (root.get_array().get(results) == simdjson::SUCCESS) {
      results_key = "";  // a bare array of cases
    } else if (root.get_object().get(root_object) == simdjson::SUCCESS) {
      envelope.emplace(root_object, "", "case list", report);
      const auto found = envelope->list("results", list_results_names);
      if (!found) {
        return envelope->missing_message("results", list_results_names) + " or not an array";
      }
      results = *found;
      results_key = std::string(envelope->matched_name());
      if (const auto count = envelope->find("count", list_count_names, tolerated)) {
        std::uint64_t value = 0;
        if (count->get_uint64().get(value) == simdjson::SUCCESS) {
          out.count = value;
        }
      }
      out.next = envelope->optional_text("next", list_next_names);
      out.previous = envelope->optional_text("previous", list_previous_names);
      if (const auto pagination = envelope->find("pagination", pagination_names, tolerated)) {
        object pagination_object;
        if (pagination->get_object().get(pagination_object) == simdjson::SUCCESS) {
          reader paging(pagination_object, "pagination", "case list.pagination", report);
          if (!out.next) {
            out.next = paging.optional_text("next", list_next_names);
          }
          std::int64_t page = 0;
          std::int64_t total = 0;
          const auto page_value = paging.find("page", page_names, tolerated);
          const auto total_value = paging.find("total_pages", total_pages_names, tolerated);
          if (page_value && total_value &&
              page_value->get_int64().get(page) == simdjson::SUCCESS &&
              total_value->get_int64().get(total) == simdjson::SUCCESS) {
            out.more_pages = page < total;
          }
        }
      }
    } else {
      return "body: expected a JSON object or array";
    }
    std::size_t index = 0;
    for (const element item : results) {
      const std::string name =
          (results_key.empty() ? std::string() : results_key) + "[" + std::to_string(index++) + "]";
      object case_object;
      if (item.get_object().get(case_object) != simdjson::SUCCESS) {
        out.skipped.push_back(name + ": expected an object");
        continue;
      }
      reader in(case_object, name, "case list.results[]", report);
      case_record record;
      std::string problem;
      if (const auto id = in.id("id", case_id_names, skips_entry, problem)) {
        record.id = *id;
      } else {
        out.skipped.push_back(problem.empty() ? in.missing_message("id", case_id_names)
                                              : problem);
        continue;
      }
      if (std::string failed =
              read_case_fields(in, record, false, "case list.results[].checks[]", report);
          !failed.empty()) {
        out.skipped.push_back(name + " (case " + record.id + "): " + failed);
        continue;
      }
      // The DOM cannot give back an entry's received bytes; minify re-serializes the same value.
      record.raw_json = simdjson::minify(item);
      out.results.push_back(std::move(record));
    }
    return {};
  });
}

bool has_more_pages(const case_page& page, int page_size) {
  if (page.results.empty() && page.skipped.empty()) {
    return false;
  }
  if (page.next) {
    return !page.next->empty();
  }
  if (page.more_pages) {
    return *page.more_pages;
  }
  if (page.count) {
    return false;  // Django's envelope without "next": the last page
  }
  // A bare array (or an envelope that says nothing): a full page may have a successor.
  return static_cast<int>(page.results.size() + page.skipped.size()) >= page_size;
}

}  // namespace archiver::certn
