// The certn module's pure parts: Certn JSON answers, the error envelope, failure classes,
// Retry-After, list queries and the rate limiter. No I/O but timers.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "certn/api.hpp"
#include "certn/errors.hpp"
#include "certn/key_expiry.hpp"
#include "certn/model.hpp"
#include "certn/rate_limiter.hpp"
#include "net/asio.hpp"
#include "ops/clock.hpp"

using namespace archiver::certn;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view case_body = R"({
  "id": "3f2c1e9a-1b2c-4d5e-8f90-123456789abc",
  "overall_status": "COMPLETE",
  "overall_score": "CLEARED",
  "email_address": "applicant@example.com",
  "created": "2026-11-01T10:00:00Z",
  "modified": "2026-11-02T11:30:00Z",
  "tags": ["x"], "invite_link": null, "extra": {"nested": [1, 2, 3]},
  "checks": [
    {"id": "chk-1", "type": "CRIMINAL_RECORD_CHECK", "status": "COMPLETE", "result": "CLEAR",
     "created": "2026-11-01T10:00:01Z", "modified": "2026-11-02T11:30:00Z", "vendor": "x"},
    {"id": "chk-2", "type": "IDENTITY_VERIFICATION", "status": "IN_PROGRESS"}
  ]
})";

}  // namespace

TEST_CASE("parses a case with its checks and keeps the exact body") {
  const auto parsed_case = parse_case(case_body);
  REQUIRE_MESSAGE(parsed_case.value, parsed_case.error);
  const case_record& record = *parsed_case.value;
  CHECK(record.id == "3f2c1e9a-1b2c-4d5e-8f90-123456789abc");
  CHECK(record.overall_status == "COMPLETE");
  CHECK(record.overall_score == "CLEARED");
  CHECK(record.email_address == "applicant@example.com");
  CHECK(record.created == "2026-11-01T10:00:00Z");
  CHECK(record.modified == "2026-11-02T11:30:00Z");
  CHECK(record.raw_json == case_body);
  REQUIRE(record.checks.size() == 2);
  CHECK(record.checks[0].id == "chk-1");
  CHECK(record.checks[0].type == "CRIMINAL_RECORD_CHECK");
  CHECK(record.checks[0].status == "COMPLETE");
  CHECK(record.checks[0].result == "CLEAR");
  CHECK(record.checks[0].created == "2026-11-01T10:00:01Z");
  CHECK(record.checks[1].result == std::nullopt);
  CHECK(record.checks[1].created.empty());
  CHECK(record.checks[1].modified.empty());
}

TEST_CASE("accepts a numeric, null or missing overall score") {
  auto numeric = parse_case(R"({"id":"c1","overall_status":"COMPLETE","overall_score":87.5})");
  REQUIRE_MESSAGE(numeric.value, numeric.error);
  CHECK(numeric.value->overall_score == "87.5");
  auto null_score = parse_case(R"({"id":"c1","overall_status":"COMPLETE","overall_score":null})");
  REQUIRE_MESSAGE(null_score.value, null_score.error);
  CHECK(null_score.value->overall_score == std::nullopt);
  auto missing = parse_case(R"({"id":"c1","overall_status":"COMPLETE"})");
  REQUIRE_MESSAGE(missing.value, missing.error);
  CHECK(missing.value->overall_score == std::nullopt);
  CHECK(missing.value->checks.empty());
  // Not needed for any decision: a score of another shape is left out, not a failure.
  auto wrong = parse_case(R"({"id":"c1","overall_status":"COMPLETE","overall_score":[1]})");
  REQUIRE_MESSAGE(wrong.value, wrong.error);
  CHECK(wrong.value->overall_score == std::nullopt);
}

TEST_CASE("accepts unknown case and check statuses") {
  const auto parsed_case = parse_case(
      R"({"id":"c1","overall_status":"BRAND_NEW_STATUS","checks":[{"id":"k","status":"ODD"}]})");
  REQUIRE_MESSAGE(parsed_case.value, parsed_case.error);
  CHECK(parsed_case.value->overall_status == "BRAND_NEW_STATUS");
  CHECK(parsed_case.value->checks[0].status == "ODD");
  CHECK_FALSE(is_known_case_status("BRAND_NEW_STATUS"));
  CHECK_FALSE(is_check_closed("ODD"));
}

TEST_CASE("rejects only case bodies it cannot use, with a one-line error naming the field") {
  struct row {
    std::string_view body;
    std::string_view error;
  };
  const std::vector<row> rows = {
      {"", "body: empty"},
      {R"([1,2])", "body: expected a JSON object"},
      {R"("text")", "body: expected a JSON object"},
      {R"({"overall_status":"COMPLETE"})", "id: missing (none of id, case_id)"},
      {R"({"id":true,"overall_status":"COMPLETE"})", "id: expected a string or an integer"},
      {R"({"id":"","overall_status":"COMPLETE"})", "id: empty"},
      {R"({"id":"a/b","overall_status":"COMPLETE"})",
       "id: contains characters other than [A-Za-z0-9._:-]"},
      {R"({"id":"c1"})", "overall_status: missing (none of overall_status, status, case_status)"},
      {R"({"id":"c1","overall_status":null})",
       "overall_status: missing (none of overall_status, status, case_status)"},
      {R"({"id":"c1","overall_status":""})", "overall_status: expected a non-empty string"},
      {R"({"id":"c1","status":{}})", "status: expected a non-empty string"},
  };
  for (const row& r : rows) {
    CAPTURE(r.body);
    const auto result = parse_case(r.body);
    CHECK_FALSE(result.value);
    CHECK(result.error == r.error);
  }
}

TEST_CASE("tolerates what a case decision does not need") {
  struct row {
    std::string_view body;
    std::size_t checks;
  };
  // Wrong types and odd entries in fields nothing decides on are read as empty or left out.
  const std::vector<row> rows = {
      {R"({"id":"c1","overall_status":"X","email_address":5})", 0},
      {R"({"id":"c1","overall_status":"X","checks":{}})", 0},
      {R"({"id":"c1","overall_status":"X","checks":[1, null, "k"]})", 0},
      {R"({"id":"c1","overall_status":"X","checks":[{"id":"k"}]})", 1},
      {R"({"id":"c1","overall_status":"X","checks":[{"id":"k","status":"S"},{"id":"k 2"},{"status":"S"}]})",
       1},
      {R"({"id":"c1","overall_status":"X","modified":12,"created":null,"overall_score":{"a":1}})", 0},
  };
  for (const row& r : rows) {
    CAPTURE(r.body);
    const auto result = parse_case(r.body);
    REQUIRE_MESSAGE(result.value, result.error);
    CHECK(result.value->checks.size() == r.checks);
  }
  CHECK(parse_case(R"({"id":"c1","overall_status":"X","email_address":5})").value->email_address ==
        "5");
  CHECK(parse_case(R"({"id":"c1","overall_status":"X","modified":12})").value->modified == "12");
}

