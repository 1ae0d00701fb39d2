// Digests, staging files and the filesystem object store, on real files in a temporary directory
// (and, for a full disk, a tiny tmpfs mounted for the test).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "net/asio.hpp"
#include "ops/metrics.hpp"
#include "storage/blocking.hpp"
#include "storage/digest.hpp"
#include "storage/filesystem_store.hpp"
#include "storage/metered_store.hpp"
#include "storage/object_store.hpp"
#include "storage/s3_detail.hpp"

namespace fs = std::filesystem;
using namespace archiver;
using namespace archiver::storage;

namespace {

// A fresh directory under /tmp, removed with everything in it.
class temp_dir {
 public:
  temp_dir() {
    std::string pattern = "/tmp/storage_test.XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw std::system_error(errno, std::generic_category(), "mkdtemp");
    }
    path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Runs `task` to completion on `io` (this thread) and rethrows what escaped it.
template <class Task>
void run(asio::io_context& io, Task task) {
  std::exception_ptr escaped;
  bool done = false;
  asio::co_spawn(io, std::move(task), [&](std::exception_ptr e) {
    escaped = e;
    done = true;
  });
  io.restart();
  io.run();
  REQUIRE(done);
  if (escaped) {
    std::rethrow_exception(escaped);
  }
}

std::string pattern_bytes(std::size_t size) {
  std::string out(size, '\0');
  for (std::size_t i = 0; i < size; ++i) {
    out[i] = static_cast<char>((i * 7 + 3) % 251);
  }
  return out;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::string> entries(const fs::path& directory) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(directory)) {
    names.push_back(entry.path().filename().string());
  }
  return names;
}

unsigned mode_of(const fs::path& path) {
  struct stat status {};
  REQUIRE(::stat(path.c_str(), &status) == 0);
  return status.st_mode & 07777;
}

}  // namespace

