#include "config/config.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <limits>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

#include <toml++/toml.h>

extern char** environ;

namespace archiver::config {

namespace {

// Control characters as \xNN: keys may be quoted TOML keys and toml++ quotes the offending
// character of a syntax error, either of which may be a newline, and what() must stay one line.
std::string printable(std::string_view text) {
  std::string out;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[byte >> 4];
      out += hex[byte & 0xf];
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

config_error::config_error(std::string key, const std::string& message)
    : std::runtime_error(printable(key.empty() ? message : key + ": " + message)),
      key_(printable(std::move(key))) {}

namespace {

constexpr std::string_view env_prefix = "CERTN_ARCHIVER_";
constexpr std::string_view credentials_placeholder = "${CREDENTIALS_DIRECTORY}";
constexpr std::size_t max_config_file_bytes = 1024 * 1024;
constexpr std::size_t max_secret_file_bytes = 64 * 1024;
constexpr std::int64_t kib = 1024;
constexpr std::int64_t mib = 1024 * 1024;
// Generous, but keeps deadlines far away from time_point overflow.
constexpr std::int64_t max_timeout_ms = 24 * 60 * 60 * 1000;

constexpr std::pair<signature_scheme, std::string_view> scheme_names[] = {
    {signature_scheme::auto_detect, "auto"},
    {signature_scheme::x_signature_hex, "x-signature-hex"},
    {signature_scheme::x_signature_base64, "x-signature-base64"},
    {signature_scheme::certn_signature, "certn-signature"},
};

constexpr std::pair<log_format, std::string_view> format_names[] = {
    {log_format::text, "text"},
    {log_format::json, "json"},
};

constexpr std::string_view log_levels[] = {"trace", "debug", "info",    "warn",
                                           "error", "critical", "off"};

// Where one key's value lands in the config being built.
using target = std::variant<std::string*, std::size_t*, int*, bool*, std::vector<std::string>*,
                            std::chrono::milliseconds*, std::chrono::seconds*, signature_scheme*,
                            log_format*>;

// One settable key: its TOML section and name, and the member it sets. Secrets may also be
// given as "<name>_file" and must never appear in an error message.
struct field {
  std::string section;  // "server", "storage.s3"
  std::string name;     // "listen", "header_timeout_ms"
  target where;
  bool secret = false;

  std::string key() const { return section + "." + name; }
};

// The whole key table, pointing into `c`; the only list of keys there is.
std::vector<field> fields_of(config& c) {
  server_settings& sv = c.server;
  webhook_settings& wh = c.webhook;
  certn_settings& cn = c.certn;
  database_settings& db = c.database;
  storage_settings& st = c.storage;
  archive_settings& ar = c.archive;
  workers_settings& wk = c.workers;
  log_settings& lg = c.log;
  return {
      {"server", "listen", &sv.listen},
      {"server", "webhook_path", &sv.webhook_path},
      {"server", "max_body_bytes", &sv.max_body_bytes},
      {"server", "admin_listen", &sv.admin_listen},
      {"server", "tls_cert_file", &sv.tls_cert_file},
      {"server", "tls_key_file", &sv.tls_key_file},
      {"server", "max_header_bytes", &sv.max_header_bytes},
      {"server", "max_uri_bytes", &sv.max_uri_bytes},
      {"server", "max_connections", &sv.max_connections},
      {"server", "max_requests_per_connection", &sv.max_requests_per_connection},
      {"server", "header_timeout_ms", &sv.header_timeout},
      {"server", "body_timeout_ms", &sv.body_timeout},
      {"server", "idle_timeout_ms", &sv.idle_timeout},
      {"server", "shutdown_timeout_ms", &sv.shutdown_timeout},
      {"webhook", "secrets", &wh.secrets, true},
      {"webhook", "signature_scheme", &wh.scheme},
      {"webhook", "timestamp_tolerance_seconds", &wh.timestamp_tolerance},
      {"webhook", "max_challenge_bytes", &wh.max_challenge_bytes},
      {"certn", "base_url", &cn.base_url},
      {"certn", "api_key", &cn.api_key, true},
      {"certn", "requests_per_minute", &cn.requests_per_minute},
      {"certn", "download_hosts", &cn.download_hosts},
      {"certn", "allow_plain_http", &cn.allow_plain_http},
      {"certn", "allow_special_addresses", &cn.allow_special_addresses},
      {"certn", "ca_file", &cn.ca_file},
      {"database", "url", &db.url, true},
      {"database", "pool_size", &db.pool_size},
      {"database", "connect_timeout_seconds", &db.connect_timeout},
      {"storage", "backend", &st.backend},
      {"storage", "path", &st.path},
      {"storage", "prefix", &st.prefix},
      {"storage", "staging_path", &st.staging_path},
      {"storage.s3", "endpoint", &st.s3.endpoint},
      {"storage.s3", "bucket", &st.s3.bucket},
      {"storage.s3", "region", &st.s3.region},
      {"storage.s3", "access_key_id", &st.s3.access_key_id, true},
      {"storage.s3", "secret_access_key", &st.s3.secret_access_key, true},
      {"storage.s3", "path_style", &st.s3.path_style},
      {"storage.s3", "multipart_threshold_bytes", &st.s3.multipart_threshold_bytes},
      {"storage.s3", "part_size_bytes", &st.s3.part_size_bytes},
      {"storage.s3", "max_parallel_parts", &st.s3.max_parallel_parts},
      {"storage.s3", "timeout_ms", &st.s3.timeout},
      {"storage.s3", "ca_file", &st.s3.ca_file},
      {"archive", "on_statuses", &ar.on_statuses},
      {"archive", "generate_report", &ar.generate_report},
      {"archive", "report_language", &ar.report_language},
      {"workers", "concurrency", &wk.concurrency},
      {"workers", "max_attempts", &wk.max_attempts},
      {"workers", "lease_seconds", &wk.lease_seconds},
      {"workers", "poll_interval_ms", &wk.poll_interval},
      {"workers", "claim_batch", &wk.claim_batch},
      {"workers", "backoff_base_seconds", &wk.backoff_base},
      {"workers", "backoff_max_seconds", &wk.backoff_max},
      {"workers", "drain_timeout_seconds", &wk.drain_timeout},
      {"workers", "reconcile_interval_seconds", &wk.reconcile_interval},
      {"workers", "report_poll_delay_seconds", &wk.report_poll_delay},
      {"workers", "keep_finished_days", &wk.keep_finished_days},
      {"log", "level", &lg.level},
      {"log", "format", &lg.format},
  };
}

field* find_field(std::vector<field>& fields, std::string_view section, std::string_view name) {
  for (field& f : fields) {
    if (f.section == section && f.name == name) {
      return &f;
    }
  }
  return nullptr;
}

// How one source (the file, or the environment) gave a secret: as a value, as a path, or both.
struct secret_source {
  bool has_value = false;
  std::optional<std::string> path;
  std::string path_origin;  // "webhook.secrets_file" or the environment variable, for messages
};
using secret_sources = std::map<std::string, secret_source>;  // by field key

// "abc" with quotes and control characters escaped, so a value prints on one line.
std::string quote_value(std::string_view value) {
  std::string out = "\"";
  for (const char c : value) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[(static_cast<unsigned char>(c) >> 4) & 0xf];
      out += hex[static_cast<unsigned char>(c) & 0xf];
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

std::string upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') {
      c = static_cast<char>(c - 'a' + 'A');
    } else if (c == '.') {
      c = '_';
    }
  }
  return out;
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

std::string_view trim_right(std::string_view text) {
  while (!text.empty() && is_space(text.back())) {
    text.remove_suffix(1);
  }
  return text;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && is_space(text.front())) {
    text.remove_prefix(1);
  }
  return trim_right(text);
}

std::string env_name(const field& f) {
  return std::string(env_prefix) + upper(f.section) + "_" + upper(f.name);
}

// The whole file, or config_error(key, "cannot read <what>"path": reason"). Reads with POSIX
// calls so a directory or a permission problem gets its real errno text.
std::string read_small_file(const std::string& key, const std::string& what,
                            const std::string& path, std::size_t limit) {
  const auto fail = [&](const std::string& reason) -> config_error {
    return config_error(key, "cannot read " + what + quote_value(path) + ": " + reason);
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw fail(std::generic_category().message(errno));
  }
  std::string content;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      const int saved = errno;
      ::close(fd);
      throw fail(std::generic_category().message(saved));
    }
    if (n == 0) {
      break;
    }
    content.append(buffer, static_cast<std::size_t>(n));
    if (content.size() > limit) {
      ::close(fd);
      throw fail("larger than " + std::to_string(limit) + " bytes");
    }
  }
  ::close(fd);
  return content;
}

