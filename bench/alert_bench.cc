// Automated response: from an alert received by the controller to the signed dispatch handed
// to the agents' channel, in process, with the production store (SQLite WAL, synchronous=FULL)
// and the production audit log (hash-chained, fdatasync) on the disk of the machine, and the
// agents' channel replaced by a hub that notes the time of each send.
//
//   build/bench/alert_bench            (no root; docs/benchmarks.md, "Automated response")
//
// Per iteration: one Suricata EVE alert record for a new host of a /16 segment, through
// AlertResponder::intake (parse, rule, guards, isolate signed on behalf, store, audit), until the
// first gateway's dispatch is sent (`to_first_dispatch`) and until the intake answered
// (`to_answer`: includes the second gateway's dispatch and the alert's own audit entry).
// p50/p99 are reported as counters (milliseconds). `BM_AlertDeduplicated`: an alert for a host
// already cut, the common case of a noisy detector.

#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/audit_log.h"
#include "common/log_file_system.h"
#include "common/strict_json.h"
#include "controller/alert_responder.h"
#include "tests/controller/controller_test_support.h"

namespace shadan::controller {
namespace {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

constexpr const char* kPolicy = R"({
  "shadan_policy": 1, "name": "alert-bench",
  "segments": {"office": {"prefixes": ["10.20.0.0/16"]},
               "mgmt": {"prefixes": ["10.99.0.0/24"], "protected": true},
               "internet": {"default": true}},
  "gateways": {"core-gw": {"borders": ["office", "mgmt", "internet"]},
               "edge-gw": {"borders": ["office", "internet"]}},
  "management": {"always_allow": [{"prefix": "10.99.0.10/32"}]},
  "profiles": {"full": {}}
})";

class TimingHub : public AgentHub {
 public:
  Status send(const std::string& agent_id, const json& message) override {
    if (!first_send) first_send = SteadyClock::now();
    sent[agent_id].push_back(message);
    return okStatus();
  }
  bool connected(const std::string&) const override { return true; }

  std::optional<SteadyClock::time_point> first_send;
  std::map<std::string, std::vector<json>> sent;
};

// The controller's order logic and responder over real files in a fresh directory.
struct Controller {
  Controller() {
    char pattern[] = "/var/tmp/shadan-alert-bench-XXXXXX";
    dir = ::mkdtemp(pattern);
    policy = parsePolicy(kPolicy, "bench-policy.json").value().policy;
    trust = parseTrust(keys.trustDoc().dump(), "trust.json").value();
    store = openSqliteControllerStore(dir).value();
    AuditLogOptions options;
    options.path = dir + "/audit.log";
    options.log_id = "controller";
    audit = AuditLog::open(std::move(options), fs, clock, &keys.controller).value();
    OrdersServiceOptions service_options;
    service_options.new_id = randomUuid;
    orders = std::make_unique<OrdersService>(policy, trust, keys.controller, *store, hub, *audit,
                                             clock, std::move(service_options));
    for (const auto& [id, key] :
         {std::pair{"core-gw", &keys.core_gw}, {"edge-gw", &keys.edge_gw}}) {
      orders->onHello(AgentHello{id, key->keyId(), 0, "bench", std::nullopt});
      (void)orders->approveAgent(Caller{"sato", ApiRole::kOperator}, id, "bench");
    }
    const json section = {{"rules",
                           {{{"name", "eve-malware"},
                             {"match", {{"format", "eve"}, {"signature_ids", {2024897}}}},
                             {"action", "quarantine-host"},
                             {"host", "internal"},
                             {"ttl_s", 3600}}}},
                          {"rate", {{"per_detector_per_min", 10000}, {"intake_per_s", 1000000}}},
                          {"breaker", {{"max_actions", 100000}, {"window_s", 60}}}};
    const StrictObjectReader reader(section, "bench", "/response", StrictJsonWording::kFields);
    response = parseResponseConfig(reader).value();
    tokens = {
        {"suricata", ApiRole::kDetector, std::string(64, 'a'), std::vector<std::string>{"office"}}};
    responder =
        std::make_unique<AlertResponder>(response, tokens, policy, *orders, *store, *audit, clock);
    (void)responder->load();
  }
  ~Controller() {
    responder.reset();
    orders.reset();
    (void)audit->close();
    std::filesystem::remove_all(dir);
  }

  std::string dir;
  testing::TestKeys keys;
  Policy policy;
  Trust trust;
  ControllerStorePtr store;
  SystemClock clock;
  PosixLogFileSystem fs;
  std::unique_ptr<AuditLog> audit;
  TimingHub hub;
  std::unique_ptr<OrdersService> orders;
  ResponseConfig response;
  std::vector<ApiToken> tokens;
  std::unique_ptr<AlertResponder> responder;
};

