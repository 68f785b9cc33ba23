#pragma once

// The strict policy loader: walks a parsed policy document once, section by section (version,
// name, segments, gateways, management, profiles, agent), building the model and its warnings.
// Every error names the source, the JSON pointer of the offending value and the reason. Internal
// to the policy loader; the public interface is parsePolicy() in common/policy.h.

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/policy.h"
#include "common/policy_reader.h"
#include "common/result.h"

namespace shadan::policy_detail {

class PolicyParser {
 public:
  explicit PolicyParser(std::string_view source) : reader_(source) {}

  // Call once per parser: the model is moved out.
  Result<LoadedPolicy> parse(const nlohmann::json& root);

 private:
  void warn(std::string pointer, std::string message);

  Status parseVersion(const nlohmann::json& value, std::string_view pointer) const;
  Result<std::string> parsePolicyName(const nlohmann::json& value, std::string_view pointer) const;
  Status parseSegments(const nlohmann::json& segments, std::string_view pointer);
  Status checkPrefixOverlaps(std::string_view pointer) const;
  Status parseGateways(const nlohmann::json& gateways, std::string_view pointer);
  Result<std::vector<std::string>> parseSegmentList(const nlohmann::json& value,
                                                    std::string_view pointer,
                                                    std::string_view what) const;
  Status parseInterfaces(const nlohmann::json& value, std::string_view pointer,
                         Gateway& gateway) const;
  Result<std::string> parseInterfaceName(const nlohmann::json& value,
                                         std::string_view pointer) const;
  Status parseLinkDown(const nlohmann::json& value, std::string_view pointer,
                       Gateway& gateway) const;
  Status parseAgentOptions(const nlohmann::json& agent, std::string_view pointer);
  Status parseManagement(const nlohmann::json& management, std::string_view pointer);
  Result<ManagementRule> parseManagementRule(const nlohmann::json& value,
                                             std::string_view pointer) const;
  Status parseProfiles(const nlohmann::json& profiles, std::string_view pointer);
  Result<Profile> parseProfile(const std::string& name, const nlohmann::json& value,
                               std::string_view pointer) const;

  PolicyReader reader_;
  LoadedPolicy loaded_;
};

}  // namespace shadan::policy_detail