TEST_CASE("takes the case id from the path when the body has none, and ids given as numbers") {
  const auto from_path = parse_case(R"({"overall_status":"COMPLETE"})", "c-9");
  REQUIRE_MESSAGE(from_path.value, from_path.error);
  CHECK(from_path.value->id == "c-9");
  const auto numeric = parse_case(R"({"id":12345,"overall_status":"COMPLETE"})", "12345");
  REQUIRE_MESSAGE(numeric.value, numeric.error);
  CHECK(numeric.value->id == "12345");
  const auto by_case_id = parse_case(R"({"case_id":"c-7","status":"COMPLETE"})");
  REQUIRE_MESSAGE(by_case_id.value, by_case_id.error);
  CHECK(by_case_id.value->id == "c-7");
  CHECK(by_case_id.value->overall_status == "COMPLETE");
}

TEST_CASE("reads checks as seen in the wild: check_type, scores, no result or modified") {
  constexpr std::string_view body = R"({"id":"c1","overall_status":"COMPLETE","tags":[],
    "ordered_by":{"id":7},"custom_fields":{},"checks":[
    {"id":"k1","short_id":"K1","check_type":"CRIMINAL_RECORD_CHECK","status":"COMPLETE",
     "score":"CLEARED","sub_score":null,"adjudication_score":3,"output_claims":{"a":[1]}}]})";
  shape_report report;
  const auto result = parse_case(body, "c1", &report);
  REQUIRE_MESSAGE(result.value, result.error);
  REQUIRE(result.value->checks.size() == 1);
  const check& first = result.value->checks[0];
  CHECK(first.id == "k1");
  CHECK(first.type == "CRIMINAL_RECORD_CHECK");
  CHECK(first.status == "COMPLETE");
  CHECK(first.result == std::nullopt);
  CHECK(first.modified.empty());
  const auto matched = [&report](std::string_view where, std::string_view field) {
    for (const auto& m : report.fields) {
      if (m.where == where && m.field == field) {
        return m.matched;
      }
    }
    return std::string("?");
  };
  CHECK(matched("case.checks[]", "type") == "check_type");
  CHECK(matched("case.checks[]", "result").empty());
  CHECK(matched("case", "overall_status") == "overall_status");
  const auto unknown = [&report](std::string_view name) {
    return std::find(report.unknown.begin(), report.unknown.end(), name) != report.unknown.end();
  };
  CHECK(unknown("case.tags"));
  CHECK(unknown("case.custom_fields"));
  CHECK(unknown("case.checks[].adjudication_score"));
  CHECK(unknown("case.checks[].output_claims"));
  CHECK_FALSE(unknown("case.checks[].check_type"));
}

TEST_CASE("every accepted name of a field is read, and the first present one wins") {
  // A body per accepted name, built from the table itself, so the table and the reader agree.
  for (const accepted_field& field : accepted_fields()) {
    CAPTURE(field.response);
    CAPTURE(field.field);
    for (const std::string_view name : field.names) {
      CAPTURE(name);
      const std::string key = std::string(name);
      if (field.response == "report file" && field.field == "url") {
        const auto r = parse_report_file(R"({"status":"COMPLETE",")" + key + R"(":"https://s/r"})",
                                         "r1");
        REQUIRE_MESSAGE(r.value, r.error);
        CHECK(r.value->url == "https://s/r");
      } else if (field.response == "report file" && field.field == "id") {
        const auto r = parse_report_file(R"({")" + key + R"(":"r2","status":"X"})", "r1");
        REQUIRE_MESSAGE(r.value, r.error);
        CHECK(r.value->id == "r2");
      } else if (field.response == "report file" && field.field == "status") {
        const auto r = parse_report_file(R"({")" + key + R"(":"complete"})", "r1");
        REQUIRE_MESSAGE(r.value, r.error);
        CHECK(r.value->status == "COMPLETE");
      } else if (field.response == "generate-report") {
        CHECK(parse_generate_report(R"({")" + key + R"(":"g1"})").value == "g1");
      } else if (field.response == "case" && field.field == "overall_status") {
        CHECK(parse_case(R"({"id":"c",")" + key + R"(":"COMPLETE"})").value->overall_status ==
              "COMPLETE");
      } else if (field.response == "case" && field.field == "modified") {
        CHECK(parse_case(R"({"id":"c","status":"S",")" + key + R"(":"m1"})").value->modified ==
              "m1");
      } else if (field.response == "case.checks[]" && field.field == "type") {
        const auto c = parse_case(R"({"id":"c","status":"S","checks":[{"id":"k",")" + key +
                                  R"(":"T"}]})");
        CHECK(c.value->checks.at(0).type == "T");
      } else if (field.response == "case list" && field.field == "results") {
        const auto p = parse_case_page(R"({")" + key + R"(":[{"id":"c1"}]})");
        REQUIRE_MESSAGE(p.value, p.error);
        CHECK(p.value->results.size() == 1);
      } else if (field.response == "supplementary files" && field.field == "files") {
        const auto f = parse_supplementary_files(R"({")" + key + R"(":[{"id":"f","url":"https://s/f"}]})",
                                                 "c1");
        REQUIRE_MESSAGE(f.value, f.error);
        CHECK(f.value->checks.at(0).id == "case");
        CHECK(f.value->checks.at(0).files.at(0).id == "f");
      } else if (field.response == "supplementary files.checks[]" && field.field == "files") {
        const auto f = parse_supplementary_files(R"({"checks":[{"id":"k",")" + key +
                                                 R"(":[{"id":"f","url":"https://s/f"}]}]})",
                                                 "c1");
        REQUIRE_MESSAGE(f.value, f.error);
        CHECK(f.value->checks.at(0).files.size() == 1);
      } else if (field.response == "supplementary files.files[]") {
        const std::string value = field.field == "size" ? "12" : R"("v1")";
        std::string file = R"({")" + key + R"(":)" + value;
        if (field.field != "url") {
          file += R"(,"url":"https://s/f")";
        }
        file += "}";
        const auto f = parse_supplementary_files(R"({"checks":[{"id":"k","files":[)" + file + "]}]}",
                                                 "c1");
        REQUIRE_MESSAGE(f.value, f.error);
        REQUIRE(f.value->checks.at(0).files.size() == 1);
        const supplementary_file& read = f.value->checks[0].files[0];
        if (field.field == "url") {
          CHECK(read.url == "v1");
        } else if (field.field == "id") {
          CHECK(read.id == "v1");
        } else if (field.field == "name") {
          CHECK(read.name == "v1");
        } else if (field.field == "content_type") {
          CHECK(read.content_type == "v1");
        } else if (field.field == "size") {
          CHECK(read.size == 12);
        } else if (field.field == "created") {
          CHECK(read.created == "v1");
        }
      }
    }
  }
  // The first present, non-null name wins.
  CHECK(parse_report_file(R"({"status":"COMPLETE","pdf_url":null,"url":"https://s/b","file_url":"https://s/c"})",
                          "r1")
            .value->url == "https://s/b");
  CHECK(parse_generate_report(R"({"case_report_file_id":"a1","report_file_id":"b","id":"c"})")
            .value == "a1");
}

