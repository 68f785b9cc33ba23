#pragma once

// What the benchmarks share: one operation per repetition with median / p99 / max over the
// repetitions, `nft -f FILE` run as a process (the reference every issue names), and a private
// network namespace to run in, with or without a foreign firewall.

#include <benchmark/benchmark.h>
#include <sched.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
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

// Debian 12's /etc/nftables.conf as shipped (package nftables): what a Debian gateway with the
// nftables service enabled has loaded before any Shadan table exists.
inline constexpr const char* kDebianDefaultRuleset = R"nft(
table inet filter {
	chain input {
		type filter hook input priority filter;
	}
	chain forward {
		type filter hook forward priority filter;
	}
	chain output {
		type filter hook output priority filter;
	}
}
)nft";

// Loads `ruleset` into the current namespace with `nft -f -`.
inline bool loadRuleset(const char* ruleset) {
  FILE* nft = ::popen("nft -f -", "w");
  if (nft == nullptr) return false;
  const bool written = std::fputs(ruleset, nft) >= 0;
  return ::pclose(nft) == 0 && written;
}

// Moves the process into a fresh network namespace (so the host's ruleset, routes and conntrack
// are never touched; the namespace dies with the process) with `lo` up, before any netlink
// socket exists. Takes our own option out of argv before Google Benchmark sees it:
//   --gateway-firewall=none    (default) nothing but Shadan's table in the namespace
//   --gateway-firewall=debian  Debian's default nftables.conf loaded first. Netfilter hooks are
//     counted per hook point for the whole kernel: on a machine where no base chain uses a hook
//     yet, the first one registered patches kernel text on every CPU (static keys), and the
//     last one removed patches it back. A gateway with any firewall never pays that; a bare VM
//     pays it on every isolate and restore.
// Returns 0, or the exit code for main() after printing why.
inline int enterBenchNamespace(int& argc, char** argv) {
  std::string firewall = "none";
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.starts_with("--gateway-firewall=")) {
      firewall = std::string(arg.substr(std::strlen("--gateway-firewall=")));
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  if (firewall != "none" && firewall != "debian") {
    std::fprintf(stderr, "--gateway-firewall: expected none or debian, got \"%s\"\n",
                 firewall.c_str());
    return 2;
  }
  if (::unshare(CLONE_NEWNET) != 0) {
    std::fprintf(stderr, "unshare(CLONE_NEWNET): %s (run as root)\n", std::strerror(errno));
    return 1;
  }
  // `iif "lo"` needs the device; up so it is a realistic loopback.
  if (std::system("ip link set lo up") != 0) {
    std::fprintf(stderr, "cannot bring lo up in the benchmark namespace\n");
    return 1;
  }
  if (firewall == "debian" && !loadRuleset(kDebianDefaultRuleset)) {
    std::fprintf(stderr, "cannot load Debian's default ruleset in the benchmark namespace\n");
    return 1;
  }
  std::fprintf(stderr, "gateway firewall: %s\n", firewall.c_str());
  return 0;
}

}  // namespace shadan::bench
