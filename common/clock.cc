#include "common/clock.h"

#include <ctime>

namespace shadan {

std::string formatRfc3339(int64_t unix_millis) {
  const std::time_t seconds = static_cast<std::time_t>(unix_millis / 1000);
  const int millis = static_cast<int>(unix_millis % 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[40];
  const size_t n = std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", &utc);
  char out[48];
  std::snprintf(out, sizeof out, "%.*s.%03dZ", static_cast<int>(n), buffer,
                millis < 0 ? 0 : millis);
  return out;
}

}  // namespace shadan