TEST_CASE("reads the three list forms and decides whether another page follows") {
  const auto django = parse_case_page(
      R"({"count":23,"next":"https://x/api/public/cases/?page=2","previous":null,"unknown":true,
          "results":[{"id":"c1","overall_status":"COMPLETE","checks":[{"id":"k1","status":"COMPLETE"}]},
                     {"id":"c2","overall_status":"IN_PROGRESS","overall_score":3},
                     {"id":"c3","overall_status":"SOMETHING_NEW","checks":[]}]})");
  REQUIRE_MESSAGE(django.value, django.error);
  CHECK(django.value->count == 23);
  CHECK(django.value->next == "https://x/api/public/cases/?page=2");
  CHECK(django.value->previous == std::nullopt);
  REQUIRE(django.value->results.size() == 3);
  CHECK(django.value->results[0].raw_json ==
        R"({"id":"c1","overall_status":"COMPLETE","checks":[{"id":"k1","status":"COMPLETE"}]})");
  CHECK(django.value->results[1].overall_score == "3");
  CHECK(django.value->results[2].overall_status == "SOMETHING_NEW");
  CHECK(has_more_pages(*django.value, 3));

  const auto last = parse_case_page(R"({"count":1,"next":null,"results":[{"id":"c1"}]})");
  REQUIRE_MESSAGE(last.value, last.error);
  CHECK_FALSE(has_more_pages(*last.value, 1));

  const auto paged = parse_case_page(
      R"({"results":[{"id":"c1","status":"COMPLETE"}],"pagination":{"next":null,"page":1,"total_pages":3}})");
  REQUIRE_MESSAGE(paged.value, paged.error);
  CHECK(paged.value->count == std::nullopt);
  CHECK(paged.value->more_pages == true);
  CHECK(paged.value->results.at(0).overall_status == "COMPLETE");
  CHECK(has_more_pages(*paged.value, 100));
  const auto paged_last = parse_case_page(
      R"({"results":[{"id":"c1"}],"pagination":{"page":3,"total_pages":3}})");
  CHECK_FALSE(has_more_pages(*paged_last.value, 1));

  const auto bare = parse_case_page(R"([{"id":"c1"},{"id":"c2"}])");
  REQUIRE_MESSAGE(bare.value, bare.error);
  CHECK(bare.value->results.size() == 2);
  CHECK(has_more_pages(*bare.value, 2));   // a full page may have a successor
  CHECK_FALSE(has_more_pages(*bare.value, 3));
  CHECK_FALSE(has_more_pages(*parse_case_page("[]").value, 10));
}

TEST_CASE("one unreadable list entry is skipped and named; the rest of the page is used") {
  const auto page = parse_case_page(
      R"({"count":4,"results":[{"id":"a","overall_status":"X"},{"overall_status":"X"},7,
          {"id":"b/c","overall_status":"X"},{"id":"d","overall_status":"X","checks":[{"id":"k!"}]}]})");
  REQUIRE_MESSAGE(page.value, page.error);
  REQUIRE(page.value->results.size() == 2);
  CHECK(page.value->results[0].id == "a");
  CHECK(page.value->results[1].id == "d");
  CHECK(page.value->results[1].checks.empty());  // its unreadable check is left out
  REQUIRE(page.value->skipped.size() == 3);
  CHECK(page.value->skipped[0] == "results[1].id: missing (none of id, case_id)");
  CHECK(page.value->skipped[1] == "results[2]: expected an object");
  CHECK(page.value->skipped[2] ==
        "results[3].id: contains characters other than [A-Za-z0-9._:-]");
  struct row {
    std::string_view body;
    std::string_view error;
  };
  const std::vector<row> rows = {
      {R"({"count":1})", "results: missing (none of results, data, items) or not an array"},
      {R"({"count":1,"results":{}})",
       "results: missing (none of results, data, items) or not an array"},
      {R"("x")", "body: expected a JSON object or array"},
  };
  for (const row& r : rows) {
    CAPTURE(r.body);
    CHECK(parse_case_page(r.body).error == r.error);
  }
}

