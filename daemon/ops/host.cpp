#include "ops/host.hpp"

#include <unistd.h>

namespace archiver::ops {

std::string host_name() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) {
    return "unknown";
  }
  return host;
}

}  // namespace archiver::ops
