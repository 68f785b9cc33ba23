// Audit log lines and checkpoint lines (common/audit_record.h), as a verifier or the
// controller's mirror reads them from disk or from an agent: a line that parses formats to a
// line that parses (the writer's own check, AuditLog::appendLocked, relies on it).

#include "common/audit_chain.h"
#include "common/audit_record.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view line = shadan::fuzz::bytes(data, size);
  if (auto record = shadan::parseAuditLine(line); record.ok()) {
    auto formatted = shadan::formatAuditLine(*record);
    FUZZ_CHECK(formatted.ok());
    auto again = shadan::parseAuditLine(*formatted);
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(again->log_seq == record->log_seq && again->prev_hash == record->prev_hash);
  }
  // A chain fed the line: accepted only as its first entry, whatever the bytes.
  shadan::AuditChain chain;
  const auto check = chain.accept(line);
  FUZZ_CHECK((check.failure == shadan::AuditChain::Failure::kNone) == (chain.size() == 1));
  (void)shadan::parseCheckpointLine(line);
  return 0;
}