TEST_CASE("report files: the id from the path when absent, the URL under any accepted name") {
  const auto observed = parse_report_file(R"({"status": "COMPLETE", "pdf_url": "https://s/a.pdf"})",
                                          "r-from-path");
  REQUIRE_MESSAGE(observed.value, observed.error);
  CHECK(observed.value->id == "r-from-path");
  CHECK(observed.value->url == "https://s/a.pdf");
  const auto alternate = parse_report_file(R"({"url": "https://s/b.pdf", "status": "complete"})",
                                           "r2");
  REQUIRE_MESSAGE(alternate.value, alternate.error);
  CHECK(alternate.value->status == "COMPLETE");
  CHECK(alternate.value->url == "https://s/b.pdf");
  const auto realistic = parse_report_file(
      R"({"id":"5b1d-77","status":"COMPLETE","pdf_url":"https://x/y.pdf?X-Amz-Signature=ab","created":"2026-11-02T12:00:00Z","language":"en-CA"})");
  REQUIRE_MESSAGE(realistic.value, realistic.error);
  CHECK(realistic.value->id == "5b1d-77");
  CHECK(realistic.value->created == "2026-11-02T12:00:00Z");
  const auto no_status = parse_report_file(R"({"id":"r1"})");
  REQUIRE_MESSAGE(no_status.value, no_status.error);
  CHECK(no_status.value->status.empty());
  CHECK(no_status.value->url == std::nullopt);
  CHECK(parse_report_file(R"({"status":"X"})").error ==
        "id: missing (none of id, report_file_id, case_report_file_id)");
  // An id that cannot be a key: the one we asked for stands.
  CHECK(parse_report_file(R"({"id":"r/1","status":"X"})", "r1").value->id == "r1");
  CHECK(parse_report_file(R"({"id":"r/1","status":"X"})").error ==
        "id: contains characters other than [A-Za-z0-9._:-]");
}

TEST_CASE("generate-report: the id under any accepted name; an empty answer is named") {
  CHECK(parse_generate_report(R"({"report_file_id":"b2","id":"c"})").value == "b2");
  CHECK(parse_generate_report(R"({"id":"c3","other":1})").value == "c3");
  CHECK(parse_generate_report(R"({"id":42})").value == "42");
  CHECK(parse_generate_report(R"({"other":1})").error ==
        "report file id: missing (none of case_report_file_id, report_file_id, id)");
  CHECK(parse_generate_report(R"({"case_report_file_id":[5]})").error ==
        "case_report_file_id: expected a string or an integer");
  CHECK(parse_generate_report("").error == "body: empty (no report file id in the answer)");
  CHECK(parse_generate_report("  \n").error == "body: empty (no report file id in the answer)");
}

TEST_CASE("supplementary files: every file found is kept, unusable entries are named") {
  constexpr std::string_view body = R"({
    "id": "case-1", "unknown": 1,
    "checks": [
      {"id": "k1", "type": "EDUCATION", "status": "COMPLETE", "files": [
        {"id": "f1", "name": "diploma.pdf", "content_type": "application/pdf", "size": 12345,
         "url": "https://s3/f1?sig", "created": "2026-11-01T00:00:00Z"},
        {"id": "f2", "name": "scan.png", "content_type": "image/png", "url": "https://s3/f2"}
      ]},
      {"id": "k2", "type": "EMPLOYMENT", "status": "IN_PROGRESS", "files": []},
      {"check_type": "REFERENCE", "documents": [
        {"file_name": "letter.pdf", "download_url": "https://s3/bucket/x/letter.pdf?X-Amz-Signature=1", "size": "77"},
        {"id": "f4", "name": "no-url.pdf"},
        {"id": "../f5", "url": "https://s3/f5", "size": -1}
      ]}
    ]})";
  const auto result = parse_supplementary_files(body, "case-1");
  REQUIRE_MESSAGE(result.value, result.error);
  CHECK(result.value->case_id == "case-1");
  REQUIRE(result.value->checks.size() == 3);
  REQUIRE(result.value->checks[0].files.size() == 2);
  const supplementary_file& first = result.value->checks[0].files[0];
  CHECK(first.id == "f1");
  CHECK(first.name == "diploma.pdf");
  CHECK(first.content_type == "application/pdf");
  CHECK(first.size == 12345);
  CHECK(first.url == "https://s3/f1?sig");
  CHECK(first.created == "2026-11-01T00:00:00Z");
  CHECK(result.value->checks[0].files[1].size == std::nullopt);
  CHECK(result.value->checks[1].status == "IN_PROGRESS");
  const supplementary_check& third = result.value->checks[2];
  CHECK(third.id == "REFERENCE");  // no id: filed under its type
  REQUIRE(third.files.size() == 2);
  CHECK(third.files[0].name == "letter.pdf");
  CHECK(third.files[0].size == 77);
  CHECK(third.files[0].id_derived);
  CHECK(third.files[0].id == file_id_from_url("https://s3/bucket/x/letter.pdf?other=query"));
  CHECK(third.files[1].id == file_id_from_url("https://s3/f5"));  // its id cannot be a key
  CHECK(third.files[1].size == std::nullopt);
  REQUIRE(result.value->unusable.size() == 1);
  CHECK(result.value->unusable[0] ==
        "checks[2].documents[1].url: missing (none of url, file_url, download_url, presigned_url, "
        "signed_url) (file f4)");

  const auto by_case_id = parse_supplementary_files(R"({"case_id":"case-2","checks":[]})");
  REQUIRE_MESSAGE(by_case_id.value, by_case_id.error);
  CHECK(by_case_id.value->case_id == "case-2");
  CHECK(parse_supplementary_files(R"({"checks":[]})", "c3").value->case_id == "c3");
  CHECK(parse_supplementary_files(R"({"checks":[]})").error ==
        "case id: missing (none of id, case_id)");
}

TEST_CASE("a file's derived key stays the same across listings and differs between files") {
  const std::string a = file_id_from_url("https://b.s3.amazonaws.com/k/scan.pdf?X-Amz-Signature=1");
  CHECK(a == file_id_from_url("https://b.s3.amazonaws.com/k/scan.pdf?X-Amz-Signature=2"));
  CHECK(a != file_id_from_url("https://b.s3.amazonaws.com/k/other.pdf?X-Amz-Signature=1"));
  CHECK(a.size() == 25);
  CHECK(is_valid_id(a));
}

TEST_CASE("parses supplementary information keeping each value as minified JSON") {
  constexpr std::string_view body = R"({
    "id": "case-1",
    "checks": [
      {"id": "k1", "type": "CRIMINAL_RECORD_CHECK", "status": "COMPLETE",
       "supplementary_information": {"court": "Ontario", "records": [ {"year": 2001} ]}},
      {"id": "k2", "type": "X", "status": "NEW_STATUS"},
      {"check_type": "Y"}
    ]})";
  const auto result = parse_supplementary_information(body);
  REQUIRE_MESSAGE(result.value, result.error);
  CHECK(result.value->case_id == "case-1");
  REQUIRE(result.value->checks.size() == 3);
  CHECK(result.value->checks[0].information_json ==
        R"({"court":"Ontario","records":[{"year":2001}]})");
  CHECK(result.value->checks[1].information_json == "null");
  CHECK(result.value->checks[1].status == "NEW_STATUS");
  CHECK(result.value->checks[2].type == "Y");
  CHECK(parse_supplementary_information(R"({"checks":[`)").error.rfind("body: not valid JSON", 0) ==
        0);
}

TEST_CASE("knows which check statuses are closed and which case statuses exist") {
  CHECK(is_check_closed("COMPLETE"));
  CHECK(is_check_closed("CANCELLED"));
  CHECK(is_check_closed("SUPERSEDED"));
  CHECK_FALSE(is_check_closed("IN_PROGRESS"));
  CHECK_FALSE(is_check_closed("complete"));
  for (const std::string_view status : {"DRAFT",
                                        "CASE_ORDERED",
                                        "INVITE_UNDELIVERABLE",
                                        "APPLICANT_EXPIRED",
                                        "APPLICANT_INVITED",
                                        "APPLICANT_OPENED",
                                        "APPLICANT_STARTED",
                                        "APPLICANT_SUBMITTED",
                                        "IN_DISPUTE",
                                        "IN_PROGRESS",
                                        "APPLICANT_ACTION_REQUIRED",
                                        "CLIENT_ACTION_REQUIRED",
                                        "CANCELLED",
                                        "COMPLETE",
                                        "APPLICANT_DECLINED",
                                        "AWAITING_APPLICANT_SUBMISSION",
                                        "PENDING_FULFILLMENT",
                                        "SUBMITTED_TO_SOURCE",
                                        "MANUAL_REVIEW_SOURCE",
                                        "PENDING_QUALITY_REVIEW",
                                        "IN_QUALITY_REVIEW",
                                        "SUPERSEDED"}) {
    CAPTURE(status);
    CHECK(is_known_case_status(status));
  }
  CHECK_FALSE(is_known_case_status(""));
}

TEST_CASE("parses an error envelope with one item") {
  const api_error error = parse_error_envelope(
      404,
      R"({"type":"client_error","errors":[{"code":"not_found","detail":"Not found.","attr":null}]})",
      "");
  CHECK(error.http_status == 404);
  CHECK(error.type == "client_error");
  REQUIRE(error.errors.size() == 1);
  CHECK(error.errors[0].attr == std::nullopt);
  CHECK(error.retry_after == std::nullopt);
  CHECK(error.summary() == "404 client_error: not_found: Not found.");
}

