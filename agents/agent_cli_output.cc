#include "agents/agent_cli_output.h"

namespace shadan::agent {

void printChangeAnswer(const nlohmann::json& answer, const AgentCliOptions& options,
                       std::ostream& out, std::ostream& err) {
  const bool changed = answer.value("changed", false);
  const bool repaired = answer.value("repaired", false);
  const std::string gateway = answer.value("gateway", "");
  // What the agent did, from its answer: apply-file's action and segment come from the signed
  // file, not from the command line.
  const std::string action = answer.value("action", options.command);
  std::string subject;
  if (options.all) {
    subject = "all segments";
  } else if (answer.contains("segment") && answer["segment"].is_string()) {
    subject = answer["segment"].get<std::string>();
    const std::string profile = answer.value("profile", "");
    if (!profile.empty() && profile != "*" &&
        (options.profile || options.command == "apply-file")) {
      subject += " (" + profile + ")";
    }
  } else {
    subject = options.positional.empty() ? std::string("-") : options.positional[0];
    if (options.profile) subject += " (" + *options.profile + ")";
  }
  if (action == "isolate") {
    out << (repaired  ? "repaired: isolated "
            : changed ? "isolated "
                      : "already isolated ")
        << subject << " on " << gateway << "\n";
    if (repaired) {
      out << "the state already held this isolation but the kernel did not (table missing or "
             "altered); it is applied again\n";
    }
  } else {
    out << (repaired  ? "repaired: restored "
            : changed ? "restored "
                      : "nothing to restore for ")
        << subject << " on " << gateway << "\n";
  }
  for (const auto& isolation : answer.value("isolations", nlohmann::json::array())) {
    if (isolation.contains("expires") && answer.contains("segment") &&
        isolation["segment"] == answer["segment"] && action == "isolate") {
      out << "restores itself at " << isolation["expires"].get<std::string>() << " ("
          << isolation["profile"].get<std::string>() << ")\n";
    }
  }
  for (const auto& warning : answer.value("warnings", nlohmann::json::array())) {
    err << "shadan-agent: warning: " << warning.get<std::string>() << "\n";
  }
  if (answer.value("conntrack_deleted", 0) > 0) {
    out << "conntrack entries deleted: " << answer.value("conntrack_deleted", 0) << "\n";
  }
  for (const auto& expired : answer.value("expired", nlohmann::json::array())) {
    out << "expired: " << expired["segment"].get<std::string>() << " ("
        << expired["profile"].get<std::string>() << ")\n";
  }
  out << "ruleset sha256 "
      << (answer.value("table_present", false) ? answer.value("ruleset_sha256", "")
                                               : std::string("(no table)"))
      << "\n";
  out << "active isolations: " << answer.value("isolations", nlohmann::json::array()).size()
      << "\n";
}

void printStatusAnswer(const nlohmann::json& answer, std::ostream& out) {
  out << "gateway " << answer.value("gateway", "") << " (policy " << answer.value("policy", "")
      << ")\n";
  const auto isolations = answer.value("isolations", nlohmann::json::array());
  if (isolations.empty()) {
    out << "no active isolation\n";
  } else {
    out << "active isolations:\n";
    for (const auto& i : isolations) {
      out << "  " << i.value("segment", "") << "  profile=" << i.value("profile", "")
          << "  since=" << i.value("since", "")
          << (i.contains("expires") ? "  expires=" + i.value("expires", "") : std::string())
          << "  origin=" << i.value("origin", "") << "\n";
    }
  }
  const auto kernel = answer.value("kernel", nlohmann::json::object());
  out << "kernel: " << kernel.value("state", "unknown");
  if (kernel.value("table_present", false)) {
    out << " (table inet shadan sha256 " << kernel.value("ruleset_sha256", "") << ")";
  }
  if (kernel.contains("error")) out << " (" << kernel.value("error", "") << ")";
  out << "\n";
}

void printVerifyAnswer(const nlohmann::json& answer, std::ostream& out) {
  if (answer.value("accepted", false)) {
    const auto order = answer.value("order", nlohmann::json::object());
    out << "would be accepted: " << order.value("action", "") << " " << order.value("segment", "")
        << " (" << order.value("profile", "") << ")"
        << " requested by " << order.value("requested_by", "") << ", signed by "
        << order.value("signers", nlohmann::json::array()).dump() << "\n";
  } else {
    out << "would be REJECTED: " << answer.value("reason", "") << ": "
        << answer.value("message", "") << "\n";
  }
}

void printPlan(const DataplanePlan& plan, const std::string& gateway, bool json,
               std::ostream& out) {
  if (json) {
    nlohmann::json routes = nlohmann::json::array();
    for (const auto& route : plan.blackhole_routes) routes.push_back(route.toCidr());
    nlohmann::json doc = {{"ok", true},
                          {"command", "plan"},
                          {"gateway", gateway},
                          {"nft_script", plan.nft_script},
                          {"blackhole_routes", routes}};
    out << doc.dump(2) << "\n";
  } else {
    out << plan.nft_script;
    for (const auto& route : plan.blackhole_routes) {
      out << "# blackhole route " << route.toCidr() << "\n";
    }
  }
}

}  // namespace shadan::agent
