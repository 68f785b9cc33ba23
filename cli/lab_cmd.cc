#include "cli/lab_cmd.h"

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/lab/lab.h"
#include "cli/lab/netns.h"
#include "cli/lab/policy_lab.h"
#include "cli/lab/probe.h"
#include "cli/options.h"
#include "cli/shadanctl.h"

namespace shadan {
namespace {

using Json = nlohmann::json;

constexpr const char* kLabUsage = R"(usage: shadanctl lab <up|down|probe> [options]

  lab up [--name NAME] [--spec FILE | --from-policy POLICY] [--json]
      Build the lab and leave it running; prints its namespaces and addresses.
      NAME: 1-8 of a-z 0-9 -, default p<pid>. Namespaces are named sd-NAME-<node>.
      FILE: a lab spec (JSON); default: the built-in standard lab "segments".
      POLICY: a policy file; the lab is its replica: one gateway per policy gateway
      (node gw-<id>, with the interfaces the policy names), a host per link facing
      each segment inside the segment's prefixes, the controller at the
      management.always_allow address, an internet node for the default segment,
      links between gateways that share a segment, routes in both families.
  lab down --name NAME [--spec FILE | --from-policy POLICY]
      Delete every namespace of the lab. Safe to repeat.
  lab probe --name NAME --from NODE --to NODE [--tcp PORT | --icmp] [-6]
            [--timeout MS] [--spec FILE | --from-policy POLICY] [--json]
      Send real packets from one lab node to another's first address (IPv4, or IPv6 with -6).
      --tcp PORT: a TCP connect to a listener the probe opens on NODE (0: any free port;
      the default). --icmp: one echo request. --timeout: default 1000 ms.
      Exit 0: reachable, 1: not reachable, 2: usage error, 3: the probe could not run.

Needs root (network namespaces).
)";

Result<uint64_t> parseNumber(const std::string& option, const std::string& text, uint64_t max) {
  if (text.empty() || text.size() > 10 ||
      text.find_first_not_of("0123456789") != std::string::npos || std::stoull(text) > max) {
    return makeError(ErrorCode::kInvalidArgument, option + " must be a number from 0 to " +
                                                      std::to_string(max) + ", not '" + text + "'");
  }
  return std::stoull(text);
}

class LabCommand {
 public:
  LabCommand(std::ostream& out, std::ostream& err, CommandRunner& runner)
      : out_(out), err_(err), runner_(runner) {}

  int run(const std::vector<std::string>& args) {
    if (args.size() < 2)
      return usageError("'lab' needs a subcommand (subcommands: up, down, probe)");
    const std::string& sub = args[1];
    if (sub == "-h" || sub == "--help" || sub == "help") {
      out_ << kLabUsage;
      return kExitOk;
    }
    OptionSpec option_spec;
    option_spec.command = "lab " + sub;
    option_spec.with_value = {"--name", "--spec", "--from-policy"};
    option_spec.flags = {"--json"};
    if (sub == "probe") {
      option_spec.with_value.insert({"--from", "--to", "--tcp", "--timeout"});
      option_spec.flags.insert({"--icmp", "-6"});
    } else if (sub == "down") {
      option_spec.flags.clear();  // down prints one line; there is nothing to give as JSON
    } else if (sub != "up") {
      return usageError("unknown lab subcommand '" + sub + "' (subcommands: up, down, probe)");
    }
    auto options = parseCommandOptions(args, 2, option_spec);
    if (!options.ok()) return usageError(options.error().message);
    if (options->help) {
      out_ << kLabUsage;
      return kExitOk;
    }

    std::string name;
    if (auto given = options->value("--name")) {
      name = *given;
    } else if (sub == "up") {
      name = defaultLabName();
    } else {
      return usageError("'lab " + sub + "' needs --name NAME");
    }
    if (Status valid = validateLabName(name); !valid.ok()) {
      return usageError("--name: " + valid.error().message);
    }

    LabSpec spec = standardLabSpec();
    if (options->has("--spec") && options->has("--from-policy")) {
      return usageError("--spec and --from-policy exclude each other");
    }
    if (auto file = options->value("--spec")) {
      auto loaded = loadLabSpecFile(*file);
      if (!loaded.ok()) return usageError("--spec: " + loaded.error().message);
      spec = std::move(*loaded);
    }
    std::optional<PolicyLab> policy_lab;
    if (auto file = options->value("--from-policy")) {
      auto loaded = loadPolicyFile(*file);
      if (!loaded.ok()) return usageError("--from-policy: " + loaded.error().message);
      auto built = labFromPolicy(loaded->policy, {.source = *file});
      if (!built.ok()) return usageError("--from-policy: " + built.error().message);
      policy_lab = std::move(*built);
      policy_file_ = *file;
      spec = policy_lab->spec;
    }

    if (sub == "up" && policy_lab)
      return labUpFromPolicy(*policy_lab, name, options->has("--json"));
    if (sub == "up") return labUp(std::move(spec), name, options->has("--json"));
    if (sub == "down") return labDown(std::move(spec), name);
    return labProbe(std::move(spec), name, *options);
  }

