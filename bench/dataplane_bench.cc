// Dataplane benchmarks: one nftables transaction applied in-process through NftablesBackend (one
// long-lived nft_ctx) versus the same ruleset applied by an `nft -f FILE` process, for a typical
// isolation and for a 10,000-prefix segment; and the read-back, readTable(), both as it pays after
// a change (listed) and from its generation cache (hit). Needs root; main() moves the process into
// a fresh network namespace first, so the host's ruleset is never touched. Run: scripts/bench.sh.
//
// Every benchmark runs one apply per repetition (Iterations(1)) and many repetitions, so the
// reported median / p99 / max are over single applies, not over averages of batches.

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
#include <memory>
#include <string>
#include <vector>

#include "agents/dataplane/nftables_backend.h"
#include "bench/bench_support.h"

extern char** environ;

namespace shadan {

using namespace shadan::agent;  // NOLINT: the agent under test
namespace {

// Shaped like the planner's output for one isolated segment: replace the table whole, one set per
// family, three base chains at -150, loopback + stateless management accepts first, then drops.
std::string isolationScript(const std::vector<std::string>& v4,
                            const std::vector<std::string>& v6) {
  auto elements = [](const std::vector<std::string>& items) {
    std::string out;
    for (const std::string& item : items) {
      if (!out.empty()) out += ", ";
      out += item;
    }
    return out;
  };
  std::string script = "add table inet shadan\ndelete table inet shadan\ntable inet shadan {\n";
  script += "  set seg_office_v4 { type ipv4_addr; flags interval; elements = { " + elements(v4) +
            " } }\n";
  script += "  set seg_office_v6 { type ipv6_addr; flags interval; elements = { " + elements(v6) +
            " } }\n";
  script += R"(  chain input {
    type filter hook input priority -150; policy accept;
    iif "lo" accept
    ip saddr 10.99.0.10 tcp sport 8443 accept
    ip saddr 10.99.0.0/24 tcp dport 22 accept
    ip saddr @seg_office_v4 drop
    ip6 saddr @seg_office_v6 drop
  }
  chain output {
    type filter hook output priority -150; policy accept;
    oif "lo" accept
    ip daddr 10.99.0.10 tcp dport 8443 accept
    ip daddr 10.99.0.0/24 tcp sport 22 accept
    ip daddr @seg_office_v4 drop
    ip6 daddr @seg_office_v6 drop
  }
  chain forward {
    type filter hook forward priority -150; policy accept;
    ip daddr 10.99.0.10 tcp dport 8443 accept
    ip saddr 10.99.0.10 tcp sport 8443 accept
    ip saddr @seg_office_v4 drop
    ip daddr @seg_office_v4 drop
    ip6 saddr @seg_office_v6 drop
    ip6 daddr @seg_office_v6 drop
  }
}
)";
  return script;
}

std::string typicalScript() {
  return isolationScript({"10.20.0.0/16", "10.21.0.0/16", "10.22.5.0/24"},
                         {"fd00:20::/48", "fd00:21::/48"});
}

// `count` distinct, non-adjacent /24s (every other one from 10.0.0.0/24), so the interval set
// holds exactly `count` ranges with nothing to merge.
std::string largeScript(int count) {
  std::vector<std::string> v4;
  v4.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    const int n = 2 * i;
    v4.push_back("10." + std::to_string(n / 256 % 256) + "." + std::to_string(n % 256) + ".0/24");
  }
  return isolationScript(v4, {"fd00:20::/48"});
}

