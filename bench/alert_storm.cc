// An alert storm against a running shadan-controller, while an operator isolates hosts: the load
// generator behind scripts/bench-storm.sh (docs/benchmarks.md, "Alert storm"). Not a test and
// not Google Benchmark: it drives a real controller process over its real HTTPS API (TLS 1.3,
// one request per connection, as `shadanctl forward` and curl do) and reports what happened.
//
//   alert_storm --controller URL --ca FILE --operator-token FILE --detector-token FILE...
//               [--rate N] [--seconds S] [--batch B] [--isolate-every-ms MS]
//               [--controller-pid PID] [--json]
//
// Detectors: one thread per --detector-token; together they offer --rate alerts/s (default
// 10,000) for --seconds (10), in NDJSON batches of --batch Suricata EVE alert records (100), each
// batch due at a fixed time (open loop: a late answer does not lower the offered rate; the
// next due batch goes out at once). Every record is accounted for: a 200 answer must carry one
// result per record (counted per decision), a 429 counts the whole batch as refused and must
// carry Retry-After, anything else is an error. `lost` (records neither decided nor refused)
// must be 0.
// Operator: one thread isolating a new host (quarantine, TTL 600 s) every --isolate-every-ms
// (100) through POST /v1/isolate; the latency of each answer (connect to last byte) is recorded.
// Controller: with --controller-pid, its CPU time (utime+stime from /proc/PID/stat) over the
// storm and its peak resident memory (VmHWM).

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/api_client.h"

namespace shadan {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using Millis = std::chrono::duration<double, std::milli>;

struct Options {
  std::string controller;
  std::string ca;
  std::string operator_token;
  std::vector<std::string> detector_tokens;
  int rate = 10000;
  int seconds = 10;
  int batch = 100;
  int isolate_every_ms = 100;
  int controller_pid = 0;
  bool json = false;
};

constexpr const char* kUsage =
    "usage: alert_storm --controller URL --ca FILE --operator-token FILE\n"
    "                   --detector-token FILE [--detector-token FILE...]\n"
    "                   [--rate N] [--seconds S] [--batch B] [--isolate-every-ms MS]\n"
    "                   [--controller-pid PID] [--json]\n";

bool parseArgs(int argc, char** argv, Options& options) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--json") {
      options.json = true;
      continue;
    }
    if (i + 1 >= argc) return false;
    const std::string value = argv[++i];
    auto number = [&](int& out) {
      out = std::atoi(value.c_str());
      return out > 0;
    };
    if (arg == "--controller") {
      options.controller = value;
    } else if (arg == "--ca") {
      options.ca = value;
    } else if (arg == "--operator-token") {
      options.operator_token = value;
    } else if (arg == "--detector-token") {
      options.detector_tokens.push_back(value);
    } else if (arg == "--rate") {
      if (!number(options.rate)) return false;
    } else if (arg == "--seconds") {
      if (!number(options.seconds)) return false;
    } else if (arg == "--batch") {
      if (!number(options.batch) || options.batch > 1000) return false;
    } else if (arg == "--isolate-every-ms") {
      if (!number(options.isolate_every_ms)) return false;
    } else if (arg == "--controller-pid") {
      if (!number(options.controller_pid)) return false;
    } else {
      return false;
    }
  }
  return !options.controller.empty() && !options.ca.empty() && !options.operator_token.empty() &&
         !options.detector_tokens.empty();
}

// One Suricata EVE alert for an office host (10.20.0.0/16). Hosts come from a pool so the storm
// has what a real one has: a few new hosts (acted on until the per-detector rate or the breaker
// stops it) and many repeats (deduplicated).
std::string eveRecord(int detector, uint64_t sequence) {
  const uint64_t host = (sequence * 2654435761u + static_cast<uint64_t>(detector) * 97) % 2000;
  Json record = {
      {"timestamp", "2026-12-06T10:00:00.000000+0000"},
      {"event_type", "alert"},
      {"src_ip", "10.20." + std::to_string(1 + host / 250) + "." + std::to_string(1 + host % 250)},
      {"src_port", 49152 + static_cast<int>(sequence % 10000)},
      {"dest_ip", "198.51.100.7"},
      {"dest_port", 443},
      {"proto", "TCP"},
      {"alert",
       {{"action", "allowed"},
        {"signature_id", 2024897},
        {"signature", "ET MALWARE storm"},
        {"category", "A Network Trojan was detected"},
        {"severity", 1}}}};
  return record.dump();
}

