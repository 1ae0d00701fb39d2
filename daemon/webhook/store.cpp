#include "webhook/store.hpp"

#include "db/sql_array.hpp"
#include "encoding/encoding.hpp"
#include "retry/table.hpp"

#include <pqxx/pqxx>

#include <map>
#include <set>
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

namespace {

constexpr const char* insert_events_sql =
    "INSERT INTO webhook_events "
    "(id, event_type, object_id, object_type, body, signature_scheme, processed_at) "
    "SELECT e.id, e.event_type, e.object_id, e.object_type, decode(e.body, 'hex'), e.scheme, "
    "  CASE WHEN e.processed THEN now() END "
    "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], "
    "            $7::boolean[]) "
    "  AS e(id, event_type, object_id, object_type, body, scheme, processed) "
    "ON CONFLICT (id) DO NOTHING RETURNING id";

// Inserts the group's events and their jobs in `tx`; an outcome per event.
std::vector<store_outcome> insert_group(pqxx::work& tx, const std::vector<event_record>& events) {
  // The first event of each id, in id order: concurrent groups then wait on each other's rows in
  // one order, which cannot deadlock.
  std::map<std::string_view, std::size_t> first_of_id;
  for (std::size_t i = 0; i < events.size(); ++i) {
    first_of_id.try_emplace(events[i].received.id, i);
  }
  std::vector<std::string> ids, types, object_ids, object_types, bodies, schemes;
  std::vector<bool> processed;
  for (const auto& [id, index] : first_of_id) {
    const event_record& record = events[index];
    ids.push_back(record.received.id);
    types.push_back(record.received.event_type);
    object_ids.push_back(record.received.object_id);
    object_types.push_back(record.received.object_type);
    bodies.push_back(encoding::to_hex(record.raw_body));
    schemes.push_back(record.signature_scheme);
    processed.push_back(!record.job.has_value());  // nothing to do: processed on arrival
  }
  // Prepared (once per connection: libpqxx keeps the definition), as intake runs it all the time.
  tx.conn().prepare("store_events", insert_events_sql);
  const pqxx::result inserted = tx.exec_prepared("store_events",
      db::array_literal(ids), db::array_literal(types), db::array_literal(object_ids),
      db::array_literal(object_types), db::array_literal(bodies), db::array_literal(schemes),
      db::array_literal(processed));
  std::set<std::string, std::less<>> stored;
  for (const auto& row : inserted) {
    stored.insert(row[0].as<std::string>());
  }
  std::vector<store_outcome> outcomes;
  std::vector<queue::job_spec> jobs;
  for (std::size_t i = 0; i < events.size(); ++i) {
    const std::string& id = events[i].received.id;
    const bool is_stored = first_of_id.at(id) == i && stored.contains(id);
    outcomes.push_back(is_stored ? store_outcome::stored : store_outcome::duplicate);
    if (is_stored && events[i].job) {
      jobs.push_back(*events[i].job);
    }
  }
  queue::enqueue_many(tx, jobs);
  return outcomes;
}

std::vector<store_outcome> commit_group(pqxx::connection& conn,
                                        const std::vector<event_record>& events) {
  pqxx::work tx(conn, "store events");
  std::vector<store_outcome> outcomes = insert_group(tx, events);
  tx.commit();
  return outcomes;
}

std::vector<store_result> one_by_one(pqxx::connection& conn,
                                     const std::vector<event_record>& events) {
  std::vector<store_result> results;
  for (const event_record& record : events) {
    try {
      results.push_back({commit_group(conn, {record}).front(), {}});
    } catch (const std::exception& e) {
      results.push_back({std::nullopt, e.what()});
    }
  }
  return results;
}

}  // namespace

std::vector<store_result> store_events(pqxx::connection& conn,
                                       const std::vector<event_record>& events) {
  std::vector<store_result> results;
  try {
    for (const store_outcome outcome : commit_group(conn, events)) {
      results.push_back({outcome, {}});
    }
    return results;
  } catch (const pqxx::deadlock_detected&) {
    // Cannot happen between groups (rows are taken in id and (kind, key) order), but may with
    // other writers of these tables.
  } catch (const pqxx::sql_error& e) {
    if (!retry::may_be_one_rows_fault(e.sqlstate())) {
      throw;
    }
    if (events.size() == 1) {
      return {{std::nullopt, e.what()}};
    }
  }
  return one_by_one(conn, events);
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
