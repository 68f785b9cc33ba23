#pragma once

// The API's router over a real OrdersService and SQLite store (a temporary directory), with a
// fake hub, audit sink and clock: what the router and server tests and the API fuzz target
// (tests/fuzz/fuzz_api.cc) send their requests through. Three callers hold tokens: operator
// "sato", detector "ids-1" and auditor "aud".

#include <memory>
#include <vector>

#include "common/sha256.h"
#include "controller/api_router.h"
#include "tests/controller/controller_test_support.h"

namespace shadan::testing {

inline constexpr const char* kOperatorToken = "operator-secret-token";
inline constexpr const char* kDetectorToken = "detector-secret-token";
inline constexpr const char* kAuditorToken = "auditor-secret-token";

class ApiStack {
 public:
  explicit ApiStack(const char* policy_json) {
    policy_ = parsePolicy(policy_json, "policy.json").value().policy;
    trust_ = parseTrust(keys_.trustDoc().dump(), "trust.json").value();
    store_ = controller::openSqliteControllerStore(dir_.path().string()).value();
    service_ = std::make_unique<controller::OrdersService>(policy_, trust_, keys_.controller,
                                                           *store_, hub_, audit_, clock_,
                                                           controller::OrdersServiceOptions{});
    using controller::ApiRole;
    tokens_ = std::make_unique<controller::TokenTable>(
        std::vector<controller::ApiToken>{{"sato", ApiRole::kOperator, sha256Hex(kOperatorToken)},
                                          {"ids-1", ApiRole::kDetector, sha256Hex(kDetectorToken)},
                                          {"aud", ApiRole::kAuditor, sha256Hex(kAuditorToken)}});
    router_ = std::make_unique<controller::ApiRouter>(*tokens_, *service_);
  }

  TestKeys keys_;
  TempDir dir_;
  Policy policy_;
  Trust trust_;
  controller::ControllerStorePtr store_;
  FakeHub hub_;
  FakeAuditSink audit_;
  FakeClock clock_{kControllerTestStartMs};
  std::unique_ptr<controller::OrdersService> service_;
  std::unique_ptr<controller::TokenTable> tokens_;
  std::unique_ptr<controller::ApiRouter> router_;
};

}  // namespace shadan::testing
