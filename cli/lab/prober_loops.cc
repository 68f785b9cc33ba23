#include "cli/lab/prober_loops.h"

#include <netinet/icmp6.h>
#include <netinet/ip_icmp.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>

namespace shadan::prober_internal {
namespace {

constexpr uint64_t kUdpMagic = 0x53484144414e5052ULL;  // "SHADANPR"
constexpr size_t kMaxFlowBacklog = 64 * 1024;          // unsent flow bytes before tokens fail
constexpr int kIcmpFilter = 1;                         // linux/icmp.h ICMP_FILTER (SOL_RAW)

// Errors of a send or connect that mean "the path refuses this", not "the probe could not run".
bool isPathFailure(int err) {
  return err == ENETUNREACH || err == EHOSTUNREACH || err == ECONNREFUSED || err == EPERM ||
         err == EACCES || err == ETIMEDOUT || err == ECONNRESET;
}

}  // namespace

// ---- ProbeLoop ---------------------------------------------------------------------------

struct ProbeLoop::InFlight {
  uint64_t ticket = 0;
  ProbeTime deadline;
  UniqueFd fd;            // tcp: the connecting socket
  uint16_t sequence = 0;  // icmp: the echo sequence number
};

struct ProbeLoop::PairState {
  LoopPair spec;
  UniqueFd udp;  // udp: this pair's socket
  ProbeTime next_send;
  uint16_t next_sequence = 0;
  std::vector<InFlight> in_flight;  // in send order
};

struct ProbeLoop::FlowState {
  Series* series = nullptr;
  UniqueFd client;
  ProbeTime next_send;
  std::vector<InFlight> in_flight;
  std::string out;       // tokens the socket did not take yet
  std::string received;  // echoed bytes not yet parsed
};

namespace {

uint64_t recordSent(Series& series, ProbeTime at) {
  std::lock_guard<std::mutex> lock(series.mutex);
  return series.timeline.sent(at);
}

void recordOutcome(Series& series, uint64_t ticket, ProbeOutcome outcome) {
  std::lock_guard<std::mutex> lock(series.mutex);
  series.timeline.completed(ticket, outcome);
}

// The next send time on the grid of `interval`; a loop late by a whole interval or more starts
// a new grid rather than sending a burst to catch up.
void scheduleNext(ProbeTime& next, ProbeTime now, std::chrono::microseconds interval) {
  next += interval;
  if (next <= now) next = now + interval;
}

}  // namespace

ProbeLoop::ProbeLoop(std::string netns, UniqueFd netns_fd, std::vector<LoopPair> pairs,
                     std::vector<LoopFlow> flows, ProberOptions options)
    : netns_(std::move(netns)), netns_fd_(std::move(netns_fd)), options_(options) {
  for (LoopPair& pair : pairs) pairs_.push_back(PairState{pair, UniqueFd(), {}, 0, {}});
  for (LoopFlow& flow : flows) {
    FlowState state;
    state.series = flow.series;
    state.client = std::move(flow.client);
    flows_.push_back(std::move(state));
  }
}

ProbeLoop::~ProbeLoop() { stop(); }

Status ProbeLoop::start() {
  std::promise<Status> ready;
  std::future<Status> started = ready.get_future();
  try {
    thread_ = std::thread([this, &ready] {
      Status prepared = prepare();
      const bool ok = prepared.ok();
      ready.set_value(std::move(prepared));
      if (ok) loop();
    });
  } catch (const std::exception& e) {
    return makeError(ErrorCode::kInternal,
                     "cannot start a probe thread for netns " + netns_ + ": " + e.what());
  }
  Status status = started.get();
  if (!status.ok()) thread_.join();
  return status;
}

void ProbeLoop::stop() {
  if (!thread_.joinable()) return;
  signalStop(stop_event_);
  thread_.join();
  for (PairState& pair : pairs_) pair.in_flight.clear();
  for (FlowState& flow : flows_) flow.client.reset();
}

Status ProbeLoop::prepare() {
  if (::setns(netns_fd_.get(), CLONE_NEWNET) != 0) {
    return makeError(ErrorCode::kKernel, errnoText("cannot enter netns " + netns_, errno));
  }
  raisePriority(options_);
  SHADAN_RETURN_IF_ERROR(makeLoopFds(epoll_, stop_event_));
  timer_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  if (!timer_.valid()) return makeError(ErrorCode::kIo, errnoText("timerfd_create", errno));
  SHADAN_RETURN_IF_ERROR(addToEpoll(epoll_.get(), timer_.get(), EPOLLIN, tag(kTimer)));

  const int buffer = 1 << 20;
  for (size_t i = 0; i < pairs_.size(); ++i) {
    PairState& pair = pairs_[i];
    const bool v6 = pair.spec.target.family() == AF_INET6;
    if (pair.spec.proto == ProbeProto::kIcmp) {
      UniqueFd& raw = v6 ? icmp6_ : icmp4_;
      if (raw.valid()) continue;
      raw.reset(::socket(v6 ? AF_INET6 : AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
                         v6 ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP}));
      if (!raw.valid()) {
        return makeError(ErrorCode::kIo, errnoText("pair '" + pair.spec.series->id +
                                                       "': raw ICMP socket in netns " + netns_,
                                                   errno));
      }
      // Only echo replies reach the socket: requests and other traffic are not ours to read.
      if (v6) {
        icmp6_filter filter;
        ICMP6_FILTER_SETBLOCKALL(&filter);
        ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &filter);
        ::setsockopt(raw.get(), IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof(filter));
      } else {
        const uint32_t blocked = ~(1U << ICMP_ECHOREPLY);
        ::setsockopt(raw.get(), SOL_RAW, kIcmpFilter, &blocked, sizeof(blocked));
      }
      ::setsockopt(raw.get(), SOL_SOCKET, SO_RCVBUF, &buffer, sizeof(buffer));
      SHADAN_RETURN_IF_ERROR(
          addToEpoll(epoll_.get(), raw.get(), EPOLLIN, tag(v6 ? kIcmp6 : kIcmp4)));
    } else if (pair.spec.proto == ProbeProto::kUdp) {
      pair.udp.reset(
          ::socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      if (!pair.udp.valid()) {
        return makeError(
            ErrorCode::kIo,
            errnoText("pair '" + pair.spec.series->id + "': UDP socket in netns " + netns_, errno));
      }
      SHADAN_RETURN_IF_ERROR(addToEpoll(epoll_.get(), pair.udp.get(), EPOLLIN, tag(kUdp, i)));
    }
  }
  for (size_t i = 0; i < flows_.size(); ++i) {
    SHADAN_RETURN_IF_ERROR(
        addToEpoll(epoll_.get(), flows_[i].client.get(), EPOLLIN | EPOLLRDHUP, tag(kFlow, i)));
  }
  // Spread the first sends over one interval so the pairs do not all fire at the same instant.
  const ProbeTime now = ProbeClock::now();
  const size_t total = pairs_.size() + flows_.size();
  for (size_t i = 0; i < total; ++i) {
    const auto offset = options_.interval * static_cast<int64_t>(i) / static_cast<int64_t>(total);
    (i < pairs_.size() ? pairs_[i].next_send : flows_[i - pairs_.size()].next_send) = now + offset;
  }
  return okStatus();
}

