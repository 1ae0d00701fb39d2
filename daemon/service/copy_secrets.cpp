// `certn-archiver copy-secrets`: the systemd unit's way to hand the secret files to a service
// that runs as a dynamic user, at start and again on reload. systemd's LoadCredential= copies
// only at start, which would defeat rotation by SIGHUP; this runs as root (ExecStartPre=+,
// ExecReload=+) and copies each file into the service's RuntimeDirectory, owned by the service's
// user (the directory's owner), mode 0400, replaced atomically (rename), so that a reload reads
// either the old content or the new, never half of one.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>

#include "service/service.hpp"

namespace archiver::service {

namespace {

// The unit points serve at these three: a missing one becomes an empty value.
constexpr std::array<const char*, 3> secret_files = {"webhook-secrets", "certn-api-key",
                                                     "database-url"};
// Copied only when present (S3 is optional), and a copy whose source is gone is removed.
constexpr std::array<const char*, 2> optional_files = {"s3-access-key-id", "s3-secret-access-key"};
constexpr std::size_t max_secret_bytes = 64 * 1024;

std::string errno_text() { return std::strerror(errno); }

// The file's content; a missing file is a single newline (an empty value): serve then refuses to
// start naming the setting it lacks, which says more than a copy that failed.
bool read_secret(const std::string& path, std::string& content, std::string& why) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    if (errno == ENOENT) {
      std::cerr << "certn-archiver: copy-secrets: " << path << " is missing: an empty value\n";
      content = "\n";
      return true;
    }
    why = path + ": " + errno_text();
    return false;
  }
  if (!S_ISREG(info.st_mode)) {
    why = path + ": not a regular file";
    return false;
  }
  if (static_cast<std::size_t>(info.st_size) > max_secret_bytes) {
    why = path + ": larger than 64 KiB";
    return false;
  }
  if ((info.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    std::cerr << "certn-archiver: copy-secrets: warning: " << path
              << " is readable by others than its owner: chmod 600 it\n";
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    why = path + ": cannot be read";
    return false;
  }
  content.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return true;
}

bool write_secret(const std::string& directory, const char* name, const std::string& content,
                  const struct stat& owner, std::string& why) {
  const std::string target = directory + "/" + name;
  const std::string temporary = directory + "/." + name + ".tmp";
  ::unlink(temporary.c_str());
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400);
  if (fd < 0) {
    why = temporary + ": " + errno_text();
    return false;
  }
  bool ok = ::fchown(fd, owner.st_uid, owner.st_gid) == 0;
  std::size_t written = 0;
  while (ok && written < content.size()) {
    const ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    ok = n > 0;
    written += ok ? static_cast<std::size_t>(n) : 0;
  }
  if (!ok) {
    why = temporary + ": " + errno_text();
  }
  if (::close(fd) != 0 && ok) {
    why = temporary + ": " + errno_text();
    ok = false;
  }
  if (ok && ::rename(temporary.c_str(), target.c_str()) != 0) {
    why = target + ": " + errno_text();
    ok = false;
  }
  if (!ok) {
    ::unlink(temporary.c_str());
  }
  return ok;
}

}  // namespace

int copy_secrets(const std::string& from, const std::string& to) {
  struct stat owner {};
  if (::stat(to.c_str(), &owner) != 0 || !S_ISDIR(owner.st_mode)) {
    std::cerr << "certn-archiver: copy-secrets: " << to << " is not a directory\n";
    return 1;
  }
  for (const char* name : secret_files) {
    std::string content;
    std::string why;
    if (!read_secret(from + "/" + name, content, why) ||
        !write_secret(to, name, content, owner, why)) {
      std::cerr << "certn-archiver: copy-secrets: " << why << "\n";
      return 1;
    }
  }
  for (const char* name : optional_files) {
    const std::string source = from + "/" + name;
    struct stat info {};
    if (::stat(source.c_str(), &info) != 0 && errno == ENOENT) {
      ::unlink((to + "/" + name).c_str());
      continue;
    }
    std::string content;
    std::string why;
    if (!read_secret(source, content, why) || !write_secret(to, name, content, owner, why)) {
      std::cerr << "certn-archiver: copy-secrets: " << why << "\n";
      return 1;
    }
  }
  return 0;
}

}  // namespace archiver::service
