#pragma once

// Internals of ContinuousProber (prober.h): the probe loop of one source namespace and the
// records it writes. Not a public interface.

#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cli/lab/prober.h"
#include "cli/lab/prober_sockets.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace shadan::prober_internal {

// One pair or flow as the results see it. The loop that probes it writes under `mutex`;
// results() reads under it.
struct Series {
  std::string id;
  ProbeProto proto = ProbeProto::kTcp;
  uint16_t port = 0;
  mutable std::mutex mutex;
  ProbeTimeline timeline;
  bool closed = false;
  std::optional<ProbeTime> closed_at;
};

// What a probe loop needs to probe one pair.
struct LoopPair {
  Series* series = nullptr;
  ProbeProto proto = ProbeProto::kTcp;
  SockAddr target;       // port resolved
  uint16_t echo_id = 0;  // icmp: this pair's echo identifier
};

// One established flow: its client end, already connected (in the loop's namespace).
struct LoopFlow {
  Series* series = nullptr;
  UniqueFd client;
};

// Probes every pair and flow of one source namespace from one thread that joined it.
class ProbeLoop {
 public:
  // `netns_fd`: /run/netns/NAME opened by the caller.
  ProbeLoop(std::string netns, UniqueFd netns_fd, std::vector<LoopPair> pairs,
            std::vector<LoopFlow> flows, ProberOptions options);
  ~ProbeLoop();
  ProbeLoop(const ProbeLoop&) = delete;
  ProbeLoop& operator=(const ProbeLoop&) = delete;

  // Starts the thread and returns once it probes, or its error (then no thread runs).
  Status start();
  // Ends the thread and joins it. Idempotent.
  void stop();

 private:
  struct InFlight;
  struct PairState;
  struct FlowState;

  Status prepare();  // on the thread, after setns
  void loop();
  // Handles what epoll reports within `timeout_ms` (-1: wait for something); false: stop.
  bool handleEvents(int timeout_ms);
  void armTimer(ProbeTime now);
  void sendDue(ProbeTime now);
  void sendTcp(PairState& pair);
  void sendIcmp(PairState& pair);
  void sendUdp(PairState& pair);
  void sendFlow(FlowState& flow);
  void onTcp(uint32_t index, uint64_t ticket, uint32_t events);
  void drainIcmp(int fd, bool v6);
  void drainUdp(uint32_t index);
  void onFlow(uint32_t index, uint32_t events);
  void closeFlow(FlowState& flow, ProbeTime now);
  void expire(ProbeTime now);

  std::string netns_;
  UniqueFd netns_fd_;
  ProberOptions options_;
  std::vector<PairState> pairs_;
  std::vector<FlowState> flows_;
  UniqueFd epoll_;
  UniqueFd timer_;
  UniqueFd stop_event_;
  UniqueFd icmp4_;
  UniqueFd icmp6_;
  std::thread thread_;
};

}  // namespace shadan::prober_internal
