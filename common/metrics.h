#pragma once

// Prometheus metrics: counters and histograms kept by the code that counts, gauges read when
// scraped, written out in the text exposition format 0.0.4 (what `promtool check metrics`
// checks and every Prometheus server reads).
//
// Contracts:
//   - Families and their label sets are registered at start-up (counter(), histogram(),
//     gauges()); the references returned stay valid for the registry's life. Registering the
//     same name and labels again returns the same counter or histogram.
//   - Counting is lock-free (relaxed atomics): any thread may count. render() takes the
//     registry's lock and calls the gauge readers on the calling thread, so a daemon renders on
//     the thread that owns the state its gauges read.
//   - Names are checked when registered: a metric name outside [a-zA-Z_:][a-zA-Z0-9_:]*, a label
//     name outside [a-zA-Z_][a-zA-Z0-9_]*, the same name with another type or help, or unsorted
//     histogram bounds are programming errors and abort. Label values are any UTF-8 text and
//     are escaped on output.
//   - Metrics carry counts and states, never a token, a key, a reason text or a request.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace shadan {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

class Counter {
 public:
  void inc(uint64_t by = 1) { value_.fetch_add(by, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Histogram {
 public:
  // `upper_bounds`: finite, strictly increasing; the +Inf bucket is implied.
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);

  struct Snapshot {
    std::vector<double> upper_bounds;
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf (== count)
    uint64_t count = 0;
    double sum = 0;
  };
  // Taken bucket by bucket while others may observe: `count` is the +Inf bucket, so the
  // cumulative counts never decrease along the buckets.
  Snapshot snapshot() const;

 private:
  std::vector<double> upper_bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // per bucket, the last one is +Inf
  std::atomic<double> sum_{0};
};

// Seconds from 1 ms to 30 s, for latencies across a network and a disk sync.
std::vector<double> latencyBucketsSeconds();

struct GaugeSample {
  MetricLabels labels;
  double value = 0;
};

class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  Counter& counter(std::string_view name, std::string_view help, const MetricLabels& labels = {});
  Histogram& histogram(std::string_view name, std::string_view help,
                       std::vector<double> upper_bounds, const MetricLabels& labels = {});
  // Families whose samples `read` returns at each scrape (on the rendering thread): gauges,
  // and counters that a component keeps itself (a plain count on its own thread, read here).
  void gauges(std::string_view name, std::string_view help,
              std::function<std::vector<GaugeSample>()> read);
  void gauge(std::string_view name, std::string_view help, std::function<double()> read);
  void counters(std::string_view name, std::string_view help,
                std::function<std::vector<GaugeSample>()> read);
  // A histogram a component keeps itself (it must outlive the registry's renders).
  void histogramOf(std::string_view name, std::string_view help, const Histogram& histogram);

  // The text exposition of every family, in registration order.
  std::string render() const;

 private:
  struct Family;
  Family& family(std::string_view name, std::string_view help, int type);

  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Family>> families_;
};

// process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
// process_open_fds, process_max_fds and process_start_time_seconds of this process, read from
// /proc/self at each scrape (the names every Prometheus client library uses).
void registerProcessMetrics(MetricsRegistry& registry);

class AuditLog;  // common/audit_log.h
class Clock;     // common/clock.h

// The families of a hash-chained audit log, named `<prefix>_audit_entries`,
// `<prefix>_audit_unchecked_entries` (not yet under a signed checkpoint) and
// `<prefix>_audit_last_checkpoint_age_seconds`; `whose` reads "the controller's" or "this
// gateway's" in their help. `log` and `clock` must outlive the registry's renders.
void registerAuditLogMetrics(MetricsRegistry& registry, std::string_view prefix,
                             std::string_view whose, const AuditLog& log, const Clock& clock);

// Formats a sample value as the exposition format writes it: integers without a fraction,
// "+Inf", "-Inf", "NaN", otherwise the shortest text that reads back to the same double.
std::string formatMetricValue(double value);

}  // namespace shadan