const char* type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

// Stores a parsed integer into a member of any integer or duration type, refusing values the
// member cannot hold. Ranges that matter to the daemon are checked later by validate().
template <typename T>
void set_integer(const std::string& key, std::int64_t value, T& out) {
  if constexpr (std::is_same_v<T, std::size_t>) {
    if (value < 0) {
      throw config_error(key, "expected a non-negative integer, got " + std::to_string(value));
    }
    out = static_cast<std::size_t>(value);
  } else if constexpr (std::is_same_v<T, int>) {
    if (value < std::numeric_limits<int>::min() || value > std::numeric_limits<int>::max()) {
      throw config_error(key, "integer out of range: " + std::to_string(value));
    }
    out = static_cast<int>(value);
  } else {
    out = T{value};  // std::chrono::milliseconds / seconds hold any int64
  }
}

template <typename Enum, std::size_t N>
void set_enum(const std::string& key, std::string_view text,
              const std::pair<Enum, std::string_view> (&names)[N], Enum& out) {
  std::string expected;
  for (const auto& [value, name] : names) {
    if (name == text) {
      out = value;
      return;
    }
    expected += (expected.empty() ? "" : ", ") + std::string(name);
  }
  throw config_error(key, "expected one of " + expected + "; got " + quote_value(text));
}

