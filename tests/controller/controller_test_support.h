#pragma once

// Shared fixtures of the controller tests: keys, a policy, a trust file, and small fakes of the
// agent hub (the audit sink and the clock are
// the shared tests/fakes/ ones).

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "common/audit_sink.h"
#include "common/clock.h"
#include "common/ed25519.h"
#include "common/policy.h"
#include "common/trust.h"
#include "controller/agent_hub.h"
#include "tests/fakes/fake_audit_sink.h"
#include "tests/fakes/fake_clock.h"

namespace shadan::testing {

using namespace shadan::controller;  // NOLINT: the controller under test

inline Ed25519KeyPair keyFromByte(uint8_t byte) {
  std::vector<uint8_t> seed(kEd25519SeedBytes, byte);
  return Ed25519KeyPair::fromSeed(seed).value();
}

inline nlohmann::json keyEntry(const Ed25519Signer& key, const std::string& identity,
                               const std::vector<std::string>& roles) {
  return {{"keyid", key.keyId()},
          {"public_key", base64Encode(key.publicKey())},
          {"identity", identity},
          {"roles", roles}};
}

// lgwan is bordered by two gateways; mgmt is protected.
inline constexpr const char* kTestPolicy = R"({
  "shadan_policy": 1,
  "name": "controller-test",
  "segments": {
    "lgwan":    {"prefixes": ["10.20.0.0/24"]},
    "mgmt":     {"prefixes": ["10.99.0.0/24"], "protected": true},
    "internet": {"default": true}
  },
  "gateways": {"core-gw": {"borders": ["lgwan", "mgmt", "internet"]},
               "edge-gw": {"borders": ["lgwan", "internet"]}},
  "management": {"always_allow": [{"prefix": "10.99.0.10/32"}]},
  "profiles": {"full": {}, "internet-only": {"peers": ["internet"]}}
})";

// The escalation ladder's policy: lgwan and kiosk split one /24, so a /24 host spans both;
// core-gw and edge-gw have interfaces of the default segment (an uplink), lab-gw has none; a
// management host lies inside office.
inline constexpr const char* kLadderTestPolicy = R"({
  "shadan_policy": 1,
  "name": "controller-ladder-test",
  "segments": {
    "lgwan":    {"prefixes": ["10.20.0.0/25", "fd00:20::/64"]},
    "kiosk":    {"prefixes": ["10.20.0.128/25"]},
    "office":   {"prefixes": ["10.30.0.0/16"]},
    "mgmt":     {"prefixes": ["10.99.0.0/24"], "protected": true},
    "internet": {"default": true}
  },
  "gateways": {
    "core-gw": {"borders": ["lgwan", "mgmt", "internet"],
                "interfaces": {"internet": ["eth0"], "lgwan": ["eth1"]}},
    "edge-gw": {"borders": ["lgwan", "kiosk", "office", "internet"],
                "interfaces": {"internet": ["wan0"]}},
    "lab-gw":  {"borders": ["office"]}
  },
  "management": {"always_allow": [{"prefix": "10.99.0.10/32"}, {"prefix": "10.30.0.100/32"}]},
  "profiles": {"full": {}, "internet-only": {"peers": ["internet"]}}
})";

class FakeHub : public AgentHub {
 public:
  Status send(const std::string& agent_id, const nlohmann::json& message) override {
    if (!connected(agent_id)) return makeError(ErrorCode::kUnavailable, "no session");
    sent[agent_id].push_back(message);
    return okStatus();
  }
  // Keeps the text as sent, then records it like send() (the base class parses it).
  Status sendText(const std::string& agent_id, std::string text) override {
    std::string copy = text;
    Status status = AgentHub::sendText(agent_id, std::move(text));
    if (status.ok()) sent_text[agent_id].push_back(std::move(copy));
    return status;
  }
  bool connected(const std::string& agent_id) const override { return online.count(agent_id) != 0; }
  void flush() override {
    if (on_flush) on_flush();
  }

  std::set<std::string> online;
  std::map<std::string, std::vector<nlohmann::json>> sent;
  std::map<std::string, std::vector<std::string>> sent_text;  // of sendText(), as written
  std::function<void()> on_flush;  // what a test wants to see at each flush()
};

// The controller tests' time: 2026-11-26T10:00:00Z (fixtures: FakeClock
// clock_{kControllerTestStartMs}).
inline constexpr int64_t kControllerTestStartMs = 1'795'687'200'000;

// A fresh directory under the system temp dir, removed with its contents.
class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("shadan-controller-test-" + std::to_string(::getpid()) + "-" +
             std::to_string(counter()++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  static int& counter() {
    static int value = 0;
    return value;
  }
  std::filesystem::path path_;
};

// The keys of the tests and a trust file naming them.
struct TestKeys {
  Ed25519Signer sato{keyFromByte(1)};
  Ed25519Signer sato_laptop{keyFromByte(2)};
  Ed25519Signer tanaka{keyFromByte(3)};
  Ed25519Signer controller{keyFromByte(5)};
  Ed25519Signer core_gw{keyFromByte(6)};
  Ed25519Signer edge_gw{keyFromByte(7)};
  Ed25519Signer eve{keyFromByte(8)};

  nlohmann::json trustDoc() const {
    return {
        {"shadan_trust", 1},
        {"version", 1},
        {"expires_at", "2027-06-01T00:00:00Z"},
        {"keys",
         {keyEntry(sato, "op:sato", {"operator"}), keyEntry(sato_laptop, "op:sato", {"operator"}),
          keyEntry(tanaka, "op:tanaka", {"operator"}),
          keyEntry(controller, "controller", {"controller"}),
          keyEntry(core_gw, "agent:core-gw", {"agent"}),
          keyEntry(edge_gw, "agent:edge-gw", {"agent"})}}};
  }
};

}  // namespace shadan::testing
