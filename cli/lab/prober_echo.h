#pragma once

// Internals of ContinuousProber (prober.h): the far ends of its probes. Not a public interface.

#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "cli/lab/prober.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace shadan::prober_internal {

// Serves the far ends: accepts (and resets) TCP probe connections, echoes UDP probe tokens and
// echoes every byte of the flows' server ends. One thread for all of them, whatever namespace
// each socket was made in.
class EchoService {
 public:
  explicit EchoService(ProberOptions options);
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

  ProberOptions options_;
  std::vector<Socket> sockets_;
  UniqueFd epoll_;
  UniqueFd stop_event_;
  std::thread thread_;
};

}  // namespace shadan::prober_internal