void set_enum_value(const std::string& key, std::string_view text, signature_scheme& out) {
  set_enum(key, text, scheme_names, out);
}

void set_enum_value(const std::string& key, std::string_view text, log_format& out) {
  set_enum(key, text, format_names, out);
}

template <typename T>
constexpr bool is_integer_target = std::is_same_v<T, std::size_t> || std::is_same_v<T, int> ||
                                   std::is_same_v<T, std::chrono::milliseconds> ||
                                   std::is_same_v<T, std::chrono::seconds>;

template <typename T>
constexpr bool is_enum_target = std::is_same_v<T, signature_scheme> ||
                                std::is_same_v<T, log_format>;

const std::string& require_string(const std::string& key, const toml::node& node) {
  if (const auto* s = node.as_string()) {
    return s->get();
  }
  throw config_error(key, std::string("expected a string, got ") + type_name(node));
}

// Sets `f` from a TOML value; a value of the wrong type names the key and the expected type.
void assign_toml(const field& f, const toml::node& node) {
  const std::string key = f.key();
  std::visit(
      [&](auto* out) {
        using T = std::remove_pointer_t<decltype(out)>;
        if constexpr (std::is_same_v<T, std::string>) {
          *out = require_string(key, node);
        } else if constexpr (std::is_same_v<T, bool>) {
          const auto* b = node.as_boolean();
          if (b == nullptr) {
            throw config_error(key, std::string("expected a boolean, got ") + type_name(node));
          }
          *out = b->get();
        } else if constexpr (is_integer_target<T>) {
          const auto* i = node.as_integer();
          if (i == nullptr) {
            throw config_error(key, std::string("expected an integer, got ") + type_name(node));
          }
          set_integer(key, i->get(), *out);
        } else if constexpr (is_enum_target<T>) {
          set_enum_value(key, require_string(key, node), *out);
        } else {
          static_assert(std::is_same_v<T, std::vector<std::string>>);
          const auto* array = node.as_array();
          if (array == nullptr) {
            throw config_error(key,
                               std::string("expected an array of strings, got ") + type_name(node));
          }
          std::vector<std::string> values;
          for (std::size_t i = 0; i < array->size(); ++i) {
            const auto* s = (*array)[i].as_string();
            if (s == nullptr) {
              throw config_error(key, "expected an array of strings, element " +
                                          std::to_string(i + 1) + " is " +
                                          type_name((*array)[i]));
            }
            values.push_back(s->get());
          }
          *out = std::move(values);
        }
      },
      f.where);
}

