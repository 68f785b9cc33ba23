// Lab specs (cli/lab/lab.h): the JSON that `shadanctl lab up --spec` and drills turn into
// namespaces, links, addresses and routes; from whoever wrote the file.

#include "cli/lab/lab.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto spec = shadan::parseLabSpec(shadan::fuzz::bytes(data, size), "spec.json");
  if (!spec.ok()) FUZZ_CHECK(!spec.error().message.empty());
  return 0;
}
