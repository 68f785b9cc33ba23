#include "agents/orders/order_verifier.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "agents/orders/json_size.h"
#include "agents/orders/order_target.h"
#include "common/sha256.h"
#include "common/strict_json.h"

namespace shadan::agent {
namespace {

OrderRejection reject(RejectReason reason, std::string message) {
  return OrderRejection{reason, std::move(message)};
}

// A parse failure of an envelope or payload: duplicated keys get their own code because they
// are the signature of a parser-differential attack, not of a broken sender.
OrderRejection parseRejection(const Error& error, RejectReason otherwise) {
  const bool duplicate = error.message.find("duplicate key") != std::string::npos;
  return reject(duplicate ? RejectReason::kDuplicateKey : otherwise, error.message);
}

int64_t millisOf(std::chrono::seconds seconds) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(seconds).count();
}

// issued_at - skew <= now <= expires_at + skew, and expires_at - issued_at <= max_validity.
std::optional<OrderRejection> checkWindow(std::string_view what, int64_t issued_at_ms,
                                          int64_t expires_at_ms, int64_t now_ms,
                                          const OrderVerifierOptions& options,
                                          std::chrono::seconds max_validity,
                                          RejectReason expired_reason) {
  const int64_t skew = millisOf(options.skew);
  if (now_ms < issued_at_ms - skew) {
    return reject(RejectReason::kFromTheFuture,
                  std::string(what) + " issued at " + formatRfc3339(issued_at_ms) +
                      ", after now (" + formatRfc3339(now_ms) + ") plus the allowed skew");
  }
  if (now_ms > expires_at_ms + skew) {
    return reject(expired_reason, std::string(what) + " expired at " +
                                      formatRfc3339(expires_at_ms) + " (now " +
                                      formatRfc3339(now_ms) + ")");
  }
  if (expires_at_ms - issued_at_ms > millisOf(max_validity)) {
    return reject(RejectReason::kValidityTooLong,
                  std::string(what) + " is valid for longer than the " +
                      std::to_string(max_validity.count()) + " s allowed");
  }
  return std::nullopt;
}

DsseKeyLookup trustLookup(const Trust& trust) {
  return [&trust](std::string_view keyid) -> std::optional<Ed25519PublicKey> {
    const TrustKey* key = trust.findKey(keyid);
    if (key == nullptr) return std::nullopt;
    return key->public_key;
  };
}

struct CheckedAuthz {
  Authz authz;
  std::vector<const TrustKey*> signers;  // distinct keys whose signature verified
  std::string sha256;
};

// The signature half of step 6: exact type, every signature by a known key and valid, then a
// strict parse of the bytes that were verified.
std::variant<CheckedAuthz, OrderRejection> checkAuthzEnvelope(const DsseEnvelope& envelope,
                                                              const Trust& trust) {
  if (envelope.payload_type != kAuthzPayloadType) {
    return reject(RejectReason::kWrongPayloadType,
                  "authz payloadType " + quoteForMessage(envelope.payload_type) + " is not \"" +
                      std::string(kAuthzPayloadType) + "\"");
  }
  if (envelope.payload.size() > kOrderMaxPayloadBytes) {
    return reject(RejectReason::kOversized, "authz payload over the size cap");
  }
  auto verification = verifyDsse(envelope, kAuthzPayloadType, trustLookup(trust));
  if (!verification.ok()) {
    return reject(RejectReason::kWrongPayloadType, verification.error().message);
  }
  for (const auto& check : verification->checks) {
    if (check.status == DsseSignatureStatus::kUnknownKey) {
      return reject(RejectReason::kUnknownKeyid,
                    "authz signed by key " + check.keyid + ", which the trust file does not list");
    }
    if (check.status == DsseSignatureStatus::kInvalid) {
      return reject(RejectReason::kBadAuthzSignature,
                    "authz signature by key " + check.keyid + " does not verify");
    }
  }
  auto authz = parseAuthz(envelope.payload);
  if (!authz.ok()) return parseRejection(authz.error(), RejectReason::kBadPayload);
  CheckedAuthz out{std::move(*authz), {}, sha256Hex(envelope.payload)};
  for (const std::string& keyid : verification->validKeyIds()) {
    out.signers.push_back(trust.findKey(keyid));
  }
  return out;
}

// Distinct identities among `signers` holding `role`, in signer order. kOperator counts what
// signs as an operator on an order that is (or is not) a drill: TrustKey::signsAsOperator.
std::vector<std::string> identitiesWithRole(const std::vector<const TrustKey*>& signers,
                                            TrustRole role, bool drill_order = false) {
  std::vector<std::string> out;
  for (const TrustKey* key : signers) {
    const bool counts =
        role == TrustRole::kOperator ? key->signsAsOperator(drill_order) : key->hasRole(role);
    if (counts && std::find(out.begin(), out.end(), key->identity) == out.end()) {
      out.push_back(key->identity);
    }
  }
  return out;
}

// The drill rules, right after the authz parsed: a lab trust file admits drills only, and a
// drill isolate ends on its own.
std::optional<OrderRejection> checkDrill(const Authz& authz, const Trust& trust) {
  if (trust.isLab() && !authz.drill) {
    return reject(RejectReason::kLabTrustRequiresDrill,
                  "this agent runs with a lab trust file (purpose \"lab\"): it applies drill "
                  "orders only, never a real cut");
  }
  if (authz.drill && authz.action == OrderAction::kIsolate && !authz.ttl_s) {
    return reject(RejectReason::kDrillWithoutTtl,
                  "a drill isolate always carries a ttl_s: a drill ends on its own");
  }
  return std::nullopt;
}

std::string joinIdentities(const std::vector<std::string>& identities) {
  if (identities.empty()) return "none";
  std::string out;
  for (const auto& identity : identities) out += (out.empty() ? "" : ", ") + identity;
  return out;
}

std::vector<std::string> keyIdsOf(const std::vector<const TrustKey*>& signers) {
  std::vector<std::string> out;
  for (const TrustKey* key : signers) out.push_back(key->keyid);
  return out;
}

// What a generation counts, for messages: "segment \"lgwan\"", "the hosts of segment
// \"lgwan\"", "uplink", "island".
std::string generationSubject(const Authz& authz) {
  switch (authz.scope) {
    case IsolationScope::kSegment:
      return "segment " + quoteForMessage(authz.segment);
    case IsolationScope::kHost:
      return "the hosts of segment " + quoteForMessage(authz.segment);
    case IsolationScope::kUplink:
    case IsolationScope::kIsland:
      break;
  }
  return isolationScopeName(authz.scope);
}

// Why an isolate needs the isolate_protected rule, for the refusal message.
std::string protectedRuleName(const Authz& authz, const Policy& policy, bool segment_protected) {
  if (!segment_protected) {
    return std::string("isolate of ") + isolationScopeName(authz.scope) +
           " (trust thresholds.scopes: isolate_protected)";
  }
  const std::string what = authz.scope == IsolationScope::kHost ? "hosts in " : "";
  return policy.findSegment(authz.segment) == nullptr
             ? "isolate of " + what + "an unknown (so protected) segment"
             : "isolate of " + what + "protected segment " + authz.segment;
}

// The form an automatic authz must have before any threshold is counted: an isolate runs out on
// its own (ttl_s), and the order is the controller's on behalf of a caller, never operators'.
std::optional<OrderRejection> checkAutomatic(const Authz& authz,
                                             const std::vector<std::string>& operators,
                                             bool controller_signed) {
  if (authz.action == OrderAction::kIsolate && !authz.ttl_s) {
    return reject(RejectReason::kAutomaticWithoutTtl,
                  "an automatic isolate always carries a ttl_s: an automatic response ends on "
                  "its own unless an operator confirms it");
  }
  if (!operators.empty()) {
    return reject(RejectReason::kAutomaticNotOnBehalf,
                  "an automatic " + std::string(orderActionName(authz.action)) +
                      " is never signed by operators (signed by " + joinIdentities(operators) +
                      "): an operator's order goes without \"automatic\"");
  }
  if (!controller_signed || !authz.on_behalf_of) {
    return reject(RejectReason::kAutomaticNotOnBehalf,
                  "an automatic " + std::string(orderActionName(authz.action)) +
                      " is signed by the controller on behalf of a named caller (on_behalf_of)");
  }
  return std::nullopt;
}

// The threshold half of step 6 for a controller-delivered authz.
std::optional<OrderRejection> checkThreshold(const CheckedAuthz& checked, const Trust& trust,
                                             const Policy& policy, VerifiedOrder& out) {
  const Authz& authz = checked.authz;
  const TrustThresholds& t = trust.thresholds;
  const bool segment_protected = targetSegmentProtected(authz, policy);
  const bool protected_rule = t.needsProtectedRule(authz.scope, segment_protected);

  const std::vector<std::string> operators =
      identitiesWithRole(checked.signers, TrustRole::kOperator, authz.drill);
  const std::vector<std::string> controllers =
      identitiesWithRole(checked.signers, TrustRole::kController);
  const bool controller_signed = !controllers.empty();

  if (authz.on_behalf_of && !controller_signed) {
    return reject(RejectReason::kBadOnBehalf, "authz names on_behalf_of " +
                                                  quoteForMessage(*authz.on_behalf_of) +
                                                  " but the controller did not sign it");
  }

  if (authz.automatic) {
    if (auto rejection = checkAutomatic(authz, operators, controller_signed)) return rejection;
  }

  const bool release = authz.action == OrderAction::kRestore && authz.automatic;
  int needed = t.isolate_operators;
  std::string rule = "isolate";
  if (authz.action == OrderAction::kRestore) {
    needed = t.restore_operators;
    rule = release ? "release" : "restore";
  } else if (protected_rule) {
    needed = t.isolate_protected_operators;
    rule = protectedRuleName(authz, policy, segment_protected);
  }
  // The controller counts only on behalf of a named caller: for an isolate outside the
  // isolate_protected rule, and for a release of automatic isolations, each when trust says so.
  const bool on_behalf_allowed = authz.action == OrderAction::kIsolate
                                     ? !protected_rule && t.isolate_controller_on_behalf
                                     : release && t.release_controller_on_behalf;
  const bool on_behalf_ok =
      on_behalf_allowed && controller_signed && authz.on_behalf_of.has_value();
  const bool operators_ok = static_cast<int>(operators.size()) >= needed;
  if (!operators_ok && !on_behalf_ok) {
    std::string why_not_on_behalf;
    if (controller_signed && !authz.on_behalf_of) {
      why_not_on_behalf = "; a controller signature counts only on behalf of a named caller";
    } else if (controller_signed && release) {
      why_not_on_behalf = "; trust thresholds.release.controller_on_behalf is false";
    } else if (controller_signed && authz.automatic && protected_rule) {
      why_not_on_behalf = "; an automatic response never cuts what needs operators";
    } else if (controller_signed) {
      why_not_on_behalf = "; the trust file does not let the controller sign this on behalf";
    }
    return reject(RejectReason::kThresholdNotMet,
                  rule + " needs " + std::to_string(needed) + " distinct operator(s); counted " +
                      std::to_string(operators.size()) + " (" + joinIdentities(operators) + ")" +
                      why_not_on_behalf);
  }
  const bool requested_ok =
      std::find(operators.begin(), operators.end(), authz.requested_by) != operators.end() ||
      (on_behalf_ok && authz.requested_by == *authz.on_behalf_of);
  if (!requested_ok) {
    return reject(RejectReason::kRequestedByNotASigner,
                  "requested_by " + quoteForMessage(authz.requested_by) +
                      " is neither a counted signer (" + joinIdentities(operators) +
                      ") nor the on_behalf_of caller of a controller-on-behalf authz");
  }
  out.signer_identities = operators;
  out.on_behalf = !operators_ok;
  if (on_behalf_ok) out.signer_identities.push_back(controllers.front());
  out.signer_keyids = keyIdsOf(checked.signers);
  return std::nullopt;
}

std::optional<OrderRejection> checkTrustCurrent(const Trust& trust, int64_t now_ms) {
  if (now_ms > trust.expires_at_ms) {
    return reject(RejectReason::kTrustExpired, "trust version " + std::to_string(trust.version) +
                                                   " expired at " +
                                                   formatRfc3339(trust.expires_at_ms));
  }
  return std::nullopt;
}

}  // namespace