// Sets `f` from an environment variable's text. Integers must be the whole string; errors
// quote the text only for keys that are not secrets (and secrets are all plain strings).
void assign_env(const field& f, const std::string& variable, const std::string& text) {
  const std::string key = f.key();
  const std::string origin = " (from " + variable + ")";
  std::visit(
      [&](auto* out) {
        using T = std::remove_pointer_t<decltype(out)>;
        if constexpr (std::is_same_v<T, std::string>) {
          *out = text;
        } else if constexpr (std::is_same_v<T, bool>) {
          const std::string word = lower(text);
          if (word == "true" || word == "1" || word == "yes") {
            *out = true;
          } else if (word == "false" || word == "0" || word == "no") {
            *out = false;
          } else {
            throw config_error(key, "expected true/false/1/0/yes/no, got " + quote_value(text) + origin);
          }
        } else if constexpr (is_integer_target<T>) {
          std::int64_t value = 0;
          const char* first = text.data();
          const char* last = text.data() + text.size();
          const auto [end, ec] = std::from_chars(first, last, value);
          if (ec == std::errc::result_out_of_range) {
            throw config_error(key, "integer out of range: " + quote_value(text) + origin);
          }
          if (ec != std::errc{} || end != last) {
            throw config_error(key, "expected an integer, got " + quote_value(text) + origin);
          }
          set_integer(key, value, *out);
        } else if constexpr (is_enum_target<T>) {
          set_enum_value(key, text, *out);
        } else {
          static_assert(std::is_same_v<T, std::vector<std::string>>);
          std::vector<std::string> values;
          std::string_view rest = text;
          for (;;) {
            const std::size_t comma = rest.find(',');
            const std::string_view item = trim(rest.substr(0, comma));
            if (!item.empty()) {
              values.emplace_back(item);
            }
            if (comma == std::string_view::npos) {
              break;
            }
            rest.remove_prefix(comma + 1);
          }
          *out = std::move(values);
        }
      },
      f.where);
}

// Walks one TOML table ("[server]", "[storage.s3]"); every key must be known.
void apply_toml_section(const std::string& section, const toml::table& table,
                        std::vector<field>& fields, secret_sources& secrets) {
  for (auto&& [toml_key, node] : table) {
    const std::string name(toml_key.str());
    const std::string key = section + "." + name;
    if (section == "storage" && name == "s3") {
      const auto* sub = node.as_table();
      if (sub == nullptr) {
        throw config_error(key, std::string("expected a table, got ") + type_name(node));
      }
      apply_toml_section(key, *sub, fields, secrets);
      continue;
    }
    if (field* f = find_field(fields, section, name)) {
      assign_toml(*f, node);
      if (f->secret) {
        secrets[key].has_value = true;
      }
      continue;
    }
    if (name.ends_with("_file")) {
      field* f = find_field(fields, section, std::string_view(name).substr(0, name.size() - 5));
      if (f != nullptr && f->secret) {
        secret_source& source = secrets[f->key()];
        source.path = require_string(key, node);
        source.path_origin = key;
        continue;
      }
    }
    throw config_error(key, "unknown key");
  }
}

