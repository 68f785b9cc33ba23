#include "cli/lab/prober.h"

#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <set>
#include <tuple>

#include "cli/lab/netns.h"
#include "cli/lab/prober_echo.h"
#include "cli/lab/prober_loops.h"
#include "cli/lab/prober_sockets.h"
#include "common/open_files.h"

namespace shadan {

using prober_internal::boundPort;
using prober_internal::EchoService;
using prober_internal::errnoText;
using prober_internal::LoopFlow;
using prober_internal::LoopPair;
using prober_internal::parseSockAddr;
using prober_internal::ProbeLoop;
using prober_internal::Series;
using prober_internal::SockAddr;

namespace {

constexpr size_t kMaxProbes = 4096;  // pairs + flows; the loops index them in 16 bits

bool validNetnsName(const std::string& name) {
  return !name.empty() && name.size() <= 255 && name.find('/') == std::string::npos &&
         name != "." && name != "..";
}

std::string pairName(size_t index, const std::string& id) {
  return "pair " + std::to_string(index) + " ('" + id + "')";
}
std::string flowName(size_t index, const std::string& id) {
  return "flow " + std::to_string(index) + " ('" + id + "')";
}

bool needsListenerNetns(const ProbePair& pair) {
  return pair.proto != ProbeProto::kIcmp && pair.listen;
}

// ICMP echo identifiers: one per pair, process-wide, never the pid's (icmpEcho in probe.cc uses
// that one), so concurrent probers and one-shot probes never take each other's replies.
uint16_t nextIcmpId() {
  static std::atomic<uint32_t> next{static_cast<uint32_t>(::getpid()) * 2654435761U >> 16};
  for (;;) {
    const auto id = static_cast<uint16_t>(next.fetch_add(1));
    if (id != static_cast<uint16_t>(::getpid())) return id;
  }
}

// Refuses a plan whose sockets would not fit under RLIMIT_NOFILE, instead of turning the
// missing descriptors into probe errors halfway through a drill.
Status checkDescriptorBudget(const std::vector<ProbePair>& pairs, size_t flows,
                             const ProberOptions& options, size_t loops) {
  const uint64_t in_flight_per_pair =
      static_cast<uint64_t>(std::chrono::microseconds(options.timeout) / options.interval) + 2;
  uint64_t needed = 64 + 5 * loops + 3 * flows;
  for (const ProbePair& pair : pairs) {
    if (pair.proto == ProbeProto::kTcp) needed += in_flight_per_pair;
    needed += pair.listen && pair.proto != ProbeProto::kIcmp ? 2 : 1;
  }
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return okStatus();
  const uint64_t available =
      limit.rlim_cur == RLIM_INFINITY
          ? UINT64_MAX
          : static_cast<uint64_t>(limit.rlim_cur) - openFileDescriptorCount();
  if (needed > available) {
    return makeError(ErrorCode::kIo, "the probes need about " + std::to_string(needed) +
                                         " file descriptors and only " + std::to_string(available) +
                                         " are left under RLIMIT_NOFILE: raise it (ulimit -n) "
                                         "or probe fewer pairs");
  }
  return okStatus();
}

// A listening (tcp) or bound (udp) socket in `netns` at address:port, non-blocking.
Result<UniqueFd> bindIn(const std::string& netns, const SockAddr& address, ProbeProto proto) {
  const bool tcp = proto != ProbeProto::kUdp;
  SHADAN_ASSIGN_OR_RETURN(
      auto fd,
      socketInNetns(netns, address.family(), (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK, 0));
  const int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (address.family() == AF_INET6) {
    ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  }
  if (::bind(fd.get(), address.get(), address.length) != 0) {
    return makeError(ErrorCode::kIo, errnoText("bind in netns " + netns, errno));
  }
  if (tcp && ::listen(fd.get(), 4096) != 0) {
    return makeError(ErrorCode::kIo, errnoText("listen in netns " + netns, errno));
  }
  return fd;
}

bool waitFor(int fd, short events, ProbeTime deadline) {
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - ProbeClock::now());
    pollfd entry{fd, events, 0};
    const int ready = ::poll(&entry, 1, left.count() > 0 ? static_cast<int>(left.count()) : 0);
    if (ready > 0) return true;
    if (ready == 0 || errno != EINTR) return false;
  }
}

struct OpenedFlow {
  UniqueFd client;
  UniqueFd server;
  uint16_t port = 0;
};

// Opens one flow: a listener in to_netns, a connection from from_netns, the accepted end.
Result<OpenedFlow> openFlow(const ProbeFlow& flow, std::chrono::milliseconds timeout) {
  SHADAN_ASSIGN_OR_RETURN(auto target, parseSockAddr(flow.to_address, flow.port));
  SHADAN_ASSIGN_OR_RETURN(auto listener, bindIn(flow.to_netns, target, ProbeProto::kTcp));
  OpenedFlow opened;
  opened.port = boundPort(listener.get());
  target.setPort(opened.port);
  SHADAN_ASSIGN_OR_RETURN(opened.client, socketInNetns(flow.from_netns, target.family(),
                                                       SOCK_STREAM | SOCK_NONBLOCK, 0));
  const auto deadline = ProbeClock::now() + timeout;
  const std::string path = flow.to_address + " port " + std::to_string(opened.port);
  if (::connect(opened.client.get(), target.get(), target.length) != 0) {
    if (errno != EINPROGRESS) {
      return makeError(ErrorCode::kUnavailable, errnoText("cannot connect to " + path, errno));
    }
    int error = 0;
    socklen_t length = sizeof(error);
    if (!waitFor(opened.client.get(), POLLOUT, deadline)) {
      return makeError(ErrorCode::kUnavailable, "cannot connect to " + path + ": timed out");
    }
    ::getsockopt(opened.client.get(), SOL_SOCKET, SO_ERROR, &error, &length);
    if (error != 0) {
      return makeError(ErrorCode::kUnavailable, errnoText("cannot connect to " + path, error));
    }
  }
  if (!waitFor(listener.get(), POLLIN, deadline)) {
    return makeError(ErrorCode::kUnavailable, "the connection to " + path + " was not accepted");
  }
  opened.server.reset(::accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  if (!opened.server.valid()) {
    return makeError(ErrorCode::kUnavailable, errnoText("accept on " + path, errno));
  }
  // Tokens go one by one every interval: Nagle would hold each behind the last one's ACK.
  const int one = 1;
  ::setsockopt(opened.client.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  ::setsockopt(opened.server.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return opened;
}

ProbeSeries snapshot(const Series& series) {
  std::lock_guard<std::mutex> lock(series.mutex);
  const ProbeTimeline& timeline = series.timeline;
  ProbeSeries out;
  out.id = series.id;
  out.proto = series.proto;
  out.port = series.port;
  out.transitions = timeline.transitions();
  out.sent = timeline.sentCount();
  out.ok = timeline.okCount();
  out.failed = timeline.failedCount();
  out.errors = timeline.errorCount();
  out.max_send_gap = timeline.maxSendGap();
  out.first_sent = timeline.firstSent();
  out.last_sent = timeline.lastSent();
  out.truncated = timeline.truncated();
  out.closed = series.closed;
  out.closed_at = series.closed_at;
  return out;
}

}  // namespace

const char* probeProtoName(ProbeProto proto) {
  switch (proto) {
    case ProbeProto::kTcp:
      return "tcp";
    case ProbeProto::kUdp:
      return "udp";
    case ProbeProto::kIcmp:
      return "icmp";
  }
  return "?";
}

const ProbeSeries* ProberResults::find(std::string_view id) const {
  for (const auto* list : {&pairs, &flows}) {
    for (const ProbeSeries& series : *list) {
      if (series.id == id) return &series;
    }
  }
  return nullptr;
}

Status validateProbePlan(const std::vector<ProbePair>& pairs, const std::vector<ProbeFlow>& flows,
                         const ProberOptions& options) {
  using std::chrono::microseconds;
  if (options.interval <= microseconds::zero() || options.interval > std::chrono::seconds(1)) {
    return makeError(ErrorCode::kInvalidArgument, "prober interval must be in (0, 1 s]");
  }
  if (options.timeout < std::chrono::milliseconds(1) ||
      options.timeout > std::chrono::seconds(10)) {
    return makeError(ErrorCode::kInvalidArgument, "prober timeout must be in [1 ms, 10 s]");
  }
  if (options.flow_connect_timeout < std::chrono::milliseconds(1) ||
      options.flow_connect_timeout > std::chrono::seconds(60)) {
    return makeError(ErrorCode::kInvalidArgument,
                     "prober flow_connect_timeout must be in [1 ms, 60 s]");
  }
  if (pairs.empty() && flows.empty()) {
    return makeError(ErrorCode::kInvalidArgument, "nothing to probe: no pairs and no flows");
  }
  if (pairs.size() + flows.size() > kMaxProbes) {
    return makeError(ErrorCode::kInvalidArgument,
                     "too many pairs and flows: at most " + std::to_string(kMaxProbes));
  }
  std::set<std::string> ids;
  auto checkCommon = [&](const std::string& what, const std::string& id,
                         const std::string& from_netns, const std::string& to_address) -> Status {
    if (id.empty()) return makeError(ErrorCode::kInvalidArgument, what + ": id is empty");
    if (!ids.insert(id).second) {
      return makeError(ErrorCode::kInvalidArgument, what + ": id is used twice");
    }
    if (!validNetnsName(from_netns)) {
      return makeError(ErrorCode::kInvalidArgument,
                       what + ": from_netns '" + from_netns + "' is not a netns name");
    }
    if (!parseSockAddr(to_address, 0).ok()) {
      return makeError(ErrorCode::kInvalidArgument,
                       what + ": to_address '" + to_address + "' is not an IP address");
    }
    return okStatus();
  };
  for (size_t i = 0; i < pairs.size(); ++i) {
    const ProbePair& pair = pairs[i];
    const std::string what = pairName(i, pair.id);
    SHADAN_RETURN_IF_ERROR(checkCommon(what, pair.id, pair.from_netns, pair.to_address));
    if (pair.proto == ProbeProto::kIcmp && pair.port != 0) {
      return makeError(ErrorCode::kInvalidArgument, what + ": port must be 0 for icmp");
    }
    if (needsListenerNetns(pair) && !validNetnsName(pair.to_netns)) {
      return makeError(ErrorCode::kInvalidArgument,
                       what + ": to_netns '" + pair.to_netns + "' is not a netns name");
    }
    if (pair.proto != ProbeProto::kIcmp && !pair.listen && pair.port == 0) {
      return makeError(ErrorCode::kInvalidArgument,
                       what + ": port must be set when the prober does not listen");
    }
  }
  for (size_t i = 0; i < flows.size(); ++i) {
    const ProbeFlow& flow = flows[i];
    const std::string what = flowName(i, flow.id);
    SHADAN_RETURN_IF_ERROR(checkCommon(what, flow.id, flow.from_netns, flow.to_address));
    if (!validNetnsName(flow.to_netns)) {
      return makeError(ErrorCode::kInvalidArgument,
                       what + ": to_netns '" + flow.to_netns + "' is not a netns name");
    }
  }
  return okStatus();
}

struct ContinuousProber::Impl {
  Status setUp(const std::vector<ProbePair>& pairs, const std::vector<ProbeFlow>& flows,
               const ProberOptions& options);
  void tearDown();
  const Series* find(std::string_view id) const;

  bool started = false;
  std::atomic<bool> running{false};
  mutable std::mutex marks_mutex;
  std::vector<ProberMark> marks;
  // Written by start() before any thread runs, then only the Series contents change.
  std::vector<std::unique_ptr<Series>> pairs;
  std::vector<std::unique_ptr<Series>> flows;
  std::unique_ptr<EchoService> echo;
  std::vector<std::unique_ptr<ProbeLoop>> loops;
};

Status ContinuousProber::Impl::setUp(const std::vector<ProbePair>& plan_pairs,
                                     const std::vector<ProbeFlow>& plan_flows,
                                     const ProberOptions& options) {
  // Group by source namespace, in order of first appearance: one loop each.
  std::vector<std::string> sources;
  std::map<std::string, size_t> source_index;
  auto sourceOf = [&](const std::string& netns) {
    auto [it, added] = source_index.emplace(netns, sources.size());
    if (added) sources.push_back(netns);
    return it->second;
  };
  for (const ProbePair& pair : plan_pairs) sourceOf(pair.from_netns);
  for (const ProbeFlow& flow : plan_flows) sourceOf(flow.from_netns);

  for (size_t i = 0; i < plan_pairs.size(); ++i) {
    const ProbePair& pair = plan_pairs[i];
    for (const std::string* netns : {&pair.from_netns, &pair.to_netns}) {
      if (netns == &pair.to_netns && !needsListenerNetns(pair)) continue;
      if (!netnsExists(*netns)) {
        return makeError(ErrorCode::kNotFound,
                         pairName(i, pair.id) + ": netns '" + *netns + "' does not exist");
      }
    }
  }
  for (size_t i = 0; i < plan_flows.size(); ++i) {
    for (const std::string* netns : {&plan_flows[i].from_netns, &plan_flows[i].to_netns}) {
      if (!netnsExists(*netns)) {
        return makeError(ErrorCode::kNotFound,
                         flowName(i, plan_flows[i].id) + ": netns '" + *netns + "' does not exist");
      }
    }
  }
  SHADAN_RETURN_IF_ERROR(
      checkDescriptorBudget(plan_pairs, plan_flows.size(), options, sources.size()));

  echo = std::make_unique<EchoService>(options);
  std::vector<std::vector<LoopPair>> loop_pairs(sources.size());
  std::vector<std::vector<LoopFlow>> loop_flows(sources.size());
  // Pairs to the same place share one listener; port 0 shares one free port per address.
  std::map<std::tuple<std::string, std::string, ProbeProto, uint16_t>, uint16_t> listeners;
  for (size_t i = 0; i < plan_pairs.size(); ++i) {
    const ProbePair& pair = plan_pairs[i];
    SHADAN_ASSIGN_OR_RETURN(auto target, parseSockAddr(pair.to_address, pair.port));
    uint16_t port = pair.port;
    if (needsListenerNetns(pair)) {
      const auto key = std::make_tuple(pair.to_netns, pair.to_address, pair.proto, pair.port);
      auto found = listeners.find(key);
      if (found == listeners.end()) {
        auto bound = bindIn(pair.to_netns, target, pair.proto);
        if (!bound.ok()) {
          return bound.error().withContext(pairName(i, pair.id) + ": cannot listen on " +
                                           pair.to_address + " port " + std::to_string(pair.port));
        }
        const uint16_t bound_port = boundPort(bound->get());
        if (pair.proto == ProbeProto::kTcp) {
          echo->addListener(std::move(*bound));
        } else {
          echo->addUdpEcho(std::move(*bound));
        }
        found = listeners.emplace(key, bound_port).first;
      }
      port = found->second;
      target.setPort(port);
    }
    auto series = std::make_unique<Series>();
    series->id = pair.id;
    series->proto = pair.proto;
    series->port = port;
    LoopPair loop_pair;
    loop_pair.series = series.get();
    loop_pair.proto = pair.proto;
    loop_pair.target = target;
    if (pair.proto == ProbeProto::kIcmp) loop_pair.echo_id = nextIcmpId();
    loop_pairs[source_index.at(pair.from_netns)].push_back(loop_pair);
    pairs.push_back(std::move(series));
  }
  for (size_t i = 0; i < plan_flows.size(); ++i) {
    const ProbeFlow& flow = plan_flows[i];
    auto opened = openFlow(flow, options.flow_connect_timeout);
    if (!opened.ok()) {
      return opened.error().withContext(flowName(i, flow.id) + " from netns " + flow.from_netns);
    }
    auto series = std::make_unique<Series>();
    series->id = flow.id;
    series->proto = ProbeProto::kTcp;
    series->port = opened->port;
    echo->addFlowServer(std::move(opened->server));
    loop_flows[source_index.at(flow.from_netns)].push_back(
        LoopFlow{series.get(), std::move(opened->client)});
    flows.push_back(std::move(series));
  }

  if (!echo->empty()) SHADAN_RETURN_IF_ERROR(echo->start());
  for (size_t i = 0; i < sources.size(); ++i) {
    UniqueFd netns_fd(::open(netnsPath(sources[i]).c_str(), O_RDONLY | O_CLOEXEC));
    if (!netns_fd.valid()) {
      return makeError(ErrorCode::kIo, errnoText("cannot open netns " + sources[i], errno));
    }
    auto loop =
        std::make_unique<ProbeLoop>(sources[i], std::move(netns_fd), std::move(loop_pairs[i]),
                                    std::move(loop_flows[i]), options);
    SHADAN_RETURN_IF_ERROR(loop->start());
    loops.push_back(std::move(loop));
  }
  return okStatus();
}

void ContinuousProber::Impl::tearDown() {
  // The probe loops first: nothing is sent to a listener that is already gone.
  for (auto& loop : loops) loop->stop();
  loops.clear();
  if (echo) echo->stop();
  echo.reset();
}

const Series* ContinuousProber::Impl::find(std::string_view id) const {
  for (const auto* list : {&pairs, &flows}) {
    for (const auto& series : *list) {
      if (series->id == id) return series.get();
    }
  }
  return nullptr;
}

ContinuousProber::ContinuousProber() : impl_(std::make_unique<Impl>()) {}

ContinuousProber::~ContinuousProber() { stop(); }

Status ContinuousProber::start(std::vector<ProbePair> pairs, std::vector<ProbeFlow> flows,
                               ProberOptions options) {
  if (impl_->started) {
    return makeError(ErrorCode::kInvalidArgument, "the prober was already started");
  }
  SHADAN_RETURN_IF_ERROR(validateProbePlan(pairs, flows, options));
  Status status = impl_->setUp(pairs, flows, options);
  if (!status.ok()) {
    impl_->tearDown();
    impl_->pairs.clear();
    impl_->flows.clear();
    return status;
  }
  impl_->started = true;
  impl_->running = true;
  return okStatus();
}

ProbeTime ContinuousProber::mark(std::string label) {
  const ProbeTime now = ProbeClock::now();
  std::lock_guard<std::mutex> lock(impl_->marks_mutex);
  impl_->marks.push_back(ProberMark{std::move(label), now});
  return now;
}

void ContinuousProber::stop() {
  impl_->tearDown();
  impl_->running = false;
}

bool ContinuousProber::running() const { return impl_->running; }

ProberResults ContinuousProber::results() const {
  ProberResults results;
  for (const auto& series : impl_->pairs) results.pairs.push_back(snapshot(*series));
  for (const auto& series : impl_->flows) results.flows.push_back(snapshot(*series));
  std::lock_guard<std::mutex> lock(impl_->marks_mutex);
  results.marks = impl_->marks;
  return results;
}

std::optional<ProbeTime> ContinuousProber::firstChangeAfter(std::string_view id, ProbeTime after,
                                                            PathState state,
                                                            std::chrono::nanoseconds hold) const {
  const Series* series = impl_->find(id);
  if (series == nullptr) return std::nullopt;
  std::lock_guard<std::mutex> lock(series->mutex);
  return series->timeline.firstChangeAfter(after, state, hold);
}

}  // namespace shadan
