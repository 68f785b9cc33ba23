#pragma once

// How many file descriptors this process has open now: the entries of /proc/self/fd (the
// process_open_fds metric; the prober's descriptor budget).

#include <filesystem>
#include <system_error>

namespace shadan {

inline int openFileDescriptorCount() {
  std::error_code error;
  int count = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", error), end; !error && it != end;
       it.increment(error)) {
    ++count;
  }
  return count;
}

}  // namespace shadan
