#pragma once

// The requests that change what a gateway enforces, and how each becomes isolations of the
// ladder (common/isolation_scope.h, agents/planner/planner.h). Pure: policy and request in,
// isolations (or a refusal naming what is wrong) out. AgentCore (agents/agent_core.h) commits
// and applies what these functions decide.
//
// One request is one rung:
//   segment  `segment` (+ profile)              host    `hosts` (+ profile; `segment` optional,
//   uplink   scope kUplink (+ profile, link_down)        derived from the policy when empty)
//   island   scope kIsland (+ profile)
// A host request for N addresses is N isolations, so each host is restored on its own; they are
// applied together in one transaction.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "agents/planner/planner.h"
#include "agents/state/state_store.h"
#include "common/ip_prefix.h"
#include "common/isolation_scope.h"
#include "common/policy.h"
#include "common/result.h"

namespace shadan::agent {

struct IsolateRequest {
  IsolationScope scope = IsolationScope::kSegment;
  std::string segment;  // segment scope; for host scope optional (derived, or checked)
  // host scope: at least one (signed orders carry at most kMaxHostsPerOrder; a local command on
  // the gateway is not capped)
  std::vector<IpPrefix> hosts;
  std::string profile = "full";
  // uplink only: also hold the policy's link_down interfaces administratively down.
  bool link_down = false;
  // Restore on its own after this long. Re-isolating keeps the later of the two deadlines
  // (none = never): a timer can extend a cut, never shorten or end one that was meant to hold.
  std::optional<std::chrono::milliseconds> ttl;
  std::string origin = "local-cli";
  // Accountability for the audit trail: who asked (`who.requested_by`; empty: `origin`) and why
  // (`why.reason`). Local commands record the invoking uid and SUDO_USER here.
  std::string requested_by;
  std::optional<std::string> reason;
  // A rehearsal: marked as such in state and audit. Drills must carry a ttl (they expire on
  // their own) and are what `on_controller_loss: revert` lifts.
  bool drill = false;
};

struct RestoreRequest {
  // nullopt: by `segment` alone (segment isolations of it), or, with no segment either, every
  // isolation of every rung.
  std::optional<IsolationScope> scope;
  std::optional<std::string> segment;  // segment scope (host: optional filter)
  std::vector<IpPrefix> hosts;         // host scope: exactly these quarantined prefixes
  std::optional<std::string> profile;  // nullopt: every profile
  std::string origin = "local-cli";
  std::string requested_by;           // as in IsolateRequest
  std::optional<std::string> reason;  // ditto
};

// The isolations an isolate request asks for, checked against the policy and this gateway:
// segment and profile exist, the gateway borders the segment; every host lies in one segment
// (segmentOfHost: not too wide, not management, not the default segment, not spanning) and in
// `request.segment` when one is given; uplink needs the default segment's interfaces; link_down
// needs uplink and the gateway's `link_down` list; uplink and island take profiles without peers.
// Errors are kInvalidArgument / kNotFound naming the address, segment or profile.
Result<std::vector<Isolation>> isolationsFor(const Policy& policy, const std::string& gateway_id,
                                             const IsolateRequest& request);

// Whether `isolation` is one that `request` lifts. A restore never lifts another rung: restoring
// a segment leaves the hosts quarantined in it, restoring a host leaves its segment cut.
bool restoreLifts(const RestoreRequest& request, const Isolation& isolation);

// A release (a restore marked automatic) lifts automatic isolations only, and all or nothing:
// the first isolation of `state` that `request` lifts, is still in force at `now_ms` (an
// isolation past its deadline is as good as lifted) and is not automatic; nullptr when there is
// none, so the release may go ahead.
const ActiveIsolation* firstNotReleasable(const DesiredState& state, const RestoreRequest& request,
                                          int64_t now_ms);

// Checks the shape of a restore before anything is looked up: hosts only with host scope, each
// a valid host prefix (segmentOfHost) of `request.segment` when one is given; no segment for
// uplink and island. Whether anything matches is the caller's business.
Status checkRestoreRequest(const Policy& policy, const RestoreRequest& request);

// The label of what a request is about, for audit and errors: "office:full",
// "office/10.20.0.5/32:full" (several hosts: the first and "+N"), "@uplink:full", "*".
std::string describeIsolate(const IsolateRequest& request);
std::string describeRestore(const RestoreRequest& request);

// Addresses whose conntrack entries an isolation concerns: a segment's prefixes, a host's
// prefix, every non-default segment for island; none for uplink (its flows are told apart by
// interface, which conntrack does not key on).
std::vector<IpPrefix> conntrackPrefixes(const Policy& policy,
                                        const std::vector<Isolation>& isolations);

// Puts `wanted` into `state` (kept sorted): new isolations are added with `fields`' since,
// deadline, origin, drill, link_down and automatic; one already active keeps its start and
// origin, and
//   - a real (non-drill) request for what a drill isolated makes it real, with the new deadline;
//   - otherwise it keeps the later deadline (none = until restored): a timer can extend a cut,
//     never shorten one;
//   - link_down is added, never taken away (only a restore lifts it);
//   - automatic is taken away by a request that is not automatic (an operator's confirmation),
//     never added: a detector's alert cannot make an operator's cut releasable.
// Returns whether `state` changed.
bool mergeIsolations(DesiredState& state, const std::vector<Isolation>& wanted,
                     const ActiveIsolation& fields);

// The labels of `state`'s isolations for an ack's `state_after.isolated`, in state order. Host
// quarantines beyond `max_hosts` are summed up as one "segment/*:profile" label per segment and
// profile, so that an ack stays within a signed payload's size however many hosts are held.
std::vector<std::string> ackLabels(const DesiredState& state, size_t max_hosts = 256);

// What makes an isolate need the operator's reason and a confirmation on the gateway: a
// protected segment (`PROTECTED segment "mgmt"`), hosts in one, the uplink or the island (they
// cut more than any one segment); "" when nothing does.
std::string confirmationNeeded(const Policy& policy, IsolationScope scope,
                               const std::string& segment, const std::vector<IpPrefix>& hosts);

// The interfaces the desired state holds administratively down: the gateway's `link_down` list
// while an uplink isolation with link_down is active; empty otherwise.
std::vector<std::string> linksHeldDown(const Policy& policy, const std::string& gateway_id,
                                       bool uplink_link_down_active);

}  // namespace shadan::agent
