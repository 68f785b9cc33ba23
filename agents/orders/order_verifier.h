#pragma once

// The agent's check of a signed order before anything is stored or applied: steps 1-7 of
// PROTOCOL.md "Agent verification order", plus the break-glass path (an authz file applied
// locally without the controller).
//
// Contracts:
//   - Pure: no I/O, no kernel, no database. The replay state is an input (the caller persists
//     it, step 8, in the same transaction as the audit entry); time comes from the Clock.
//   - Fail closed, first failure wins, in this order:
//       0. the trust file is unexpired                                  trust_expired
//       1. size cap, strict envelope, dispatch payloadType              oversized, duplicate_key,
//                                                                       bad_envelope,
//                                                                       wrong_payload_type
//       2. every dispatch signature verifies with a `controller` key    bad_controller_signature
//       3. strict dispatch; agent_id and agent_key are this agent's     bad_payload, duplicate_key,
//                                                                       not_for_this_agent,
//                                                                       wrong_agent_key
//       4. issued_at - skew <= now <= expires_at + skew, window capped  from_the_future, stale,
//                                                                       validity_too_long
//       5. seq > last seq                                               replayed_seq
//       6. authz: exact type, every signature by a known key and valid  wrong_payload_type,
//          (verify bytes, then parse), distinct identities with an      unknown_keyid,
//          allowed role against the threshold, requested_by a signer    bad_authz_signature,
//          (or the on_behalf_of caller of a controller-on-behalf authz) bad_payload, bad_on_behalf,
//          with a lab trust file, a drill order; a drill isolate with a  lab_trust_requires_drill,
//          ttl_s;                                                       drill_without_ttl,
//          an automatic authz: an isolate with a ttl_s, controller-on-  automatic_without_ttl,
//          behalf and no operator signature                             automatic_not_on_behalf,
//                                                                       threshold_not_met,
//                                                                       requested_by_not_a_signer
//       7. this agent in targets; authz fresh and its window capped;    not_a_target,
//          command_id unseen; segment_gen above the local one of        from_the_future,
//          generationKey(scope, segment); what the rung targets is in   authz_expired,
//          the policy and on this gateway, then the profile             validity_too_long,
//          (agents/orders/order_target.h)                               command_replayed,
//                                                                       old_segment_gen,
//                                                                       unknown_segment,
//                                                                       segment_not_bordered,
//                                                                       host_not_in_segment,
//                                                                       no_uplink_interfaces,
//                                                                       link_down_not_allowed,
//                                                                       no_island_segments,
//                                                                       unknown_profile
//   - Thresholds (common/trust.h) count distinct identities: one key twice, or two keys of one
//     person, count once. Restore, and an isolate that needs the isolate_protected rule
//     (TrustThresholds::needsProtectedRule: a protected segment, the hosts of one, or a rung the
//     trust file's `scopes` puts under isolate_protected — by default uplink and island), count
//     operators only, so the controller key alone can never satisfy them. A segment the policy
//     does not know is treated as protected while counting (then refused in step 7).
//   - Automatic orders (Authz::automatic, issue #16) are the controller's own, on behalf of the
//     detector (or the caller releasing): signed by the controller with on_behalf_of and by no
//     operator (automatic_not_on_behalf), so that "automatic" can never be put on an operator's
//     decision. An automatic isolate carries a ttl_s (automatic_without_ttl) and passes only where
//     a plain controller-on-behalf isolate would (trust isolate.controller_on_behalf, not under
//     the isolate_protected rule), else threshold_not_met. An automatic restore (a release) passes
//     with the controller's signature when trust release.controller_on_behalf is true, else
//     threshold_not_met; which isolations it may lift is the agent's check (SignedOrders:
//     release_not_automatic). A restore without `automatic` needs `restore` operators as always.
//     Break-glass files are never automatic (automatic_not_on_behalf).
//   - Drills (Authz::drill, issue #17): a drill isolate carries a ttl_s (drill_without_ttl; how
//     long it may last is the agent's policy, agent.drill_max_ttl_s, applied by SignedOrders).
//     A lab trust file (Trust::isLab) admits drill orders only (lab_trust_requires_drill), on
//     the dispatch and the break-glass path alike, so a lab can never cut for real. Keys with
//     the `drill` role count as operators on drill orders only (TrustKey::signsAsOperator); a
//     production trust file cannot hold one (common/trust.h).
//   - A VerifiedOrder's authz carries the rung (scope, segment, hosts, link_down) exactly as
//     checked here; the caller records segment_gen under generationKey(scope, segment).
//   - Every signature on an envelope must verify with a key the trust file knows: a signature
//     that cannot be checked is refused rather than ignored (stricter than DSSE's "ignore
//     unknown signatures"), so the approvers recorded in the audit log are exactly the signers.

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "agents/orders/command_id_set.h"
#include "common/clock.h"
#include "common/orders.h"
#include "common/policy.h"
#include "common/trust.h"

