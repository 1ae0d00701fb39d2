// Logging set-up: one spdlog logger on stderr, with custom pattern flags that escape the message
// (and spell the level the way the configuration does) for text and JSON output.
#include "ops/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include <array>
#include <cctype>
#include <cstddef>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <utility>

namespace archiver::ops {
namespace {

constexpr std::string_view logger_name = "certn-archiver";

using level_enum = spdlog::level::level_enum;

// The configuration's spelling of each level, which is also what the logs print ("warn", not
// spdlog's "warning").
constexpr std::array<std::pair<std::string_view, level_enum>, 7> level_names = {{
    {"trace", level_enum::trace},
    {"debug", level_enum::debug},
    {"info", level_enum::info},
    {"warn", level_enum::warn},
    {"error", level_enum::err},
    {"critical", level_enum::critical},
    {"off", level_enum::off},
}};

level_enum parse_level(const std::string& level) {
  for (const auto& [name, value] : level_names) {
    if (name == level) {
      return value;
    }
  }
  // spdlog::level::from_str would silently turn a typo into "off"; refuse instead.
  throw std::invalid_argument(fmt::format(
      "log.level: expected one of trace|debug|info|warn|error|critical|off, got \"{}\"", level));
}

std::string_view level_name(level_enum level) {
  for (const auto& [name, value] : level_names) {
    if (value == level) {
      return name;
    }
  }
  return "unknown";
}

void append(spdlog::memory_buf_t& dest, std::string_view s) {
  dest.append(s.data(), s.data() + s.size());
}

void append_hex_escape(spdlog::memory_buf_t& dest, std::string_view prefix, unsigned char c) {
  static constexpr char hex[] = "0123456789abcdef";
  append(dest, prefix);
  dest.push_back(hex[c >> 4]);
  dest.push_back(hex[c & 0xf]);
}

// Length of the well-formed UTF-8 sequence starting at s[i] (1 to 4), or 0 when the bytes there
// are not one (stray continuation byte, overlong form, surrogate, beyond U+10FFFF, truncated).
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    return 1;
  }
  std::size_t n = 0;
  char32_t cp = 0;
  char32_t min = 0;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    n = 2, cp = b0 & 0x1f, min = 0x80;
  } else if ((b0 & 0xf0) == 0xe0) {
    n = 3, cp = b0 & 0x0f, min = 0x800;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    n = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (s.size() - i < n) {
    return 0;
  }
  for (std::size_t k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xc0) != 0x80) {
      return 0;
    }
    cp = (cp << 6) | (b & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
    return 0;
  }
  return n;
}

// The contents of a JSON string (without the quotes): RFC 8259 escapes, and U+FFFD for each
// byte that is not part of well-formed UTF-8, so the line is valid JSON for any input.
void append_json_escaped(spdlog::memory_buf_t& dest, std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const std::size_t n = utf8_sequence_length(s, i);
      if (n == 0) {
        append(dest, "\\ufffd");
        ++i;
      } else {
        append(dest, s.substr(i, n));
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"': append(dest, "\\\""); break;
      case '\\': append(dest, "\\\\"); break;
      case '\n': append(dest, "\\n"); break;
      case '\r': append(dest, "\\r"); break;
      case '\t': append(dest, "\\t"); break;
      case '\b': append(dest, "\\b"); break;
      case '\f': append(dest, "\\f"); break;
      default:
        if (c < 0x20 || c == 0x7f) {
          append_hex_escape(dest, "\\u00", c);
        } else {
          dest.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
}

// Text output: control characters escaped so that a message (which may quote remote input)
// can never forge a second log line. Everything else, including UTF-8, is written as is.
void append_text_escaped(spdlog::memory_buf_t& dest, std::string_view s) {
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '\n': append(dest, "\\n"); break;
      case '\r': append(dest, "\\r"); break;
      case '\t': append(dest, "\\t"); break;
      default:
        if (c < 0x20 || c == 0x7f) {
          append_hex_escape(dest, "\\x", c);
        } else {
          dest.push_back(ch);
        }
    }
  }
}

// The fields of the record being logged on this thread: set by log_with around one synchronous
// spdlog call, read by the JSON flag and the journal sink during it.
thread_local std::span<const log_field> current_fields;

class fields_scope {
 public:
  explicit fields_scope(std::initializer_list<log_field> fields)
      : previous_(current_fields) {
    current_fields = std::span<const log_field>(fields.begin(), fields.size());
  }
  ~fields_scope() { current_fields = previous_; }
  fields_scope(const fields_scope&) = delete;
  fields_scope& operator=(const fields_scope&) = delete;

 private:
  std::span<const log_field> previous_;
};

std::string_view payload(const spdlog::details::log_msg& msg) {
  return {msg.payload.data(), msg.payload.size()};
}

// %* in our patterns: the message, JSON-escaped.
class json_message_flag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    append_json_escaped(dest, payload(msg));
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<json_message_flag>();
  }
};

