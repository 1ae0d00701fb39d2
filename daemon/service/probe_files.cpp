// The file probes of `certn-archiver probe`: a case's supplementary information and files and a
// report file, each read again with the model's readers, and whether the download client would
// fetch the URLs they give.
#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "archive/policy.hpp"
#include "http/address_policy.hpp"
#include "service/probe_detail.hpp"

namespace archiver::service::probe_detail {

namespace {

// The names the report reader accepts for the PDF URL, from the model's own table.
std::string report_url_names() {
  for (const auto& field : certn::accepted_fields()) {
    if (field.response == "report file" && field.field == "url") {
      return joined(std::vector<std::string>(field.names.begin(), field.names.end()), ", ");
    }
  }
  return "url";
}

}  // namespace

// Would the download client fetch `url`? The same rules as certn_clients' download policy
// (addresses are checked only when fetching); a refusal means nothing there can be archived.
void check_download(response_check& check, std::string_view text,
                    const config::certn_settings& settings) {
  const auto url = http::parse_url(text, nullptr);
  if (!url) {
    check.archivable = false;
    check.error = "a download URL is not a usable http(s) URL";
    return;
  }
  const bool plain_refused = url->scheme == "http" && !settings.allow_plain_http;
  const bool allowed = !plain_refused && http::host_matches(url->host, settings.download_hosts);
  const std::string where = origin(*url);
  if (std::none_of(check.downloads.begin(), check.downloads.end(),
                   [&](const auto& seen) { return seen.first == where; })) {
    check.downloads.emplace_back(where, allowed);
  }
  if (allowed || !check.archivable) {
    return;
  }
  check.archivable = false;
  if (plain_refused) {
    check.error = "downloads from " + where +
                  " are plain http, refused unless certn.allow_plain_http (test setups only)";
  } else {
    check.error = "downloads from " + where + " are refused: add " + url->host +
                  " (or a *.suffix pattern) to certn.download_hosts";
  }
}

response_check check_information(const certn::call_result<certn::supplementary_information>& result, std::string endpoint, const std::string& id) {
  response_check out = start_check(std::move(endpoint), result);
  if (!out.answered) {
    return out;
  }
  const auto read = certn::parse_supplementary_information(result.body, id, &out.shape);
  take_verdict(out, read);
  if (read.value) {
    out.summary = counted(read.value->checks.size(), "check");
  }
  return out;
}

response_check check_files(const certn::call_result<certn::supplementary_files>& result, std::string endpoint, const std::string& id,
                           const config::certn_settings& settings) {
  response_check out = start_check(std::move(endpoint), result);
  if (!out.answered) {
    return out;
  }
  const auto read = certn::parse_supplementary_files(result.body, id, &out.shape);
  take_verdict(out, read);
  if (!read.value) {
    return out;
  }
  out.skipped = read.value->unusable;
  out.files = 0;
  for (const auto& check : read.value->checks) {
    for (const auto& file : check.files) {
      ++*out.files;
      check_download(out, file.url, settings);
    }
  }
  out.summary = counted(*out.files, "file") + " found, " +
                counted(read.value->unusable.size(), "unusable entry", "unusable entries");
  return out;
}

response_check check_report_file(const certn::call_result<certn::report_file>& result, std::string endpoint, const std::string& id,
                                 const config::certn_settings& settings) {
  response_check out = start_check(std::move(endpoint), result);
  if (!out.answered) {
    return out;
  }
  const auto read = certn::parse_report_file(result.body, id, &out.shape);
  take_verdict(out, read);
  if (!read.value) {
    return out;
  }
  const certn::report_file& report = *read.value;
  const std::string state = report.status.empty() ? "no status" : report.status;
  // The same decision the report job takes (archive/policy).
  switch (archive::decide_report(report)) {
    case archive::report_step::download:
      out.summary = state + ", PDF at " + without_query(*report.url);
      check_download(out, *report.url, settings);
      break;
    case archive::report_step::wait:
      out.summary = state + ": not ready yet, the pipeline polls again later";
      break;
    case archive::report_step::failed:
      out.archivable = false;
      out.error = "Certn reports this report file as " + state;
      break;
    case archive::report_step::no_url:
      out.archivable = false;
      out.error = state + " without a URL (none of " + report_url_names() + ")";
      break;
  }
  return out;
}

}  // namespace archiver::service::probe_detail