TEST_CASE("parses an error envelope with several items and counts the rest") {
  const api_error error = parse_error_envelope(400,
                                               R"({"type":"validation_error","errors":[
          {"code":"required","detail":"This field is required.","attr":"email_address"},
          {"code":"invalid","detail":"Bad.","attr":"package"},
          {"code":"invalid","detail":"Bad too.","attr":null}]})",
                                               "");
  REQUIRE(error.errors.size() == 3);
  CHECK(error.errors[0].attr == "email_address");
  CHECK(error.errors[2].attr == std::nullopt);
  CHECK(error.summary() == "400 validation_error: required: This field is required. (+2 more)");
}

TEST_CASE("keeps the Retry-After of a 429 answer") {
  const api_error error = parse_error_envelope(
      429, R"({"type":"client_error","errors":[{"code":"throttled","detail":"Slow down."}]})",
      "30");
  CHECK(error.retry_after == 30s);
  CHECK(error.summary() == "429 client_error: throttled: Slow down.");
}

TEST_CASE("turns a non-JSON or unexpected error body into a generic error") {
  struct row {
    int status;
    std::string_view body;
    std::string_view type;
  };
  const std::vector<row> rows = {
      {502, "<html><body>Bad Gateway</body></html>", "server_error"},
      {400, "", "validation_error"},
      {404, R"({"detail":"Not found."})", "client_error"},
      {500, R"({"type":"server_error","errors":"oops"})", "server_error"},
      {403, "[1,2,3]", "client_error"},
  };
  for (const row& r : rows) {
    CAPTURE(r.body);
    const api_error error = parse_error_envelope(r.status, r.body, "");
    CHECK(error.type == r.type);
    REQUIRE(error.errors.size() == 1);
    CHECK(error.errors[0].detail == "unexpected response body");
  }
  CHECK(parse_error_envelope(502, "<html>", "").summary() ==
        "502 server_error: unexpected response body");
}

TEST_CASE("cuts long error details and strips control characters") {
  const std::string detail(1000, 'x');
  const api_error error = parse_error_envelope(
      400, R"({"type":"validation_error","errors":[{"code":"a\nb","detail":")" + detail + R"("}]})",
      "");
  REQUIRE(error.errors.size() == 1);
  CHECK(error.errors[0].code == "ab");
  CHECK(error.errors[0].detail.size() == 200);
  CHECK(error.summary().find('\n') == std::string::npos);
}

TEST_CASE("says when a presigned URL store's XML error says the request expired") {
  const std::string expired =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>"
      "<Message>Request has expired</Message><Expires>2026-11-01T00:00:00Z</Expires></Error>";
  CHECK(says_request_expired(expired));
  CHECK(says_request_expired("<Error><Code>ExpiredRequest</Code></Error>"));
  CHECK(says_request_expired("<Error><Code>ExpiredToken</Code><Message>x</Message></Error>"));
  CHECK(says_request_expired("<error><code>expiredtoken</code></error>"));
  CHECK_FALSE(says_request_expired("<Error><Code>SignatureDoesNotMatch</Code></Error>"));
  CHECK_FALSE(says_request_expired(""));
  CHECK_FALSE(says_request_expired("the link expired"));  // not an XML error
}

TEST_CASE("a list query carries every filter, repeated ones repeated, all percent-encoded") {
  case_filter filter;
  filter.overall_status = {"COMPLETE", "CANCELLED"};
  filter.check_type = {"CRIMINAL_RECORD_CHECK"};
  filter.tag = {"night shift", "a&b"};
  filter.email_address = "jo+test@example.com";
  filter.group = "g1";
  filter.ordered_by = "u1";
  filter.order_timeframe_after = "2026-11-01";
  filter.order_timeframe_before = "2026-11-28T10:00:00Z";
  CHECK(list_query(filter, 3, 100) ==
        "?check_type=CRIMINAL_RECORD_CHECK&email_address=jo%2Btest%40example.com&group=g1"
        "&order_timeframe_after=2026-11-01&order_timeframe_before=2026-11-28T10%3A00%3A00Z"
        "&ordered_by=u1&overall_status=COMPLETE&overall_status=CANCELLED&tag=night%20shift"
        "&tag=a%26b&page=3&page_size=100");
  CHECK(list_query({}, 1, 10) == "?page=1&page_size=10");
}

TEST_CASE("only ids that are safe in a URL path and as a storage key are valid") {
  CHECK(is_valid_id("3f2c1e9a-1b2c-4d5e-8f90-123456789abc"));
  CHECK(is_valid_id("a.b_c:d-e"));
  CHECK_FALSE(is_valid_id(""));
  CHECK_FALSE(is_valid_id("a/b"));
  CHECK_FALSE(is_valid_id(".."));  // only dots: a directory walk in a path or storage key
  CHECK_FALSE(is_valid_id("."));
  CHECK(is_valid_id("a..b"));
  CHECK_FALSE(is_valid_id("a?b"));
  CHECK_FALSE(is_valid_id("a b"));
  CHECK_FALSE(is_valid_id(std::string(129, 'a')));
}

namespace {

using archiver::ops::priority;

// When a caller who enters the line at `now` gets its turn, trying again whenever told to.
rate_limiter::clock::time_point turn_of(rate_limiter& limiter, rate_limiter::clock::time_point now,
                                        priority p = priority::live) {
  const rate_limiter::ticket mine = limiter.enter(p, now);
  while (const auto again = limiter.try_take(mine, now)) {
    REQUIRE(*again > now);
    now = *again;
  }
  return now;
}

}  // namespace

TEST_CASE("the rate limiter spaces turns evenly after its burst") {
  using clock = rate_limiter::clock;
  const clock::time_point t0 = clock::now();
  SUBCASE("no burst: one turn a second at 60 a minute") {
    rate_limiter limiter(60);
    CHECK(turn_of(limiter, t0) == t0);
    CHECK(turn_of(limiter, t0) == t0 + 1s);
    CHECK(turn_of(limiter, t0) == t0 + 2s);
    // Idle time is not banked beyond the burst.
    CHECK(turn_of(limiter, t0 + 10s) == t0 + 10s);
    CHECK(turn_of(limiter, t0 + 10s) == t0 + 11s);
  }
  SUBCASE("a burst of three, then the steady rate") {
    rate_limiter limiter(60, 3);
    CHECK(turn_of(limiter, t0) == t0);
    CHECK(turn_of(limiter, t0) == t0);
    CHECK(turn_of(limiter, t0) == t0);
    CHECK(turn_of(limiter, t0) == t0 + 1s);
    CHECK(turn_of(limiter, t0) == t0 + 2s);
  }
  SUBCASE("Retry-After holds every turn back, without a burst after it") {
    rate_limiter limiter(60, 3);
    limiter.hold_until(t0 + 30s);
    CHECK(turn_of(limiter, t0) == t0 + 30s);
    CHECK(turn_of(limiter, t0) == t0 + 31s);
    // A hold that ends earlier than turns already given changes nothing.
    limiter.hold_until(t0 + 5s);
    CHECK(turn_of(limiter, t0) == t0 + 32s);
  }
  CHECK_THROWS_AS(rate_limiter(0), std::invalid_argument);
  CHECK_THROWS_AS(rate_limiter(60, 0), std::invalid_argument);
}

