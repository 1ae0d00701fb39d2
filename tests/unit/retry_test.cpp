// The retry table (retry/table.hpp): every row, table-driven. No I/O.
#include <doctest/doctest.h>

#include <cerrno>
#include <set>
#include <string>
#include <vector>

#include "retry/table.hpp"

using namespace archiver::retry;
using archiver::queue::job_result;
using std::chrono::seconds;

TEST_CASE("of_http_status: every listed Certn HTTP status has its class") {
  struct row {
    int status;
    failure_class expected;
  };
  const std::vector<row> rows = {
      {400, failure_class::permanent},      {401, failure_class::authentication},
      {403, failure_class::forbidden},      {404, failure_class::permanent},
      {408, failure_class::retryable},      {409, failure_class::permanent},
      {422, failure_class::permanent},      {425, failure_class::retryable},
      {429, failure_class::rate_limited},   {500, failure_class::retryable},
      {501, failure_class::retryable},      {502, failure_class::retryable},
      {503, failure_class::retryable},      {504, failure_class::retryable},
      {599, failure_class::retryable},      {200, failure_class::permanent},
      {302, failure_class::permanent},      {600, failure_class::permanent},
  };
  for (const row& r : rows) {
    CAPTURE(r.status);
    CHECK(of_http_status(r.status) == r.expected);
  }
}

TEST_CASE("of_certn_error: the envelope's code decides where it says more than the status") {
  struct row {
    int status;
    const char* type;
    const char* code;
    failure_class expected;
  };
  const std::vector<row> rows = {
      // DRF answers a refused key with 403 when the scheme sends no challenge: still the key.
      {403, "client_error", "not_authenticated", failure_class::authentication},
      {403, "client_error", "authentication_failed", failure_class::authentication},
      {401, "client_error", "authentication_failed", failure_class::authentication},
      {403, "client_error", "permission_denied", failure_class::forbidden},
      {403, "client_error", "throttled", failure_class::rate_limited},
      {429, "client_error", "throttled", failure_class::rate_limited},
      {400, "server_error", "error", failure_class::retryable},
      // Codes that say nothing the status does not: the status decides.
      {400, "validation_error", "required", failure_class::permanent},
      {404, "client_error", "not_found", failure_class::permanent},
      {403, "client_error", "", failure_class::forbidden},
      {429, "", "", failure_class::rate_limited},
      {500, "server_error", "error", failure_class::retryable},
      {503, "", "", failure_class::retryable},
      {409, "client_error", "some_new_code", failure_class::permanent},
  };
  for (const row& r : rows) {
    CAPTURE(r.status);
    CAPTURE(r.code);
    CHECK(of_certn_error(r.status, r.type, r.code) == r.expected);
  }
}

TEST_CASE("of_download: an expired presigned URL, any other 403, and the rest as the API") {
  CHECK(of_download(403, true) == failure_class::expired_url);
  CHECK(of_download(400, true) == failure_class::expired_url);
  // A 403 for any other reason: the next attempt lists the files again and gets fresh URLs.
  CHECK(of_download(403, false) == failure_class::retryable);
  CHECK(of_download(400, false) == failure_class::permanent);
  CHECK(of_download(404, true) == failure_class::permanent);
  CHECK(of_download(503, false) == failure_class::retryable);
  CHECK(of_download(429, false) == failure_class::rate_limited);
}

TEST_CASE("of_transport: what the client refuses to send is permanent, the network's failures not") {
  using archiver::http::failure;
  struct row {
    failure kind;
    failure_class expected;
  };
  const std::vector<row> rows = {
      {failure::invalid_url, failure_class::permanent},
      {failure::refused_by_policy, failure_class::permanent},
      {failure::too_large, failure_class::permanent},
      {failure::dns, failure_class::retryable},
      {failure::connect, failure_class::retryable},
      {failure::tls, failure_class::retryable},
      {failure::timeout, failure_class::retryable},
      {failure::truncated, failure_class::retryable},
      {failure::protocol, failure_class::retryable},
      {failure::none, failure_class::retryable},
  };
  for (const row& r : rows) {
    CAPTURE(static_cast<int>(r.kind));
    CHECK(of_transport(r.kind) == r.expected);
  }
}

TEST_CASE("retryable_errno: what a later attempt may not meet again") {
  for (const int error : {ENOSPC, EDQUOT, EIO, EINTR, EAGAIN, ENOMEM, EMFILE, ENFILE, EBUSY, ESTALE,
                          ETIMEDOUT}) {
    CAPTURE(error);
    CHECK(retryable_errno(error));
  }
  for (const int error : {EACCES, EPERM, EROFS, EISDIR, ENOTDIR, ENOENT, EEXIST, ENAMETOOLONG,
                          EINVAL, EXDEV, 0}) {
    CAPTURE(error);
    CHECK_FALSE(retryable_errno(error));
  }
}

