#pragma once

// What a simulated agent of the load generator stands on instead of a kernel and a disk: a
// null dataplane (the firewall keeps the last table it was given, routes and conntrack do
// nothing), the desired state in memory, and an audit log whose files live in memory. The
// agent logic above them (AgentCore, the verifier, OrdersSession, the audit chain, signed acks)
// is the real one, unchanged; only these side effects are simulated, so that thousands of
// agents fit in one process and the numbers measure the protocol and the controller.
//
// Threading: each object belongs to one simulated agent and is used from that agent's io
// thread only.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agents/dataplane/conntrack_backend.h"
#include "agents/dataplane/firewall_backend.h"
#include "agents/dataplane/route_backend.h"
#include "agents/state/state_store.h"
#include "common/audit_ship.h"
#include "common/log_file_system.h"

namespace shadan::loadgen {

// "The kernel" holds our table as the last script applied (its replace header removed), so
// that read-back, hashing and drift detection work as on a gateway.
class NullFirewall final : public agent::FirewallBackend {
 public:
  Status apply(std::string_view nft_script) override;
  Result<agent::TableSnapshot> readTable() override;
  Result<std::string> listRuleset() override { return table_; }
  Result<nlohmann::json> listForeignRulesetJson() override;

 private:
  std::string table_;
};

class NullRoutes final : public agent::RouteBackend {
 public:
  Status sync(const std::vector<IpPrefix>& desired) override;
  Result<std::vector<IpPrefix>> list() override { return routes_; }
  Status setLinkUp(const std::string& ifname, bool up) override;
  Result<bool> isLinkUp(const std::string& ifname) override;
  // No route to anything: management paths are never "through a link_down interface".
  Result<std::string> outputInterfaceTo(const IpPrefix&) override { return std::string(); }

 private:
  std::vector<IpPrefix> routes_;
};

class NullConntrack final : public agent::ConntrackBackend {
 public:
  Result<size_t> deleteMatching(const std::vector<IpPrefix>&) override { return size_t{0}; }
  Result<size_t> count(const std::vector<IpPrefix>&) override { return size_t{0}; }
};

class MemoryStateStore final : public agent::StateStore {
 public:
  Result<agent::DesiredState> load() override { return state_; }
  Status save(const agent::DesiredState& state) override;
  Status rememberAck(int64_t seq, const std::string& envelope, int64_t at_ms,
                     int64_t keep_ms) override;
  Result<std::vector<agent::StoredAck>> recentAcks(int64_t since_ms, size_t limit) override;

 private:
  struct Kept {
    std::string envelope;
    int64_t at_ms = 0;
  };
  agent::DesiredState state_;
  std::map<int64_t, Kept> acks_;  // by seq
};

// Files as strings: the audit log and its checkpoints, read back by the shipper.
class MemoryLogFileSystem final : public LogFileSystem, public AuditFileReader {
 public:
  Result<std::string> readFile(const std::string& path) override;
  Result<bool> exists(const std::string& path) override { return files_.count(path) != 0; }
  Result<std::vector<std::string>> listDirectory(const std::string& dir) override;
  Result<std::unique_ptr<WritableLogFile>> openForAppend(const std::string& path) override;
  Status createFile(const std::string& path, std::string_view contents) override;
  Status truncate(const std::string& path, uint64_t size) override;
  Status rename(const std::string& from, const std::string& to) override;
  Status appendUnsynced(const std::string& path, std::string_view data) override;
  Status syncFileSystem(const std::string&) override { return okStatus(); }
  Result<std::string> readAt(const std::string& path, uint64_t offset, size_t max_bytes) override;

 private:
  std::map<std::string, std::shared_ptr<std::string>> files_;
};

}  // namespace shadan::loadgen
