#include "cli/lab/lab_spec_writer.h"

#include <nlohmann/json.hpp>
#include <sstream>

namespace shadan {
namespace {

using Json = nlohmann::json;

Json endpointJson(const LabEndpoint& end) {
  Json addresses = Json::array();
  for (const LabAddress& address : end.addresses) addresses.push_back(address.toCidr());
  return {{"node", end.node}, {"ifname", end.ifname}, {"addresses", addresses}};
}

}  // namespace

std::string formatLabSpec(const LabSpec& spec) {
  Json nodes = Json::array();
  for (const LabNode& node : spec.nodes) {
    Json json = {{"name", node.name}, {"role", labRoleName(node.role)}};
    if (!node.routes.empty()) {
      Json routes = Json::array();
      for (const LabRoute& route : node.routes) {
        routes.push_back({{"to", route.toText()}, {"via", route.via.address}});
      }
      json["routes"] = routes;
    }
    if (!node.nftables.empty()) {
      // parseLabSpec joins the lines with a newline after each.
      Json lines = Json::array();
      std::istringstream text(node.nftables);
      std::string line;
      while (std::getline(text, line)) lines.push_back(line);
      json["nftables"] = lines;
    }
    nodes.push_back(json);
  }
  Json links = Json::array();
  for (const LabLink& link : spec.links) {
    links.push_back({{"a", endpointJson(link.a)}, {"b", endpointJson(link.b)}});
  }
  Json root = {{"name", spec.name}};
  if (!spec.description.empty()) root["description"] = spec.description;
  root["nodes"] = nodes;
  root["links"] = links;
  return root.dump(2) + "\n";
}

}  // namespace shadan