struct DetectorTally {
  uint64_t sent = 0;         // records sent
  uint64_t refused_429 = 0;  // records in batches answered 429
  uint64_t errors = 0;       // records in batches answered neither 200 nor 429, or not at all
  uint64_t retry_after_missing = 0;  // 429 answers without Retry-After
  uint64_t short_answers = 0;        // 200 answers without one result per record
  uint64_t late_batches = 0;  // batches sent after their due time (the controller was slower)
  std::map<std::string, uint64_t> decisions;
  std::vector<double> batch_ms;
};

ApiClientOptions clientOptions(const Options& options, const std::string& token_file) {
  ApiClientOptions client;
  client.url = parseControllerUrl(options.controller).value();
  client.ca_file = options.ca;
  auto token = loadTokenFile(token_file);
  if (!token.ok()) {
    std::cerr << "alert_storm: " << token_file << ": " << token.error().message << "\n";
    std::exit(2);
  }
  client.token = *token;
  client.timeout = std::chrono::milliseconds(30000);
  return client;
}

// Every batch a detector sends, serialized before the storm starts: the generator shares the
// machine with the controller, and its own JSON work should not be what the controller waits for.
std::vector<std::string> prepareBatches(const Options& options, int detector) {
  const double per_detector_rate =
      static_cast<double>(options.rate) / static_cast<double>(options.detector_tokens.size());
  const int batches =
      static_cast<int>(std::ceil(options.seconds * per_detector_rate / options.batch)) + 1;
  std::vector<std::string> bodies;
  uint64_t sequence = 0;
  for (int n = 0; n < batches; ++n) {
    std::string body;
    for (int i = 0; i < options.batch; ++i) {
      body += eveRecord(detector, sequence++);
      body += '\n';
    }
    bodies.push_back(std::move(body));
  }
  return bodies;
}

void runDetector(const Options& options, int detector, std::vector<std::string> bodies,
                 Clock::time_point start, DetectorTally& tally) {
  ApiClient client(clientOptions(options, options.detector_tokens[detector]));
  const double per_detector_rate =
      static_cast<double>(options.rate) / static_cast<double>(options.detector_tokens.size());
  const auto interval = std::chrono::duration<double>(options.batch / per_detector_rate);
  const auto end = start + std::chrono::seconds(options.seconds);
  for (size_t n = 0; n < bodies.size(); ++n) {
    // Batches are spread over the interval by detector so they do not all arrive at once.
    const auto due =
        start + std::chrono::duration_cast<Clock::duration>(
                    interval * (static_cast<double>(n) +
                                static_cast<double>(detector) /
                                    static_cast<double>(options.detector_tokens.size())));
    if (due >= end) break;
    if (Clock::now() < due) {
      std::this_thread::sleep_until(due);
    } else if (n > 0) {
      ++tally.late_batches;
    }
    RawApiRequest request;
    request.path = "/v1/alerts?format=eve";
    request.content_type = "application/x-ndjson";
    request.body = std::move(bodies[n]);
    tally.sent += static_cast<uint64_t>(options.batch);
    const auto sent_at = Clock::now();
    auto answer = client.requestRaw(request);
    tally.batch_ms.push_back(Millis(Clock::now() - sent_at).count());
    if (!answer.ok()) {
      tally.errors += static_cast<uint64_t>(options.batch);
      continue;
    }
    if (answer->response.status == 429) {
      tally.refused_429 += static_cast<uint64_t>(options.batch);
      if (!answer->retry_after) ++tally.retry_after_missing;
      continue;
    }
    const Json& results = answer->response.body.is_object()
                              ? answer->response.body.value("results", Json::array())
                              : Json::array();
    if (answer->response.status != 200 || !results.is_array()) {
      tally.errors += static_cast<uint64_t>(options.batch);
      continue;
    }
    if (results.size() != static_cast<size_t>(options.batch)) ++tally.short_answers;
    for (const Json& result : results) {
      ++tally.decisions[result.value("decision", std::string("(none)"))];
    }
  }
}

