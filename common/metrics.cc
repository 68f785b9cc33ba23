#include "common/metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <limits>
#include <sstream>

#include "common/audit_log.h"
#include "common/clock.h"
#include "common/open_files.h"

namespace shadan {
namespace {

enum FamilyType { kCounter, kHistogram, kGauge };

const char* typeName(int type) {
  switch (type) {
    case kCounter:
      return "counter";
    case kHistogram:
      return "histogram";
    default:
      return "gauge";
  }
}

[[noreturn]] void misuse(std::string_view what, std::string_view name) {
  std::fprintf(stderr, "metrics: %.*s: %.*s\n", static_cast<int>(what.size()), what.data(),
               static_cast<int>(name.size()), name.data());
  std::abort();
}

bool validName(std::string_view name, bool colon_allowed) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon_allowed && c == ':');
    const bool digit = c >= '0' && c <= '9';
    if (!letter && !(digit && i > 0)) return false;
  }
  return true;
}

// HELP text escapes backslash and newline; label values also the double quote.
void appendEscaped(std::string& out, std::string_view text, bool quote) {
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

void appendSample(std::string& out, std::string_view name, const MetricLabels& labels,
                  const std::pair<std::string, std::string>* extra, std::string_view value) {
  out += name;
  if (!labels.empty() || extra != nullptr) {
    out += '{';
    bool first = true;
    auto label = [&](const std::string& key, const std::string& text) {
      if (!first) out += ',';
      first = false;
      out += key;
      out += "=\"";
      appendEscaped(out, text, true);
      out += '"';
    };
    for (const auto& [key, text] : labels) label(key, text);
    if (extra != nullptr) label(extra->first, extra->second);
    out += '}';
  }
  out += ' ';
  out += value;
  out += '\n';
}

}  // namespace

std::string formatMetricValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::trunc(value) && std::fabs(value) < 1e15) {
    return std::to_string(static_cast<int64_t>(value));
  }
  char buffer[32];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return ec == std::errc() ? std::string(buffer, end) : "NaN";
}

std::vector<double> latencyBucketsSeconds() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
}

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)),
      buckets_(std::make_unique<std::atomic<uint64_t>[]>(upper_bounds_.size() + 1)) {
  for (size_t i = 0; i < upper_bounds_.size(); ++i) {
    if (!std::isfinite(upper_bounds_[i]) || (i > 0 && upper_bounds_[i] <= upper_bounds_[i - 1])) {
      misuse("histogram bounds must be finite and strictly increasing", "");
    }
  }
}

void Histogram::observe(double value) {
  const size_t bucket = static_cast<size_t>(
      std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value) - upper_bounds_.begin());
  sum_.fetch_add(value, std::memory_order_relaxed);
  buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot snapshot;
  snapshot.upper_bounds = upper_bounds_;
  uint64_t running = 0;
  for (size_t i = 0; i <= upper_bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    snapshot.cumulative.push_back(running);
  }
  snapshot.count = running;
  snapshot.sum = sum_.load(std::memory_order_relaxed);
  return snapshot;
}

struct MetricsRegistry::Family {
  std::string name;
  std::string help;
  int type = kGauge;
  // std::deque: the counters and histograms handed out keep their addresses.
  std::deque<std::pair<MetricLabels, Counter>> counters;
  std::deque<std::pair<MetricLabels, Histogram>> histograms;
  std::vector<const Histogram*> kept;  // histogramOf(): the component's own
  std::function<std::vector<GaugeSample>()> read;
};

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

MetricsRegistry::Family& MetricsRegistry::family(std::string_view name, std::string_view help,
                                                 int type) {
  if (!validName(name, true)) misuse("invalid metric name", name);
  for (auto& family : families_) {
    if (family->name != name) continue;
    if (family->type != type || family->help != help) {
      misuse("registered again with another type or help", name);
    }
    return *family;
  }
  auto family = std::make_unique<Family>();
  family->name = std::string(name);
  family->help = std::string(help);
  family->type = type;
  families_.push_back(std::move(family));
  return *families_.back();
}

namespace {
void checkLabels(std::string_view name, const MetricLabels& labels, bool histogram) {
  for (const auto& [key, value] : labels) {
    if (!validName(key, false) || key.starts_with("__") || (histogram && key == "le")) {
      misuse("invalid label name", name);
    }
  }
}
}  // namespace

Counter& MetricsRegistry::counter(std::string_view name, std::string_view help,
                                  const MetricLabels& labels) {
  const std::lock_guard<std::mutex> lock(mutex_);
  checkLabels(name, labels, false);
  Family& found = family(name, help, kCounter);
  for (auto& [have, counter] : found.counters) {
    if (have == labels) return counter;
  }
  found.counters.emplace_back(std::piecewise_construct, std::forward_as_tuple(labels),
                              std::forward_as_tuple());
  return found.counters.back().second;
}

Histogram& MetricsRegistry::histogram(std::string_view name, std::string_view help,
                                      std::vector<double> upper_bounds,
                                      const MetricLabels& labels) {
  const std::lock_guard<std::mutex> lock(mutex_);
  checkLabels(name, labels, true);
  Family& found = family(name, help, kHistogram);
  for (auto& [have, histogram] : found.histograms) {
    if (have == labels) return histogram;
  }
  found.histograms.emplace_back(std::piecewise_construct, std::forward_as_tuple(labels),
                                std::forward_as_tuple(std::move(upper_bounds)));
  return found.histograms.back().second;
}

void MetricsRegistry::gauges(std::string_view name, std::string_view help,
                             std::function<std::vector<GaugeSample>()> read) {
  const std::lock_guard<std::mutex> lock(mutex_);
  Family& found = family(name, help, kGauge);
  if (found.read) misuse("gauge family registered twice", name);
  found.read = std::move(read);
}

