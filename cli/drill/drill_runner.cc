#include "cli/drill/drill_runner.h"

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include "cli/controller_context.h"
#include "cli/drill/drill_run_internal.h"
#include "cli/gateway_table.h"
#include "common/audit_verify.h"
#include "common/clock.h"
#include "common/ed25519.h"
#include "common/log_file_system.h"
#include "common/orders.h"

namespace shadan::drill {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

constexpr auto kStartTimeout = std::chrono::seconds(20);
constexpr auto kWaitPoll = std::chrono::milliseconds(20);
constexpr uint16_t kDefaultHubPort = 8444;

// The port the agents dial: the policy's management rule for the controller's address, so the
// agent channel survives every cut exactly as in production.
uint16_t hubPort(const Policy& policy, const std::string& controller_address) {
  auto address = IpPrefix::parse(controller_address);
  if (!address.ok()) return kDefaultHubPort;
  for (const ManagementRule& rule : policy.always_allow) {
    if (rule.port && rule.proto != L4Proto::kUdp && rule.prefix.contains(*address)) {
      return *rule.port;
    }
  }
  return kDefaultHubPort;
}

std::string stepLabel(const Step& step) {
  if (step.label) return *step.label;
  return stepKindName(step);
}

// An approval's authz envelope: the first of the entry's "envelope"/"authz" members that is an
// object, else the entry.
const Json& envelopeOf(const Json& entry) {
  for (const char* key : {"envelope", "authz"}) {
    if (entry.contains(key) && entry[key].is_object()) return entry[key];
  }
  return entry;
}

std::optional<Ack> ackOf(const Json& ack) {
  if (!ack.is_object()) return std::nullopt;
  if (ack.contains("envelope")) return ackOf(ack["envelope"]);
  if (!ack.contains("payload") || !ack["payload"].is_string()) {
    // The controller's order view carries the ack payload itself, already verified.
    auto parsed = parseAck(ack.dump());
    if (!parsed.ok()) return std::nullopt;
    return *parsed;
  }
  auto bytes = base64Decode(ack["payload"].get<std::string>());
  if (!bytes.ok()) return std::nullopt;
  auto parsed = parseAck(std::string(bytes->begin(), bytes->end()));
  if (!parsed.ok()) return std::nullopt;
  return *parsed;
}

}  // namespace

DrillRunner::DrillRunner(DrillRunRequest request, CommandRunner& runner, std::ostream& progress,
                         const std::atomic<bool>& interrupted)
    : impl_(std::make_unique<Impl>(std::move(request), runner, progress, interrupted, report_)) {}

DrillRunner::~DrillRunner() = default;

DrillOutcome DrillRunner::run() { return impl_->run(); }

DrillRunner::Impl::Impl(DrillRunRequest request, CommandRunner& runner, std::ostream& progress,
                        const std::atomic<bool>& interrupted, DrillReport& report)
    : request_(std::move(request)),
      runner_(runner),
      progress_(progress),
      interrupted_(interrupted),
      report_(report) {
  for (const auto& [name, segment] : request_.policy.segments) {
    if (segment.is_default) default_segment_ = name;
  }
  concrete_.resize(request_.scenario.steps.size());
  for (size_t i = 0; i < request_.scenario.steps.size(); ++i) {
    if (const auto* expect = std::get_if<ExpectStep>(&request_.scenario.steps[i].action)) {
      for (const Probe& probe : expect->probes) {
        for (ConcreteProbe& c : expandProbe(probe, request_.policy)) {
          concrete_[i].push_back(std::move(c));
        }
      }
    }
  }
}

int64_t DrillRunner::Impl::nowMs() const {
  return toUnixMillis(std::chrono::system_clock::now()) - report_.started_at_ms;
}

void DrillRunner::Impl::say(const std::string& line) { progress_ << line << std::endl; }

void DrillRunner::Impl::fail(StepRecord& step, const std::string& why) {
  step.ok = false;
  report_.failures.push_back("step " + std::to_string(step.index) + " (" + step.kind + ", " +
                             step.phase + "): " + why);
  say("  FAIL " + why);
}

bool DrillRunner::Impl::sleepFor(Ms duration) {
  const auto deadline = std::chrono::steady_clock::now() + duration;
  while (std::chrono::steady_clock::now() < deadline) {
    if (interrupted_) return false;
    const auto left = std::chrono::duration_cast<Ms>(deadline - std::chrono::steady_clock::now());
    std::this_thread::sleep_for(std::min<Ms>(left, Ms(50)));
  }
  return !interrupted_;
}

