// Fuzzes config::load. The input is a TOML file, optionally followed by a line
// "#--- environment" and NAME=VALUE lines for the environment; an input that starts with that
// line loads without a file. A CREDENTIALS_DIRECTORY line is pointed at a scratch directory
// holding secret files ("secrets", "api_key") whose contents start with "CANARY".
// Properties: only config_error escapes, its message one non-empty line starting with its key;
// no message ever contains a secret file's contents; a returned config passes its own rules.
//
// Paths in the input are opened by load(); inputs that could name a device, /proc or /sys (where
// a read may block) are skipped, as are TOML \u escapes that could spell such a name.
#include "config/config.hpp"
#include "fuzz_support.hpp"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

using archiver::fuzz::require;
namespace config = archiver::config;

namespace {

constexpr std::string_view env_separator = "#--- environment\n";

std::filesystem::path scratch;
std::string config_path;

void write_file(const std::filesystem::path& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  out.close();
  if (!out) {
    archiver::fuzz::fail("cannot write", path.string());
  }
}

void remove_scratch() {
  std::error_code ignored;
  std::filesystem::remove_all(scratch, ignored);
}

bool may_block(std::string_view text) {
  for (const std::string_view word :
       {"dev/", "proc/", "sys/", "run/", "fd/", "\\u", "\\U", "\\x"}) {
    if (text.find(word) != std::string_view::npos) {
      return true;
    }
  }
  return false;
}

config::environment parse_environment(std::string_view rest) {
  config::environment env;
  while (!rest.empty()) {
    const std::string_view line = archiver::fuzz::next_line(rest);
    const std::size_t equals = line.find('=');
    if (equals == std::string_view::npos) {
      continue;
    }
    std::string name(line.substr(0, equals));
    std::string value(line.substr(equals + 1));
    if (name == "CREDENTIALS_DIRECTORY") {
      value = scratch.string();
    }
    env[std::move(name)] = std::move(value);
  }
  return env;
}

void check_config(const config::config& c) {
  try {
    config::parse_host_port("server.listen", c.server.listen);
    if (!c.server.admin_listen.empty()) {
      config::parse_host_port("server.admin_listen", c.server.admin_listen);
    }
  } catch (const config::config_error& e) {
    archiver::fuzz::fail("a loaded config has listen addresses that parse", e.what());
  }
  require(c.server.tls_cert_file.empty() == c.server.tls_key_file.empty(),
          "TLS files are both set or both empty");
  for (const std::string& secret : c.webhook.secrets) {
    require(!secret.empty(), "webhook secrets are not empty");
  }
  require(c.storage.backend == "filesystem" || c.storage.backend == "s3", "a known backend",
          c.storage.backend);
  require(c.workers.backoff_base <= c.workers.backoff_max, "backoff base <= max");
  require(c.server.max_uri_bytes <= c.server.max_header_bytes, "max_uri_bytes <= header bytes");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::string pattern = (std::filesystem::temp_directory_path() / "config_fuzz.XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    archiver::fuzz::fail("mkdtemp failed", pattern);
  }
  scratch = pattern;
  std::atexit(remove_scratch);
  write_file(scratch / "secrets", "CANARY-webhook-1\nCANARY-webhook-2\n");
  write_file(scratch / "api_key", "CANARY-api-key\n");
  config_path = (scratch / "config.toml").string();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  const std::string_view input = archiver::fuzz::as_text(data, size);
  if (may_block(input) || input.find("CANARY") != std::string_view::npos) {
    return 0;  // see the comment at the top; CANARY may only come from the secret files
  }
  std::string_view toml = input;
  std::string_view env_text;
  if (input.starts_with(env_separator)) {
    toml = {};
    env_text = input.substr(env_separator.size());
  } else if (const std::size_t at = input.find("\n" + std::string(env_separator));
             at != std::string_view::npos) {
    toml = input.substr(0, at + 1);
    env_text = input.substr(at + 1 + env_separator.size());
  }
  const config::environment env = parse_environment(env_text);
  std::optional<std::filesystem::path> file;
  if (!input.starts_with(env_separator)) {
    write_file(config_path, toml);
    file = config_path;
  }

  try {
    const config::config loaded = config::load(file, env);
    check_config(loaded);
  } catch (const config::config_error& e) {
    const std::string_view what = e.what();
    require(!what.empty(), "config_error says something");
    require(what.find('\n') == std::string_view::npos, "config_error is one line", what);
    require(what.find("CANARY") == std::string_view::npos, "no secret in an error message", what);
    if (!e.key().empty()) {
      require(what.starts_with(e.key() + ": "), "config_error starts with its key", what);
    }
  } catch (const std::exception& e) {
    archiver::fuzz::fail("load threw something other than config_error", e.what());
  }
  return 0;
}
