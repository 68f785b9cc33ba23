#include "controller/auto_actions.h"

#include <array>
#include <set>

#include "common/strict_json.h"

namespace shadan::controller {
namespace {

using nlohmann::json;

constexpr std::array kStates = {AutoActionState::kProposed,  AutoActionState::kActive,
                                AutoActionState::kConfirmed, AutoActionState::kReleased,
                                AutoActionState::kDeclined,  AutoActionState::kExpired};

json optionalText(const std::optional<std::string>& value) {
  return value ? json(*value) : json(nullptr);
}

}  // namespace

const char* autoActionStateName(AutoActionState state) {
  switch (state) {
    case AutoActionState::kProposed:
      return "proposed";
    case AutoActionState::kActive:
      return "active";
    case AutoActionState::kConfirmed:
      return "confirmed";
    case AutoActionState::kReleased:
      return "released";
    case AutoActionState::kDeclined:
      return "declined";
    case AutoActionState::kExpired:
      return "expired";
  }
  return "?";
}

bool AutoAction::covers(const std::string& host_segment,
                        const std::optional<IpPrefix>& address) const {
  if (segment != host_segment) return false;
  if (scope == IsolationScope::kSegment) return true;
  return address && host && host->contains(*address);
}

json AutoAction::toJson() const {
  return json{{"id", id},
              {"state", autoActionStateName(state)},
              {"detector", detector},
              {"rule", rule},
              {"scope", isolationScopeName(scope)},
              {"segment", segment},
              {"host", host ? json(host->toString()) : json(nullptr)},
              {"profile", profile},
              {"ttl_s", ttl_s},
              {"created_ms", created_ms},
              {"expires_ms", expires_ms},
              {"why", why},
              {"alerts", alerts},
              {"last_alert_ms", last_alert_ms},
              {"followup_order_id", optionalText(followup_order_id)},
              {"closed_by", optionalText(closed_by)},
              {"closed_reason", optionalText(closed_reason)}};
}

Result<AutoAction> AutoAction::fromJson(const std::string& text) {
  SHADAN_ASSIGN_OR_RETURN(auto doc, parseStrictJson(text, "auto action", 64 * 1024));
  auto corrupt = [](const std::string& what) {
    return makeError(ErrorCode::kState, "controller store: corrupt auto action: " + what);
  };
  try {
    AutoAction out;
    out.id = doc.at("id").get<std::string>();
    const std::string state = doc.at("state").get<std::string>();
    bool known = false;
    for (AutoActionState s : kStates) {
      if (state == autoActionStateName(s)) {
        out.state = s;
        known = true;
      }
    }
    if (!known) return corrupt("state " + quoteForMessage(state));
    out.detector = doc.at("detector").get<std::string>();
    out.rule = doc.at("rule").get<std::string>();
    const auto scope = parseIsolationScope(doc.at("scope").get<std::string>());
    if (!scope) return corrupt("scope");
    out.scope = *scope;
    out.segment = doc.at("segment").get<std::string>();
    if (!doc.at("host").is_null()) {
      auto host = IpPrefix::parse(doc.at("host").get<std::string>());
      if (!host.ok()) return corrupt("host");
      out.host = *host;
    }
    out.profile = doc.at("profile").get<std::string>();
    out.ttl_s = doc.at("ttl_s").get<int64_t>();
    out.created_ms = doc.at("created_ms").get<int64_t>();
    out.expires_ms = doc.at("expires_ms").get<int64_t>();
    out.why = doc.at("why").get<std::string>();
    out.alerts = doc.at("alerts").get<int64_t>();
    out.last_alert_ms = doc.at("last_alert_ms").get<int64_t>();
    auto text_or_null = [&](const char* key) -> std::optional<std::string> {
      if (doc.at(key).is_null()) return std::nullopt;
      return doc.at(key).get<std::string>();
    };
    out.followup_order_id = text_or_null("followup_order_id");
    out.closed_by = text_or_null("closed_by");
    out.closed_reason = text_or_null("closed_reason");
    return out;
  } catch (const json::exception& e) {
    return corrupt(e.what());
  }
}

Status AutoActions::load() {
  SHADAN_ASSIGN_OR_RETURN(auto documents, store_.openDocuments(kAutoActionKind));
  open_.clear();
  open_hosts_.clear();
  open_wide_.clear();
  for (const auto& document : documents) {
    SHADAN_ASSIGN_OR_RETURN(auto action, AutoAction::fromJson(document.body));
    remember(action);
  }
  return okStatus();
}

namespace {

StoredDocument documentOf(const AutoAction& action) {
  StoredDocument document;
  document.kind = kAutoActionKind;
  document.id = action.id;
  document.body = action.toJson().dump();
  document.open = action.open();
  document.created_ms = action.created_ms;
  document.updated_ms = std::max(action.created_ms, action.last_alert_ms);
  return document;
}

}  // namespace

void AutoActions::remember(const AutoAction& action) {
  auto exact = [](const AutoAction& a) {
    return a.scope == IsolationScope::kHost && a.host && a.host->isHost();
  };
  if (auto it = open_.find(action.id); it != open_.end() && exact(it->second)) {
    open_hosts_.erase({it->second.segment, *it->second.host});
  }
  open_wide_.erase(action.id);
  if (action.open()) {
    open_[action.id] = action;
    if (exact(action)) {
      open_hosts_[{action.segment, *action.host}] = action.id;
    } else {
      open_wide_.insert(action.id);
    }
  } else {
    open_.erase(action.id);
  }
}

Status AutoActions::put(const AutoAction& action) {
  SHADAN_RETURN_IF_ERROR(store_.putDocument(documentOf(action)));
  staged_.erase(action.id);  // this write supersedes a staged one
  remember(action);
  return okStatus();
}

void AutoActions::stage(const AutoAction& action) {
  staged_[action.id] = action;
  remember(action);
}

Status AutoActions::flush() {
  if (staged_.empty()) return okStatus();
  const Status written = store_.transaction([&]() -> Status {
    for (const auto& [id, action] : staged_) {
      SHADAN_RETURN_IF_ERROR(store_.putDocument(documentOf(action)));
    }
    return okStatus();
  });
  SHADAN_RETURN_IF_ERROR(written);
  staged_.clear();
  return okStatus();
}

Result<std::optional<AutoAction>> AutoActions::find(const std::string& id) {
  if (auto it = staged_.find(id); it != staged_.end()) return std::optional<AutoAction>(it->second);
  if (auto it = open_.find(id); it != open_.end()) return std::optional<AutoAction>(it->second);
  SHADAN_ASSIGN_OR_RETURN(auto document, store_.getDocument(kAutoActionKind, id));
  if (!document) return std::optional<AutoAction>();
  SHADAN_ASSIGN_OR_RETURN(auto action, AutoAction::fromJson(document->body));
  return std::optional<AutoAction>(std::move(action));
}

const AutoAction* AutoActions::covering(const std::string& segment,
                                        const std::optional<IpPrefix>& address) const {
  if (address) {
    // The common case: an action for exactly this host.
    if (auto hit = open_hosts_.find({segment, *address}); hit != open_hosts_.end()) {
      return &open_.at(hit->second);
    }
  }
  for (const std::string& id : open_wide_) {
    const AutoAction& action = open_.at(id);
    if (!address && action.segment == segment && action.scope == IsolationScope::kSegment) {
      return &action;
    }
    if (address && action.covers(segment, address)) return &action;
  }
  return nullptr;
}

size_t AutoActions::distinctHostsSince(const std::string& segment, int64_t since_ms) const {
  std::set<IpPrefix> hosts;
  for (const auto& [id, action] : open_) {
    if (action.segment == segment && action.scope == IsolationScope::kHost && action.host &&
        action.state == AutoActionState::kActive && action.created_ms >= since_ms) {
      hosts.insert(*action.host);
    }
  }
  return hosts.size();
}

std::vector<AutoAction> AutoActions::lapsed(int64_t now_ms) const {
  std::vector<AutoAction> out;
  for (const auto& [id, action] : open_) {
    if (action.expires_ms <= now_ms) out.push_back(action);
  }
  return out;
}

}  // namespace shadan::controller
