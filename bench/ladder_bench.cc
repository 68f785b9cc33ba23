// Escalation ladder benchmarks (docs/benchmarks.md, "Escalation ladder"): for each rung (host
// with one host, segment, uplink, island) and for 100 and 10,000 quarantined hosts of one
// segment, the planner's script for gateway gw of bench/ladder.policy.json is
//   plan     planned: planGateway() alone (pure, no kernel)
//   apply    applied in-process: NftablesBackend::apply(), one libnftables transaction
//   enforce  enforced as the agent does it: Enforcer::enforce() (read our table, the same one
//            transaction, blackhole-route sync, read the table and routes back)
//   nft_f    applied by an `nft -f FILE` process holding the same script, fork/exec + wait
// Every timed apply starts from a gateway with no Shadan table (removed untimed before each
// repetition), i.e. it is the isolation of a gateway that had nothing isolated.
//
// Needs root: main() moves the process into a fresh network namespace first (unshare), so the
// host's ruleset and routes are never touched. `--gateway-firewall=debian` first loads Debian's
// default nftables.conf there, as in orders_bench (a gateway whose firewall already holds the
// netfilter hooks; see main()). One apply per repetition (Iterations(1)), so median / p99 / max
// are over single applies. Counters: `rules` in the script (set elements are not rules) and
// `set_elements` (quarantined hosts in the host set). `--write-scripts=DIR` only writes each
// case's script to DIR/<case>.nft (no root), to time `nft -f` as a whole process elsewhere.

#include <benchmark/benchmark.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agents/dataplane/netlink_route_backend.h"
#include "agents/dataplane/nftables_backend.h"
#include "agents/enforcer.h"
#include "agents/planner/planner.h"
#include "bench/bench_support.h"
#include "bench/ladder_bench_support.h"
#include "common/policy.h"

extern char** environ;

namespace shadan {

using namespace shadan::agent;  // NOLINT: the agent under test
namespace {

// The planner's script with nothing isolated: removes our table.
constexpr const char* kNoTable = "add table inet shadan\ndelete table inet shadan\n";

// One benchmarked case: its isolations, planned once up front for the kernel rows.
struct PlannedCase {
  std::string name;
  std::vector<Isolation> isolations;
  DataplanePlan plan;
  std::string file;  // the script on disk, for `nft -f`
  size_t hosts = 0;
};

// Written for `nft -f`; removed when the benchmark binary exits.
class ScriptFiles {
 public:
  ~ScriptFiles() {
    for (const std::string& path : paths_) std::remove(path.c_str());
  }
  std::string write(const std::string& name, const std::string& script) {
    std::string path = "/tmp/shadan_ladder_bench_" + std::to_string(getpid()) + "_" + name + ".nft";
    std::unique_ptr<FILE, int (*)(FILE*)> out(std::fopen(path.c_str(), "w"), &std::fclose);
    if (!out || std::fwrite(script.data(), 1, script.size(), out.get()) != script.size()) {
      std::fprintf(stderr, "cannot write %s\n", path.c_str());
      std::exit(1);
    }
    paths_.push_back(path);
    return path;
  }