TEST_CASE("digests match known vectors, whole or fed in odd-sized chunks") {
  CHECK(digest_of("").sha256_hex ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(digest_of("").md5_base64 == "1B2M2Y8AsgTpgAmY7PhCfg==");
  CHECK(digest_of("").size == 0);
  CHECK(digest_of("abc").sha256_hex ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(digest_of("abc").md5_base64 == "kAFQmDzST7DWlj99KOF/cg==");
  CHECK(digest_of("abc").size == 3);
  CHECK(sha256_hex("abc") == digest_of("abc").sha256_hex);

  struct vector {
    std::string input;
    const char* sha256;
    const char* md5;
  };
  const vector vectors[] = {
      // FIPS 180-2's million 'a'.
      {std::string(1'000'000, 'a'),
       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
       "dwfWrk4CfHDuoqk1wilvIQ=="},
      // 1 MiB of a pattern, digested by Python's hashlib.
      {pattern_bytes(1 << 20), "1ac437f476c488acba4000af7ae89ef53f7ffbeef2e937850985f5ceb8b5ae6f",
       "usJZ5vFMi4McAvhQQuE4BQ=="},
  };
  for (const vector& v : vectors) {
    for (std::size_t chunk :
         {std::size_t{1} << 21, std::size_t{3}, std::size_t{4093}, std::size_t{65537}}) {
      CAPTURE(chunk);
      streaming_digest digest;
      digest.update("");
      for (std::string_view rest(v.input); !rest.empty();) {
        const std::size_t take = std::min(chunk, rest.size());
        digest.update(rest.substr(0, take));
        rest.remove_prefix(take);
      }
      const object_digest out = digest.finish();
      CHECK(out.sha256_hex == v.sha256);
      CHECK(out.md5_base64 == v.md5);
      CHECK(out.size == v.input.size());
    }
  }
}

TEST_CASE("a finished digest refuses more bytes") {
  streaming_digest digest;
  digest.update("abc");
  digest.finish();
  CHECK_THROWS_AS(digest.update("d"), std::logic_error);
  CHECK_THROWS_AS(digest.finish(), std::logic_error);
}

TEST_CASE("a staged file is private, digested as written, and removed unless released") {
  temp_dir dir;
  const fs::path directory = dir.path() / "a" / "b";
  fs::path kept;
  {
    staged_file file(directory, "object.pdf");
    CHECK(fs::is_directory(directory));
    CHECK(mode_of(directory) == 0750);
    CHECK(mode_of(dir.path() / "a") == 0750);
    CHECK(file.path().parent_path() == directory);
    const std::string name = file.path().filename().string();
    CHECK(name.rfind(".object.pdf.", 0) == 0);
    CHECK(name.size() == std::string(".object.pdf.").size() + 16 + 4);
    CHECK(name.substr(name.size() - 4) == ".tmp");
    CHECK(mode_of(file.path()) == 0600);
    CHECK_THROWS_AS(file.digest(), std::logic_error);

    file.write("ab");
    file.write("");
    file.write("c");
    CHECK(file.size() == 3);
    const object_digest& digest = file.finish();
    CHECK(file.finished());
    CHECK(digest.sha256_hex == sha256_hex("abc"));
    CHECK(digest.size == 3);
    CHECK(read_file(file.path()) == "abc");
    CHECK_THROWS_AS(file.write("d"), std::logic_error);
    kept = file.path();
  }
  CHECK_FALSE(fs::exists(kept));
  CHECK(entries(directory).empty());

  {
    staged_file first(directory, "same");
    staged_file second(directory, "same");
    CHECK(first.path() != second.path());  // random names: concurrent writers never collide
    first.release();
    kept = first.path();
  }
  CHECK(fs::exists(kept));
  CHECK(entries(directory).size() == 1);
}

TEST_CASE("a staged file refuses bytes beyond its limit and is then gone") {
  temp_dir dir;
  staged_file file(dir.path(), "capped", 4);
  file.write("abcd");
  try {
    file.write("e");
    FAIL("a fifth byte was accepted");
  } catch (const std::system_error& error) {
    CHECK(error.code().value() == EFBIG);
    CHECK(std::string(error.what()).find(file.path().string()) != std::string::npos);
  }
  CHECK(entries(dir.path()).empty());
  CHECK_THROWS_AS(file.finish(), std::system_error);
}

TEST_CASE("a staging file that cannot be created throws, naming the path") {
  temp_dir dir;
  std::ofstream(dir.path() / "plain") << "x";
  try {
    staged_file file(dir.path() / "plain" / "sub", "x");
    FAIL("created a staging file under a regular file");
  } catch (const std::system_error& error) {
    CHECK(std::string(error.what()).find((dir.path() / "plain").string()) != std::string::npos);
  }
}

TEST_CASE("blocking work runs off the io_context thread and the caller resumes on it") {
  asio::io_context io;
  blocking_pool pool(2);
  const std::thread::id io_thread = std::this_thread::get_id();
  run(io, [&]() -> awaitable<void> {
    std::promise<void> io_ran;
    // The work waits for a handler that only the io_context thread can run: were the work on
    // that thread, it would time out.
    asio::post(io, [&] { io_ran.set_value(); });
    const auto [work_thread, io_was_free] = co_await pool.run([&] {
      const bool ran =
          io_ran.get_future().wait_for(std::chrono::seconds(10)) == std::future_status::ready;
      return std::pair(std::this_thread::get_id(), ran);
    });
    CHECK(work_thread != io_thread);
    CHECK(io_was_free);
    CHECK(std::this_thread::get_id() == io_thread);

    co_await pool.run([] {});
    CHECK(std::this_thread::get_id() == io_thread);

    bool threw = false;
    try {
      co_await pool.run([]() -> int { throw std::runtime_error("from the pool"); });
    } catch (const std::runtime_error& error) {
      threw = std::string(error.what()) == "from the pool";
    }
    CHECK(threw);
    CHECK(std::this_thread::get_id() == io_thread);
  });
}

TEST_CASE("filesystem store: list the keys under a prefix, sorted, staging files left out") {
  temp_dir dir;
  const fs::path root = dir.path() / "archive";
  filesystem_store store(root);
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    const list_result nothing = co_await store.list("audit/digests/");
    CHECK_FALSE(nothing.failure);
    CHECK(nothing.keys.empty());
    for (const std::string key : {"audit/digests/2.json", "audit/digests/1.json",
                                  "audit/digests/more/3.json", "audit/other.json"}) {
      const put_result put = co_await store.put_bytes(key, "{}", "application/json", {});
      CHECK_FALSE(put.failure);
    }
    auto staged = store.stage("audit/digests/4.json", 10);  // not finished: not an object
    const list_result listed = co_await store.list("audit/digests/");
    CHECK_FALSE(listed.failure);
    CHECK(listed.keys == std::vector<std::string>{"audit/digests/1.json", "audit/digests/2.json",
                                                  "audit/digests/more/3.json"});
    const list_result refused = co_await store.list("../");
    CHECK(refused.failure);
    const list_result not_a_directory = co_await store.list("audit/digests");
    CHECK(not_a_directory.failure);
  });
}

