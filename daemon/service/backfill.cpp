#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <pqxx/pqxx>
#include <string>
#include <string_view>
#include <vector>

#include "certn/budget.hpp"
#include "db/migrations.hpp"
#include "db/pool.hpp"
#include "encoding/json.hpp"
#include "queue/admin.hpp"
#include "queue/queue.hpp"
#include "service/certn_clients.hpp"
#include "service/cli_database.hpp"
#include "service/progress.hpp"
#include "service/service.hpp"

namespace archiver::service {

namespace {

constexpr int page_size = 100;  // the Cases API's maximum

// Reads exactly `count` digits at `pos` into `value`.
bool digits(std::string_view text, std::size_t& pos, std::size_t count, int& value) {
  if (pos + count > text.size()) {
    return false;
  }
  value = 0;
  for (std::size_t end = pos + count; pos < end; ++pos) {
    if (!std::isdigit(static_cast<unsigned char>(text[pos]))) {
      return false;
    }
    value = value * 10 + (text[pos] - '0');
  }
  return true;
}

bool literal(std::string_view text, std::size_t& pos, char c) {
  if (pos < text.size() && text[pos] == c) {
    ++pos;
    return true;
  }
  return false;
}

// YYYY-MM-DD, or YYYY-MM-DDTHH:MM[:SS[.fraction]][Z|+HH:MM|-HH:MM], a real calendar date: what
// order_timeframe_after/before accept. Checked here so that a typo is a usage error naming the
// option, not a validation error from Certn.
bool is_iso8601(std::string_view text) {
  std::size_t pos = 0;
  int y = 0, mo = 0, d = 0;
  if (!digits(text, pos, 4, y) || !literal(text, pos, '-') || !digits(text, pos, 2, mo) ||
      !literal(text, pos, '-') || !digits(text, pos, 2, d)) {
    return false;
  }
  using namespace std::chrono;
  if (!year_month_day{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}}
           .ok()) {
    return false;
  }
  if (pos == text.size()) {
    return true;
  }
  int h = 0, mi = 0, s = 0;
  if (!literal(text, pos, 'T') || !digits(text, pos, 2, h) || !literal(text, pos, ':') ||
      !digits(text, pos, 2, mi) || h > 23 || mi > 59) {
    return false;
  }
  if (literal(text, pos, ':') && (!digits(text, pos, 2, s) || s > 60)) {
    return false;
  }
  if (literal(text, pos, '.')) {
    const std::size_t start = pos;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
      ++pos;
    }
    if (pos == start) {
      return false;
    }
  }
  if (literal(text, pos, 'Z')) {
    return pos == text.size();
  }
  if (literal(text, pos, '+') || literal(text, pos, '-')) {
    int oh = 0, om = 0;
    if (!digits(text, pos, 2, oh) || !literal(text, pos, ':') || !digits(text, pos, 2, om) ||
        oh > 23 || om > 59) {
      return false;
    }
  }
  return pos == text.size();
}

struct backfill_counts {
  std::int64_t seen = 0;
  std::int64_t skipped = 0;  // list entries without a usable id
  std::int64_t enqueued = 0;
  std::int64_t already_pending = 0;
};

// One transaction per page: a failure later keeps what the earlier pages enqueued.
std::int64_t enqueue_page(pqxx::connection& conn, const std::vector<std::string>& case_ids,
                          int max_attempts) {
  pqxx::work tx(conn);
  std::int64_t enqueued = 0;
  for (const std::string& id : case_ids) {
    // The case id in the payload too, as every job of a case has it: write_manifest,
    // protect_case and the purge find a case's open jobs by it.
    encoding::json_writer payload;
    payload.begin_object().key("case_id").value(id).key("source").value("backfill").end_object();
    const queue::job_spec job{.kind = "sync_case",
                              .key = id,
                              .payload = payload.str(),
                              .max_attempts = max_attempts,
                              .priority = ops::priority::bulk};
    if (queue::enqueue(tx, job) == queue::enqueue_outcome::enqueued) {
      ++enqueued;
    }
  }
  tx.commit();
  return enqueued;
}

// On stderr, before the jobs run: what the backfill will cost at the configured budget.
void print_estimate(std::int64_t cases, const certn::budget_settings& budget) {
  const certn::backfill_estimate estimate = certn::estimate_backfill(cases, budget);
  std::cerr << "backfill: " << cases << " case(s): at most " << estimate.calls
            << " Certn calls (" << certn::calls_per_archived_case
            << " a closed case, 1 an open one)";
  if (budget.per_day > 0) {
    char days[32];
    std::snprintf(days, sizeof days, "%.1f", estimate.days);
    std::cerr << ", about " << days << " day(s) at certn.requests_per_day = " << budget.per_day
              << " less the " << budget.live_reserve_percent << " % live reserve";
  }
  std::cerr << "; bulk work: `status` shows what is left, `backfill --pause` pauses it\n";
}

