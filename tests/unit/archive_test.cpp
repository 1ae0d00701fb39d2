// The archive's storage keys (a contract with operators), safe file names and the manifest.
#include <doctest/doctest.h>
#include <simdjson.h>

#include "archive/layout.hpp"

using namespace archiver::archive;

TEST_CASE("storage keys follow DESIGN.md, under the configured prefix") {
  const layout plain("");
  CHECK(plain.report("c1", "r1") == "cases/c1/report/r1.pdf");
  CHECK(plain.supplementary_file("c1", "k1", "f1", "scan.pdf") ==
        "cases/c1/supplementary-files/k1/f1-scan.pdf");
  CHECK(plain.supplementary_information("c1", "ab12") ==
        "cases/c1/supplementary-information/ab12.json");
  CHECK(plain.case_snapshot("c1", "ab12") == "cases/c1/case/ab12.json");
  CHECK(plain.manifest("c1") == "cases/c1/manifest.json");
  CHECK(layout("certn").report("c1", "r1") == "certn/cases/c1/report/r1.pdf");
  CHECK(layout("a/b/").manifest("c1") == "a/b/cases/c1/manifest.json");
}

TEST_CASE("file names become one safe key segment") {
  CHECK(safe_file_name("passport scan (1).pdf") == "passport_scan__1_.pdf");
  CHECK(safe_file_name("../../etc/passwd") == "_.._etc_passwd");
  CHECK(safe_file_name(".hidden") == "hidden");
  CHECK(safe_file_name("...") == "file");
  CHECK(safe_file_name("") == "file");
  CHECK(safe_file_name("caf\xc3\xa9.txt") == "caf__.txt");
  CHECK(safe_file_name(std::string(300, 'x')).size() == 100);
  const std::string odd = safe_file_name("a/b\\c\nd\0e");
  CHECK(odd.find('/') == std::string::npos);
  CHECK(odd.find('\\') == std::string::npos);
}

TEST_CASE("the manifest lists artifacts sorted by key as valid JSON") {
  const std::string json =
      manifest_json("c1", "2026-11-29T00:00:00Z",
                    {{"report", "cases/c1/report/r.pdf", std::string(64, 'a'), 10, "r",
                      "application/pdf", "2026-11-29T00:00:01Z"},
                     {"case_snapshot", "cases/c1/case/x.json", std::string(64, 'b'), 5, "c1",
                      "application/json", "2026-11-29T00:00:02Z"},
                     {"supplementary_file", "cases/c1/supplementary-files/k/f-\"q\".txt",
                      std::string(64, 'c'), 7, "f", "text/plain", "2026-11-29T00:00:03Z"}});
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  REQUIRE(parser.parse(json).get(doc) == simdjson::SUCCESS);
  CHECK(std::string_view(doc["case_id"]) == "c1");
  simdjson::dom::array artifacts = doc["artifacts"];
  REQUIRE(artifacts.size() == 3);
  CHECK(std::string_view(artifacts.at(0)["key"]) == "cases/c1/case/x.json");
  CHECK(std::string_view(artifacts.at(1)["key"]) == "cases/c1/report/r.pdf");
  CHECK(std::string_view(artifacts.at(2)["key"]) == "cases/c1/supplementary-files/k/f-\"q\".txt");
  CHECK(int64_t(artifacts.at(1)["size_bytes"]) == 10);
  CHECK(json.back() == '\n');
}

TEST_CASE("archive statuses come from configuration") {
  const std::vector<std::string> on = {"COMPLETE", "CANCELLED"};
  CHECK(is_archive_status("COMPLETE", on));
  CHECK(is_archive_status("CANCELLED", on));
  CHECK_FALSE(is_archive_status("IN_DISPUTE", on));
  CHECK_FALSE(is_archive_status("complete", on));
  CHECK_FALSE(is_archive_status("COMPLETE", {}));
}
