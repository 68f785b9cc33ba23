// The agent's control socket (agents/control_protocol.h): one JSON request per connection from
// any local process allowed to connect.

#include "agents/control_protocol.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto request = shadan::agent::parseControlRequest(shadan::fuzz::bytes(data, size));
  if (!request.ok()) {
    FUZZ_CHECK(!request.error().message.empty());
    return 0;
  }
  // What the parser accepts, written back as the client writes it, is accepted again as the
  // same request.
  const nlohmann::json written = request->toJson();
  auto again = shadan::agent::parseControlRequest(written.dump());
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->toJson() == written);
  return 0;
}
