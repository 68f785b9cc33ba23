// Drill scenarios (cli/drill/scenario.h): `shadanctl drill run FILE` reads them, parameters
// and all, from whoever wrote the file.

#include "cli/drill/scenario.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = shadan::fuzz::bytes(data, size);
  auto scenario = shadan::drill::parseScenario(text, "scenario.json", {{"segment", "office"}});
  if (!scenario.ok()) FUZZ_CHECK(!scenario.error().message.empty());
  auto parameters = shadan::drill::scenarioParameters(text, "scenario.json");
  if (!parameters.ok()) FUZZ_CHECK(!parameters.error().message.empty());
  return 0;
}
