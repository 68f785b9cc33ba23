// ladder_packet_bench: does a packet through the gateway cost more when 10,000 hosts are
// quarantined than when one is? (docs/benchmarks.md, "Escalation ladder", issue 15.)
//
// Needs root. Builds the standard lab (cli/lab/lab.h; namespaces sd-l<pid>-*, deleted at exit,
// also after SIGINT/SIGTERM) and, in turn, loads into the gateway's namespace one of:
//   no_table     no Shadan table (the gateway's own accept-all table only)
//   hosts_1      the planner's table for gw of bench/ladder.policy.json, 1 quarantined host
//   hosts_10000  the same with 10,000 quarantined hosts (single addresses: one hash set, same
//                rules)
//   interval_10000  reference, what the planner wrote before: hosts_10000 with the IPv4 host
//                set declared with `flags interval` (an interval set, looked up in O(log n))
//   rules_10000  reference, NOT what Shadan does: one `ip saddr H drop` and one `ip daddr H drop`
//                rule per host for the same 10,000 hosts, to show what a rule per host costs
// Probe traffic comes from the office host 10.20.0.2, which is in none of these, to the servers
// host 10.30.0.2, forwarded by gw (its forward chain does the host-set lookups and misses):
//   rtt    UDP request/response, 64-byte payload, one outstanding, for --seconds: round-trip
//          median and p99 (each round trip crosses the forward chain twice)
//   flood  UDP 64-byte datagrams sent as fast as one thread can for --seconds: datagrams sent
//          and received per second (the sender's CPU also does the forwarding: veth delivers
//          in the sender's softirq)
// The configurations are measured in turn, round after round (--rounds), so drift of the
// machine's speed hits all of them alike; reported per configuration: the median over rounds,
// and each configuration's ratio to hosts_1 measured in the same round (median, min, max).
// Before the rounds, a probe from a quarantined address (10.20.1.1, 10.20.79.31, added to the
// office host) checks that each table really drops what it should.
//
//   usage: ladder_packet_bench [--rounds N] [--seconds S] [--configs A,B,...]
//          (defaults 5, 1.0, all five; --configs to profile one, e.g. under `perf record -a`)

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "agents/dataplane/nftables_backend.h"
#include "bench/bench_support.h"
#include "bench/ladder_bench_support.h"
#include "cli/lab/command_runner.h"
#include "cli/lab/lab.h"
#include "cli/lab/netns.h"
#include "common/unique_fd.h"

namespace shadan {

using namespace shadan::agent;  // NOLINT: the agent under test
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kServer = "10.30.0.2";
constexpr uint16_t kEchoPort = 9000;
constexpr uint16_t kFloodPort = 9001;
constexpr size_t kPayload = 64;
constexpr int kHosts = 10000;
// The first and last of bench::quarantinedHosts(kHosts).
constexpr const char* kFirstQuarantined = "10.20.1.1";
constexpr const char* kLastQuarantined = "10.20.79.31";

std::atomic<bool> g_interrupted{false};
void onSignal(int) { g_interrupted = true; }

sockaddr_in ipv4(const char* address, uint16_t port) {
  sockaddr_in out{};
  out.sin_family = AF_INET;
  out.sin_port = htons(port);
  ::inet_pton(AF_INET, address, &out.sin_addr);
  return out;
}

Status setTimeout(int fd, std::chrono::microseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000000);
  tv.tv_usec = static_cast<suseconds_t>(timeout.count() % 1000000);
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) {
    return makeError(ErrorCode::kIo, std::string("SO_RCVTIMEO: ") + std::strerror(errno));
  }
  return okStatus();
}

// A UDP socket in namespace `ns`, bound to `address`:`port` (0: any) and, if `peer` is given,
// connected to it; receive timeout 100 ms so that loops can see the stop flag.
Result<UniqueFd> udpSocket(const std::string& ns, const char* address, uint16_t port,
                           const sockaddr_in* peer) {
  SHADAN_ASSIGN_OR_RETURN(UniqueFd fd, socketInNetns(ns, AF_INET, SOCK_DGRAM, 0));
  const sockaddr_in local = ipv4(address, port);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&local), sizeof local) != 0) {
    return makeError(ErrorCode::kIo, std::string("bind ") + address + ": " + std::strerror(errno));
  }
  if (peer != nullptr &&
      ::connect(fd.get(), reinterpret_cast<const sockaddr*>(peer), sizeof *peer) != 0) {
    return makeError(ErrorCode::kIo, std::string("connect: ") + std::strerror(errno));
  }
  const int buffer = 4 << 20;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
  SHADAN_RETURN_IF_ERROR(setTimeout(fd.get(), std::chrono::milliseconds(100)));
  return fd;
}

