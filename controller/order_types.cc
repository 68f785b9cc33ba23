#include "controller/order_types.h"

#include <sodium.h>

#include <cstdlib>

#include "common/ed25519.h"

namespace shadan::controller {

std::string randomUuid() {
  if (sodium_init() < 0) std::abort();  // a broken libsodium is a broken invariant
  uint8_t bytes[16];
  randombytes_buf(bytes, sizeof(bytes));
  bytes[6] = static_cast<uint8_t>((bytes[6] & 0x0f) | 0x40);
  bytes[8] = static_cast<uint8_t>((bytes[8] & 0x3f) | 0x80);
  const std::string hex = hexEncode(bytes);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20, 12);
}

std::string Caller::identity() const {
  switch (role) {
    case ApiRole::kOperator:
      return "op:" + name;
    case ApiRole::kDetector:
      return "detector:" + name;
    case ApiRole::kAuditor:
      return "auditor:" + name;
  }
  return name;
}

nlohmann::json OrderAccepted::toJson() const {
  nlohmann::json out = {{"order_id", order_id},
                        {"state", state},
                        {"gateways", gateways},
                        {"scope", isolationScopeName(scope)}};
  if (scope == IsolationScope::kSegment || scope == IsolationScope::kHost) out["segment"] = segment;
  if (scope == IsolationScope::kHost) {
    nlohmann::json listed = nlohmann::json::array();
    for (const IpPrefix& host : hosts) listed.push_back(host.toString());
    out["hosts"] = std::move(listed);
  }
  if (approval_id) {
    out["approval_id"] = *approval_id;
    out["needed"] = needed;
    out["have"] = have;
  }
  return out;
}

nlohmann::json ApprovalProgress::toJson() const {
  return {{"approval_id", approval_id}, {"order_id", order_id}, {"state", state},
          {"needed", needed},           {"have", have},         {"approvers", approvers}};
}

}  // namespace shadan::controller
