// bench/download's client side: streams one URL to a file through the daemon's HTTP client and
// prints bytes, seconds, MiB/s and the process's peak RSS, for run.sh to set beside curl -o.
// Usage: bench-download URL OUTPUT_FILE
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "http/client.hpp"
#include "net/asio.hpp"

namespace {

using namespace archiver;

// Writes each chunk straight to the file: nothing is kept in memory.
class file_sink final : public http::body_sink {
 public:
  explicit file_sink(const char* path) : fd_(::open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) {
    if (fd_ < 0) {
      throw std::runtime_error(std::string("cannot open ") + path);
    }
  }
  ~file_sink() override { ::close(fd_); }
  void write(std::string_view chunk) override {
    while (!chunk.empty()) {
      const ssize_t written = ::write(fd_, chunk.data(), chunk.size());
      if (written < 0) {
        throw std::runtime_error("write failed");
      }
      chunk.remove_prefix(static_cast<std::size_t>(written));
    }
  }

 private:
  int fd_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: bench-download URL OUTPUT_FILE\n");
    return 2;
  }
  asio::io_context io(1);
  http::destination_policy policy;
  policy.allow_plain_http = true;
  policy.allow_special_addresses = true;  // certn-sim on loopback
  http::client client(io, policy, nullptr);
  file_sink sink(argv[2]);
  http::request_options options;
  options.total_timeout = std::chrono::hours(1);
  http::fetch_result result;
  const auto started = std::chrono::steady_clock::now();
  auto finished = started;
  // Stopped at completion: the pool's idle connection would keep io.run() going.
  asio::co_spawn(io, client.fetch(argv[1], options, sink),
                 [&](std::exception_ptr error, http::fetch_result r) {
                   if (error) {
                     std::rethrow_exception(error);
                   }
                   result = std::move(r);
                   finished = std::chrono::steady_clock::now();
                   io.stop();
                 });
  io.run();
  const double seconds = std::chrono::duration<double>(finished - started).count();
  if (result.error != http::failure::none || result.head.status != 200) {
    std::fprintf(stderr, "download failed: %d %s\n", result.head.status, result.message.c_str());
    return 1;
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("bytes=%llu seconds=%.3f mib_per_s=%.1f peak_rss_kib=%ld\n",
              static_cast<unsigned long long>(result.body_bytes), seconds,
              static_cast<double>(result.body_bytes) / (1024.0 * 1024.0) / seconds,
              usage.ru_maxrss);
  return 0;
}