// The servers host: echoes on kEchoPort, counts datagrams on kFloodPort, until stopped.
class Responder {
 public:
  Responder(UniqueFd echo, UniqueFd flood) : echo_(std::move(echo)), flood_(std::move(flood)) {
    echo_thread_ = std::thread([this] { echoLoop(); });
    flood_thread_ = std::thread([this] { countLoop(); });
  }
  ~Responder() {
    stop_ = true;
    echo_thread_.join();
    flood_thread_.join();
  }
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;

  uint64_t received() const { return received_.load(); }

 private:
  void echoLoop() {
    char buffer[2048];
    while (!stop_) {
      sockaddr_in from{};
      socklen_t length = sizeof from;
      const ssize_t n = ::recvfrom(echo_.get(), buffer, sizeof buffer, 0,
                                   reinterpret_cast<sockaddr*>(&from), &length);
      if (n <= 0) continue;
      ::sendto(echo_.get(), buffer, static_cast<size_t>(n), 0,
               reinterpret_cast<const sockaddr*>(&from), length);
    }
  }
  void countLoop() {
    char buffer[2048];
    while (!stop_) {
      if (::recv(flood_.get(), buffer, sizeof buffer, 0) > 0) received_.fetch_add(1);
    }
  }

  UniqueFd echo_;
  UniqueFd flood_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> received_{0};
  std::thread echo_thread_;
  std::thread flood_thread_;
};

struct Sample {
  double rtt_median_us = 0;
  double rtt_p99_us = 0;
  size_t round_trips = 0;
  size_t lost = 0;
  double sent_pps = 0;
  double received_pps = 0;
};

double microsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

// One request at a time on a connected socket; a reply that does not carry the sequence number
// just sent (late, after a timeout) is skipped.
void measureRtt(int fd, double seconds, Sample& sample, size_t max_round_trips) {
  std::vector<double> rtts;
  char request[kPayload] = {};
  char reply[2048];
  uint64_t seq = 0;
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < end && rtts.size() < max_round_trips && !g_interrupted) {
    ++seq;
    std::memcpy(request, &seq, sizeof seq);
    const auto start = Clock::now();
    if (::send(fd, request, sizeof request, 0) != static_cast<ssize_t>(sizeof request)) {
      ++sample.lost;
      continue;
    }
    for (;;) {
      const ssize_t n = ::recv(fd, reply, sizeof reply, 0);
      if (n < 0) {
        ++sample.lost;  // timed out (100 ms)
        break;
      }
      uint64_t echoed = 0;
      if (static_cast<size_t>(n) >= sizeof echoed) std::memcpy(&echoed, reply, sizeof echoed);
      if (echoed == seq) {
        rtts.push_back(microsSince(start));
        break;
      }
    }
  }
  sample.round_trips = rtts.size();
  sample.rtt_median_us = bench::percentile(rtts, 0.5);
  sample.rtt_p99_us = bench::percentile(rtts, 0.99);
}

void measureFlood(int fd, const Responder& responder, double seconds, Sample& sample) {
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the last round's tail
  const uint64_t received_before = responder.received();
  char datagram[kPayload] = {};
  uint64_t sent = 0;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  while (!g_interrupted) {
    for (int i = 0; i < 64; ++i) {
      if (::send(fd, datagram, sizeof datagram, 0) == static_cast<ssize_t>(sizeof datagram)) {
        ++sent;
      }
    }
    if (Clock::now() >= end) break;
  }
  const double elapsed = microsSince(start) / 1e6;
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // let the receiver drain
  sample.sent_pps = static_cast<double>(sent) / elapsed;
  sample.received_pps = static_cast<double>(responder.received() - received_before) / elapsed;
}

