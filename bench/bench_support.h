#pragma once

// What the benchmarks share: one operation per repetition with median / p99 / max over the
// repetitions, and `nft -f FILE` run as a process (the reference every issue names).

#include <benchmark/benchmark.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <string>
#include <vector>

namespace shadan::bench {

// Nearest-rank percentile, p in (0, 1].
inline double percentile(const std::vector<double>& values, double p) {
  if (values.empty()) return 0;
  std::vector<double> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  const auto rank = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

enum class Timing { kReal, kManual };

// One iteration per repetition, so the aggregates are over single operations.
inline void registerSingleShot(benchmark::internal::Benchmark* bench, int repetitions,
                               Timing timing) {
  bench->Iterations(1)->Repetitions(repetitions)->Unit(benchmark::kMillisecond);
  if (timing == Timing::kManual) {
    bench->UseManualTime();
  } else {
    bench->UseRealTime();
  }
  bench->ComputeStatistics("p99", [](const std::vector<double>& v) { return percentile(v, 0.99); })
      ->ComputeStatistics("max", [](const std::vector<double>& v) { return percentile(v, 1.0); })
      ->ReportAggregatesOnly(true);
}

// Runs `nft -f path` and waits for it. False (with `error` set) if it could not start or
// did not exit 0.
inline bool runNftFile(const std::string& path, std::string& error) {
  std::string arg0 = "nft";
  std::string arg1 = "-f";
  std::string arg2 = path;
  char* argv[] = {arg0.data(), arg1.data(), arg2.data(), nullptr};
  pid_t pid = 0;
  if (posix_spawnp(&pid, "nft", nullptr, nullptr, argv, environ) != 0) {
    error = "posix_spawnp(nft) failed";
    return false;
  }
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    error = "nft -f failed";
    return false;
  }
  return true;
}

}  // namespace shadan::bench
