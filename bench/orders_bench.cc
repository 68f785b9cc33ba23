// Order benchmark: one signed dispatch from the raw frame the controller link receives to the
// serialised, signed ack — parse, verify (PROTOCOL.md steps 1-7), persist (SQLite, WAL,
// synchronous=FULL), apply (libnftables, one transaction, read back), audit (hash chain,
// fdatasync per entry) and sign the ack — through the production AgentCore with the production
// backends, beside `nft -f` of the same table. Run: scripts/bench.sh (docs/benchmarks.md).
//
// Needs root: main() moves the process into a fresh network namespace first (unshare), so the
// host's ruleset, routes and conntrack table are never touched; the namespace dies with the
// process. State directory, audit log, agent key and trust file live in a fresh directory under
// $TMPDIR (default /tmp), removed at exit. `--gateway-firewall=debian` first loads Debian's default
// nftables.conf into that namespace, as on a gateway whose firewall is on (see main()).
//
// Every benchmark runs one order per repetition (Iterations(1)), so median / p99 / max are over
// single orders. The isolate benchmark times an isolate and then, untimed, restores; the restore
// benchmark isolates untimed and times the restore. Every order is pre-signed before anything is
// timed, with increasing seq and segment_gen, so each one is fresh and accepted (checked after
// every order: ack result "applied", ack signature valid, desired state as expected).
//
// Stage counters (per order, milliseconds): the backends, the state store, the audit sink and
// the agent's signer are wrapped in forwarding decorators that time each call, so the breakdown
// comes from the same orders as the total. `rest_ms` is what is left: frame parse, dispatch and
// authz verification, planning, copies of the desired state, ack serialisation.

#include <benchmark/benchmark.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agents/agent_audit.h"
#include "agents/agent_core.h"
#include "agents/dataplane/netlink_conntrack_backend.h"
#include "agents/dataplane/netlink_route_backend.h"
#include "agents/dataplane/nftables_backend.h"
#include "agents/planner/planner.h"
#include "agents/state/sqlite_state_store.h"
#include "bench/bench_support.h"
#include "bench/orders_bench_support.h"
#include "common/clock.h"
#include "common/dsse.h"
#include "common/ed25519.h"
#include "common/orders.h"
#include "common/policy.h"
#include "common/strict_json.h"
#include "common/trust.h"

extern char** environ;

namespace shadan {

using namespace shadan::agent;  // NOLINT: the agent under test
namespace {

using bench::kGateway;
using bench::kMaxMessageBytes;
using bench::millisSince;
using bench::OrderSigner;
using bench::receiveFrame;
using bench::Stages;
using bench::SteadyClock;
using bench::TempDir;
using bench::TimedAudit;
using bench::TimedConntrack;
using bench::TimedFirewall;
using bench::TimedRoutes;
using bench::TimedSigner;
using bench::TimedStore;
using bench::writeFile;
using nlohmann::json;

const std::string kLabPolicy = std::string(SHADAN_SOURCE_DIR) + "/policies/examples/lab.json";

constexpr int kWarmupPairs = 10;
constexpr int kOrderRepetitions = 500;
constexpr int kStageRepetitions = 500;
constexpr int kNftProcessRepetitions = 200;

// ---- the agent under test -------------------------------------------------------------------

struct Fixture {
  std::unique_ptr<TempDir> dir;
  Policy policy;
  OrderSigner keys;
  std::unique_ptr<SqliteStateStore> store;
  std::unique_ptr<NftablesBackend> firewall;
  std::unique_ptr<NetlinkRouteBackend> routes;
  std::unique_ptr<NetlinkConntrackBackend> conntrack;
  std::unique_ptr<AgentAudit> audit;
  SystemClock clock;
  Stages stages;
  std::unique_ptr<TimedStore> timed_store;
  std::unique_ptr<TimedFirewall> timed_firewall;
  std::unique_ptr<TimedRoutes> timed_routes;
  std::unique_ptr<TimedConntrack> timed_conntrack;
  std::unique_ptr<TimedAudit> timed_audit;
  std::unique_ptr<TimedSigner> timed_signer;
  std::unique_ptr<AgentCore> core;

  std::vector<std::string> frames;  // pre-signed, consumed in order
  size_t next_frame = 0;

