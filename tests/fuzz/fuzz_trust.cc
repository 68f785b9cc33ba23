// The trust file (common/trust.h): keys, identities, roles and thresholds.

#include "common/trust.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto trust = shadan::parseTrust(shadan::fuzz::bytes(data, size), "trust.json");
  if (!trust.ok()) FUZZ_CHECK(!trust.error().message.empty());
  return 0;
}
