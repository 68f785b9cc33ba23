#pragma once

// The trust file (PROTOCOL.md "Keys and trust"): which keys exist, whose they are, what roles
// they hold, and how many distinct people each action needs.
//
//   {"shadan_trust": 1, "version": 7, "expires_at": "2027-01-01T00:00:00Z",
//    "purpose": "production",
//    "keys": [{"keyid": "<hex sha256 of the key>", "public_key": "<base64, 32 bytes>",
//              "identity": "op:sato", "roles": ["operator", "breakglass"]}, ...],
//    "thresholds": {"isolate": {"operators": 1, "controller_on_behalf": true},
//                   "isolate_protected": {"operators": 2},
//                   "restore": {"operators": 2},
//                   "release": {"controller_on_behalf": true},
//                   "breakglass_isolate": {"breakglass": 2},
//                   "scopes": {"host": "as_segment", "segment": "as_segment",
//                              "uplink": "isolate_protected", "island": "isolate_protected"}}}
//
// Contracts:
//   - Parsing is strict (unknown members, duplicate keys, floats refused); errors are kParse and
//     name `<source>: <JSON pointer>: <reason>`.
//   - keyid must equal the SHA-256 of the key; a keyid appears once.
//   - An identity may own several keys; thresholds count identities, never keys.
//   - Authority is kept apart: an identity holding `controller` or `agent` holds nothing else,
//     and `breakglass` requires `operator`. So the online controller key can never count as an
//     operator, and a stolen agent key can never approve an order.
//   - `thresholds` and each of its members are optional; missing values take the defaults below.
//     `scopes` names, per rung, the rule its isolates need: "as_segment" or "isolate_protected"
//     (ScopeApproval); any other member or value is refused.
//   - `release` governs a restore authz marked `automatic` (common/orders.h): with
//     `controller_on_behalf` true (the default) the controller may sign it on behalf of an API
//     caller, without operators; false refuses every such release (operators restore as usual).
//     Safe by construction: the agent lets a release lift only isolations an automatic isolate
//     made and nobody confirmed since, never an operator's cut (agents/ladder.h).
//   - Identity names follow a rule (checkIdentityRoles) that shadanctl enforces on every key it
//     writes. The loader does not refuse a file that breaks it (a hand-written file that agents
//     accepted before must not stop them from starting); loadTrustFile logs a warning per key.
//   - `purpose` (optional, default "production") keeps drills apart from real cuts (issue #17):
//       production  no key holds the `drill` role and no identity is drill:<name>: a drill key is
//                   never accepted by a production trust file, so an order it signs never
//                   verifies there. Such a file fails to load, naming the key.
//       lab         no key holds `operator` or `breakglass` (the lab's people are drill:<name>,
//                   role `drill`), and agents and the controller refuse every order that is not
//                   marked drill (lab_trust_requires_drill): a lab can never cut for real.
//     The `drill` role signs orders like `operator`, but counts for drill orders only
//     (TrustKey::signsAsOperator). An identity holding it holds nothing else.
//   - The signature of the trust file by a root threshold (full design) is not done yet.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/ed25519.h"
#include "common/isolation_scope.h"
#include "common/result.h"

namespace shadan {

inline constexpr int kTrustFormatVersion = 1;
inline constexpr size_t kTrustMaxBytes = 256 * 1024;

enum class TrustRole { kOperator, kBreakglass, kController, kAgent, kDrill };
const char* trustRoleName(TrustRole role);

// What a trust file is for (member `purpose`); see the header comment.
enum class TrustPurpose { kProduction, kLab };
const char* trustPurposeName(TrustPurpose purpose);  // "production", "lab"

struct TrustKey {
  std::string keyid;
  Ed25519PublicKey public_key{};
  std::string identity;  // "op:sato", "controller", "agent:core-gw", "drill:sato"
  std::set<TrustRole> roles;

  bool hasRole(TrustRole role) const { return roles.count(role) != 0; }
  // Whether a signature by this key counts as an operator's on an order: `operator` always,
  // `drill` only when the order is a drill (Authz::drill).
  bool signsAsOperator(bool drill_order) const {
    return hasRole(TrustRole::kOperator) || (drill_order && hasRole(TrustRole::kDrill));
  }