TEST_CASE("the rate limiter gives a free turn to the most urgent waiter, not the first") {
  using clock = rate_limiter::clock;
  const clock::time_point t0 = clock::now();
  rate_limiter limiter(60, 1, archiver::ops::real_clock(), {.reserved_percent = 0});
  CHECK(turn_of(limiter, t0) == t0);  // the next turn is free at t0 + 1 s
  const auto bulk_1 = limiter.enter(priority::bulk, t0);
  const auto bulk_2 = limiter.enter(priority::bulk, t0);
  const auto sync = limiter.enter(priority::sync, t0 + 100ms);
  const auto live = limiter.enter(priority::live, t0 + 500ms);
  // Whoever tries first at t0 + 1 s, the turn is live's: it came last but is the most urgent.
  CHECK(limiter.try_take(bulk_1, t0 + 1s) == t0 + 2s);
  CHECK(limiter.try_take(bulk_2, t0 + 1s) == t0 + 2s);
  CHECK(limiter.try_take(sync, t0 + 1s) == t0 + 2s);
  CHECK_FALSE(limiter.try_take(live, t0 + 1s));
  // Then sync, then the bulk waiters in their order of arrival.
  CHECK(limiter.try_take(bulk_2, t0 + 2s) == t0 + 3s);
  CHECK_FALSE(limiter.try_take(sync, t0 + 2s));
  CHECK(limiter.try_take(bulk_2, t0 + 3s) == t0 + 4s);
  CHECK_FALSE(limiter.try_take(bulk_1, t0 + 3s));
  CHECK_FALSE(limiter.try_take(bulk_2, t0 + 4s));
  // A waiter who leaves the line is never chosen.
  const auto gone = limiter.enter(priority::live, t0 + 4s);
  const auto bulk_3 = limiter.enter(priority::bulk, t0 + 4s);
  limiter.leave(gone);
  CHECK_FALSE(limiter.try_take(bulk_3, t0 + 5s));
  CHECK_THROWS_AS(limiter.try_take(gone, t0 + 5s), std::logic_error);
}

TEST_CASE("turn order: the reserve keeps work below live moving, the maximum wait bounds it") {
  using clock = rate_limiter::clock;
  const clock::time_point t0 = clock::now();
  struct row {
    const char* what;
    int reserved_percent;
    std::chrono::seconds max_wait;
    int bulk_turns_in_20;  // with live work always waiting, turns the one bulk waiter gets
  };
  const std::vector<row> rows = {
      {"strict priority: bulk waits for ever", 0, 3600s, 0},
      {"a 10 % reserve: one turn in ten", 10, 3600s, 2},
      {"a 25 % reserve: one turn in four", 25, 3600s, 5},
      {"no reserve, but nothing waits 5 turns or more", 0, 5s, 3},
  };
  for (const row& r : rows) {
    CAPTURE(r.what);
    archiver::certn::turn_order order({.reserved_percent = r.reserved_percent,
                                       .max_wait = r.max_wait});
    std::uint64_t next_ticket = 1;
    std::vector<archiver::certn::turn_waiter> waiting;
    const auto arrive = [&](priority p, clock::time_point at) {
      waiting.push_back({next_ticket++, p, at});
    };
    arrive(priority::bulk, t0);
    int bulk_turns = 0;
    for (int turn = 0; turn < 20; ++turn) {
      const clock::time_point now = t0 + std::chrono::seconds(turn);
      arrive(priority::live, now);  // steady live work: a new live waiter every turn
      const std::uint64_t chosen = order.next_turn(waiting, now);
      const auto it = std::find_if(waiting.begin(), waiting.end(),
                                   [&](const auto& w) { return w.ticket == chosen; });
      REQUIRE(it != waiting.end());
      if (it->priority == priority::bulk) {
        ++bulk_turns;
        waiting.erase(it);
        arrive(priority::bulk, now);  // the bulk worker comes back for its next call
      } else {
        waiting.erase(it);
      }
    }
    CHECK(bulk_turns == r.bulk_turns_in_20);
  }
}

TEST_CASE("turn order: with nothing below live waiting, no reserve is saved up") {
  using clock = rate_limiter::clock;
  const clock::time_point t0 = clock::now();
  archiver::certn::turn_order order({.reserved_percent = 50, .max_wait = 3600s});
  for (std::uint64_t i = 1; i <= 5; ++i) {
    CHECK(order.next_turn({{i, priority::live, t0}}, t0) == i);
  }
  // A sync waiter arriving now gets its share from now on, not five turns at once.
  const std::vector<archiver::certn::turn_waiter> both = {{10, priority::live, t0},
                                                           {11, priority::sync, t0}};
  CHECK(order.next_turn(both, t0) == 10);
  CHECK(order.next_turn(both, t0) == 11);  // 50 %: every other turn
}

TEST_CASE("the rate limiter holds its rate for coroutines sharing it") {
  // 600 a minute = one turn per 100 ms; 3 workers take 4 turns each: the 12th turn comes
  // 1.1 s after the first, however the workers interleave.
  boost::asio::io_context io;
  rate_limiter limiter(600);
  std::vector<rate_limiter::clock::time_point> turns;
  const auto worker = [&]() -> boost::asio::awaitable<void> {
    for (int i = 0; i < 4; ++i) {
      co_await limiter.acquire();
      turns.push_back(rate_limiter::clock::now());
    }
  };
  for (int i = 0; i < 3; ++i) {
    boost::asio::co_spawn(io, worker(), [](std::exception_ptr e) { REQUIRE_FALSE(e); });
  }
  io.run();
  REQUIRE(turns.size() == 12);
  for (std::size_t i = 1; i < turns.size(); ++i) {
    CAPTURE(i);
    // No turn comes early. (Two turns may come closer than 100 ms to each other when the
    // earlier one woke late: the schedule, not the wake-ups, is what the limiter holds.)
    CHECK(turns[i] - turns[0] >= i * 100ms - 1ms);
  }
  CHECK(turns.back() - turns.front() >= 1099ms);
}