Error OrderRejection::toError() const {
  return makeError(ErrorCode::kInvalidArgument, code() + ": " + message);
}

const VerifiedOrder& OrderVerification::order() const {
  if (!ok()) {
    std::fprintf(stderr, "shadan: broken invariant: order() of a rejection: %s\n",
                 rejection().message.c_str());
    std::abort();
  }
  return std::get<0>(data_);
}

const OrderRejection& OrderVerification::rejection() const {
  if (ok()) {
    std::fprintf(stderr, "shadan: broken invariant: rejection() of a verified order\n");
    std::abort();
  }
  return std::get<1>(data_);
}

namespace {

// One dispatch envelope on its way through steps 0-7, and what has been parsed of it so far, so
// that a rejection can name the seq the dispatch claimed without parsing anything twice.
struct DispatchInput {
  const nlohmann::json* doc = nullptr;  // the envelope; nullptr when it did not parse
  const Error* parse_error = nullptr;   // why it did not parse (nullptr: not tried, too large)
  size_t size = 0;                      // bytes as received, or the compact size of `doc`
  bool size_at_least = false;  // `size` is a lower bound: measuring stopped past the frame cap
  bool drill = false;          // the authz, once it verified and parsed, said drill
  std::optional<Result<DsseEnvelope>> envelope;  // once tried
  std::optional<Result<Dispatch>> dispatch;      // once tried (the unverified payload)
};

const Result<DsseEnvelope>& envelopeOf(DispatchInput& input) {
  if (!input.envelope) input.envelope = dsseEnvelopeFromJson(*input.doc, "dispatch envelope", "");
  return *input.envelope;
}

const Result<Dispatch>& dispatchOf(DispatchInput& input) {
  if (!input.dispatch) input.dispatch = parseDispatch(envelopeOf(input)->payload);
  return *input.dispatch;
}

// The seq an unverified dispatch claims, when its envelope and payload parse: the controller
// matches the ack of a rejection by it, and the ack's signature says only "this agent rejected
// what claimed to be seq N". Looked at up to the channel's frame cap, past the envelope cap.
std::optional<int64_t> claimedSeq(DispatchInput& input) {
  if (input.doc == nullptr || input.size > kDispatchClaimMaxBytes) return std::nullopt;
  if (!envelopeOf(input).ok()) return std::nullopt;
  const Result<Dispatch>& dispatch = dispatchOf(input);
  if (!dispatch.ok()) return std::nullopt;
  return dispatch->seq;
}

OrderVerification checkDispatch(DispatchInput& input, const Trust& trust, const AgentSelf& self,
                                const AgentReplayState& replay, const Policy& policy,
                                const Clock& clock, const OrderVerifierOptions& options) {
  const int64_t now_ms = toUnixMillis(clock.now());
  if (auto rejection = checkTrustCurrent(trust, now_ms)) return *rejection;

  // 1. Size cap, strict envelope, exact type.
  if (input.size > kDsseEnvelopeMaxBytes) {
    const std::string size = input.size_at_least
                                 ? "more than " + std::to_string(kDispatchClaimMaxBytes)
                                 : std::to_string(input.size);
    return reject(RejectReason::kOversized, "dispatch envelope of " + size + " bytes is over the " +
                                                std::to_string(kDsseEnvelopeMaxBytes) +
                                                "-byte cap");
  }
  if (input.doc == nullptr) return parseRejection(*input.parse_error, RejectReason::kBadEnvelope);
  const Result<DsseEnvelope>& envelope = envelopeOf(input);
  if (!envelope.ok()) return parseRejection(envelope.error(), RejectReason::kBadEnvelope);
  if (envelope->payload_type != kDispatchPayloadType) {
    return reject(RejectReason::kWrongPayloadType,
                  "payloadType " + quoteForMessage(envelope->payload_type) + " is not \"" +
                      std::string(kDispatchPayloadType) + "\"");
  }

  // 2. Every signature by a controller key, and valid.
  auto verification = verifyDsse(*envelope, kDispatchPayloadType, trustLookup(trust));
  if (!verification.ok()) {
    return reject(RejectReason::kWrongPayloadType, verification.error().message);
  }
  for (const auto& check : verification->checks) {
    const TrustKey* key = trust.findKey(check.keyid);
    if (key == nullptr || !key->hasRole(TrustRole::kController)) {
      return reject(RejectReason::kBadControllerSignature,
                    "dispatch signed by key " + check.keyid + ", which is not a controller key");
    }
    if (check.status != DsseSignatureStatus::kValid) {
      return reject(RejectReason::kBadControllerSignature,
                    "dispatch signature by controller key " + check.keyid + " does not verify");
    }
  }

  // 3. Strict dispatch, addressed to this agent and this agent's key.
  const Result<Dispatch>& dispatch = dispatchOf(input);
  if (!dispatch.ok()) return parseRejection(dispatch.error(), RejectReason::kBadPayload);
  if (dispatch->agent_id != self.agent_id) {
    return reject(RejectReason::kNotForThisAgent,
                  "dispatch is for agent " + quoteForMessage(dispatch->agent_id) + ", this is " +
                      quoteForMessage(self.agent_id));
  }
  if (dispatch->agent_key != self.keyid) {
    return reject(RejectReason::kWrongAgentKey, "dispatch is bound to agent key " +
                                                    dispatch->agent_key + ", this agent's key is " +
                                                    self.keyid + " (reinstalled agent?)");
  }

  // 4. Freshness.
  if (auto rejection =
          checkWindow("dispatch", dispatch->issued_at_ms, dispatch->expires_at_ms, now_ms, options,
                      options.max_dispatch_validity, RejectReason::kStale)) {
    return *rejection;
  }

  // 5. Order.
  if (dispatch->seq <= replay.last_seq) {
    return reject(RejectReason::kReplayedSeq, "dispatch seq " + std::to_string(dispatch->seq) +
                                                  " is not above the last accepted " +
                                                  std::to_string(replay.last_seq));
  }

  // 6. The authz: signatures, then threshold.
  auto checked_or = checkAuthzEnvelope(dispatch->authz, trust);
  if (auto* rejection = std::get_if<OrderRejection>(&checked_or)) return *rejection;
  CheckedAuthz& checked = std::get<CheckedAuthz>(checked_or);
  input.drill = checked.authz.drill;
  if (auto rejection = checkDrill(checked.authz, trust)) return *rejection;
  VerifiedOrder out;
  if (auto rejection = checkThreshold(checked, trust, policy, out)) return *rejection;

  // 7. Semantics.
  const Authz& authz = checked.authz;
  if (auto rejection = checkAmongTargets(authz, policy, self.agent_id)) return *rejection;
  if (auto rejection =
          checkWindow("authz", authz.issued_at_ms, authz.expires_at_ms, now_ms, options,
                      options.max_authz_validity, RejectReason::kAuthzExpired)) {
    return *rejection;
  }
  if (replay.seen_command_ids.count(authz.command_id) != 0) {
    return reject(RejectReason::kCommandReplayed,
                  "command " + authz.command_id + " was already accepted");
  }
  // Each rung counts its own generations (generationKey): a segment's key is its name, as it
  // always was, so the generations an agent already holds keep their meaning.
  const auto gen = replay.segment_gens.find(generationKey(authz.scope, authz.segment));
  const int64_t local_gen = gen == replay.segment_gens.end() ? 0 : gen->second;
  if (authz.segment_gen <= local_gen) {
    return reject(RejectReason::kOldSegmentGen,
                  "segment_gen " + std::to_string(authz.segment_gen) + " of " +
                      generationSubject(authz) + " is not above the local " +
                      std::to_string(local_gen) + " (an older order than one already applied)");
  }
  if (auto rejection = checkOrderTarget(authz, policy, self.agent_id)) return *rejection;

  out.controller_keyid = verification->validKeyIds().front();
  out.authz_sha256 = checked.sha256;
  out.authz = std::move(checked.authz);
  out.dispatch = std::move(*input.dispatch).value();
  return out;
}

// checkDispatch, with the claimed seq added to a rejection.
OrderVerification verifyDispatchInput(DispatchInput& input, const Trust& trust,
                                      const AgentSelf& self, const AgentReplayState& replay,
                                      const Policy& policy, const Clock& clock,
                                      const OrderVerifierOptions& options) {
  OrderVerification verification =
      checkDispatch(input, trust, self, replay, policy, clock, options);
  if (verification.ok()) return verification;
  OrderRejection rejection = verification.rejection();
  rejection.claimed_seq = claimedSeq(input);
  rejection.drill = input.drill;
  return rejection;
}

}  // namespace

