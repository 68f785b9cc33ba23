#include "bench/loadgen/sim_agent.h"

#include <chrono>

namespace shadan::loadgen {
namespace {

constexpr const char* kAuditPath = "/sim/audit.log";
// The daemon's poll period for OrdersSession::tick (audit shipping, controller-loss grace).
constexpr auto kTick = std::chrono::seconds(1);

}  // namespace

SimAgent::SimAgent(boost::asio::io_context& io, const SimEndpoint& endpoint, SimAgentSetup setup,
                   const Policy& policy, const Trust& trust, SimObserver& observer)
    : io_(io),
      endpoint_(endpoint),
      setup_(std::move(setup)),
      observer_(observer),
      policy_(policy),
      trust_(trust),
      signer_(*setup_.key),
      tick_(io) {}

SimAgent::~SimAgent() = default;

std::vector<std::string> SimAgent::isolatedSegments() const {
  std::vector<std::string> out;
  if (!core_) return out;
  for (const auto& entry : core_->desired().isolations) out.push_back(entry.isolation.segment);
  return out;
}

Status SimAgent::start() {
  AuditLogOptions log_options;
  log_options.path = kAuditPath;
  log_options.log_id = "agent:" + setup_.id;
  log_options.rotate_bytes = 0;
  SHADAN_ASSIGN_OR_RETURN(audit_, AuditLog::open(log_options, files_, clock_, &signer_));
  core_ = std::make_unique<agent::AgentCore>(
      policy_, setup_.id,
      agent::AgentCoreDeps{store_, firewall_, routes_, conntrack_, *audit_, clock_, "loadgen",
                           SHADAN_VERSION});
  SHADAN_RETURN_IF_ERROR(core_->load());
  SHADAN_RETURN_IF_ERROR(core_->useTrust(trust_, signer_));

  session_ = std::make_unique<agent::OrdersSession>(
      agent::OrdersSessionDeps{*core_, *audit_, files_, files_, kAuditPath, channel_, monotonic_},
      agent::OrdersSessionOptions{});
  SHADAN_RETURN_IF_ERROR(connect());
  armTick();
  return okStatus();
}

Status SimAgent::connect() {
  if (link_ || stopped_) return okStatus();
  agent::LinkOptions link;
  link.host = endpoint_.host;
  link.port = endpoint_.port;
  link.more_controllers = endpoint_.more;
  link.ca_file = endpoint_.ca_file;
  link.cert_file = setup_.cert_file;
  link.key_file = setup_.key_file;
  link.controller_pin = endpoint_.controller_pin;
  link.agent_id = setup_.id;
  link.agent_keyid = signer_.keyId();
  link.agent_public_key = signer_.publicKey();
  link.jitter_seed = setup_.index + 1;
  agent::LinkCallbacks callbacks;
  callbacks.on_dispatch = [this](const nlohmann::json& envelope) {
    const agent::OrderOutcome outcome = session_->onDispatch(envelope);
    observer_.onOutcome(setup_.index, outcome);
  };
  callbacks.on_connected = [this] {
    session_->onConnected();
    observer_.onConnected(setup_.index, link_ ? link_->controller().port : 0);
  };
  callbacks.on_disconnected = [this](const std::string& reason) {
    session_->onDisconnected(reason);
    observer_.onDisconnected(setup_.index);
  };
  callbacks.on_audit = [this](const nlohmann::json& message) { session_->onAuditMessage(message); };
  callbacks.on_message_rejected = [this](const std::string& reason) {
    session_->onMessageRejected(reason);
  };
  callbacks.last_seq = [this] { return session_->lastSeq(); };
  link_ = std::make_unique<agent::ControllerLink>(io_, link, callbacks, clock_);
  channel_.link = link_.get();
  return link_->start();
}

void SimAgent::disconnect() {
  if (!link_) return;
  const bool was_connected = link_->connected();
  link_->stop();  // runs no callback
  channel_.link = nullptr;
  link_.reset();
  if (was_connected) {
    session_->onDisconnected("dropped by the load generator");
    observer_.onDisconnected(setup_.index);
  }
}

Status SimAgent::Channel::send(const nlohmann::json& message) {
  if (link == nullptr) return makeError(ErrorCode::kUnavailable, "not connected");
  return link->send(message);
}

void SimAgent::stop() {
  stopped_ = true;
  tick_.cancel();
  if (link_) link_->stop();
}

void SimAgent::armTick() {
  tick_.expires_after(kTick);
  tick_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    session_->tick();
    armTick();
  });
}

}  // namespace shadan::loadgen
