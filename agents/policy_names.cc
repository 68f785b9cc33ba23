#include "agents/policy_names.h"

#include <map>
#include <string>

namespace shadan::agent {
namespace {

template <typename Value>
std::string namesOf(const std::map<std::string, Value>& entries) {
  std::string names;
  for (const auto& entry : entries) names += (names.empty() ? "" : ", ") + entry.first;
  return names;
}

}  // namespace

Error unknownSegmentError(const Policy& policy, std::string_view name) {
  return makeError(ErrorCode::kNotFound, "unknown segment \"" + std::string(name) +
                                             "\" (segments: " + namesOf(policy.segments) + ")");
}

Error unknownProfileError(const Policy& policy, std::string_view name) {
  return makeError(ErrorCode::kNotFound, "unknown profile \"" + std::string(name) +
                                             "\" (profiles: " + namesOf(policy.profiles) + ")");
}

}  // namespace shadan::agent
