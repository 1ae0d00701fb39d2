// Unit tests of daemon/ops: metrics registry and exposition, log line formats, sd_notify.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "ops/clock.hpp"
#include "ops/logging.hpp"
#include "ops/metrics.hpp"
#include "ops/notify.hpp"
#include "ops/recent_count.hpp"

namespace ops = archiver::ops;
using archiver::config::log_format;

namespace {

// ---- a strict parser for the one JSON shape our log lines have: a flat object of strings ----

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

class flat_json_parser {
 public:
  explicit flat_json_parser(std::string_view text) : s_(text) {}

  // The object's members, or nullopt when `text` is not exactly one valid JSON object of strings.
  std::optional<std::map<std::string, std::string>> parse() {
    std::map<std::string, std::string> members;
    if (!eat('{')) {
      return std::nullopt;
    }
    if (!eat('}')) {
      for (;;) {
        auto key = string();
        if (!key || !eat(':')) {
          return std::nullopt;
        }
        auto value = string();
        if (!value || !members.emplace(*key, *value).second) {
          return std::nullopt;
        }
        if (eat('}')) {
          break;
        }
        if (!eat(',')) {
          return std::nullopt;
        }
      }
    }
    if (pos_ != s_.size()) {
      return std::nullopt;
    }
    return members;
  }

 private:
  bool eat(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  std::optional<unsigned> hex4() {
    if (s_.size() - pos_ < 4) {
      return std::nullopt;
    }
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= static_cast<unsigned>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v |= static_cast<unsigned>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v |= static_cast<unsigned>(c - 'A' + 10);
      } else {
        return std::nullopt;
      }
    }
    return v;
  }

  std::optional<std::string> string() {
    if (!eat('"')) {
      return std::nullopt;
    }
    std::string out;
    while (pos_ < s_.size()) {
      const auto c = static_cast<unsigned char>(s_[pos_++]);
      if (c == '"') {
        return out;
      }
      if (c < 0x20) {
        return std::nullopt;  // raw control characters are not allowed in JSON strings
      }
      if (c != '\\') {
        out += static_cast<char>(c);
        continue;
      }
      if (pos_ == s_.size()) {
        return std::nullopt;
      }
      switch (s_[pos_++]) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          const auto cp = hex4();
          if (!cp || (*cp >= 0xd800 && *cp <= 0xdfff)) {  // our lines never need surrogates
            return std::nullopt;
          }
          append_utf8(out, *cp);
          break;
        }
        default: return std::nullopt;
      }
    }
    return std::nullopt;
  }

  std::string_view s_;
  std::size_t pos_ = 0;
};

bool is_utc_timestamp(const std::string& ts) {  // 2026-11-28T15:00:00.123Z
  constexpr std::string_view shape = "dddd-dd-ddTdd:dd:dd.dddZ";
  if (ts.size() != shape.size()) {
    return false;
  }
  for (std::size_t i = 0; i < shape.size(); ++i) {
    const bool ok = shape[i] == 'd' ? (ts[i] >= '0' && ts[i] <= '9') : ts[i] == shape[i];
    if (!ok) {
      return false;
    }
  }
  return true;
}

// A temporary directory removed (with the files the test put in it) at scope exit.
struct temp_dir {
  temp_dir() {
    char tmpl[] = "/tmp/ops_test.XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~temp_dir() {
    for (const auto& f : files) {
      ::unlink(f.c_str());
    }
    ::rmdir(path.c_str());
  }
  std::string file(const std::string& name) {
    files.push_back(path + "/" + name);
    return files.back();
  }
  std::string path;
  std::vector<std::string> files;
};