// A script on disk for `nft -f`; removed when the benchmark binary exits.
class ScriptFile {
 public:
  ScriptFile(const std::string& name, const std::string& script)
      : path_("/tmp/shadan_bench_" + std::to_string(getpid()) + "_" + name + ".nft") {
    std::unique_ptr<FILE, int (*)(FILE*)> out(std::fopen(path_.c_str(), "w"), &std::fclose);
    if (!out || std::fwrite(script.data(), 1, script.size(), out.get()) != script.size()) {
      std::fprintf(stderr, "cannot write %s\n", path_.c_str());
      std::exit(1);
    }
  }
  ~ScriptFile() { std::remove(path_.c_str()); }
  ScriptFile(const ScriptFile&) = delete;
  ScriptFile& operator=(const ScriptFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void applyInProcess(benchmark::State& state, NftablesBackend* backend, const std::string* script) {
  for (auto _ : state) {
    const Status status = backend->apply(*script);
    if (!status.ok()) {
      state.SkipWithError(status.error().message.c_str());
      break;
    }
  }
}

// readTable() as an order pays it after its transaction (the "after" read): the generation moved,
// so the cache misses and the read is GETGEN + settle barrier + `list table` + SHA-256. Untimed,
// before the one timed iteration (registerSingleShot: Iterations(1)): apply `script`, which moves
// the ruleset generation as an order's commit does. The read must then have listed, or the row
// is refused.
void readTableListed(benchmark::State& state, NftablesBackend* backend, const std::string* script) {
  if (Status applied = backend->apply(*script); !applied.ok()) {
    state.SkipWithError(applied.error().message.c_str());
    return;
  }
  const uint64_t listed_before = backend->readStats().listed;
  for (auto _ : state) {
    auto snapshot = backend->readTable();
    if (!snapshot.ok() || !snapshot->present) {
      state.SkipWithError("readTable failed or table absent");
      return;
    }
    benchmark::DoNotOptimize(snapshot->sha256);
  }
  if (backend->readStats().listed != listed_before + 1) {
    state.SkipWithError("readTable did not list: this row must time an uncached read");
  }
}

// readTable() with nothing changed since the last read: a cache hit, GETGEN + a copy of the
// cached snapshot (the "before" read of an order nearly always is one). Untimed: apply `script`
// and read once, which fills the cache.
void readTableCached(benchmark::State& state, NftablesBackend* backend, const std::string* script) {
  if (Status applied = backend->apply(*script); !applied.ok()) {
    state.SkipWithError(applied.error().message.c_str());
    return;
  }
  if (!backend->readTable().ok()) {
    state.SkipWithError("readTable failed");
    return;
  }
  const uint64_t hits_before = backend->readStats().from_cache;
  for (auto _ : state) {
    auto snapshot = backend->readTable();
    if (!snapshot.ok() || !snapshot->present) {
      state.SkipWithError("readTable failed or table absent");
      return;
    }
    benchmark::DoNotOptimize(snapshot->sha256);
  }
  if (backend->readStats().from_cache != hits_before + 1) {
    state.SkipWithError("readTable missed its cache: this row must time a hit");
  }
}

// fork/exec `nft -f FILE` and wait: what a shell-out implementation would pay per apply.
void applyWithNftProcess(benchmark::State& state, const ScriptFile* file) {
  for (auto _ : state) {
    std::string error;
    if (!bench::runNftFile(file->path(), error)) {
      state.SkipWithError(error.c_str());
      break;
    }
  }
}

void registerSingleShot(benchmark::internal::Benchmark* b, int repetitions) {
  bench::registerSingleShot(b, repetitions, bench::Timing::kReal);
}

}  // namespace
}  // namespace shadan

int main(int argc, char** argv) {
  using namespace shadan;
  // Before any netlink socket exists: everything below happens in a namespace of our own.
  if (unshare(CLONE_NEWNET) != 0) {
    std::fprintf(stderr, "unshare(CLONE_NEWNET): %s (run as root)\n", std::strerror(errno));
    return 1;
  }
  // `iif "lo"` needs the device; up so it is a realistic loopback.
  if (std::system("ip link set lo up") != 0) {
    std::fprintf(stderr, "cannot bring lo up in the benchmark namespace\n");
    return 1;
  }
  benchmark::Initialize(&argc, argv);

  auto created = NftablesBackend::create();
  if (!created.ok()) {
    std::fprintf(stderr, "NftablesBackend::create: %s\n", created.error().message.c_str());
    return 1;
  }
  // One context for the whole run, as in the agent (freeing a context is itself costly).
  std::unique_ptr<NftablesBackend> backend = std::move(created.value());

  const std::string typical = typicalScript();
  const std::string large = largeScript(10000);
  const ScriptFile typical_file("typical", typical);
  const ScriptFile large_file("10k", large);
  // Both rulesets must be valid before anything is timed.
  for (const std::string* script : {&typical, &large}) {
    if (Status status = backend->apply(*script); !status.ok()) {
      std::fprintf(stderr, "warm-up apply failed: %s\n", status.error().message.c_str());
      return 1;
    }
  }

  registerSingleShot(benchmark::RegisterBenchmark("apply/typical/in_process", applyInProcess,
                                                  backend.get(), &typical),
                     1000);
  registerSingleShot(benchmark::RegisterBenchmark("apply/typical/nft_f_process",
                                                  applyWithNftProcess, &typical_file),
                     300);
  registerSingleShot(benchmark::RegisterBenchmark("readTable/typical/listed", readTableListed,
                                                  backend.get(), &typical),
                     1000);
  registerSingleShot(benchmark::RegisterBenchmark("readTable/typical/cached", readTableCached,
                                                  backend.get(), &typical),
                     1000);
  registerSingleShot(benchmark::RegisterBenchmark("apply/10k_prefixes/in_process", applyInProcess,
                                                  backend.get(), &large),
                     60);
  registerSingleShot(benchmark::RegisterBenchmark("apply/10k_prefixes/nft_f_process",
                                                  applyWithNftProcess, &large_file),
                     60);
  registerSingleShot(benchmark::RegisterBenchmark("readTable/10k_prefixes/listed", readTableListed,
                                                  backend.get(), &large),
                     30);
  registerSingleShot(benchmark::RegisterBenchmark("readTable/10k_prefixes/cached", readTableCached,
                                                  backend.get(), &large),
                     30);

  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