void apply_toml(const toml::table& root, std::vector<field>& fields, secret_sources& secrets) {
  for (auto&& [toml_key, node] : root) {
    const std::string section(toml_key.str());
    const bool known = std::any_of(fields.begin(), fields.end(),
                                   [&](const field& f) { return f.section == section; });
    if (!known) {
      throw config_error(section, node.is_table() ? "unknown section" : "unknown key");
    }
    const auto* table = node.as_table();
    if (table == nullptr) {
      throw config_error(section, std::string("expected a table, got ") + type_name(node));
    }
    apply_toml_section(section, *table, fields, secrets);
  }
}

void apply_environment(const environment& env, std::vector<field>& fields,
                       secret_sources& secrets) {
  std::map<std::string, field*> by_name;
  std::map<std::string, field*> by_file_name;
  for (field& f : fields) {
    by_name[env_name(f)] = &f;
    if (f.secret) {
      by_file_name[env_name(f) + "_FILE"] = &f;
    }
  }
  for (const auto& [variable, text] : env) {
    if (!variable.starts_with(env_prefix) || variable == "CERTN_ARCHIVER_CONFIG") {
      continue;
    }
    if (const auto it = by_name.find(variable); it != by_name.end()) {
      assign_env(*it->second, variable, text);
      if (it->second->secret) {
        secrets[it->second->key()].has_value = true;
      }
      continue;
    }
    if (const auto it = by_file_name.find(variable); it != by_file_name.end()) {
      secret_source& source = secrets[it->second->key()];
      source.path = text;
      source.path_origin = variable;
      continue;
    }
    throw config_error("", "unknown environment variable " + variable);
  }
}

// Both `x` and `x_file` from one source is ambiguous; say which names collided, never values.
void reject_value_and_file(const std::vector<field>& fields, const secret_sources& sources,
                           bool from_env) {
  for (const field& f : fields) {
    const auto it = sources.find(f.key());
    if (it == sources.end() || !it->second.has_value || !it->second.path) {
      continue;
    }
    const std::string value_name = from_env ? env_name(f) : f.key();
    throw config_error(f.key(), "set either " + value_name + " or " + it->second.path_origin +
                                    ", not both");
  }
}

std::string expand_credentials_directory(const std::string& key, const std::string& path,
                                         const environment& env) {
  std::string out = path;
  std::size_t at = out.find(credentials_placeholder);
  if (at == std::string::npos) {
    return out;
  }
  const auto it = env.find("CREDENTIALS_DIRECTORY");
  if (it == env.end() || it->second.empty()) {
    throw config_error(key, "the path uses ${CREDENTIALS_DIRECTORY} but CREDENTIALS_DIRECTORY is "
                            "not set (is LoadCredential= configured?)");
  }
  while (at != std::string::npos) {
    out.replace(at, credentials_placeholder.size(), it->second);
    at = out.find(credentials_placeholder, at + it->second.size());
  }
  return out;
}

// Replaces each secret given as a path by the file's contents. The environment wins over the
// file, as for every other key, so only the winning source's path is read.
void read_secret_files(std::vector<field>& fields, const secret_sources& from_file,
                       const secret_sources& from_env, const environment& env) {
  for (field& f : fields) {
    if (!f.secret) {
      continue;
    }
    const secret_source* source = nullptr;
    if (const auto it = from_env.find(f.key()); it != from_env.end()) {
      source = &it->second;
    } else if (const auto it2 = from_file.find(f.key()); it2 != from_file.end()) {
      source = &it2->second;
    }
    if (source == nullptr || !source->path) {
      continue;
    }
    const std::string file_key = f.key() + "_file";
    if (source->path->empty()) {
      throw config_error(file_key, "empty path (from " + source->path_origin + ")");
    }
    const std::string path = expand_credentials_directory(file_key, *source->path, env);
    const std::string content = read_small_file(file_key, "", path, max_secret_file_bytes);
    if (auto* list = std::get_if<std::vector<std::string>*>(&f.where)) {
      std::vector<std::string> lines;
      std::string_view rest = content;
      while (!rest.empty()) {
        const std::size_t newline = rest.find('\n');
        const std::string_view line = trim_right(rest.substr(0, newline));
        if (!line.empty()) {
          lines.emplace_back(line);
        }
        rest.remove_prefix(newline == std::string_view::npos ? rest.size() : newline + 1);
      }
      **list = std::move(lines);
    } else {
      *std::get<std::string*>(f.where) = std::string(trim_right(content));
    }
  }
}

