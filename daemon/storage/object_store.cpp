#include "storage/object_store.hpp"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <system_error>

#include "encoding/encoding.hpp"

namespace archiver::storage {

void throw_errno(int error, const std::string& what, const std::filesystem::path& path) {
  throw std::system_error(error, std::generic_category(), what + " " + path.string());
}

namespace {

// mkdir -p with 0750 for every directory made here, whatever the umask.
void make_directories(const std::filesystem::path& directory) {
  std::filesystem::path partial;
  for (const std::filesystem::path& part : directory) {
    partial /= part;
    if (::mkdir(partial.c_str(), 0750) == 0) {
      if (::chmod(partial.c_str(), 0750) != 0) {
        throw_errno(errno, "cannot set the mode of", partial);
      }
    } else if (errno != EEXIST) {
      throw_errno(errno, "cannot create directory", partial);
    }
  }
}

// A staging file that failed is useless: give its space back at once, as a full disk must not
// stay full because of a dead file that its owner has not destroyed yet.
[[noreturn]] void discard_and_throw(int& fd, const std::filesystem::path& path, int error,
                                    const std::string& what) {
  ::close(fd);
  fd = -1;
  ::unlink(path.c_str());
  throw_errno(error, what, path);
}

// A file name is at most 255 bytes: keep room for ".", ".<16 hex>" and ".tmp".
constexpr std::size_t max_stem_bytes = 200;

}  // namespace

std::string random_hex(std::string_view purpose) {
  unsigned char bytes[8];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    throw std::runtime_error("OpenSSL: no random bytes for " + std::string(purpose));
  }
  return encoding::to_hex(std::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes));
}

staged_file::staged_file(const std::filesystem::path& directory, std::string_view stem,
                         std::uint64_t max_bytes)
    : max_bytes_(max_bytes) {
  make_directories(directory);
  const std::string short_stem(stem.substr(0, max_stem_bytes));
  // O_EXCL with a random name: two writers of the same key never share a staging file.
  for (int attempt = 0; fd_ < 0; ++attempt) {
    path_ = directory / ("." + short_stem + "." + random_hex("a staging file name") + ".tmp");
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd_ < 0 && (errno != EEXIST || attempt == 3)) {
      throw_errno(errno, "cannot create staging file", path_);
    }
  }
}

staged_file::~staged_file() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
  if (!released_) {
    ::unlink(path_.c_str());  // ENOENT when a failed write already removed it
  }
}

void staged_file::write(std::string_view chunk) {
  if (finished_) {
    throw std::logic_error("staged_file::write after finish: " + path_.string());
  }
  if (fd_ < 0) {
    throw_errno(EBADF, "write to a staging file that already failed:", path_);
  }
  if (chunk.size() > max_bytes_ - size_) {
    discard_and_throw(fd_, path_, EFBIG, "object larger than its limit, cannot write");
  }
  std::string_view rest = chunk;
  while (!rest.empty()) {
    const ssize_t written = ::write(fd_, rest.data(), rest.size());
    if (written < 0) {
      if (errno == EINTR) {
        continue;
      }
      discard_and_throw(fd_, path_, errno, "cannot write");
    }
    rest.remove_prefix(static_cast<std::size_t>(written));
  }
  hashing_.update(chunk);
  size_ += chunk.size();
}

const object_digest& staged_file::finish() {
  if (finished_) {
    return digest_;
  }
  if (fd_ < 0) {
    throw_errno(EBADF, "finish a staging file that already failed:", path_);
  }
  const int fd = fd_;
  fd_ = -1;
  // fsync and close both report write-back errors (EIO, ENOSPC on some filesystems).
  int error = ::fsync(fd) == 0 ? 0 : errno;
  if (::close(fd) != 0 && error == 0 && errno != EINTR) {
    error = errno;
  }
  if (error != 0) {
    ::unlink(path_.c_str());
    throw_errno(error, "cannot flush", path_);
  }
  digest_ = hashing_.finish();
  finished_ = true;
  return digest_;
}

const object_digest& staged_file::digest() const {
  if (!finished_) {
    throw std::logic_error("staged_file::digest before finish: " + path_.string());
  }
  return digest_;
}

std::size_t remove_stale_staging_files(const std::filesystem::path& directory, bool recursive,
                                       std::chrono::seconds older_than) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(directory, ec)) {
    return 0;
  }
  const auto cutoff = fs::file_time_type::clock::now() - older_than;
  const auto is_stale = [&](const fs::directory_entry& entry) {
    const std::string name = entry.path().filename().string();
    std::error_code status_error;
    return name.size() > 5 && name.front() == '.' && name.ends_with(".tmp") &&
           entry.is_regular_file(status_error) &&
           entry.last_write_time(status_error) < cutoff && !status_error;
  };
  std::size_t removed = 0;
  const auto consider = [&](const fs::directory_entry& entry) {
    std::error_code remove_error;
    if (is_stale(entry) && fs::remove(entry.path(), remove_error)) {
      ++removed;
    }
  };
  const auto options = fs::directory_options::skip_permission_denied;
  if (recursive) {
    for (auto it = fs::recursive_directory_iterator(directory, options, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      consider(*it);
    }
  } else {
    for (auto it = fs::directory_iterator(directory, options, ec);
         !ec && it != fs::directory_iterator(); it.increment(ec)) {
      consider(*it);
    }
  }
  return removed;
}

}  // namespace archiver::storage
