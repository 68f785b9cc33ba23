// Order payloads (common/orders.h): the first byte picks the format (authz, dispatch, ack), the
// rest is the payload. What parses serializes to what parses to the same value; one order has
// one meaning.

#include "common/orders.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

template <typename T, typename Parse, typename Serialize>
void roundTrip(std::string_view payload, Parse parse, Serialize serialize) {
  auto value = parse(payload);
  if (!value.ok()) return;
  const T& first = *value;
  auto again = parse(serialize(first));
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(*again == first);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view payload = shadan::fuzz::bytes(data + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      roundTrip<shadan::Authz>(payload, shadan::parseAuthz, shadan::serializeAuthz);
      break;
    case 1:
      roundTrip<shadan::Dispatch>(payload, shadan::parseDispatch, shadan::serializeDispatch);
      break;
    default:
      roundTrip<shadan::Ack>(payload, shadan::parseAck, shadan::serializeAck);
      break;
  }
  return 0;
}
