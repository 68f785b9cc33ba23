#include "cli/agents_cmd.h"

#include <nlohmann/json.hpp>
#include <ostream>

#include "cli/shadanctl.h"
#include "common/strict_json.h"

namespace shadan {
namespace {

using Json = nlohmann::json;

}  // namespace

int runAgentsCommand(const CommandOptions& options, ControllerContext& ctx) {
  const auto& words = options.positionals;
  if (!words.empty() && words[0] != "approve") {
    return ctx.usage("unknown agents subcommand " + quoteForMessage(words[0]) +
                     " (subcommands: approve)");
  }
  if (words.empty()) {
    if (options.has("--reason")) return ctx.usage("--reason is for 'agents approve'");
    auto api = ctx.transport(options);
    if (!api.ok()) return ctx.usage(api.error().message);
    auto response = (*api)->request("GET", "/v1/agents", std::nullopt);
    if (!response.ok()) return ctx.transportFailure(response.error());
    if (!response->ok()) return ctx.refused(*response, "the agents request");
    if (ctx.json()) {
      ctx.out() << response->body.dump() << "\n";
      return kExitOk;
    }
    std::vector<std::vector<std::string>> table = {
        {"AGENT", "STATUS", "KEYID", "CONNECTED", "LAST_SEEN"}};
    const Json& body = response->body;
    if (body.contains("agents") && body["agents"].is_array()) {
      for (const Json& agent : body["agents"]) {
        const std::string keyid = jsonText(agent, "keyid");
        table.push_back({jsonText(agent, "agent_id"), jsonText(agent, "status"),
                         keyid.size() > 16 ? keyid.substr(0, 16) : keyid,
                         jsonText(agent, "connected") + connectedOn(agent),
                         jsonText(agent, "last_seen")});
      }
    }
    printTable(ctx.out(), table);
    return kExitOk;
  }
  if (words.size() < 2) return ctx.usage("'agents approve' needs an AGENT_ID");
  const std::string& agent_id = words[1];
  if (!isSafePathSegment(agent_id))
    return ctx.usage("invalid agent id " + quoteForMessage(agent_id));
  auto reason = options.value("--reason");
  if (!reason) return ctx.usage("'agents approve' needs --reason TEXT (it is audited)");
  if (Status valid = validateReason(*reason); !valid.ok()) return ctx.usage(valid.error().message);
  auto api = ctx.transport(options);
  if (!api.ok()) return ctx.usage(api.error().message);
  auto response =
      (*api)->request("POST", "/v1/agents/" + agent_id + "/approve", Json{{"reason", *reason}});
  if (!response.ok()) return ctx.transportFailure(response.error());
  if (!response->ok()) return ctx.refused(*response, "the approval of agent " + agent_id);
  if (ctx.json()) {
    ctx.out() << response->body.dump() << "\n";
  } else {
    ctx.out() << "agent " << agent_id << " " << jsonText(response->body, "status") << "\n";
  }
  return kExitOk;
}

}  // namespace shadan