DrillOutcome DrillRunner::Impl::run() {
  const Scenario& scenario = request_.scenario;
  started_ = std::chrono::system_clock::now();
  report_.started_at_ms = toUnixMillis(started_);
  report_.scenario = scenario.name;
  report_.scenario_description = scenario.description;
  report_.parameters = scenario.arguments;
  report_.policy = request_.policy.name;
  report_.policy_file = request_.policy_file;
  report_.policy_sha256 = request_.policy.source_sha256;
  report_.lab = request_.lab_name;
  for (const auto& [gateway, node] : request_.policy_lab.gateway_nodes) {
    report_.gateways[gateway];
  }

  bool could_not_run = false;
  if (Status set = setUp(); !set.ok()) {
    report_.failures.push_back("setup: " + set.error().message);
    say("FAIL setup: " + set.error().message);
    could_not_run = true;
  } else {
    startMeasuring();
    for (size_t i = 0; i < scenario.steps.size(); ++i) {
      if (interrupted_) {
        report_.failures.push_back("interrupted before step " + std::to_string(i));
        could_not_run = true;
        break;
      }
      const Step& step = scenario.steps[i];
      StepRecord record;
      record.index = i;
      record.label = stepLabel(step);
      record.kind = stepKindName(step);
      const auto* expect = std::get_if<ExpectStep>(&step.action);
      record.phase =
          probePhaseName(expect && expect->phase ? *expect->phase : defaultPhase(scenario, i));
      record.started_ms = nowMs();
      say("step " + std::to_string(i) + " (" + record.kind + ", " + record.phase +
          "): " + record.label);
      Status ran = runStep(i, record);
      record.ended_ms = nowMs();
      if (!ran.ok()) {
        record.ok = false;
        record.detail = ran.error().message;
        report_.failures.push_back("step " + std::to_string(i) + " (" + record.kind + ", " +
                                   record.phase +
                                   "): the drill could not go on: " + ran.error().message);
        say("  STOP " + ran.error().message);
        report_.steps.push_back(std::move(record));
        could_not_run = true;
        break;
      }
      report_.steps.push_back(std::move(record));
    }
    if (fleet_ && fleet_->controllerRunning()) {
      for (const TrackedOrder& order : orders_) (void)refreshOrder(order);
    }
    finishMeasuring();
  }
  tearDown();
  report_.duration_ms = nowMs();
  if (could_not_run) return DrillOutcome::kCouldNotRun;
  return report_.passed() ? DrillOutcome::kPassed : DrillOutcome::kFailed;
}

Status DrillRunner::Impl::setUp() {
  const PolicyLab& plab = request_.policy_lab;
  lab_ = std::make_unique<Lab>(plab.spec, request_.lab_name, runner_);
  say("lab " + request_.lab_name + ": " + std::to_string(plab.spec.nodes.size()) +
      " namespaces from policy " + request_.policy.name);
  SHADAN_RETURN_IF_ERROR(lab_->up());

  std::string tmpl = (fs::temp_directory_path() / "shadan-drill-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return makeError(ErrorCode::kIo, "mkdtemp " + tmpl + ": " + std::strerror(errno));
  }
  work_dir_ = tmpl;

  controller_addresses_ = {plab.controller_address};
  for (IpFamily family : {IpFamily::kV4, IpFamily::kV6}) {
    auto other = plab.spec.firstAddress(plab.controller_node, family);
    if (other && other->address != plab.controller_address) {
      controller_addresses_.push_back(other->address);
    }
  }
  DrillPkiRequest pki;
  pki.dir = work_dir_ + "/pki";
  pki.policy_file = request_.policy_file;
  for (const auto& [gateway, node] : plab.gateway_nodes) pki.gateways.push_back(gateway);
  pki.controller_addresses = controller_addresses_;
  pki.hub_port = hubPort(request_.policy, plab.controller_address);
  pki.api_port = pki.hub_port == 8443 ? 8442 : 8443;
  for (const Step& step : request_.scenario.steps) {
    if (const auto* alert = std::get_if<AlertStep>(&step.action)) {
      if (std::find(pki.detectors.begin(), pki.detectors.end(), alert->detector) ==
          pki.detectors.end()) {
        pki.detectors.push_back(alert->detector);
      }
    }
  }
  pki.response = request_.scenario.response_json;
  SHADAN_ASSIGN_OR_RETURN(auto made, makeDrillPki(pki));
  pki_ = std::make_unique<DrillPki>(std::move(made));
  say("drill credentials (CA, keys, trust, tokens) in " + work_dir_ +
      (request_.keep ? " (kept)" : " (removed at the end)"));

  fleet_ = std::make_unique<DrillFleet>(plab, *lab_, *pki_, request_.binaries, request_.policy_file,
                                        request_.report_dir);
  say("starting shadan-controller on " + plab.controller_node + " (" +
      hostPort(plab.controller_address, pki_->hub_port) + ") and " +
      std::to_string(plab.gateway_nodes.size()) + " shadan-agent(s); logs in " +
      request_.report_dir);
  SHADAN_RETURN_IF_ERROR(fleet_->start(kStartTimeout));
  std::string gateways;
  for (const auto& [gateway, node] : plab.gateway_nodes) {
    gateways += (gateways.empty() ? "" : ", ") + gateway;
  }
  say("agents enrolled and connected: " + gateways);
  return okStatus();
}

