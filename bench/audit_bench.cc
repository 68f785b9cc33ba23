// Appending one audit entry with fdatasync, beside a bare append+fdatasync of a line of the same
// size: the cost the audit adds to every order. Runs in a temporary directory on the disk that
// holds /tmp (set TMPDIR to measure another).
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>

#include "common/audit_log.h"
#include "common/clock.h"
#include "common/ed25519.h"

namespace {

std::filesystem::path scratchDir(const char* name) {
  auto dir = std::filesystem::temp_directory_path() /
             (std::string("shadan-bench-") + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

shadan::AuditEvent sampleEvent() {
  shadan::AuditEvent event;
  event.event = "applied";
  event.outcome = "ok";
  event.what = shadan::AuditWhat{"isolate", "lgwan", "internet-only", std::string(64, 'a'),
                                 std::string(64, 'b')};
  event.where = shadan::AuditWhere{"core-gw", "gw1", "0.1.0"};
  event.command_id = "4f7c2d1e-0000-4000-8000-000000000001";
  event.seq = 1842;
  return event;
}

void BM_AuditAppendFdatasync(benchmark::State& state) {
  const auto dir = scratchDir("audit");
  shadan::SystemClock clock;
  shadan::PosixLogFileSystem fs;
  auto key = shadan::Ed25519KeyPair::generate();
  shadan::Ed25519Signer signer(std::move(key));
  shadan::AuditLogOptions options;
  options.path = (dir / "audit.log").string();
  options.log_id = "agent:bench";
  auto log = shadan::AuditLog::open(options, fs, clock, &signer);
  if (!log.ok()) {
    state.SkipWithError(log.error().message.c_str());
    return;
  }
  const auto event = sampleEvent();
  for (auto _ : state) {
    auto receipt = (*log)->append(event);
    if (!receipt.ok()) state.SkipWithError(receipt.error().message.c_str());
  }
  (void)(*log)->close();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_AuditAppendFdatasync)
    ->Unit(benchmark::kMicrosecond)
    ->Iterations(1)
    ->Repetitions(500)
    ->ReportAggregatesOnly(true)
    ->ComputeStatistics("p99", [](const std::vector<double>& v) {
      auto sorted = v;
      std::sort(sorted.begin(), sorted.end());
      return sorted[static_cast<size_t>(0.99 * static_cast<double>(sorted.size() - 1))];
    });

void BM_BareAppendFdatasync(benchmark::State& state) {
  const auto dir = scratchDir("bare");
  const int fd =
      ::open((dir / "bare.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  const std::string line(400, 'x');
  for (auto _ : state) {
    if (::write(fd, line.data(), line.size()) < 0 || ::fdatasync(fd) != 0) {
      state.SkipWithError("write/fdatasync failed");
    }
  }
  ::close(fd);
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_BareAppendFdatasync)
    ->Unit(benchmark::kMicrosecond)
    ->Iterations(1)
    ->Repetitions(500)
    ->ReportAggregatesOnly(true);

}  // namespace

BENCHMARK_MAIN();
