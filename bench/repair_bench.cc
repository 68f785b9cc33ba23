// repair_bench: how fast the agent daemon puts its table back after a foreign `nft flush
// ruleset`, and what the idle daemon costs (docs/benchmarks.md, "Daemon: repair after a foreign
// flush").
//
// Needs root. Builds the standard lab (namespaces sd-b<pid>-*, deleted at exit), starts the real
// `shadan-agent run` in the lab's gateway namespace (tests/integration/agent_process.h), isolates
// `office` through the daemon, then, from a thread inside the gateway's namespace:
//   t0  flush ruleset, in-process (NftablesBackend: one netlink transaction, committed by us)
//   t1  the flush returned (the kernel committed it)
//   t2  the NftMonitor (NFNLGRP_NFTABLES) delivers the daemon's transaction that re-creates
//       `table inet shadan` (committed by another task than ours) — the table is back in the
//       kernel at this instant; it is then read back and must hash to the applied table.
// Reported: t2 - t0 (foreign flush issued -> isolation back) and t2 - t1.
// Then the idle daemon: CPU (utime + stime from /proc/<pid>/stat) over an idle window, and
// VmRSS (RssAnon, RssFile, RssShmem) / VmHWM from /proc/<pid>/status and Pss from
// /proc/<pid>/smaps_rollup.
//
//   usage: repair_bench [--trials N] [--idle-seconds S]   (defaults 100, 30)

#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "agents/dataplane/nft_monitor.h"
#include "agents/dataplane/nftables_backend.h"
#include "cli/lab/command_runner.h"
#include "cli/lab/lab.h"
#include "cli/lab/netns.h"
#include "tests/integration/agent_process.h"

namespace shadan {

using namespace shadan::agent;  // NOLINT: the agent under test
namespace {

using Clock = std::chrono::steady_clock;

const std::string kPolicy = std::string(SHADAN_SOURCE_DIR) + "/policies/examples/lab.json";
const std::string kAgent = std::string(SHADAN_BINARY_DIR) + "/agents/shadan-agent";

struct Trial {
  double from_issue_ms = 0;   // t2 - t0
  double from_commit_ms = 0;  // t2 - t1
};

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Waits for the first transaction committed by another task than ours that touched our table,
// and returns when it arrived.
Result<Clock::time_point> waitForForeignCommit(NftMonitor& monitor, uint32_t self_tid,
                                               std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    SHADAN_ASSIGN_OR_RETURN(auto events, monitor.drain());
    for (const auto& event : events) {
      if (event.lost) return makeError(ErrorCode::kIo, "nftables events lost (ENOBUFS)");
      if (event.pid != self_tid && event.touched_our_table) return Clock::now();
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return makeError(ErrorCode::kUnavailable, "table not back in time");
    pollfd fd{monitor.fd(), POLLIN, 0};
    ::poll(&fd, 1, static_cast<int>(left.count()));
  }
}

Status runTrials(int trials, std::vector<Trial>& out) {
  SHADAN_ASSIGN_OR_RETURN(auto backend, NftablesBackend::create());
  SHADAN_ASSIGN_OR_RETURN(auto monitor, NftMonitor::open(NftMonitorOptions{}));
  SHADAN_ASSIGN_OR_RETURN(auto reference, backend->readTable());
  if (!reference.present) return makeError(ErrorCode::kInternal, "no table inet shadan to flush");
  const auto self_tid = static_cast<uint32_t>(::syscall(SYS_gettid));
  for (int i = 0; i < trials; ++i) {
    // Quiet start: nothing pending from the previous trial.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (auto drained = monitor->drain(); !drained.ok()) return drained.error();

    const auto t0 = Clock::now();
    SHADAN_RETURN_IF_ERROR(backend->apply("flush ruleset\n"));
    const auto t1 = Clock::now();
    auto t2 = waitForForeignCommit(*monitor, self_tid, std::chrono::seconds(5));
    if (!t2.ok()) return t2.error().withContext("trial " + std::to_string(i));
    SHADAN_ASSIGN_OR_RETURN(auto back, backend->readTable());
    if (!back.present || back.sha256 != reference.sha256) {
      return makeError(ErrorCode::kInternal,
                       "trial " + std::to_string(i) + ": the table that came back differs");
    }
    out.push_back(Trial{ms(*t2 - t0), ms(*t2 - t1)});
  }
  return okStatus();
}

double percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  // Nearest rank.
  const auto rank = static_cast<size_t>(std::ceil(p * static_cast<double>(values.size())));
  return values[std::max<size_t>(rank, 1) - 1];
}

void printStats(const char* what, const std::vector<double>& values) {
  std::printf("%-40s n=%zu  min %.2f  median %.2f  p99 %.2f  max %.2f ms\n", what, values.size(),
              percentile(values, 0.0), percentile(values, 0.5), percentile(values, 0.99),
              percentile(values, 1.0));
}

// utime + stime of `pid`, in clock ticks (fields 14 and 15 of /proc/<pid>/stat).
Result<long long> cpuTicks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');  // comm may contain spaces; fields restart after it
  if (close == std::string::npos) return makeError(ErrorCode::kIo, "cannot read /proc/pid/stat");
  std::istringstream fields(text.substr(close + 2));
  std::vector<std::string> values;
  for (std::string field; fields >> field;) values.push_back(field);
  // values[0] is field 3 (state): utime is field 14 -> values[11], stime values[12].
  if (values.size() < 13) return makeError(ErrorCode::kIo, "short /proc/pid/stat");
  return std::stoll(values[11]) + std::stoll(values[12]);
}

