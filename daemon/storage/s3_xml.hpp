// The XML S3 answers with, and what its errors mean for us: the <Error> document (parsed and
// classified as retryable or not, with a message an operator can act on), the UploadId of
// InitiateMultipartUpload and the CompleteMultipartUpload request body. Pure; thread-safe.
// Only the few elements we need are read; this is not a general XML parser.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace archiver::storage::s3_xml {

struct s3_error {
  std::string code;     // "SlowDown", "SignatureDoesNotMatch", ...
  std::string message;  // the server's <Message>, on one line
};

// The <Error> document in `body`, or nullopt when `body` is not one (S3 may also answer a
// CompleteMultipartUpload with 200 and an <Error> body: that is a failure too).
std::optional<s3_error> parse_error(std::string_view body);

struct classification {
  bool retryable = true;
  std::string message;  // one line: "SlowDown: ...", "HTTP 403 ..."; never a secret
};

// A failed response, reported: `status` (0 when the answer was 200 with an <Error> body) and its
// body, read into a message saying what to fix, and whether it is retryable as the retry table
// says (retry::of_s3_code for a known code, else retry::retryable_s3_status).
classification classify(int status, std::string_view body);

// The <UploadId> of an InitiateMultipartUploadResult, or nullopt when missing or empty.
std::optional<std::string> parse_upload_id(std::string_view body);

// A ListObjectVersions answer (ListVersionsResult): the version ids of `key` exactly (versions and
// delete markers alike; other keys under the same prefix are left out), and where the next page
// starts when the answer is truncated. nullopt when the body is not such a document.
struct version_page {
  std::vector<std::string> version_ids;
  bool truncated = false;
  std::string next_key_marker;
  std::string next_version_id_marker;
};
std::optional<version_page> parse_versions(std::string_view body, const std::string& key);

// A ListObjectsV2 answer (ListBucketResult): the keys of its <Contents>, and where the next page
// starts when it is truncated. nullopt when the body is not such a document.
struct object_page {
  std::vector<std::string> keys;
  bool truncated = false;
  std::string next_continuation_token;
};
std::optional<object_page> parse_objects(std::string_view body);

// A GetObjectLockConfiguration answer: whether <ObjectLockEnabled> says Enabled; nullopt when
// the body is not an ObjectLockConfiguration document.
std::optional<bool> parse_object_lock_enabled(std::string_view body);

// A GetObjectRetention answer: its <RetainUntilDate>; nullopt when the body is not a Retention
// document or has no date.
std::optional<std::string> parse_retain_until(std::string_view body);

// The bodies of PutObjectRetention and PutObjectLegalHold.
std::string retention_body(const std::string& mode, const std::string& retain_until);
std::string legal_hold_body(bool on);

// <CompleteMultipartUpload> listing (part number, ETag as the server returned it) in order.
std::string complete_multipart_body(const std::vector<std::pair<int, std::string>>& parts);

}  // namespace archiver::storage::s3_xml
