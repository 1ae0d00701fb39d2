// Listing the keys under a prefix: ListObjectsV2, every page.
#include <algorithm>

#include "encoding/encoding.hpp"
#include "storage/s3_detail.hpp"
#include "storage/s3_xml.hpp"

namespace archiver::storage {

using namespace s3_detail;

awaitable<list_result> s3_store::list(const std::string& prefix) {
  impl& self = *impl_;
  list_result result;
  std::string token;
  for (;;) {
    s3_call call{"GET", ""};
    call.query =
        (token.empty() ? "" : "continuation-token=" + encoding::percent_encode(token) + "&") +
        "list-type=2&prefix=" + encoding::percent_encode(prefix);
    const s3_answer listed = co_await self.send(call);
    if (listed.fetch.error != http::failure::none) {
      result.failure = fetch_failure("list", prefix, listed.fetch);
      co_return result;
    }
    if (!listed.ok()) {
      result.failure = answer_failure("list", prefix, listed.fetch.head.status, listed.body);
      co_return result;
    }
    std::optional<s3_xml::object_page> page = s3_xml::parse_objects(listed.body);
    if (!page) {
      result.failure = failure("list", prefix, true, "the answer is not a ListBucketResult");
      co_return result;
    }
    for (std::string& key : page->keys) {
      result.keys.push_back(std::move(key));
    }
    if (!page->truncated) {
      break;
    }
    if (page->next_continuation_token.empty()) {
      // A partial list would pass for the whole one (the newest digests are the last keys).
      result.failure = failure("list", prefix, false,
                               "the answer is truncated but names no NextContinuationToken (a "
                               "store without ListObjectsV2?)");
      co_return result;
    }
    token = page->next_continuation_token;
  }
  std::sort(result.keys.begin(), result.keys.end());
  co_return result;
}

}  // namespace archiver::storage
