// The expect steps of DrillRunner (drill_runner.h): endpoints to lab places, real probes (TCP
// connect, ICMP echo, established flows) run in parallel, results into the report.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <future>
#include <set>
#include <thread>

#include "cli/drill/drill_run_internal.h"
#include "cli/lab/netns.h"
#include "cli/lab/probe.h"

namespace shadan::drill {
namespace {

// Long enough for an open path in a loaded lab, short enough that a step of cut probes (run in
// parallel) takes about this long.
constexpr auto kProbeTimeout = std::chrono::milliseconds(1500);
constexpr auto kFlowOpenTimeout = std::chrono::milliseconds(3000);
// Probes of one step run in parallel, at most this many at once.
constexpr size_t kParallelProbes = 32;

std::string familyText(IpFamily family) { return family == IpFamily::kV4 ? "ipv4" : "ipv6"; }

IpFamily familyOfAddress(const std::string& address) {
  return address.find(':') == std::string::npos ? IpFamily::kV4 : IpFamily::kV6;
}

// A TCP handshake with a listener that is already there (the controller's agent hub): the
// probe's own listener could not bind its port. True when connect() completed in time.
Result<bool> tcpHandshake(const std::string& from_ns, const std::string& address, uint16_t port,
                          std::chrono::milliseconds timeout) {
  sockaddr_storage storage{};
  socklen_t length = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
  if (::inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    length = sizeof(sockaddr_in);
  } else if (::inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    length = sizeof(sockaddr_in6);
  } else {
    return makeError(ErrorCode::kInvalidArgument, "'" + address + "' is not an IP address");
  }
  SHADAN_ASSIGN_OR_RETURN(
      auto fd, socketInNetns(from_ns, storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0));
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&storage), length) == 0) return true;
  if (errno != EINPROGRESS) return false;
  pollfd entry{fd.get(), POLLOUT, 0};
  const int ready = ::poll(&entry, 1, static_cast<int>(timeout.count()));
  if (ready <= 0) return false;
  int error = 0;
  socklen_t error_length = sizeof(error);
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &error_length) != 0) return false;
  return error == 0;
}

}  // namespace

std::vector<std::string> DrillRunner::Impl::addressesOf(const Endpoint& endpoint,
                                                        ProbeFamily family) const {
  const PolicyLab& plab = request_.policy_lab;
  std::optional<IpFamily> only;
  if (family == ProbeFamily::kIpv4) only = IpFamily::kV4;
  if (family == ProbeFamily::kIpv6) only = IpFamily::kV6;
  std::vector<std::string> out;
  const auto add = [&](const std::string& address) {
    if (std::find(out.begin(), out.end(), address) == out.end()) out.push_back(address);
  };
  switch (endpoint.kind) {
    case Endpoint::Kind::kAddress:
      if (endpoint.address) add(endpoint.address->toString());
      break;
    case Endpoint::Kind::kSegment: {
      std::optional<std::string_view> gateway;
      if (!endpoint.gateway.empty()) gateway = endpoint.gateway;
      for (const PolicyLab::Host* host : plab.find(endpoint.segment, gateway, only)) {
        add(host->address);
      }
      break;
    }
    case Endpoint::Kind::kController:
      for (const std::string& address : controller_addresses_) {
        if (!only || familyOfAddress(address) == *only) add(address);
      }
      break;
    case Endpoint::Kind::kInternet:
      for (const PolicyLab::Host* host : plab.find(default_segment_, std::nullopt, only)) {
        add(host->address);
      }
      break;
  }
  return out;
}

