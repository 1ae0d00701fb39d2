// Secrets given as a path ("<key>_file" in the file, "<KEY>_FILE" in the environment): the
// checks on where they came from, ${CREDENTIALS_DIRECTORY}, and reading them; also
// read_small_file(), the bounded reader the config file shares.
#include "config/detail.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

namespace archiver::config::detail {

namespace {

constexpr std::string_view credentials_placeholder = "${CREDENTIALS_DIRECTORY}";
constexpr std::size_t max_secret_file_bytes = 64 * 1024;

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

}  // namespace

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

}  // namespace archiver::config::detail