TEST_CASE("filesystem store: put, put again, replace, put_bytes, read back") {
  temp_dir dir;
  const fs::path root = dir.path() / "archive";
  filesystem_store store(root);
  CHECK(store.describe() == "filesystem " + fs::canonical(root).string());
  CHECK(mode_of(root) == 0750);

  asio::io_context io;
  const std::thread::id io_thread = std::this_thread::get_id();
  const std::string key = "cases/2026/11/report.pdf";
  const fs::path final_path = root / key;

  run(io, [&]() -> awaitable<void> {
    // First put: the staged file becomes the object.
    {
      auto file = store.stage(key, 1 << 20);
      CHECK(file->path().parent_path() == final_path.parent_path());
      file->write("first version");
      file->finish();
      const put_result result = co_await store.put(key, *file, "application/pdf", {});
      CHECK(std::this_thread::get_id() == io_thread);
      CHECK_FALSE(result.failure);
      CHECK_FALSE(result.already_present);
    }
    CHECK(read_file(final_path) == "first version");
    CHECK(mode_of(final_path) == 0440);
    CHECK(mode_of(final_path.parent_path()) == 0750);
    CHECK(mode_of(root / "cases") == 0750);
    CHECK(entries(final_path.parent_path()) == std::vector<std::string>{"report.pdf"});

    // The same bytes again: nothing written, the staged file removed at once.
    struct stat before {};
    REQUIRE(::stat(final_path.c_str(), &before) == 0);
    {
      auto file = store.stage(key, 1 << 20);
      file->write("first version");  // put finishes it when the caller did not
      const fs::path staged = file->path();
      const put_result result = co_await store.put(key, *file, "application/pdf", {});
      CHECK(std::this_thread::get_id() == io_thread);
      CHECK_FALSE(result.failure);
      CHECK(result.already_present);
      CHECK_FALSE(fs::exists(staged));
    }
    struct stat after {};
    REQUIRE(::stat(final_path.c_str(), &after) == 0);
    CHECK(after.st_ino == before.st_ino);

    // Different bytes: replaced by a rename, so a reader holding the old file still sees it
    // whole, and a new reader sees only the new one.
    const int old_reader = ::open(final_path.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(old_reader >= 0);
    {
      auto file = store.stage(key, 1 << 20);
      file->write("second, longer version");
      file->finish();
      const put_result result = co_await store.put(key, *file, "application/pdf", {});
      CHECK_FALSE(result.failure);
      CHECK_FALSE(result.already_present);
    }
    char old_bytes[64] = {};
    const ssize_t got = ::pread(old_reader, old_bytes, sizeof old_bytes, 0);
    ::close(old_reader);
    CHECK(std::string(old_bytes, got > 0 ? static_cast<std::size_t>(got) : 0) == "first version");
    CHECK(read_file(final_path) == "second, longer version");
    REQUIRE(::stat(final_path.c_str(), &after) == 0);
    CHECK(after.st_ino != before.st_ino);
    CHECK(entries(final_path.parent_path()) == std::vector<std::string>{"report.pdf"});

    // put_bytes, then read both objects back.
    const std::string manifest = R"({"case":"1"})";
    const put_result bytes_result =
        co_await store.put_bytes("cases/2026/11/manifest.json", manifest, "application/json", {});
    CHECK(std::this_thread::get_id() == io_thread);
    CHECK_FALSE(bytes_result.failure);
    CHECK(read_file(root / "cases/2026/11/manifest.json") == manifest);
    CHECK(mode_of(root / "cases/2026/11/manifest.json") == 0440);
    const put_result again =
        co_await store.put_bytes("cases/2026/11/manifest.json", manifest, "", {});
    CHECK(again.already_present);

    const read_result read = co_await store.read_digest("cases/2026/11/manifest.json");
    CHECK(std::this_thread::get_id() == io_thread);
    CHECK_FALSE(read.failure);
    CHECK_FALSE(read.not_found);
    CHECK(read.digest.sha256_hex == sha256_hex(manifest));
    CHECK(read.digest.md5_base64 == digest_of(manifest).md5_base64);
    CHECK(read.digest.size == manifest.size());
    const read_result report = co_await store.read_digest(key);
    CHECK(report.digest.sha256_hex == sha256_hex("second, longer version"));

    for (const char* missing : {"cases/2026/11/nothing.pdf", "no/such/directory.pdf",
                                "cases/2026/11/report.pdf/below-a-file"}) {
      CAPTURE(missing);
      const read_result absent = co_await store.read_digest(missing);
      CHECK(absent.not_found);
      REQUIRE(absent.failure);
      CHECK_FALSE(absent.failure->retryable);
    }
    CHECK(entries(final_path.parent_path()).size() == 2);  // no staging file left anywhere
  });
}

TEST_CASE("filesystem store refuses keys that are not plain relative paths inside the root") {
  temp_dir dir;
  const fs::path root = dir.path() / "archive";
  const fs::path outside = dir.path() / "outside";
  fs::create_directories(outside);
  filesystem_store store(root);
  fs::create_directory_symlink(outside, root / "escape");
  fs::create_directory_symlink("..", root / "up");
  fs::create_directories(root / "inner");
  fs::create_directory_symlink("inner", root / "alias");  // stays inside: allowed

  const std::vector<std::string> refused_keys = {
      "",
      "/etc/passwd",
      "a//b",
      "a/",
      "/",
      ".",
      "..",
      "a/./b",
      "a/../b",
      "../outside/x",
      "./a",
      "a/..",
      "escape/x",
      "up/outside/x",
      std::string("a\0b", 3),
      std::string(256, 'n'),
  };
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    for (const std::string& key : refused_keys) {
      CAPTURE(key);
      const put_result put = co_await store.put_bytes(key, "data", "", {});
      REQUIRE(put.failure);
      CHECK_FALSE(put.failure->retryable);
      CHECK(put.failure->message.find("refused key") != std::string::npos);
      CHECK(put.failure->message.find('\n') == std::string::npos);
      CHECK_FALSE(put.already_present);

      const read_result read = co_await store.read_digest(key);
      REQUIRE(read.failure);
      CHECK_FALSE(read.failure->retryable);
      CHECK(read.failure->message.find("refused key") != std::string::npos);

      CHECK_THROWS_AS(store.stage(key, 100), std::invalid_argument);
    }
    const put_result inside = co_await store.put_bytes("alias/x", "data", "", {});
    CHECK_FALSE(inside.failure);
    CHECK(read_file(root / "inner" / "x") == "data");
  });
  CHECK(entries(outside).empty());
  CHECK(fs::exists(root / "inner" / "x"));
  CHECK(entries(root).size() == 4);  // escape, up, inner, alias: nothing else was written
}

