#include "storage/filesystem_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "retry/table.hpp"

namespace archiver::storage {

namespace {

namespace fs = std::filesystem;

// Keys come from our code, but a message must stay one line whatever they hold.
std::string printable(std::string_view key) {
  std::string out;
  out.reserve(key.size() + 2);
  out += '"';
  for (char c : key) {
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  }
  out += '"';
  return out;
}

store_failure refused(std::string_view operation, std::string_view key, const std::string& why) {
  return {false, std::string(operation) + " " + printable(key) + ": refused key: " + why};
}

store_failure from_system_error(std::string_view operation, std::string_view key,
                                const std::system_error& error) {
  const bool retryable =
      error.code().category() == std::generic_category() &&
      retry::retryable_errno(error.code().value());
  return {retryable, std::string(operation) + " " + printable(key) + ": " + error.what()};
}

read_result read_failure(store_failure failure, bool not_found = false) {
  read_result out;
  out.failure = std::move(failure);
  out.not_found = not_found;
  return out;
}

class file_descriptor {
 public:
  explicit file_descriptor(int fd) : fd_(fd) {}
  ~file_descriptor() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  file_descriptor(const file_descriptor&) = delete;
  file_descriptor& operator=(const file_descriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// The digest of the whole of an open file, written on to `copy` as well when it is not -1.
// Throws std::system_error.
object_digest digest_file(int fd, const fs::path& path, int copy = -1,
                          const fs::path& copy_path = {}) {
  streaming_digest digest;
  std::string buffer(64 * 1024, '\0');
  for (;;) {
    const ssize_t got = ::read(fd, buffer.data(), buffer.size());
    if (got < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw_errno(errno, "cannot read", path);
    }
    if (got == 0) {
      return digest.finish();
    }
    digest.update(std::string_view(buffer.data(), static_cast<std::size_t>(got)));
    for (ssize_t written = 0; copy >= 0 && written < got;) {
      const ssize_t n =
          ::write(copy, buffer.data() + written, static_cast<std::size_t>(got - written));
      if (n < 0 && errno != EINTR) {
        throw_errno(errno, "cannot write", copy_path);
      }
      written += n > 0 ? n : 0;
    }
  }
}

void fsync_directory(const fs::path& directory) {
  file_descriptor fd(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) {
    throw_errno(errno, "cannot open directory", directory);
  }
  if (::fsync(fd.get()) != 0) {
    throw_errno(errno, "cannot fsync directory", directory);
  }
}

bool is_under(const fs::path& path, const fs::path& root) {
  const auto [root_end, path_end] =
      std::mismatch(root.begin(), root.end(), path.begin(), path.end());
  return root_end == root.end();
}

}  // namespace

filesystem_store::filesystem_store(const fs::path& root, std::size_t threads) : blocking_(threads) {
  std::error_code error;
  fs::create_directories(root, error);
  if (!error) {
    fs::permissions(root, fs::perms(0750), error);
  }
  if (!error) {
    root_ = fs::canonical(root, error);
  }
  if (error) {
    throw std::system_error(error, "filesystem store root " + root.string());
  }
}

std::optional<std::string> filesystem_store::key_problem(std::string_view key) {
  if (key.empty()) {
    return "empty key";
  }
  if (key.front() == '/') {
    return "absolute key";
  }
  if (key.find('\0') != std::string_view::npos) {
    return "NUL byte in key";
  }
  std::string_view rest = key;
  for (;;) {
    const std::size_t slash = rest.find('/');
    const std::string_view segment = rest.substr(0, slash);
    if (segment.empty()) {
      return "empty segment";
    }
    if (segment == "." || segment == "..") {
      return "'" + std::string(segment) + "' segment";
    }
    if (segment.size() > 255) {
      return "segment longer than 255 bytes";
    }
    if (slash == std::string_view::npos) {
      return std::nullopt;
    }
    rest.remove_prefix(slash + 1);
  }
}

// Symbolic links inside the root may point anywhere: resolve what exists and compare.
std::optional<std::string> filesystem_store::escapes_root(const fs::path& target) const {
  std::error_code error;
  const fs::path resolved = fs::weakly_canonical(target, error);
  if (error) {
    return "cannot resolve " + target.string() + ": " + error.message();
  }
  if (!is_under(resolved, root_)) {
    return "resolves to " + resolved.string() + ", outside " + root_.string();
  }
  return std::nullopt;
}

std::unique_ptr<staged_file> filesystem_store::stage(const std::string& key,
                                                     std::uint64_t max_bytes) {
  if (const auto problem = key_problem(key)) {
    throw std::invalid_argument(refused("stage", key, *problem).message);
  }
  const fs::path target = root_ / key;
  if (const auto problem = escapes_root(target.parent_path())) {
    throw std::invalid_argument(refused("stage", key, *problem).message);
  }
  return std::make_unique<staged_file>(target.parent_path(), target.filename().string(), max_bytes);
}

put_result filesystem_store::put_blocking(const std::string& key, staged_file& file) {
  if (const auto problem = key_problem(key)) {
    return {refused("put", key, *problem)};
  }
  const fs::path target = root_ / key;
  if (const auto problem = escapes_root(target.parent_path())) {
    return {refused("put", key, *problem)};
  }
  try {
    const object_digest& digest = file.finish();

    // Already there with the same bytes: keep the existing file (and its mtime) untouched.
    // O_NOFOLLOW: a symbolic link at the key is replaced, never read through.
    file_descriptor existing(::open(target.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (existing.get() < 0 && errno != ENOENT && errno != ELOOP) {
      throw_errno(errno, "cannot open", target);
    }
    struct stat status {};
    if (existing.get() >= 0 && ::fstat(existing.get(), &status) != 0) {
      throw_errno(errno, "cannot stat", target);
    }
    if (existing.get() >= 0 && S_ISREG(status.st_mode) &&
        digest_file(existing.get(), target).sha256_hex == digest.sha256_hex) {
      if (::unlink(file.path().c_str()) != 0 && errno != ENOENT) {
        throw_errno(errno, "cannot remove", file.path());
      }
      file.release();
      return {std::nullopt, true};
    }

    if (::chmod(file.path().c_str(), 0440) != 0) {
      throw_errno(errno, "cannot set the mode of", file.path());
    }
    if (::rename(file.path().c_str(), target.c_str()) != 0) {
      throw_errno(errno, "cannot rename " + file.path().string() + " to", target);
    }
    file.release();
    // The rename is durable once its directory is; directories staging created on the way
    // need their own entries in their parents synced too, up to the root.
    for (fs::path directory = target.parent_path();; directory = directory.parent_path()) {
      fsync_directory(directory);
      if (directory == root_ || !is_under(directory, root_)) {
        break;
      }
    }
    return {};
  } catch (const std::system_error& error) {
    return {from_system_error("put", key, error)};
  }
}

awaitable<put_result> filesystem_store::put(const std::string& key, staged_file& file,
                                            const std::string&, const object_protection&) {
  auto result = co_await blocking_.run([&] { return put_blocking(key, file); });
  co_return result;
}

awaitable<put_result> filesystem_store::put_bytes(const std::string& key, std::string bytes,
                                                  const std::string&, const object_protection&) {
  auto result = co_await blocking_.run([&]() -> put_result {
    if (const auto problem = key_problem(key)) {
      return {refused("put", key, *problem)};
    }
    try {
      std::unique_ptr<staged_file> file = stage(key, bytes.size());
      file->write(bytes);
      return put_blocking(key, *file);
    } catch (const std::invalid_argument& error) {
      return {store_failure{false, error.what()}};
    } catch (const std::system_error& error) {
      return {from_system_error("put", key, error)};
    }
  });
  co_return result;
}

awaitable<read_result> filesystem_store::read_digest(const std::string& key) {
  auto result = co_await blocking_.run([&] { return read_blocking(key, nullptr); });
  co_return result;
}

awaitable<read_result> filesystem_store::copy_to(const std::string& key,
                                                 const std::filesystem::path& destination) {
  auto result = co_await blocking_.run([&] { return read_blocking(key, &destination); });
  co_return result;
}

read_result filesystem_store::read_blocking(const std::string& key,
                                            const std::filesystem::path* destination) {
  {
    if (const auto problem = key_problem(key)) {
      return read_failure(refused("read", key, *problem));
    }
    const fs::path target = root_ / key;
    if (const auto problem = escapes_root(target)) {
      return read_failure(refused("read", key, *problem));
    }
    try {
      file_descriptor fd(::open(target.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      if (fd.get() < 0 && (errno == ENOENT || errno == ENOTDIR)) {
        return read_failure({false, "read " + printable(key) + ": no object at " + target.string()},
                            true);
      }
      if (fd.get() < 0) {
        throw_errno(errno, "cannot open", target);
      }
      struct stat status {};
      if (::fstat(fd.get(), &status) != 0) {
        throw_errno(errno, "cannot stat", target);
      }
      if (!S_ISREG(status.st_mode)) {
        return read_failure(
            {false, "read " + printable(key) + ": " + target.string() + " is not a regular file"});
      }
      read_result out;
      if (destination == nullptr) {
        out.digest = digest_file(fd.get(), target);
        return out;
      }
      file_descriptor copy(
          ::open(destination->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640));
      if (copy.get() < 0) {
        throw_errno(errno, "cannot create", *destination);
      }
      try {
        out.digest = digest_file(fd.get(), target, copy.get(), *destination);
      } catch (...) {
        ::unlink(destination->c_str());
        throw;
      }
      return out;
    } catch (const std::system_error& error) {
      return read_failure(from_system_error("read", key, error));
    }
  }
}

awaitable<remove_result> filesystem_store::remove(const std::string& key) {
  auto result = co_await blocking_.run([&]() -> remove_result {
    if (const auto problem = key_problem(key)) {
      return {refused("remove", key, *problem), 0};
    }
    const fs::path target = root_ / key;
    if (const auto problem = escapes_root(target)) {
      return {refused("remove", key, *problem), 0};
    }
    try {
      if (::unlink(target.c_str()) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
          return {std::nullopt, 0};
        }
        throw_errno(errno, "cannot remove", target);
      }
      fsync_directory(target.parent_path());  // the removal is durable before it is recorded
      return {std::nullopt, 1};
    } catch (const std::system_error& error) {
      return {from_system_error("remove", key, error), 0};
    }
  });
  co_return result;
}

awaitable<std::optional<store_failure>> filesystem_store::protect(const std::string&,
                                                                  const object_protection&) {
  co_return std::nullopt;  // files are read-only from the start; nothing more can be asked
}

awaitable<list_result> filesystem_store::list(const std::string& prefix) {
  auto result = co_await blocking_.run([&]() -> list_result {
    // The prefix names a directory: "a/b/" is checked as the key "a/b".
    const std::string directory = prefix.substr(0, prefix.find_last_not_of('/') + 1);
    if (directory.empty() || prefix.back() != '/') {
      return {refused("list", prefix, "a prefix is a directory: not empty, ending with '/'"), {}};
    }
    if (const auto problem = key_problem(directory)) {
      return {refused("list", prefix, *problem), {}};
    }
    const fs::path start = root_ / directory;
    if (const auto problem = escapes_root(start)) {
      return {refused("list", prefix, *problem), {}};
    }
    list_result listed;
    std::error_code error;
    fs::recursive_directory_iterator entries(start, error);
    if (error) {
      if (error == std::errc::no_such_file_or_directory) {
        return listed;
      }
      return {from_system_error("list", prefix, std::system_error(error, start.string())), {}};
    }
    for (; entries != fs::recursive_directory_iterator(); entries.increment(error)) {
      if (error) {
        return {from_system_error("list", prefix, std::system_error(error, start.string())), {}};
      }
      const std::string name = entries->path().filename().string();
      if (entries->is_regular_file(error) && !name.starts_with(".")) {
        listed.keys.push_back(entries->path().lexically_relative(root_).generic_string());
      }
    }
    std::sort(listed.keys.begin(), listed.keys.end());
    return listed;
  });
  co_return result;
}

awaitable<std::optional<store_failure>> filesystem_store::check_protection() {
  co_return std::nullopt;
}

std::string filesystem_store::describe() const { return "filesystem " + root_.string(); }

awaitable<std::size_t> filesystem_store::remove_stale_staging(std::chrono::seconds older_than) {
  // Objects are staged in their own directories, so the whole tree is looked at.
  const std::size_t removed = co_await blocking_.run(
      [&] { return remove_stale_staging_files(root_, true, older_than); });
  co_return removed;
}

}  // namespace archiver::storage