 private:
  int labUp(LabSpec spec, const std::string& name, bool json) {
    Lab lab(std::move(spec), name, runner_);
    if (Status status = lab.up(); !status.ok()) return failure(status.error());
    lab.detach();
    if (json) {
      out_ << describe(lab).dump(2) << "\n";
      return kExitOk;
    }
    out_ << "lab " << name << " is up (spec " << lab.spec().name << "); remove it with: shadanctl "
         << "lab down --name " << name << "\n";
    for (const LabNode& node : lab.spec().nodes) {
      out_ << node.name << " (" << labRoleName(node.role) << ")  netns " << lab.nsName(node.name)
           << "\n";
      for (const LabEndpoint* end : lab.spec().endpointsOf(node.name)) {
        out_ << "  " << end->ifname;
        for (const LabAddress& address : end->addresses) out_ << "  " << address.toCidr();
        out_ << "\n";
      }
    }
    return kExitOk;
  }

  // Like labUp, and says which node is which gateway, host, controller and internet.
  int labUpFromPolicy(const PolicyLab& policy_lab, const std::string& name, bool json) {
    Lab lab(policy_lab.spec, name, runner_);
    if (Status status = lab.up(); !status.ok()) return failure(status.error());
    lab.detach();
    if (json) {
      out_ << describePolicyLab(lab, policy_lab).dump(2) << "\n";
      return kExitOk;
    }
    out_ << "lab " << name << " is up (policy " << policy_lab.spec.name << " from " << policy_file_
         << "); remove it with: shadanctl lab down --from-policy " << policy_file_ << " --name "
         << name << "\n";
    out_ << "gateways:\n";
    for (const auto& [id, node] : policy_lab.gateway_nodes) {
      out_ << "  " << id << "  node " << node << "  netns " << lab.nsName(node) << "\n";
      for (const LabEndpoint* end : lab.spec().endpointsOf(node)) {
        out_ << "    " << end->ifname;
        for (const LabAddress& address : end->addresses) out_ << "  " << address.toCidr();
        out_ << "\n";
      }
    }
    out_ << "hosts (segment, gateway, address, node):\n";
    for (const PolicyLab::Host& host : policy_lab.hosts) {
      out_ << "  " << host.segment << "  " << host.gateway << "  " << host.address << "  "
           << host.node << "\n";
    }
    out_ << "controller: node " << policy_lab.controller_node << "  netns "
         << lab.nsName(policy_lab.controller_node) << "  address " << policy_lab.controller_address
         << "  (segment " << policy_lab.management_segment << ", gateway "
         << policy_lab.management_gateway << ")\n";
    if (policy_lab.internet_node.empty()) {
      out_ << "internet: none (no gateway borders a default segment)\n";
    } else {
      out_ << "internet: node " << policy_lab.internet_node << "  netns "
           << lab.nsName(policy_lab.internet_node) << "\n";
    }
    for (const std::string& note : policy_lab.notes) out_ << "note: " << note << "\n";
    return kExitOk;
  }

  Json describePolicyLab(const Lab& lab, const PolicyLab& policy_lab) const {
    Json json = describe(lab);
    json["policy"] = {{"name", policy_lab.spec.name}, {"file", policy_file_}};
    Json gateways = Json::object();
    for (const auto& [id, node] : policy_lab.gateway_nodes) {
      gateways[id] = {{"node", node}, {"netns", lab.nsName(node)}};
    }
    json["gateways"] = gateways;
    Json hosts = Json::array();
    for (const PolicyLab::Host& host : policy_lab.hosts) {
      hosts.push_back({{"segment", host.segment},
                       {"gateway", host.gateway},
                       {"family", host.family == IpFamily::kV4 ? "ipv4" : "ipv6"},
                       {"address", host.address},
                       {"node", host.node},
                       {"netns", lab.nsName(host.node)}});
    }
    json["hosts"] = hosts;
    json["controller"] = {{"node", policy_lab.controller_node},
                          {"netns", lab.nsName(policy_lab.controller_node)},
                          {"address", policy_lab.controller_address},
                          {"segment", policy_lab.management_segment},
                          {"gateway", policy_lab.management_gateway}};
    json["internet"] = policy_lab.internet_node.empty()
                           ? Json(nullptr)
                           : Json{{"node", policy_lab.internet_node},
                                  {"netns", lab.nsName(policy_lab.internet_node)}};
    json["notes"] = policy_lab.notes;
    return json;
  }

  static Json describe(const Lab& lab) {
    Json nodes = Json::array();
    for (const LabNode& node : lab.spec().nodes) {
      Json interfaces = Json::array();
      for (const LabLink& link : lab.spec().links) {
        for (auto [end, peer] : {std::pair{&link.a, &link.b}, std::pair{&link.b, &link.a}}) {
          if (end->node != node.name) continue;
          Json addresses = Json::array();
          for (const LabAddress& address : end->addresses) addresses.push_back(address.toCidr());
          interfaces.push_back({{"ifname", end->ifname},
                                {"addresses", addresses},
                                {"peer", {{"node", peer->node}, {"ifname", peer->ifname}}}});
        }
      }
      nodes.push_back({{"name", node.name},
                       {"role", labRoleName(node.role)},
                       {"netns", lab.nsName(node.name)},
                       {"interfaces", interfaces}});
    }
    return {{"lab", lab.name()}, {"spec", lab.spec().name}, {"nodes", nodes}};
  }

