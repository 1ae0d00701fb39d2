// AWS Signature Version 4 (header form, "AWS4-HMAC-SHA256") for S3 requests: the canonical
// request, the string to sign, the signing key and the Authorization header value. Pure (no I/O,
// no clock; the caller passes the time) and thread-safe. Paths are taken as sent, never
// normalized: S3 does not normalize paths ("//" and "." segments are part of a key).
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace archiver::storage::sigv4 {

struct credentials {
  std::string access_key_id;
  std::string secret_access_key;  // secret: never logged, never in a message
};

// One request as it goes on the wire. Every header given is signed (host, x-amz-date and
// x-amz-content-sha256 included: the caller adds them); names are case-insensitive, repeated
// names are joined with ',' in order, values are trimmed and inner whitespace runs collapsed.
struct request {
  std::string method;  // "PUT"
  std::string path;    // "/bucket/a%20b" (escapes kept; raw bytes outside unreserved are escaped)
  std::string query;   // without '?': "uploadId=x&partNumber=1", may be empty
  std::vector<std::pair<std::string, std::string>> headers;
  std::string payload_hash;  // lowercase hex sha256 of the body, or "UNSIGNED-PAYLOAD"
};

// Where and when a request is signed.
struct scope {
  std::string amz_date;  // "20150830T123600Z" (the x-amz-date header value)
  std::string region;    // "us-east-1"
  std::string service;   // "s3"
};

// "YYYYMMDDTHHMMSSZ" in UTC.
std::string amz_date(std::chrono::system_clock::time_point time);

// "20150830/us-east-1/s3/aws4_request".
std::string credential_scope(const scope& where);

// "host;x-amz-date;...": the lowercase header names, sorted, joined with ';'.
std::string signed_headers(const request& req);

std::string canonical_request(const request& req);
std::string string_to_sign(const scope& where, std::string_view canonical);

// HMAC chain "AWS4"+secret -> date -> region -> service -> "aws4_request"; raw 32 bytes.
std::string signing_key(std::string_view secret_access_key, const scope& where);

// Lowercase hex HMAC-SHA256 of `to_sign` under `key`.
std::string signature(std::string_view key, std::string_view to_sign);

// "AWS4-HMAC-SHA256 Credential=AKID/<scope>, SignedHeaders=..., Signature=..."
std::string authorization(const request& req, const credentials& who, const scope& where);

}  // namespace archiver::storage::sigv4