void check_range(const std::string& key, std::int64_t value, std::int64_t min, std::int64_t max) {
  if (value < min || value > max) {
    throw config_error(key, "must be between " + std::to_string(min) + " and " +
                                std::to_string(max) + ", got " + std::to_string(value));
  }
}

void check_size(const std::string& key, std::size_t value, std::int64_t min, std::int64_t max) {
  // Values came from non-negative int64s (or defaults), so the cast is lossless.
  check_range(key, static_cast<std::int64_t>(value), min, max);
}

bool has_space_or_control(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f;
  });
}

// An absolute http(s) URL with a host; the daemon's client does the real parsing later.
void check_http_url(const std::string& key, const std::string& value) {
  std::string_view rest = value;
  if (rest.starts_with("https://")) {
    rest.remove_prefix(8);
  } else if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else {
    throw config_error(key, "expected an http:// or https:// URL, got " + quote_value(value));
  }
  const std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.empty() || has_space_or_control(value)) {
    throw config_error(key, "expected an http:// or https:// URL with a host, got " +
                                quote_value(value));
  }
}

void check_readable(const std::string& key, const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw config_error(key, "cannot read " + quote_value(path) + ": " +
                                std::generic_category().message(errno));
  }
  // A read catches directories, which open() accepts.
  char byte = 0;
  const ssize_t n = ::read(fd, &byte, 1);
  const int saved = errno;
  ::close(fd);
  if (n < 0) {
    throw config_error(key, "cannot read " + quote_value(path) + ": " +
                                std::generic_category().message(saved));
  }
}

void validate_server(const server_settings& s) {
  parse_host_port("server.listen", s.listen);
  if (!s.admin_listen.empty()) {
    parse_host_port("server.admin_listen", s.admin_listen);
  }
  if (!s.webhook_path.starts_with('/') || s.webhook_path.find_first_of("?#") != std::string::npos ||
      has_space_or_control(s.webhook_path)) {
    throw config_error("server.webhook_path",
                       "expected an absolute path without spaces, '?' or '#', got " +
                           quote_value(s.webhook_path));
  }
  check_size("server.max_body_bytes", s.max_body_bytes, 1, 16 * mib);
  check_size("server.max_header_bytes", s.max_header_bytes, 1 * kib, 1 * mib);
  check_size("server.max_uri_bytes", s.max_uri_bytes, 256,
             static_cast<std::int64_t>(s.max_header_bytes));
  check_size("server.max_connections", s.max_connections, 1, std::numeric_limits<int>::max());
  check_size("server.max_requests_per_connection", s.max_requests_per_connection, 1,
             std::numeric_limits<int>::max());
  check_range("server.header_timeout_ms", s.header_timeout.count(), 1, max_timeout_ms);
  check_range("server.body_timeout_ms", s.body_timeout.count(), 1, max_timeout_ms);
  check_range("server.idle_timeout_ms", s.idle_timeout.count(), 1, max_timeout_ms);
  check_range("server.shutdown_timeout_ms", s.shutdown_timeout.count(), 1, max_timeout_ms);
  if (s.tls_cert_file.empty() != s.tls_key_file.empty()) {
    const bool cert_missing = s.tls_cert_file.empty();
    throw config_error(cert_missing ? "server.tls_cert_file" : "server.tls_key_file",
                       std::string("must be set when ") +
                           (cert_missing ? "server.tls_key_file" : "server.tls_cert_file") +
                           " is set");
  }
  if (!s.tls_cert_file.empty()) {
    check_readable("server.tls_cert_file", s.tls_cert_file);
    check_readable("server.tls_key_file", s.tls_key_file);
  }
}

