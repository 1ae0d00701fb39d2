#include "retry/table.hpp"

#include <array>
#include <cerrno>

namespace archiver::retry {

using queue::job_result;

const char* to_string(failure_class value) {
  switch (value) {
    case failure_class::retryable:
      return "retryable";
    case failure_class::permanent:
      return "permanent";
    case failure_class::authentication:
      return "authentication";
    case failure_class::forbidden:
      return "forbidden";
    case failure_class::rate_limited:
      return "rate_limited";
    case failure_class::expired_url:
      return "expired_url";
  }
  return "unknown";
}

failure_class of_http_status(int status) {
  switch (status) {
    case 408:
    case 425:
      return failure_class::retryable;
    case 429:
      return failure_class::rate_limited;
    case 401:
      return failure_class::authentication;
    case 403:
      return failure_class::forbidden;
    default:
      break;
  }
  if (status >= 500 && status <= 599) {
    return failure_class::retryable;
  }
  return failure_class::permanent;
}

failure_class of_certn_error(int status, std::string_view type, std::string_view code) {
  if (code == "throttled") {
    return failure_class::rate_limited;
  }
  if (code == "not_authenticated" || code == "authentication_failed") {
    return failure_class::authentication;
  }
  if (code == "permission_denied") {
    return failure_class::forbidden;
  }
  if (type == "server_error") {
    return failure_class::retryable;
  }
  return of_http_status(status);
}

failure_class of_download(int status, bool says_expired) {
  if ((status == 403 || status == 400) && says_expired) {
    return failure_class::expired_url;
  }
  if (status == 403) {
    return failure_class::retryable;
  }
  return of_http_status(status);
}

failure_class of_transport(http::failure kind) {
  switch (kind) {
    case http::failure::invalid_url:
    case http::failure::refused_by_policy:
    case http::failure::too_large:
      return failure_class::permanent;
    case http::failure::none:
    case http::failure::dns:
    case http::failure::connect:
    case http::failure::tls:
    case http::failure::timeout:
    case http::failure::truncated:
    case http::failure::protocol:
      break;
  }
  return failure_class::retryable;
}

bool retryable_errno(int error) {
  switch (error) {
    case ENOSPC:
    case EDQUOT:
    case EIO:
    case EINTR:
    case EAGAIN:
    case ENOMEM:
    case EMFILE:
    case ENFILE:
    case EBUSY:
    case ESTALE:
    case ETIMEDOUT:
      return true;
    default:
      return false;
  }
}

namespace {

struct s3_code_row {
  std::string_view code;
  s3_code_meaning meaning;
};

constexpr std::array<s3_code_row, 11> s3_codes{{
    {"SlowDown", {true, "the server asks for fewer requests; retrying later"}},
    {"InternalError", {true, "the server failed internally; retrying later"}},
    {"ServiceUnavailable", {true, "the server is unavailable; retrying later"}},
    {"RequestTimeout", {true, "the server waited too long for the request body; retrying later"}},
    {"NoSuchUpload", {true, "the multipart upload vanished (aborted or expired); starting over"}},
    {"SignatureDoesNotMatch",
     {false, "the server computed another signature: check s3.secret_access_key (and s3.region)"}},
    {"RequestTimeTooSkewed",
     {false,
      "the clock of this machine differs from the S3 server's; fix the time (NTP) and retry"}},
    {"AccessDenied",
     {false,
      "the credentials are not allowed this operation on this bucket; check the bucket policy"}},
    {"InvalidAccessKeyId", {false, "the server does not know s3.access_key_id"}},
    {"NoSuchBucket", {false, "the bucket does not exist: check s3.bucket (and s3.endpoint)"}},
    {"AuthorizationHeaderMalformed",
     {false, "the server rejects the signing scope: check s3.region"}},
}};

}  // namespace

std::optional<s3_code_meaning> of_s3_code(std::string_view code) {
  for (const s3_code_row& row : s3_codes) {
    if (row.code == code) {
      return row.meaning;
    }
  }
  return std::nullopt;
}

bool retryable_s3_status(int status) {
  return status == 0 || status >= 500 || status == 429 || status == 408;
}

failure_class of_sqlstate(std::string_view sqlstate) {
  if (sqlstate.starts_with("22") || sqlstate == "23502" || sqlstate == "23514") {
    return failure_class::permanent;
  }
  return failure_class::retryable;
}

bool may_be_one_rows_fault(std::string_view sqlstate) {
  return sqlstate.starts_with("22") || sqlstate.starts_with("23") || sqlstate.starts_with("P0") ||
         sqlstate == "40P01";
}

job_result job_verdict(failure_class kind, const std::string& message,
                       std::optional<std::chrono::seconds> retry_after, std::string_view kept_at) {
  job_result result = job_result::permanent(message);
  switch (kind) {
    case failure_class::retryable:
    case failure_class::expired_url:
      result = job_result::retry(message, retry_after);
      break;
    case failure_class::rate_limited:
      result = job_result::throttled(message, retry_after);
      break;
    case failure_class::authentication:
      // An operator can replace the key file; until then the job keeps its place: it waits
      // without using up attempts (a bad key must not kill every job within the hour), and
      // only every 5 minutes, so that a refused key spends few calls.
      result = job_result::throttled(message + std::string(refused_key_note),
                                     retry_after.value_or(refused_key_wait));
      break;
    case failure_class::forbidden:
      // Retrying does not grant a permission: an operator has to.
      result = job_result::permanent(message + " (the API key lacks permission for this endpoint)");
      break;
    case failure_class::permanent:
      break;
  }
  if (!kept_at.empty()) {
    result.error += " (answer kept at " + std::string(kept_at) + ")";
  }
  return result;
}

job_result store_verdict(bool retryable, const std::string& message) {
  return retryable ? job_result::retry(message) : job_result::permanent(message);
}

job_result database_verdict(std::string_view sqlstate, const std::string& message) {
  const std::string why = "database: " + message;
  return of_sqlstate(sqlstate) == failure_class::permanent ? job_result::permanent(why)
                                                           : job_result::retry(why);
}

}  // namespace archiver::retry