// Nanoseconds `pid`'s threads spent on a CPU (/proc/<pid>/schedstat, first field): exact, where
// utime/stime are sampled in clock ticks.
Result<long long> cpuNanoseconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/schedstat");
  long long ns = 0;
  if (!(in >> ns)) return makeError(ErrorCode::kIo, "cannot read /proc/pid/schedstat");
  return ns;
}

// The value of `key` in /proc/<pid>/<file> ("status": VmRSS, RssAnon, ...; "smaps_rollup": Pss).
std::string procField(pid_t pid, const std::string& file, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/" + file);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key + ":", 0) == 0) {
      const auto start = line.find_first_not_of(" \t", key.size() + 1);
      return start == std::string::npos ? "" : line.substr(start);
    }
  }
  return "?";
}

std::string statusField(pid_t pid, const std::string& key) { return procField(pid, "status", key); }

int run(int trials, int idle_seconds) {
  if (::geteuid() != 0) {
    std::cerr << "repair_bench: needs root (network namespaces)\n";
    return 1;
  }
  ProcessCommandRunner runner(std::chrono::seconds(30));
  Lab lab(standardLabSpec(), "b" + std::to_string(::getpid() % 10000000), runner);
  if (auto up = lab.up(); !up.ok()) {
    std::cerr << "repair_bench: lab: " << up.error().message << "\n";
    return 1;
  }
  const std::string gw = lab.nsName("gw");
  const auto state_dir =
      std::filesystem::temp_directory_path() / ("shadan-bench-" + std::to_string(::getpid()));
  const auto log_path = std::filesystem::path(state_dir.string() + ".log");
  std::filesystem::remove_all(state_dir);
  std::filesystem::remove(log_path);
  const std::vector<std::string> common = {"--policy", kPolicy,       "--gateway",
                                           "gw",       "--state-dir", state_dir.string()};

  int code = 0;
  {
    AgentProcessOptions options;
    options.netns = gw;
    options.binary = kAgent;
    options.arguments = common;
    options.arguments.insert(options.arguments.end(), {"--log-level", "warn"});
    options.log_path = log_path;
    auto daemon = AgentProcess::start(options);
    if (!daemon.ok()) {
      std::cerr << "repair_bench: " << daemon.error().message << "\n";
      return 1;
    }
    const pid_t pid = (*daemon)->pid();
    const std::string rss_at_ready = statusField(pid, "VmRSS");

    std::vector<std::string> isolate = {"ip", "netns", "exec", gw, kAgent, "isolate", "office"};
    isolate.insert(isolate.end(), common.begin(), common.end());
    if (auto done = runChecked(runner, isolate); !done.ok()) {
      std::cerr << "repair_bench: " << done.error().message << "\n";
      return 1;
    }

    std::vector<Trial> results;
    auto measured = runInNetns(gw, [&] { return runTrials(trials, results); });
    if (!measured.ok()) {
      std::cerr << "repair_bench: " << measured.error().message << "\n";
      code = 1;
    } else {
      std::vector<double> from_issue, from_commit;
      for (const auto& t : results) {
        from_issue.push_back(t.from_issue_ms);
        from_commit.push_back(t.from_commit_ms);
      }
      std::printf("foreign `flush ruleset` -> table inet shadan back, %d trials\n", trials);
      printStats("flush issued -> table back", from_issue);
      printStats("flush committed -> table back", from_commit);
    }

    // Idle: no command, no foreign change; only the daemon's own timers run.
    std::this_thread::sleep_for(std::chrono::seconds(3));
    auto before = cpuTicks(pid);
    auto before_ns = cpuNanoseconds(pid);
    const auto idle_start = Clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(idle_seconds));
    auto after = cpuTicks(pid);
    auto after_ns = cpuNanoseconds(pid);
    const double idle_wall = ms(Clock::now() - idle_start);
    if (before.ok() && after.ok()) {
      const double cpu_ms = static_cast<double>(*after - *before) * 1000.0 /
                            static_cast<double>(::sysconf(_SC_CLK_TCK));
      std::printf("idle %.1f s: CPU %.0f ms (%lld ticks of %ld Hz) = %.3f%% of one CPU\n",
                  idle_wall / 1000.0, cpu_ms, *after - *before, ::sysconf(_SC_CLK_TCK),
                  100.0 * cpu_ms / idle_wall);
      if (before_ns.ok() && after_ns.ok()) {
        std::printf("idle on-CPU time (schedstat): %.2f ms\n",
                    static_cast<double>(*after_ns - *before_ns) / 1e6);
      }
    } else {
      std::cerr << "repair_bench: cannot read /proc/" << pid << "/stat\n";
      code = 1;
    }
    // Pss divides each shared page among the processes that map it: the daemon's fair share of
    // the shared libraries, where VmRSS counts them whole.
    std::printf(
        "RSS at READY %s; after the trials and idle: VmRSS %s (RssAnon %s, RssFile %s, "
        "RssShmem %s), Pss %s, VmHWM %s\n",
        rss_at_ready.c_str(), statusField(pid, "VmRSS").c_str(),
        statusField(pid, "RssAnon").c_str(), statusField(pid, "RssFile").c_str(),
        statusField(pid, "RssShmem").c_str(), procField(pid, "smaps_rollup", "Pss").c_str(),
        statusField(pid, "VmHWM").c_str());
    auto stopped = (*daemon)->terminate();
    if (!stopped.ok() || *stopped != 0) code = 1;
  }
  std::vector<std::string> restore = {
      "ip", "netns", "exec", gw, kAgent, "restore", "--all", "--reason", "repair_bench cleanup"};
  restore.insert(restore.end(), common.begin(), common.end());
  (void)runner.run(restore);
  std::filesystem::remove_all(state_dir);
  std::filesystem::remove(log_path);
  return code;
}

}  // namespace
}  // namespace shadan

int main(int argc, char** argv) {
  int trials = 100;
  int idle_seconds = 30;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--trials") == 0) {
      trials = std::max(1, std::atoi(argv[i + 1]));
    } else if (std::strcmp(argv[i], "--idle-seconds") == 0) {
      idle_seconds = std::max(1, std::atoi(argv[i + 1]));
    } else {
      std::cerr << "usage: repair_bench [--trials N] [--idle-seconds S]\n";
      return 2;
    }
  }
  return shadan::run(trials, idle_seconds);
}
