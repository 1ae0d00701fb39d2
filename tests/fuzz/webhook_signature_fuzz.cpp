// Fuzzes webhook::verify_signature and verify_request_signature. The input is text, one field
// per line:
//   scheme (auto | x-signature-hex | x-signature-base64 | certn-signature)
//   header value (X-Signature for auto)
//   for auto only: the Certn-Signature value
//   now (unix seconds)
//   tolerance (seconds)
//   secrets, separated by ','
//   the body: everything after those lines
// Properties: no exception; a verdict of "missing" exactly for a blank header (for auto: both
// blank); "valid" names a configured secret; verify_request_signature with an explicit scheme
// is verify_signature of that scheme's header; whatever an explicit scheme finds valid, auto
// finds valid with the same secret (the header as X-Signature, or for certn-signature as
// Certn-Signature with no X-Signature); and with the last secret, what sign_* produce (in each
// accepted spelling, base64url too) is valid under its scheme and under auto, while the same MAC
// with one digit changed is not.
#include "fuzz_support.hpp"
#include "webhook/signature.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

using archiver::config::signature_scheme;
using archiver::fuzz::require;
using namespace archiver::webhook;

namespace {

// Keeps times within what system_clock (nanoseconds in 64 bits) can hold.
constexpr std::int64_t max_abs_seconds = 9'000'000'000;

std::int64_t to_seconds(std::string_view text) {
  std::int64_t value = 0;
  bool negative = !text.empty() && text.front() == '-';
  for (const char c : text.substr(negative ? 1 : 0)) {
    if (c < '0' || c > '9' || value > max_abs_seconds) {
      break;
    }
    value = value * 10 + (c - '0');
  }
  value = std::min(value, max_abs_seconds);
  return negative ? -value : value;
}

signature_scheme to_scheme(std::string_view text) {
  if (text == "auto") {
    return signature_scheme::auto_detect;
  }
  if (text == "x-signature-base64") {
    return signature_scheme::x_signature_base64;
  }
  if (text == "certn-signature") {
    return signature_scheme::certn_signature;
  }
  return signature_scheme::x_signature_hex;
}

bool blank(std::string_view text) {
  return text.find_first_not_of(" \t") == std::string_view::npos;
}

std::string upper(std::string text) {
  for (char& c : text) {
    if (c >= 'a' && c <= 'z') {
      c = static_cast<char>(c - 'a' + 'A');
    }
  }
  return text;
}

std::string url_safe(std::string b64) {
  for (char& c : b64) {
    c = c == '+' ? '-' : c == '/' ? '_' : c;
  }
  return b64;
}

// Another hex digit in place of the first one of the MAC that starts at `at`.
std::string change_digit(std::string header, std::size_t at) {
  header[at] = header[at] == '0' ? '1' : '0';
  return header;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  std::string_view rest = archiver::fuzz::as_text(data, size);
  const signature_scheme scheme = to_scheme(archiver::fuzz::next_line(rest));
  const std::string_view header = archiver::fuzz::next_line(rest);
  const std::string_view certn_header =
      scheme == signature_scheme::auto_detect ? archiver::fuzz::next_line(rest) : "";
  const std::int64_t now_s = to_seconds(archiver::fuzz::next_line(rest));
  const std::chrono::seconds tolerance{to_seconds(archiver::fuzz::next_line(rest))};
  std::string_view secret_list = archiver::fuzz::next_line(rest);
  const std::string_view body = rest;

  std::vector<std::string> secrets;
  while (!secret_list.empty() && secrets.size() < 3) {
    const std::size_t comma = secret_list.find(',');
    secrets.emplace_back(secret_list.substr(0, comma));
    secret_list.remove_prefix(comma == std::string_view::npos ? secret_list.size() : comma + 1);
  }
  const std::chrono::system_clock::time_point now{std::chrono::seconds{now_s}};

  const auto verify = [&](signature_scheme s, std::string_view value) {
    return verify_signature(s, value, body, secrets, now, tolerance);
  };

  const auto verify_request = [&](signature_scheme s, std::string_view x, std::string_view c) {
    return verify_request_signature(s, x, c, body, secrets, now, tolerance);
  };
  const auto same = [](const signature_check& a, const signature_check& b) {
    return a.verdict == b.verdict && a.secret_index == b.secret_index && a.scheme == b.scheme;
  };

  // The fuzzed header goes where its scheme reads it: Certn-Signature for certn-signature.
  const bool certn_only = scheme == signature_scheme::certn_signature;
  const signature_check fuzzed = certn_only ? verify_request(scheme, "", header)
                                            : verify_request(scheme, header, certn_header);
  const bool both_blank = blank(header) && blank(certn_header);
  require((fuzzed.verdict == signature_verdict::missing) == both_blank,
          "missing exactly when the header is blank", header);
  if (fuzzed.verdict == signature_verdict::valid) {
    require(fuzzed.secret_index < secrets.size(), "valid names a configured secret", header);
  }
  require((fuzzed.scheme == signature_scheme::auto_detect) ==
              (scheme == signature_scheme::auto_detect && both_blank),
          "the check names the concrete rules that judged a header", header);
  require(std::string_view(to_string(fuzzed.verdict)) != "unknown", "the verdict has a name");
  if (scheme == signature_scheme::auto_detect) {
    // Auto reads X-Signature when it is there, else Certn-Signature, by the explicit rules.
    const signature_check alone = blank(header)
                                      ? verify(signature_scheme::certn_signature, certn_header)
                                      : verify(signature_scheme::auto_detect, header);
    require(same(fuzzed, alone) || both_blank, "auto reads the header that is there", header);
  } else {
    require(same(fuzzed, verify(scheme, header)),
            "an explicit scheme is verify_signature of its own header", header);
    // Whatever an explicit scheme accepts, auto accepts with the same secret.
    if (fuzzed.verdict == signature_verdict::valid) {
      const signature_check by_auto =
          certn_only ? verify_request(signature_scheme::auto_detect, "", header)
                     : verify_request(signature_scheme::auto_detect, header, "");
      require(by_auto.verdict == signature_verdict::valid &&
                  by_auto.secret_index == fuzzed.secret_index,
              "valid under an explicit scheme is valid under auto", header);
    }
  }

  // Signing round trips with the last secret (HMACs are the slow part of this target).
  if (!secrets.empty()) {
    const std::size_t i = secrets.size() - 1;
    const std::string& secret = secrets[i];
    const std::string hex = sign_hex(secret, body);
    // HMAC keys collide (a key and the same key padded with NULs give the same MAC), so a
    // valid answer may name an earlier secret: it must be one that makes the same MAC.
    const auto expect_valid = [&](signature_scheme s, const std::string& value) {
      const auto check_one = [&](const signature_check& check) {
        require(check.verdict == signature_verdict::valid, "a signature we made is valid", value);
        require(check.secret_index <= i && sign_hex(secrets[check.secret_index], body) == hex,
                "valid names a secret that makes this MAC", value);
      };
      check_one(verify(s, value));
      // Auto accepts it too: in X-Signature, or a Certn-Signature with X-Signature absent.
      check_one(s == signature_scheme::certn_signature
                    ? verify_request(signature_scheme::auto_detect, "", value)
                    : verify_request(signature_scheme::auto_detect, value, certn_header));
    };
    expect_valid(signature_scheme::x_signature_hex, hex);
    expect_valid(signature_scheme::x_signature_hex, upper(hex));
    expect_valid(signature_scheme::x_signature_hex, "sha256=" + hex);
    const std::string b64 = sign_base64(secret, body);
    expect_valid(signature_scheme::x_signature_base64, b64);
    expect_valid(signature_scheme::x_signature_base64, "SHA256=" + b64.substr(0, b64.size() - 1));
    expect_valid(signature_scheme::x_signature_base64, url_safe(b64));
    expect_valid(signature_scheme::x_signature_base64, url_safe(b64.substr(0, b64.size() - 1)));
    require(verify(signature_scheme::x_signature_hex, change_digit(hex, 0)).verdict ==
                signature_verdict::mismatch,
            "a changed hex MAC is a mismatch", hex);
    require(verify_request(signature_scheme::auto_detect, change_digit(hex, 0), "").verdict ==
                signature_verdict::mismatch,
            "auto: a changed hex MAC is a mismatch", hex);
    if (now_s < 0) {
      return 0;  // t is unsigned in Certn-Signature: no header exists for times before 1970
    }
    const std::string certn = sign_certn(secret, body, now_s);
    expect_valid(signature_scheme::certn_signature, certn);
    expect_valid(signature_scheme::certn_signature, " " + certn + " ");

    const std::size_t v1 = certn.find("v1=") + 3;
    require(verify(signature_scheme::certn_signature, change_digit(certn, v1)).verdict ==
                signature_verdict::mismatch,
            "a changed Certn-Signature MAC is a mismatch", certn);
  }
  return 0;
}
