// Alert batches from detectors (controller/alerts/alert_formats.h): POST /v1/alerts bodies in the
// shadan, Suricata EVE and Zeek notice formats. The first byte picks the format.

#include "controller/alerts/alert_formats.h"
#include "tests/fuzz/fuzz_target.h"

using shadan::controller::AlertFormat;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  constexpr AlertFormat kFormats[] = {AlertFormat::kShadan, AlertFormat::kEve, AlertFormat::kZeek};
  const AlertFormat format = kFormats[data[0] % 3];
  const std::string_view body = shadan::fuzz::bytes(data + 1, size - 1);
  auto batch = shadan::controller::parseAlertBatch(body, format);
  if (!batch.ok()) {
    FUZZ_CHECK(!batch.error().message.empty());
    return 0;
  }
  FUZZ_CHECK(batch->size() <= shadan::controller::kAlertBatchMaxRecords);
  for (size_t i = 0; i < batch->size(); ++i) {
    const auto& record = (*batch)[i];
    FUZZ_CHECK(record.index == i);
    FUZZ_CHECK(record.raw_sha256.size() == 64);
    if (!record.alert.ok()) {
      FUZZ_CHECK(!record.alert.error().message.empty());
      continue;
    }
    const auto& alert = *record.alert;
    FUZZ_CHECK(alert.format == format);
    FUZZ_CHECK(!alert.rule.empty());
    FUZZ_CHECK(alert.title.size() <= shadan::controller::kAlertTextMaxBytes);
  }
  return 0;
}