// Sets an environment variable for the scope, restoring the previous state after.
struct scoped_env {
  scoped_env(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) {
      old_ = old;
    }
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~scoped_env() {
    if (old_) {
      ::setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  scoped_env(const scoped_env&) = delete;
  scoped_env& operator=(const scoped_env&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

// A bound unix datagram socket standing in for systemd's notification socket.
struct notify_listener {
  explicit notify_listener(const std::string& path) {
    fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(path.size() < sizeof(addr.sun_path));
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0);
  }
  ~notify_listener() { ::close(fd); }
  notify_listener(const notify_listener&) = delete;
  notify_listener& operator=(const notify_listener&) = delete;

  // The next datagram, or nullopt if none arrives before the deadline.
  std::optional<std::string> receive(std::chrono::milliseconds timeout) const {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) {
      return std::nullopt;
    }
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0) {
      return std::nullopt;
    }
    return std::string(buf, static_cast<std::size_t>(n));
  }

  int fd = -1;
};

}  // namespace

// ------------------------------------------------------------------------------------ metrics

TEST_CASE("a counter without labels starts at zero and adds increments") {
  ops::registry r;
  auto& c = r.counter("jobs_total", "Jobs.");
  CHECK(c.value({}) == 0);
  c.inc({});
  c.inc({}, 2.5);
  CHECK(c.value({}) == 3.5);
  CHECK(r.expose() == "# HELP jobs_total Jobs.\n# TYPE jobs_total counter\njobs_total 3.5\n");
}

TEST_CASE("a counter with labels keeps one series per label values") {
  ops::registry r;
  auto& c = r.counter("requests_total", "Requests.", {"route", "code"});
  c.inc({"/a", "200"});
  c.inc({"/a", "200"});
  c.inc({"/a", "500"}, 3);
  CHECK(c.value({"/a", "200"}) == 2);
  CHECK(c.value({"/a", "500"}) == 3);
  CHECK(c.value({"/b", "200"}) == 0);
  // Reading a series never creates it.
  CHECK(r.expose().find("/b") == std::string::npos);
}

TEST_CASE("counters refuse negative or NaN increments") {
  ops::registry r;
  auto& c = r.counter("x_total", "X.");
  CHECK_THROWS_AS(c.inc({}, -1), std::invalid_argument);
  CHECK_THROWS_AS(c.inc({}, std::numeric_limits<double>::quiet_NaN()), std::invalid_argument);
  CHECK(c.value({}) == 0);
}

TEST_CASE("a wrong number of label values throws std::invalid_argument") {
  ops::registry r;
  auto& c = r.counter("c_total", "C.", {"a", "b"});
  auto& g = r.gauge("g", "G.", {"a"});
  auto& h = r.histogram("h_seconds", "H.", {1}, {"a"});
  auto& plain = r.counter("plain_total", "Plain.");
  CHECK_THROWS_AS(c.inc({"x"}), std::invalid_argument);
  CHECK_THROWS_AS(c.inc({"x", "y", "z"}), std::invalid_argument);
  CHECK_THROWS_AS(c.value({}), std::invalid_argument);
  CHECK_THROWS_AS(g.set({}, 1), std::invalid_argument);
  CHECK_THROWS_AS(g.add({"x", "y"}, 1), std::invalid_argument);
  CHECK_THROWS_AS(g.value({}), std::invalid_argument);
  CHECK_THROWS_AS(h.observe({}, 1), std::invalid_argument);
  CHECK_THROWS_AS(h.count({"x", "y"}), std::invalid_argument);
  CHECK_THROWS_AS(plain.inc({"x"}), std::invalid_argument);
}

TEST_CASE("gauges set and add, with and without labels") {
  ops::registry r;
  auto& g = r.gauge("in_flight", "In flight.");
  g.set({}, 5);
  g.add({}, -2);
  CHECK(g.value({}) == 3);
  auto& gl = r.gauge("pool_size", "Pool.", {"pool"});
  gl.add({"db"}, 0.25);
  gl.set({"http"}, -1.5);
  CHECK(gl.value({"db"}) == 0.25);
  CHECK(gl.value({"http"}) == -1.5);
  CHECK(gl.value({"other"}) == 0);
  CHECK(r.expose() ==
        "# HELP in_flight In flight.\n# TYPE in_flight gauge\nin_flight 3\n"
        "# HELP pool_size Pool.\n# TYPE pool_size gauge\n"
        "pool_size{pool=\"db\"} 0.25\npool_size{pool=\"http\"} -1.5\n");
}