void ProbeLoop::loop() {
  for (;;) {
    armTimer(ProbeClock::now());
    if (!handleEvents(-1)) return;
    // Every answer that arrived before `now` is taken before anything is declared timed out
    // at `now`: a loop that was not scheduled for a while must not blame the path for it.
    const ProbeTime now = ProbeClock::now();
    if (!handleEvents(0)) return;
    expire(now);
    sendDue(ProbeClock::now());
  }
}

bool ProbeLoop::handleEvents(int timeout_ms) {
  epoll_event events[kMaxEvents];
  for (;;) {
    const int n = ::epoll_wait(epoll_.get(), events, kMaxEvents, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;  // cannot happen with a valid epoll fd; ending the loop keeps the results
    }
    for (int i = 0; i < n; ++i) {
      const uint64_t data = events[i].data.u64;
      switch (tagKind(data)) {
        case kStop:
          return false;
        case kTimer: {
          uint64_t expirations;
          (void)!::read(timer_.get(), &expirations, sizeof(expirations));
          break;
        }
        case kTcp:
          onTcp(tagIndex(data), tagTicket(data), events[i].events);
          break;
        case kIcmp4:
          drainIcmp(icmp4_.get(), false);
          break;
        case kIcmp6:
          drainIcmp(icmp6_.get(), true);
          break;
        case kUdp:
          drainUdp(tagIndex(data));
          break;
        case kFlow:
          onFlow(tagIndex(data), events[i].events);
          break;
        default:
          break;
      }
    }
    if (n < kMaxEvents) return true;
    timeout_ms = 0;  // a full batch: more may be waiting
  }
}