TEST_CASE("of_s3_code: each known S3 code, with advice naming what to check") {
  struct row {
    std::string code;
    bool retryable;
    std::string advice_mentions;
  };
  const std::vector<row> rows = {
      {"SlowDown", true, "fewer requests"},
      {"InternalError", true, "retrying later"},
      {"ServiceUnavailable", true, "unavailable"},
      {"RequestTimeout", true, "request body"},
      {"NoSuchUpload", true, "starting over"},
      {"SignatureDoesNotMatch", false, "s3.secret_access_key"},
      {"RequestTimeTooSkewed", false, "NTP"},
      {"AccessDenied", false, "bucket policy"},
      {"InvalidAccessKeyId", false, "s3.access_key_id"},
      {"NoSuchBucket", false, "s3.bucket"},
      {"AuthorizationHeaderMalformed", false, "s3.region"},
  };
  for (const row& r : rows) {
    CAPTURE(r.code);
    const auto meaning = of_s3_code(r.code);
    REQUIRE(meaning.has_value());
    CHECK(meaning->retryable == r.retryable);
    CHECK(meaning->advice.find(r.advice_mentions) != std::string_view::npos);
  }
  CHECK_FALSE(of_s3_code("InvalidArgument").has_value());
  CHECK_FALSE(of_s3_code("slowdown").has_value());  // codes are case-sensitive
  CHECK_FALSE(of_s3_code("").has_value());
}

TEST_CASE("retryable_s3_status: no answer, 408, 429 and 5xx") {
  for (const int status : {0, 408, 429, 500, 502, 503, 504}) {
    CAPTURE(status);
    CHECK(retryable_s3_status(status));
  }
  for (const int status : {400, 401, 403, 404, 409, 412}) {
    CAPTURE(status);
    CHECK_FALSE(retryable_s3_status(status));
  }
}

TEST_CASE("of_sqlstate: data the database refuses is refused again; the rest may pass") {
  struct row {
    std::string sqlstate;
    failure_class expected;
  };
  const std::vector<row> rows = {
      {"22021", failure_class::permanent},  // invalid byte sequence for encoding
      {"22001", failure_class::permanent},  // string data right truncation
      {"22P02", failure_class::permanent},  // invalid text representation
      {"23502", failure_class::permanent},  // not null violation
      {"23514", failure_class::permanent},  // check violation
      {"23505", failure_class::retryable},  // unique violation: a race
      {"23503", failure_class::retryable},  // foreign key violation: a race with a delete
      {"08006", failure_class::retryable},  // connection failure
      {"40001", failure_class::retryable},  // serialization failure
      {"40P01", failure_class::retryable},  // deadlock
      {"53100", failure_class::retryable},  // disk full
      {"55P03", failure_class::retryable},  // lock not available
      {"57014", failure_class::retryable},  // query cancelled (statement_timeout)
      {"57P01", failure_class::retryable},  // admin shutdown
      {"42703", failure_class::retryable},  // undefined column: an upgrade under way
      {"XX000", failure_class::retryable},  // internal error
      {"", failure_class::retryable},       // no SQLSTATE: a broken connection
  };
  for (const row& r : rows) {
    CAPTURE(r.sqlstate);
    CHECK(of_sqlstate(r.sqlstate) == r.expected);
  }
}

TEST_CASE("may_be_one_rows_fault: split a failed group only for what one row can cause") {
  for (const std::string state : {"22021", "22P02", "23505", "23502", "P0001", "40P01"}) {
    CAPTURE(state);
    CHECK(may_be_one_rows_fault(state));
  }
  for (const std::string state : {"57014", "08006", "53100", "55P03", "40001", "42P01", ""}) {
    CAPTURE(state);
    CHECK_FALSE(may_be_one_rows_fault(state));
  }
}

