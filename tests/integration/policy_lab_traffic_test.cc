// Integration: the lab built from policies/examples/municipality-three-tier.json, in real
// network namespaces, carries real packets (TCP and ICMP, IPv4 and IPv6) between every segment,
// across gateways, to the internet node and to the controller, before anything is cut. Needs
// root; the lab is named for this process and torn down by Lab's destructor, also on failure.

#include <gtest/gtest.h>
#include <unistd.h>

#include <deque>
#include <filesystem>

#include "cli/lab/command_runner.h"
#include "cli/lab/lab.h"
#include "cli/lab/netns.h"
#include "cli/lab/policy_lab.h"
#include "tests/integration/lab_traffic.h"

namespace shadan {
namespace {

using std::chrono::milliseconds;

class PolicyLabTrafficTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces)";
    auto loaded = loadPolicyFile(std::string(SHADAN_SOURCE_DIR) +
                                 "/policies/examples/municipality-three-tier.json");
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    auto built = labFromPolicy(loaded->policy);
    ASSERT_TRUE(built.ok()) << built.error().message;
    policy_lab_ = std::move(*built);
    lab_ = std::make_unique<Lab>(policy_lab_.spec, "pl" + std::to_string(::getpid() % 1000000),
                                 runner_);
    Status up = lab_->up();
    ASSERT_TRUE(up.ok()) << up.error().message;
  }

  // A probe end for `node` at `address` (TrafficCheck keeps pointers: the strings live here).
  LabHost end(const std::string& node, const std::string& address, IpFamily family) {
    const char* node_text = strings_.emplace_back(node).c_str();
    const char* address_text = strings_.emplace_back(address).c_str();
    return family == IpFamily::kV4 ? LabHost{node_text, address_text, ""}
                                   : LabHost{node_text, "", address_text};
  }
  LabHost end(const PolicyLab::Host& host) { return end(host.node, host.address, host.family); }

  ProcessCommandRunner runner_;
  PolicyLab policy_lab_;
  std::unique_ptr<Lab> lab_;
  std::deque<std::string> strings_;
};

TEST_F(PolicyLabTrafficTest, EverySegmentReachesTheOthersTheInternetAndTheController) {
  TrafficCheck check(*lab_, milliseconds(300), milliseconds(3000));
  const LabHost controller =
      end(policy_lab_.controller_node, policy_lab_.controller_address, IpFamily::kV4);
  int across_gateways = 0;
  for (const PolicyLab::Host& host : policy_lab_.hosts) {
    if (host.node == policy_lab_.internet_node) continue;
    const bool v6 = host.family == IpFamily::kV6;
    const LabHost from = end(host);
    // The internet node, in the same family.
    const auto internet = policy_lab_.find("internet", std::nullopt, host.family);
    ASSERT_FALSE(internet.empty()) << host.address;
    const LabHost to_internet = end(*internet.front());
    check.tcp(from, to_internet, v6, 0, true).icmp(from, to_internet, v6, true);
    check.tcp(to_internet, from, v6, 0, true);
    // The controller (IPv4 only in this policy).
    if (!v6) {
      check.tcp(from, controller, false, 0, true).icmp(from, controller, false, true);
      check.icmp(controller, from, false, true);
    }
    // A host of another segment, behind another gateway where there is one.
    const PolicyLab::Host* other = nullptr;
    for (const PolicyLab::Host& candidate : policy_lab_.hosts) {
      if (candidate.segment == host.segment || candidate.family != host.family ||
          candidate.node == policy_lab_.internet_node) {
        continue;
      }
      if (other == nullptr ||
          (other->gateway == host.gateway && candidate.gateway != host.gateway)) {
        other = &candidate;
      }
    }
    if (other != nullptr) {
      if (other->gateway != host.gateway) ++across_gateways;
      const LabHost to_other = end(*other);
      check.tcp(from, to_other, v6, 0, true).icmp(from, to_other, v6, true);
      check.tcp(to_other, from, v6, 0, true);
    }
  }
  // Every gateway's agent reaches the controller (from whichever address it sends from).
  for (const auto& [id, node] : policy_lab_.gateway_nodes) {
    check.tcp(end(node, "", IpFamily::kV4), controller, false, 0, true);
  }
  EXPECT_GT(across_gateways, 0);
  check.check("before any cut");
}

TEST_F(PolicyLabTrafficTest, DownRemovesEveryNamespace) {
  ASSERT_TRUE(lab_->down().ok());
  for (const LabNode& node : policy_lab_.spec.nodes) {
    EXPECT_FALSE(netnsExists(lab_->nsName(node.name))) << node.name;
  }
}

}  // namespace
}  // namespace shadan
