// DSSE envelopes (common/dsse.h) as they arrive from the network: an envelope that parses
// serializes to one that parses to the same envelope.

#include "common/dsse.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto envelope = shadan::parseDsseEnvelope(shadan::fuzz::bytes(data, size), "envelope");
  if (!envelope.ok()) return 0;
  auto again = shadan::parseDsseEnvelope(shadan::serializeDsseEnvelope(*envelope), "envelope");
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(*again == *envelope);
  return 0;
}
