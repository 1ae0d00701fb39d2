// The case probes of `certn-archiver probe`: a page of the case list and one case, each read again
// with the model's readers.
#include <string>
#include <utility>

#include "service/probe_detail.hpp"

namespace archiver::service::probe_detail {

response_check check_list(const certn::call_result<certn::case_page>& result, std::string endpoint) {
  response_check out = start_check(std::move(endpoint), result);
  if (!out.answered) {
    return out;
  }
  const auto read = certn::parse_case_page(result.body, &out.shape);
  take_verdict(out, read);
  if (read.value) {
    out.skipped = read.value->skipped;
    out.summary = counted(read.value->results.size(), "case") + " listed";
  }
  return out;
}

response_check check_case(const certn::call_result<certn::case_record>& result, std::string endpoint, const std::string& id) {
  response_check out = start_check(std::move(endpoint), result);
  if (!out.answered) {
    return out;
  }
  const auto read = certn::parse_case(result.body, id, &out.shape);
  take_verdict(out, read);
  if (read.value) {
    out.summary = read.value->overall_status + ", " + counted(read.value->checks.size(), "check");
  }
  return out;
}

}  // namespace archiver::service::probe_detail