TEST_CASE("filesystem store: a failed put leaves neither the object nor a staging file") {
  temp_dir dir;
  const fs::path root = dir.path() / "archive";
  filesystem_store store(root);
  fs::create_directories(root / "taken" / "child");  // a directory where the object would go

  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    const put_result result = co_await store.put_bytes("taken", "data", "", {});
    REQUIRE(result.failure);
    CHECK_FALSE(result.failure->retryable);
    CHECK(result.failure->message.find("taken") != std::string::npos);
  });
  CHECK(entries(root) == std::vector<std::string>{"taken"});
  CHECK(entries(root / "taken") == std::vector<std::string>{"child"});
}

TEST_CASE("filesystem store on a full disk: retryable failure, nothing left behind, then success") {
  const char* no_mount = std::getenv("ARCHIVER_TEST_NO_MOUNT");
  const bool may_skip = no_mount != nullptr && std::string(no_mount) == "1";
  temp_dir dir;
  const fs::path mount_point = dir.path() / "tiny";
  fs::create_directories(mount_point);
  const std::string mount_command =
      "mount -t tmpfs -o size=256k tmpfs '" + mount_point.string() + "' 2>&1";
  if (::geteuid() != 0 || std::system(mount_command.c_str()) != 0) {
    if (may_skip) {
      MESSAGE("skipped: cannot mount a tmpfs (needs root); ARCHIVER_TEST_NO_MOUNT=1 is set");
      return;
    }
    FAIL(
        "the full-disk test mounts a 256 KiB tmpfs and needs root (CI runs as root); set "
        "ARCHIVER_TEST_NO_MOUNT=1 to skip it");
  }
  struct unmount {
    std::string command;
    ~unmount() {
      if (std::system(command.c_str()) != 0) {
        MESSAGE("could not unmount: " << command);
      }
    }
  } unmount_at_end{"umount '" + mount_point.string() + "'"};

  const fs::path root = mount_point / "archive";
  const std::string mebibyte = pattern_bytes(1 << 20);
  {
    filesystem_store store(root);

    // A download streamed into a staged file: write() reports ENOSPC and removes the file.
    {
      auto file = store.stage("big/download.bin", 2 << 20);
      int error = 0;
      try {
        for (std::size_t offset = 0; offset < mebibyte.size(); offset += 64 * 1024) {
          file->write(std::string_view(mebibyte).substr(offset, 64 * 1024));
        }
      } catch (const std::system_error& e) {
        error = e.code().value();
        CHECK(std::string(e.what()).find(file->path().string()) != std::string::npos);
      }
      CHECK(error == ENOSPC);
      CHECK(entries(root / "big").empty());  // gone before the staged_file is destroyed
    }
    CHECK(entries(root / "big").empty());

    asio::io_context io;
    run(io, [&]() -> awaitable<void> {
      const put_result big = co_await store.put_bytes("big/object.bin", mebibyte, "", {});
      REQUIRE(big.failure);
      CHECK(big.failure->retryable);
      CHECK(big.failure->message.find("No space left on device") != std::string::npos);
      CHECK(entries(root / "big").empty());

      // Fill the disk, fail a small put, free the space, and the same put succeeds.
      {
        const fs::path filler = mount_point / "filler";
        const int fd = ::open(filler.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        REQUIRE(fd >= 0);
        while (::write(fd, mebibyte.data(), 4096) > 0) {
        }
        ::close(fd);
        const put_result small = co_await store.put_bytes("small/object.bin", "x", "", {});
        REQUIRE(small.failure);
        CHECK(small.failure->retryable);
        CHECK_FALSE(fs::exists(root / "small" / "object.bin"));
        if (fs::exists(root / "small")) {
          CHECK(entries(root / "small").empty());
        }
        fs::remove(filler);
      }
      const std::string content = mebibyte.substr(0, 64 * 1024);
      const put_result after = co_await store.put_bytes("small/object.bin", content, "", {});
      CHECK_FALSE(after.failure);
      CHECK(read_file(root / "small" / "object.bin") == content);
      CHECK(entries(root / "small") == std::vector<std::string>{"object.bin"});
      const read_result read = co_await store.read_digest("small/object.bin");
      CHECK(read.digest.sha256_hex == sha256_hex(content));
    });
  }
}

TEST_CASE("stale staging files of a dead process are removed; fresh ones and others are kept") {
  const fs::path dir = fs::path("/tmp") / ("stale-staging-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "cases" / "c1");
  const auto touch = [](const fs::path& path, std::chrono::hours age) {
    std::ofstream(path) << "partial";
    fs::last_write_time(path, fs::file_time_type::clock::now() - age);
  };
  touch(dir / "cases" / "c1" / ".f1-scan.pdf.0123456789abcdef.tmp", std::chrono::hours(2));
  touch(dir / ".manifest.json.00aa.tmp", std::chrono::hours(3));
  touch(dir / "cases" / "c1" / ".f2.pdf.fedcba.tmp", std::chrono::hours(0));  // being written
  touch(dir / "cases" / "c1" / "f3-archived.tmp", std::chrono::hours(5));     // an object
  touch(dir / "cases" / "c1" / ".hidden", std::chrono::hours(5));

  CHECK(remove_stale_staging_files(dir, false, std::chrono::hours(1)) == 1);  // top level only
  CHECK(remove_stale_staging_files(dir, true, std::chrono::hours(1)) == 1);
  CHECK_FALSE(fs::exists(dir / "cases" / "c1" / ".f1-scan.pdf.0123456789abcdef.tmp"));
  CHECK(fs::exists(dir / "cases" / "c1" / ".f2.pdf.fedcba.tmp"));
  CHECK(fs::exists(dir / "cases" / "c1" / "f3-archived.tmp"));
  CHECK(fs::exists(dir / "cases" / "c1" / ".hidden"));
  CHECK(remove_stale_staging_files(dir / "missing", true, std::chrono::hours(1)) == 0);

  asio::io_context io(1);
  filesystem_store store(dir);
  touch(dir / "cases" / "c1" / ".old.pdf.99.tmp", std::chrono::hours(2));
  std::size_t removed = 0;
  asio::co_spawn(io, store.remove_stale_staging(std::chrono::hours(1)),
                 [&](std::exception_ptr, std::size_t n) { removed = n; });
  io.run();
  CHECK(removed == 1);
  fs::remove_all(dir);
}

TEST_CASE("S3 encryption at rest: the headers asked, and an answer naming another refused") {
  using archiver::storage::s3_detail::check_encryption;
  using archiver::storage::s3_detail::encryption_headers;
  archiver::config::s3_settings s3;
  CHECK(encryption_headers(s3).empty());
  archiver::http::response_head head;
  head.status = 200;
  head.headers = {{"X-Amz-Server-Side-Encryption", "AES256"}};
  CHECK_FALSE(check_encryption("put", "k", s3, head));  // nothing asked: nothing checked

  s3.sse = "AES256";
  CHECK(encryption_headers(s3) ==
        archiver::storage::s3_detail::header_list{{"x-amz-server-side-encryption", "AES256"}});
  CHECK_FALSE(check_encryption("put", "k", s3, head));
  CHECK_FALSE(check_encryption("put", "k", s3, {}));  // a store that says nothing passes

  s3.sse = "aws:kms";
  s3.sse_kms_key_id = "key-1";
  CHECK(encryption_headers(s3) == archiver::storage::s3_detail::header_list{
                                      {"x-amz-server-side-encryption", "aws:kms"},
                                      {"x-amz-server-side-encryption-aws-kms-key-id", "key-1"}});
  const auto refused = check_encryption("put", "k", s3, head);
  REQUIRE(refused);
  CHECK_FALSE(refused->retryable);
  CHECK(refused->message ==
        "s3 put k: the store encrypted the object with AES256, not aws:kms as storage.s3.sse asks");
  head.headers = {{"x-amz-server-side-encryption", "aws:kms"},
                  {"x-amz-server-side-encryption-aws-kms-key-id",
                   "arn:aws:kms:us-east-1:111122223333:key/key-1"}};
  CHECK_FALSE(check_encryption("put", "k", s3, head));  // AWS answers with the key's ARN
  head.headers[1].second = "arn:aws:kms:us-east-1:111122223333:key/other";
  REQUIRE(check_encryption("put", "k", s3, head));
}

TEST_CASE("S3 Object Lock: the case's date while ahead, else a default or a day; a hold's header") {
  using archiver::storage::object_protection;
  using archiver::storage::s3_detail::header_list;
  using archiver::storage::s3_detail::lock_date;
  using archiver::storage::s3_detail::object_lock_headers;
  using std::chrono::days;
  using std::chrono::sys_days;
  using std::chrono::sys_seconds;
  using namespace std::chrono_literals;
  const sys_seconds now = sys_days(std::chrono::year(2026) / 12 / 7) + 11h + 30min;
  CHECK(lock_date(now) == "2026-12-07T11:30:00.000Z");
  using archiver::storage::s3_detail::lock_extends;
  CHECK(lock_extends("2027-01-01T00:00:00Z", "2027-01-01T00:00:01.000Z"));
  CHECK_FALSE(lock_extends("2027-01-01T00:00:00.999Z", "2027-01-01T00:00:00.000Z"));
  CHECK_FALSE(lock_extends("2032-01-01T00:00:00Z", "2027-01-01T00:00:00.000Z"));
  archiver::config::s3_settings s3;
  const object_protection closed{sys_days(std::chrono::year(2032) / 12 / 7) + 9h, false};
  CHECK(object_lock_headers(s3, closed, now).empty());  // no mode: no lock

  s3.object_lock_mode = "COMPLIANCE";
  s3.object_lock_days = 30;
  CHECK(object_lock_headers(s3, closed, now) ==
        header_list{{"x-amz-object-lock-mode", "COMPLIANCE"},
                    {"x-amz-object-lock-retain-until-date", "2032-12-07T09:00:00.000Z"}});
  // Open or kept forever: no date of its own.
  CHECK(object_lock_headers(s3, {std::nullopt, false}, now) ==
        header_list{{"x-amz-object-lock-mode", "COMPLIANCE"},
                    {"x-amz-object-lock-retain-until-date", "2027-01-06T11:30:00.000Z"}});
  // Its date has passed (the purge is due): locked a day, not object_lock_days.
  const object_protection due{now - days(3), true};
  CHECK(object_lock_headers(s3, due, now) ==
        header_list{{"x-amz-object-lock-mode", "COMPLIANCE"},
                    {"x-amz-object-lock-retain-until-date", "2026-12-08T11:30:00.000Z"},
                    {"x-amz-object-lock-legal-hold", "ON"}});
}

TEST_CASE("metered store: forwards every operation and counts it by operation and outcome") {
  temp_dir dir;
  filesystem_store inner(dir.path() / "archive");
  ops::registry registry;
  metered_store store(inner, registry);
  CHECK(store.describe() == inner.describe());
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    const put_result put = co_await store.put_bytes("a/b.json", "{}", "application/json", {});
    CHECK_FALSE(put.failure);
    auto staged = store.stage("a/c.bin", 100);
    staged->write("bytes");
    staged->finish();
    const put_result put_file = co_await store.put("a/c.bin", *staged, "text/plain", {});
    CHECK_FALSE(put_file.failure);
    const put_result refused = co_await store.put_bytes("../escape", "x", "text/plain", {});
    CHECK(refused.failure);
    const read_result read = co_await store.read_digest("a/b.json");
    CHECK_FALSE(read.failure);
    const read_result missing = co_await store.read_digest("a/none.json");
    CHECK(missing.not_found);
    const list_result listed = co_await store.list("a/");
    CHECK(listed.keys == std::vector<std::string>{"a/b.json", "a/c.bin"});
    const remove_result removed = co_await store.remove("a/b.json");
    CHECK(removed.removed == 1);
  });
  const std::string text = registry.expose();
  const auto has = [&](const std::string& line) { return text.find(line) != std::string::npos; };
  CHECK(has("certn_archiver_storage_operations_total{operation=\"put\",outcome=\"ok\"} 2"));
  CHECK(has("certn_archiver_storage_operations_total{operation=\"put\",outcome=\"failed\"} 1"));
  CHECK(has("certn_archiver_storage_operations_total{operation=\"read\",outcome=\"ok\"} 1"));
  CHECK(has("certn_archiver_storage_operations_total{operation=\"read\",outcome=\"not_found\"} 1"));
  CHECK(has("certn_archiver_storage_operations_total{operation=\"list\",outcome=\"ok\"} 1"));
  CHECK(has("certn_archiver_storage_operations_total{operation=\"remove\",outcome=\"ok\"} 1"));
}
