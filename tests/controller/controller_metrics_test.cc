#include "controller/controller_metrics.h"

#include <gtest/gtest.h>

#include "common/isolation_scope.h"

namespace shadan::controller {
namespace {

// shadan_isolations_active counts the segments table by rung: every rung's key maps back to it,
// and a segment whose name is a rung's word stays a segment.
TEST(ControllerMetricsTest, EveryGenerationKeyMapsBackToItsRung) {
  for (const IsolationScope scope : {IsolationScope::kSegment, IsolationScope::kHost,
                                     IsolationScope::kUplink, IsolationScope::kIsland}) {
    EXPECT_STREQ(scopeOfGenerationKey(generationKey(scope, "office")), isolationScopeName(scope));
  }
  EXPECT_STREQ(scopeOfGenerationKey("uplink"), "segment");
  EXPECT_STREQ(scopeOfGenerationKey("island"), "segment");
  EXPECT_STREQ(scopeOfGenerationKey("@uplink"), "uplink");
  EXPECT_STREQ(scopeOfGenerationKey("host:kiosk"), "host");
}

}  // namespace
}  // namespace shadan::controller
