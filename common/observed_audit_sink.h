#pragma once

#include <functional>

#include "common/audit_sink.h"

namespace shadan {

// Passes every entry on to `inner` and, once it is recorded, calls `recorded` on the appending
// thread: how a daemon tells its watchers (the console's event stream) that its state changed,
// since every change of state is audited. Both must outlive the sink.
class ObservedAuditSink : public AuditSink {
 public:
  ObservedAuditSink(AuditSink& inner, std::function<void()> recorded)
      : inner_(inner), recorded_(std::move(recorded)) {}
  Result<AuditReceipt> append(const AuditEvent& event) override {
    auto receipt = inner_.append(event);
    if (receipt.ok()) recorded_();
    return receipt;
  }
  Result<AuditReceipt> appendBuffered(const AuditEvent& event) override {
    auto receipt = inner_.appendBuffered(event);
    if (receipt.ok()) recorded_();
    return receipt;
  }

 private:
  AuditSink& inner_;
  std::function<void()> recorded_;
};

}  // namespace shadan