void DrillRunner::Impl::tearDown() {
  flows_.clear();
  if (fleet_) {
    if (Status stopped = fleet_->stop(); !stopped.ok()) {
      report_.failures.push_back("teardown: " + stopped.error().message);
    }
    verifyAudit();
  } else {
    report_.audit.detail = "no controller ran";
  }
  if (lab_) {
    if (Status down = lab_->down(); !down.ok()) {
      say("warning: lab down: " + down.error().message);
    }
  }
  if (!work_dir_.empty() && !request_.keep) {
    std::error_code ec;
    fs::remove_all(work_dir_, ec);
  }
  say("torn down: daemons stopped, lab " + request_.lab_name + " removed" +
      (request_.keep && !work_dir_.empty() ? ", credentials kept in " + work_dir_ : ""));
}

void DrillRunner::Impl::verifyAudit() {
  PosixLogFileSystem files;
  std::string detail;
  bool verified = true;
  const auto check = [&](const std::string& what, const std::string& log,
                         const std::string& pub) -> std::optional<uint64_t> {
    auto key = loadPublicKeyFile(pub);
    std::vector<PublicKeyInfo> keys;
    if (key.ok()) keys.push_back(*key);
    auto checked = verifyAuditLog(files, log, keys);
    if (!checked.ok()) {
      verified = false;
      detail += what + ": " + checked.error().message + "; ";
      return std::nullopt;
    }
    if (!checked->valid) {
      verified = false;
      detail += what + ": " + (checked->error ? checked->error->message : "invalid") + "; ";
      return std::nullopt;
    }
    detail += what + ": " + std::to_string(checked->entries) + " entries, " +
              std::to_string(checked->checkpoints_matched) + " checkpoints verified; ";
    return checked->entries;
  };
  auto controller =
      check("controller log", pki_->controller_state_dir + "/audit.log", pki_->controller_pub);
  report_.audit.entries = controller.value_or(0);
  for (const auto& [gateway, paths] : pki_->gateways) {
    (void)check("agent " + gateway, paths.state_dir + "/audit.log", paths.agent_pub);
  }
  if (detail.size() >= 2) detail.resize(detail.size() - 2);
  report_.audit.verified = verified;
  report_.audit.detail = detail;
  say(std::string("audit: ") + (verified ? "verified" : "NOT verified") + " (" + detail + ")");
  if (!verified) report_.failures.push_back("audit: " + detail);
}

Status DrillRunner::Impl::runStep(size_t index, StepRecord& record) {
  const Step& step = request_.scenario.steps[index];
  const std::string default_reason =
      "drill " + request_.scenario.name + " step " + std::to_string(index) + ": " + record.label;
  if (const auto* isolate = std::get_if<IsolateStep>(&step.action)) {
    openEstablishedFlows(index);
    Json extra = {{"ttl_s", isolate->ttl_s},
                  {"drill", true},
                  {"reason", isolate->reason.value_or(default_reason)}};
    if (isolate->ticket) extra["ticket"] = *isolate->ticket;
    return runOrder(index, isolate->rung, true, extra, isolate->approvers, record);
  }
  if (const auto* restore = std::get_if<RestoreStep>(&step.action)) {
    // A lab controller (lab trust) takes drill orders only, restores included.
    Json extra = {{"drill", true}, {"reason", restore->reason.value_or(default_reason)}};
    if (restore->ticket) extra["ticket"] = *restore->ticket;
    return runOrder(index, restore->rung, false, extra, restore->approvers, record);
  }
  if (const auto* alert = std::get_if<AlertStep>(&step.action)) {
    openEstablishedFlows(index);
    return runAlert(index, *alert, record);
  }
  if (const auto* fault = std::get_if<FaultStep>(&step.action)) {
    return runFault(index, *fault, record);
  }
  if (const auto* wait = std::get_if<WaitStep>(&step.action)) return runWait(*wait, record);
  return runExpect(index, std::get<ExpectStep>(step.action), record);
}

