#include "agents/agent_cli_output.h"

#include <cstdint>
#include <cstdio>
#include <ctime>
#include <iterator>
#include <string>

#include "common/orders.h"

namespace shadan::agent {

namespace {

// "2026-12-05 19:04:05 JST (10:04:05Z)": local time for the operator at the console, UTC for
// comparing with logs and the controller. An unparsable text is shown as it is.
std::string localAndUtc(const std::string& rfc3339) {
  auto ms = parseRfc3339UtcMillis(rfc3339);
  if (!ms.ok()) return rfc3339;
  const std::time_t seconds = static_cast<std::time_t>(*ms / 1000);
  std::tm local{};
  std::tm utc{};
  if (::localtime_r(&seconds, &local) == nullptr || ::gmtime_r(&seconds, &utc) == nullptr) {
    return rfc3339;
  }
  char local_text[64];
  char utc_text[32];
  std::strftime(local_text, sizeof local_text, "%Y-%m-%d %H:%M:%S %Z", &local);
  std::strftime(utc_text, sizeof utc_text, "%H:%M:%SZ", &utc);
  return std::string(local_text) + " (" + utc_text + ")";
}

// 1h2m3s, 45s.
std::string humanSeconds(int64_t s) {
  std::string out;
  if (s >= 86400) out += std::to_string(s / 86400) + "d";
  if (s >= 3600) out += std::to_string(s % 86400 / 3600) + "h";
  if (s >= 60) out += std::to_string(s % 3600 / 60) + "m";
  out += std::to_string(s % 60) + "s";
  return out;
}

// 512 B, 1.5 KiB, 98 KiB, 12 MiB: binary units, one decimal below 10.
std::string humanBytes(uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " B";
  constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double value = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, value < 10 ? "%.1f %s" : "%.0f %s", value, kUnits[unit]);
  return text;
}

// "dropped 1234 packets (98 KiB)", or "dropped - (why)" when the counters could not be read.
// Nothing when the answer has no counters at all (the kernel was not asked).
void printDropped(const nlohmann::json& isolation, std::ostream& out) {
  if (!isolation.contains("dropped")) return;
  const nlohmann::json& dropped = isolation["dropped"];
  if (!dropped.is_object()) {
    out << "    dropped - (" << isolation.value("dropped_error", "counters not read") << ")\n";
    return;
  }
  const uint64_t packets = dropped.value("packets", uint64_t{0});
  out << "    dropped " << packets << (packets == 1 ? " packet (" : " packets (")
      << humanBytes(dropped.value("bytes", uint64_t{0})) << ")\n";
}

}  // namespace

namespace {

// What an isolation (an entry of "isolations") or a change answer is about, in words: the
// segment, "host 10.20.0.5/32 in office" (an answer of several: the first hosts and "+N"),
// "the UPLINK" (", links held down"), "the ISLAND".
std::string rungSubject(const nlohmann::json& item) {
  const std::string scope = item.value("scope", "segment");
  const std::string segment = item.value("segment", "");
  if (scope == "uplink") {
    return std::string("the UPLINK") + (item.value("link_down", false) ? " (links held down)" : "");
  }
  if (scope == "island") return "the ISLAND";
  if (scope != "host") return segment;
  if (item.contains("host")) return "host " + item.value("host", "") + " in " + segment;
  const auto hosts = item.value("hosts", nlohmann::json::array());
  std::string list;
  constexpr size_t kShown = 4;
  for (size_t i = 0; i < hosts.size() && i < kShown; ++i) {
    list += (i ? ", " : "") + hosts[i].get<std::string>();
  }
  if (hosts.size() > kShown) list += " +" + std::to_string(hosts.size() - kShown) + " more";
  return (hosts.size() == 1 ? "host " : "hosts ") + list + " in " + segment;
}

}  // namespace

void printChangeAnswer(const nlohmann::json& answer, const AgentCliOptions& options,
                       std::ostream& out, std::ostream& err) {
  const bool changed = answer.value("changed", false);
  const bool repaired = answer.value("repaired", false);
  const std::string gateway = answer.value("gateway", "");
  // What the agent did, from its answer: apply-file's action and segment come from the signed
  // file, not from the command line.
  const std::string action = answer.value("action", options.command);
  std::string subject;
  const std::string scope = answer.value("scope", "segment");
  if (options.all) {
    subject = "all segments";
  } else if (scope != "segment") {
    subject = rungSubject(answer);
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
        isolation["segment"] == answer["segment"] && isolation.value("scope", "segment") == scope &&
        action == "isolate") {
      if (answer.value("daemon", true)) {
        out << "restores itself at " << localAndUtc(isolation["expires"].get<std::string>()) << " ("
            << isolation["profile"].get<std::string>() << ")\n";
      } else {
        out << "deadline " << localAndUtc(isolation["expires"].get<std::string>()) << " ("
            << isolation["profile"].get<std::string>()
            << "): NOT lifted at that time, no daemon runs; the next daemon start or "
               "shadan-agent command after it lifts it\n";
      }
      if (scope == "host") break;  // the hosts of one order share their deadline
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
  if (answer.contains("daemon")) {
    out << (answer.value("daemon", false)
                ? "daemon: running (it answered)\n"
                : "daemon: NOT running: nothing repairs a changed table or lifts a deadline "
                  "until it starts (systemctl start shadan-agent)\n");
  }
  const auto isolations = answer.value("isolations", nlohmann::json::array());
  if (isolations.empty()) {
    out << "no active isolation\n";
  } else {
    out << "active isolations:\n";
    for (const auto& i : isolations) {
      out << "  " << rungSubject(i) << "  profile=" << i.value("profile", "")
          << (i.value("drill", false) ? "  DRILL" : "")
          << (i.value("automatic", false) ? "  AUTOMATIC" : "")
          << "  origin=" << i.value("origin", "") << "\n    since "
          << localAndUtc(i.value("since", "")) << "\n";
      if (i.contains("expires")) {
        if (i.value("overdue", false)) {
          out << "    OVERDUE: its deadline " << localAndUtc(i.value("expires", ""))
              << " has passed and nothing lifted it (no daemon ran)\n";
        } else {
          out << "    restores itself in " << humanSeconds(i.value("remaining_s", int64_t{0}))
              << ", at " << localAndUtc(i.value("expires", "")) << "\n";
        }
      }
      printDropped(i, out);
    }
  }
  const auto kernel = answer.value("kernel", nlohmann::json::object());
  const std::string state = kernel.value("state", "unknown");
  out << "kernel: " << state;
  if (kernel.value("table_present", false)) {
    out << " (table inet shadan sha256 " << kernel.value("ruleset_sha256", "") << ")";
  }
  if (kernel.contains("error")) out << " (" << kernel.value("error", "") << ")";
  out << "\n";
  if (state == "drift") {
    out << "DRIFT: table inet shadan is not what this agent applied (someone changed it)\n";
  } else if (state == "missing") {
    out << "MISSING: isolations are desired but table inet shadan is gone: NOTHING IS CUT\n";
  } else if (state == "unexpected_table") {
    out << "UNEXPECTED: nothing is desired but a table inet shadan is there\n";
  }
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