// The gateways' part, outside the timed region: a signed `applied` ack for every dispatch sent,
// as agents answer within milliseconds (an order nobody acks stays in flight).
void ackAll(Controller& c) {
  const int64_t now = toUnixMillis(c.clock.now());
  for (auto& [agent, messages] : c.hub.sent) {
    const Ed25519Signer& key = agent == "core-gw" ? c.keys.core_gw : c.keys.edge_gw;
    const Signer* signers[] = {&key};
    for (const json& message : messages) {
      if (message.value("type", "") != "dispatch") continue;
      auto envelope = dsseEnvelopeFromJson(message["envelope"], "bench", "/envelope").value();
      const Dispatch dispatch = parseDispatch(envelope.payload).value();
      Ack ack;
      ack.agent_id = agent;
      ack.seq = dispatch.seq;
      ack.command_id = parseAuthz(dispatch.authz.payload).value().command_id;
      ack.ruleset_sha256 = std::string(64, 'b');
      ack.received_at_ms = now;
      ack.applied_at_ms = now;
      ack.audit = AckAudit{1, std::string(64, 'c')};
      const auto signed_ack = signDsse(kAckPayloadType, serializeAck(ack), signers).value();
      (void)c.orders->onAck(agent, dsseEnvelopeToJson(signed_ack));
    }
    messages.clear();
  }
}

std::string eveAlert(int host) {
  const std::string address =
      "10.20." + std::to_string(host / 250 % 250) + "." + std::to_string(host % 250 + 2);
  return json{{"timestamp", "2026-12-06T01:02:03.123456+0000"},
              {"flow_id", 1000 + host},
              {"in_iface", "eth0"},
              {"event_type", "alert"},
              {"src_ip", address},
              {"src_port", 49152},
              {"dest_ip", "203.0.113.2"},
              {"dest_port", 443},
              {"proto", "TCP"},
              {"alert",
               {{"action", "allowed"},
                {"gid", 1},
                {"signature_id", 2024897},
                {"rev", 3},
                {"signature", "ET MALWARE beacon"},
                {"category", "A Network Trojan was detected"},
                {"severity", 1}}}}
      .dump();
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t index = std::min(values.size() - 1, static_cast<size_t>(p * values.size()));
  return values[index];
}

void BM_AlertToDispatch(benchmark::State& state) {
  Controller c;
  const Caller detector{"suricata", ApiRole::kDetector};
  std::vector<double> first, answer;
  int host = 0;
  for (auto _ : state) {
    const std::string body = eveAlert(host++);
    c.hub.first_send.reset();
    const auto start = SteadyClock::now();
    auto result = c.responder->intake(detector, std::nullopt, AlertFormat::kEve, body);
    const auto end = SteadyClock::now();
    if (!result.ok() || result->results.size() != 1 ||
        result->results[0].decision != AlertDecision::kActed || !c.hub.first_send) {
      state.SkipWithError("the alert was not acted on");
      break;
    }
    first.push_back(std::chrono::duration<double, std::milli>(*c.hub.first_send - start).count());
    answer.push_back(std::chrono::duration<double, std::milli>(end - start).count());
    state.PauseTiming();
    ackAll(c);
    state.ResumeTiming();
  }
  state.counters["to_first_dispatch_p50_ms"] = percentile(first, 0.50);
  state.counters["to_first_dispatch_p99_ms"] = percentile(first, 0.99);
  state.counters["to_answer_p50_ms"] = percentile(answer, 0.50);
  state.counters["to_answer_p99_ms"] = percentile(answer, 0.99);
}
BENCHMARK(BM_AlertToDispatch)->Iterations(2000)->Unit(benchmark::kMillisecond);

void BM_AlertDeduplicated(benchmark::State& state) {
  Controller c;
  const Caller detector{"suricata", ApiRole::kDetector};
  const std::string body = eveAlert(7);
  (void)c.responder->intake(detector, std::nullopt, AlertFormat::kEve, body);
  ackAll(c);
  for (auto _ : state) {
    auto result = c.responder->intake(detector, std::nullopt, AlertFormat::kEve, body);
    if (!result.ok() || result->results[0].decision != AlertDecision::kDeduplicated) {
      state.SkipWithError("not deduplicated");
      break;
    }
  }
}
BENCHMARK(BM_AlertDeduplicated)->Iterations(2000)->Unit(benchmark::kMillisecond);

// A batch of 1000 records for 1000 new hosts (the forwarder's largest batch).
void BM_AlertBatch1000(benchmark::State& state) {
  Controller c;
  const Caller detector{"suricata", ApiRole::kDetector};
  int host = 0;
  for (auto _ : state) {
    std::string body;
    for (int i = 0; i < 1000; ++i) body += eveAlert(host++) + "\n";
    auto result = c.responder->intake(detector, std::nullopt, AlertFormat::kEve, body);
    if (!result.ok() || result->results.size() != 1000) {
      state.SkipWithError("the batch was not taken");
      break;
    }
    state.PauseTiming();
    ackAll(c);
    state.ResumeTiming();
  }
  state.counters["alerts_per_s"] = benchmark::Counter(
      1000.0 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_AlertBatch1000)->Iterations(5)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace shadan::controller

BENCHMARK_MAIN();