Result<Json> DrillRunner::Impl::rungJson(const Rung& rung, bool isolate) const {
  Json body = Json::object();
  switch (rung.scope) {
    case IsolationScope::kSegment:
      body["segment"] = rung.segment;
      break;
    case IsolationScope::kHost: {
      Json hosts = Json::array();
      for (const Endpoint& host : rung.hosts) {
        for (const std::string& address : addressesOf(host, rung.hosts_family)) {
          if (std::find(hosts.begin(), hosts.end(), Json(address)) == hosts.end()) {
            hosts.push_back(address);
          }
        }
      }
      if (hosts.empty()) {
        return makeError(ErrorCode::kNotFound, "the lab has no address for the rung's hosts");
      }
      body["scope"] = "host";
      body["hosts"] = std::move(hosts);
      break;
    }
    case IsolationScope::kUplink:
    case IsolationScope::kIsland:
      body["scope"] = isolationScopeName(rung.scope);
      if (!rung.gateways.empty()) body["gateways"] = rung.gateways;
      if (isolate && rung.link_down) body["link_down"] = true;
      break;
  }
  if (rung.profile) body["profile"] = *rung.profile;
  return body;
}

Status DrillRunner::Impl::runOrder(size_t index, const Rung& rung, bool isolate, const Json& extra,
                                   std::optional<int> approvers, StepRecord& record) {
  const std::string action = isolate ? "isolate" : "restore";
  SHADAN_ASSIGN_OR_RETURN(Json body, rungJson(rung, isolate));
  for (const auto& [key, value] : extra.items()) body[key] = value;
  int64_t sent = nowMs();
  SHADAN_ASSIGN_OR_RETURN(auto answer,
                          fleet_->api(kDrillOperators[0], "POST", "/v1/" + action, body));
  if (!answer.ok()) {
    fail(record, "the controller refused the " + action + ": " + answer.errorSummary());
    return okStatus();
  }
  const std::string order_id = jsonText(answer.body, "order_id");
  std::string state = jsonText(answer.body, "state");
  if (!isSafePathSegment(order_id)) {
    fail(record, "the controller's answer names no order_id");
    return okStatus();
  }
  record.order_id = order_id;
  if (state == "awaiting_approval") {
    const std::string approval_id = jsonText(answer.body, "approval_id");
    const int signers = approvers.value_or(static_cast<int>(std::size(kDrillOperators)));
    if (signers > static_cast<int>(std::size(kDrillOperators))) {
      fail(record, "approvers " + std::to_string(signers) + ": the drill has " +
                       std::to_string(std::size(kDrillOperators)) + " operators");
      return okStatus();
    }
    for (int k = 0; k < signers && state == "awaiting_approval"; ++k) {
      // The signature that meets the threshold sends the order: its time is the order's.
      sent = nowMs();
      Status signed_ok = signApproval(approval_id, order_id, kDrillOperators[k]);
      if (!signed_ok.ok()) {
        fail(record, "signing approval " + approval_id + " as " + kDrillOperators[k] + ": " +
                         signed_ok.error().message);
        return okStatus();
      }
      SHADAN_ASSIGN_OR_RETURN(auto order, getOrder(order_id));
      state = jsonText(order, "state");
      say("  signed by " + std::string(kDrillOperators[k]) + " (order " + state + ")");
    }
  }
  TrackedOrder tracked{order_id, index, action, sent};
  orders_.push_back(tracked);
  latest_order_ = tracked;
  if (isolate) latest_isolate_ = tracked;
  record.detail = action + " order " + order_id + " " + state;
  say("  order " + order_id + " " + state + " (sent at " + std::to_string(sent) + " ms)");
  return okStatus();
}

Result<Json> DrillRunner::Impl::getOrder(const std::string& order_id) {
  SHADAN_ASSIGN_OR_RETURN(auto answer,
                          fleet_->api(kDrillOperators[0], "GET", "/v1/orders/" + order_id));
  if (!answer.ok()) {
    return makeError(ErrorCode::kUnavailable,
                     "GET /v1/orders/" + order_id + ": " + answer.errorSummary());
  }
  return answer.body;
}