TEST_CASE("registration rejects duplicates and invalid names") {
  ops::registry r;
  r.counter("dup_total", "D.");
  CHECK_THROWS_AS(r.counter("dup_total", "D."), std::logic_error);
  CHECK_THROWS_AS(r.gauge("dup_total", "D."), std::logic_error);
  CHECK_THROWS_AS(r.gauge_callback("dup_total", "D.", [] { return 1.0; }), std::logic_error);
  CHECK_THROWS_AS(r.counter("", "E."), std::invalid_argument);
  CHECK_THROWS_AS(r.counter("9lives", "E."), std::invalid_argument);
  CHECK_THROWS_AS(r.counter("has-dash", "E."), std::invalid_argument);
  CHECK_THROWS_AS(r.counter("ok_total", "E.", {"bad-label"}), std::invalid_argument);
  CHECK_THROWS_AS(r.counter("ok2_total", "E.", {"__reserved"}), std::invalid_argument);
  CHECK_THROWS_AS(r.counter("ok3_total", "E.", {"a", "a"}), std::invalid_argument);
  CHECK_THROWS_AS(r.histogram("h1", "E.", {1}, {"le"}), std::invalid_argument);
  CHECK_THROWS_AS(r.histogram("h2", "E.", {1, 1}), std::invalid_argument);
  CHECK_THROWS_AS(r.histogram("h3", "E.", {2, 1}), std::invalid_argument);
  CHECK_NOTHROW(r.counter("ns:sub_total", "Colons are allowed."));
}

TEST_CASE("a histogram counts observations into cumulative buckets") {
  ops::registry r;
  auto& h = r.histogram("wait_seconds", "Wait.", {0.25, 0.5, 1});
  CHECK(h.count({}) == 0);
  h.observe({}, 0.125);
  h.observe({}, 0.25);  // upper bounds are inclusive
  h.observe({}, 0.75);
  h.observe({}, 3);
  CHECK(h.count({}) == 4);
  CHECK(r.expose() ==
        "# HELP wait_seconds Wait.\n# TYPE wait_seconds histogram\n"
        "wait_seconds_bucket{le=\"0.25\"} 2\n"
        "wait_seconds_bucket{le=\"0.5\"} 2\n"
        "wait_seconds_bucket{le=\"1\"} 3\n"
        "wait_seconds_bucket{le=\"+Inf\"} 4\n"
        "wait_seconds_sum 4.125\n"
        "wait_seconds_count 4\n");
}

