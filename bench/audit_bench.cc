// Appending one audit entry with fdatasync, beside a bare append+fdatasync of a line of the same
// size: the cost the audit adds to every order. Runs in a temporary directory on the disk that
// holds /tmp (set TMPDIR to measure another).
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>

#include "common/audit_log.h"
#include "common/audit_verify.h"
#include "common/clock.h"
#include "common/ed25519.h"
#include "controller/audit_views.h"

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

// Writing the log to read: no fdatasync per entry (a million syncs would be the benchmark).
class UnsyncedFileSystem : public shadan::PosixLogFileSystem {
 public:
  shadan::Result<std::unique_ptr<shadan::WritableLogFile>> openForAppend(
      const std::string& path) override {
    auto file = PosixLogFileSystem::openForAppend(path);
    if (!file.ok()) return file.error();
    return std::unique_ptr<shadan::WritableLogFile>(new Unsynced(std::move(*file)));
  }

 private:
  struct Unsynced : shadan::WritableLogFile {
    explicit Unsynced(std::unique_ptr<shadan::WritableLogFile> inner) : file(std::move(inner)) {}
    shadan::Status append(std::string_view data) override { return file->append(data); }
    shadan::Status sync() override { return shadan::okStatus(); }
    std::unique_ptr<shadan::WritableLogFile> file;
  };
};

// A controller log of `entries` typical entries (checkpoints every 1000) in `dir`; the signer's
// public key for its checkpoints.
std::optional<shadan::PublicKeyInfo> writeLog(const std::filesystem::path& dir, int64_t entries) {
  shadan::SystemClock clock;
  UnsyncedFileSystem writing;
  shadan::Ed25519Signer signer(shadan::Ed25519KeyPair::generate());
  shadan::AuditLogOptions options;
  options.path = (dir / "audit.log").string();
  options.log_id = "controller";
  options.checkpoint_interval = std::chrono::milliseconds(0);
  auto log = shadan::AuditLog::open(options, writing, clock, &signer);
  if (!log.ok()) return std::nullopt;
  const auto event = sampleEvent();
  for (int64_t i = 0; i < entries; ++i) {
    if (!(*log)->append(event).ok()) return std::nullopt;
  }
  (void)(*log)->close();
  return shadan::PublicKeyInfo{signer.keyId(), signer.publicKey(), {}};
}

// GET /v1/audit's page on the controller's log of N entries (the console's Audit page): the
// newest 100 entries, on the io thread. The verdict is reached on the verifier's thread
// (BM_AuditVerifyWholeLog) and was reached before the loop.
void BM_AuditPageRead(benchmark::State& state) {
  const auto dir = scratchDir("audit-page");
  const auto key = writeLog(dir, state.range(0));
  if (!key) {
    state.SkipWithError("could not write the log");
    return;
  }
  shadan::PosixLogFileSystem fs;
  shadan::SystemClock clock;
  shadan::controller::AuditVerifier verifier(fs, clock, nullptr);
  shadan::controller::AuditSources sources;
  sources.controller_log = (dir / "audit.log").string();
  sources.controller_keys = {*key};
  sources.agent_ids = [] { return std::vector<std::string>(); };
  sources.agent_log = [](const std::string&) -> shadan::Result<std::string> {
    return shadan::makeError(shadan::ErrorCode::kNotFound, "none");
  };
  sources.agent_key = [](const std::string&) { return std::optional<shadan::Ed25519PublicKey>(); };
  shadan::controller::AuditReader reader(fs, verifier, std::move(sources));
  const shadan::controller::AuditQuery query;
  (void)reader.read(query);
  verifier.drain();
  for (auto _ : state) {
    auto page = reader.read(query);
    if (!page.ok() || !(*page)["verification"]["valid"].get<bool>()) {
      state.SkipWithError("read failed or chain not valid");
      break;
    }
    benchmark::DoNotOptimize(page);
  }
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_AuditPageRead)->Unit(benchmark::kMillisecond)->Arg(10000)->Arg(100000)->UseRealTime();

// The verdict of the whole chain (what AuditVerifier computes on its own thread, and what
// `shadanctl audit verify` costs on the same file).
void BM_AuditVerifyWholeLog(benchmark::State& state) {
  const auto dir = scratchDir("audit-verify");
  const auto key = writeLog(dir, state.range(0));
  if (!key) {
    state.SkipWithError("could not write the log");
    return;
  }
  shadan::PosixLogFileSystem fs;
  for (auto _ : state) {
    auto report = shadan::verifyAuditLog(fs, (dir / "audit.log").string(), {*key});
    if (!report.ok() || !report->valid) {
      state.SkipWithError("not valid");
      break;
    }
    benchmark::DoNotOptimize(report);
  }
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_AuditVerifyWholeLog)
    ->Unit(benchmark::kMillisecond)
    ->Arg(10000)
    ->Arg(100000)
    ->UseRealTime();

BENCHMARK_MAIN();