Result<ProbePlace> DrillRunner::Impl::place(const ConcreteEndpoint& end, IpFamily family,
                                            const ConcreteEndpoint& other) const {
  const PolicyLab& plab = request_.policy_lab;
  ProbePlace out;
  switch (end.kind) {
    case Endpoint::Kind::kSegment: {
      auto hosts = plab.find(end.segment, end.gateway, family);
      if (hosts.empty()) {
        return makeError(ErrorCode::kNotFound, "the lab has no " + familyText(family) +
                                                   " host of " + end.segment + " behind " +
                                                   end.gateway);
      }
      out.ns = lab_->nsName(hosts.front()->node);
      out.address = hosts.front()->address;
      out.text = end.segment + "@" + end.gateway;
      return out;
    }
    case Endpoint::Kind::kController: {
      out.ns = lab_->nsName(plab.controller_node);
      out.text = "controller";
      out.controller = true;
      for (const std::string& address : controller_addresses_) {
        if (familyOfAddress(address) == family) {
          out.address = address;
          return out;
        }
      }
      return makeError(ErrorCode::kNotFound,
                       "the lab's controller has no " + familyText(family) + " address");
    }
    case Endpoint::Kind::kInternet: {
      auto hosts = plab.find(default_segment_, std::nullopt, family);
      if (hosts.empty() || plab.internet_node.empty()) {
        return makeError(ErrorCode::kNotFound, "the lab has no internet node of that family");
      }
      // The internet node's address on the link of the other end's gateway, when it has one.
      const PolicyLab::Host* chosen = hosts.front();
      for (const PolicyLab::Host* host : hosts) {
        if (!other.gateway.empty() && host->gateway == other.gateway) {
          chosen = host;
          break;
        }
      }
      out.ns = lab_->nsName(plab.internet_node);
      out.address = chosen->address;
      out.text = "internet";
      return out;
    }
    case Endpoint::Kind::kAddress:
      break;
  }
  return makeError(ErrorCode::kInvalidArgument, "a probe cannot end at an address");
}

void DrillRunner::Impl::openEstablishedFlows(size_t index) {
  const auto& steps = request_.scenario.steps;
  for (size_t j = index + 1; j < steps.size(); ++j) {
    const auto& action = steps[j].action;
    if (std::holds_alternative<IsolateStep>(action) || std::holds_alternative<AlertStep>(action)) {
      break;
    }
    for (size_t k = 0; k < concrete_[j].size(); ++k) {
      const ConcreteProbe& probe = concrete_[j][k];
      if (!probe.established) continue;
      auto from = place(probe.from, probe.family, probe.to);
      auto to = place(probe.to, probe.family, probe.from);
      if (!from.ok() || !to.ok()) {
        flow_errors_[{j, k}] = (from.ok() ? to : from).error().message;
        continue;
      }
      auto flow =
          std::make_unique<EstablishedFlow>(from->ns, to->ns, to->address, probe.port.value_or(0));
      Status opened = flow->open(kFlowOpenTimeout);
      if (!opened.ok()) {
        flow_errors_[{j, k}] =
            "the flow could not be opened before the cut: " + opened.error().message;
        continue;
      }
      flows_[{j, k}] = std::move(flow);
    }
  }
}

Result<bool> DrillRunner::Impl::probeOnce(size_t index, size_t probe_index,
                                          const ConcreteProbe& probe, const ProbePlace& from,
                                          const ProbePlace& to) {
  if (probe.established) {
    const auto key = std::make_pair(index, probe_index);
    if (auto error = flow_errors_.find(key); error != flow_errors_.end()) {
      return makeError(ErrorCode::kIo, error->second);
    }
    auto flow = flows_.find(key);
    if (flow == flows_.end()) {
      // No isolate or alert before it: a flow opened now, for a probe of an open path.
      auto made =
          std::make_unique<EstablishedFlow>(from.ns, to.ns, to.address, probe.port.value_or(0));
      SHADAN_RETURN_IF_ERROR(made->open(kFlowOpenTimeout));
      flow = flows_.emplace(key, std::move(made)).first;
    }
    return flow->second->roundTrip(kProbeTimeout);
  }
  switch (probe.proto) {
    case ProbeProto::kIcmp:
      return icmpEcho(from.ns, to.address, kProbeTimeout);
    case ProbeProto::kUdp:
    case ProbeProto::kTcp:
      break;
  }
  // To the controller on the agents' port: its hub already listens there (TCP).
  const uint16_t port =
      to.controller ? probe.port.value_or(pki_->hub_port) : probe.port.value_or(0);
  if (probe.proto == ProbeProto::kUdp) {
    return udpRoundTrip(from.ns, to.ns, to.address, port, kProbeTimeout);
  }
  if (to.controller && port == pki_->hub_port && to.address == pki_->api_host) {
    return tcpHandshake(from.ns, to.address, port, kProbeTimeout);
  }
  return tcpConnect(from.ns, to.ns, to.address, port, kProbeTimeout);
}