OrderVerification verifyDispatch(std::string_view envelope_bytes, const Trust& trust,
                                 const AgentSelf& self, const AgentReplayState& replay,
                                 const Policy& policy, const Clock& clock,
                                 const OrderVerifierOptions& options) {
  DispatchInput input;
  input.size = envelope_bytes.size();
  // Parsed once, up to the frame cap: past the envelope cap only for the claimed seq.
  std::optional<Result<nlohmann::json>> doc;
  if (envelope_bytes.size() <= kDispatchClaimMaxBytes) {
    doc = parseStrictJson(envelope_bytes, "dispatch envelope", kDispatchClaimMaxBytes);
    if (doc->ok()) {
      input.doc = &doc->value();
    } else {
      input.parse_error = &doc->error();
    }
  }
  return verifyDispatchInput(input, trust, self, replay, policy, clock, options);
}

OrderVerification verifyDispatchJson(const nlohmann::json& envelope, const Trust& trust,
                                     const AgentSelf& self, const AgentReplayState& replay,
                                     const Policy& policy, const Clock& clock,
                                     const OrderVerifierOptions& options) {
  DispatchInput input;
  input.doc = &envelope;
  input.size = compactJsonSize(envelope, kDispatchClaimMaxBytes);
  input.size_at_least = input.size > kDispatchClaimMaxBytes;
  return verifyDispatchInput(input, trust, self, replay, policy, clock, options);
}

