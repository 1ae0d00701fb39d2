#include "certn/key_expiry.hpp"

#include <cmath>

#include "encoding/encoding.hpp"

namespace archiver::certn {

double days_until_key_expires(std::chrono::sys_days created,
                              std::chrono::system_clock::time_point now) {
  const auto expires = std::chrono::system_clock::time_point(created + key_lifetime);
  return std::chrono::duration<double, std::ratio<86400>>(expires - now).count();
}

key_expiry_state key_expiry_state_of(double days_left) {
  if (days_left <= 0) {
    return key_expiry_state::expired;
  }
  if (days_left <= static_cast<double>(key_warning_window.count())) {
    return key_expiry_state::expiring_soon;
  }
  return key_expiry_state::fine;
}

std::string describe_key_expiry(std::chrono::sys_days created, double days_left) {
  const std::string expires = encoding::format_utc_day(created + key_lifetime);
  const std::string head =
      "the Certn API key (certn.api_key_created = " + encoding::format_utc_day(created) + ")";
  switch (key_expiry_state_of(days_left)) {
    case key_expiry_state::expired:
      return head + " expired on " + expires +
             ": create a new key in Certn, put it in certn.api_key (or its file), set "
             "certn.api_key_created and reload";
    case key_expiry_state::expiring_soon:
      return head + " expires on " + expires + ", in " +
             std::to_string(static_cast<int>(std::ceil(days_left))) +
             " day(s): create a new key in Certn, put it in certn.api_key (or its file), set "
             "certn.api_key_created and reload";
    case key_expiry_state::fine:
      break;
  }
  return head + " expires on " + expires + ", in " +
         std::to_string(static_cast<int>(std::floor(days_left))) + " days";
}

}  // namespace archiver::certn