namespace shadan::agent {

enum class RejectReason {
  kTrustExpired,
  kOversized,
  kDuplicateKey,
  kBadEnvelope,
  kWrongPayloadType,
  kBadControllerSignature,
  kBadPayload,
  kNotForThisAgent,
  kWrongAgentKey,
  kStale,
  kFromTheFuture,
  kValidityTooLong,
  kReplayedSeq,
  kUnknownKeyid,
  kBadAuthzSignature,
  kBadOnBehalf,
  kThresholdNotMet,
  kRequestedByNotASigner,
  kNotATarget,
  kAuthzExpired,
  kCommandReplayed,
  kOldSegmentGen,
  kUnknownSegment,
  kUnknownProfile,
  kBreakglassNotIsolate,
  // Step 7, the rungs of the ladder (agents/orders/order_target.h).
  kSegmentNotBordered,
  kHostNotInSegment,
  kNoUplinkInterfaces,
  kLinkDownNotAllowed,
  kNoIslandSegments,
  // Automatic response (Authz::automatic): see the contract above.
  kAutomaticWithoutTtl,
  kAutomaticNotOnBehalf,
  // Not a verifier verdict: the agent (SignedOrders) refuses a verified release that would lift
  // an isolation that is not automatic (confirmed, or ordered by an operator).
  kReleaseNotAutomatic,
  // Drills (Authz::drill, issue #17): see the contract above.
  kDrillWithoutTtl,
  kLabTrustRequiresDrill,
};

// The stable code carried in acks and audit entries ("bad_controller_signature").
const char* rejectReasonCode(RejectReason reason);

struct OrderRejection {
  RejectReason reason;
  std::string message;  // for people; may quote (escaped, length-limited) input
  // A refused dispatch: the seq it claimed, unverified, when its envelope and payload parse (so
  // the controller can match the ack). Never set for break-glass.
  std::optional<int64_t> claimed_seq = std::nullopt;
  // The refused authz said `drill` (read once its signatures verified and it parsed; false
  // before that), so the audit entry of the refusal is marked drill too.
  bool drill = false;

