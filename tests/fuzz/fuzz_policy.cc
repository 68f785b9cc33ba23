// The policy (POLICY.md, common/policy.h): anything is accepted or refused with a message
// naming the source, never a crash.

#include "common/policy.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto loaded = shadan::parsePolicy(shadan::fuzz::bytes(data, size), "policy.json");
  if (!loaded.ok()) FUZZ_CHECK(!loaded.error().message.empty());
  return 0;
}
