// Time to cut and time to restore (issue #17, "Measurement"): while the steps run, the
// continuous prober (cli/lab/prober.h) probes, every 2 ms, TCP connect and ICMP echo through
// each gateway that an isolate step of the scenario cuts: from a host the rung isolates, to a
// host behind the same gateway that the rung cuts it from. At the end, per gateway and per
// transition, the first probe dropped after the isolate order was sent (first_dropped_probe_ms)
// and the first probe open again after the restore order was sent (first_open_probe_ms), and
// time_to_cut_ms / time_to_restore_ms from them (the latest transition's, in the report's
// gateway entry).
//
// Measured rungs: segment (any profile: the peer is a host of a segment the profile cuts) and
// uplink (the peer is the internet node). Host quarantines and islands are not measured (their
// times stay null); their expect steps still prove the cut.

#include <algorithm>
#include <set>

#include "cli/drill/drill_run_internal.h"
#include "cli/lab/prober.h"

namespace shadan::drill {
namespace {

// Which isolate and restore steps measure the same pairs: the rung without its profile.
std::string rungKey(const Rung& rung) {
  std::string key = isolationScopeName(rung.scope);
  key += ":" + rung.segment;
  for (const std::string& gateway : rung.gateways) key += "," + gateway;
  return key;
}

const Rung* rungOf(const Step& step) {
  if (const auto* isolate = std::get_if<IsolateStep>(&step.action)) return &isolate->rung;
  if (const auto* restore = std::get_if<RestoreStep>(&step.action)) return &restore->rung;
  return nullptr;
}

}  // namespace

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
  std::set<std::pair<std::string, std::string>> planned;  // (rung key, gateway)
  for (const Step& step : request_.scenario.steps) {
    const auto* isolate = std::get_if<IsolateStep>(&step.action);
    if (isolate == nullptr) continue;
    const Rung& rung = isolate->rung;
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
      if (!planned.insert({rungKey(rung), gateway_id}).second) continue;
      for (IpFamily family : {IpFamily::kV4, IpFamily::kV6}) {
        // Uplink: from any inside host behind the gateway; segment: a host of the segment.
        std::vector<const PolicyLab::Host*> sources;
        if (rung.scope == IsolationScope::kSegment) {
          sources = plab.find(rung.segment, gateway_id, family);
        } else {
          for (const PolicyLab::Host& host : plab.hosts) {
            if (host.gateway == gateway_id && host.family == family &&
                host.segment != default_segment_ && host.segment != plab.management_segment) {
              sources.push_back(&host);
            }
          }
        }
        const auto peers = peersOf(rung, gateway_id, family);
        if (sources.empty() || peers.empty()) continue;
        const PolicyLab::Host& from = *sources.front();
        const PolicyLab::Host& to = *peers.front();
        for (shadan::ProbeProto proto : {shadan::ProbeProto::kTcp, shadan::ProbeProto::kIcmp}) {
          ProbePair pair;
          pair.id = "m" + std::to_string(pairs.size());
          pair.from_netns = lab_->nsName(from.node);
          pair.to_netns = lab_->nsName(to.node);
          pair.to_address = to.address;
          pair.proto = proto;
          pairs.push_back(pair);
          measures_.push_back({pair.id, gateway_id, rungKey(rung)});
        }
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
}

void DrillRunner::Impl::finishMeasuring() {
  if (!prober_) return;
  // A probe counts when it completes: let the ones in flight (30 ms timeout) finish, or a
  // restore the last step just applied would not be seen yet.
  sleepFor(std::chrono::milliseconds(100));
  prober_->stop();
  const auto toProbeTime = [&](int64_t relative_ms) {
    return measure_origin_ + std::chrono::milliseconds(relative_ms - measure_origin_ms_);
  };
  const auto toRelative = [&](ProbeTime at) {
    return measure_origin_ms_ +
           std::chrono::duration_cast<std::chrono::milliseconds>(at - measure_origin_).count();
  };
  const auto& steps = request_.scenario.steps;
  for (auto& [gateway_id, gateway] : report_.gateways) {
    for (TransitionRecord& t : gateway.transitions) {
      if (t.step >= steps.size()) continue;
      const Rung* rung = rungOf(steps[t.step]);
      if (rung == nullptr) continue;
      const bool isolate = t.action == "isolate";
      std::optional<ProbeTime> first;
      for (const Measure& measure : measures_) {
        if (measure.gateway != gateway_id || measure.rung_key != rungKey(*rung)) continue;
        auto change = prober_->firstChangeAfter(measure.pair_id, toProbeTime(t.order_sent_ms),
                                                isolate ? PathState::kCut : PathState::kOpen);
        if (change && (!first || *change < *first)) first = change;
      }
      if (!first) continue;
      const int64_t at = std::max(toRelative(*first), t.order_sent_ms);
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
