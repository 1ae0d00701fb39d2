#include "webhook/store.hpp"

#include "encoding/encoding.hpp"

#include <pqxx/pqxx>

#include <string>

namespace archiver::webhook {

namespace {

std::string json_string(std::string_view text) {
  // Event fields were checked against [A-Za-z0-9._:-] by parse_event, so no escaping is needed;
  // this guards against a future caller that skips that check.
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) {
      throw std::invalid_argument("job payload: unexpected character in event field");
    }
    out += c;
  }
  return out + "\"";
}

}  // namespace

std::optional<queue::job_spec> job_for(const event& received, int max_attempts,
                                       std::chrono::seconds coalesce) {
  if (!is_known_event_type(received.event_type)) {
    return std::nullopt;  // stored and acknowledged; nothing we know to do
  }
  const std::string source = "\"source_event\":" + json_string(received.id);
  const auto sync = [&](const std::string& case_id) {
    return queue::job_spec{
        .kind = "sync_case",
        .key = case_id,
        .payload = "{\"case_id\":" + json_string(case_id) + "," + source + "}",
        .max_attempts = max_attempts,
        .delay = coalesce,
        .priority = ops::priority::live,
    };
  };
  switch (kind_of_object(received.object_type)) {
    case object_kind::case_object:
      if (received.event_type == "CASE_REPORT_READY") {
        break;  // report_ready below: it finds the case's pending report files
      }
      return sync(received.object_id);
    case object_kind::check:
      if (!received.case_id.empty()) {
        return sync(received.case_id);
      }
      return queue::job_spec{
          .kind = "check_changed",
          .key = received.object_id,
          .payload = "{\"check_id\":" + json_string(received.object_id) + "," + source + "}",
          .max_attempts = max_attempts,
          .delay = coalesce,
          .priority = ops::priority::live,
      };
    case object_kind::report_file:
      break;
    case object_kind::unknown:
      return std::nullopt;
  }
  return queue::job_spec{
      .kind = "report_ready",
      .key = received.object_id,
      .payload = "{\"object_id\":" + json_string(received.object_id) +
                 ",\"object_type\":" + json_string(received.object_type) + "," + source + "}",
      .max_attempts = max_attempts,
      .priority = ops::priority::live,
  };
}

store_outcome store_event(pqxx::connection& conn, const event& received, std::string_view raw_body,
                          std::string_view signature_scheme,
                          const std::optional<queue::job_spec>& job) {
  pqxx::work tx(conn);
  const pqxx::result inserted = tx.exec_params(
      "INSERT INTO webhook_events "
      "(id, event_type, object_id, object_type, body, signature_scheme, processed_at) "
      "VALUES ($1, $2, $3, $4, decode($5, 'hex'), $6, CASE WHEN $7 THEN now() END) "
      "ON CONFLICT (id) DO NOTHING RETURNING id",
      received.id, received.event_type, received.object_id, received.object_type,
      encoding::to_hex(raw_body), std::string(signature_scheme), !job.has_value());
  if (inserted.empty()) {
    return store_outcome::duplicate;  // nothing to commit
  }
  if (job) {
    queue::enqueue(tx, *job);
  }
  tx.commit();
  return store_outcome::stored;
}

std::int64_t prune_processed_events(pqxx::connection& conn, std::chrono::seconds older_than,
                                    int limit) {
  pqxx::work tx(conn, "prune events");
  const pqxx::result deleted = tx.exec_params0(
      "DELETE FROM webhook_events WHERE id IN (SELECT id FROM webhook_events "
      "WHERE received_at < now() - make_interval(secs => $1) AND processed_at IS NOT NULL "
      "ORDER BY received_at LIMIT $2)",
      static_cast<double>(older_than.count()), limit);
  tx.commit();
  return static_cast<std::int64_t>(deleted.affected_rows());
}

}  // namespace archiver::webhook