// Replies to `count` requests sent from `source` (bound), 100 ms timeout each.
Result<int> repliesFrom(const std::string& office_ns, const char* source, int count) {
  const sockaddr_in server = ipv4(kServer, kEchoPort);
  SHADAN_ASSIGN_OR_RETURN(UniqueFd fd, udpSocket(office_ns, source, 0, &server));
  int replies = 0;
  char buffer[2048];
  for (int i = 0; i < count; ++i) {
    char request[kPayload] = {};
    if (::send(fd.get(), request, sizeof request, 0) < 0) continue;
    if (::recv(fd.get(), buffer, sizeof buffer, 0) > 0) ++replies;
  }
  return replies;
}

// A table in the gateway's namespace, applied in one transaction; returns the rule count of
// our table as the kernel lists it (0 when there is none).
Result<size_t> applyInGateway(const std::string& gw_ns, const std::string& script) {
  size_t rules = 0;
  const Status applied = runInNetns(gw_ns, [&]() -> Status {
    SHADAN_ASSIGN_OR_RETURN(auto backend, NftablesBackend::create());
    SHADAN_RETURN_IF_ERROR(backend->apply(script));
    SHADAN_ASSIGN_OR_RETURN(TableSnapshot table, backend->readTable());
    rules = table.present ? bench::countRules(table.listing) : 0;
    return okStatus();
  });
  SHADAN_RETURN_IF_ERROR(applied);
  return rules;
}

// The planner's host script with the IPv4 host set declared without `flags interval`: a hash
// set, which can hold single addresses only (a quarantined /24 needs the interval set). A
// reference row for the design, not what the planner writes.
std::string intervalSetScript(std::string script) {
  const std::string type = "set host_full_v4 {\n\t\ttype ipv4_addr\n";
  const size_t at = script.find(type);
  if (at != std::string::npos) script.insert(at + type.size(), "\t\tflags interval\n");
  return script;
}

// What a rule-per-host implementation would load: the reference row, not Shadan's design.
std::string rulePerHostScript(const std::vector<Isolation>& hosts) {
  std::string script =
      "add table inet shadan\ndelete table inet shadan\ntable inet shadan {\n"
      "  chain forward {\n    type filter hook forward priority -150; policy accept;\n";
  for (const Isolation& host : hosts) {
    const std::string address = host.host->addressString();
    script += "    ip saddr " + address + " counter drop\n";
    script += "    ip daddr " + address + " counter drop\n";
  }
  script += "  }\n}\n";
  return script;
}

struct Config {
  std::string name;
  std::string script;
  size_t set_elements = 0;
  size_t rules = 0;  // as listed by the kernel after the apply
  std::vector<Sample> samples;
};

double medianOf(const std::vector<Sample>& samples, double Sample::*field) {
  std::vector<double> values;
  for (const Sample& sample : samples) values.push_back(sample.*field);
  return bench::percentile(values, 0.5);
}

// Per round, `field` of `config` divided by the same of `reference` (measured in the same round,
// a few seconds apart): median, min and max of those ratios. Pairing cancels most of the drift
// of a shared machine that the per-configuration medians still carry.
struct Ratios {
  double median = 0;
  double min = 0;
  double max = 0;
};
Ratios pairedRatios(const Config& config, const Config& reference, double Sample::*field) {
  std::vector<double> ratios;
  for (size_t i = 0; i < config.samples.size() && i < reference.samples.size(); ++i) {
    if (reference.samples[i].*field > 0) {
      ratios.push_back(config.samples[i].*field / (reference.samples[i].*field));
    }
  }
  if (ratios.empty()) return {};
  return Ratios{bench::percentile(ratios, 0.5), *std::min_element(ratios.begin(), ratios.end()),
                *std::max_element(ratios.begin(), ratios.end())};
}

