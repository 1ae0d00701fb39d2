// Running the purge (purge.hpp's decisions) against the database and the object store: one case
// (an operator's erasure request, or a case whose date passed), or the due cases in a batch. Used
// by `certn-archiver purge` and by serve's periodic purge. Runs on the caller's io_context; SQL
// goes to `database`'s threads. Idempotent and resumable: an object already gone is success, an
// artifact row is marked only after its object is gone, and a case only after all of them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "db/pool.hpp"
#include "net/asio.hpp"
#include "records/purge.hpp"
#include "storage/object_store.hpp"

namespace archiver::records {

struct purge_order {
  std::string case_id;
  std::string purger;  // the lease owner: unique per process ("user:alice #1234")
  std::string actor;   // who the audit trail names
  bool erasure = false;
  std::string reason;  // an erasure's reason (kept in the audit trail)
  bool dry_run = false;
};

struct purge_tally {
  int cases = 0;
  int objects = 0;
  std::uint64_t bytes = 0;
  std::vector<std::string> problems;  // one line each: a store failure, a database error
};

// How long a purger holds a case before another may take it over.
inline constexpr int purge_lease_seconds = 600;

// Purges one case when decide_purge allows it (a dry run only decides). Returns the verdict;
// `purge` with a problem added to `tally` when an object could not be deleted (its row and the
// case stay as they were, for the next run).
awaitable<purge_verdict> purge_case(db::pool& database, storage::object_store& store,
                                    const purge_order& order, purge_tally& tally);

// Up to `limit` due cases (due_cases), each as purge_case; stops early when `stop` becomes
// true. `order` gives the purger and actor (its case_id is ignored).
awaitable<void> purge_due(db::pool& database, storage::object_store& store, purge_order order,
                          int limit, const bool& stop, purge_tally& tally);

}  // namespace archiver::records