TEST_CASE("the rate limiter books turns and Retry-After holds on the clock it was given") {
  archiver::ops::manual_clock manual;
  rate_limiter limiter(60, 1, manual);
  const auto t0 = manual.steady_now();
  // The clock stands still: the limiter sees no time pass between turns.
  CHECK(turn_of(limiter, manual.steady_now()) == t0);
  CHECK(turn_of(limiter, manual.steady_now()) == t0 + 1s);
  manual.advance(10s);
  CHECK(turn_of(limiter, manual.steady_now()) == t0 + 10s);
  // A Retry-After of 30 s counts from the clock's now, not the machine's.
  limiter.hold_for(30s);
  CHECK(turn_of(limiter, manual.steady_now()) == t0 + 40s);
  // acquire() measures its wait on the same clock: a standing clock saw none, even when the
  // turn was due at once.
  manual.advance(60s);
  boost::asio::io_context io;
  std::optional<rate_limiter::clock::duration> waited;
  boost::asio::co_spawn(io, limiter.acquire(),
                        [&](std::exception_ptr e, rate_limiter::turn t) {
                          REQUIRE_FALSE(e);
                          CHECK(t.granted);
                          waited = t.waited;
                        });
  io.run();
  REQUIRE(waited);
  CHECK(*waited == 0s);
}

TEST_CASE("a Retry-After longer than acquire's patience gives the caller back at once") {
  archiver::ops::manual_clock manual;
  rate_limiter limiter(60, 1, manual);
  const auto acquired = [&limiter](priority p, rate_limiter::clock::duration give_up_after) {
    boost::asio::io_context io;
    std::optional<rate_limiter::turn> out;
    boost::asio::co_spawn(io, limiter.acquire(p, give_up_after),
                          [&](std::exception_ptr e, rate_limiter::turn t) {
                            REQUIRE_FALSE(e);
                            out = t;
                          });
    io.run();
    REQUIRE(out);
    return *out;
  };
  limiter.hold_for(60s);
  // Every class is held back, the most urgent too: the job goes back to the queue for the rest
  // of the hold instead of keeping its worker waiting.
  for (const priority p : {priority::live, priority::bulk}) {
    CAPTURE(name_of(p));
    REQUIRE(limiter.held_back(p, manual.steady_now()) == 60s);  // else acquire would wait
    const rate_limiter::turn turn = acquired(p, 30s);
    CHECK_FALSE(turn.granted);
    CHECK(turn.held_back == 60s);
  }
  // Within its patience the caller waits for the turn (a standing clock: no real wait) ...
  manual.advance(40s);
  CHECK(limiter.held_back(priority::live, manual.steady_now()) == 20s);
  // ... and once the hold is over, nothing holds any class back.
  manual.advance(20s);
  CHECK(limiter.held_back(priority::bulk, manual.steady_now()) == 0s);
  CHECK(acquired(priority::bulk, 30s).granted);
}

TEST_CASE("parses Retry-After as seconds or an HTTP date, capped at a day") {
  // 2015-10-21T07:28:00Z
  const auto now = std::chrono::sys_days{std::chrono::year{2015} / 10 / 21} + 7h + 28min;
  struct row {
    std::string_view header;
    std::optional<std::chrono::seconds> expected;
  };
  const std::vector<row> rows = {
      {"0", 0s},
      {"120", 120s},
      {" 5 ", 5s},
      {"86400", 86400s},
      {"86401", 86400s},
      {"99999999999999999999999999", 86400s},
      {"Wed, 21 Oct 2015 07:29:30 GMT", 90s},
      {"Wed, 21 Oct 2015 07:28:00 GMT", 0s},
      {"Tue, 20 Oct 2015 07:28:00 GMT", 0s},
      {"Fri, 30 Oct 2015 07:28:00 GMT", 86400s},
      {"", std::nullopt},
      {"-5", std::nullopt},
      {"1.5", std::nullopt},
      {"soon", std::nullopt},
      {"Wed, 21 Oct 2015 07:29:30 UTC", std::nullopt},
      {"Wed, 32 Oct 2015 07:29:30 GMT", std::nullopt},
      {"Wed, 21 Foo 2015 07:29:30 GMT", std::nullopt},
  };
  for (const row& r : rows) {
    CAPTURE(r.header);
    CHECK(parse_retry_after(r.header, now) == r.expected);
  }
}