void MetricsRegistry::counters(std::string_view name, std::string_view help,
                               std::function<std::vector<GaugeSample>()> read) {
  const std::lock_guard<std::mutex> lock(mutex_);
  Family& found = family(name, help, kCounter);
  if (found.read) misuse("counter family registered twice", name);
  found.read = std::move(read);
}

void MetricsRegistry::histogramOf(std::string_view name, std::string_view help,
                                  const Histogram& histogram) {
  const std::lock_guard<std::mutex> lock(mutex_);
  family(name, help, kHistogram).kept.push_back(&histogram);
}

void MetricsRegistry::gauge(std::string_view name, std::string_view help,
                            std::function<double()> read) {
  gauges(name, help, [read = std::move(read)] {
    return std::vector<GaugeSample>{GaugeSample{{}, read()}};
  });
}

namespace {
void appendHistogram(std::string& out, const std::string& name, const MetricLabels& labels,
                     const Histogram& histogram) {
  const std::string bucket_name = name + "_bucket";
  const Histogram::Snapshot snapshot = histogram.snapshot();
  for (size_t i = 0; i < snapshot.cumulative.size(); ++i) {
    const std::pair<std::string, std::string> le{
        "le",
        i < snapshot.upper_bounds.size() ? formatMetricValue(snapshot.upper_bounds[i]) : "+Inf"};
    appendSample(out, bucket_name, labels, &le, std::to_string(snapshot.cumulative[i]));
  }
  appendSample(out, name + "_sum", labels, nullptr, formatMetricValue(snapshot.sum));
  appendSample(out, name + "_count", labels, nullptr, std::to_string(snapshot.count));
}
}  // namespace

std::string MetricsRegistry::render() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  for (const auto& family : families_) {
    out += "# HELP ";
    out += family->name;
    out += ' ';
    appendEscaped(out, family->help, false);
    out += "\n# TYPE ";
    out += family->name;
    out += ' ';
    out += typeName(family->type);
    out += '\n';
    for (const auto& [labels, counter] : family->counters) {
      appendSample(out, family->name, labels, nullptr, std::to_string(counter.value()));
    }
    for (const auto& [labels, histogram] : family->histograms) {
      appendHistogram(out, family->name, labels, histogram);
    }
    for (const Histogram* histogram : family->kept) {
      appendHistogram(out, family->name, {}, *histogram);
    }
    if (family->read) {
      for (const GaugeSample& sample : family->read()) {
        checkLabels(family->name, sample.labels, false);
        appendSample(out, family->name, sample.labels, nullptr, formatMetricValue(sample.value));
      }
    }
  }
  return out;
}

namespace {

// Fields of /proc/self/stat after the command name (which may hold spaces and parentheses):
// index 0 is field 3 (state), so field N is at N - 3.
std::vector<std::string> procSelfStat() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  std::getline(in, line);
  const size_t close = line.rfind(')');
  std::vector<std::string> fields;
  if (close == std::string::npos) return fields;
  std::istringstream rest(line.substr(close + 1));
  for (std::string field; rest >> field;) fields.push_back(field);
  return fields;
}

double statField(const std::vector<std::string>& fields, size_t number) {
  if (number < 3 || number - 3 >= fields.size()) return 0;
  return std::strtod(fields[number - 3].c_str(), nullptr);
}

double bootTimeSeconds() {
  std::ifstream in("/proc/stat");
  for (std::string key; in >> key;) {
    if (key == "btime") {
      double value = 0;
      in >> value;
      return value;
    }
    in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return 0;
}

}  // namespace

void registerAuditLogMetrics(MetricsRegistry& registry, std::string_view prefix,
                             std::string_view whose, const AuditLog& log, const Clock& clock) {
  const std::string name = std::string(prefix) + "_audit_";
  const std::string of = std::string(whose) + " audit log";
  registry.gauge(name + "entries", "Entries in " + of + ".",
                 [&log] { return static_cast<double>(log.size()); });
  registry.gauge(
      name + "unchecked_entries", "Entries of " + of + " not yet covered by a signed checkpoint.",
      [&log] {
        return static_cast<double>(log.size() - std::min(log.size(), log.checkpointedSize()));
      });
  registry.gauge(
      name + "last_checkpoint_age_seconds",
      "Seconds since " + of + " last wrote a checkpoint (or was opened).", [&log, &clock] {
        return std::chrono::duration<double>(clock.now() - log.lastCheckpointTime()).count();
      });
}

void registerProcessMetrics(MetricsRegistry& registry) {
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  registry.counters("process_cpu_seconds_total", "User and system CPU time spent, in seconds.",
                    [ticks] {
                      const auto fields = procSelfStat();
                      return std::vector<GaugeSample>{
                          {{}, (statField(fields, 14) + statField(fields, 15)) / ticks}};
                    });
  registry.gauge("process_resident_memory_bytes", "Resident memory size in bytes.",
                 [page] { return statField(procSelfStat(), 24) * page; });
  registry.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                 [] { return statField(procSelfStat(), 23); });
  registry.gauge("process_open_fds", "Open file descriptors.",
                 [] { return static_cast<double>(openFileDescriptorCount()); });
  registry.gauge("process_max_fds", "The limit of open file descriptors.", [] {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0.0;
    return static_cast<double>(limit.rlim_cur);
  });
  const double start = bootTimeSeconds() + statField(procSelfStat(), 22) / ticks;
  registry.gauge("process_start_time_seconds",
                 "Start time of the process since the Unix epoch, in seconds.",
                 [start] { return start; });
}

}  // namespace shadan