void validate_webhook(const webhook_settings& w) {
  for (std::size_t i = 0; i < w.secrets.size(); ++i) {
    if (w.secrets[i].empty()) {
      throw config_error("webhook.secrets", "secret number " + std::to_string(i + 1) + " is empty");
    }
  }
  check_range("webhook.timestamp_tolerance_seconds", w.timestamp_tolerance.count(), 1, 86'400);
  check_size("webhook.max_challenge_bytes", w.max_challenge_bytes, 1, 64 * kib);
}

void validate_certn(const certn_settings& c) {
  check_http_url("certn.base_url", c.base_url);
  check_range("certn.requests_per_minute", c.requests_per_minute, 1, 100'000);
  if (!c.ca_file.empty()) {
    check_readable("certn.ca_file", c.ca_file);
  }
  for (const std::string& host : c.download_hosts) {
    if (host.empty() || has_space_or_control(host)) {
      throw config_error("certn.download_hosts",
                         "expected host names or globs such as \"*.certn.co\", got " +
                             quote_value(host));
    }
  }
}

void validate_storage(const storage_settings& s) {
  if (s.backend == "filesystem") {
    if (s.path.empty()) {
      throw config_error("storage.path", "required when storage.backend is \"filesystem\"");
    }
  } else if (s.backend == "s3") {
    if (s.s3.bucket.empty()) {
      throw config_error("storage.s3.bucket", "required when storage.backend is \"s3\"");
    }
    if (s.s3.region.empty()) {
      throw config_error("storage.s3.region", "required when storage.backend is \"s3\"");
    }
    if (!s.s3.endpoint.empty()) {
      check_http_url("storage.s3.endpoint", s.s3.endpoint);
    }
    // S3 allows 5 MiB to 5 GiB per part (the last may be smaller) and 10,000 parts.
    check_size("storage.s3.part_size_bytes", s.s3.part_size_bytes, 5LL << 20, 5LL << 30);
    check_size("storage.s3.multipart_threshold_bytes", s.s3.multipart_threshold_bytes, 5LL << 20,
               5LL << 30);
    check_size("storage.s3.max_parallel_parts", s.s3.max_parallel_parts, 1, 64);
    check_range("storage.s3.timeout_ms", s.s3.timeout.count(), 1000, 86'400'000);
    if (!s.s3.ca_file.empty()) {
      check_readable("storage.s3.ca_file", s.s3.ca_file);
    }
  } else {
    throw config_error("storage.backend",
                       "expected one of filesystem, s3; got " + quote_value(s.backend));
  }
}

void validate_archive(const archive_settings& a) {
  for (const std::string& status : a.on_statuses) {
    const bool ok = !status.empty() && std::all_of(status.begin(), status.end(), [](char c) {
      return (c >= 'A' && c <= 'Z') || c == '_';
    });
    if (!ok) {
      throw config_error("archive.on_statuses",
                         "expected upper-case statuses such as \"COMPLETE\", got " +
                             quote_value(status));
    }
  }
}

void validate(const config& c) {
  validate_server(c.server);
  validate_webhook(c.webhook);
  validate_certn(c.certn);
  check_range("database.pool_size", static_cast<std::int64_t>(c.database.pool_size), 1, 256);
  check_range("database.connect_timeout_seconds", c.database.connect_timeout.count(), 1, 300);
  validate_storage(c.storage);
  validate_archive(c.archive);
  check_range("workers.concurrency", c.workers.concurrency, 1, 1024);
  check_range("workers.max_attempts", c.workers.max_attempts, 1, 1000);
  check_range("workers.lease_seconds", c.workers.lease_seconds, 5, 3600);
  check_range("workers.poll_interval_ms", c.workers.poll_interval.count(), 10, 600'000);
  check_range("workers.claim_batch", c.workers.claim_batch, 1, 1000);
  check_range("workers.backoff_base_seconds", c.workers.backoff_base.count(), 0, 86'400);
  check_range("workers.backoff_max_seconds", c.workers.backoff_max.count(),
              c.workers.backoff_base.count(), 7 * 86'400);
  check_range("workers.drain_timeout_seconds", c.workers.drain_timeout.count(), 0, 3600);
  check_range("workers.reconcile_interval_seconds", c.workers.reconcile_interval.count(), 0,
              7 * 86'400);
  check_range("workers.report_poll_delay_seconds", c.workers.report_poll_delay.count(), 1, 86'400);
  check_range("workers.keep_finished_days", c.workers.keep_finished_days, 1, 36'500);
  if (std::find(std::begin(log_levels), std::end(log_levels), c.log.level) ==
      std::end(log_levels)) {
    throw config_error("log.level",
                       "expected one of trace, debug, info, warn, error, critical, off; got " +
                           quote_value(c.log.level));
  }
}

}  // namespace

environment from_environ() {
  environment env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const std::size_t equals = text.find('=');
    if (equals == std::string_view::npos) {
      continue;
    }
    env.emplace(std::string(text.substr(0, equals)), std::string(text.substr(equals + 1)));
  }
  return env;
}

config load(const std::optional<std::filesystem::path>& file, const environment& env) {
  config result;
  std::vector<field> fields = fields_of(result);
  secret_sources from_file;
  secret_sources from_env;

  if (file) {
    const std::string path = file->string();
    const std::string text = read_small_file("", "config file ", path, max_config_file_bytes);
    toml::table root;
    try {
      root = toml::parse(text, path);
    } catch (const toml::parse_error& e) {
      const auto& where = e.source().begin;
      throw config_error("", path + ":" + std::to_string(where.line) + ":" +
                                 std::to_string(where.column) + ": " +
                                 std::string(e.description()));
    }
    apply_toml(root, fields, from_file);
    reject_value_and_file(fields, from_file, false);
  }

  apply_environment(env, fields, from_env);
  reject_value_and_file(fields, from_env, true);
  read_secret_files(fields, from_file, from_env, env);
  validate(result);
  return result;
}

void require_serve_settings(const config& cfg) {
  if (cfg.webhook.secrets.empty()) {
    throw config_error("webhook.secrets",
                       "at least one secret is required to serve (set webhook.secrets, "
                       "webhook.secrets_file or CERTN_ARCHIVER_WEBHOOK_SECRETS)");
  }
}

host_port parse_host_port(const std::string& key, const std::string& value) {
  const auto bad = [&](const std::string& why) -> config_error {
    return config_error(key, why + "; expected host:port (IPv6 as [::1]:8080), got " +
                                 quote_value(value));
  };
  std::string host;
  std::string_view port;
  if (value.starts_with('[')) {
    const std::size_t close = value.find(']');
    if (close == std::string::npos || close + 1 >= value.size() || value[close + 1] != ':') {
      throw bad("unterminated IPv6 address or missing port");
    }
    host = value.substr(1, close - 1);
    port = std::string_view(value).substr(close + 2);
  } else {
    const std::size_t colon = value.rfind(':');
    if (colon == std::string::npos) {
      throw bad("missing port");
    }
    host = value.substr(0, colon);
    port = std::string_view(value).substr(colon + 1);
    if (host.find(':') != std::string::npos) {
      throw bad("IPv6 addresses need brackets");
    }
  }
  if (host.empty() || has_space_or_control(host) ||
      host.find_first_of("[]/@") != std::string::npos) {
    throw bad("bad host");
  }
  unsigned port_number = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), port_number);
  if (port.empty() || port.size() > 5 || ec != std::errc{} || end != port.data() + port.size() ||
      port_number > 65535) {
    throw bad("bad port");
  }
  return host_port{std::move(host), static_cast<unsigned short>(port_number)};
}

const char* to_string(signature_scheme scheme) {
  for (const auto& [value, name] : scheme_names) {
    if (value == scheme) {
      return name.data();  // the names are string literals, so NUL-terminated
    }
  }
  return "unknown";
}

}  // namespace archiver::config