  std::string code() const { return rejectReasonCode(reason); }
  // "<code>: <message>" as an Error, for callers that propagate Result values.
  Error toError() const;
};

// What the agent remembers between orders (persisted by the caller).
struct AgentReplayState {
  int64_t last_seq = 0;
  CommandIdSet seen_command_ids;
  // generationKey(scope, segment) -> last accepted segment_gen (a segment's key is its name).
  std::map<std::string, int64_t> segment_gens;
  friend bool operator==(const AgentReplayState&, const AgentReplayState&) = default;
};

struct AgentSelf {
  std::string agent_id;
  std::string keyid;  // keyid of this agent's own key
};

struct OrderVerifierOptions {
  std::chrono::seconds skew{60};
  std::chrono::seconds max_dispatch_validity{15 * 60};
  std::chrono::seconds max_authz_validity{24 * 3600};
  std::chrono::seconds max_breakglass_validity{3600};
  // How long past expires_at + skew an accepted command id is still remembered (see
  // commandIdForgetAfterMs).
  std::chrono::seconds command_id_memory_margin{24 * 3600};
};

// When the command id of an accepted authz may be forgotten (unix ms). Step 7 refuses an authz
// whose expires_at + skew has passed before it looks at the command id, so after that instant
// remembering the id protects nothing — unless the clock steps back, which the margin covers.
// (Dispatches carry a per-agent seq and segment_gen besides; break-glass files are bounded by
// max_breakglass_validity.)
int64_t commandIdForgetAfterMs(const Authz& authz, const OrderVerifierOptions& options = {});

struct VerifiedOrder {
  std::optional<Dispatch> dispatch;  // nullopt for break-glass
  std::string controller_keyid;      // the dispatch signer; empty for break-glass
  Authz authz;
  // Distinct identities whose signatures satisfied the threshold, in signature order; the
  // controller's identity is last when it counted (controller-on-behalf).
  std::vector<std::string> signer_identities;
  std::vector<std::string> signer_keyids;  // every authz signature's keyid, each once
  bool on_behalf = false;                  // authorised by the controller-on-behalf rule
  bool breakglass = false;
  std::string authz_sha256;  // lower-case hex SHA-256 of the authz payload bytes (as signed)
};

// Either a VerifiedOrder or the first reason to refuse it.
class [[nodiscard]] OrderVerification {
 public:
  OrderVerification(VerifiedOrder order) : data_(std::move(order)) {}           // NOLINT: implicit
  OrderVerification(OrderRejection rejection) : data_(std::move(rejection)) {}  // NOLINT

  bool ok() const { return data_.index() == 0; }
  // REQUIRES ok() (resp. !ok()); a wrong access is a broken invariant and aborts.
  const VerifiedOrder& order() const;
  const OrderRejection& rejection() const;

 private:
  std::variant<VerifiedOrder, OrderRejection> data_;
};

// How large a refused dispatch envelope may be and still have its claimed seq read (the
// controller channel's frame cap): the envelope cap (kDsseEnvelopeMaxBytes) refuses it, the ack
// of the refusal still names the seq.
inline constexpr size_t kDispatchClaimMaxBytes = 256 * 1024;

// Steps 0-7 for one dispatch envelope as received (raw bytes): size-capped, parsed strictly once,
// then checked as verifyDispatchJson does.
OrderVerification verifyDispatch(std::string_view envelope_bytes, const Trust& trust,
                                 const AgentSelf& self, const AgentReplayState& replay,
                                 const Policy& policy, const Clock& clock,
                                 const OrderVerifierOptions& options = {});

// Steps 0-7 for a dispatch envelope that arrived inside an already strictly parsed frame (no
// duplicate keys, no floats): nothing is serialised or parsed again. The envelope cap holds
// for its compact size (what it would measure as text); the DSSE payload caps apply after base64
// decoding as on the text path. Gives the same verdict as verifyDispatch(envelope.dump()); only
// the message of an envelope over kDispatchClaimMaxBytes differs ("more than N bytes"): it is
// not measured to the end.
OrderVerification verifyDispatchJson(const nlohmann::json& envelope, const Trust& trust,
                                     const AgentSelf& self, const AgentReplayState& replay,
                                     const Policy& policy, const Clock& clock,
                                     const OrderVerifierOptions& options = {});

// Break-glass: an authz envelope read from a file and applied on this gateway with no
// controller. Isolate only; signed by the breakglass threshold of distinct identities; no
// on_behalf_of; issued_at - skew <= now <= expires_at + skew with a window of at most
// max_breakglass_validity; command_id never seen; this agent in targets; the rung's target and
// the profile in the policy (order_target.h), for every rung. segment_gen is not compared: the file
// is prepared offline, without the controller's counter (the caller records it as the new local
// generation if it is higher).
OrderVerification verifyBreakglass(std::string_view authz_envelope_bytes, const Trust& trust,
                                   const Policy& policy, const Clock& clock,
                                   const CommandIdSet& seen_command_ids, std::string_view agent_id,
                                   const OrderVerifierOptions& options = {});

}  // namespace shadan::agent