struct OperatorTally {
  std::vector<double> isolate_ms;
  uint64_t failed = 0;
  std::string first_error;
};

void runOperator(const Options& options, Clock::time_point start, OperatorTally& tally) {
  ApiClient client(clientOptions(options, options.operator_token));
  const auto end = start + std::chrono::seconds(options.seconds);
  for (int n = 0;; ++n) {
    const auto due = start + std::chrono::milliseconds(options.isolate_every_ms) * (n + 1);
    if (due >= end) break;
    std::this_thread::sleep_until(due);
    // Servers (10.30.0.0/24): hosts the detectors never name, so every isolate is a new order.
    const Json body = {{"scope", "host"},
                       {"hosts", {"10.30.0." + std::to_string(1 + n % 250)}},
                       {"ttl_s", 600},
                       {"reason", "storm bench: operator isolate " + std::to_string(n)}};
    const auto sent_at = Clock::now();
    auto answer = client.request("POST", "/v1/isolate", body);
    const double ms = Millis(Clock::now() - sent_at).count();
    if (!answer.ok() || !answer->ok()) {
      ++tally.failed;
      if (tally.first_error.empty()) {
        tally.first_error = answer.ok() ? answer->errorSummary() : answer.error().message;
      }
      continue;
    }
    tally.isolate_ms.push_back(ms);
  }
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t rank = static_cast<size_t>(p / 100.0 * static_cast<double>(values.size()) + 0.999);
  return values[std::min(values.size(), std::max<size_t>(rank, 1)) - 1];
}

// utime + stime of `pid` in seconds, from /proc/PID/stat (fields 14 and 15).
double cpuSeconds(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t paren = text.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream fields(text.substr(paren + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; fields >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);
    if (i == 15) break;
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// A "Vm...:" line of /proc/PID/status in MiB.
double statusMiB(int pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key + ":", 0) == 0) return std::stod(line.substr(key.size() + 1)) / 1024.0;
  }
  return 0;
}