awaitable<int> run(certn::api_client& api, db::pool& database, const backfill_request& request,
                   int max_attempts, const certn::budget_settings& budget,
                   backfill_counts& counts) {
  // The database first: finding it unusable after listing every page would waste the API calls.
  const db::schema_status schema = co_await database.query<db::schema_status>(
      [](pqxx::connection& conn) { return db::check_schema(conn); });
  if (!schema.current()) {
    std::cerr << "certn-archiver: database schema is at version " << schema.database_version
              << ", this build needs " << schema.expected_version
              << ": run `certn-archiver migrate`\n";
    co_return exit_failure;
  }

  certn::case_filter filter;
  filter.order_timeframe_after = request.since;
  filter.order_timeframe_before = request.until;
  filter.overall_status = request.statuses;
  certn::case_pages pages(api, filter, page_size);
  bool estimated = false;
  progress shown("backfill: cases listed and enqueued");
  while (!pages.done()) {
    const auto page = co_await pages.next();
    if (!page.value) {
      std::cerr << "certn-archiver: " << page.failure->message << " ["
                << certn::to_string(page.failure->kind) << "]\n";
      co_return exit_failure;
    }
    for (const std::string& why : page.value->skipped) {
      std::cerr << "certn-archiver: backfill: a listed case was skipped: " << why << "\n";
    }
    counts.skipped += static_cast<std::int64_t>(page.value->skipped.size());
    if (!estimated && page.value->count) {
      // The listing's total, before the first job is queued.
      print_estimate(static_cast<std::int64_t>(*page.value->count), budget);
      shown.set_total(*page.value->count);
      estimated = true;
    }
    std::vector<std::string> case_ids;
    for (const auto& record : page.value->results) {
      case_ids.push_back(record.id);
    }
    const std::int64_t enqueued = co_await database.query<std::int64_t>(
        [&](pqxx::connection& conn) { return enqueue_page(conn, case_ids, max_attempts); });
    counts.seen += static_cast<std::int64_t>(case_ids.size());
    counts.enqueued += enqueued;
    counts.already_pending += static_cast<std::int64_t>(case_ids.size()) - enqueued;
    shown.update(static_cast<std::uint64_t>(counts.seen));
  }
  if (!estimated) {
    print_estimate(counts.seen, budget);
  }
  co_return exit_ok;
}

}  // namespace

// `backfill --pause` / `--resume`: the bulk class in table paused_classes.
int pause_or_resume(const config::config& cfg, bool pause) {
  return with_database(cfg, [&](pqxx::connection& conn) {
    pqxx::work tx(conn);
    const bool changed = pause ? queue::pause_class(tx, ops::priority::bulk, "backfill --pause")
                               : queue::resume_class(tx, ops::priority::bulk);
    const queue::class_status bulk = queue::read_class_status(tx, ops::priority::bulk);
    tx.commit();
    if (pause) {
      std::cout << "backfill: bulk work " << (changed ? "paused" : "was paused already") << "; "
                << bulk.open_jobs << " job(s) wait for `backfill --resume`\n";
    } else {
      std::cout << "backfill: bulk work " << (changed ? "resumed" : "was not paused") << "; "
                << bulk.open_jobs << " job(s) to run\n";
    }
    return exit_ok;
  });
}

int backfill(const config::config& cfg, const backfill_request& request) {
  if (request.pause || request.resume) {
    return pause_or_resume(cfg, request.pause);
  }
  if (request.since.empty()) {
    std::cerr << "certn-archiver: backfill: --since is required (or --pause / --resume)\n";
    return exit_usage;
  }
  const auto bad_date = [](const char* option, const std::string& value) {
    std::cerr << "certn-archiver: " << option << ": expected an ISO 8601 date (YYYY-MM-DD) or "
              << "date-time (YYYY-MM-DDTHH:MM:SSZ), got \"" << value << "\"\n";
    return exit_usage;
  };
  if (!is_iso8601(request.since)) {
    return bad_date("--since", request.since);
  }
  if (request.until && !is_iso8601(*request.until)) {
    return bad_date("--until", *request.until);
  }
  if (cfg.certn.api_key.empty()) {
    std::cerr << "certn-archiver: configuration error: certn.api_key: required to call the Certn "
                 "API (set certn.api_key, certn.api_key_file or CERTN_ARCHIVER_CERTN_API_KEY)\n";
    return exit_usage;
  }

  backfill_counts counts;
  int code = exit_failure;
  try {
    asio::io_context io(1);
    db::pool database(cfg.database.url, 1, static_cast<int>(cfg.database.connect_timeout.count()),
                      admin_limits(cfg));
    certn_clients clients(io, cfg.certn, nullptr, &database);
    std::exception_ptr escaped;
    // Stopped when done: idle pooled connections would keep io.run() going.
    // The listing is the operator's command, so live work (the calls it enqueues are bulk): it
    // is charged to the day's budget but not stopped at the live reserve.
    const certn::budget_settings budget{cfg.certn.requests_per_day,
                                        cfg.certn.live_reserve_percent};
    asio::co_spawn(io,
                   run(clients.api(), database, request, cfg.workers.max_attempts, budget, counts),
                   [&](std::exception_ptr error, int result) {
                     escaped = error;
                     code = result;
                     io.stop();
                   });
    io.run();
    if (escaped) {
      std::rethrow_exception(escaped);
    }
  } catch (const pqxx::failure& e) {
    std::string message = e.what();
    std::cerr << "certn-archiver: database: " << message.substr(0, message.find('\n')) << "\n";
    code = exit_failure;
  }
  std::cout << "backfill: " << counts.seen << " cases seen, " << counts.enqueued
            << " sync_case jobs enqueued, " << counts.already_pending << " already pending";
  if (counts.skipped > 0) {
    std::cout << ", " << counts.skipped << " unreadable list entr"
              << (counts.skipped == 1 ? "y" : "ies") << " skipped (see above)";
  }
  std::cout << "\n";
  return code;
}

}  // namespace archiver::service
