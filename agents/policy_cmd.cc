#include "agents/policy_cmd.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "agents/agent_cli.h"
#include "agents/control_protocol.h"
#include "agents/planner/planner.h"
#include "common/policy.h"
#include "common/strict_json.h"

namespace shadan::agent {
namespace {

using nlohmann::json;

std::string joined(const std::vector<std::string>& items, const char* separator = ", ") {
  std::string text;
  for (const auto& item : items) text += (text.empty() ? "" : separator) + item;
  return text;
}

template <typename Value>
std::string keysOf(const std::map<std::string, Value>& entries) {
  std::vector<std::string> keys;
  for (const auto& entry : entries) keys.push_back(entry.first);
  return joined(keys);
}

// "1 gateway", "3 gateways".
std::string counted(size_t count, const std::string& noun) {
  return std::to_string(count) + " " + noun + (count == 1 ? "" : "s");
}

std::vector<std::string> prefixTexts(const std::vector<IpPrefix>& prefixes) {
  std::vector<std::string> texts;
  for (const auto& prefix : prefixes) texts.push_back(prefix.toCidr());
  return texts;
}

class PolicyCommand {
 public:
  PolicyCommand(const AgentCliOptions& options, std::ostream& out, std::ostream& err)
      : options_(options), out_(out), err_(err) {}

  int run() {
    const std::string sub = options_.positional.empty() ? "" : options_.positional[0];
    if (sub == "check") return check();
    if (sub == "show") return show();
    return usage(sub.empty() ? "policy needs a subcommand (check, show)"
                             : "unknown policy subcommand \"" + sub + "\" (check, show)");
  }

 private:
  int usage(const std::string& message) const {
    err_ << usageErrorText("policy", message);
    return kExitUsage;
  }

  // Refuses options that are not `allowed` for `name` (one line, listing those that are).
  std::optional<int> refuseOtherOptions(const std::string& name,
                                        const std::vector<std::string>& allowed) const {
    for (const auto& given : givenOptionNames(options_)) {
      if (std::find(allowed.begin(), allowed.end(), given) == allowed.end()) {
        return usage("policy " + name + " takes no " + given + " (its options: " + joined(allowed) +
                     ")");
      }
    }
    return std::nullopt;
  }

  int fail(const Error& error, const std::string& file) const {
    err_ << "shadan-agent: policy " << options_.positional[0] << ": " << error.message << "\n";
    if (options_.json) {
      json answer = errorAnswer("policy " + options_.positional[0], error);
      answer["file"] = file;
      out_ << answer.dump(2) << "\n";
    }
    return kExitRejected;
  }

  Result<LoadedPolicy> load(const std::string& file) const {
    auto loaded = loadPolicyFile(file);
    // A file that is missing or unreadable is as unusable as an invalid one (exit 3).
    if (!loaded.ok()) return Error{ErrorCode::kPolicy, loaded.error().message};
    for (const auto& warning : loaded->warnings) {
      err_ << "shadan-agent: warning: " << file << ": " << jsonPointerDisplay(warning.pointer)
           << ": " << warning.message << "\n";
    }
    return loaded;
  }

  static json warningsJson(const LoadedPolicy& loaded) {
    json warnings = json::array();
    for (const auto& warning : loaded.warnings) {
      warnings.push_back({{"pointer", warning.pointer}, {"message", warning.message}});
    }
    return warnings;
  }

  int check() {
    if (auto refused = refuseOtherOptions("check", {"--gateway", "--json", "--log-level"})) {
      return *refused;
    }
    if (options_.positional.size() != 2) return usage("policy check takes one FILE");
    const std::string& file = options_.positional[1];
    auto loaded = load(file);
    if (!loaded.ok()) return fail(loaded.error(), file);
    const Policy& policy = loaded->policy;
    std::optional<size_t> planned;
    if (options_.gateway) {
      auto checked = checkGatewayPlans(policy, file, *options_.gateway);
      if (!checked.ok()) return fail(checked.error(), file);
      planned = *checked;
    }
    if (options_.json) {
      json answer = {{"ok", true},
                     {"command", "policy check"},
                     {"file", file},
                     {"policy", policy.name},
                     {"sha256", policy.source_sha256},
                     {"warnings", warningsJson(*loaded)}};
      if (planned) {
        answer["gateway"] = *options_.gateway;
        answer["plans_checked"] = *planned;
      }
      out_ << answer.dump(2) << "\n";
      return kExitOk;
    }
    out_ << file << ": valid policy \"" << policy.name << "\" ("
         << counted(policy.segments.size(), "segment") << ", "
         << counted(policy.profiles.size(), "profile") << ", "
         << counted(policy.gateways.size(), "gateway") << ", "
         << counted(loaded->warnings.size(), "warning") << ")\n";
    if (planned) {
      const Gateway& gateway = *policy.findGateway(*options_.gateway);
      out_ << "gateway " << *options_.gateway << ": all " << *planned << " isolations plan ("
           << counted(gateway.borders.size(), "bordered segment") << " x "
           << counted(policy.profiles.size(), "profile") << ")\n";
    }
    return kExitOk;
  }

  int show() {
    if (auto refused = refuseOtherOptions("show", {"--json", "--log-level", "--policy"})) {
      return *refused;
    }
    if (options_.positional.size() != 1) return usage("policy show takes no FILE");
    if (!options_.policy) return usage("policy show needs --policy FILE");
    const std::string& file = *options_.policy;
    auto loaded = load(file);
    if (!loaded.ok()) return fail(loaded.error(), file);
    const Policy& policy = loaded->policy;
    if (options_.json) {
      out_ << showJson(policy, file).dump(2) << "\n";
    } else {
      showText(policy, file);
    }
    return kExitOk;
  }

