#include "config/config.hpp"

#include <doctest/doctest.h>
#include <stdlib.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include <toml++/toml.h>

using namespace archiver::config;
using namespace std::chrono_literals;

namespace {

const std::string example_file = ARCHIVER_SOURCE_DIR "/config/certn-archiver.example.toml";

// A fresh directory under /tmp, removed with everything in it at the end of the test.
class temp_dir {
 public:
  temp_dir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "config_test.XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::filesystem::path& path() const { return path_; }

  // Writes `content` to `name` in this directory and returns the file's path.
  std::string write(const std::string& name, const std::string& content) const {
    const std::filesystem::path file = path_ / name;
    std::ofstream out(file, std::ios::binary);
    out << content;
    REQUIRE(out.good());
    return file.string();
  }

  // Loads `toml` as a config file, with `env` as the environment.
  config load_toml(const std::string& toml, const environment& env = {}) const {
    return load(std::filesystem::path(write("config.toml", toml)), env);
  }

 private:
  std::filesystem::path path_;
};

// What a config_error thrown by `f` says: its key and its what().
struct error_text {
  std::string key;
  std::string what;
};

template <typename F>
error_text error_of(F&& f) {
  try {
    f();
  } catch (const config_error& e) {
    return {e.key(), e.what()};
  }
  FAIL("expected a config_error");
  return {};
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("config_error prefixes the key, and a file-level error is the message alone") {
  const config_error keyed("server.listen", "bad");
  CHECK(keyed.key() == "server.listen");
  CHECK(std::string(keyed.what()) == "server.listen: bad");
  const config_error file_level("", "cannot read config file");
  CHECK(file_level.key().empty());
  CHECK(std::string(file_level.what()) == "cannot read config file");
}

TEST_CASE("without a file or environment every setting has its default") {
  const config c = load(std::nullopt, {});
  CHECK(c.server.listen == "127.0.0.1:8080");
  CHECK(c.server.webhook_path == "/webhooks/certn");
  CHECK(c.server.max_body_bytes == 64 * 1024);
  CHECK(c.server.admin_listen.empty());
  CHECK(c.server.tls_cert_file.empty());
  CHECK(c.server.max_header_bytes == 16 * 1024);
  CHECK(c.server.max_uri_bytes == 8 * 1024);
  CHECK(c.server.max_connections == 1024);
  CHECK(c.server.max_requests_per_connection == 1000);
  CHECK(c.server.header_timeout == 10s);
  CHECK(c.server.body_timeout == 10s);
  CHECK(c.server.idle_timeout == 30s);
  CHECK(c.server.shutdown_timeout == 20s);
  CHECK(c.webhook.secrets.empty());
  CHECK(c.webhook.scheme == signature_scheme::auto_detect);
  CHECK(c.webhook.timestamp_tolerance == 300s);
  CHECK(c.webhook.max_challenge_bytes == 1024);
  CHECK(c.certn.base_url == "https://api.sandbox.certn.co");
  CHECK(c.certn.api_key.empty());
  CHECK(c.certn.requests_per_minute == 60);
  CHECK(c.certn.download_hosts == std::vector<std::string>{"*.amazonaws.com", "*.certn.co"});
  CHECK(c.database.url == "postgresql:///certn_archiver");
  CHECK(c.database.pool_size == 4);
  CHECK(c.database.connect_timeout == 5s);
  CHECK(c.storage.backend == "filesystem");
  CHECK(c.storage.path == "/var/lib/certn-archiver/archive");
  CHECK(c.storage.prefix.empty());
  CHECK(c.storage.s3.region == "us-east-1");
  CHECK_FALSE(c.storage.s3.path_style);
  CHECK(c.archive.on_statuses == std::vector<std::string>{"COMPLETE", "CANCELLED"});
  CHECK(c.archive.generate_report);
  CHECK(c.archive.report_language == "en-CA");
  CHECK(c.workers.concurrency == 4);
  CHECK(c.workers.max_attempts == 10);
  CHECK(c.workers.lease_seconds == 20);
  CHECK(c.log.level == "info");
  CHECK(c.log.format == log_format::text);
}

TEST_CASE("values in the file replace the defaults") {
  temp_dir dir;
  const std::string cert = dir.write("cert.pem", "cert");
  const std::string key = dir.write("key.pem", "key");
  const config c = dir.load_toml(R"(
[server]
listen = "[::1]:0"
webhook_path = "/hooks/certn"
max_body_bytes = 1048576
admin_listen = "0.0.0.0:9090"
tls_cert_file = ")" + cert + R"("
tls_key_file = ")" + key + R"("
max_header_bytes = 32768
max_uri_bytes = 4096
max_connections = 10
max_requests_per_connection = 5
header_timeout_ms = 1500
body_timeout_ms = 2500
idle_timeout_ms = 3500
shutdown_timeout_ms = 4500

[webhook]
secrets = ["one", "two"]
signature_scheme = "certn-signature"
timestamp_tolerance_seconds = 60
max_challenge_bytes = 256

[certn]
base_url = "http://127.0.0.1:9999"
api_key = "key-from-file"
requests_per_minute = 600
download_hosts = ["127.0.0.1"]

[database]
url = "postgresql://postgres@127.0.0.1:5432/x"
pool_size = 8
connect_timeout_seconds = 2

[storage]
backend = "s3"
path = "/srv/archive"
prefix = "certn/"

[storage.s3]
endpoint = "http://127.0.0.1:4570"
bucket = "archive"
region = "eu-west-1"
access_key_id = "AKID"
secret_access_key = "SECRET"
path_style = true

[archive]
on_statuses = ["COMPLETE"]
generate_report = false
report_language = "fr-CA"

[workers]
concurrency = 16
max_attempts = 3
lease_seconds = 30

[log]
level = "debug"
format = "json"
)");
  CHECK(c.server.listen == "[::1]:0");
  CHECK(c.server.webhook_path == "/hooks/certn");
  CHECK(c.server.max_body_bytes == 1048576);
  CHECK(c.server.admin_listen == "0.0.0.0:9090");
  CHECK(c.server.tls_cert_file == cert);
  CHECK(c.server.tls_key_file == key);
  CHECK(c.server.max_header_bytes == 32768);
  CHECK(c.server.max_uri_bytes == 4096);
  CHECK(c.server.max_connections == 10);
  CHECK(c.server.max_requests_per_connection == 5);
  CHECK(c.server.header_timeout == 1500ms);
  CHECK(c.server.body_timeout == 2500ms);
  CHECK(c.server.idle_timeout == 3500ms);
  CHECK(c.server.shutdown_timeout == 4500ms);
  CHECK(c.webhook.secrets == std::vector<std::string>{"one", "two"});
  CHECK(c.webhook.scheme == signature_scheme::certn_signature);
  CHECK(c.webhook.timestamp_tolerance == 60s);
  CHECK(c.webhook.max_challenge_bytes == 256);
  CHECK(c.certn.base_url == "http://127.0.0.1:9999");
  CHECK(c.certn.api_key == "key-from-file");
  CHECK(c.certn.requests_per_minute == 600);
  CHECK(c.certn.download_hosts == std::vector<std::string>{"127.0.0.1"});
  CHECK(c.database.url == "postgresql://postgres@127.0.0.1:5432/x");
  CHECK(c.database.pool_size == 8);
  CHECK(c.database.connect_timeout == 2s);
  CHECK(c.storage.backend == "s3");
  CHECK(c.storage.path == "/srv/archive");
  CHECK(c.storage.prefix == "certn/");
  CHECK(c.storage.s3.endpoint == "http://127.0.0.1:4570");
  CHECK(c.storage.s3.bucket == "archive");
  CHECK(c.storage.s3.region == "eu-west-1");
  CHECK(c.storage.s3.access_key_id == "AKID");
  CHECK(c.storage.s3.secret_access_key == "SECRET");
  CHECK(c.storage.s3.path_style);
  CHECK(c.archive.on_statuses == std::vector<std::string>{"COMPLETE"});
  CHECK_FALSE(c.archive.generate_report);
  CHECK(c.archive.report_language == "fr-CA");
  CHECK(c.workers.concurrency == 16);
  CHECK(c.workers.max_attempts == 3);
  CHECK(c.workers.lease_seconds == 30);
  CHECK(c.log.level == "debug");
  CHECK(c.log.format == log_format::json);
}

TEST_CASE("environment variables override the file") {
  temp_dir dir;
  const config c = dir.load_toml(
      R"(
[server]
listen = "127.0.0.1:1111"
header_timeout_ms = 1000
[webhook]
secrets = ["from-file"]
[storage]
backend = "s3"
[storage.s3]
bucket = "file-bucket"
path_style = false
[archive]
on_statuses = ["COMPLETE"]
[log]
level = "warn"
)",
      {
          {"CERTN_ARCHIVER_SERVER_LISTEN", "127.0.0.1:2222"},
          {"CERTN_ARCHIVER_SERVER_HEADER_TIMEOUT_MS", "2000"},
          {"CERTN_ARCHIVER_SERVER_MAX_BODY_BYTES", "1024"},
          {"CERTN_ARCHIVER_WEBHOOK_SECRETS", " a , b,,c "},
          {"CERTN_ARCHIVER_WEBHOOK_SIGNATURE_SCHEME", "x-signature-base64"},
          {"CERTN_ARCHIVER_STORAGE_S3_BUCKET", "env-bucket"},
          {"CERTN_ARCHIVER_STORAGE_S3_PATH_STYLE", "yes"},
          {"CERTN_ARCHIVER_ARCHIVE_ON_STATUSES", "COMPLETE, CANCELLED"},
          {"CERTN_ARCHIVER_ARCHIVE_GENERATE_REPORT", "0"},
          {"CERTN_ARCHIVER_DATABASE_CONNECT_TIMEOUT_SECONDS", "7"},
          {"CERTN_ARCHIVER_LOG_FORMAT", "json"},
          {"CERTN_ARCHIVER_CONFIG", "/ignored/by/load.toml"},
          {"PATH", "/usr/bin"},
      });
  CHECK(c.server.listen == "127.0.0.1:2222");
  CHECK(c.server.header_timeout == 2000ms);
  CHECK(c.server.max_body_bytes == 1024);
  CHECK(c.webhook.secrets == std::vector<std::string>{"a", "b", "c"});
  CHECK(c.webhook.scheme == signature_scheme::x_signature_base64);
  CHECK(c.storage.backend == "s3");
  CHECK(c.storage.s3.bucket == "env-bucket");
  CHECK(c.storage.s3.path_style);
  CHECK(c.archive.on_statuses == std::vector<std::string>{"COMPLETE", "CANCELLED"});
  CHECK_FALSE(c.archive.generate_report);
  CHECK(c.database.connect_timeout == 7s);
  CHECK(c.log.level == "warn");
  CHECK(c.log.format == log_format::json);
}

TEST_CASE("booleans in the environment accept true/false/1/0/yes/no") {
  const std::vector<std::pair<std::string, bool>> cases = {
      {"true", true}, {"1", true},   {"yes", true}, {"TRUE", true},
      {"false", false}, {"0", false}, {"no", false}, {"No", false},
  };
  for (const auto& [text, expected] : cases) {
    CAPTURE(text);
    const config c = load(std::nullopt, {{"CERTN_ARCHIVER_STORAGE_S3_PATH_STYLE", text}});
    CHECK(c.storage.s3.path_style == expected);
  }
}

TEST_CASE("a value of the wrong TOML type names the key and the expected type") {
  struct bad_type {
    std::string toml;
    std::string key;
    std::string expected;
  };
  const std::vector<bad_type> cases = {
      {"[server]\nlisten = 8080\n", "server.listen", "expected a string, got an integer"},
      {"[server]\nmax_body_bytes = \"64k\"\n", "server.max_body_bytes", "expected an integer"},
      {"[server]\nmax_body_bytes = -1\n", "server.max_body_bytes", "non-negative"},
      {"[server]\nheader_timeout_ms = 1.5\n", "server.header_timeout_ms",
       "expected an integer, got a floating-point number"},
      {"[workers]\nconcurrency = 3000000000\n", "workers.concurrency", "out of range"},
      {"[storage.s3]\npath_style = \"yes\"\n", "storage.s3.path_style",
       "expected a boolean, got a string"},
      {"[webhook]\nsecrets = \"one\"\n", "webhook.secrets", "expected an array of strings"},
      {"[webhook]\nsecrets = [\"one\", 2]\n", "webhook.secrets", "element 2 is an integer"},
      {"[webhook]\nsignature_scheme = \"hmac\"\n", "webhook.signature_scheme",
       "expected one of auto, x-signature-hex, x-signature-base64, certn-signature"},
      {"[log]\nformat = \"xml\"\n", "log.format", "expected one of text, json, journal"},
      {"[certn]\napi_key_file = 5\n", "certn.api_key_file", "expected a string"},
      {"server = 1\n", "server", "expected a table, got an integer"},
      {"[storage]\ns3 = \"x\"\n", "storage.s3", "expected a table, got a string"},
  };
  temp_dir dir;
  for (const bad_type& c : cases) {
    CAPTURE(c.toml);
    const error_text e = error_of([&] { dir.load_toml(c.toml); });
    CHECK(e.key == c.key);
    CHECK(contains(e.what, c.expected));
  }
}

TEST_CASE("an environment value that does not parse names the key and the variable") {
  struct bad_env {
    std::string variable;
    std::string value;
    std::string key;
    std::string expected;
  };
  const std::vector<bad_env> cases = {
      {"CERTN_ARCHIVER_SERVER_MAX_BODY_BYTES", "12abc", "server.max_body_bytes",
       "expected an integer"},
      {"CERTN_ARCHIVER_SERVER_MAX_BODY_BYTES", " 12", "server.max_body_bytes",
       "expected an integer"},
      {"CERTN_ARCHIVER_SERVER_MAX_BODY_BYTES", "", "server.max_body_bytes", "expected an integer"},
      {"CERTN_ARCHIVER_SERVER_MAX_BODY_BYTES", "-5", "server.max_body_bytes", "non-negative"},
      {"CERTN_ARCHIVER_SERVER_MAX_BODY_BYTES", "99999999999999999999", "server.max_body_bytes",
       "out of range"},
      {"CERTN_ARCHIVER_WORKERS_CONCURRENCY", "3000000000", "workers.concurrency", "out of range"},
      {"CERTN_ARCHIVER_STORAGE_S3_PATH_STYLE", "maybe", "storage.s3.path_style",
       "expected true/false"},
      {"CERTN_ARCHIVER_LOG_FORMAT", "xml", "log.format", "expected one of text, json, journal"},
      {"CERTN_ARCHIVER_DATABASE_URL", "", "database.url", "empty: set database.url"},
      {"CERTN_ARCHIVER_CERTN_API_KEY_CREATED", "2026-02-30", "certn.api_key_created",
       "expected the key's creation date as YYYY-MM-DD, got \"2026-02-30\""},
  };
  for (const bad_env& c : cases) {
    CAPTURE(c.variable);
    CAPTURE(c.value);
    const error_text e = error_of([&] { load(std::nullopt, {{c.variable, c.value}}); });
    CHECK(e.key == c.key);
    CHECK(contains(e.what, c.expected));
  }
  const error_text e = error_of(
      [] { load(std::nullopt, {{"CERTN_ARCHIVER_SERVER_MAX_BODY_BYTES", "12abc"}}); });
  CHECK(contains(e.what, "CERTN_ARCHIVER_SERVER_MAX_BODY_BYTES"));
}

TEST_CASE("an unknown key in the file is an error naming the dotted key") {
  temp_dir dir;
  SUBCASE("in a section") {
    const error_text e = error_of([&] { dir.load_toml("[server]\nlisen = \"x:1\"\n"); });
    CHECK(e.key == "server.lisen");
    CHECK(e.what == "server.lisen: unknown key");
  }
  SUBCASE("in the s3 sub-table") {
    const error_text e = error_of([&] { dir.load_toml("[storage.s3]\nbucky = \"b\"\n"); });
    CHECK(e.key == "storage.s3.bucky");
  }
  SUBCASE("a _file variant of a key that is not a secret") {
    const error_text e = error_of([&] { dir.load_toml("[server]\nlisten_file = \"/x\"\n"); });
    CHECK(e.key == "server.listen_file");
  }
  SUBCASE("at the top level") {
    const error_text e = error_of([&] { dir.load_toml("listen = \"127.0.0.1:1\"\n"); });
    CHECK(e.key == "listen");
    CHECK(contains(e.what, "unknown key"));
  }
}

TEST_CASE("an unknown section is an error naming the section") {
  temp_dir dir;
  const error_text e = error_of([&] { dir.load_toml("[sever]\nlisten = \"127.0.0.1:1\"\n"); });
  CHECK(e.key == "sever");
  CHECK(e.what == "sever: unknown section");
}

TEST_CASE("an unknown CERTN_ARCHIVER_ variable is an error naming the variable") {
  SUBCASE("a misspelt key") {
    const error_text e =
        error_of([] { load(std::nullopt, {{"CERTN_ARCHIVER_SERVER_LISTN", "127.0.0.1:1"}}); });
    CHECK(contains(e.what, "unknown environment variable CERTN_ARCHIVER_SERVER_LISTN"));
  }
  SUBCASE("a _FILE variant of a key that is not a secret") {
    const error_text e =
        error_of([] { load(std::nullopt, {{"CERTN_ARCHIVER_SERVER_LISTEN_FILE", "/x"}}); });
    CHECK(contains(e.what, "CERTN_ARCHIVER_SERVER_LISTEN_FILE"));
  }
  SUBCASE("CERTN_ARCHIVER_CONFIG and unrelated variables are allowed") {
    CHECK_NOTHROW(load(std::nullopt, {{"CERTN_ARCHIVER_CONFIG", "/etc/x.toml"},
                                      {"CERTN_ARCHIVERX", "1"},
                                      {"HOME", "/root"}}));
  }
}

TEST_CASE("every secret can be read from a _file, in the file or the environment") {
  temp_dir dir;
  const std::string secrets = dir.write("secrets", "first\r\n\n  \nsecond\n");
  const std::string api_key = dir.write("api_key", "api-key-value\n\n");
  const std::string url = dir.write("url", "postgresql://u:pw@db/x\n");
  const std::string akid = dir.write("akid", "AKIDVALUE");
  const std::string secret = dir.write("secret", "SECRETVALUE \t\n");

  SUBCASE("from the file") {
    const config c = dir.load_toml("[webhook]\nsecrets_file = \"" + secrets +
                                   "\"\n[certn]\napi_key_file = \"" + api_key +
                                   "\"\n[database]\nurl_file = \"" + url +
                                   "\"\n[storage.s3]\naccess_key_id_file = \"" + akid +
                                   "\"\nsecret_access_key_file = \"" + secret + "\"\n");
    CHECK(c.webhook.secrets == std::vector<std::string>{"first", "second"});
    CHECK(c.certn.api_key == "api-key-value");
    CHECK(c.database.url == "postgresql://u:pw@db/x");
    CHECK(c.storage.s3.access_key_id == "AKIDVALUE");
    CHECK(c.storage.s3.secret_access_key == "SECRETVALUE");
  }
  SUBCASE("from the environment") {
    const config c = load(std::nullopt, {
                                            {"CERTN_ARCHIVER_WEBHOOK_SECRETS_FILE", secrets},
                                            {"CERTN_ARCHIVER_CERTN_API_KEY_FILE", api_key},
                                            {"CERTN_ARCHIVER_DATABASE_URL_FILE", url},
                                            {"CERTN_ARCHIVER_STORAGE_S3_ACCESS_KEY_ID_FILE", akid},
                                            {"CERTN_ARCHIVER_STORAGE_S3_SECRET_ACCESS_KEY_FILE",
                                             secret},
                                        });
    CHECK(c.webhook.secrets == std::vector<std::string>{"first", "second"});
    CHECK(c.certn.api_key == "api-key-value");
    CHECK(c.database.url == "postgresql://u:pw@db/x");
    CHECK(c.storage.s3.access_key_id == "AKIDVALUE");
    CHECK(c.storage.s3.secret_access_key == "SECRETVALUE");
  }
  SUBCASE("the environment's _FILE wins over the file's value, and the reverse") {
    const config c = dir.load_toml(
        "[certn]\napi_key = \"file-key\"\n[database]\nurl_file = \"" + url + "\"\n",
        {{"CERTN_ARCHIVER_CERTN_API_KEY_FILE", api_key},
         {"CERTN_ARCHIVER_DATABASE_URL", "postgresql:///from-env"}});
    CHECK(c.certn.api_key == "api-key-value");
    CHECK(c.database.url == "postgresql:///from-env");
  }
}

TEST_CASE("setting a secret and its _file together is an error") {
  temp_dir dir;
  const std::string api_key = dir.write("api_key", "api-key-value\n");
  SUBCASE("in the file") {
    const error_text e = error_of([&] {
      dir.load_toml("[certn]\napi_key = \"inline\"\napi_key_file = \"" + api_key + "\"\n");
    });
    CHECK(e.key == "certn.api_key");
    CHECK(contains(e.what, "certn.api_key_file"));
  }
  SUBCASE("in the environment") {
    const error_text e = error_of([&] {
      load(std::nullopt, {{"CERTN_ARCHIVER_STORAGE_S3_SECRET_ACCESS_KEY", "inline"},
                          {"CERTN_ARCHIVER_STORAGE_S3_SECRET_ACCESS_KEY_FILE", api_key}});
    });
    CHECK(e.key == "storage.s3.secret_access_key");
    CHECK(contains(e.what, "CERTN_ARCHIVER_STORAGE_S3_SECRET_ACCESS_KEY_FILE"));
  }
}

TEST_CASE("${CREDENTIALS_DIRECTORY} in a _file path is expanded from the environment") {
  temp_dir dir;
  dir.write("webhook-secrets", "s3cr3t\n");
  SUBCASE("set") {
    const config c = dir.load_toml(
        "[webhook]\nsecrets_file = \"${CREDENTIALS_DIRECTORY}/webhook-secrets\"\n",
        {{"CREDENTIALS_DIRECTORY", dir.path().string()}});
    CHECK(c.webhook.secrets == std::vector<std::string>{"s3cr3t"});
  }
  SUBCASE("unset") {
    const error_text e = error_of([&] {
      load(std::nullopt, {{"CERTN_ARCHIVER_WEBHOOK_SECRETS_FILE",
                           "${CREDENTIALS_DIRECTORY}/webhook-secrets"}});
    });
    CHECK(e.key == "webhook.secrets_file");
    CHECK(contains(e.what, "CREDENTIALS_DIRECTORY"));
  }
}

TEST_CASE("an unreadable secret file names the key and the path") {
  temp_dir dir;
  const std::string missing = (dir.path() / "missing").string();
  SUBCASE("missing") {
    const error_text e = error_of(
        [&] { load(std::nullopt, {{"CERTN_ARCHIVER_DATABASE_URL_FILE", missing}}); });
    CHECK(e.key == "database.url_file");
    CHECK(contains(e.what, missing));
  }
  SUBCASE("a directory") {
    const error_text e = error_of([&] {
      load(std::nullopt, {{"CERTN_ARCHIVER_DATABASE_URL_FILE", dir.path().string()}});
    });
    CHECK(e.key == "database.url_file");
    CHECK(contains(e.what, "directory"));
  }
  SUBCASE("an empty path") {
    const error_text e =
        error_of([&] { load(std::nullopt, {{"CERTN_ARCHIVER_DATABASE_URL_FILE", ""}}); });
    CHECK(e.key == "database.url_file");
  }
}

TEST_CASE("error messages never contain a secret value") {
  temp_dir dir;
  const std::string secret = "hunter2-very-secret";
  const std::string secret_file = dir.write("secret", secret + "\n");
  const std::vector<std::pair<std::string, environment>> cases = {
      {"[certn]\napi_key = \"" + secret + "\"\napi_key_file = \"" + secret_file + "\"\n", {}},
      {"", {{"CERTN_ARCHIVER_CERTN_API_KEY", secret},
            {"CERTN_ARCHIVER_CERTN_API_KEY_FILE", secret_file}}},
      {"[webhook]\nsecrets = [\"" + secret + "\", \"\"]\n", {}},
      {"[database]\nurl = \"" + secret + "\"\n[workers]\nconcurrency = 0\n", {}},
      {"[storage.s3]\nsecret_access_key = \"" + secret + "\"\nbogus = 1\n", {}},
      {"[storage.s3]\nsecret_access_key = \"" + secret + "\n", {}},  // syntax error
      {"", {{"CERTN_ARCHIVER_WEBHOOK_SECRETS", secret}, {"CERTN_ARCHIVER_BOGUS", "1"}}},
      {"[server]\ntls_cert_file = \"/nonexistent\"\n",
       {{"CERTN_ARCHIVER_DATABASE_URL", secret}}},
  };
  for (const auto& [toml, env] : cases) {
    CAPTURE(toml);
    const error_text e = error_of([&] { dir.load_toml(toml, env); });
    CHECK_FALSE(contains(e.what, secret));
  }
}

TEST_CASE("validation errors name the key") {
  struct bad_value {
    std::string variable;  // without the CERTN_ARCHIVER_ prefix
    std::string value;
    std::string key;
  };
  const std::vector<bad_value> cases = {
      {"SERVER_LISTEN", "8080", "server.listen"},
      {"SERVER_LISTEN", ":8080", "server.listen"},
      {"SERVER_LISTEN", "localhost:", "server.listen"},
      {"SERVER_LISTEN", "localhost:65536", "server.listen"},
      {"SERVER_LISTEN", "localhost:http", "server.listen"},
      {"SERVER_LISTEN", "::1:8080", "server.listen"},
      {"SERVER_LISTEN", "[::1:8080", "server.listen"},
      {"SERVER_ADMIN_LISTEN", "nope", "server.admin_listen"},
      {"SERVER_WEBHOOK_PATH", "webhooks", "server.webhook_path"},
      {"SERVER_WEBHOOK_PATH", "/hooks?x=1", "server.webhook_path"},
      {"SERVER_WEBHOOK_PATH", "/hooks here", "server.webhook_path"},
      {"SERVER_MAX_BODY_BYTES", "0", "server.max_body_bytes"},
      {"SERVER_MAX_BODY_BYTES", "16777217", "server.max_body_bytes"},
      {"SERVER_MAX_HEADER_BYTES", "1023", "server.max_header_bytes"},
      {"SERVER_MAX_HEADER_BYTES", "1048577", "server.max_header_bytes"},
      {"SERVER_MAX_URI_BYTES", "255", "server.max_uri_bytes"},
      {"SERVER_MAX_URI_BYTES", "16385", "server.max_uri_bytes"},  // above max_header_bytes
      {"SERVER_MAX_CONNECTIONS", "0", "server.max_connections"},
      {"SERVER_MAX_REQUESTS_PER_CONNECTION", "0", "server.max_requests_per_connection"},
      {"SERVER_HEADER_TIMEOUT_MS", "0", "server.header_timeout_ms"},
      {"SERVER_BODY_TIMEOUT_MS", "-1", "server.body_timeout_ms"},
      {"SERVER_IDLE_TIMEOUT_MS", "0", "server.idle_timeout_ms"},
      {"SERVER_SHUTDOWN_TIMEOUT_MS", "0", "server.shutdown_timeout_ms"},
      {"SERVER_TLS_CERT_FILE", "/nonexistent/cert.pem", "server.tls_key_file"},
      {"SERVER_TLS_KEY_FILE", "/nonexistent/key.pem", "server.tls_cert_file"},
      {"WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS", "0", "webhook.timestamp_tolerance_seconds"},
      {"WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS", "86401", "webhook.timestamp_tolerance_seconds"},
      {"WEBHOOK_MAX_CHALLENGE_BYTES", "0", "webhook.max_challenge_bytes"},
      {"WEBHOOK_MAX_CHALLENGE_BYTES", "65537", "webhook.max_challenge_bytes"},
      {"CERTN_BASE_URL", "api.certn.co", "certn.base_url"},
      {"CERTN_BASE_URL", "ftp://api.certn.co", "certn.base_url"},
      {"CERTN_BASE_URL", "https://", "certn.base_url"},
      {"CERTN_REQUESTS_PER_MINUTE", "0", "certn.requests_per_minute"},
      {"CERTN_REQUESTS_PER_MINUTE", "100001", "certn.requests_per_minute"},
      {"DATABASE_POOL_SIZE", "0", "database.pool_size"},
      {"DATABASE_POOL_SIZE", "257", "database.pool_size"},
      {"DATABASE_CONNECT_TIMEOUT_SECONDS", "0", "database.connect_timeout_seconds"},
      {"DATABASE_CONNECT_TIMEOUT_SECONDS", "301", "database.connect_timeout_seconds"},
      {"STORAGE_BACKEND", "gcs", "storage.backend"},
      {"STORAGE_BACKEND", "s3", "storage.s3.bucket"},
      {"STORAGE_PATH", "", "storage.path"},
      {"ARCHIVE_ON_STATUSES", "COMPLETE,complete", "archive.on_statuses"},
      {"ARCHIVE_ON_STATUSES", "COMPLETE-D", "archive.on_statuses"},
      {"WORKERS_CONCURRENCY", "0", "workers.concurrency"},
      {"WORKERS_CONCURRENCY", "1025", "workers.concurrency"},
      {"WORKERS_MAX_ATTEMPTS", "0", "workers.max_attempts"},
      {"WORKERS_MAX_ATTEMPTS", "1001", "workers.max_attempts"},
      {"WORKERS_LEASE_SECONDS", "4", "workers.lease_seconds"},
      {"WORKERS_LEASE_SECONDS", "3601", "workers.lease_seconds"},
      {"LOG_LEVEL", "verbose", "log.level"},
  };
  for (const bad_value& c : cases) {
    CAPTURE(c.variable);
    CAPTURE(c.value);
    const error_text e =
        error_of([&] { load(std::nullopt, {{"CERTN_ARCHIVER_" + c.variable, c.value}}); });
    CHECK(e.key == c.key);
    CHECK(e.what.starts_with(c.key + ": "));
  }
}

TEST_CASE("validation checks what only the file can express") {
  temp_dir dir;
  SUBCASE("an empty webhook secret") {
    const error_text e = error_of([&] { dir.load_toml("[webhook]\nsecrets = [\"a\", \"\"]\n"); });
    CHECK(e.key == "webhook.secrets");
  }
  SUBCASE("an empty status") {
    const error_text e = error_of([&] { dir.load_toml("[archive]\non_statuses = [\"\"]\n"); });
    CHECK(e.key == "archive.on_statuses");
  }
  SUBCASE("an s3 endpoint that is not a URL") {
    const error_text e = error_of([&] {
      dir.load_toml("[storage]\nbackend = \"s3\"\n[storage.s3]\nbucket = \"b\"\nendpoint = "
                    "\"127.0.0.1:4570\"\n");
    });
    CHECK(e.key == "storage.s3.endpoint");
  }
  SUBCASE("an unknown s3 encryption, and a KMS key without aws:kms") {
    const std::string s3 = "[storage]\nbackend = \"s3\"\n[storage.s3]\nbucket = \"b\"\n";
    const error_text e = error_of([&] { dir.load_toml(s3 + "sse = \"aes256\"\n"); });
    CHECK(e.key == "storage.s3.sse");
    CHECK(e.what == "storage.s3.sse: \"aes256\" is not one of \"\", \"AES256\", \"aws:kms\"");
    const error_text k =
        error_of([&] { dir.load_toml(s3 + "sse = \"AES256\"\nsse_kms_key_id = \"key-1\"\n"); });
    CHECK(k.key == "storage.s3.sse_kms_key_id");
    CHECK_NOTHROW(dir.load_toml(s3 + "sse = \"aws:kms\"\nsse_kms_key_id = \"key-1\"\n"));
  }
  SUBCASE("an unknown Object Lock mode, and a lock of no days") {
    const std::string s3 = "[storage]\nbackend = \"s3\"\n[storage.s3]\nbucket = \"b\"\n";
    const error_text e =
        error_of([&] { dir.load_toml(s3 + "object_lock_mode = \"governance\"\n"); });
    CHECK(e.what ==
          "storage.s3.object_lock_mode: \"governance\" is not one of \"\", "
          "\"GOVERNANCE\", \"COMPLIANCE\"");
    const error_text d = error_of([&] { dir.load_toml(s3 + "object_lock_days = 0\n"); });
    CHECK(d.key == "storage.s3.object_lock_days");
    const config loaded =
        dir.load_toml(s3 + "object_lock_mode = \"COMPLIANCE\"\nobject_lock_days = 30\n");
    CHECK(loaded.storage.s3.object_lock_mode == "COMPLIANCE");
    CHECK(loaded.storage.s3.object_lock_days == 30);
  }
  SUBCASE("a TLS certificate that is a directory") {
    const std::string key = dir.write("key.pem", "key");
    const error_text e = error_of([&] {
      dir.load_toml("[server]\ntls_cert_file = \"" + dir.path().string() +
                    "\"\ntls_key_file = \"" + key + "\"\n");
    });
    CHECK(e.key == "server.tls_cert_file");
  }
}

TEST_CASE("edge values at the limits are accepted") {
  const config c = load(std::nullopt, {
                                          {"CERTN_ARCHIVER_SERVER_LISTEN", "[::]:0"},
                                          {"CERTN_ARCHIVER_SERVER_ADMIN_LISTEN", "localhost:65535"},
                                          {"CERTN_ARCHIVER_SERVER_MAX_BODY_BYTES", "16777216"},
                                          {"CERTN_ARCHIVER_SERVER_MAX_HEADER_BYTES", "1024"},
                                          {"CERTN_ARCHIVER_SERVER_MAX_URI_BYTES", "1024"},
                                          {"CERTN_ARCHIVER_WORKERS_LEASE_SECONDS", "5"},
                                          {"CERTN_ARCHIVER_ARCHIVE_ON_STATUSES", ""},
                                          {"CERTN_ARCHIVER_STORAGE_BACKEND", "s3"},
                                          {"CERTN_ARCHIVER_STORAGE_S3_BUCKET", "b"},
                                      });
  CHECK(c.server.max_uri_bytes == 1024);
  CHECK(c.archive.on_statuses.empty());
  CHECK(c.storage.s3.endpoint.empty());
}

TEST_CASE("a TOML syntax error names the file, line and column") {
  temp_dir dir;
  const std::string file = dir.write("broken.toml", "[server]\nlisten = \"127.0.0.1:1\"\nbad = \n");
  const error_text e = error_of([&] { load(std::filesystem::path(file), {}); });
  CHECK(e.key.empty());
  CHECK(contains(e.what, file + ":3:"));
}

TEST_CASE("a missing config file is an error naming the file") {
  temp_dir dir;
  const std::string file = (dir.path() / "absent.toml").string();
  const error_text e = error_of([&] { load(std::filesystem::path(file), {}); });
  CHECK(e.key.empty());
  CHECK(contains(e.what, file));
  CHECK(contains(e.what, "No such file"));
}

TEST_CASE("the example configuration loads and matches the defaults") {
  const config example = load(std::filesystem::path(example_file), {});
  const config defaults = load(std::nullopt, {});
  CHECK(example.server.listen == defaults.server.listen);
  CHECK(example.server.max_body_bytes == defaults.server.max_body_bytes);
  CHECK(example.server.shutdown_timeout == defaults.server.shutdown_timeout);
  CHECK(example.webhook.scheme == defaults.webhook.scheme);
  CHECK(example.certn.download_hosts == defaults.certn.download_hosts);
  CHECK(example.database.url == defaults.database.url);
  CHECK(example.storage.path == "/var/lib/certn-archiver/archive");
  CHECK(example.archive.on_statuses == defaults.archive.on_statuses);
  CHECK(example.workers.lease_seconds == defaults.workers.lease_seconds);
  CHECK(example.log.format == defaults.log.format);
}

TEST_CASE("the example shows every key, and each has an environment variable") {
  const auto root = toml::parse_file(example_file);
  std::string text;
  {
    std::ifstream in(example_file);
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const std::vector<std::string> secrets = {"webhook.secrets", "certn.api_key", "database.url",
                                            "storage.s3.access_key_id",
                                            "storage.s3.secret_access_key"};
  const std::vector<std::string> keys = {
      "server.listen", "server.webhook_path", "server.max_body_bytes", "server.admin_listen",
      "server.tls_cert_file", "server.tls_key_file", "server.max_header_bytes",
      "server.max_uri_bytes", "server.max_connections", "server.max_requests_per_connection",
      "server.header_timeout_ms", "server.body_timeout_ms", "server.idle_timeout_ms",
      "server.shutdown_timeout_ms", "webhook.signature_scheme",
      "webhook.timestamp_tolerance_seconds", "webhook.max_challenge_bytes", "certn.base_url",
      "certn.requests_per_minute", "certn.download_hosts", "certn.allow_plain_http",
      "certn.allow_special_addresses", "certn.ca_file", "database.pool_size",
      "database.connect_timeout_seconds", "storage.backend", "storage.path", "storage.prefix",
      "storage.s3.endpoint", "storage.s3.bucket", "storage.s3.region", "storage.s3.path_style",
      "archive.on_statuses", "archive.generate_report", "archive.report_language",
      "workers.concurrency", "workers.max_attempts", "workers.lease_seconds", "log.level",
      "log.format"};

  // Each value, as its environment variable, must be accepted: this proves the variable exists.
  environment env;
  for (const std::string& key : keys) {
    CAPTURE(key);
    const toml::node* node = root.at_path(key).node();
    REQUIRE(node != nullptr);
    std::string value;
    if (const auto* array = node->as_array()) {
      for (const auto& item : *array) {
        value += (value.empty() ? "" : ",") + std::string(*item.value<std::string>());
      }
    } else if (const auto* b = node->as_boolean()) {
      value = b->get() ? "true" : "false";
    } else if (const auto* i = node->as_integer()) {
      value = std::to_string(i->get());
    } else {
      value = *node->value<std::string>();
    }
    std::string variable = "CERTN_ARCHIVER_" + key;
    for (char& ch : variable) {
      ch = ch == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    }
    env[variable] = value;
  }
  CHECK_NOTHROW(load(std::nullopt, env));

  // Secrets are shown with their _file alternative (commented out, as only one may be set).
  for (const std::string& key : secrets) {
    CAPTURE(key);
    const std::string name = key.substr(key.rfind('.') + 1);
    CHECK(contains(text, "\n" + name + " = ") != contains(text, "# " + name + " = "));
    CHECK(contains(text, "# " + name + "_file = \"/run/certn-archiver/"));
  }
}

TEST_CASE("serve requires at least one webhook secret") {
  config c = load(std::nullopt, {});
  const error_text e = error_of([&] { require_serve_settings(c); });
  CHECK(e.key == "webhook.secrets");
  CHECK(e.what ==
        "webhook.secrets: at least one secret is required to serve (set webhook.secrets, "
        "webhook.secrets_file or CERTN_ARCHIVER_WEBHOOK_SECRETS)");
  c = load(std::nullopt, {{"CERTN_ARCHIVER_WEBHOOK_SECRETS", "s"}});
  CHECK_NOTHROW(require_serve_settings(c));
}

TEST_CASE("parse_host_port splits host and port, with IPv6 in brackets") {
  const host_port v4 = parse_host_port("k", "127.0.0.1:8080");
  CHECK(v4.host == "127.0.0.1");
  CHECK(v4.port == 8080);
  const host_port v6 = parse_host_port("k", "[::1]:0");
  CHECK(v6.host == "::1");
  CHECK(v6.port == 0);
  const host_port name = parse_host_port("k", "localhost:65535");
  CHECK(name.host == "localhost");
  CHECK(name.port == 65535);
  for (const std::string bad : {"", "host", "host:", ":80", "[]:80", "[::1]80", "[::1]:",
                                "::1:80", "host:+80", "host:-1", "host:123456", "a b:80"}) {
    CAPTURE(bad);
    const error_text e = error_of([&] { parse_host_port("server.listen", bad); });
    CHECK(e.key == "server.listen");
  }
}

TEST_CASE("signature schemes print as their TOML spelling") {
  CHECK(std::string(to_string(signature_scheme::auto_detect)) == "auto");
  CHECK(std::string(to_string(signature_scheme::x_signature_hex)) == "x-signature-hex");
  CHECK(std::string(to_string(signature_scheme::x_signature_base64)) == "x-signature-base64");
  CHECK(std::string(to_string(signature_scheme::certn_signature)) == "certn-signature");
  for (const signature_scheme s :
       {signature_scheme::auto_detect, signature_scheme::x_signature_hex,
        signature_scheme::x_signature_base64, signature_scheme::certn_signature}) {
    const config c = load(std::nullopt, {{"CERTN_ARCHIVER_WEBHOOK_SIGNATURE_SCHEME", to_string(s)}});
    CHECK(c.webhook.scheme == s);
  }
}

TEST_CASE("webhook.signature_scheme is auto unless set, and \"auto\" can be set explicitly") {
  temp_dir dir;
  CHECK(load(std::nullopt, {}).webhook.scheme == signature_scheme::auto_detect);
  CHECK(dir.load_toml("[webhook]\nsignature_scheme = \"auto\"\n").webhook.scheme ==
        signature_scheme::auto_detect);
  CHECK(dir.load_toml("[webhook]\nsignature_scheme = \"x-signature-hex\"\n").webhook.scheme ==
        signature_scheme::x_signature_hex);
  // Spellings are exact, as for the other schemes.
  for (const std::string bad : {"AUTO", "Auto", "auto-detect", "auto_detect", " auto"}) {
    CAPTURE(bad);
    const error_text e =
        error_of([&] { load(std::nullopt, {{"CERTN_ARCHIVER_WEBHOOK_SIGNATURE_SCHEME", bad}}); });
    CHECK(e.key == "webhook.signature_scheme");
    CHECK(contains(e.what, "expected one of auto, "));
  }
}

TEST_CASE("from_environ reads the process environment") {
  REQUIRE(::setenv("CONFIG_TEST_VARIABLE", "a=b", 1) == 0);
  const environment env = from_environ();
  ::unsetenv("CONFIG_TEST_VARIABLE");
  const auto it = env.find("CONFIG_TEST_VARIABLE");
  REQUIRE(it != env.end());
  CHECK(it->second == "a=b");
}

// Found by tests/fuzz (config target); the inputs are in tests/fuzz/regressions/config/.
TEST_CASE("an error stays on one line when toml++ or a quoted key brings a newline") {
  const temp_dir dir;
  const error_text syntax = error_of([&] { dir.load_toml("[log]\nlevel = t\n"); });
  CHECK(syntax.what.find('\n') == std::string::npos);
  CHECK(contains(syntax.what, "\\x0a"));

  const error_text key = error_of([&] { dir.load_toml("[server]\n\"a\\nb\" = 1\n"); });
  CHECK(key.key == "server.a\\x0ab");
  CHECK(key.what == "server.a\\x0ab: unknown key");
}

TEST_CASE("changed_keys names the keys whose values differ, secrets by name only") {
  const config before = load(std::nullopt, {{"CERTN_ARCHIVER_WEBHOOK_SECRETS", "a"}});
  CHECK(changed_keys(before, before).empty());
  const config after = load(std::nullopt, {{"CERTN_ARCHIVER_WEBHOOK_SECRETS", "a,b"},
                                           {"CERTN_ARCHIVER_SERVER_LISTEN", "127.0.0.1:9"},
                                           {"CERTN_ARCHIVER_CERTN_API_KEY", "k"},
                                           {"CERTN_ARCHIVER_WORKERS_LEASE_SECONDS", "77"}});
  CHECK(changed_keys(before, after) == std::vector<std::string>{"server.listen", "webhook.secrets",
                                                                "certn.api_key",
                                                                "workers.lease_seconds"});
}