  // The core goes first (it borrows everything else); the audit log's close writes its final
  // checkpoint; the directory goes last.
  ~Fixture() {
    core.reset();
    audit.reset();
    store.reset();
  }
};

Status setUp(Fixture& f, int order_count) {
  SHADAN_ASSIGN_OR_RETURN(auto dir, TempDir::create());
  f.dir = std::move(dir);
  SHADAN_ASSIGN_OR_RETURN(auto loaded, loadPolicyFile(kLabPolicy));
  f.policy = loaded.policy;

  const std::filesystem::path state_dir = f.dir->path() / "state";
  auto store = SqliteStateStore::open(state_dir);
  if (!store.ok()) return store.error().withContext("state store");
  f.store = std::move(store).value();
  // The agent key is ours so the trust file can name it; AgentAudit::open loads it.
  SHADAN_RETURN_IF_ERROR(
      writePrivateKeyFile((state_dir / "agent.key").string(), f.keys.agentKey(), "agent"));
  auto firewall = NftablesBackend::create();
  if (!firewall.ok()) return firewall.error().withContext("nftables");
  f.firewall = std::move(firewall).value();
  auto routes = NetlinkRouteBackend::create();
  if (!routes.ok()) return routes.error().withContext("routes");
  f.routes = std::move(routes).value();
  auto conntrack = NetlinkConntrackBackend::create();
  if (!conntrack.ok()) return conntrack.error().withContext("conntrack");
  f.conntrack = std::move(conntrack).value();
  auto audit = AgentAudit::open(state_dir, kGateway, f.clock);
  if (!audit.ok()) return audit.error().withContext("audit");
  f.audit = std::move(audit).value();

  f.timed_store = std::make_unique<TimedStore>(*f.store, f.stages);
  f.timed_firewall = std::make_unique<TimedFirewall>(*f.firewall, f.stages);
  f.timed_routes = std::make_unique<TimedRoutes>(*f.routes, f.stages);
  f.timed_conntrack = std::make_unique<TimedConntrack>(*f.conntrack, f.stages);
  f.timed_audit = std::make_unique<TimedAudit>(f.audit->log(), f.stages);
  f.timed_signer = std::make_unique<TimedSigner>(f.audit->signer(), f.stages);
  f.core = std::make_unique<AgentCore>(
      f.policy, kGateway,
      AgentCoreDeps{*f.timed_store, *f.timed_firewall, *f.timed_routes, *f.timed_conntrack,
                    *f.timed_audit, f.clock, "bench", SHADAN_VERSION});
  auto started = f.core->start();
  if (!started.ok()) return started.error().withContext("AgentCore::start");

  const auto now = f.clock.now();
  const std::filesystem::path trust_path = f.dir->path() / "trust.json";
  SHADAN_RETURN_IF_ERROR(writeFile(trust_path, f.keys.trustJson(now)));
  SHADAN_ASSIGN_OR_RETURN(auto trust, loadTrustFile(trust_path));
  SHADAN_RETURN_IF_ERROR(f.core->useTrust(std::move(trust), *f.timed_signer));

  f.frames.reserve(static_cast<size_t>(order_count));
  for (int i = 0; i < order_count; ++i) {
    SHADAN_ASSIGN_OR_RETURN(auto envelope, f.keys.dispatchEnvelope(i, now));
    f.frames.push_back(OrderSigner::frameOf(envelope));
  }
  return okStatus();
}

// The ack message must carry an ack signed by the agent key, for `seq`, with `expected`.
Status checkAck(const Fixture& f, const std::string& ack_frame, int64_t seq, AckResult expected) {
  SHADAN_ASSIGN_OR_RETURN(auto message,
                          parseStrictJson(ack_frame, "ack message", kMaxMessageBytes));
  SHADAN_ASSIGN_OR_RETURN(auto envelope,
                          dsseEnvelopeFromJson(message["envelope"], "ack", "/envelope"));
  const Ed25519PublicKey agent_public = f.keys.agentKey().publicKey();
  const std::string agent_keyid = f.keys.agentKey().keyId();
  SHADAN_ASSIGN_OR_RETURN(
      auto verified, verifyDsse(envelope, kAckPayloadType,
                                [&](std::string_view keyid) -> std::optional<Ed25519PublicKey> {
                                  if (keyid == agent_keyid) return agent_public;
                                  return std::nullopt;
                                }));
  if (!verified.allValid()) return makeError(ErrorCode::kInternal, "ack signature invalid");
  SHADAN_ASSIGN_OR_RETURN(auto ack, parseAck(envelope.payload));
  if (ack.seq != seq || ack.result != expected) {
    return makeError(ErrorCode::kInternal, "ack for seq " + std::to_string(ack.seq) + " is \"" +
                                               ackResultName(ack.result) + "\", expected seq " +
                                               std::to_string(seq) + " \"" +
                                               ackResultName(expected) + "\"");
  }
  return okStatus();
}

// Consumes the next pre-signed frame; returns the wall time from frame to serialised ack.
Result<double> runOrder(Fixture& f, bool expect_isolated) {
  if (f.next_frame >= f.frames.size()) {
    return makeError(ErrorCode::kInternal, "out of pre-signed orders");
  }
  const std::string& frame = f.frames[f.next_frame];
  const auto seq = static_cast<int64_t>(f.next_frame + 1);
  ++f.next_frame;
  f.stages = Stages{};
  OrderOutcome outcome;
  const auto start = SteadyClock::now();
  auto ack_frame = receiveFrame(*f.core, frame, outcome);
  const double elapsed = millisSince(start);
  if (!ack_frame.ok()) return ack_frame.error();
  if (outcome.rejection) {
    return makeError(ErrorCode::kInternal, "order " + std::to_string(seq) +
                                               " rejected: " + outcome.rejection->code() + ": " +
                                               outcome.rejection->message);
  }
  SHADAN_RETURN_IF_ERROR(checkAck(f, *ack_frame, seq, AckResult::kApplied));
  if (f.core->desired().contains(Isolation{"office", "full"}) != expect_isolated) {
    return makeError(ErrorCode::kInternal, "desired state does not match the order");
  }
  return elapsed;
}

void orderBench(benchmark::State& state, Fixture* f, bool time_isolate) {
  for (auto _ : state) {
    // Orders alternate isolate / restore; the one not under test runs untimed.
    if (!time_isolate) {
      if (auto untimed = runOrder(*f, true); !untimed.ok()) {
        state.SkipWithError(untimed.error().message.c_str());
        break;
      }
    }
    auto elapsed = runOrder(*f, time_isolate);
    if (!elapsed.ok()) {
      state.SkipWithError(elapsed.error().message.c_str());
      break;
    }
    state.SetIterationTime(*elapsed / 1000.0);
    const Stages s = f->stages;
    state.counters["lockout_ms"] = s.lockout_list;
    state.counters["state_ms"] = s.state_save;
    state.counters["nft_apply_ms"] = s.nft_apply;
    state.counters["nft_read_ms"] = s.nft_read;
    state.counters["audit_ms"] = s.audit;
    state.counters["routes_ms"] = s.routes;
    state.counters["conntrack_ms"] = s.conntrack;
    state.counters["ack_sign_ms"] = s.ack_sign;
    state.counters["rest_ms"] = *elapsed - s.sum();
    state.counters["audit_entries"] = s.audit_entries;
    state.counters["seen_ids"] =
        static_cast<double>(f->core->desired().replay.seen_command_ids.size());
    if (time_isolate) {
      if (auto untimed = runOrder(*f, false); !untimed.ok()) {
        state.SkipWithError(untimed.error().message.c_str());
        break;
      }
    }
  }
}

// ---- reference points -----------------------------------------------------------------------

// verifyDispatch alone (pure: no I/O) on a fresh isolate dispatch against an empty replay state.
void verifyBench(benchmark::State& state, const Fixture* f, const Trust* trust,
                 const std::string* envelope) {
  const AgentSelf self{kGateway, f->keys.agentKey().keyId()};
  const AgentReplayState replay;
  for (auto _ : state) {
    const auto start = SteadyClock::now();
    OrderVerification verification =
        verifyDispatch(*envelope, *trust, self, replay, f->policy, f->clock);
    state.SetIterationTime(millisSince(start) / 1000.0);
    if (!verification.ok()) {
      state.SkipWithError(verification.rejection().message.c_str());
      break;
    }
  }
}

// SqliteStateStore::save (one transaction, synchronous=FULL) of a state with one isolation and
// `seen` command ids, all of them already stored: save() writes the whole replay state each
// time, so its cost grows with the number of orders the agent has ever accepted.
void stateSaveBench(benchmark::State& state, SqliteStateStore* store, DesiredState* desired) {
  for (auto _ : state) {
    // What an order writes: its seq, its command id, its segment's generation.
    ++desired->replay.last_seq;
    char command_id[40];
    std::snprintf(command_id, sizeof command_id, "ffffffff-0000-4000-8000-%012" PRIx64,
                  static_cast<uint64_t>(desired->replay.last_seq));
    desired->replay.seen_command_ids.insert(command_id);
    ++desired->replay.segment_gens["office"];
    const auto start = SteadyClock::now();
    const Status saved = store->save(*desired);
    state.SetIterationTime(millisSince(start) / 1000.0);
    if (!saved.ok()) {
      state.SkipWithError(saved.error().message.c_str());
      break;
    }
  }
}

// `nft -f FILE`: what a shell-out implementation would pay per apply.
void nftProcessBench(benchmark::State& state, const std::string* path) {
  for (auto _ : state) {
    const auto start = SteadyClock::now();
    std::string error;
    const bool ok = bench::runNftFile(*path, error);
    state.SetIterationTime(millisSince(start) / 1000.0);
    if (!ok) {
      state.SkipWithError(error.c_str());
      break;
    }
  }
}

void registerSingleShot(benchmark::internal::Benchmark* b, int repetitions) {
  bench::registerSingleShot(b, repetitions, bench::Timing::kManual);
}

int run(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  // Warm-up pairs, then one pair per repetition of each order benchmark.
  const int order_count = 2 * (kWarmupPairs + 2 * kOrderRepetitions);
  Fixture f;
  if (Status ready = setUp(f, order_count); !ready.ok()) {
    std::fprintf(stderr, "set-up failed: %s\n", ready.error().message.c_str());
    return 1;
  }
  for (int i = 0; i < kWarmupPairs; ++i) {
    for (bool isolated : {true, false}) {
      if (auto warm = runOrder(f, isolated); !warm.ok()) {
        std::fprintf(stderr, "warm-up order failed: %s\n", warm.error().message.c_str());
        return 1;
      }
    }
  }

  // The planner's text for the same isolation (and for none), for `nft -f` beside the orders.
  auto isolated_plan = planGateway(f.policy, kGateway, {Isolation{"office", "full"}});
  auto restored_plan = planGateway(f.policy, kGateway, {});
  if (!isolated_plan.ok() || !restored_plan.ok()) {
    std::fprintf(stderr, "planGateway failed\n");
    return 1;
  }
  const std::string isolate_path = (f.dir->path() / "isolate_office.nft").string();
  const std::string restore_path = (f.dir->path() / "restore.nft").string();
  if (!writeFile(isolate_path, isolated_plan->nft_script).ok() ||
      !writeFile(restore_path, restored_plan->nft_script).ok()) {
    std::fprintf(stderr, "cannot write the nft scripts\n");
    return 1;
  }
  auto trust = loadTrustFile(f.dir->path() / "trust.json");
  auto signed_dispatch = f.keys.dispatchEnvelope(0, f.clock.now());
  if (!trust.ok() || !signed_dispatch.ok()) {
    std::fprintf(stderr, "cannot prepare the verify benchmark\n");
    return 1;
  }
  const std::string verify_envelope = serializeDsseEnvelope(*signed_dispatch);

  registerSingleShot(
      benchmark::RegisterBenchmark("order/isolate/frame_to_signed_ack", orderBench, &f, true),
      kOrderRepetitions);
  registerSingleShot(
      benchmark::RegisterBenchmark("order/restore/frame_to_signed_ack", orderBench, &f, false),
      kOrderRepetitions);
  registerSingleShot(benchmark::RegisterBenchmark("stage/verifyDispatch/isolate", verifyBench, &f,
                                                  &*trust, &verify_envelope),
                     kStageRepetitions);
  // Separate stores (own directories, own locks), pre-filled with 0 / 1,000 / 10,000 ids.
  std::vector<std::unique_ptr<SqliteStateStore>> save_stores;
  std::vector<std::unique_ptr<DesiredState>> save_states;
  for (int seen : {0, 1000, 10000}) {
    auto store = SqliteStateStore::open(f.dir->path() / ("save_" + std::to_string(seen)));
    if (!store.ok()) {
      std::fprintf(stderr, "state store: %s\n", store.error().message.c_str());
      return 1;
    }
    auto desired = std::make_unique<DesiredState>(f.core->desired());
    desired->isolations.clear();
    ActiveIsolation active;
    active.isolation = Isolation{"office", "full"};
    active.origin = "order:benchmark";
    desired->isolations.push_back(active);
    desired->replay.seen_command_ids.clear();
    for (int i = 0; i < seen; ++i) {
      char command_id[40];
      std::snprintf(command_id, sizeof command_id, "%08x-0000-4000-8000-%012x",
                    static_cast<unsigned>(i), static_cast<unsigned>(i));
      desired->replay.seen_command_ids.insert(command_id);
    }
    if (Status saved = (*store)->save(*desired); !saved.ok()) {
      std::fprintf(stderr, "state store: %s\n", saved.error().message.c_str());
      return 1;
    }
    registerSingleShot(
        benchmark::RegisterBenchmark(("stage/state_save/seen_ids:" + std::to_string(seen)).c_str(),
                                     stateSaveBench, store->get(), desired.get()),
        kStageRepetitions);
    save_stores.push_back(std::move(store).value());
    save_states.push_back(std::move(desired));
  }
  registerSingleShot(
      benchmark::RegisterBenchmark("nft_f_process/isolate_office", nftProcessBench, &isolate_path),
      kNftProcessRepetitions);
  registerSingleShot(
      benchmark::RegisterBenchmark("nft_f_process/restore", nftProcessBench, &restore_path),
      kNftProcessRepetitions);

  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace
}  // namespace shadan

int main(int argc, char** argv) {
  // The lab policy names no interfaces for gateway gw, so no device but `lo` is needed for the
  // plan to apply.
  if (const int failed = shadan::bench::enterBenchNamespace(argc, argv); failed != 0) return failed;
  return shadan::run(argc, argv);
}
