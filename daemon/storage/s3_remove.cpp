// Deleting what is at a key, every version of it: ListObjectVersions for the key (all pages),
// then a DELETE of each version id. A store without the versions API (s3rver answers 405, others
// 501) keeps one version per key: a plain DELETE removes it.
#include "encoding/encoding.hpp"
#include "storage/s3_detail.hpp"
#include "storage/s3_xml.hpp"

namespace archiver::storage {

using namespace s3_detail;

awaitable<remove_result> s3_store::remove(const std::string& key) {
  impl& self = *impl_;
  remove_result result;
  std::string key_marker;
  std::string version_marker;
  for (;;) {
    // The listing is of the bucket: its key is empty and the object's key is the prefix.
    s3_call list{"GET", ""};
    list.query = "prefix=" + encoding::percent_encode(key) + "&versions=";
    if (!key_marker.empty()) {
      list.query += "&key-marker=" + encoding::percent_encode(key_marker) +
                    "&version-id-marker=" + encoding::percent_encode(version_marker);
    }
    const s3_answer listed = co_await self.send(list);
    if (listed.fetch.error != http::failure::none) {
      result.failure = fetch_failure("list versions", key, listed.fetch);
      co_return result;
    }
    const int status = listed.fetch.head.status;
    if (status == 405 || status == 501) {
      s3_call plain{"DELETE", key};
      const s3_answer deleted = co_await self.send(plain);
      if (deleted.fetch.error != http::failure::none) {
        result.failure = fetch_failure("delete", key, deleted.fetch);
      } else if (!deleted.ok() && deleted.fetch.head.status != 404) {
        result.failure = answer_failure("delete", key, deleted.fetch.head.status, deleted.body);
      } else {
        result.removed = 1;  // S3 does not say whether there was anything: at most one
      }
      co_return result;
    }
    if (!listed.ok()) {
      result.failure = answer_failure("list versions", key, status, listed.body);
      co_return result;
    }
    const std::optional<s3_xml::version_page> page = s3_xml::parse_versions(listed.body, key);
    if (!page) {
      result.failure =
          failure("list versions", key, true, "the answer is not a ListVersionsResult");
      co_return result;
    }
    for (const std::string& version : page->version_ids) {
      s3_call one{"DELETE", key};
      one.query = "versionId=" + encoding::percent_encode(version);
      const s3_answer deleted = co_await self.send(one);
      if (deleted.fetch.error != http::failure::none) {
        result.failure = fetch_failure("delete version " + version, key, deleted.fetch);
        co_return result;
      }
      if (!deleted.ok() && deleted.fetch.head.status != 404) {
        result.failure = answer_failure("delete version " + version, key, deleted.fetch.head.status,
                                        deleted.body);
        co_return result;
      }
      ++result.removed;
    }
    if (!page->truncated || page->next_key_marker.empty()) {
      co_return result;
    }
    key_marker = page->next_key_marker;
    version_marker = page->next_version_id_marker;
  }
}

}  // namespace archiver::storage