int64_t commandIdForgetAfterMs(const Authz& authz, const OrderVerifierOptions& options) {
  return authz.expires_at_ms + millisOf(options.skew) + millisOf(options.command_id_memory_margin);
}

namespace {

// verifyBreakglass; `drill` is set once the authz verified and parsed.
OrderVerification checkBreakglass(std::string_view authz_envelope_bytes, const Trust& trust,
                                  const Policy& policy, const Clock& clock,
                                  const CommandIdSet& seen_command_ids, std::string_view agent_id,
                                  const OrderVerifierOptions& options, bool& drill) {
  const int64_t now_ms = toUnixMillis(clock.now());
  if (auto rejection = checkTrustCurrent(trust, now_ms)) return *rejection;
  if (authz_envelope_bytes.size() > kDsseEnvelopeMaxBytes) {
    return reject(RejectReason::kOversized,
                  "break-glass envelope of " + std::to_string(authz_envelope_bytes.size()) +
                      " bytes is over the " + std::to_string(kDsseEnvelopeMaxBytes) + "-byte cap");
  }
  auto envelope = parseDsseEnvelope(authz_envelope_bytes, "break-glass envelope");
  if (!envelope.ok()) return parseRejection(envelope.error(), RejectReason::kBadEnvelope);

  auto checked_or = checkAuthzEnvelope(*envelope, trust);
  if (auto* rejection = std::get_if<OrderRejection>(&checked_or)) return *rejection;
  CheckedAuthz& checked = std::get<CheckedAuthz>(checked_or);
  const Authz& authz = checked.authz;
  drill = authz.drill;
  if (auto rejection = checkDrill(authz, trust)) return *rejection;

  if (authz.action != OrderAction::kIsolate) {
    return reject(RejectReason::kBreakglassNotIsolate,
                  "break-glass only isolates; a restore goes through the controller");
  }
  if (authz.on_behalf_of) {
    return reject(RejectReason::kBadOnBehalf,
                  "a break-glass authz is signed by people, never on behalf of a caller");
  }
  if (authz.automatic) {
    return reject(RejectReason::kAutomaticNotOnBehalf,
                  "a break-glass authz is signed by people, never an automatic response");
  }
  const std::vector<std::string> breakglass =
      identitiesWithRole(checked.signers, TrustRole::kBreakglass);
  const int needed = trust.thresholds.breakglass_isolate;
  if (static_cast<int>(breakglass.size()) < needed) {
    return reject(RejectReason::kThresholdNotMet,
                  "break-glass isolate needs " + std::to_string(needed) +
                      " distinct breakglass identities; counted " +
                      std::to_string(breakglass.size()) + " (" + joinIdentities(breakglass) + ")");
  }
  if (std::find(breakglass.begin(), breakglass.end(), authz.requested_by) == breakglass.end()) {
    return reject(RejectReason::kRequestedByNotASigner,
                  "requested_by " + quoteForMessage(authz.requested_by) +
                      " is not a breakglass signer (" + joinIdentities(breakglass) + ")");
  }

  if (auto rejection = checkAmongTargets(authz, policy, agent_id)) return *rejection;
  if (auto rejection =
          checkWindow("break-glass authz", authz.issued_at_ms, authz.expires_at_ms, now_ms, options,
                      options.max_breakglass_validity, RejectReason::kAuthzExpired)) {
    return *rejection;
  }
  if (seen_command_ids.count(authz.command_id) != 0) {
    return reject(RejectReason::kCommandReplayed,
                  "command " + authz.command_id + " was already used");
  }
  if (auto rejection = checkOrderTarget(authz, policy, agent_id)) return *rejection;

  VerifiedOrder out;
  out.breakglass = true;
  out.signer_identities = breakglass;
  out.signer_keyids = keyIdsOf(checked.signers);
  out.authz_sha256 = checked.sha256;
  out.authz = std::move(checked.authz);
  return out;
}

}  // namespace

OrderVerification verifyBreakglass(std::string_view authz_envelope_bytes, const Trust& trust,
                                   const Policy& policy, const Clock& clock,
                                   const CommandIdSet& seen_command_ids, std::string_view agent_id,
                                   const OrderVerifierOptions& options) {
  bool drill = false;
  OrderVerification verification = checkBreakglass(authz_envelope_bytes, trust, policy, clock,
                                                   seen_command_ids, agent_id, options, drill);
  if (verification.ok()) return verification;
  OrderRejection rejection = verification.rejection();
  rejection.drill = drill;
  return rejection;
}

}  // namespace shadan::agent
