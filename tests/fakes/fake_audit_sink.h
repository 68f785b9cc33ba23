#pragma once

// The one fake AuditSink (common/audit_sink.h) of the unit tests: events kept in memory, in order.

#include <string>
#include <vector>

#include "common/audit_sink.h"
#include "common/sha256.h"

namespace shadan::testing {

// append() keeps the event and answers receipt {n, sha256Hex("n")} for the n-th event (from 0),
// so every receipt is distinct and predictable. With `fail` set it keeps nothing and answers kIo.
class FakeAuditSink : public AuditSink {
 public:
  Result<AuditReceipt> append(const AuditEvent& event) override {
    if (fail) return makeError(ErrorCode::kIo, "fake audit disk full");
    events.push_back(event);
    return AuditReceipt{events.size() - 1, sha256Hex(std::to_string(events.size() - 1))};
  }
  // Kept like append(); counted, so a test can tell how many entries waited for a later sync.
  Result<AuditReceipt> appendBuffered(const AuditEvent& event) override {
    ++buffered;
    return append(event);
  }

  // The names of the events, in order ("accepted", "applied", ...).
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const AuditEvent& e : events) out.push_back(e.event);
    return out;
  }
  bool has(const std::string& name) const {
    for (const AuditEvent& e : events) {
      if (e.event == name) return true;
    }
    return false;
  }

  std::vector<AuditEvent> events;
  size_t buffered = 0;  // of `events`, appended with appendBuffered()
  bool fail = false;
};

}  // namespace shadan::testing
