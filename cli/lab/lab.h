#pragma once

// A network lab made of Linux network namespaces: the topology is data (LabSpec), the building
// is Lab::up(), done only through a CommandRunner (`ip`, `sysctl`, `nft` as argv lists), so the
// exact commands are unit-testable with a fake runner and only the real runner needs root.
//
// Namespace names are `sd-<lab name>-<node>`: several labs (tests, drills, operators) can run
// side by side. Veth pairs are created inside the namespaces (`ip -n A link add X type veth peer
// name Y netns B`), so no interface ever appears in the root namespace and interface names only
// need to be unique per node. Nothing outside the lab's own namespaces is touched.
//
// Spec JSON (strict: unknown keys, wrong types and inconsistent references are errors that name
// the JSON path):
//   { "name": "segments", "description": "...",
//     "nodes": [ { "name": "gw", "role": "gateway", "nftables": ["table inet foreign {", ...] },
//                { "name": "office", "role": "host",
//                  "routes": [ { "to": "default", "via": "10.20.0.1" } ] } ],
//     "links": [ { "a": { "node": "gw", "ifname": "office", "addresses": ["10.20.0.1/24"] },
//                  "b": { "node": "office", "ifname": "eth0", "addresses": ["10.20.0.2/24"] } } ] }
// Gateways forward (ipv4 and ipv6); hosts do not. Every namespace has IPv6 DAD off so addresses
// work at once. A node may have any number of links, so two gateways, hosts on two gateways and
// gateway-to-gateway links are all expressible.

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/lab/command_runner.h"
#include "common/ip_prefix.h"
#include "common/result.h"

namespace shadan {

// An interface address with its on-link prefix length: "10.20.0.2/24".
struct LabAddress {
  IpFamily family = IpFamily::kV4;
  std::string address;  // "10.20.0.2", canonical text form
  int length = 0;

  static Result<LabAddress> parse(std::string_view text);
  std::string toCidr() const { return address + "/" + std::to_string(length); }
  // True if `other` (an address) lies inside this address's on-link prefix.
  bool onLink(const LabAddress& other) const;
  friend bool operator==(const LabAddress&, const LabAddress&) = default;
};

struct LabRoute {
  std::optional<IpPrefix> to;  // nullopt: the default route of via's family
  LabAddress via;              // length is the host length (32/128)
  std::string toText() const { return to ? to->toCidr() : "default"; }
  friend bool operator==(const LabRoute&, const LabRoute&) = default;
};

enum class LabRole { kHost, kGateway };
const char* labRoleName(LabRole role);

struct LabNode {
  std::string name;
  LabRole role = LabRole::kHost;
  std::vector<LabRoute> routes;
  std::string nftables;  // ruleset loaded with `nft -f -` after the links are up; may be empty
  friend bool operator==(const LabNode&, const LabNode&) = default;
};

struct LabEndpoint {
  std::string node;
  std::string ifname;  // 1..15 characters, unique within the node
  std::vector<LabAddress> addresses;
  friend bool operator==(const LabEndpoint&, const LabEndpoint&) = default;
};

struct LabLink {
  LabEndpoint a;
  LabEndpoint b;
  friend bool operator==(const LabLink&, const LabLink&) = default;
};

struct LabSpec {
  std::string name;
  std::string description;
  std::vector<LabNode> nodes;
  std::vector<LabLink> links;

  const LabNode* findNode(std::string_view node) const;
  // The first address of `family` on any interface of `node`, in link order.
  std::optional<LabAddress> firstAddress(std::string_view node, IpFamily family) const;
  // Every endpoint that belongs to `node`, in link order.
  std::vector<const LabEndpoint*> endpointsOf(std::string_view node) const;
  friend bool operator==(const LabSpec&, const LabSpec&) = default;
};

// Strict loaders; `source` names the input in error messages.
Result<LabSpec> parseLabSpec(std::string_view json_text, const std::string& source);
Result<LabSpec> loadLabSpecFile(const std::filesystem::path& path);

// The standard lab "segments": gateway `gw` (forwarding, with a foreign accept-all
// `table inet foreign` standing for firewalld) and hosts office, servers, mgmt and inet, each on
// its own veth to gw. Matches policies/examples/lab.json.
const LabSpec& standardLabSpec();

// Lab names become part of namespace names: ^[a-z0-9-]{1,8}$.
Status validateLabName(std::string_view name);
// A name unique to this process ("p" + pid).
std::string defaultLabName();
// "sd-<name>-": every namespace of lab `name` starts with this.
std::string labNetnsPrefix(std::string_view lab_name);

// One running (or runnable) instance of a LabSpec.
//
// Not thread-safe. `runner` must outlive the Lab. The destructor tears the lab down unless
// detach() was called, so a failing test still cleans up.
class Lab {
 public:
  // REQUIRES: validateLabName(name).ok(); the spec came from parseLabSpec (is valid).
  Lab(LabSpec spec, std::string name, CommandRunner& runner);
  ~Lab();
  Lab(const Lab&) = delete;
  Lab& operator=(const Lab&) = delete;

  // Builds every namespace, link, address, route, sysctl and ruleset. On failure everything
  // already created is torn down and the error names the command that failed.
  Status up();
  // Deletes every namespace of this lab that exists (their veths go with them). Idempotent;
  // works on a lab built by another process with the same spec and name.
  Status down();
  // Leaves the namespaces in place when this object is destroyed (`shadanctl lab up`).
  void detach() { detached_ = true; }

  const LabSpec& spec() const { return spec_; }
  const std::string& name() const { return name_; }
  std::string prefix() const { return labNetnsPrefix(name_); }
  // The real netns name of `node`: "sd-<lab>-<node>".
  std::string nsName(std::string_view node) const;

 private:
  Status build();
  Status run(const std::vector<std::string>& argv, const std::string& stdin_data = {});
  // `settings`: "key=value" each, written in one sysctl run inside `ns`.
  Status sysctl(const std::string& ns, const std::vector<std::string>& settings);

  LabSpec spec_;
  std::string name_;
  CommandRunner& runner_;
  bool detached_ = false;
};

}  // namespace shadan