// %F in the JSON pattern: the record's fields as more keys (,"job_id":"42").
class json_fields_flag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    for (const log_field& field : current_fields) {
      if (field.value.empty()) {
        continue;  // not known for this record
      }
      append(dest, ",\"");
      append_json_escaped(dest, field.name);
      append(dest, "\":\"");
      append_json_escaped(dest, field.value);
      dest.push_back('"');
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<json_fields_flag>();
  }
};

// syslog priorities, as journald's PRIORITY field takes them.
int journal_priority(level_enum level) {
  switch (level) {
    case level_enum::trace:
    case level_enum::debug:
      return 7;
    case level_enum::info:
      return 6;
    case level_enum::warn:
      return 4;
    case level_enum::err:
      return 3;
    case level_enum::critical:
      return 2;
    case level_enum::off:
    case level_enum::n_levels:
      break;
  }
  return 6;
}

std::vector<std::string> fields_for_journal(level_enum level, std::string_view message,
                                            std::span<const log_field> fields) {
  std::vector<std::string> out;
  out.push_back("MESSAGE=" + std::string(message));
  out.push_back("PRIORITY=" + std::to_string(journal_priority(level)));
  out.push_back("SYSLOG_IDENTIFIER=" + std::string(logger_name));
  for (const log_field& field : fields) {
    if (field.value.empty()) {
      continue;
    }
    std::string name;
    for (const char c : field.name) {
      name += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    out.push_back(name + "=" + std::string(field.value));
  }
  return out;
}

// Straight to journald, one entry per record with its fields (spdlog's own systemd sink sends
// the message and priority only). A journal that is not there loses the record, as the stderr
// stream of a daemon without one would.
class journal_sink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const std::vector<std::string> fields =
        fields_for_journal(msg.level, payload(msg), current_fields);
    std::vector<iovec> parts;
    parts.reserve(fields.size());
    for (const std::string& field : fields) {
      parts.push_back({const_cast<char*>(field.data()), field.size()});
    }
    sd_journal_sendv(parts.data(), static_cast<int>(parts.size()));
  }
  void flush_() override {}
};

// %& in our patterns: the message with control characters escaped.
class text_message_flag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    append_text_escaped(dest, payload(msg));
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<text_message_flag>();
  }
};

// %~ in our patterns: the level as the configuration spells it.
class level_flag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    append(dest, level_name(msg.level));
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<level_flag>();
  }
};

std::unique_ptr<spdlog::pattern_formatter> make_formatter(config::log_format format) {
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  formatter->add_flag<json_message_flag>('*')
      .add_flag<json_fields_flag>('F')
      .add_flag<text_message_flag>('&')
      .add_flag<level_flag>('~');
  // %n (logger name) is a constant without characters that need escaping.
  constexpr const char* json =
      R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%~","logger":"%n","msg":"%*"%F})";
  constexpr const char* text = "%Y-%m-%dT%H:%M:%S.%eZ %~ %&";
  formatter->set_pattern(format == config::log_format::json ? json : text);
  return formatter;
}

}  // namespace

void setup_logging(config::log_format format, const std::string& level) {
  const level_enum parsed = parse_level(level);
  spdlog::sink_ptr sink;
  if (format == config::log_format::journal) {
    sink = std::make_shared<journal_sink>();
  } else {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();  // flushes every record
  }
  auto logger = std::make_shared<spdlog::logger>(std::string(logger_name), std::move(sink));
  logger->set_formatter(make_formatter(format));
  logger->set_level(parsed);
  spdlog::set_default_logger(std::move(logger));
}

void set_log_level(const std::string& level) {
  spdlog::default_logger()->set_level(parse_level(level));
}

void log_with(level_enum level, std::initializer_list<log_field> fields, std::string_view message) {
  const fields_scope scope(fields);
  spdlog::log(level, "{}", message);
}

std::vector<std::string> journal_fields(level_enum level, std::string_view message,
                                        std::initializer_list<log_field> fields) {
  return fields_for_journal(level, message,
                            std::span<const log_field>(fields.begin(), fields.size()));
}

std::string format_log_line(config::log_format format, const std::string& level,
                            std::string_view message, std::initializer_list<log_field> fields) {
  const fields_scope scope(fields);
  const level_enum parsed = parse_level(level);
  if (parsed == level_enum::off) {
    throw std::invalid_argument("log.level: \"off\" is not a level a record can have");
  }
  const spdlog::details::log_msg msg(spdlog::string_view_t(logger_name.data(), logger_name.size()),
                                     parsed,
                                     spdlog::string_view_t(message.data(), message.size()));
  spdlog::memory_buf_t buf;
  make_formatter(format)->format(msg, buf);
  std::string line(buf.data(), buf.size());
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) {
    line.pop_back();
  }
  return line;
}

void log_exception(std::string_view what, std::exception_ptr error) {
  if (!error) {
    return;
  }
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    spdlog::error("{}: {}", what, e.what());
  }
}

}  // namespace archiver::ops
