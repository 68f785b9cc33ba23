// Strict JSON (common/strict_json.h), the parser under every format Shadan reads: accepted
// documents contain no duplicate key and (integers only) no float, and what it accepts it
// accepts again once serialized.

#include "common/strict_json.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using shadan::StrictJsonNumbers;
  const std::string_view text = shadan::fuzz::bytes(data, size);
  for (const StrictJsonNumbers numbers :
       {StrictJsonNumbers::kIntegersOnly, StrictJsonNumbers::kAllowFloats}) {
    auto parsed = shadan::parseStrictJson(text, "fuzz", 64 * 1024, numbers);
    if (!parsed.ok()) {
      FUZZ_CHECK(parsed.error().message.rfind("fuzz", 0) == 0);  // names its source
      continue;
    }
    const std::string again =
        parsed->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (again.size() > 64 * 1024) continue;
    auto reparsed = shadan::parseStrictJson(again, "fuzz", 64 * 1024, numbers);
    // Invalid UTF-8 in a string is replaced when dumped, so compare only what stays valid.
    if (again == parsed->dump(-1, ' ', false, nlohmann::json::error_handler_t::ignore)) {
      FUZZ_CHECK(reparsed.ok());
      FUZZ_CHECK(*reparsed == *parsed);
    }
  }
  return 0;
}
