// Agent channel messages (common/channel.h, common/audit_ship.h) after the session's strict
// parse: hello, audit resume and ack, shipped entries, shipped checkpoints.

#include "common/audit_ship.h"
#include "common/channel.h"
#include "common/strict_json.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto message = shadan::parseStrictJson(shadan::fuzz::bytes(data, size), "message",
                                         shadan::kAgentChannelMaxMessageBytes);
  if (!message.ok()) return 0;
  if (auto hello = shadan::parseHelloMessage(*message); hello.ok()) {
    FUZZ_CHECK(!hello->agent_id.empty());
  }
  (void)shadan::parseAuditResume(*message);
  (void)shadan::parseAuditAck(*message);
  if (auto entries = shadan::parseAuditEntries(*message); entries.ok()) {
    FUZZ_CHECK(!entries->empty());
    for (const std::string& entry : *entries) FUZZ_CHECK(entry.find('\n') == std::string::npos);
  }
  (void)shadan::parseAuditCheckpointMessage(*message);
  return 0;
}