Status DrillRunner::Impl::signApproval(const std::string& approval_id, const std::string& order_id,
                                       const std::string& operator_name) {
  SHADAN_ASSIGN_OR_RETURN(auto listed, fleet_->api(operator_name, "GET", "/v1/approvals"));
  if (!listed.ok()) {
    return makeError(ErrorCode::kUnavailable, "GET /v1/approvals: " + listed.errorSummary());
  }
  std::vector<const Json*> entries;
  const Json& body = listed.body;
  if (body.is_object() && body.contains("approvals") && body["approvals"].is_array()) {
    for (const Json& entry : body["approvals"]) entries.push_back(&entry);
  }
  const Json* entry = nullptr;
  for (const Json* candidate : entries) {
    if (firstJsonText(*candidate, {"approval_id", "id"}) == approval_id) entry = candidate;
  }
  if (entry == nullptr) return makeError(ErrorCode::kNotFound, "no such pending approval");
  const Json& envelope = envelopeOf(*entry);
  const std::string payload_type = envelope.value("payloadType", "");
  if (payload_type != kAuthzPayloadType || !envelope.contains("payload") ||
      !envelope["payload"].is_string()) {
    return makeError(ErrorCode::kParse, "the approval is not an authz envelope");
  }
  SHADAN_ASSIGN_OR_RETURN(auto bytes, base64Decode(envelope["payload"].get<std::string>()));
  const std::string payload(bytes.begin(), bytes.end());
  SHADAN_ASSIGN_OR_RETURN(auto authz, parseAuthz(payload));
  // Sign only the order this step made.
  if (authz.command_id != order_id) {
    return makeError(ErrorCode::kInvalidArgument,
                     "the approval is for order " + authz.command_id + ", not " + order_id);
  }
  SHADAN_ASSIGN_OR_RETURN(auto key, loadPrivateKeyFile(pki_->operator_keys.at(operator_name)));
  const Ed25519Signature signature = key.sign(dssePae(payload_type, payload));
  SHADAN_ASSIGN_OR_RETURN(
      auto answer,
      fleet_->api(operator_name, "POST", "/v1/approvals/" + approval_id + "/signatures",
                  Json{{"keyid", key.keyId()}, {"sig", base64Encode(signature)}}));
  if (!answer.ok()) return makeError(ErrorCode::kInvalidArgument, answer.errorSummary());
  return okStatus();
}

Result<std::string> DrillRunner::Impl::refreshOrder(const TrackedOrder& order) {
  SHADAN_ASSIGN_OR_RETURN(auto body, getOrder(order.order_id));
  const auto relative = [&](std::optional<int64_t> unix_ms) -> std::optional<int64_t> {
    if (!unix_ms) return std::nullopt;
    return *unix_ms - report_.started_at_ms;
  };
  std::string text;
  for (const GatewayRow& row : gatewayRows(body)) {
    GatewayRecord& gateway = report_.gateways[row.gateway];
    auto found =
        std::find_if(gateway.transitions.begin(), gateway.transitions.end(),
                     [&](const TransitionRecord& t) { return t.order_id == order.order_id; });
    if (found == gateway.transitions.end()) {
      gateway.transitions.push_back({});
      found = gateway.transitions.end() - 1;
    }
    TransitionRecord& t = *found;
    t.step = order.step;
    t.action = order.action;
    t.order_id = order.order_id;
    t.order_sent_ms = order.sent_ms;
    t.state = row.state;
    t.dispatch_sent_ms = relative(row.sent_ms);
    const bool answered = isFinalGatewayState(row.state) && row.state != "expired";
    t.ack_received_ms = answered ? relative(row.updated_ms) : std::nullopt;
    const Json& entry = body["gateways"].is_object() && body["gateways"].contains(row.gateway)
                            ? body["gateways"][row.gateway]
                            : Json();
    if (entry.is_object() && entry.contains("ack")) {
      if (auto ack = ackOf(entry["ack"])) {
        t.dispatch_received_ms = relative(ack->received_at_ms);
        t.applied_ms = relative(ack->applied_at_ms);
      }
    }
    text += (text.empty() ? "" : ", ") + row.gateway + " " + row.state;
    if (t.ack_received_ms) {
      text += " (ack at " + std::to_string(*t.ack_received_ms) + " ms, " +
              std::to_string(*t.ack_received_ms - t.order_sent_ms) + " ms after the order)";
    }
  }
  return text.empty() ? std::string("no gateway") : text;
}

}  // namespace shadan::drill
