#include "agents/orders/order_verifier.h"

// The reason codes on the wire (acks) and in audit entries: stable, snake_case, one per
// RejectReason. Apart from the verifier so that its file stays about the checks.

namespace shadan::agent {

const char* rejectReasonCode(RejectReason reason) {
  switch (reason) {
    case RejectReason::kTrustExpired:
      return "trust_expired";
    case RejectReason::kOversized:
      return "oversized";
    case RejectReason::kDuplicateKey:
      return "duplicate_key";
    case RejectReason::kBadEnvelope:
      return "bad_envelope";
    case RejectReason::kWrongPayloadType:
      return "wrong_payload_type";
    case RejectReason::kBadControllerSignature:
      return "bad_controller_signature";
    case RejectReason::kBadPayload:
      return "bad_payload";
    case RejectReason::kNotForThisAgent:
      return "not_for_this_agent";
    case RejectReason::kWrongAgentKey:
      return "wrong_agent_key";
    case RejectReason::kStale:
      return "stale";
    case RejectReason::kFromTheFuture:
      return "from_the_future";
    case RejectReason::kValidityTooLong:
      return "validity_too_long";
    case RejectReason::kReplayedSeq:
      return "replayed_seq";
    case RejectReason::kUnknownKeyid:
      return "unknown_keyid";
    case RejectReason::kBadAuthzSignature:
      return "bad_authz_signature";
    case RejectReason::kBadOnBehalf:
      return "bad_on_behalf";
    case RejectReason::kThresholdNotMet:
      return "threshold_not_met";
    case RejectReason::kRequestedByNotASigner:
      return "requested_by_not_a_signer";
    case RejectReason::kNotATarget:
      return "not_a_target";
    case RejectReason::kAuthzExpired:
      return "authz_expired";
    case RejectReason::kCommandReplayed:
      return "command_replayed";
    case RejectReason::kOldSegmentGen:
      return "old_segment_gen";
    case RejectReason::kUnknownSegment:
      return "unknown_segment";
    case RejectReason::kUnknownProfile:
      return "unknown_profile";
    case RejectReason::kBreakglassNotIsolate:
      return "breakglass_not_isolate";
    case RejectReason::kSegmentNotBordered:
      return "segment_not_bordered";
    case RejectReason::kHostNotInSegment:
      return "host_not_in_segment";
    case RejectReason::kNoUplinkInterfaces:
      return "no_uplink_interfaces";
    case RejectReason::kLinkDownNotAllowed:
      return "link_down_not_allowed";
    case RejectReason::kNoIslandSegments:
      return "no_island_segments";
    case RejectReason::kAutomaticWithoutTtl:
      return "automatic_without_ttl";
    case RejectReason::kAutomaticNotOnBehalf:
      return "automatic_not_on_behalf";
    case RejectReason::kReleaseNotAutomatic:
      return "release_not_automatic";
    case RejectReason::kDrillWithoutTtl:
      return "drill_without_ttl";
    case RejectReason::kLabTrustRequiresDrill:
      return "lab_trust_requires_drill";
  }
  return "rejected";
}

}  // namespace shadan::agent
