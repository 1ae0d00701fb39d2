// Webhook signature verification: pure functions over the raw body and one header value.
// Thread-safe (no state). Comparisons of MACs are constant-time.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace archiver::webhook {

using config::signature_scheme;

// The request header that carries the signature for `scheme`: "X-Signature" for the two
// x-signature schemes and for auto (its first choice), "Certn-Signature" for certn-signature.
std::string_view signature_header(signature_scheme scheme);

enum class signature_verdict {
  valid,
  missing,             // header absent or empty
  malformed,           // not hex/base64 of 32 bytes, bad t=/v1= syntax
  mismatch,            // well-formed, but no secret produces it
  timestamp_too_old,   // certn-signature: t older than now - tolerance
  timestamp_in_future  // certn-signature: t newer than now + tolerance
};

struct signature_check {
  signature_verdict verdict = signature_verdict::missing;
  std::size_t secret_index = 0;  // which secret matched, when verdict == valid
  // The rules that judged the header: never auto_detect, except for `missing` under auto (for
  // auto, the encoding its value's form chose: x_signature_hex, x_signature_base64 (base64url
  // too) or certn_signature). Worth logging: it tells which form Certn really sends.
  signature_scheme scheme = signature_scheme::auto_detect;
};

// Verifies `header_value` (empty when the header is absent) over the exact bytes of `body`.
//  x_signature_hex:    HMAC-SHA256(secret, body) as hex (either case), optional "sha256=" prefix.
//  x_signature_base64: the same MAC in standard or URL-safe base64 (one alphabet, padding
//                      optional), optional "sha256=".
//  auto_detect:        either of the two above, by the value's form: 64 characters after the
//                      prefix are hex, anything else must be base64 of exactly 32 bytes.
//  certn_signature:    "t=<unix seconds>,v1=<hex>[,v1=<hex>...]" over "<t>.<body>"; spaces
//                      around items tolerated; t must be within `tolerance` of `now`.
// Every secret is tried, so rotation works with two secrets configured.
signature_check verify_signature(signature_scheme scheme, std::string_view header_value,
                                 std::string_view body, std::span<const std::string> secrets,
                                 std::chrono::system_clock::time_point now,
                                 std::chrono::seconds tolerance);

// What the intake calls, with both headers' values ("" when absent). An explicit scheme reads
// its own header only (the other is ignored), exactly as verify_signature. auto_detect reads
// X-Signature as above when it is non-blank (Certn-Signature is then ignored, even if the
// X-Signature is malformed); otherwise Certn-Signature under certn_signature's rules; `missing`
// when both are blank. Throws only if OpenSSL fails (std::runtime_error).
signature_check verify_request_signature(signature_scheme scheme, std::string_view x_signature,
                                         std::string_view certn_signature, std::string_view body,
                                         std::span<const std::string> secrets,
                                         std::chrono::system_clock::time_point now,
                                         std::chrono::seconds tolerance);

// Signing, for certn-sim, the demo and tests.
std::string sign_hex(std::string_view secret, std::string_view body);     // lowercase hex
std::string sign_base64(std::string_view secret, std::string_view body);  // padded base64
std::string sign_certn(std::string_view secret, std::string_view body, std::int64_t unix_time);

const char* to_string(signature_verdict verdict);

}  // namespace archiver::webhook
