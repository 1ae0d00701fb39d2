#include "queue/queue.hpp"

#include <pqxx/pqxx>

namespace archiver::queue {

enqueue_outcome enqueue(pqxx::work& tx, const job_spec& job) {
  // ON CONFLICT against the partial unique index on pending jobs: duplicates do nothing.
  const pqxx::result inserted = tx.exec_params(
      "INSERT INTO jobs (kind, key, payload, max_attempts, run_at) "
      "VALUES ($1, $2, $3::jsonb, $4, now() + make_interval(secs => $5)) "
      "ON CONFLICT (kind, key) WHERE state IN ('queued', 'failed') DO NOTHING "
      "RETURNING id",
      job.kind, job.key, job.payload, job.max_attempts, static_cast<double>(job.delay.count()));
  if (inserted.empty()) {
    return enqueue_outcome::already_pending;
  }
  tx.exec0("NOTIFY archiver_jobs");
  return enqueue_outcome::enqueued;
}

}  // namespace archiver::queue