TEST_CASE("the README's table of accepted names is the reader's table") {
  std::ifstream in(std::string(ARCHIVER_SOURCE_DIR) + "/README.md");
  REQUIRE(in);
  const std::string readme((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string table = accepted_fields_markdown();
  CHECK_MESSAGE(readme.find(table) != std::string::npos,
                "README.md must contain, verbatim, the table of accepted names:\n" << table);
}

TEST_CASE("budget_wait: live spends the whole day, the rest stops at the reserve, bulk is paced") {
  using archiver::ops::priority;
  using std::chrono::hours;
  const budget_settings s{.per_day = 1000, .live_reserve_percent = 20};  // reserve: 200
  struct row {
    const char* what;
    priority p;
    int used;
    std::chrono::steady_clock::duration left, since_last_bulk, expected;
  };
  const std::vector<row> rows = {
      {"live, budget left", priority::live, 999, hours(5), hours(1), 0s},
      {"live, budget gone: until the day rolls over", priority::live, 1000, hours(5), hours(1),
       hours(5)},
      {"sync above the reserve", priority::sync, 799, hours(5), 0s, 0s},
      {"sync at the reserve", priority::sync, 800, hours(5), 0s, hours(5)},
      {"archive at the reserve", priority::archive, 900, hours(2), 0s, hours(2)},
      // 100 spare calls over 10 hours: one every 6 minutes.
      {"bulk paced: just called", priority::bulk, 700, hours(10), 0s, 6min},
      {"bulk paced: 4 min since the last", priority::bulk, 700, hours(10), 4min, 2min},
      {"bulk paced: long since the last", priority::bulk, 700, hours(10), hours(1), 0s},
      {"bulk at the reserve", priority::bulk, 800, hours(3), hours(1), hours(3)},
  };
  for (const row& r : rows) {
    CAPTURE(r.what);
    CHECK(budget_wait(r.p, s, {r.used, r.left, r.since_last_bulk}) == r.expected);
  }
  // No daily budget: nothing waits.
  CHECK(budget_wait(priority::bulk, {.per_day = 0}, {1'000'000, hours(1), 0s}) == 0s);
  CHECK(budget_cap(priority::live, s) == 1000);
  CHECK(budget_cap(priority::archive, s) == 800);
  CHECK(budget_cap(priority::bulk, s) == 800);
  CHECK(budget_cap(priority::live, {.per_day = 0}) == 0);
}

TEST_CASE("next_throttle doubles from 5 s to 5 minutes; budget_runs_out_at projects the day") {
  CHECK(next_throttle(0s) == 5s);
  CHECK(next_throttle(5s) == 10s);
  CHECK(next_throttle(160s) == 300s);
  CHECK(next_throttle(300s) == 300s);
  CHECK(budget_runs_out_at(3500, 6.0, 7000) == 12.0);  // half the budget in 6 hours
  CHECK_FALSE(budget_runs_out_at(1000, 6.0, 7000));    // lasts the day
  CHECK_FALSE(budget_runs_out_at(0, 6.0, 7000));
  CHECK_FALSE(budget_runs_out_at(10, 6.0, 0));
  const auto noon = std::chrono::sys_days{std::chrono::year{2026} / 12 / 6} + 12h;
  CHECK(left_in_utc_day(noon) == 12h);
}

TEST_CASE("the limiter keeps the live reserve: other work waits for the next day, live goes on") {
  archiver::ops::manual_clock manual;
  // Start at 18:00 UTC, so that the day rolls over six hours later.
  const auto day = std::chrono::floor<std::chrono::days>(manual.wall_now());
  manual.set_wall(day + 18h);
  // 10 ms a turn: the budget, not the rate, decides. No waiter ages into going first here.
  rate_limiter limiter(6000, 1, manual, {.reserved_percent = 0, .max_wait = 48h});
  limiter.set_budget({.per_day = 10, .live_reserve_percent = 30});  // reserve: 3
  auto now = manual.steady_now();
  for (int i = 0; i < 7; ++i) {
    CHECK(turn_of(limiter, now, priority::sync) == now);
    now += 10ms;
  }
  CHECK(limiter.budget().used == 7);
  // Three left, all the reserve's: sync waits (and looks again within a minute) ...
  const auto sync = limiter.enter(priority::sync, now);
  CHECK(limiter.try_take(sync, now) == now + 1min);
  // ... while live takes the rest of the day's budget.
  for (int i = 0; i < 3; ++i) {
    CHECK(turn_of(limiter, now, priority::live) == now);
    now += 10ms;
  }
  const auto live = limiter.enter(priority::live, now);
  CHECK(limiter.try_take(live, now) == now + 1min);
  CHECK(limiter.budget().used == 10);
  // The day rolls over: both go.
  manual.advance(6h);
  now += 6h;
  CHECK_FALSE(limiter.try_take(live, now));
  CHECK(limiter.try_take(sync, now) == now + 10ms);
  CHECK_FALSE(limiter.try_take(sync, now + 10ms));
  CHECK(limiter.budget().used == 2);
}

TEST_CASE("a 429 without Retry-After holds its class and the less urgent ones back") {
  archiver::ops::manual_clock manual;
  rate_limiter limiter(6000, 1, manual);
  const auto now = manual.steady_now();
  limiter.throttle(priority::sync);
  const auto bulk = limiter.enter(priority::bulk, now);
  const auto sync = limiter.enter(priority::sync, now);
  CHECK(limiter.try_take(bulk, now) == now + 5s);
  CHECK(limiter.try_take(sync, now) == now + 5s);
  CHECK(turn_of(limiter, now, priority::live) == now);  // more urgent work goes on
  // A second 429 doubles the hold; a success starts its class again from nothing.
  limiter.throttle(priority::sync);
  CHECK(limiter.try_take(sync, now) == now + 10s);
  limiter.relieve(priority::sync);
  limiter.throttle(priority::sync);
  CHECK(limiter.try_take(sync, now) == now + 10s);  // the hold already set still stands
  manual.advance(10s);
  CHECK_FALSE(limiter.try_take(sync, now + 10s));
  CHECK(limiter.try_take(bulk, now + 10s) == now + 20s);  // bulk's own hold doubled twice
}

TEST_CASE("acquire gives up at once on a class held back past its limit, and says for how long") {
  archiver::ops::manual_clock manual;
  const auto day = std::chrono::floor<std::chrono::days>(manual.wall_now());
  manual.set_wall(day + 20h);  // four hours left in the UTC day
  rate_limiter limiter(6000, 1, manual);
  limiter.set_budget({.per_day = 10, .live_reserve_percent = 100});  // all of it for live work
  boost::asio::io_context io;
  std::optional<rate_limiter::turn> sync_turn;
  std::optional<rate_limiter::turn> live_turn;
  boost::asio::co_spawn(io, limiter.acquire(priority::sync),
                        [&](std::exception_ptr e, rate_limiter::turn t) {
                          REQUIRE_FALSE(e);
                          sync_turn = t;
                        });
  boost::asio::co_spawn(io, limiter.acquire(priority::live),
                        [&](std::exception_ptr e, rate_limiter::turn t) {
                          REQUIRE_FALSE(e);
                          live_turn = t;
                        });
  io.run();
  REQUIRE(sync_turn);
  CHECK_FALSE(sync_turn->granted);
  CHECK(sync_turn->held_back == 4h);
  REQUIRE(live_turn);
  CHECK(live_turn->granted);
  CHECK(limiter.budget().used == 1);  // the refused turn was not charged
}

TEST_CASE("estimate_backfill: calls at 5 a case, days at the budget less the live reserve") {
  const auto days_of = [](std::int64_t cases, budget_settings s) {
    return estimate_backfill(cases, s);
  };
  CHECK(days_of(1400, {.per_day = 7000, .live_reserve_percent = 20}).calls == 7000);
  CHECK(days_of(1400, {.per_day = 7000, .live_reserve_percent = 20}).days == 1.25);
  CHECK(days_of(10'000, {.per_day = 7000, .live_reserve_percent = 0}).days ==
        doctest::Approx(50'000.0 / 7000));
  CHECK(days_of(10, {.per_day = 0, .live_reserve_percent = 20}).days == 0);  // no budget
  CHECK(days_of(-3, {.per_day = 7000, .live_reserve_percent = 20}).calls == 0);
}

TEST_CASE("an API key expires 365 days after its creation day; the warning starts 30 days before") {
  using namespace std::chrono;
  const sys_days created = sys_days(year(2026) / January / 10);
  const auto at = [](sys_days day, hours h = 0h) { return system_clock::time_point(day + h); };
  CHECK(days_until_key_expires(created, at(created)) == doctest::Approx(365.0));
  CHECK(days_until_key_expires(created, at(sys_days(year(2027) / January / 10))) ==
        doctest::Approx(0.0));
  CHECK(days_until_key_expires(created, at(sys_days(year(2027) / January / 9), 12h)) ==
        doctest::Approx(0.5));
  CHECK(days_until_key_expires(created, at(sys_days(year(2027) / January / 12))) ==
        doctest::Approx(-2.0));

  CHECK(key_expiry_state_of(31.0) == key_expiry_state::fine);
  CHECK(key_expiry_state_of(30.0) == key_expiry_state::expiring_soon);
  CHECK(key_expiry_state_of(0.5) == key_expiry_state::expiring_soon);
  CHECK(key_expiry_state_of(0.0) == key_expiry_state::expired);
  CHECK(key_expiry_state_of(-3.0) == key_expiry_state::expired);

  const std::string fine = describe_key_expiry(created, 200.4);
  CHECK(fine.find("expires on 2027-01-10, in 200 days") != std::string::npos);
  CHECK(fine.find("reload") == std::string::npos);
  const std::string soon = describe_key_expiry(created, 11.2);
  CHECK(soon.find("in 12 day(s)") != std::string::npos);
  CHECK(soon.find("certn.api_key_created") != std::string::npos);
  const std::string gone = describe_key_expiry(created, -1);
  CHECK(gone.find("expired on 2027-01-10") != std::string::npos);
}