 private:
  std::vector<std::string> paths_;
};

struct Kernel {
  NftablesBackend* firewall = nullptr;
  Enforcer* enforcer = nullptr;
};

void setCounters(benchmark::State& state, const PlannedCase& planned) {
  state.counters["rules"] = static_cast<double>(bench::countRules(planned.plan.nft_script));
  state.counters["set_elements"] = static_cast<double>(planned.hosts);
}

// Untimed, before the timed iteration: the gateway has no Shadan table, and the backend's
// read cache holds that (an order's "before" read nearly always is a cache hit).
bool startFromNoTable(benchmark::State& state, NftablesBackend& firewall) {
  if (Status removed = firewall.apply(kNoTable); !removed.ok()) {
    state.SkipWithError(removed.error().message.c_str());
    return false;
  }
  if (!firewall.readTable().ok()) {
    state.SkipWithError("readTable failed");
    return false;
  }
  return true;
}

void planOnly(benchmark::State& state, const Policy* policy, const PlannedCase* planned) {
  for (auto _ : state) {
    Result<DataplanePlan> plan = planGateway(*policy, bench::kLadderGateway, planned->isolations);
    if (!plan.ok()) {
      state.SkipWithError(plan.error().message.c_str());
      return;
    }
    benchmark::DoNotOptimize(plan->nft_script.data());
  }
  setCounters(state, *planned);
}

void applyInProcess(benchmark::State& state, Kernel kernel, const PlannedCase* planned) {
  if (!startFromNoTable(state, *kernel.firewall)) return;
  for (auto _ : state) {
    if (Status applied = kernel.firewall->apply(planned->plan.nft_script); !applied.ok()) {
      state.SkipWithError(applied.error().message.c_str());
      return;
    }
  }
  setCounters(state, *planned);
}

void enforce(benchmark::State& state, Kernel kernel, const PlannedCase* planned) {
  if (!startFromNoTable(state, *kernel.firewall)) return;
  for (auto _ : state) {
    Result<EnforceReport> report = kernel.enforcer->enforce(planned->plan);
    if (!report.ok()) {
      state.SkipWithError(report.error().message.c_str());
      return;
    }
    if (!report->after.present) {
      state.SkipWithError("enforced, but the table is not there");
      return;
    }
  }
  setCounters(state, *planned);
}

void applyWithNftProcess(benchmark::State& state, Kernel kernel, const PlannedCase* planned) {
  if (!startFromNoTable(state, *kernel.firewall)) return;
  for (auto _ : state) {
    std::string error;
    if (!bench::runNftFile(planned->file, error)) {
      state.SkipWithError(error.c_str());
      return;
    }
  }
  setCounters(state, *planned);
}

struct Repetitions {
  int plan;
  int apply;
  int enforce;
  int nft_f;
};

std::vector<std::pair<bench::LadderCase, Repetitions>> ladderCases() {
  std::vector<std::pair<bench::LadderCase, Repetitions>> cases;
  for (bench::LadderCase& rung : bench::ladderRungs()) {
    cases.push_back({std::move(rung), Repetitions{1000, 300, 300, 100}});
  }
  cases.push_back({{"hosts_100", bench::quarantinedHosts(100)}, Repetitions{300, 200, 200, 60}});
  cases.push_back({{"hosts_10000", bench::quarantinedHosts(10000)}, Repetitions{30, 30, 30, 30}});
  return cases;
}

// `--write-scripts=DIR`: the planner's script of every case as DIR/<case>.nft, for timing
// `nft -f` as a whole process outside this program. Needs no root and touches no kernel.
int writeScripts(const std::string& dir) {
  const Policy policy = bench::loadLadderPolicy();
  for (const auto& [ladder_case, reps] : ladderCases()) {
    const std::string path = dir + "/" + ladder_case.name + ".nft";
    const std::string script = bench::planLadder(policy, ladder_case.isolations);
    std::unique_ptr<FILE, int (*)(FILE*)> out(std::fopen(path.c_str(), "w"), &std::fclose);
    if (!out || std::fwrite(script.data(), 1, script.size(), out.get()) != script.size()) {
      std::fprintf(stderr, "cannot write %s\n", path.c_str());
      return 1;
    }
    std::printf("%s\n", path.c_str());
  }
  return 0;
}

int run(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  const Policy policy = bench::loadLadderPolicy();

  auto firewall = NftablesBackend::create();
  auto routes = NetlinkRouteBackend::create();
  if (!firewall.ok() || !routes.ok()) {
    std::fprintf(stderr, "backends: %s\n",
                 (!firewall.ok() ? firewall.error() : routes.error()).message.c_str());
    return 1;
  }
  // One context for the whole run, as in the agent (freeing a context is itself costly).
  Enforcer enforcer(**firewall, **routes);
  const Kernel kernel{firewall->get(), &enforcer};

  const std::vector<std::pair<bench::LadderCase, Repetitions>> cases = ladderCases();

  // Planned and checked against the kernel before anything is timed; kept alive for the run.
  static ScriptFiles files;
  static std::vector<PlannedCase> planned;
  planned.reserve(cases.size());
  for (const auto& [ladder_case, reps] : cases) {
    PlannedCase entry;
    entry.name = ladder_case.name;
    entry.isolations = ladder_case.isolations;
    for (const Isolation& isolation : entry.isolations) {
      if (isolation.scope == IsolationScope::kHost) ++entry.hosts;
    }
    auto plan = planGateway(policy, bench::kLadderGateway, entry.isolations);
    if (!plan.ok()) {
      std::fprintf(stderr, "%s: %s\n", entry.name.c_str(), plan.error().message.c_str());
      return 1;
    }
    entry.plan = std::move(plan).value();
    entry.file = files.write(entry.name, entry.plan.nft_script);
    if (Status applied = kernel.firewall->apply(entry.plan.nft_script); !applied.ok()) {
      std::fprintf(stderr, "%s: warm-up apply failed: %s\n", entry.name.c_str(),
                   applied.error().message.c_str());
      return 1;
    }
    planned.push_back(std::move(entry));
  }

  for (size_t i = 0; i < planned.size(); ++i) {
    const PlannedCase* entry = &planned[i];
    const Repetitions reps = cases[i].second;
    const std::string prefix = "ladder/" + entry->name + "/";
    bench::registerSingleShot(
        benchmark::RegisterBenchmark((prefix + "plan").c_str(), planOnly, &policy, entry),
        reps.plan, bench::Timing::kReal);
    bench::registerSingleShot(
        benchmark::RegisterBenchmark((prefix + "apply").c_str(), applyInProcess, kernel, entry),
        reps.apply, bench::Timing::kReal);
    bench::registerSingleShot(
        benchmark::RegisterBenchmark((prefix + "enforce").c_str(), enforce, kernel, entry),
        reps.enforce, bench::Timing::kReal);
    bench::registerSingleShot(benchmark::RegisterBenchmark((prefix + "nft_f").c_str(),
                                                           applyWithNftProcess, kernel, entry),
                              reps.nft_f, bench::Timing::kReal);
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  // Leave the namespace as found (it dies with the process anyway).
  (void)kernel.firewall->apply(kNoTable);
  return 0;
}

}  // namespace
}  // namespace shadan

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.starts_with("--write-scripts=")) {
      return shadan::writeScripts(std::string(arg.substr(std::strlen("--write-scripts="))));
    }
  }
  // Our own options are taken out of argv before Google Benchmark sees them (bench_support.h).
  // The uplink rung matches the interface `inet` by name (iifname/oifname): it need not exist.
  if (const int failed = shadan::bench::enterBenchNamespace(argc, argv); failed != 0) return failed;
  return shadan::run(argc, argv);
}