void ProbeLoop::armTimer(ProbeTime now) {
  ProbeTime wake = now + std::chrono::seconds(1);
  for (const PairState& pair : pairs_) {
    wake = std::min(wake, pair.next_send);
    if (!pair.in_flight.empty()) wake = std::min(wake, pair.in_flight.front().deadline);
  }
  for (const FlowState& flow : flows_) {
    if (!flow.client.valid()) continue;
    wake = std::min(wake, flow.next_send);
    if (!flow.in_flight.empty()) wake = std::min(wake, flow.in_flight.front().deadline);
  }
  const auto since_epoch =
      std::chrono::duration_cast<std::chrono::nanoseconds>(wake.time_since_epoch()).count();
  itimerspec spec{};
  spec.it_value.tv_sec = static_cast<time_t>(since_epoch / 1000000000);
  spec.it_value.tv_nsec = static_cast<long>(since_epoch % 1000000000);
  // A zero it_value disarms the timer; a time in the past fires at once, which is what we want.
  if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;
  ::timerfd_settime(timer_.get(), TFD_TIMER_ABSTIME, &spec, nullptr);
}

void ProbeLoop::sendDue(ProbeTime now) {
  for (PairState& pair : pairs_) {
    if (pair.next_send > now) continue;
    switch (pair.spec.proto) {
      case ProbeProto::kTcp:
        sendTcp(pair);
        break;
      case ProbeProto::kIcmp:
        sendIcmp(pair);
        break;
      case ProbeProto::kUdp:
        sendUdp(pair);
        break;
    }
    scheduleNext(pair.next_send, now, options_.interval);
  }
  for (FlowState& flow : flows_) {
    if (!flow.client.valid() || flow.next_send > now) continue;
    sendFlow(flow);
    scheduleNext(flow.next_send, now, options_.interval);
  }
}