int run(int rounds, double seconds, const std::vector<std::string>& only) {
  if (::geteuid() != 0) {
    std::cerr << "ladder_packet_bench: needs root (network namespaces)\n";
    return 1;
  }
  std::signal(SIGINT, onSignal);
  std::signal(SIGTERM, onSignal);
  ProcessCommandRunner runner(std::chrono::seconds(60));
  Lab lab(standardLabSpec(), "l" + std::to_string(::getpid() % 10000000), runner);
  if (auto up = lab.up(); !up.ok()) {
    std::cerr << "ladder_packet_bench: lab: " << up.error().message << "\n";
    return 1;
  }
  const std::string gw = lab.nsName("gw");
  const std::string office = lab.nsName("office");
  const std::string servers = lab.nsName("servers");
  // Two quarantined addresses on the office host, routed to it by gw, for the drop check.
  for (const std::vector<std::string>& command :
       {std::vector<std::string>{"ip", "-n", office, "addr", "add",
                                 std::string(kFirstQuarantined) + "/32", "dev", "eth0"},
        std::vector<std::string>{"ip", "-n", office, "addr", "add",
                                 std::string(kLastQuarantined) + "/32", "dev", "eth0"},
        std::vector<std::string>{"ip", "-n", gw, "route", "add", "10.20.0.0/16", "dev",
                                 "office"}}) {
    if (auto done = runChecked(runner, command); !done.ok()) {
      std::cerr << "ladder_packet_bench: " << done.error().message << "\n";
      return 1;
    }
  }

  const Policy policy = bench::loadLadderPolicy();
  const std::vector<Isolation> hosts = bench::quarantinedHosts(kHosts);
  std::vector<Config> configs = {
      {"no_table", "add table inet shadan\ndelete table inet shadan\n", 0, 0, {}},
      {"hosts_1", bench::planLadder(policy, bench::quarantinedHosts(1)), 1, 0, {}},
      {"hosts_10000", bench::planLadder(policy, hosts), kHosts, 0, {}},
      {"interval_10000", intervalSetScript(bench::planLadder(policy, hosts)), kHosts, 0, {}},
      {"rules_10000", rulePerHostScript(hosts), 0, 0, {}},
  };
  if (!only.empty()) {
    std::erase_if(configs, [&](const Config& config) {
      return std::find(only.begin(), only.end(), config.name) == only.end();
    });
    if (configs.size() != only.size()) {
      std::cerr << "ladder_packet_bench: --configs takes no_table, hosts_1, hosts_10000, "
                   "interval_10000, rules_10000\n";
      return 2;
    }
  }

  auto echo = udpSocket(servers, "0.0.0.0", kEchoPort, nullptr);
  auto sink = udpSocket(servers, "0.0.0.0", kFloodPort, nullptr);
  const sockaddr_in echo_peer = ipv4(kServer, kEchoPort);
  const sockaddr_in flood_peer = ipv4(kServer, kFloodPort);
  auto rtt_fd = udpSocket(office, "10.20.0.2", 0, &echo_peer);
  auto flood_fd = udpSocket(office, "10.20.0.2", 0, &flood_peer);
  for (const auto* fd : {&echo, &sink, &rtt_fd, &flood_fd}) {
    if (!fd->ok()) {
      std::cerr << "ladder_packet_bench: " << fd->error().message << "\n";
      return 1;
    }
  }
  Responder responder(std::move(echo).value(), std::move(sink).value());

  // Each table must load and drop what it should before anything is measured.
  std::printf("%-12s %8s %12s %22s %22s\n", "config", "rules", "set elems", "replies 10.20.1.1",
              "replies 10.20.79.31");
  for (Config& config : configs) {
    auto rules = applyInGateway(gw, config.script);
    if (!rules.ok()) {
      std::cerr << "ladder_packet_bench: " << config.name << ": " << rules.error().message << "\n";
      return 1;
    }
    config.rules = *rules;
    auto first = repliesFrom(office, kFirstQuarantined, 5);
    auto last = repliesFrom(office, kLastQuarantined, 5);
    auto clean = repliesFrom(office, "10.20.0.2", 5);
    if (!first.ok() || !last.ok() || !clean.ok()) {
      std::cerr << "ladder_packet_bench: drop check failed to run\n";
      return 1;
    }
    std::printf("%-12s %8zu %12zu %20d/5 %20d/5   (10.20.0.2: %d/5)\n", config.name.c_str(),
                config.rules, config.set_elements, *first, *last, *clean);
    if (*clean != 5) {
      std::cerr << "ladder_packet_bench: the probe host itself is cut in " << config.name << "\n";
      return 1;
    }
  }

  // Each round starts one configuration further on, so that none always follows the same one
  // (a table replaced just before a measurement leaves deferred kernel work behind it).
  for (int round = 0; round < rounds && !g_interrupted; ++round) {
    for (size_t step = 0; step < configs.size(); ++step) {
      Config& config = configs[(static_cast<size_t>(round) + step) % configs.size()];
      if (auto rules = applyInGateway(gw, config.script); !rules.ok()) {
        std::cerr << "ladder_packet_bench: " << rules.error().message << "\n";
        return 1;
      }
      Sample warmup;
      measureRtt(rtt_fd->get(), 0.1, warmup, 200);
      Sample sample;
      measureRtt(rtt_fd->get(), seconds, sample, 1000000);
      measureFlood(flood_fd->get(), responder, seconds, sample);
      std::printf(
          "round %d %-12s rtt median %7.1f us  p99 %7.1f us  (%zu, lost %zu)  flood sent %9.0f "
          "pps  received %9.0f pps\n",
          round + 1, config.name.c_str(), sample.rtt_median_us, sample.rtt_p99_us,
          sample.round_trips, sample.lost, sample.sent_pps, sample.received_pps);
      std::fflush(stdout);
      config.samples.push_back(sample);
    }
  }
  if (g_interrupted) {
    std::cerr << "ladder_packet_bench: interrupted\n";
    return 1;
  }

  std::printf("\nmedian over %d rounds of %.1f s each (round trips from 10.20.0.2 to %s via gw)\n",
              rounds, seconds, kServer);
  std::printf("%-12s %8s %10s %14s %12s %16s %16s\n", "config", "rules", "set elems",
              "rtt median us", "rtt p99 us", "flood sent pps", "flood recv pps");
  for (const Config& config : configs) {
    std::printf("%-12s %8zu %10zu %14.1f %12.1f %16.0f %16.0f\n", config.name.c_str(), config.rules,
                config.set_elements, medianOf(config.samples, &Sample::rtt_median_us),
                medianOf(config.samples, &Sample::rtt_p99_us),
                medianOf(config.samples, &Sample::sent_pps),
                medianOf(config.samples, &Sample::received_pps));
  }
  const auto reference = std::find_if(configs.begin(), configs.end(), [](const Config& config) {
    return config.name == "hosts_1";
  });
  if (reference != configs.end()) {
    std::printf("\npaired with hosts_1 in the same round: ratio median [min, max] over %d rounds\n",
                rounds);
    std::printf("%-12s %30s %30s\n", "config", "rtt median / hosts_1", "flood recv pps / hosts_1");
    for (const Config& config : configs) {
      const Ratios rtt = pairedRatios(config, *reference, &Sample::rtt_median_us);
      const Ratios pps = pairedRatios(config, *reference, &Sample::received_pps);
      std::printf("%-12s %10.3f [%6.3f, %6.3f] %11.3f [%6.3f, %6.3f]\n", config.name.c_str(),
                  rtt.median, rtt.min, rtt.max, pps.median, pps.min, pps.max);
    }
  }
  (void)applyInGateway(gw, "add table inet shadan\ndelete table inet shadan\n");
  return 0;
}

}  // namespace
}  // namespace shadan

int main(int argc, char** argv) {
  int rounds = 5;
  double seconds = 1.0;
  std::vector<std::string> only;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--rounds" && i + 1 < argc) {
      rounds = std::atoi(argv[++i]);
    } else if (arg == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (arg == "--configs" && i + 1 < argc) {
      std::string list = argv[++i];
      for (size_t start = 0; start <= list.size();) {
        const size_t comma = std::min(list.find(',', start), list.size());
        only.push_back(list.substr(start, comma - start));
        start = comma + 1;
      }
    } else {
      std::cerr << "usage: ladder_packet_bench [--rounds N] [--seconds S] [--configs A,B,...]\n";
      return 2;
    }
  }
  if (rounds < 1 || rounds > 100 || seconds < 0.1 || seconds > 30) {
    std::cerr << "ladder_packet_bench: --rounds 1..100, --seconds 0.1..30\n";
    return 2;
  }
  return shadan::run(rounds, seconds, only);
}
