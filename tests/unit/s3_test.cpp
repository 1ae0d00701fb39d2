// The S3 pure logic: the SigV4 signer against AWS's own test suites (read at run time from
// ../shared/vectors/sigv4, or ARCHIVER_SIGV4_VECTORS), S3 XML answers and their classification,
// key encoding. No I/O beyond reading the vector files.
//
// Vector cases that do not apply to an S3 signer, and are counted as such rather than run:
// - paths with "." / ".." / empty segments whose expected canonical form is normalized
//   (botocore normalize-path/get-relative*, get-slash*, get-slashes; aws-c-auth *-normalized with
//   such paths): S3 does not normalize paths (see normalize-path/normalize-path.txt), and neither
//   does this signer. Their "-unnormalized" twins in aws-c-auth do run.
// - aws-c-auth query-*.txt (presigned URLs, X-Amz-Expires): the store signs with the
//   Authorization header only; query signing is not implemented.
#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "storage/digest.hpp"
#include "storage/s3_store.hpp"
#include "storage/s3_xml.hpp"
#include "storage/sigv4.hpp"

using namespace archiver::storage;
namespace fs = std::filesystem;

namespace {

// The shared conformance data lives beside the repository (../shared/vectors), which is where a
// checkout in the project's workspace finds it; a clone elsewhere names it with
// ARCHIVER_SIGV4_VECTORS, or finds the workspace's copy at /work/shared.
fs::path vectors_dir() {
  std::vector<fs::path> candidates;
  if (const char* from_env = std::getenv("ARCHIVER_SIGV4_VECTORS"); from_env && *from_env) {
    candidates.emplace_back(from_env);
  } else {
    candidates.emplace_back(ARCHIVER_SOURCE_DIR "/../shared/vectors/sigv4");
    candidates.emplace_back("/work/shared/vectors/sigv4");
  }
  for (const fs::path& dir : candidates) {
    if (fs::is_directory(dir / "botocore-aws4_testsuite") &&
        fs::is_directory(dir / "aws-c-auth-v4")) {
      return dir;
    }
  }
  std::string looked;
  for (const fs::path& dir : candidates) {
    looked += (looked.empty() ? "" : ", ") + dir.string();
  }
  FAIL("the SigV4 vectors are missing: expected botocore-aws4_testsuite/ and aws-c-auth-v4/ in "
       << looked << " (set ARCHIVER_SIGV4_VECTORS to their directory)");
  return {};
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in, "cannot read " << path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// A raw request of the suites: "METHOD target HTTP/1.1", "Name:value" lines (a line starting
// with whitespace continues the previous value), an empty line, the body.
struct raw_request {
  sigv4::request req;
  std::string body;
};

raw_request parse_raw_request(const std::string& text) {
  raw_request out;
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);
  const std::size_t first_space = line.find(' ');
  const std::size_t last_space = line.rfind(' ');
  REQUIRE(first_space != std::string::npos);
  out.req.method = line.substr(0, first_space);
  const std::string target = line.substr(first_space + 1, last_space - first_space - 1);
  const std::size_t question = target.find('?');
  out.req.path = target.substr(0, question);
  out.req.query = question == std::string::npos ? "" : target.substr(question + 1);
  while (std::getline(in, line) && !line.empty()) {
    if (line.front() == ' ' || line.front() == '\t') {
      REQUIRE(!out.req.headers.empty());
      out.req.headers.back().second += "\n" + line;
      continue;
    }
    const std::size_t colon = line.find(':');
    REQUIRE(colon != std::string::npos);
    out.req.headers.emplace_back(line.substr(0, colon), line.substr(colon + 1));
  }
  std::ostringstream rest;
  rest << in.rdbuf();
  out.body = rest.str();
  out.req.payload_hash = sha256_hex(out.body);
  return out;
}

std::string header(const sigv4::request& req, const std::string& name) {
  for (const auto& [field, value] : req.headers) {
    if (field.size() == name.size() &&
        std::equal(field.begin(), field.end(), name.begin(),
                   [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
      return value;
    }
  }
  return "";
}

// A path S3 would send as it is, but a normalizing signer rewrites.
bool needs_normalization(const std::string& path) {
  return path.find("//") != std::string::npos || path.find("/./") != std::string::npos ||
         path.find("/../") != std::string::npos || path.ends_with("/.") || path.ends_with("/..") ||
         (path != "/" && !path.starts_with("/")) || path.starts_with("./") ||
         path.starts_with("../");
}

// The value of "name": "text" or "name": true|false in a flat JSON file (context.json).
std::string json_field(const std::string& json, const std::string& name) {
  const std::size_t key = json.find("\"" + name + "\"");
  if (key == std::string::npos) {
    return "";
  }
  std::size_t at = json.find(':', key) + 1;
  while (json[at] == ' ' || json[at] == '\n') {
    ++at;
  }
  if (json[at] == '"') {
    return json.substr(at + 1, json.find('"', at + 1) - at - 1);
  }
  return json.substr(at, json.find_first_of(",\n}", at) - at);
}

struct tally {
  int passed = 0;
  int not_applicable = 0;
};

const sigv4::credentials suite_credentials{"AKIDEXAMPLE",
                                           "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"};

std::string session_token() {
  const std::string token = json_field(
      read_file(vectors_dir() / "aws-c-auth-v4/get-vanilla-with-session-token/context.json"),
      "token");
  REQUIRE(!token.empty());
  return token;
}

}  // namespace

TEST_CASE("signs every applicable case of the botocore aws4_testsuite") {
  const fs::path root = vectors_dir() / "botocore-aws4_testsuite";
  tally count;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (entry.path().extension() != ".req") {
      continue;
    }
    const fs::path base = entry.path().parent_path() / entry.path().stem();
    const std::string name = fs::relative(base, root).string();
    INFO("case " << name);
    const raw_request raw = parse_raw_request(read_file(entry.path()));
    const std::string expected_creq = read_file(base.string() + ".creq");
    if (needs_normalization(raw.req.path)) {
      ++count.not_applicable;
      continue;
    }
    raw_request signed_raw = raw;
    // This suite's session-token case leaves the token out of its .req file; the harness adds
    // it (the same token is in the aws-c-auth twin's context.json).
    if (name.ends_with("get-vanilla-with-session-token")) {
      signed_raw.req.headers.emplace_back("X-Amz-Security-Token", session_token());
    }
    const sigv4::scope where{header(raw.req, "X-Amz-Date"), "us-east-1", "service"};
    REQUIRE(where.amz_date == "20150830T123600Z");
    const std::string creq = sigv4::canonical_request(signed_raw.req);
    const std::string sts = sigv4::string_to_sign(where, creq);
    const std::string authz = sigv4::authorization(signed_raw.req, suite_credentials, where);
    CHECK(creq == expected_creq);
    CHECK(sts == read_file(base.string() + ".sts"));
    CHECK(authz == read_file(base.string() + ".authz"));
    if (creq == expected_creq && authz == read_file(base.string() + ".authz")) {
      ++count.passed;
    }
  }
  std::printf(
      "botocore aws4_testsuite: %d cases passed, %d not applicable to S3 (path normalization)\n",
      count.passed, count.not_applicable);
  // The suite is pinned (MANIFEST.sha256): 34 cases, 6 of them normalize dot or empty segments.
  CHECK(count.passed == 28);
  CHECK(count.not_applicable == 6);
}

TEST_CASE("signs every applicable case of the aws-c-auth v4 suite (header signing)") {
  const fs::path root = vectors_dir() / "aws-c-auth-v4";
  tally count;
  int presign_files_skipped = 0;
  for (const auto& entry : fs::directory_iterator(root)) {
    if (!fs::exists(entry.path() / "context.json")) {
      continue;
    }
    const std::string name = entry.path().filename().string();
    INFO("case " << name);
    const std::string context = read_file(entry.path() / "context.json");
    raw_request raw = parse_raw_request(read_file(entry.path() / "request.txt"));
    presign_files_skipped += fs::exists(entry.path() / "query-signature.txt") ? 1 : 0;
    if (json_field(context, "normalize") == "true" && needs_normalization(raw.req.path)) {
      ++count.not_applicable;
      continue;
    }
    REQUIRE(json_field(context, "timestamp") == "2015-08-30T12:36:00Z");
    REQUIRE(json_field(context, "access_key_id") == suite_credentials.access_key_id);
    REQUIRE(json_field(context, "secret_access_key") == suite_credentials.secret_access_key);
    const sigv4::scope where{"20150830T123600Z", json_field(context, "region"),
                             json_field(context, "service")};
    raw.req.headers.emplace_back("X-Amz-Date", where.amz_date);
    const std::string token = json_field(context, "token");
    if (!token.empty() && json_field(context, "omit_session_token") != "true") {
      raw.req.headers.emplace_back("X-Amz-Security-Token", token);
    }
    if (json_field(context, "sign_body") == "true") {
      raw.req.headers.emplace_back("X-Amz-Content-Sha256", raw.req.payload_hash);
    }
    const std::string creq = sigv4::canonical_request(raw.req);
    const std::string sts = sigv4::string_to_sign(where, creq);
    const std::string signature =
        sigv4::signature(sigv4::signing_key(suite_credentials.secret_access_key, where), sts);
    const std::string authz = sigv4::authorization(raw.req, suite_credentials, where);
    const std::string expected_creq = read_file(entry.path() / "header-canonical-request.txt");
    const std::string expected_signature = read_file(entry.path() / "header-signature.txt");
    CHECK(creq == expected_creq);
    CHECK(sts == read_file(entry.path() / "header-string-to-sign.txt"));
    CHECK(signature == expected_signature);
    const std::string signed_request = read_file(entry.path() / "header-signed-request.txt");
    CHECK(signed_request.find("Authorization:" + authz + "\n") != std::string::npos);
    if (creq == expected_creq && signature == expected_signature) {
      ++count.passed;
    }
  }
  std::printf(
      "aws-c-auth v4 suite: %d cases passed (header signing), %d not applicable to S3 "
      "(path normalization); presigned-URL files of %d cases not applicable (no query "
      "signing)\n",
      count.passed, count.not_applicable, presign_files_skipped);
  // 38 cases; 6 "-normalized" ones rewrite dot or empty segments.
  CHECK(count.passed == 32);
  CHECK(count.not_applicable == 6);
}

TEST_CASE("signs the S3 documentation's GET object example") {
  // From the Amazon S3 API reference, "Signature Calculations for the Authorization Header":
  // a real S3 scope, a key with no special characters, a Range header.
  sigv4::request req;
  req.method = "GET";
  req.path = "/test.txt";
  req.payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  req.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
                 {"Range", "bytes=0-9"},
                 {"x-amz-content-sha256", req.payload_hash},
                 {"x-amz-date", "20130524T000000Z"}};
  const sigv4::scope where{"20130524T000000Z", "us-east-1", "s3"};
  const sigv4::credentials who{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"};
  CHECK(sigv4::credential_scope(where) == "20130524/us-east-1/s3/aws4_request");
  CHECK(sigv4::signed_headers(req) == "host;range;x-amz-content-sha256;x-amz-date");
  CHECK(sigv4::authorization(req, who, where) ==
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST_CASE("keeps S3 paths as sent: escapes stay, empty and dot segments stay") {
  sigv4::request req;
  req.method = "PUT";
  req.payload_hash = "UNSIGNED-PAYLOAD";
  req.headers = {{"host", "h"}};
  req.path = "/bucket/a%2Fb//./c%20d";
  CHECK(sigv4::canonical_request(req).starts_with("PUT\n/bucket/a%2Fb//./c%20d\n\n"));
  req.path = "/bucket/caf\xc3\xa9 x";
  CHECK(sigv4::canonical_request(req).starts_with("PUT\n/bucket/caf%C3%A9%20x\n\n"));
  req.query = "uploadId=a%2Bb&partNumber=2";
  CHECK(sigv4::canonical_request(req).find("\npartNumber=2&uploadId=a%2Bb\n") != std::string::npos);
  req.query = "uploads";
  CHECK(sigv4::canonical_request(req).find("\nuploads=\n") != std::string::npos);
}

TEST_CASE("formats x-amz-date in UTC") {
  using namespace std::chrono;
  const system_clock::time_point time = sys_days{year{2015} / 8 / 30} + hours{12} + minutes{36};
  CHECK(sigv4::amz_date(time) == "20150830T123600Z");
}

TEST_CASE("encodes keys per segment") {
  CHECK(encode_key("cases/abc-1/report.pdf") == "cases/abc-1/report.pdf");
  CHECK(encode_key("a b/c+d/e%f") == "a%20b/c%2Bd/e%25f");
  CHECK(encode_key("x/") == "x/");
  CHECK(encode_key("caf\xc3\xa9") == "caf%C3%A9");
}

TEST_CASE("parses S3 error documents") {
  const std::string body =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code>"
      "<Message>The specified key does not exist.</Message><Key>a&amp;b</Key></Error>";
  const auto error = s3_xml::parse_error(body);
  REQUIRE(error);
  CHECK(error->code == "NoSuchKey");
  CHECK(error->message == "The specified key does not exist.");
  // Numeric references as Go's encoder (MinIO) writes them; beyond ASCII or malformed: as written.
  const auto minio = s3_xml::parse_error(
      "<Error><Code>SlowDown</Code><Message>Resource &#39;b&#x27; is &#34;busy&#34; "
      "&#233; &#; &#x;</Message></Error>");
  REQUIRE(minio);
  CHECK(minio->message == "Resource 'b' is \"busy\" &#233; &#; &#x;");
  CHECK_FALSE(s3_xml::parse_error(""));
  CHECK_FALSE(
      s3_xml::parse_error("<InitiateMultipartUploadResult><UploadId>x</UploadId>"
                          "</InitiateMultipartUploadResult>"));
  CHECK_FALSE(
      s3_xml::parse_error("<CompleteMultipartUploadResult><ETag>\"x\"</ETag>"
                          "</CompleteMultipartUploadResult>"));
  const auto multiline =
      s3_xml::parse_error("<Error><Code>X</Code><Message>a\nb</Message></Error>");
  REQUIRE(multiline);
  CHECK(multiline->message == "a b");
}

namespace {
std::string error_body(const std::string& code) {
  return "<?xml version=\"1.0\"?><Error><Code>" + code + "</Code><Message>server says " + code +
         "</Message><RequestId>1</RequestId></Error>";
}
}  // namespace

TEST_CASE("classifies S3 errors as retryable or permanent") {
  SUBCASE("retryable") {
    for (const auto& [status, code] :
         std::vector<std::pair<int, std::string>>{{503, "SlowDown"},
                                                  {500, "InternalError"},
                                                  {400, "RequestTimeout"},
                                                  {503, "ServiceUnavailable"}}) {
      INFO(code);
      const auto meaning = s3_xml::classify(status, error_body(code));
      CHECK(meaning.retryable);
      CHECK(meaning.message.starts_with(code + ": "));
      CHECK(meaning.message.find("server says " + code) != std::string::npos);
    }
    CHECK(s3_xml::classify(500, "").retryable);
    CHECK(s3_xml::classify(503, "<html>busy</html>").retryable);
    CHECK(s3_xml::classify(429, "").retryable);
  }
  SUBCASE("permanent") {
    for (const auto& [status, code] :
         std::vector<std::pair<int, std::string>>{{403, "SignatureDoesNotMatch"},
                                                  {403, "RequestTimeTooSkewed"},
                                                  {403, "AccessDenied"},
                                                  {403, "InvalidAccessKeyId"},
                                                  {404, "NoSuchBucket"},
                                                  {400, "InvalidArgument"}}) {
      INFO(code);
      const auto meaning = s3_xml::classify(status, error_body(code));
      CHECK_FALSE(meaning.retryable);
      CHECK(meaning.message.find(code) != std::string::npos);
      CHECK(meaning.message.find('\n') == std::string::npos);
    }
    CHECK(s3_xml::classify(403, error_body("RequestTimeTooSkewed"))
              .message.starts_with("RequestTimeTooSkewed: the clock of this machine differs from "
                                   "the S3 server's"));
    CHECK(s3_xml::classify(403, error_body("SignatureDoesNotMatch"))
              .message.find("secret_access_key") != std::string::npos);
    CHECK_FALSE(s3_xml::classify(403, "").retryable);
  }
  SUBCASE("a 200 answer with an <Error> body") {
    const auto meaning = s3_xml::classify(0, error_body("InternalError"));
    CHECK(meaning.retryable);
    CHECK(meaning.message.find("HTTP 200") != std::string::npos);
  }
}

TEST_CASE("reads the UploadId of InitiateMultipartUpload") {
  CHECK(s3_xml::parse_upload_id(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<InitiateMultipartUploadResult "
            "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>b</Bucket><Key>k</Key>"
            "<UploadId>VXBsb2FkIElE&amp;x</UploadId></InitiateMultipartUploadResult>") ==
        "VXBsb2FkIElE&x");
  CHECK_FALSE(
      s3_xml::parse_upload_id("<InitiateMultipartUploadResult><UploadId></UploadId>"
                              "</InitiateMultipartUploadResult>"));
  CHECK_FALSE(s3_xml::parse_upload_id(error_body("AccessDenied")));
}

TEST_CASE("reads the keys and the continuation of a ListObjectsV2 answer") {
  const auto page = s3_xml::parse_objects(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult "
      "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name><Prefix>a/</Prefix>"
      "<KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>"
      "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>"
      "<Contents><Key>a/1.json</Key><Size>3</Size></Contents>"
      "<Contents><Key>a/x&amp;y.json</Key><Size>3</Size></Contents></ListBucketResult>");
  REQUIRE(page);
  CHECK(page->keys == std::vector<std::string>{"a/1.json", "a/x&y.json"});
  CHECK(page->truncated);
  CHECK(page->next_continuation_token == "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
  const auto empty = s3_xml::parse_objects(
      "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>");
  REQUIRE(empty);
  CHECK(empty->keys.empty());
  CHECK_FALSE(empty->truncated);
  CHECK_FALSE(s3_xml::parse_objects(error_body("AccessDenied")));
}

TEST_CASE("Object Lock retention and legal hold: the answer read, the requests written") {
  // AWS's documented GetObjectRetention answer.
  CHECK(s3_xml::parse_retain_until(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Retention xmlns=\"http://s3.amazonaws."
            "com/doc/2006-03-01/\"><Mode>GOVERNANCE</Mode><RetainUntilDate>2027-01-01T00:00:00."
            "000Z</RetainUntilDate></Retention>") == "2027-01-01T00:00:00.000Z");
  CHECK_FALSE(s3_xml::parse_retain_until("<Retention><Mode>GOVERNANCE</Mode></Retention>"));
  CHECK_FALSE(s3_xml::parse_retain_until(error_body("NoSuchObjectLockConfiguration")));
  CHECK(s3_xml::retention_body("COMPLIANCE", "2032-12-07T09:00:00.000Z") ==
        "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>COMPLIANCE</Mode>"
        "<RetainUntilDate>2032-12-07T09:00:00.000Z</RetainUntilDate></Retention>");
  CHECK(s3_xml::legal_hold_body(true) ==
        "<LegalHold xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>ON</Status>"
        "</LegalHold>");
  CHECK(s3_xml::legal_hold_body(false).find("<Status>OFF</Status>") != std::string::npos);
}

TEST_CASE("reads whether a bucket's Object Lock configuration says Enabled") {
  // AWS's documented GetObjectLockConfiguration answer.
  CHECK(s3_xml::parse_object_lock_enabled(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ObjectLockConfiguration "
            "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><ObjectLockEnabled>Enabled"
            "</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>1</Days>"
            "</DefaultRetention></Rule></ObjectLockConfiguration>") == true);
  CHECK(s3_xml::parse_object_lock_enabled("<ObjectLockConfiguration></ObjectLockConfiguration>") ==
        false);
  CHECK_FALSE(
      s3_xml::parse_object_lock_enabled(error_body("ObjectLockConfigurationNotFoundError")));
  CHECK_FALSE(s3_xml::parse_object_lock_enabled("<ListBucketResult></ListBucketResult>"));
}

TEST_CASE("reads the versions and delete markers of one key from ListVersionsResult") {
  // The shape of AWS's documented example, with a neighbour key under the same prefix.
  const std::string body =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<ListVersionsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
      "<Name>bucket</Name><Prefix>cases/c/r.pdf</Prefix><KeyMarker></KeyMarker>"
      "<VersionIdMarker></VersionIdMarker><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>"
      "<NextKeyMarker>cases/c/r.pdf</NextKeyMarker>"
      "<NextVersionIdMarker>3/L4kqtJl</NextVersionIdMarker>"
      "<Version><Key>cases/c/r.pdf</Key><VersionId>3/L4kqtJl40Nr8X8gdRQBpUMLUo</VersionId>"
      "<IsLatest>true</IsLatest><ETag>\"fba9dede5f27731c9771645a39863328\"</ETag>"
      "<Size>434234</Size></Version>"
      "<DeleteMarker><Key>cases/c/r.pdf</Key><VersionId>null</VersionId>"
      "<IsLatest>false</IsLatest></DeleteMarker>"
      "<Version><Key>cases/c/r.pdf.old</Key><VersionId>other</VersionId></Version>"
      "<Version><Key>cases/c/r.pdf</Key><VersionId>a&amp;b</VersionId></Version>"
      "</ListVersionsResult>";
  const auto page = s3_xml::parse_versions(body, "cases/c/r.pdf");
  REQUIRE(page);
  CHECK(page->version_ids ==
        std::vector<std::string>{"3/L4kqtJl40Nr8X8gdRQBpUMLUo", "a&b", "null"});
  CHECK(page->truncated);
  CHECK(page->next_key_marker == "cases/c/r.pdf");
  CHECK(page->next_version_id_marker == "3/L4kqtJl");
  const auto empty = s3_xml::parse_versions(
      "<ListVersionsResult><IsTruncated>false</IsTruncated></ListVersionsResult>", "k");
  REQUIRE(empty);
  CHECK(empty->version_ids.empty());
  CHECK_FALSE(empty->truncated);
  CHECK_FALSE(s3_xml::parse_versions(error_body("MethodNotAllowed"), "k"));
}

TEST_CASE("writes the CompleteMultipartUpload body with escaped ETags") {
  CHECK(s3_xml::complete_multipart_body({{1, "\"abc\""}, {2, "\"d&e\""}}) ==
        "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<Part><PartNumber>1</PartNumber><ETag>&quot;abc&quot;</ETag></Part>"
        "<Part><PartNumber>2</PartNumber><ETag>&quot;d&amp;e&quot;</ETag></Part>"
        "</CompleteMultipartUpload>");
}

namespace {
archiver::config::storage_settings s3_settings(std::string endpoint, bool path_style) {
  archiver::config::storage_settings settings;
  settings.backend = "s3";
  settings.path = "/nonexistent/archive";
  settings.s3.endpoint = std::move(endpoint);
  settings.s3.bucket = "testbucket";
  settings.s3.region = "eu-west-3";
  settings.s3.path_style = path_style;
  return settings;
}
}  // namespace

TEST_CASE("addresses the bucket path-style or virtual-hosted") {
  archiver::asio::io_context io;
  CHECK(s3_store(io, s3_settings("", false)).describe() ==
        "s3 https://testbucket.s3.eu-west-3.amazonaws.com");
  CHECK(s3_store(io, s3_settings("", true)).describe() ==
        "s3 https://s3.eu-west-3.amazonaws.com/testbucket");
  CHECK(s3_store(io, s3_settings("http://127.0.0.1:4570", true)).describe() ==
        "s3 http://127.0.0.1:4570/testbucket");
  CHECK(s3_store(io, s3_settings("https://minio.internal:9000", false)).describe() ==
        "s3 https://testbucket.minio.internal:9000");
  CHECK_THROWS_AS(s3_store(io, s3_settings("http://127.0.0.1:4570", false)), std::invalid_argument);
  CHECK_THROWS_AS(s3_store(io, s3_settings("http://host/some/path", true)), std::invalid_argument);
  CHECK_THROWS_AS(s3_store(io, s3_settings("ftp://host", true)), std::invalid_argument);
}
