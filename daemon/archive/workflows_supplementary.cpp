// archive_supplementary: the supplementary information and the files listing as received, then
// every file in the listing; an expired URL means a fresh listing.
#include <spdlog/spdlog.h>

#include "archive/workflows_detail.hpp"
#include "storage/digest.hpp"

namespace archiver::archive {

using queue::job_result;

awaitable<job_result> workflows::archive_supplementary(const queue::claimed_job& job_run) {
  const std::string& case_id = job_run.key;
  // What could not be archived this run; the job ends with the first of these once everything
  // else is done, so one unusable answer never costs the rest.
  std::optional<job_result> deferred;
  ops::clock::steady_time deferred_at;
  const auto defer = [this, &deferred, &deferred_at](job_result result) {
    if (!deferred) {
      deferred = std::move(result);
      deferred_at = time_.steady_now();
    }
  };

  certn::api_client api = api_.for_priority(job_run.priority);
  const certn::call_result<certn::supplementary_information> info =
      co_await api.get_supplementary_information(case_id);
  if (!info.body.empty()) {
    // As received, whether or not it reads: nothing in it is needed for what follows.
    const std::optional<job_result> info_stored = co_await archive_bytes(
        case_id, "supplementary_information", case_id,
        layout_.supplementary_information(case_id, storage::sha256_hex(info.body)), info.body);
    if (info_stored) {
      co_return *info_stored;
    }
  }
  if (info.failure && info.failure->unreadable_answer) {
    metrics_.unusable_answers.inc({"supplementary_information"});
    spdlog::warn("case {}: supplementary information archived as received, but unreadable: {}",
                 case_id, info.failure->message);
  } else if (info.failure) {
    defer(from_failure(*info.failure));
  } else {
    auth_failing_ = false;
  }

  for (int listing = 1; listing <= 3; ++listing) {
    const certn::call_result<certn::supplementary_files> files =
        co_await api.get_supplementary_files(case_id);
    std::string kept_at;
    if (!files.body.empty()) {
      const kept_answer kept = co_await keep_answer(case_id, "supplementary_files_listing",
                                                    "supplementary-files", case_id, files.body);
      if (kept.failure) {
        co_return *kept.failure;
      }
      kept_at = kept.key;
    }
    if (files.failure) {
      if (files.failure->unreadable_answer) {
        metrics_.unusable_answers.inc({"supplementary_files"});
      }
      defer(from_failure(*files.failure, files.failure->unreadable_answer ? kept_at : ""));
      break;
    }
    auth_failing_ = false;
    bool expired = false;
    for (const certn::supplementary_check& check : files.value->checks) {
      for (const certn::supplementary_file& file : check.files) {
        const std::string key = layout_.supplementary_file(case_id, check.id, file.id, file.name);
        const bool archived = co_await is_archived(key);
        if (archived) {
          continue;
        }
        const std::string content_type =
            file.content_type.empty() ? "application/octet-stream" : file.content_type;
        const download_outcome outcome = co_await archive_download(
            case_id, "supplementary_file", file.id, key, file.url, content_type, file.size);
        if (outcome.failure) {
          co_return *outcome.failure;
        }
        expired = expired || outcome.expired;
      }
    }
    if (!files.value->unusable.empty()) {
      metrics_.skipped_entries.inc({"supplementary_files"},
                                   static_cast<double>(files.value->unusable.size()));
      std::string reason = "GET /cases/" + case_id + "/supplementary-files/: " +
                           std::to_string(files.value->unusable.size()) +
                           " file entr(y/ies) cannot be archived: " + files.value->unusable.front();
      if (files.value->unusable.size() > 1) {
        reason += " (+" + std::to_string(files.value->unusable.size() - 1) + " more)";
      }
      spdlog::warn("case {}: {}", case_id, reason);
      defer(job_result::permanent(reason + "; answer kept at " + kept_at));
    }
    if (!expired) {
      break;
    }
    spdlog::info("case {}: some download URLs expired; listing the files again", case_id);
    if (listing == 3) {
      defer(job_result::retry("case " + case_id +
                              ": download URLs kept expiring after fresh listings"));
    }
  }
  if (!deferred) {
    co_return job_result::done();
  }
  // A Retry-After counts from the answer that carried it, not from the end of this run (which
  // may have waited for its next turn, then downloaded every file).
  co_return deferred->aged_by(
      std::chrono::duration_cast<std::chrono::seconds>(time_.steady_now() - deferred_at));
}

}  // namespace archiver::archive