int run(const Options& options) {
  const double cpu_before = options.controller_pid ? cpuSeconds(options.controller_pid) : 0;
  const double rss_before = options.controller_pid ? statusMiB(options.controller_pid, "VmRSS") : 0;
  std::vector<std::vector<std::string>> batches;
  for (size_t i = 0; i < options.detector_tokens.size(); ++i) {
    batches.push_back(prepareBatches(options, static_cast<int>(i)));
  }
  const auto start = Clock::now() + std::chrono::milliseconds(200);
  std::vector<DetectorTally> detectors(options.detector_tokens.size());
  OperatorTally op;
  std::vector<std::thread> threads;
  for (size_t i = 0; i < detectors.size(); ++i) {
    threads.emplace_back([&, i] {
      runDetector(options, static_cast<int>(i), std::move(batches[i]), start, detectors[i]);
    });
  }
  threads.emplace_back([&] { runOperator(options, start, op); });
  for (auto& thread : threads) thread.join();
  const double wall_s = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu_s = options.controller_pid ? cpuSeconds(options.controller_pid) - cpu_before : 0;

  DetectorTally total;
  for (const auto& d : detectors) {
    total.sent += d.sent;
    total.refused_429 += d.refused_429;
    total.errors += d.errors;
    total.retry_after_missing += d.retry_after_missing;
    total.short_answers += d.short_answers;
    total.late_batches += d.late_batches;
    for (const auto& [decision, count] : d.decisions) total.decisions[decision] += count;
    total.batch_ms.insert(total.batch_ms.end(), d.batch_ms.begin(), d.batch_ms.end());
  }
  uint64_t decided = 0;
  for (const auto& [decision, count] : total.decisions) decided += count;
  const uint64_t lost = total.sent - decided - total.refused_429 - total.errors;

  Json report = {{"offered_alerts_per_s", options.rate},
                 {"seconds", options.seconds},
                 {"detectors", options.detector_tokens.size()},
                 {"batch", options.batch},
                 {"wall_s", wall_s},
                 {"alerts",
                  {{"sent", total.sent},
                   {"decided", decided},
                   {"refused_429", total.refused_429},
                   {"errors", total.errors},
                   {"lost", lost},
                   {"decisions", total.decisions},
                   {"retry_after_missing", total.retry_after_missing},
                   {"short_answers", total.short_answers},
                   {"late_batches", total.late_batches},
                   {"batch_ms_p50", percentile(total.batch_ms, 50)},
                   {"batch_ms_p99", percentile(total.batch_ms, 99)}}},
                 {"operator",
                  {{"isolates", op.isolate_ms.size()},
                   {"failed", op.failed},
                   {"first_error", op.first_error},
                   {"p50_ms", percentile(op.isolate_ms, 50)},
                   {"p99_ms", percentile(op.isolate_ms, 99)},
                   {"max_ms", percentile(op.isolate_ms, 100)}}}};
  if (options.controller_pid) {
    report["controller"] = {{"cpu_s", cpu_s},
                            {"cpu_percent_of_one_core", 100.0 * cpu_s / wall_s},
                            {"rss_before_mib", rss_before},
                            {"rss_after_mib", statusMiB(options.controller_pid, "VmRSS")},
                            {"peak_rss_mib", statusMiB(options.controller_pid, "VmHWM")}};
  }
  if (options.json) {
    std::cout << report.dump(2) << "\n";
  } else {
    const Json& a = report["alerts"];
    const Json& o = report["operator"];
    std::printf("offered   %d alerts/s for %d s from %zu detectors (batches of %d)\n", options.rate,
                options.seconds, options.detector_tokens.size(), options.batch);
    std::printf(
        "alerts    sent %llu, decided %llu, refused 429 %llu, errors %llu, lost %llu\n",
        static_cast<unsigned long long>(total.sent), static_cast<unsigned long long>(decided),
        static_cast<unsigned long long>(total.refused_429),
        static_cast<unsigned long long>(total.errors), static_cast<unsigned long long>(lost));
    std::printf("decisions %s\n", a["decisions"].dump().c_str());
    std::printf("batches   p50 %.1f ms, p99 %.1f ms, late %llu\n", a["batch_ms_p50"].get<double>(),
                a["batch_ms_p99"].get<double>(),
                static_cast<unsigned long long>(total.late_batches));
    std::printf("operator  %zu isolates, failed %llu, p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
                op.isolate_ms.size(), static_cast<unsigned long long>(op.failed),
                o["p50_ms"].get<double>(), o["p99_ms"].get<double>(), o["max_ms"].get<double>());
    if (!op.first_error.empty()) std::printf("          first error: %s\n", op.first_error.c_str());
    if (options.controller_pid) {
      const Json& c = report["controller"];
      std::printf(
          "controller cpu %.2f s (%.0f%% of one core), rss %.1f -> %.1f MiB, peak %.1f MiB\n",
          c["cpu_s"].get<double>(), c["cpu_percent_of_one_core"].get<double>(),
          c["rss_before_mib"].get<double>(), c["rss_after_mib"].get<double>(),
          c["peak_rss_mib"].get<double>());
    }
  }
  return lost == 0 && total.errors == 0 && total.retry_after_missing == 0 &&
                 total.short_answers == 0 && op.failed == 0
             ? 0
             : 1;
}

}  // namespace
}  // namespace shadan

int main(int argc, char** argv) {
  shadan::Options options;
  if (!shadan::parseArgs(argc, argv, options)) {
    std::cerr << shadan::kUsage;
    return 2;
  }
  return shadan::run(options);
}
