#include "bench/orders_bench_support.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "common/orders.h"
#include "common/strict_json.h"
#include "common/trust.h"

namespace shadan::bench {

using namespace shadan::agent;  // NOLINT: the agent under test
namespace {

using nlohmann::json;

json trustKey(const std::string& keyid, const Ed25519PublicKey& public_key,
              const std::string& identity, const std::vector<std::string>& roles) {
  return {{"keyid", keyid},
          {"public_key", base64Encode(public_key)},
          {"identity", identity},
          {"roles", roles}};
}

}  // namespace

Result<std::unique_ptr<TempDir>> TempDir::create() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base && *base ? base : "/tmp") + "/shadan_orders_bench_" +
                        std::to_string(getpid()) + "_XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    return makeError(ErrorCode::kIo, "mkdtemp " + pattern + ": " + std::strerror(errno));
  }
  return std::unique_ptr<TempDir>(new TempDir(pattern));
}

Status writeFile(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return makeError(ErrorCode::kIo, "cannot write " + path.string());
  return okStatus();
}

OrderSigner::OrderSigner()
    : sato_(Ed25519KeyPair::generate()),
      tanaka_(Ed25519KeyPair::generate()),
      controller_(Ed25519KeyPair::generate()),
      agent_(Ed25519KeyPair::generate()) {}

std::string OrderSigner::trustJson(std::chrono::system_clock::time_point now) const {
  return json{
      {"shadan_trust", 1},
      {"version", 1},
      {"expires_at", formatRfc3339(toUnixMillis(now + std::chrono::hours(24)))},
      {"keys",
       {trustKey(sato_.keyId(), sato_.publicKey(), "op:sato", {"operator", "breakglass"}),
        trustKey(tanaka_.keyId(), tanaka_.publicKey(), "op:tanaka", {"operator", "breakglass"}),
        trustKey(controller_.keyId(), controller_.publicKey(), "controller", {"controller"}),
        trustKey(agent_.keyId(), agent_.publicKey(), "agent:gw", {"agent"})}}}
      .dump();
}

Result<DsseEnvelope> OrderSigner::dispatchEnvelope(
    int index, std::chrono::system_clock::time_point now) const {
  const bool isolate = index % 2 == 0;
  char command_id[40];
  std::snprintf(command_id, sizeof command_id, "%08x-0000-4000-8000-%012x",
                static_cast<unsigned>(index), static_cast<unsigned>(index));
  const auto at = [now](std::chrono::seconds offset) {
    return formatRfc3339(toUnixMillis(now + offset));
  };
  const json authz = {{"v", 1},
                      {"command_id", command_id},
                      {"action", isolate ? "isolate" : "restore"},
                      {"segment", "office"},
                      {"profile", "full"},
                      {"segment_gen", index + 1},
                      {"targets", {kGateway}},
                      {"requested_by", "op:sato"},
                      {"reason", "benchmark of the order path"},
                      {"drill", false},
                      {"issued_at", at(std::chrono::seconds(-10))},
                      {"expires_at", at(std::chrono::hours(1))}};
  std::vector<const Signer*> authz_signers{&sato_};
  if (!isolate) authz_signers.push_back(&tanaka_);
  SHADAN_ASSIGN_OR_RETURN(auto authz_envelope,
                          signDsse(kAuthzPayloadType, authz.dump(), authz_signers));
  // The dispatch window is capped at 15 minutes (OrderVerifierOptions): the whole run must
  // finish within 14 minutes of pre-signing.
  const json dispatch = {{"v", 1},
                         {"agent_id", kGateway},
                         {"agent_key", agent_.keyId()},
                         {"seq", index + 1},
                         {"issued_at", at(std::chrono::seconds(-5))},
                         {"expires_at", at(std::chrono::minutes(14))},
                         {"authz", dsseEnvelopeToJson(authz_envelope)}};
  const Signer* controller[] = {&controller_};
  return signDsse(kDispatchPayloadType, dispatch.dump(), controller);
}

std::string OrderSigner::frameOf(const DsseEnvelope& envelope) {
  return json{{"type", "dispatch"}, {"envelope", dsseEnvelopeToJson(envelope)}}.dump();
}

Result<std::string> receiveFrame(AgentCore& core, std::string_view frame, OrderOutcome& outcome) {
  SHADAN_ASSIGN_OR_RETURN(auto parsed,
                          parseStrictJson(frame, "controller message", kMaxMessageBytes));
  const json& message = parsed;
  if (!message.is_object() || message.size() != 2 || !message.contains("type") ||
      message["type"] != "dispatch" || !message.contains("envelope") ||
      !message["envelope"].is_object()) {
    return makeError(ErrorCode::kInvalidArgument, "malformed dispatch message");
  }
  outcome = core.handleDispatch(message["envelope"].dump());
  return json{{"type", "ack"}, {"envelope", outcome.ack_envelope}}.dump();
}

}  // namespace shadan::bench