Status DrillRunner::Impl::runExpect(size_t index, const ExpectStep& expect, StepRecord& record) {
  (void)expect;
  const std::vector<ConcreteProbe>& probes = concrete_[index];
  struct Pending {
    ProbeRecord record;
    Result<ProbePlace> from = makeError(ErrorCode::kInternal, "unset");
    Result<ProbePlace> to = makeError(ErrorCode::kInternal, "unset");
    Result<bool> result = makeError(ErrorCode::kInternal, "not run");
  };
  std::vector<Pending> pending(probes.size());
  for (size_t k = 0; k < probes.size(); ++k) {
    const ConcreteProbe& probe = probes[k];
    Pending& p = pending[k];
    p.from = place(probe.from, probe.family, probe.to);
    p.to = place(probe.to, probe.family, probe.from);
    ProbeRecord& r = p.record;
    r.step = index;
    r.label = record.label;
    const auto text = [](const ConcreteEndpoint& end) {
      if (end.kind == Endpoint::Kind::kController) return std::string("controller");
      if (end.kind == Endpoint::Kind::kInternet) return std::string("internet");
      return end.segment + "@" + end.gateway;
    };
    r.from = text(probe.from);
    r.to = text(probe.to);
    r.proto = probeProtoName(probe.proto);
    r.port = probe.port;
    if (!r.port && probe.proto == ProbeProto::kTcp &&
        probe.to.kind == Endpoint::Kind::kController) {
      r.port = pki_->hub_port;
    }
    r.family = probe.family == IpFamily::kV4 ? "ipv4" : "ipv6";
    r.phase = record.phase;
    r.expected = reachabilityName(probe.expected);
    r.established = probe.established;
    r.to_controller = probe.to.kind == Endpoint::Kind::kController;
  }
  // Established flows first, one after the other (they share nothing, but each is quick), then
  // the rest in parallel batches.
  // Two probes to the same fixed port of the same address (e.g. the controller's port from two
  // hosts) would both open a listener there: the second waits for the batch's end.
  for (size_t start = 0; start < probes.size(); start += kParallelProbes) {
    const size_t end = std::min(probes.size(), start + kParallelProbes);
    std::vector<std::future<void>> running;
    std::set<std::string> listening;
    std::vector<size_t> after_batch;
    for (size_t k = start; k < end; ++k) {
      Pending& p = pending[k];
      if (!p.from.ok() || !p.to.ok()) {
        p.result = (p.from.ok() ? p.to : p.from).error();
        continue;
      }
      if (probes[k].established) {
        p.result = probeOnce(index, k, probes[k], *p.from, *p.to);
        continue;
      }
      if (p.record.port) {
        const std::string key = p.to->ns + " " + p.to->address + " " + p.record.proto + " " +
                                std::to_string(*p.record.port);
        if (!listening.insert(key).second) {
          after_batch.push_back(k);
          continue;
        }
      }
      running.push_back(std::async(std::launch::async, [this, &p, &probes, index, k] {
        p.result = probeOnce(index, k, probes[k], *p.from, *p.to);
      }));
    }
    for (auto& f : running) f.wait();
    for (size_t k : after_batch) {
      pending[k].result = probeOnce(index, k, probes[k], *pending[k].from, *pending[k].to);
    }
  }
  size_t held = 0;
  size_t failed = 0;
  for (Pending& p : pending) {
    ProbeRecord& r = p.record;
    if (!p.result.ok()) {
      r.observed = "error";
      r.error = p.result.error().message;
      r.ok = false;
    } else {
      r.observed = *p.result ? "open" : "cut";
      r.ok = r.observed == r.expected;
    }
    say(std::string("  ") + (r.ok ? "ok   " : "FAIL ") + r.from + " -> " + r.to + " " + r.proto +
        (r.port ? "/" + std::to_string(*r.port) : "") + " " + r.family +
        (r.established ? " established" : "") + ": expected " + r.expected + ", observed " +
        r.observed + (r.error.empty() ? "" : " (" + r.error + ")"));
    if (r.ok) {
      ++held;
    } else {
      ++failed;
      record.ok = false;
      report_.failures.push_back(probeFailureText(record, r));
    }
    report_.probes.push_back(std::move(r));
  }
  record.detail = std::to_string(held) + " of " + std::to_string(probes.size()) +
                  " probes as expected" +
                  (failed ? ", " + std::to_string(failed) + " not" : std::string());
  return okStatus();
}

}  // namespace shadan::drill