void ProbeLoop::sendTcp(PairState& pair) {
  Series& series = *pair.spec.series;
  const SockAddr& target = pair.spec.target;
  UniqueFd fd(::socket(target.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  const ProbeTime at = ProbeClock::now();
  const uint64_t ticket = recordSent(series, at);
  if (!fd.valid()) {
    recordOutcome(series, ticket, ProbeOutcome::kError);
    return;
  }
  if (::connect(fd.get(), target.get(), target.length) == 0) {
    recordOutcome(series, ticket, ProbeOutcome::kOk);
    closeWithReset(fd);
    return;
  }
  const int err = errno;
  if (err != EINPROGRESS) {
    recordOutcome(series, ticket,
                  isPathFailure(err) ? ProbeOutcome::kFailed : ProbeOutcome::kError);
    return;
  }
  const size_t index = static_cast<size_t>(&pair - pairs_.data());
  if (!addToEpoll(epoll_.get(), fd.get(), EPOLLOUT, tag(kTcp, index, ticket)).ok()) {
    recordOutcome(series, ticket, ProbeOutcome::kError);
    return;
  }
  pair.in_flight.push_back(InFlight{ticket, at + options_.timeout, std::move(fd), 0});
}

void ProbeLoop::onTcp(uint32_t index, uint64_t ticket, uint32_t events) {
  if (index >= pairs_.size()) return;
  PairState& pair = pairs_[index];
  auto it = std::find_if(pair.in_flight.begin(), pair.in_flight.end(),
                         [&](const InFlight& probe) { return probe.ticket == ticket; });
  if (it == pair.in_flight.end()) return;  // already timed out
  int error = 0;
  socklen_t length = sizeof(error);
  if (::getsockopt(it->fd.get(), SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
  const bool connected = error == 0 && (events & EPOLLOUT) != 0;
  recordOutcome(*pair.spec.series, ticket, connected ? ProbeOutcome::kOk : ProbeOutcome::kFailed);
  closeWithReset(it->fd);
  pair.in_flight.erase(it);
}

void ProbeLoop::sendIcmp(PairState& pair) {
  Series& series = *pair.spec.series;
  const SockAddr& target = pair.spec.target;
  const bool v6 = target.family() == AF_INET6;
  const uint16_t sequence = pair.next_sequence++;
  uint8_t packet[24] = {};
  packet[0] = static_cast<uint8_t>(v6 ? int{ICMP6_ECHO_REQUEST} : int{ICMP_ECHO});
  packet[4] = static_cast<uint8_t>(pair.spec.echo_id >> 8);
  packet[5] = static_cast<uint8_t>(pair.spec.echo_id & 0xff);
  packet[6] = static_cast<uint8_t>(sequence >> 8);
  packet[7] = static_cast<uint8_t>(sequence & 0xff);
  std::memcpy(packet + 8, "shadan-prober-\n", 16);
  if (!v6) {
    // The kernel computes the ICMPv6 checksum itself; ICMPv4's is ours.
    const uint16_t checksum = internetChecksum(packet, sizeof(packet));
    packet[2] = static_cast<uint8_t>(checksum >> 8);
    packet[3] = static_cast<uint8_t>(checksum & 0xff);
  }
  const int fd = v6 ? icmp6_.get() : icmp4_.get();
  const ProbeTime at = ProbeClock::now();
  const uint64_t ticket = recordSent(series, at);
  if (::sendto(fd, packet, sizeof(packet), 0, target.get(), target.length) < 0) {
    recordOutcome(series, ticket,
                  isPathFailure(errno) ? ProbeOutcome::kFailed : ProbeOutcome::kError);
    return;
  }
  pair.in_flight.push_back(InFlight{ticket, at + options_.timeout, UniqueFd(), sequence});
}

void ProbeLoop::drainIcmp(int fd, bool v6) {
  uint8_t buffer[2048];
  for (;;) {
    sockaddr_storage from{};
    socklen_t from_length = sizeof(from);
    const ssize_t n =
        ::recvfrom(fd, buffer, sizeof(buffer), 0, reinterpret_cast<sockaddr*>(&from), &from_length);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // EAGAIN: drained
    }
    // IPv4 raw sockets deliver the IP header too.
    const size_t offset = v6 ? 0 : (n >= 1 ? static_cast<size_t>(buffer[0] & 0x0f) * 4 : 0);
    if (static_cast<size_t>(n) < offset + 8) continue;
    const uint8_t* icmp = buffer + offset;
    if (icmp[0] != (v6 ? int{ICMP6_ECHO_REPLY} : int{ICMP_ECHOREPLY})) continue;
    const uint16_t id = static_cast<uint16_t>(icmp[4] << 8 | icmp[5]);
    const uint16_t sequence = static_cast<uint16_t>(icmp[6] << 8 | icmp[7]);
    for (PairState& pair : pairs_) {
      if (pair.spec.proto != ProbeProto::kIcmp || pair.spec.echo_id != id ||
          !sameAddress(from, pair.spec.target)) {
        continue;
      }
      auto it = std::find_if(pair.in_flight.begin(), pair.in_flight.end(),
                             [&](const InFlight& probe) { return probe.sequence == sequence; });
      if (it == pair.in_flight.end()) break;  // late: that probe already failed
      recordOutcome(*pair.spec.series, it->ticket, ProbeOutcome::kOk);
      pair.in_flight.erase(it);
      break;
    }
  }
}

void ProbeLoop::sendUdp(PairState& pair) {
  Series& series = *pair.spec.series;
  const ProbeTime at = ProbeClock::now();
  const uint64_t ticket = recordSent(series, at);
  uint64_t token[2] = {kUdpMagic, ticket};
  if (::sendto(pair.udp.get(), token, sizeof(token), 0, pair.spec.target.get(),
               pair.spec.target.length) < 0) {
    recordOutcome(series, ticket,
                  isPathFailure(errno) ? ProbeOutcome::kFailed : ProbeOutcome::kError);
    return;
  }
  pair.in_flight.push_back(InFlight{ticket, at + options_.timeout, UniqueFd(), 0});
}

void ProbeLoop::drainUdp(uint32_t index) {
  if (index >= pairs_.size()) return;
  PairState& pair = pairs_[index];
  for (;;) {
    uint64_t token[2] = {};
    sockaddr_storage from{};
    socklen_t from_length = sizeof(from);
    const ssize_t n = ::recvfrom(pair.udp.get(), token, sizeof(token), 0,
                                 reinterpret_cast<sockaddr*>(&from), &from_length);
    if (n < 0) {
      if (errno == EINTR || errno == ECONNREFUSED) continue;
      return;
    }
    if (n != sizeof(token) || token[0] != kUdpMagic || !sameAddress(from, pair.spec.target)) {
      continue;
    }
    const uint64_t ticket = token[1];
    auto it = std::find_if(pair.in_flight.begin(), pair.in_flight.end(),
                           [&](const InFlight& probe) { return probe.ticket == ticket; });
    if (it == pair.in_flight.end()) continue;
    recordOutcome(*pair.spec.series, ticket, ProbeOutcome::kOk);
    pair.in_flight.erase(it);
  }
}

void ProbeLoop::sendFlow(FlowState& flow) {
  Series& series = *flow.series;
  const ProbeTime at = ProbeClock::now();
  const uint64_t ticket = recordSent(series, at);
  if (flow.out.size() > kMaxFlowBacklog) {
    // The connection has not taken our bytes for a long while: this token cannot even leave.
    recordOutcome(series, ticket, ProbeOutcome::kFailed);
    return;
  }
  flow.out += std::to_string(ticket) + "\n";
  flow.in_flight.push_back(InFlight{ticket, at + options_.timeout, UniqueFd(), 0});
  const ssize_t n =
      ::send(flow.client.get(), flow.out.data(), flow.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n > 0) {
    flow.out.erase(0, static_cast<size_t>(n));
  } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
    closeFlow(flow, ProbeClock::now());
  }
}

void ProbeLoop::onFlow(uint32_t index, uint32_t events) {
  if (index >= flows_.size()) return;
  FlowState& flow = flows_[index];
  if (!flow.client.valid()) return;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::recv(flow.client.get(), buffer, sizeof(buffer), MSG_DONTWAIT);
    if (n > 0) {
      flow.received.append(buffer, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
    // End of stream or an error (reset): the connection is gone. Echoes already read count.
    events |= EPOLLHUP;
    break;
  }
  size_t start = 0;
  for (size_t end; (end = flow.received.find('\n', start)) != std::string::npos; start = end + 1) {
    const uint64_t ticket = std::strtoull(flow.received.c_str() + start, nullptr, 10);
    auto it = std::find_if(flow.in_flight.begin(), flow.in_flight.end(),
                           [&](const InFlight& probe) { return probe.ticket == ticket; });
    if (it == flow.in_flight.end()) continue;  // late: that token already failed
    recordOutcome(*flow.series, ticket, ProbeOutcome::kOk);
    flow.in_flight.erase(it);
  }
  flow.received.erase(0, start);
  if ((events & (EPOLLHUP | EPOLLERR)) != 0) closeFlow(flow, ProbeClock::now());
}

void ProbeLoop::closeFlow(FlowState& flow, ProbeTime now) {
  Series& series = *flow.series;
  {
    std::lock_guard<std::mutex> lock(series.mutex);
    series.closed = true;
    series.closed_at = now;
    for (const InFlight& probe : flow.in_flight) {
      series.timeline.completed(probe.ticket, ProbeOutcome::kFailed);
    }
    // Nothing was in flight to fail: the close itself is the first failure.
    if (flow.in_flight.empty()) {
      series.timeline.completed(series.timeline.sent(now), ProbeOutcome::kFailed);
    }
  }
  flow.in_flight.clear();
  flow.client.reset();  // also leaves the epoll set
}

void ProbeLoop::expire(ProbeTime now) {
  for (PairState& pair : pairs_) {
    auto& in_flight = pair.in_flight;
    size_t done = 0;
    while (done < in_flight.size() && in_flight[done].deadline <= now) {
      recordOutcome(*pair.spec.series, in_flight[done].ticket, ProbeOutcome::kFailed);
      if (in_flight[done].fd.valid()) closeWithReset(in_flight[done].fd);
      ++done;
    }
    in_flight.erase(in_flight.begin(), in_flight.begin() + static_cast<std::ptrdiff_t>(done));
  }
  for (FlowState& flow : flows_) {
    auto& in_flight = flow.in_flight;
    size_t done = 0;
    while (done < in_flight.size() && in_flight[done].deadline <= now) {
      recordOutcome(*flow.series, in_flight[done].ticket, ProbeOutcome::kFailed);
      ++done;
    }
    in_flight.erase(in_flight.begin(), in_flight.begin() + static_cast<std::ptrdiff_t>(done));
  }
}

}  // namespace shadan::prober_internal
