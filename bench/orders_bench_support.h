#pragma once

// The parts of the order benchmark (bench/orders_bench.cc) that are not the benchmark itself:
// forwarding decorators that time each borrowed dependency of AgentCore per order, a scratch
// directory, the keys and pre-signed dispatch frames, and what the controller link does with a
// received frame.

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "agents/agent_core.h"
#include "agents/dataplane/conntrack_backend.h"
#include "agents/dataplane/firewall_backend.h"
#include "agents/dataplane/route_backend.h"
#include "agents/state/state_store.h"
#include "common/audit_sink.h"
#include "common/dsse.h"
#include "common/ed25519.h"
#include "common/result.h"

namespace shadan::bench {

using namespace shadan::agent;  // NOLINT: the agent under test

using SteadyClock = std::chrono::steady_clock;

inline constexpr const char* kGateway = "gw";
// ControllerLink's default LinkOptions::max_message_bytes: the cap the link parses frames with.
inline constexpr size_t kMaxMessageBytes = 256 * 1024;

inline double millisSince(SteadyClock::time_point start) {
  return std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count();
}

// ---- per-stage timing ------------------------------------------------------------------------

// Milliseconds spent in each borrowed dependency during one order.
struct Stages {
  double lockout_list = 0;  // listRuleset(Json): the lockout check before an isolation
  double nft_apply = 0;     // FirewallBackend::apply
  double nft_read = 0;      // readTable (read-back + SHA-256, before and after)
  double state_save = 0;    // StateStore::save (one SQLite transaction, synchronous=FULL)
  double audit = 0;         // AuditSink::append, every entry of the order
  double routes = 0;        // RouteBackend (blackhole sync/list, links, route lookups)
  double conntrack = 0;     // ConntrackBackend
  double ack_sign = 0;      // the agent Signer (Ed25519 over the ack's PAE)
  int audit_entries = 0;
  int nft_applies = 0;

  double sum() const {
    return lockout_list + nft_apply + nft_read + state_save + audit + routes + conntrack + ack_sign;
  }
};

template <typename F>
auto timed(double& slot, F&& call) {
  const auto start = SteadyClock::now();
  auto result = call();
  slot += millisSince(start);
  return result;
}

class TimedFirewall final : public FirewallBackend {
 public:
  TimedFirewall(FirewallBackend& inner, Stages& stages) : inner_(inner), stages_(stages) {}
  Status apply(std::string_view nft_script) override {
    ++stages_.nft_applies;
    return timed(stages_.nft_apply, [&] { return inner_.apply(nft_script); });
  }
  Result<TableSnapshot> readTable() override {
    return timed(stages_.nft_read, [&] { return inner_.readTable(); });
  }
  Result<std::string> listRuleset() override {
    return timed(stages_.lockout_list, [&] { return inner_.listRuleset(); });
  }
  Result<nlohmann::json> listForeignRulesetJson() override {
    return timed(stages_.lockout_list, [&] { return inner_.listForeignRulesetJson(); });
  }

 private:
  FirewallBackend& inner_;
  Stages& stages_;
};

class TimedRoutes final : public RouteBackend {
 public:
  TimedRoutes(RouteBackend& inner, Stages& stages) : inner_(inner), stages_(stages) {}
  Status sync(const std::vector<IpPrefix>& desired) override {
    return timed(stages_.routes, [&] { return inner_.sync(desired); });
  }
  Result<std::vector<IpPrefix>> list() override {
    return timed(stages_.routes, [&] { return inner_.list(); });
  }
  Status setLinkUp(const std::string& ifname, bool up) override {
    return timed(stages_.routes, [&] { return inner_.setLinkUp(ifname, up); });
  }
  Result<bool> isLinkUp(const std::string& ifname) override {
    return timed(stages_.routes, [&] { return inner_.isLinkUp(ifname); });
  }
  Result<std::string> outputInterfaceTo(const IpPrefix& destination) override {
    return timed(stages_.routes, [&] { return inner_.outputInterfaceTo(destination); });
  }