  int labDown(LabSpec spec, const std::string& name) {
    Lab lab(std::move(spec), name, runner_);
    Status status = lab.down();
    lab.detach();  // down() already ran; the destructor need not repeat it
    if (!status.ok()) return failure(status.error());
    out_ << "lab " << name << " is down\n";
    return kExitOk;
  }

  int labProbe(LabSpec spec, const std::string& name, const CommandOptions& options) {
    auto from = options.value("--from");
    auto to = options.value("--to");
    if (!from) return usageError("'lab probe' needs --from NODE");
    if (!to) return usageError("'lab probe' needs --to NODE");
    for (const auto& [option, node] : {std::pair{"--from", *from}, std::pair{"--to", *to}}) {
      if (spec.findNode(node) == nullptr) {
        // A lab from a large policy has hundreds of nodes: name a few, the count, and where the
        // rest are (`lab up` prints every host with its segment and gateway).
        constexpr size_t kNamed = 20;
        std::string known;
        for (size_t i = 0; i < spec.nodes.size() && i < kNamed; ++i) {
          known += " " + spec.nodes[i].name;
        }
        if (spec.nodes.size() > kNamed) {
          known += " ... " + std::to_string(spec.nodes.size()) + " in all, listed by 'lab up'";
        }
        return usageError(std::string(option) + ": no node '" + node + "' in lab spec " +
                          spec.name + " (nodes:" + known + ")");
      }
    }
    if (options.has("--tcp") && options.has("--icmp")) {
      return usageError("--tcp and --icmp exclude each other");
    }
    uint16_t port = 0;
    if (auto text = options.value("--tcp")) {
      auto parsed = parseNumber("--tcp", *text, 65535);
      if (!parsed.ok()) return usageError(parsed.error().message);
      port = static_cast<uint16_t>(*parsed);
    }
    std::chrono::milliseconds timeout(1000);
    if (auto text = options.value("--timeout")) {
      auto parsed = parseNumber("--timeout", *text, 600000);
      if (!parsed.ok() || *parsed == 0) {
        return usageError("--timeout must be a number of milliseconds from 1 to 600000, not '" +
                          *text + "'");
      }
      timeout = std::chrono::milliseconds(*parsed);
    }
    const IpFamily family = options.has("-6") ? IpFamily::kV6 : IpFamily::kV4;
    auto address = spec.firstAddress(*to, family);
    if (!address) {
      return usageError("--to: node '" + *to + "' has no " +
                        (family == IpFamily::kV4 ? "IPv4" : "IPv6") + " address");
    }

    // Never built here: a probe only looks at a lab that `lab up` left running.
    Lab lab(std::move(spec), name, runner_);
    lab.detach();
    const std::string from_ns = lab.nsName(*from);
    const std::string to_ns = lab.nsName(*to);
    for (const std::string& ns : {from_ns, to_ns}) {
      if (!netnsExists(ns)) {
        return failure(makeError(ErrorCode::kNotFound,
                                 "lab " + name + " is not running (no netns " + ns + ")"),
                       kExitProbeError);
      }
    }
    const bool icmp = options.has("--icmp");
    const auto start = std::chrono::steady_clock::now();
    auto reachable = icmp ? icmpEcho(from_ns, address->address, timeout)
                          : tcpConnect(from_ns, to_ns, address->address, port, timeout);
    const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    if (!reachable.ok()) return failure(reachable.error(), kExitProbeError);

    const std::string proto = icmp ? (family == IpFamily::kV4 ? "icmp" : "icmpv6") : "tcp";
    if (options.has("--json")) {
      Json result = {{"lab", name},
                     {"from", *from},
                     {"to", *to},
                     {"address", address->address},
                     {"proto", proto},
                     {"reachable", *reachable},
                     {"elapsed_ms", elapsed.count()}};
      if (!icmp) result["port"] = port;
      out_ << result.dump() << "\n";
    } else {
      out_ << (*reachable ? "reachable" : "NOT reachable") << ": " << *from << " -> " << *to << " "
           << address->address << " " << proto;
      if (!icmp) out_ << (port == 0 ? " (any port)" : " port " + std::to_string(port));
      out_ << " in " << elapsed.count() << " ms\n";
    }
    return *reachable ? kExitOk : kExitFailure;
  }

  int usageError(const std::string& message) { return printUsageError(err_, "lab", message); }
  int failure(const Error& error, int code = kExitFailure) {
    err_ << "shadanctl: " << error.message << "\n";
    return code;
  }

  std::ostream& out_;
  std::ostream& err_;
  CommandRunner& runner_;
  std::string policy_file_;  // --from-policy
};

}  // namespace

const char* labUsage() { return kLabUsage; }

int runLabCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                  CommandRunner& runner) {
  return LabCommand(out, err, runner).run(args);
}

}  // namespace shadan