  bool operator==(const TrustKey&) const = default;
};

// Which approval rule an isolate order of a rung needs (trust `thresholds.scopes`):
//   kAsSegment  as a segment isolate: `isolate` (the controller may sign on behalf of callers
//               when the file says so), or `isolate_protected` when the segment is protected
//   kProtected  always `isolate_protected` (operators only, isolate_protected_operators)
// Defaults: host and segment kAsSegment; uplink and island kProtected (they cut more than any
// one segment). Restores need `restore`, except a release of automatic isolations (`release`).
enum class ScopeApproval { kAsSegment, kProtected };

struct TrustThresholds {
  int isolate_operators = 1;
  bool isolate_controller_on_behalf = true;  // controller-signed authz for an API caller
  int isolate_protected_operators = 2;       // a protected segment: operators only
  int restore_operators = 2;                 // operators only, never the controller
  int breakglass_isolate = 2;                // breakglass identities, offline files
  ScopeApproval host = ScopeApproval::kAsSegment;
  ScopeApproval segment = ScopeApproval::kAsSegment;
  ScopeApproval uplink = ScopeApproval::kProtected;
  ScopeApproval island = ScopeApproval::kProtected;
  // `release.controller_on_behalf`: a restore marked automatic may be signed by the controller
  // on behalf of an API caller (it lifts automatic isolations only; see the header comment).
  bool release_controller_on_behalf = true;

  bool operator==(const TrustThresholds&) const = default;

  ScopeApproval approvalFor(IsolationScope scope) const {
    switch (scope) {
      case IsolationScope::kHost:
        return host;
      case IsolationScope::kSegment:
        return segment;
      case IsolationScope::kUplink:
        return uplink;
      case IsolationScope::kIsland:
        return island;
    }
    return ScopeApproval::kProtected;
  }
  // Whether an isolate of `scope` (in a segment that is `segment_protected`; false for uplink
  // and island) needs the isolate_protected rule.
  bool needsProtectedRule(IsolationScope scope, bool segment_protected) const {
    return approvalFor(scope) == ScopeApproval::kProtected || segment_protected;
  }
};

struct Trust {
  int64_t version = 0;
  int64_t expires_at_ms = 0;
  TrustPurpose purpose = TrustPurpose::kProduction;
  std::vector<TrustKey> keys;
  TrustThresholds thresholds;

  const TrustKey* findKey(std::string_view keyid) const;
  // True once `now` has passed expires_at.
  bool isExpired(std::chrono::system_clock::time_point now) const;
  bool isLab() const { return purpose == TrustPurpose::kLab; }

  bool operator==(const Trust&) const = default;
};

// The role named `name` ("operator", ...), or nullopt for any other text.
std::optional<TrustRole> trustRoleFromName(std::string_view name);

// Which roles an identity may hold, by its name:
//   op:<name>    operator, optionally with breakglass (breakglass needs operator)
//   agent:<id>   agent only
//   controller   controller only
//   drill:<name> drill only (a person in a drill lab; lab trust files only)
// and no role for any other identity. On refusal, kInvalidArgument with one line naming the
// identity, the first role it may not hold and what is allowed. Empty `roles` is accepted here
// (the parser refuses a key without roles).
Status checkIdentityRoles(std::string_view identity, const std::set<TrustRole>& roles);

// One message ("keys[<i>]: <checkIdentityRoles message>") per key of `trust` that breaks the
// identity rule; empty when every key follows it.
std::vector<std::string> identityRoleWarnings(const Trust& trust);

Result<Trust> parseTrust(std::string_view json_text, std::string_view source);

// The trust file text of `trust` (compact JSON, every member written, `purpose` included):
// parseTrust(serializeTrust(t)) == t for any trust parseTrust accepts. Programs that make a
// trust file (the drill runner's lab) build a Trust and write this; keyid is derived from
// public_key, so only public_key, identity and roles of each key are read.
std::string serializeTrust(const Trust& trust);

// Reads `path` (capped at kTrustMaxBytes) and parses it; errors name the path. Logs (logger
// "trust", warn) each identityRoleWarnings message of a file it accepts.
Result<Trust> loadTrustFile(const std::filesystem::path& path);

// Whether an agent holding trust version `held_version` may switch to `candidate`: refused
// (kInvalidArgument) when the candidate is expired or its version is lower than the one held
// (a rollback to a trust file that still lists a revoked key). The same version is accepted:
// re-reading the file held is not an update.
Status acceptTrustUpdate(int64_t held_version, const Trust& candidate, const Clock& clock);

}  // namespace shadan
