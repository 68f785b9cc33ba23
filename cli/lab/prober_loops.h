#pragma once

// Internals of ContinuousProber (prober.h), shared by prober.cc and prober_loops.cc only: the
// per-source-namespace probe loop and the echo thread. Not a public interface.

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
#include "common/result.h"
#include "common/unique_fd.h"

namespace shadan::prober_internal {

struct SockAddr {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family() const { return storage.ss_family; }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  void setPort(uint16_t port);
};

Result<SockAddr> parseSockAddr(const std::string& address, uint16_t port);
// The local port `fd` is bound to.
uint16_t boundPort(int fd);
// True if `from` holds the same address (port ignored) as `expected`.
bool sameAddress(const sockaddr_storage& from, const SockAddr& expected);
std::string errnoText(const std::string& what, int err);

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

// Serves the far ends: accepts (and resets) TCP probe connections, echoes UDP probe tokens and
// echoes every byte of the flows' server ends. One thread for all of them, whatever namespace
// each socket was made in.
class EchoService {
 public:
  EchoService();
  ~EchoService();
  EchoService(const EchoService&) = delete;
  EchoService& operator=(const EchoService&) = delete;

  // REQUIRES: before start(). Takes non-blocking sockets: a listening TCP socket, a bound UDP
  // socket, an accepted flow connection.
  void addListener(UniqueFd fd);
  void addUdpEcho(UniqueFd fd);
  void addFlowServer(UniqueFd fd);
  bool empty() const { return sockets_.empty(); }

  Status start();
  void stop();

 private:
  enum class Kind { kListener, kUdp, kFlow };
  struct Socket {
    Kind kind;
    UniqueFd fd;
    std::string out;  // flows: echo bytes the socket did not take yet
  };
  void loop();
  void onListener(Socket& socket);
  void onUdp(Socket& socket);
  void onFlow(size_t index, uint32_t events);

  std::vector<Socket> sockets_;
  UniqueFd epoll_;
  UniqueFd stop_event_;
  std::thread thread_;
};

}  // namespace shadan::prober_internal
