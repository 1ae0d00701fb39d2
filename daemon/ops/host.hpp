// This machine's name, as the instance names that leases and the audit trail carry use it.
#pragma once

#include <string>

namespace archiver::ops {

// gethostname(), or "unknown" when it fails.
std::string host_name();

}  // namespace archiver::ops