 private:
  RouteBackend& inner_;
  Stages& stages_;
};

class TimedConntrack final : public ConntrackBackend {
 public:
  TimedConntrack(ConntrackBackend& inner, Stages& stages) : inner_(inner), stages_(stages) {}
  Result<size_t> deleteMatching(const std::vector<IpPrefix>& prefixes) override {
    return timed(stages_.conntrack, [&] { return inner_.deleteMatching(prefixes); });
  }
  Result<size_t> count(const std::vector<IpPrefix>& prefixes) override {
    return timed(stages_.conntrack, [&] { return inner_.count(prefixes); });
  }

 private:
  ConntrackBackend& inner_;
  Stages& stages_;
};

class TimedStore final : public StateStore {
 public:
  TimedStore(StateStore& inner, Stages& stages) : inner_(inner), stages_(stages) {}
  Result<DesiredState> load() override { return inner_.load(); }
  Status save(const DesiredState& state) override {
    return timed(stages_.state_save, [&] { return inner_.save(state); });
  }
  Status saveUnsynced(const DesiredState& state) override {
    return timed(stages_.state_save, [&] { return inner_.saveUnsynced(state); });
  }
  // After the ack is handed to the link: not part of the timed path (the daemon calls it).
  Status rememberAck(int64_t seq, const std::string& envelope, int64_t at_ms,
                     int64_t keep_ms) override {
    return inner_.rememberAck(seq, envelope, at_ms, keep_ms);
  }
  Result<std::vector<StoredAck>> recentAcks(int64_t since_ms, size_t limit) override {
    return inner_.recentAcks(since_ms, limit);
  }

 private:
  StateStore& inner_;
  Stages& stages_;
};

class TimedAudit final : public AuditSink {
 public:
  TimedAudit(AuditSink& inner, Stages& stages) : inner_(inner), stages_(stages) {}
  Result<AuditReceipt> append(const AuditEvent& event) override {
    ++stages_.audit_entries;
    return timed(stages_.audit, [&] { return inner_.append(event); });
  }
  Result<AuditReceipt> appendBuffered(const AuditEvent& event) override {
    ++stages_.audit_entries;
    return timed(stages_.audit, [&] { return inner_.appendBuffered(event); });
  }

 private:
  AuditSink& inner_;
  Stages& stages_;
};

class TimedSigner final : public Signer {
 public:
  TimedSigner(const Signer& inner, Stages& stages) : inner_(inner), stages_(stages) {}
  std::string keyId() const override { return inner_.keyId(); }
  Result<Ed25519Signature> sign(std::string_view message) const override {
    return timed(stages_.ack_sign, [&] { return inner_.sign(message); });
  }

 private:
  const Signer& inner_;
  Stages& stages_;
};

// ---- files ----------------------------------------------------------------------------------

// A fresh directory under $TMPDIR, removed (recursively) when the benchmark ends.
class TempDir {
 public:
  static Result<std::unique_ptr<TempDir>> create();
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  explicit TempDir(std::filesystem::path path) : path_(std::move(path)) {}
  std::filesystem::path path_;
};

// Writes `text` to `path`, replacing it.
Status writeFile(const std::filesystem::path& path, const std::string& text);

// ---- signed orders --------------------------------------------------------------------------

// The operators, the controller and the agent key, and the frames they sign.
class OrderSigner {
 public:
  OrderSigner();

  const Ed25519KeyPair& agentKey() const { return agent_; }

  // The trust file naming the four keys, valid for a day from `now`.
  std::string trustJson(std::chrono::system_clock::time_point now) const;

  // Order `index` (0-based): even = isolate office (one operator), odd = restore office (two
  // operators, the restore threshold); seq and segment_gen index + 1. Returns the dispatch
  // envelope.
  Result<DsseEnvelope> dispatchEnvelope(int index, std::chrono::system_clock::time_point now) const;

  // The text frame the controller link receives for a dispatch (PROTOCOL.md "Channel").
  static std::string frameOf(const DsseEnvelope& envelope);

 private:
  Ed25519Signer sato_;
  Ed25519Signer tanaka_;
  Ed25519Signer controller_;
  Ed25519KeyPair agent_;
};

// What ControllerLink (handle) and the daemon (onDispatch) do with one received text frame, up
// to the serialised ack message the link writes back.
Result<std::string> receiveFrame(AgentCore& core, std::string_view frame, OrderOutcome& outcome);

}  // namespace shadan::bench
