// S3 Object Lock: the headers of a new object, the start-up check of the bucket, and the probe
// that finds whether the store enforces a lock or only accepts its headers (SeaweedFS, versitygw
// and s3gw have shipped such bugs; s3rver ignores the headers).

#include <stdexcept>

#include "encoding/encoding.hpp"
#include "storage/s3_detail.hpp"
#include "storage/s3_xml.hpp"

namespace archiver::storage {

using namespace s3_detail;

namespace {

std::chrono::sys_seconds seconds_now(const ops::clock& clock) {
  return std::chrono::time_point_cast<std::chrono::seconds>(clock.wall_now());
}

std::string answer_text(const s3_answer& answer) {
  if (answer.fetch.error != http::failure::none) {
    return answer.fetch.message;
  }
  return s3_xml::classify(answer.fetch.head.status, answer.body).message;
}

// A PUT of one of an object's lock settings (?retention=, ?legal-hold=): S3 requires Content-MD5.
s3_call settings_call(const std::string& key, const char* query, std::string body) {
  const object_digest digest = digest_of(body);
  s3_call call{"PUT", key};
  call.query = query;
  call.headers = {{"Content-MD5", digest.md5_base64}};
  call.payload_hash = digest.sha256_hex;
  call.body = std::move(body);
  return call;
}

// The object is gone (purged meanwhile): nothing left to protect.
bool no_such_key(const s3_answer& answer) {
  if (answer.fetch.error != http::failure::none || answer.fetch.head.status != 404) {
    return false;
  }
  const auto error = s3_xml::parse_error(answer.body);
  return error && error->code == "NoSuchKey";
}

store_failure failure_of(std::string_view operation, const std::string& key,
                         const s3_answer& answer) {
  return answer.fetch.error != http::failure::none
             ? fetch_failure(operation, key, answer.fetch)
             : answer_failure(operation, key, answer.fetch.head.status, answer.body);
}

}  // namespace

header_list s3_store::impl::new_object_headers(const object_protection& protection) const {
  header_list headers = encryption_headers(s3_);
  for (auto& header : object_lock_headers(s3_, protection, seconds_now(clock_))) {
    headers.push_back(std::move(header));
  }
  return headers;
}

awaitable<s3_store::lock_probe> s3_store::probe_object_lock() {
  impl& self = *impl_;
  lock_probe probe;
  const std::string bucket = self.s3_.bucket;

  s3_call configuration{"GET", ""};
  configuration.query = "object-lock=";
  const s3_answer configured = co_await self.send(configuration);
  const std::optional<bool> enabled =
      configured.ok() ? s3_xml::parse_object_lock_enabled(configured.body) : std::nullopt;
  probe.bucket_enabled = enabled.value_or(false);
  if (probe.bucket_enabled) {
    probe.findings.push_back("bucket " + bucket + ": Object Lock enabled");
  } else if (configured.ok()) {
    probe.findings.push_back("bucket " + bucket + ": its Object Lock configuration does not say " +
                             "ObjectLockEnabled=Enabled");
  } else {
    probe.findings.push_back("bucket " + bucket + ": no Object Lock configuration (" +
                             answer_text(configured) + ")");
  }

  std::string prefix = self.prefix_;
  if (!prefix.empty() && prefix.back() != '/') {
    prefix += '/';  // as archive::layout reads storage.prefix
  }
  const std::string key =
      prefix + ".certn-archiver/lock-probe/" + random_hex("the lock probe's key");
  const std::chrono::sys_seconds until = seconds_now(self.clock_) + std::chrono::hours(1);
  const std::string body = "certn-archiver Object Lock probe\n";
  const object_digest digest = digest_of(body);
  s3_call put{"PUT", key};
  put.headers = {{"Content-MD5", digest.md5_base64},
                 {"x-amz-object-lock-mode", "GOVERNANCE"},
                 {"x-amz-object-lock-retain-until-date", lock_date(until)}};
  for (auto& header : encryption_headers(self.s3_)) {
    put.headers.push_back(std::move(header));  // a bucket policy may require them
  }
  put.payload_hash = digest.sha256_hex;
  put.body = body;
  const s3_answer written = co_await self.send(put);
  if (!written.ok()) {
    probe.findings.push_back("PUT " + key + " retained until " + lock_date(until) + ": refused (" +
                             answer_text(written) + ")");
    co_return probe;
  }
  const std::string version = header_value(written.fetch.head, "x-amz-version-id").value_or("");
  if (version.empty() || version == "null") {
    probe.findings.push_back("PUT " + key + " retained until " + lock_date(until) +
                             ": accepted without a version id (Object Lock needs versioning)");
  } else {
    probe.findings.push_back("PUT " + key + " retained until " + lock_date(until) +
                             ": accepted as version " + version);
  }

  s3_call attempt{"DELETE", key};
  std::string locked = "the locked object";
  if (!version.empty() && version != "null") {
    attempt.query = "versionId=" + encoding::percent_encode(version);
    locked = "the locked version";
  }
  const s3_answer deleted = co_await self.send(attempt);
  if (deleted.fetch.error != http::failure::none) {
    probe.findings.push_back("DELETE of " + locked + ": no answer (" + deleted.fetch.message + ")");
    co_return probe;
  }
  if (deleted.ok()) {
    probe.findings.push_back("DELETE of " + locked + ": done (HTTP " +
                             std::to_string(deleted.fetch.head.status) +
                             "): the store does not enforce Object Lock");
    co_return probe;
  }
  if (deleted.fetch.head.status != 403) {
    probe.findings.push_back("DELETE of " + locked + ": " + answer_text(deleted) +
                             " (a store that enforces the lock answers 403)");
    co_return probe;
  }
  // A 403 may also mean the credentials lack s3:DeleteObjectVersion: the object must show its lock.
  s3_call look{"HEAD", key};
  look.query = attempt.query;
  const s3_answer looked = co_await self.send(look);
  const std::string shown_mode =
      looked.ok() ? header_value(looked.fetch.head, "x-amz-object-lock-mode").value_or("") : "";
  if (shown_mode != "GOVERNANCE") {
    probe.findings.push_back(
        "DELETE of " + locked + ": refused (" + answer_text(deleted) +
        "), but the object shows no GOVERNANCE lock (x-amz-object-lock-mode: " +
        (shown_mode.empty() ? "none" : shown_mode) +
        "): refused for another reason, such as missing permissions");
    co_return probe;
  }
  probe.enforced = true;
  probe.findings.push_back("DELETE of " + locked + ": refused (" + answer_text(deleted) +
                           "), and the object shows its lock: the lock is enforced");

  s3_call cleanup = attempt;
  cleanup.headers = {{"x-amz-bypass-governance-retention", "true"}};
  const s3_answer cleaned = co_await self.send(cleanup);
  if (!cleaned.ok()) {
    probe.findings.push_back("the probe stays at " + key + ", locked until " + lock_date(until) +
                             "; delete it after that date (deleting it now with a governance "
                             "bypass: " +
                             answer_text(cleaned) + ")");
  }
  co_return probe;
}

awaitable<std::optional<store_failure>> s3_store::protect(const std::string& key,
                                                          const object_protection& protection) {
  co_return co_await apply_protection(key, protection, false);
}

awaitable<std::optional<store_failure>> s3_store::apply_protection(
    const std::string& key, const object_protection& protection, bool added_only) {
  impl& self = *impl_;
  const std::string mode = self.s3_.object_lock_mode;
  if (mode.empty()) {
    co_return std::nullopt;
  }
  const std::chrono::sys_seconds now = seconds_now(self.clock_);
  if (protection.retain_until && *protection.retain_until > now) {
    // Extended only: the lock the object has may be longer (object_lock_days), and S3 refuses
    // to shorten one in COMPLIANCE mode anyway.
    s3_call read{"GET", key};
    read.query = "retention=";
    const s3_answer current = co_await self.send(read);
    std::optional<std::string> current_until;
    if (no_such_key(current)) {
      co_return std::nullopt;
    }
    if (current.ok()) {
      current_until = s3_xml::parse_retain_until(current.body);
    } else {
      const auto error = s3_xml::parse_error(current.body);
      const bool none = current.fetch.error == http::failure::none &&
                        current.fetch.head.status == 404 && error &&
                        error->code == "NoSuchObjectLockConfiguration";
      if (!none) {
        co_return failure_of("get retention", key, current);
      }
    }
    const std::string wanted = lock_date(*protection.retain_until);
    if (!current_until || lock_extends(*current_until, wanted)) {
      const s3_call extend = settings_call(key, "retention=", s3_xml::retention_body(mode, wanted));
      const s3_answer extended = co_await self.send(extend);
      if (!extended.ok()) {
        co_return failure_of("put retention", key, extended);
      }
    }
  }
  if (added_only && !protection.legal_hold) {
    co_return std::nullopt;
  }
  const s3_call hold =
      settings_call(key, "legal-hold=", s3_xml::legal_hold_body(protection.legal_hold));
  const s3_answer held = co_await self.send(hold);
  if (!held.ok() && !no_such_key(held)) {
    co_return failure_of("put legal hold", key, held);
  }
  co_return std::nullopt;
}

awaitable<std::optional<store_failure>> s3_store::check_protection() {
  const std::string mode = impl_->s3_.object_lock_mode;
  if (mode.empty()) {
    co_return std::nullopt;
  }
  const lock_probe probe = co_await probe_object_lock();
  if (probe.bucket_enabled && probe.enforced) {
    co_return std::nullopt;
  }
  std::string found;
  for (const std::string& finding : probe.findings) {
    found += (found.empty() ? "" : "; ") + finding;
  }
  const std::string what = probe.bucket_enabled ? "the store does not enforce Object Lock"
                                                : "bucket " + impl_->s3_.bucket +
                                                      " does not have Object Lock enabled, or its "
                                                      "configuration could not be read";
  co_return failure("object lock check", impl_->s3_.bucket, false,
                    "storage.s3.object_lock_mode is " + mode + " but " + what + " (" + found +
                        "): use a bucket created with Object Lock enabled on a store that "
                        "enforces it, or set storage.s3.object_lock_mode = \"\"");
}

}  // namespace archiver::storage
