// Time to cut and time to restore (issue #17, "Measurement"): while the steps run, the
// continuous prober (cli/lab/prober.h) probes, every 2 ms, TCP connect and ICMP echo through
// each gateway that an isolate step of the scenario cuts: from a host the rung isolates, to a
// host behind the same gateway that the rung cuts it from. At the end, per gateway and per
// transition, the first probe dropped after the isolate order was sent (first_dropped_probe_ms)
// and the first probe open again after the restore order was sent (first_open_probe_ms), and
// time_to_cut_ms / time_to_restore_ms from them (the latest transition's, in the report's
// gateway entry).
//
// Measured: segment rungs (any profile: the peer is a host of a segment the profile cuts), uplink
// rungs (the peer is the internet node), host rungs and alert steps (from the quarantined host,
// the alert's internal address, to a host of a segment its profile cuts behind the same
// gateway; an alert's escalation to the segment cuts the same pair) and island rungs (from an
// inside host behind each island gateway to a host of another segment behind it).

#include <algorithm>
#include <set>

#include "cli/drill/drill_run_internal.h"
#include "cli/lab/prober.h"

namespace shadan::drill {
namespace {

const Rung* rungOf(const Step& step) {
  if (const auto* isolate = std::get_if<IsolateStep>(&step.action)) return &isolate->rung;
  if (const auto* restore = std::get_if<RestoreStep>(&step.action)) return &restore->rung;
  return nullptr;
}

std::string withoutLength(std::string address) {
  if (const size_t slash = address.find('/'); slash != std::string::npos) address.resize(slash);
  return address;
}

}  // namespace

std::vector<std::string> DrillRunner::Impl::hostAddresses(const Rung& rung) const {
  std::vector<std::string> out;
  for (const Endpoint& host : rung.hosts) {
    for (const std::string& address : addressesOf(host, rung.hosts_family)) {
      out.push_back(withoutLength(address));
    }
  }
  return out;
}

// Which isolate and restore steps measure the same pairs: the rung without its profile (a host
// rung with its addresses); an alert step measures its own.
std::string DrillRunner::Impl::measureKey(size_t step_index) const {
  const Step& step = request_.scenario.steps.at(step_index);
  if (std::holds_alternative<AlertStep>(step.action)) return "alert:" + std::to_string(step_index);
  const Rung* rung = rungOf(step);
  if (rung == nullptr) return "";
  std::string key = isolationScopeName(rung->scope);
  key += ":" + rung->segment;
  for (const std::string& gateway : rung->gateways) key += "," + gateway;
  if (rung->scope == IsolationScope::kHost) {
    for (const std::string& address : hostAddresses(*rung)) key += "," + address;
  }
  return key;
}

// An inside host: in a segment that is neither the default (internet) nor management.
bool DrillRunner::Impl::isInside(const PolicyLab::Host& host) const {
  return host.segment != default_segment_ && host.segment != request_.policy_lab.management_segment;
}

// The lab host with `address` (no length), if the lab has one inside an internal segment.
const PolicyLab::Host* DrillRunner::Impl::internalHost(const std::string& address) const {
  for (const PolicyLab::Host& host : request_.policy_lab.hosts) {
    if (host.address == address && isInside(host)) return &host;
  }
  return nullptr;
}

// The inside hosts behind `gateway` of `family`, in lab order.
std::vector<const PolicyLab::Host*> DrillRunner::Impl::insideHosts(const std::string& gateway,
                                                                   IpFamily family) const {
  std::vector<const PolicyLab::Host*> out;
  for (const PolicyLab::Host& host : request_.policy_lab.hosts) {
    if (host.gateway == gateway && host.family == family && isInside(host)) out.push_back(&host);
  }
  return out;
}

// Probe time `at` as milliseconds since the drill started (the report's clock).
int64_t DrillRunner::Impl::relativeMs(ProbeTime at) const {
  return measure_origin_ms_ +
         std::chrono::duration_cast<std::chrono::milliseconds>(at - measure_origin_).count();
}

// Hosts behind `gateway` that `rung` cuts its segment from (segment rung, by its profile), or
// the internet node (uplink rung), in policy order.
std::vector<const PolicyLab::Host*> DrillRunner::Impl::peersOf(const Rung& rung,
                                                               const std::string& gateway,
                                                               IpFamily family) const {
  const PolicyLab& plab = request_.policy_lab;
  const Policy& policy = request_.policy;
  std::vector<const PolicyLab::Host*> peers;
  auto add_segment = [&](const std::string& segment) {
    for (const PolicyLab::Host* host : plab.find(segment, gateway, family)) peers.push_back(host);
  };
  if (rung.scope == IsolationScope::kUplink) {
    if (!default_segment_.empty()) add_segment(default_segment_);
    return peers;
  }
  const Profile* profile = policy.findProfile(rung.profile.value_or("full"));
  if (profile != nullptr && !profile->isFull()) {
    for (const std::string& peer : profile->peers) add_segment(peer);
    return peers;
  }
  // A full cut: any other segment behind this gateway that is not management, then the
  // internet.
  for (const auto& [name, segment] : policy.segments) {
    if (name == rung.segment || segment.is_default || name == plab.management_segment) continue;
    add_segment(name);
  }
  if (!default_segment_.empty()) add_segment(default_segment_);
  return peers;
}

void DrillRunner::Impl::startMeasuring() {
  const PolicyLab& plab = request_.policy_lab;
  const Policy& policy = request_.policy;
  std::vector<ProbePair> pairs;
  std::set<std::pair<std::string, std::string>> planned;          // (measure key, gateway)
  std::set<std::pair<std::string, IpFamily>> management_sources;  // (netns, family)
  const auto measure = [&](const PolicyLab::Host& from, const PolicyLab::Host& to,
                           const std::string& gateway_id, const std::string& key) {
    management_sources.insert({lab_->nsName(from.node), from.family});
    for (shadan::ProbeProto proto : {shadan::ProbeProto::kTcp, shadan::ProbeProto::kIcmp}) {
      ProbePair pair;
      pair.id = "m" + std::to_string(pairs.size());
      pair.from_netns = lab_->nsName(from.node);
      pair.to_netns = lab_->nsName(to.node);
      pair.to_address = to.address;
      pair.proto = proto;
      pairs.push_back(pair);
      measures_.push_back({pair.id, gateway_id, key});
    }
  };
  // A quarantined host: to a host its profile cuts it from, behind its own gateway.
  const auto measureHost = [&](const PolicyLab::Host& host,
                               const std::optional<std::string>& profile, const std::string& key) {
    const std::string per_family = key + (host.family == IpFamily::kV4 ? "/4" : "/6");
    if (!planned.insert({per_family, host.gateway}).second) return;
    Rung as_segment;
    as_segment.segment = host.segment;
    as_segment.profile = profile;
    for (const PolicyLab::Host* peer : peersOf(as_segment, host.gateway, host.family)) {
      if (peer->node == host.node) continue;
      return measure(host, *peer, host.gateway, key);
    }
  };
  const auto& steps = request_.scenario.steps;
  for (size_t index = 0; index < steps.size(); ++index) {
    const std::string key = measureKey(index);
    if (const auto* alert = std::get_if<AlertStep>(&steps[index].action)) {
      const ProbeFamily family =
          alert->family == IpFamily::kV4 ? ProbeFamily::kIpv4 : ProbeFamily::kIpv6;
      const PolicyLab::Host* quarantined = nullptr;
      for (const auto* end : {&alert->src, &alert->dst}) {
        if (!*end || quarantined != nullptr) continue;
        const auto addresses = addressesOf(**end, family);
        if (!addresses.empty()) quarantined = internalHost(withoutLength(addresses.front()));
      }
      if (quarantined != nullptr) measureHost(*quarantined, std::nullopt, key);
      continue;
    }
    // Restores too: a host released after an alert's quarantine has pairs of its own.
    const Rung* measured = rungOf(steps[index]);
    if (measured == nullptr) continue;
    const Rung& rung = *measured;
    if (rung.scope == IsolationScope::kHost) {
      for (const std::string& address : hostAddresses(rung)) {
        if (const PolicyLab::Host* host = internalHost(address)) {
          measureHost(*host, rung.profile, key);
        }
      }
      continue;
    }
    if (rung.scope == IsolationScope::kIsland) {
      // Every segment behind the gateway is cut from every other: from an inside host to a host
      // of another segment (or the internet) behind the same gateway.
      for (const auto& [gateway_id, gateway] : policy.gateways) {
        if (!rung.gateways.empty() && std::find(rung.gateways.begin(), rung.gateways.end(),
                                                gateway_id) == rung.gateways.end()) {
          continue;
        }
        for (IpFamily family : {IpFamily::kV4, IpFamily::kV6}) {
          const auto inside = insideHosts(gateway_id, family);
          if (!inside.empty()) measureHost(*inside.front(), std::nullopt, key);
        }
      }
      continue;
    }
    if (rung.scope != IsolationScope::kSegment && rung.scope != IsolationScope::kUplink) continue;
    for (const auto& [gateway_id, gateway] : policy.gateways) {
      const bool borders = std::find(gateway.borders.begin(), gateway.borders.end(),
                                     rung.segment) != gateway.borders.end();
      if (rung.scope == IsolationScope::kSegment && !borders) continue;
      if (rung.scope == IsolationScope::kUplink && !rung.gateways.empty() &&
          std::find(rung.gateways.begin(), rung.gateways.end(), gateway_id) ==
              rung.gateways.end()) {
        continue;
      }
      if (!planned.insert({key, gateway_id}).second) continue;
      for (IpFamily family : {IpFamily::kV4, IpFamily::kV6}) {
        // Uplink: from any inside host behind the gateway; segment: a host of the segment.
        const std::vector<const PolicyLab::Host*> sources =
            rung.scope == IsolationScope::kSegment ? plab.find(rung.segment, gateway_id, family)
                                                   : insideHosts(gateway_id, family);
        const auto peers = peersOf(rung, gateway_id, family);
        if (sources.empty() || peers.empty()) continue;
        measure(*sources.front(), *peers.front(), gateway_id, key);
      }
    }
  }
  if (pairs.empty()) return;
  prober_ = std::make_unique<ContinuousProber>();
  measure_origin_ms_ = nowMs();
  measure_origin_ = ProbeClock::now();
  if (Status started = prober_->start(std::move(pairs)); !started.ok()) {
    say("time to cut is not measured: the prober did not start: " + started.error().message);
    prober_.reset();
    measures_.clear();
    return;
  }
  say("measuring time to cut and restore: " + std::to_string(measures_.size()) +
      " probe pairs, every 2 ms");

  // Management all through the drill: from each measured host to the controller's agent port
  // where its hub listens (the policy's management rule keeps it open through every cut), every
  // 20 ms; slower than the cut's pairs, since each probe is a connection the controller accepts.
  // The hub listens on one address (the first): the path the agents use. Hosts of the other
  // family are left to the expect steps' probes (they listen on the controller's other address).
  const IpFamily hub_family =
      pki_->api_host.find(':') != std::string::npos ? IpFamily::kV6 : IpFamily::kV4;
  std::vector<ProbePair> management;
  for (const auto& [netns, family] : management_sources) {
    if (family != hub_family) continue;
    ProbePair pair;
    pair.id = "g" + std::to_string(management.size());
    pair.from_netns = netns;
    pair.to_address = pki_->api_host;
    pair.proto = shadan::ProbeProto::kTcp;
    pair.port = pki_->hub_port;
    pair.listen = false;  // the controller's hub listens there
    management.push_back(pair);
  }
  if (management.empty()) return;
  ProberOptions options;
  options.interval = std::chrono::milliseconds(20);
  options.timeout = std::chrono::milliseconds(200);
  management_prober_ = std::make_unique<ContinuousProber>();
  const size_t watched = management.size();
  if (Status started = management_prober_->start(std::move(management), {}, options);
      !started.ok()) {
    say("management is not watched continuously: " + started.error().message);
    management_prober_.reset();
    return;
  }
  say("watching management: " + std::to_string(watched) +
      " paths to the controller's agent port, every 20 ms");
}

void DrillRunner::Impl::finishManagementWatch() {
  if (!management_prober_) return;
  management_prober_->stop();
  ManagementWatch watch;
  for (const ProbeSeries& series : management_prober_->results().pairs) {
    ++watch.pairs;
    watch.sent += series.sent;
    watch.ok += series.ok;
    watch.failed += series.failed + series.errors;
    if (auto cut =
            management_prober_->firstChangeAfter(series.id, measure_origin_, PathState::kCut)) {
      const int64_t at = relativeMs(*cut);
      if (!watch.first_failed_ms || at < *watch.first_failed_ms) watch.first_failed_ms = at;
    }
  }
  for (const Step& step : request_.scenario.steps) {
    const auto* fault = std::get_if<FaultStep>(&step.action);
    if (fault != nullptr &&
        (fault->kind == FaultKind::kStopController || fault->kind == FaultKind::kPartition)) {
      watch.excluded_because = std::string("the scenario's ") + faultKindName(fault->kind) +
                               " fault takes the management path down on purpose";
      break;
    }
  }
  say("management: " + std::to_string(watch.sent) + " probes to the controller, " +
      std::to_string(watch.failed) + " failed" +
      (watch.excluded_because.empty() ? "" : " (" + watch.excluded_because + ")"));
  report_.management_watch = watch;
  management_prober_.reset();
}

void DrillRunner::Impl::finishMeasuring() {
  if (!prober_) return;
  finishManagementWatch();
  // A probe counts when it completes: let the ones in flight (30 ms timeout) finish, or a
  // restore the last step just applied would not be seen yet.
  sleepFor(std::chrono::milliseconds(100));
  prober_->stop();
  const auto toProbeTime = [&](int64_t relative_ms) {
    return measure_origin_ + std::chrono::milliseconds(relative_ms - measure_origin_ms_);
  };
  const auto& steps = request_.scenario.steps;
  for (auto& [gateway_id, gateway] : report_.gateways) {
    for (TransitionRecord& t : gateway.transitions) {
      if (t.step >= steps.size()) continue;
      const std::string key = measureKey(t.step);
      if (key.empty()) continue;
      const bool isolate = t.action == "isolate";
      std::optional<ProbeTime> first;
      for (const Measure& measure : measures_) {
        if (measure.gateway != gateway_id || measure.key != key) continue;
        auto change = prober_->firstChangeAfter(measure.pair_id, toProbeTime(t.order_sent_ms),
                                                isolate ? PathState::kCut : PathState::kOpen);
        if (change && (!first || *change < *first)) first = change;
      }
      if (!first) continue;
      const int64_t at = std::max(relativeMs(*first), t.order_sent_ms);
      if (isolate) {
        t.first_dropped_probe_ms = at;
        gateway.time_to_cut_ms = at - t.order_sent_ms;
      } else {
        t.first_open_probe_ms = at;
        gateway.time_to_restore_ms = at - t.order_sent_ms;
      }
    }
  }
  for (auto& [gateway_id, gateway] : report_.gateways) {
    if (gateway.time_to_cut_ms || gateway.time_to_restore_ms) {
      say("gateway " + gateway_id + ": time to cut " +
          (gateway.time_to_cut_ms ? std::to_string(*gateway.time_to_cut_ms) + " ms" : "-") +
          ", time to restore " +
          (gateway.time_to_restore_ms ? std::to_string(*gateway.time_to_restore_ms) + " ms" : "-"));
    }
  }
  prober_.reset();
}

}  // namespace shadan::drill