TEST_CASE("exposition of a small registry is exact") {
  ops::registry r;
  // Registered out of order: output is sorted by family name.
  auto& up = r.gauge("up", "Whether the daemon is up.");
  auto& req = r.counter("http_requests_total", "Requests by route.\nSecond line \\ here",
                        {"route", "code"});
  auto& lat = r.histogram("latency_seconds", "Latency \"quoted\".", {0.25, 0.5, 1}, {"op"});
  r.counter("errors_total", "Errors.", {"kind"});  // no series yet: only HELP and TYPE
  r.gauge_callback("queue_depth", "Depth.", [] { return 7.0; });
  auto& job = r.histogram("job_seconds", "Jobs.", {1});

  up.set({}, 1);
  req.inc({"a\"b\\c\nd", "500"});
  req.inc({"/webhooks", "200"});
  req.inc({"/webhooks", "200"}, 2);
  lat.observe({"put"}, 2);
  lat.observe({"get"}, 0.125);
  lat.observe({"get"}, 0.25);
  lat.observe({"get"}, 0.75);
  lat.observe({"get"}, 3);
  job.observe({}, 0.5);

  const std::string expected =
      "# HELP errors_total Errors.\n"
      "# TYPE errors_total counter\n"
      "# HELP http_requests_total Requests by route.\\nSecond line \\\\ here\n"
      "# TYPE http_requests_total counter\n"
      "http_requests_total{route=\"/webhooks\",code=\"200\"} 3\n"
      "http_requests_total{route=\"a\\\"b\\\\c\\nd\",code=\"500\"} 1\n"
      "# HELP job_seconds Jobs.\n"
      "# TYPE job_seconds histogram\n"
      "job_seconds_bucket{le=\"1\"} 1\n"
      "job_seconds_bucket{le=\"+Inf\"} 1\n"
      "job_seconds_sum 0.5\n"
      "job_seconds_count 1\n"
      "# HELP latency_seconds Latency \"quoted\".\n"
      "# TYPE latency_seconds histogram\n"
      "latency_seconds_bucket{op=\"get\",le=\"0.25\"} 2\n"
      "latency_seconds_bucket{op=\"get\",le=\"0.5\"} 2\n"
      "latency_seconds_bucket{op=\"get\",le=\"1\"} 3\n"
      "latency_seconds_bucket{op=\"get\",le=\"+Inf\"} 4\n"
      "latency_seconds_sum{op=\"get\"} 4.125\n"
      "latency_seconds_count{op=\"get\"} 4\n"
      "latency_seconds_bucket{op=\"put\",le=\"0.25\"} 0\n"
      "latency_seconds_bucket{op=\"put\",le=\"0.5\"} 0\n"
      "latency_seconds_bucket{op=\"put\",le=\"1\"} 0\n"
      "latency_seconds_bucket{op=\"put\",le=\"+Inf\"} 1\n"
      "latency_seconds_sum{op=\"put\"} 2\n"
      "latency_seconds_count{op=\"put\"} 1\n"
      "# HELP queue_depth Depth.\n"
      "# TYPE queue_depth gauge\n"
      "queue_depth 7\n"
      "# HELP up Whether the daemon is up.\n"
      "# TYPE up gauge\n"
      "up 1\n";
  CHECK(r.expose() == expected);
  CHECK(r.expose() == expected);  // stable from one scrape to the next
}

TEST_CASE("sample values: integers without exponent, shortest decimals, infinities") {
  ops::registry r;
  auto& g = r.gauge("v", "V.", {"k"});
  g.set({"a"}, 3);
  g.set({"b"}, 0.1);
  g.set({"c"}, 1234567890123.0);
  g.set({"d"}, std::numeric_limits<double>::infinity());
  g.set({"e"}, -std::numeric_limits<double>::infinity());
  g.set({"f"}, -0.0);
  CHECK(r.expose() ==
        "# HELP v V.\n# TYPE v gauge\n"
        "v{k=\"a\"} 3\nv{k=\"b\"} 0.1\nv{k=\"c\"} 1234567890123\n"
        "v{k=\"d\"} +Inf\nv{k=\"e\"} -Inf\nv{k=\"f\"} 0\n");
}

TEST_CASE("concurrent updates from 4 threads x 10000 sum correctly") {
  ops::registry r;
  auto& c = r.counter("hits_total", "Hits.", {"worker"});
  auto& plain = r.counter("all_total", "All.");
  auto& h = r.histogram("op_seconds", "Op.", ops::latency_buckets());
  auto& g = r.gauge("level", "Level.");
  constexpr int threads = 4;
  constexpr int per_thread = 10000;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      const std::string worker = t % 2 == 0 ? "even" : "odd";
      for (int i = 0; i < per_thread; ++i) {
        c.inc({worker});
        plain.inc({});
        h.observe({}, 0.001);
        g.add({}, 1);
        if (i % 1000 == 0) {
          static_cast<void>(r.expose());  // scrapes may run while others update
        }
      }
    });
  }
  for (auto& th : pool) {
    th.join();
  }
  CHECK(plain.value({}) == threads * per_thread);
  CHECK(c.value({"even"}) + c.value({"odd"}) == threads * per_thread);
  CHECK(h.count({}) == threads * per_thread);
  CHECK(g.value({}) == threads * per_thread);
  CHECK(r.expose().find("op_seconds_bucket{le=\"0.001\"} 40000\n") != std::string::npos);
}

