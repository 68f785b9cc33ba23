#pragma once

// Continuous probes between lab namespaces for drills (issue #17, "Measurement"): every pair is
// probed every `interval` (2 ms) until stop(), and each pair keeps a timeline of when it went
// from open to cut and back (probe_timeline.h), so a drill can say "the first dropped probe was
// sent 7 ms after the order was dispatched". Established flows are held across the change and
// say whether it cut them.
//
// How it probes (real packets, in-process, no ping/nc):
//   tcp   a non-blocking connect from `from_netns` to to_address:port; open if the handshake
//         completes within `timeout`. The prober listens there in `to_netns` (accept and close),
//         unless the pair says something else already listens (listen = false).
//   udp   an 8-byte token from a connected socket in `from_netns`; open if the prober's echo
//         socket in `to_netns` sends it back within `timeout`.
//   icmp  an echo request (ICMPv6 for a v6 address) from a raw socket in `from_netns`, with an
//         identifier of the pair's own; open if the matching reply from to_address comes back
//         within `timeout`. `to_netns` is not used.
//   flow  one TCP connection opened by start() from `from_netns` to the prober's echo server in
//         `to_netns`; every `interval` a token goes through it and must come back within
//         `timeout`. A reset or close of the connection cuts it for good (closed = true).
//         TCP retransmits a token the path dropped, so a token sent shortly before a restore may
//         still come back in time: a flow's return to open is precise to `timeout`.
// A probe that fails counts as failed at the time it was SENT (the state changes there). A
// probe that could not run at all (no socket: descriptors exhausted) is an error, not a cut.
//
// Threads: one per source namespace (it setns(2)s into it once and multiplexes all its pairs and
// flows with epoll and a timerfd), plus one echo thread serving every listener, echo socket and
// flow server (a socket keeps its namespace, so one thread serves them all). Dozens of pairs
// cost a handful of threads. Memory per pair is bounded by its transitions and probes in flight.
// The threads run at the lowest real-time priority unless options.realtime is false, so a busy
// machine does not stretch the interval; results() reports the longest gap actually seen.
// Forking from this process while it probes (ProcessCommandRunner) can still stall every
// thread for a few milliseconds: max_send_gap shows it.
//
// Needs root (namespaces, raw sockets). Thread-safe: mark(), results(), firstChangeAfter() may
// be called from any thread while the probes run; start() and stop() from one thread.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/lab/probe_timeline.h"
#include "common/result.h"

namespace shadan {

enum class ProbeProto { kTcp, kUdp, kIcmp };
const char* probeProtoName(ProbeProto proto);  // "tcp" | "udp" | "icmp"

struct ProbePair {
  std::string id;          // unique among the pairs and flows of one prober; names it in results
  std::string from_netns;  // a name under /run/netns (as `ip netns` makes them)
  std::string to_netns;    // tcp/udp with listen: where the prober listens; else may be empty
  std::string to_address;  // an IPv4 or IPv6 address in text form
  ProbeProto proto = ProbeProto::kTcp;
  uint16_t port = 0;   // tcp/udp: 0 = a free port the prober picks; icmp: must be 0
  bool listen = true;  // tcp/udp: false = a service already listens at the port (port != 0)
};

// An established TCP connection to hold across a change (to_netns is where its server lives).
struct ProbeFlow {
  std::string id;
  std::string from_netns;
  std::string to_netns;
  std::string to_address;
  uint16_t port = 0;  // 0: a free port
};

struct ProberOptions {
  // Time between two probes of one pair (or tokens of one flow). (0, 1 s].
  std::chrono::microseconds interval{2000};
  // A probe not answered by then failed. [1 ms, 10 s]. In flight per pair: timeout / interval.
  std::chrono::milliseconds timeout{30};
  // How long start() waits for each flow's connection. [1 ms, 60 s].
  std::chrono::milliseconds flow_connect_timeout{3000};
  // Run the probe and echo threads at the lowest real-time priority (SCHED_FIFO 1) so a busy
  // machine does not stretch the interval; best effort, needs root.
  bool realtime = true;
};

// What one pair or flow saw. sent >= ok + failed + errors: probes still in flight at stop()
// have no outcome.
struct ProbeSeries {
  std::string id;
  ProbeProto proto = ProbeProto::kTcp;  // kTcp for flows
  uint16_t port = 0;                    // the port probed (a free port, once picked)
  std::vector<StateChange> transitions;
  uint64_t sent = 0;
  uint64_t ok = 0;
  uint64_t failed = 0;
  uint64_t errors = 0;
  std::chrono::nanoseconds max_send_gap{0};
  std::optional<ProbeTime> first_sent;
  std::optional<ProbeTime> last_sent;
  bool truncated = false;  // more transitions than kept (probe_timeline.h)
  // Flows only: the connection was reset or closed (it never comes back), and when that was seen.
  bool closed = false;
  std::optional<ProbeTime> closed_at;
};

struct ProberMark {
  std::string label;
  ProbeTime at;
};

struct ProberResults {
  std::vector<ProbeSeries> pairs;  // in the order given to start()
  std::vector<ProbeSeries> flows;  // likewise
  std::vector<ProberMark> marks;   // in the order marked
  const ProbeSeries* find(std::string_view id) const;
};

// Checks pairs, flows and options without touching the system: every error names the pair or
// flow (by id and position) and the field. start() runs this first.
Status validateProbePlan(const std::vector<ProbePair>& pairs, const std::vector<ProbeFlow>& flows,
                         const ProberOptions& options);

class ContinuousProber {
 public:
  ContinuousProber();
  // Stops (and joins) everything still running.
  ~ContinuousProber();
  ContinuousProber(const ContinuousProber&) = delete;
  ContinuousProber& operator=(const ContinuousProber&) = delete;

  // Opens the listeners and flows, starts the threads and returns once every pair is being
  // probed. On error nothing is left running or open, and the error names the pair or flow and
  // the namespace. At most once per object (a second call is an error).
  Status start(std::vector<ProbePair> pairs, std::vector<ProbeFlow> flows = {},
               ProberOptions options = {});
  // Records `label` at the current time and returns that time (to compare with transitions).
  ProbeTime mark(std::string label);
  // Stops probing, joins every thread and closes every socket. Results stay. Idempotent.
  void stop();
  bool running() const;

  // A snapshot, consistent per pair; may be taken while probing.
  ProberResults results() const;
  // The first change of pair or flow `id` to `state` at or after `after` (see
  // ProbeTimeline::firstChangeAfter for `hold`); nullopt if none yet or no such id.
  std::optional<ProbeTime> firstChangeAfter(
      std::string_view id, ProbeTime after, PathState state,
      std::chrono::nanoseconds hold = std::chrono::nanoseconds::zero()) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace shadan
