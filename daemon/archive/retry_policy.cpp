#include "archive/retry_policy.hpp"

namespace archiver::archive {

using queue::job_result;

job_result certn_failure_result(certn::failure_class kind, const std::string& message,
                                std::optional<std::chrono::seconds> retry_after,
                                std::string_view kept_at) {
  using certn::failure_class;
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
      result = job_result::throttled(message + " (check certn.api_key)",
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

job_result store_failure_result(bool retryable, const std::string& message) {
  return retryable ? job_result::retry(message) : job_result::permanent(message);
}

}  // namespace archiver::archive