TEST_CASE("latency buckets span 0.5 ms to 10 s in increasing order") {
  const std::vector<double> expected = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,    0.25,  0.5,    1,     2.5,  5,     10};
  CHECK(ops::latency_buckets() == expected);
  ops::registry r;
  r.histogram("lat_seconds", "L.", ops::latency_buckets());
  const std::string text = r.expose();
  CHECK(text.find("lat_seconds_bucket{le=\"0.0005\"} 0\n") != std::string::npos);
  CHECK(text.find("lat_seconds_bucket{le=\"2.5\"} 0\n") != std::string::npos);
  CHECK(text.find("lat_seconds_bucket{le=\"10\"} 0\n") != std::string::npos);
}

// ------------------------------------------------------------------------------------ logging

TEST_CASE("a JSON log line is valid JSON whatever the message holds") {
  const std::string tricky =
      "say \"hi\" \\ path C:\\x\nnext line\r\t\x01\x1f\x7f caf\xc3\xa9 \xe2\x82\xac";
  const std::string line = ops::format_log_line(log_format::json, "info", tricky);
  CHECK(line.find('\n') == std::string::npos);
  const auto members = flat_json_parser(line).parse();
  REQUIRE_MESSAGE(members.has_value(), line);
  CHECK(members->size() == 4);
  CHECK(members->at("msg") == tricky);  // escaping round-trips exactly
  CHECK(members->at("level") == "info");
  CHECK(members->at("logger") == "certn-archiver");
  CHECK(is_utc_timestamp(members->at("ts")));
  CHECK(line.starts_with("{\"ts\":\""));
  CHECK(line.find("\\u0001") != std::string::npos);

  SUBCASE("invalid UTF-8 becomes U+FFFD") {
    const std::string bad = "a\xff" "b\xc3" "c\xed\xa0\x80";  // stray, truncated, surrogate
    const auto m = flat_json_parser(ops::format_log_line(log_format::json, "error", bad)).parse();
    REQUIRE(m.has_value());
    CHECK(m->at("msg") ==
          "a\xef\xbf\xbd" "b\xef\xbf\xbd" "c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    CHECK(m->at("level") == "error");
  }
  SUBCASE("an empty message") {
    const auto m = flat_json_parser(ops::format_log_line(log_format::json, "warn", "")).parse();
    REQUIRE(m.has_value());
    CHECK(m->at("msg").empty());
    CHECK(m->at("level") == "warn");
  }
}

TEST_CASE("a record's fields: more keys of its JSON line, journald fields, not in its text") {
  const std::string line = ops::format_log_line(
      log_format::json, "info", "job 42 sync_case(c-1) done",
      {{"job_id", "42"}, {"job_kind", "sync_case"}, {"job_key", "c-\"1\""}, {"case_id", ""}});
  const auto members = flat_json_parser(line).parse();
  REQUIRE_MESSAGE(members.has_value(), line);
  CHECK(members->at("job_id") == "42");
  CHECK(members->at("job_kind") == "sync_case");
  CHECK(members->at("job_key") == "c-\"1\"");
  CHECK(members->count("case_id") == 0);  // empty: left out
  CHECK(members->at("msg") == "job 42 sync_case(c-1) done");

  const std::string text =
      ops::format_log_line(log_format::text, "info", "job 42 done", {{"job_id", "42"}});
  CHECK(text.ends_with(" info job 42 done"));

  const std::vector<std::string> fields = ops::journal_fields(
      spdlog::level::warn, "line one\nline two", {{"job_id", "42"}, {"event_id", ""}});
  CHECK(fields == std::vector<std::string>{"MESSAGE=line one\nline two", "PRIORITY=4",
                                           "SYSLOG_IDENTIFIER=certn-archiver", "JOB_ID=42"});
  CHECK(ops::journal_fields(spdlog::level::err, "x", {})[1] == "PRIORITY=3");
  CHECK(ops::journal_fields(spdlog::level::info, "x", {})[1] == "PRIORITY=6");
}

TEST_CASE("a text log line is one line with control characters escaped") {
  const std::string line = ops::format_log_line(log_format::text, "warn", "a\nb\x01 \"q\"");
  CHECK(line.find('\n') == std::string::npos);
  REQUIRE(line.size() > 25);
  CHECK(is_utc_timestamp(line.substr(0, 24)));
  CHECK(line.substr(24) == " warn a\\nb\\x01 \"q\"");
}

TEST_CASE("an invalid log level is refused, naming the key") {
  for (const char* bad : {"verbose", "", "INFO", "warning"}) {
    CAPTURE(bad);
    try {
      ops::setup_logging(log_format::text, bad);
      FAIL("no exception");
    } catch (const std::invalid_argument& e) {
      CHECK(std::string(e.what()).starts_with("log.level: "));
    }
  }
  CHECK_THROWS_AS(ops::format_log_line(log_format::json, "off", "x"), std::invalid_argument);
}

TEST_CASE("setup_logging installs a default logger on stderr that honours the level") {
  temp_dir dir;
  const std::string path = dir.file("stderr.log");
  const int saved = ::dup(STDERR_FILENO);
  REQUIRE(saved >= 0);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  REQUIRE(fd >= 0);
  std::fflush(stderr);
  REQUIRE(::dup2(fd, STDERR_FILENO) == STDERR_FILENO);
  ::close(fd);

  ops::setup_logging(log_format::json, "info");
  spdlog::debug("hidden {}", 1);
  spdlog::info("shown {}", 2);
  spdlog::warn("quote \" here");
  const std::string name = spdlog::default_logger()->name();
  spdlog::default_logger()->flush();

  std::fflush(stderr);
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  ops::setup_logging(log_format::text, "info");  // back to the real stderr

  CHECK(name == "certn-archiver");
  std::ifstream in(path);
  std::vector<std::map<std::string, std::string>> records;
  for (std::string line; std::getline(in, line);) {
    const auto m = flat_json_parser(line).parse();
    REQUIRE_MESSAGE(m.has_value(), line);
    records.push_back(*m);
  }
  REQUIRE(records.size() == 2);
  CHECK(records[0].at("msg") == "shown 2");
  CHECK(records[0].at("level") == "info");
  CHECK(records[1].at("msg") == "quote \" here");
  CHECK(records[1].at("level") == "warn");
}

// ------------------------------------------------------------------------------------ notify

TEST_CASE("notifications reach the socket named by NOTIFY_SOCKET") {
  temp_dir dir;
  const std::string path = dir.file("notify.sock");
  notify_listener listener(path);
  const scoped_env env("NOTIFY_SOCKET", path.c_str());
  constexpr auto deadline = std::chrono::seconds(5);

  ops::notify_ready();
  CHECK(listener.receive(deadline) == "READY=1");
  ops::notify_status("x");
  CHECK(listener.receive(deadline) == "STATUS=x");
  ops::notify_status("draining\nREADY=1");  // a newline cannot smuggle in another assignment
  CHECK(listener.receive(deadline) == "STATUS=draining READY=1");
  ops::notify_watchdog();
  CHECK(listener.receive(deadline) == "WATCHDOG=1");
  ops::notify_stopping();
  CHECK(listener.receive(deadline) == "STOPPING=1");
  CHECK(std::getenv("NOTIFY_SOCKET") != nullptr);  // left in place for later notifications
}

TEST_CASE("notifications do nothing when NOTIFY_SOCKET is unset") {
  temp_dir dir;
  const std::string path = dir.file("notify.sock");
  notify_listener listener(path);
  const scoped_env env("NOTIFY_SOCKET", nullptr);
  ops::notify_ready();
  ops::notify_status("x");
  ops::notify_watchdog();
  ops::notify_stopping();
  // Nothing was sent anywhere; the listener stays empty (a short wait, not synchronisation).
  CHECK_FALSE(listener.receive(std::chrono::milliseconds(50)).has_value());
}

TEST_CASE("the watchdog interval is half of WATCHDOG_USEC, for this process only") {
  const std::string self = std::to_string(::getpid());
  SUBCASE("enabled for this process") {
    const scoped_env usec("WATCHDOG_USEC", "30000000");
    const scoped_env pid("WATCHDOG_PID", self.c_str());
    CHECK(ops::watchdog_ping_interval() == std::chrono::microseconds(15'000'000));
  }
  SUBCASE("enabled without WATCHDOG_PID") {
    const scoped_env usec("WATCHDOG_USEC", "1000");
    const scoped_env pid("WATCHDOG_PID", nullptr);
    CHECK(ops::watchdog_ping_interval() == std::chrono::microseconds(500));
  }
  SUBCASE("meant for another process") {
    const scoped_env usec("WATCHDOG_USEC", "30000000");
    const scoped_env pid("WATCHDOG_PID", "1");
    CHECK_FALSE(ops::watchdog_ping_interval().has_value());
  }
  SUBCASE("not requested") {
    const scoped_env usec("WATCHDOG_USEC", nullptr);
    const scoped_env pid("WATCHDOG_PID", nullptr);
    CHECK_FALSE(ops::watchdog_ping_interval().has_value());
  }
}

TEST_CASE("a manual clock stands still until advanced, and its calendar can be set apart") {
  archiver::ops::manual_clock time;
  const auto wall = time.wall_now();
  const auto steady = time.steady_now();
  CHECK(time.wall_now() == wall);
  CHECK(time.steady_now() == steady);
  time.advance(std::chrono::seconds(5));
  CHECK(time.wall_now() - wall == std::chrono::seconds(5));
  CHECK(time.steady_now() - steady == std::chrono::seconds(5));
  time.set_wall(wall - std::chrono::hours(1));
  CHECK(time.wall_now() == wall - std::chrono::hours(1));
  CHECK(time.steady_now() - steady == std::chrono::seconds(5));
  // The real clock is the machine's.
  const auto before = std::chrono::system_clock::now();
  const auto read = archiver::ops::real_clock().wall_now();
  CHECK(read >= before);
  CHECK(read - before < std::chrono::seconds(5));
}

TEST_CASE("recent_count sums the last hour's events, minute by minute") {
  using namespace std::chrono_literals;
  archiver::ops::recent_count count;
  const auto t0 = std::chrono::steady_clock::time_point{} + 24h;  // on a minute boundary
  CHECK(count.sum(t0) == 0);
  count.add(3, t0);
  count.add(2, t0 + 30s);  // the same minute
  count.add(4, t0 + 10min);
  CHECK(count.sum(t0 + 10min) == 9);
  CHECK(count.sum(t0 + 59min) == 9);
  CHECK(count.sum(t0 + 60min) == 4);  // the first minute has left the window
  CHECK(count.sum(t0 + 70min) == 0);
  // A bucket reused an hour later starts again from nothing.
  count.add(1, t0 + 60min);
  CHECK(count.sum(t0 + 60min) == 5);
  count.add(7, t0 + 120min + 5s);
  CHECK(count.sum(t0 + 120min + 5s) == 7);
}