  static json showJson(const Policy& policy, const std::string& file) {
    json segments = json::array();
    for (const auto& [name, segment] : policy.segments) {
      segments.push_back({{"name", name},
                          {"description", segment.description},
                          {"prefixes", prefixTexts(segment.prefixes)},
                          {"protected", segment.is_protected},
                          {"default", segment.is_default}});
    }
    json profiles = json::array();
    for (const auto& [name, profile] : policy.profiles) {
      json allow = json::array();
      for (const auto& rule : profile.allow) allow.push_back(rule.prefix.toCidr());
      profiles.push_back({{"name", name},
                          {"description", profile.description},
                          {"peers", profile.peers},
                          {"allow", allow},
                          {"blackhole_routes", profile.blackhole_routes}});
    }
    json gateways = json::array();
    for (const auto& [id, gateway] : policy.gateways) {
      gateways.push_back(
          {{"id", id}, {"borders", gateway.borders}, {"interfaces", gateway.interfaces}});
    }
    json always_allow = json::array();
    for (const auto& rule : policy.always_allow) {
      json entry = {{"description", rule.description},
                    {"prefix", rule.prefix.toCidr()},
                    {"proto", l4ProtoName(rule.proto)}};
      if (rule.port) entry["port"] = *rule.port;
      always_allow.push_back(entry);
    }
    return {{"ok", true},
            {"command", "policy show"},
            {"file", file},
            {"policy", policy.name},
            {"sha256", policy.source_sha256},
            {"segments", segments},
            {"profiles", profiles},
            {"gateways", gateways},
            {"always_allow", always_allow}};
  }

  void showText(const Policy& policy, const std::string& file) const {
    out_ << "policy \"" << policy.name << "\" from " << file << " (sha256 "
         << policy.source_sha256.substr(0, 16) << "...)\n";
    out_ << "segments:\n";
    for (const auto& [name, segment] : policy.segments) {
      out_ << "  " << name << ": "
           << (segment.is_default ? std::string("(default: every address not in another segment)")
                                  : joined(prefixTexts(segment.prefixes), " "))
           << (segment.is_protected ? " [protected]" : "");
      if (!segment.description.empty()) out_ << " - " << segment.description;
      out_ << "\n";
    }
    out_ << "profiles:\n";
    for (const auto& [name, profile] : policy.profiles) {
      out_ << "  " << name << ": "
           << (profile.isFull() ? std::string("cuts everything but management")
                                : "cuts peers " + joined(profile.peers));
      if (!profile.allow.empty()) {
        std::vector<std::string> allowed;
        for (const auto& rule : profile.allow) allowed.push_back(rule.prefix.toCidr());
        out_ << "; keeps " << joined(allowed) << " reachable";
      }
      if (profile.blackhole_routes) out_ << "; blackhole routes";
      if (!profile.description.empty()) out_ << " - " << profile.description;
      out_ << "\n";
    }
    out_ << "gateways:\n";
    for (const auto& [id, gateway] : policy.gateways) {
      out_ << "  " << id << ": borders " << joined(gateway.borders);
      for (const auto& [segment, interfaces] : gateway.interfaces) {
        out_ << "; " << segment << " via " << joined(interfaces);
      }
      out_ << "\n";
    }
    out_ << "management.always_allow:";
    if (policy.always_allow.empty()) out_ << " (none)";
    out_ << "\n";
    for (const auto& rule : policy.always_allow) {
      out_ << "  " << rule.prefix.toCidr();
      if (rule.proto != L4Proto::kAny) out_ << " " << l4ProtoName(rule.proto);
      if (rule.port) out_ << " port " << *rule.port;
      if (!rule.description.empty()) out_ << " - " << rule.description;
      out_ << "\n";
    }
  }

  const AgentCliOptions& options_;
  std::ostream& out_;
  std::ostream& err_;
};

}  // namespace

Result<size_t> checkGatewayPlans(const Policy& policy, const std::string& file,
                                 const std::string& gateway_id) {
  const Gateway* gateway = policy.findGateway(gateway_id);
  if (!gateway) {
    return makeError(ErrorCode::kNotFound, file + ": /gateways: no gateway \"" + gateway_id +
                                               "\" (gateways: " + keysOf(policy.gateways) + ")");
  }
  size_t planned = 0;
  for (size_t i = 0; i < gateway->borders.size(); ++i) {
    const std::string& segment = gateway->borders[i];
    for (const auto& [profile, unused] : policy.profiles) {
      auto plan = planGateway(policy, gateway_id, {Isolation{segment, profile}});
      if (!plan.ok()) {
        const std::string pointer = jsonPointerAppend(
            jsonPointerAppend(jsonPointerAppend("/gateways", gateway_id), "borders"), i);
        return makeError(ErrorCode::kPolicy, file + ": " + jsonPointerDisplay(pointer) +
                                                 ": isolating \"" + segment + "\" with profile \"" +
                                                 profile +
                                                 "\" does not plan: " + plan.error().message);
      }
      ++planned;
    }
  }
  return planned;
}

int runPolicyCommand(const AgentCliOptions& options, std::ostream& out, std::ostream& err) {
  return PolicyCommand(options, out, err).run();
}

}  // namespace shadan::agent
