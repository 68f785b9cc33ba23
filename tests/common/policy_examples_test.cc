// Every policy shipped in policies/examples/ must load without errors: operators copy them.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "common/policy.h"

namespace shadan {
namespace {

const std::filesystem::path kExamplesDir =
    std::filesystem::path(SHADAN_SOURCE_DIR) / "policies" / "examples";

std::vector<std::filesystem::path> exampleFiles() {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(kExamplesDir)) {
    if (entry.is_regular_file() && entry.path().extension() == ".json") {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(PolicyExamplesTest, EveryExampleValidates) {
  const auto files = exampleFiles();
  // The three documented examples at least; a missing one would make this test vacuous.
  ASSERT_GE(files.size(), 3u);
  for (const auto& file : files) {
    auto loaded = loadPolicyFile(file);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    EXPECT_FALSE(loaded->policy.name.empty()) << file;
    EXPECT_NE(loaded->policy.findProfile("full"), nullptr) << file;
    for (const auto& warning : loaded->warnings) {
      ADD_FAILURE() << file << ": unexpected warning " << warning.pointer << ": "
                    << warning.message;
    }
  }
}

// The integration tests drive the lab by these names and prefixes.
TEST(PolicyExamplesTest, LabPolicyHasTheNamesIntegrationTestsUse) {
  auto loaded = loadPolicyFile(kExamplesDir / "lab.json");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  const Policy& policy = loaded->policy;

  const auto prefixes = [&policy](const char* name) {
    std::vector<std::string> out;
    const Segment* segment = policy.findSegment(name);
    if (segment == nullptr) return out;
    for (const auto& prefix : segment->prefixes) out.push_back(prefix.toCidr());
    return out;
  };
  EXPECT_EQ(prefixes("office"), (std::vector<std::string>{"10.20.0.0/24", "fd00:20::/64"}));
  EXPECT_EQ(prefixes("servers"), (std::vector<std::string>{"10.30.0.0/24", "fd00:30::/64"}));
  EXPECT_EQ(prefixes("mgmt"), (std::vector<std::string>{"10.99.0.0/24", "fd00:99::/64"}));
  ASSERT_NE(policy.findSegment("mgmt"), nullptr);
  EXPECT_TRUE(policy.findSegment("mgmt")->is_protected);
  ASSERT_NE(policy.defaultSegment(), nullptr);
  EXPECT_EQ(policy.defaultSegment()->name, "internet");
  EXPECT_EQ(policy.segments.size(), 4u);

  ASSERT_EQ(policy.gateways.size(), 1u);
  ASSERT_NE(policy.findGateway("gw"), nullptr);
  EXPECT_EQ(policy.findGateway("gw")->borders.size(), 4u);

  ASSERT_EQ(policy.always_allow.size(), 2u);
  EXPECT_EQ(policy.always_allow[0].prefix.toCidr(), "10.99.0.10/32");
  EXPECT_EQ(policy.always_allow[0].proto, L4Proto::kTcp);
  EXPECT_EQ(policy.always_allow[0].port, std::optional<uint16_t>(8443));
  EXPECT_EQ(policy.always_allow[1].prefix.toCidr(), "fd00:99::10/128");
  EXPECT_EQ(policy.always_allow[1].proto, L4Proto::kTcp);
  EXPECT_EQ(policy.always_allow[1].port, std::optional<uint16_t>(8443));

  ASSERT_EQ(policy.profiles.size(), 5u);
  EXPECT_TRUE(policy.findProfile("full")->isFull());
  EXPECT_EQ(policy.findProfile("internet-only")->peers, std::vector<std::string>{"internet"});
  EXPECT_EQ(policy.findProfile("servers-only")->peers, std::vector<std::string>{"servers"});
  ASSERT_EQ(policy.findProfile("forensic")->allow.size(), 1u);
  EXPECT_EQ(policy.findProfile("forensic")->allow[0].prefix.toCidr(), "10.99.0.50/32");
  EXPECT_TRUE(policy.findProfile("full-blackhole")->blackhole_routes);
  EXPECT_TRUE(policy.findProfile("full-blackhole")->isFull());
}

}  // namespace
}  // namespace shadan
