#include "service/progress.hpp"

#include <unistd.h>

#include <cstdio>

namespace archiver::service {

progress::progress(std::string what, std::uint64_t total)
    : what_(std::move(what)), total_(total), enabled_(::isatty(STDERR_FILENO) == 1) {}

progress::~progress() {
  if (drawn_) {
    std::fputs("\r\033[K", stderr);  // back to the start of the line, and erase it
    std::fflush(stderr);
  }
}

void progress::update(std::uint64_t done) {
  if (!enabled_) {
    return;
  }
  const auto now = std::chrono::steady_clock::now();
  const bool last = total_ > 0 && done >= total_;
  if (drawn_ && !last && now - last_ < std::chrono::milliseconds(200)) {
    return;
  }
  last_ = now;
  drawn_ = true;
  if (total_ > 0) {
    std::fprintf(stderr, "\r\033[K%s %llu/%llu (%llu%%)", what_.c_str(),
                 static_cast<unsigned long long>(done), static_cast<unsigned long long>(total_),
                 static_cast<unsigned long long>(done * 100 / total_));
  } else {
    std::fprintf(stderr, "\r\033[K%s %llu", what_.c_str(), static_cast<unsigned long long>(done));
  }
  std::fflush(stderr);
}

}  // namespace archiver::service
