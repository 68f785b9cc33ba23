#include "cli/approval_cmd.h"

#include <chrono>
#include <istream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "cli/gateway_table.h"
#include "cli/response_view.h"
#include "cli/shadanctl.h"
#include "common/duration.h"
#include "common/ed25519.h"
#include "common/orders.h"
#include "common/strict_json.h"

namespace shadan {
namespace {

using Json = nlohmann::json;

// An approval entry's authz envelope: the entry itself or its "envelope"/"authz" member.
const Json& approvalEnvelope(const Json& entry) {
  for (const char* key : {"envelope", "authz"}) {
    if (entry.contains(key) && entry[key].is_object()) return entry[key];
  }
  return entry;
}

struct PendingAuthz {
  std::string payload_type;
  std::string payload;  // decoded bytes, exactly as they will be signed
  Authz authz;
};

Result<PendingAuthz> decodePendingAuthz(const Json& entry) {
  const Json& envelope = approvalEnvelope(entry);
  if (!envelope.contains("payloadType") || !envelope["payloadType"].is_string() ||
      !envelope.contains("payload") || !envelope["payload"].is_string()) {
    return makeError(ErrorCode::kParse, "approval has no payloadType/payload");
  }
  PendingAuthz out;
  out.payload_type = envelope["payloadType"].get<std::string>();
  if (out.payload_type != kAuthzPayloadType) {
    return makeError(ErrorCode::kParse, "approval payloadType " +
                                            quoteForMessage(out.payload_type) +
                                            " is not an authz; refusing to read or sign it");
  }
  auto bytes = base64Decode(envelope["payload"].get<std::string>());
  if (!bytes.ok()) return bytes.error().withContext("approval payload");
  out.payload.assign(bytes->begin(), bytes->end());
  SHADAN_ASSIGN_OR_RETURN(auto authz, parseAuthz(out.payload));
  out.authz = std::move(authz);
  return out;
}

std::vector<const Json*> approvalEntries(const Json& body) {
  std::vector<const Json*> entries;
  const Json* list = &body;
  if (body.is_object() && body.contains("approvals")) list = &body["approvals"];
  if (list->is_array()) {
    for (const Json& entry : *list) {
      if (entry.is_object()) entries.push_back(&entry);
    }
  }
  // The controller lists automatic actions apart ({"approvals":[...],"automatic":[...]}).
  if (body.is_object() && body.contains("automatic") && body["automatic"].is_array()) {
    for (const Json& entry : body["automatic"]) {
      if (entry.is_object()) entries.push_back(&entry);
    }
  }
  return entries;
}

// The orders that wait for operator signatures, one row each.
void printSignatureApprovals(std::ostream& out, const std::vector<const Json*>& entries) {
  std::vector<std::vector<std::string>> table = {
      {"APPROVAL", "ACTION", "SEGMENT", "REQUESTED_BY", "SIGNED", "EXPIRES", "REASON"}};
  for (const Json* entry : entries) {
    const std::string id = firstJsonText(*entry, {"approval_id", "id"});
    const std::string signed_count = jsonText(*entry, "have") + "/" + jsonText(*entry, "needed");
    auto pending = decodePendingAuthz(*entry);
    if (!pending.ok()) {
      table.push_back({id, "?", "?", "?", signed_count, "?", pending.error().message});
      continue;
    }
    const Authz& authz = pending->authz;
    table.push_back({id, orderActionName(authz.action),
                     authzTargetText(authz) + ":" + authz.profile, authz.requested_by, signed_count,
                     formatRfc3339(authz.expires_at_ms), authz.reason});
  }
  printTable(out, table);
}

}  // namespace

int runApprovalsCommand(const CommandOptions& options, ControllerContext& ctx) {
  auto api = ctx.transport(options);
  if (!api.ok()) return ctx.usage(api.error().message);
  auto response = (*api)->request("GET", "/v1/approvals", std::nullopt);
  if (!response.ok()) return ctx.transportFailure(response.error());
  if (!response->ok()) return ctx.refused(*response, "the approvals request");
  if (ctx.json()) {
    ctx.out() << response->body.dump() << "\n";
    return kExitOk;
  }
  // Automatic actions wait for confirm or release, not for signatures: their own section.
  std::vector<const Json*> entries;
  std::vector<const Json*> automatic;
  for (const Json* entry : approvalEntries(response->body)) {
    (isAutomaticEntry(*entry) ? automatic : entries).push_back(entry);
  }
  if (entries.empty() && automatic.empty()) {
    ctx.out() << "no orders awaiting approval\n";
    return kExitOk;
  }
  if (!entries.empty()) printSignatureApprovals(ctx.out(), entries);
  if (!automatic.empty()) {
    if (!entries.empty()) ctx.out() << "\n";
    printAutoActions(ctx.out(), automatic);
  }
  return kExitOk;
}

int runApproveCommand(const CommandOptions& options, ControllerContext& ctx) {
  const std::string& approval_id = options.positionals[0];
  if (!isSafePathSegment(approval_id)) {
    return ctx.usage("invalid approval id " + quoteForMessage(approval_id));
  }
  auto key_file = options.value("--key");
  if (!key_file) return ctx.usage("'approve' needs --key FILE (your operator private key)");
  const bool yes = options.has("--yes");
  if (!yes && !ctx.env().stdin_is_tty) {
    return ctx.usage("stdin is not a terminal: pass --yes to sign without the confirmation prompt");
  }
  auto key = loadPrivateKeyFile(*key_file);
  if (!key.ok()) return ctx.usage("--key: " + key.error().message);

  auto api = ctx.transport(options);
  if (!api.ok()) return ctx.usage(api.error().message);
  auto listed = (*api)->request("GET", "/v1/approvals", std::nullopt);
  if (!listed.ok()) return ctx.transportFailure(listed.error());
  if (!listed->ok()) return ctx.refused(*listed, "the approvals request");
  const Json* entry = nullptr;
  for (const Json* candidate : approvalEntries(listed->body)) {
    if (firstJsonText(*candidate, {"approval_id", "id"}) == approval_id) entry = candidate;
  }
  if (entry != nullptr && isAutomaticEntry(*entry)) {
    ctx.err() << "shadanctl: " << approval_id
              << " is an automatic action, not an order awaiting signatures: confirm or release "
                 "it (shadanctl confirm|release "
              << approval_id << " --reason TEXT)\n";
    return kExitFailure;
  }
  if (entry == nullptr) {
    ctx.err() << "shadanctl: no pending approval " << approval_id
              << " (see shadanctl approvals; it may be done or expired)\n";
    return kExitFailure;
  }
  auto pending = decodePendingAuthz(*entry);
  if (!pending.ok()) {
    ctx.err() << "shadanctl: approval " << approval_id << ": " << pending.error().message << "\n";
    return kExitFailure;
  }
  const Authz& authz = pending->authz;
  std::ostream& show = ctx.json() ? ctx.err() : ctx.out();
  show << "approval " << approval_id << "\n"
       << "  action        " << orderActionName(authz.action) << (authz.drill ? " (drill)" : "")
       << "\n"
       << (authz.scope == IsolationScope::kSegment ? "  segment       " : "  cuts          ")
       << authzTargetText(authz) << " (profile " << authz.profile << ", gen " << authz.segment_gen
       << ")\n"
       << "  targets       ";
  if (authz.targets_bordering) show << "every gateway bordering " << authz.segment;
  for (size_t i = 0; i < authz.targets.size(); ++i) {
    show << (i ? ", " : "") << authz.targets[i];
  }
  show << "\n  requested_by  " << authz.requested_by
       << (authz.on_behalf_of ? " (via controller for " + *authz.on_behalf_of + ")" : "") << "\n"
       << "  reason        " << authz.reason << "\n";
  if (authz.ticket) show << "  ticket        " << *authz.ticket << "\n";
  if (authz.ttl_s) {
    show << "  ttl           " << formatDuration(std::chrono::seconds(*authz.ttl_s)) << "\n";
  }
  show << "  command_id    " << authz.command_id << "\n"
       << "  issued_at     " << formatRfc3339(authz.issued_at_ms) << "\n"
       << "  expires_at    " << formatRfc3339(authz.expires_at_ms) << "\n"
       << "  signing key   " << key->keyId() << "\n";
  if (toUnixMillis(ctx.env().clock->now()) >= authz.expires_at_ms) {
    ctx.err() << "shadanctl: approval " << approval_id << " expired at "
              << formatRfc3339(authz.expires_at_ms) << "; not signing\n";
    return kExitFailure;
  }
  if (!yes) {
    ctx.err() << "Sign this " << orderActionName(authz.action) << " of " << authzTargetText(authz)
              << "? [y/N] " << std::flush;
    std::string answer;
    if (ctx.env().in == nullptr || !std::getline(*ctx.env().in, answer) ||
        (answer != "y" && answer != "Y" && answer != "yes")) {
      ctx.err() << "shadanctl: not signed\n";
      return kExitFailure;
    }
  }
  // The signature covers PAE(payloadType, payload) of the exact bytes shown above.
  const Ed25519Signature signature = key->sign(dssePae(pending->payload_type, pending->payload));
  const Json body = {{"keyid", key->keyId()}, {"sig", base64Encode(signature)}};
  auto response = (*api)->request("POST", "/v1/approvals/" + approval_id + "/signatures", body);
  if (!response.ok()) return ctx.transportFailure(response.error());
  if (!response->ok()) return ctx.refused(*response, "the signature");
  const Json& answer = response->body;
  if (ctx.json()) {
    ctx.out() << answer.dump() << "\n";
  } else {
    ctx.out() << "signature accepted";
    if (answer.contains("have")) {
      ctx.out() << " (" << jsonText(answer, "have") << " of " << jsonText(answer, "needed") << ")";
    }
    if (answer.contains("approvers") && answer["approvers"].is_array()) {
      std::string approvers;
      for (const Json& who : answer["approvers"]) {
        approvers += (approvers.empty() ? "" : ", ") +
                     (who.is_string() ? who.get<std::string>() : who.dump());
      }
      ctx.out() << " by " << approvers;
    }
    const std::string state = jsonText(answer, "state");
    if (state == "complete" || state == "dispatched") {
      // Sent is not applied: the gateways' acks say that (shadanctl status --order).
      const std::string order = firstJsonText(answer, {"order_id", "approval_id"});
      ctx.out() << "; threshold met, order " << order
                << " sent to the gateways (not applied until they ack: shadanctl status --order "
                << order << ")";
    } else if (state == "pending") {
      // docs/controller.md: dispatch needs the threshold AND the requester among the signers.
      ctx.out() << "; still pending (the requester " << authz.requested_by
                << " must be among the signers)";
    } else if (state != "-") {
      ctx.out() << "; order " << state;
    }
    ctx.out() << "\n";
  }
  return kExitOk;
}

}  // namespace shadan