TEST_CASE("job_verdict: every failure class has one verdict, with its reason") {
  struct row {
    failure_class kind;
    std::optional<seconds> retry_after;  // as Certn sent it
    std::string kept_at;
    job_result::kind what;
    bool counts_as_attempt;
    std::optional<seconds> expected_after;
    std::string error;
  };
  const std::string why = "GET /cases/c1/: 503 server_error";
  constexpr auto retry = job_result::kind::retry;
  constexpr auto permanent = job_result::kind::permanent;
  const std::optional<seconds> none;
  const std::vector<row> rows = {
      {failure_class::retryable, none, "", retry, true, none, why},
      {failure_class::retryable, seconds(30), "", retry, true, seconds(30), why},
      {failure_class::expired_url, none, "", retry, true, none, why},
      // A 429 waits for Certn's window and never uses up an attempt.
      {failure_class::rate_limited, seconds(7), "", retry, false, seconds(7), why},
      {failure_class::rate_limited, none, "", retry, false, none, why},
      // An operator can replace the key file: the job keeps its place meanwhile, without using
      // up attempts, trying again every 5 minutes.
      {failure_class::authentication, none, "", retry, false, seconds(300),
       why + " (check certn.api_key)"},
      {failure_class::authentication, seconds(20), "", retry, false, seconds(20),
       why + " (check certn.api_key)"},
      {failure_class::forbidden, seconds(5), "", permanent, true, none,
       why + " (the API key lacks permission for this endpoint)"},
      {failure_class::permanent, seconds(5), "", permanent, true, none, why},
      // An unreadable answer names where it was kept.
      {failure_class::permanent, none, "certn/c1/get_case/ab.json", permanent, true, none,
       why + " (answer kept at certn/c1/get_case/ab.json)"},
      {failure_class::authentication, none, "k", retry, false, seconds(300),
       why + " (check certn.api_key) (answer kept at k)"},
  };
  std::set<failure_class> covered;
  for (const row& r : rows) {
    CAPTURE(to_string(r.kind));
    CAPTURE(r.kept_at);
    const job_result result = job_verdict(r.kind, why, r.retry_after, r.kept_at);
    CHECK(result.what == r.what);
    CHECK(result.counts_as_attempt == r.counts_as_attempt);
    CHECK(result.retry_after == r.expected_after);
    CHECK(result.error == r.error);
    covered.insert(r.kind);
  }
  // Every class (to_string names each, "unknown" past the last) has a row above.
  for (int value = 0;; ++value) {
    const auto kind = static_cast<failure_class>(value);
    if (std::string_view(to_string(kind)) == "unknown") {
      break;
    }
    CAPTURE(to_string(kind));
    CHECK(covered.count(kind) == 1);
  }
}

TEST_CASE("store_verdict: a store's retryable failure is retried, any other is dead") {
  const job_result retried = store_verdict(true, "put a/b: No space left on device");
  CHECK(retried.what == job_result::kind::retry);
  CHECK(retried.counts_as_attempt);
  CHECK_FALSE(retried.retry_after.has_value());
  CHECK(retried.error == "put a/b: No space left on device");
  const job_result dead = store_verdict(false, "s3 put a/b: AccessDenied");
  CHECK(dead.what == job_result::kind::permanent);
  CHECK(dead.error == "s3 put a/b: AccessDenied");
}

TEST_CASE("database_verdict: dead for refused data, retried otherwise, named as the database's") {
  const job_result dead = database_verdict("22021", "invalid byte sequence for encoding");
  CHECK(dead.what == job_result::kind::permanent);
  CHECK(dead.error == "database: invalid byte sequence for encoding");
  const job_result retried = database_verdict("57014", "canceling statement due to timeout");
  CHECK(retried.what == job_result::kind::retry);
  CHECK(retried.counts_as_attempt);
  CHECK(retried.error == "database: canceling statement due to timeout");
  CHECK(database_verdict("", "server closed the connection").what == job_result::kind::retry);
}

TEST_CASE("to_string names every class") {
  CHECK(std::string(to_string(failure_class::retryable)) == "retryable");
  CHECK(std::string(to_string(failure_class::permanent)) == "permanent");
  CHECK(std::string(to_string(failure_class::authentication)) == "authentication");
  CHECK(std::string(to_string(failure_class::forbidden)) == "forbidden");
  CHECK(std::string(to_string(failure_class::rate_limited)) == "rate_limited");
  CHECK(std::string(to_string(failure_class::expired_url)) == "expired_url");
}

TEST_CASE("aged_by: a verdict kept while the run went on owes only the rest of Certn's wait") {
  const job_result throttled = job_verdict(failure_class::rate_limited, "429", seconds(57), "");
  // The run waited for its next turn and downloaded files for 20 s after the answer.
  const job_result later = throttled.aged_by(seconds(20));
  REQUIRE(later.retry_after);
  CHECK(*later.retry_after == seconds(37));
  CHECK_FALSE(later.counts_as_attempt);  // still only a wait, not an attempt
  CHECK(later.error == throttled.error);
  // Past the whole wait: nothing more is owed (the queue's own backoff still applies).
  REQUIRE(throttled.aged_by(seconds(90)).retry_after);
  CHECK(*throttled.aged_by(seconds(90)).retry_after == seconds(0));
  // A verdict without a wait gains none.
  CHECK_FALSE(job_verdict(failure_class::retryable, "500", std::nullopt, "")
                  .aged_by(seconds(5))
                  .retry_after);
}
