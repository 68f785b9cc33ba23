#include "cli/controller_cmd.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "cli/options.h"
#include "cli/shadanctl.h"
#include "common/duration.h"
#include "common/ed25519.h"
#include "common/orders.h"
#include "common/strict_json.h"

namespace shadan {
namespace {

using Json = nlohmann::json;

constexpr size_t kConfigMaxBytes = 64 * 1024;
constexpr uint64_t kMaxWaitSeconds = 3600;
constexpr uint64_t kMaxTimeoutSeconds = 600;

constexpr const char* kUsage = R"(usage:
  shadanctl isolate SEGMENT [--profile P] --reason TEXT [--ticket T] [--ttl DURATION] [--drill]
                            [--wait SECONDS] [--json]
      Ask the controller to isolate SEGMENT (profile "full" unless --profile). --ttl: a timed
      cut that lifts itself (e.g. 30m). --drill: marked as a drill. --wait: poll the order
      until every gateway answered (applied, failed, rejected) or SECONDS pass, then print a
      per-gateway table.
  shadanctl restore SEGMENT [--profile P] --reason TEXT [--ticket T] [--json]
      Ask to lift an isolation; needs approvals by two distinct operators (shadanctl approve).
  shadanctl status [--order ID] [--json]
      Segments, gateways and recent orders; or one order's per-gateway state.
  shadanctl approvals [--json]
      Orders waiting for operator signatures.
  shadanctl approve APPROVAL_ID --key FILE [--yes] [--json]
      Show what the pending order says, then sign it with your operator key (the exact DSSE
      PAE bytes) and send the signature. --yes skips the confirmation; without a terminal on
      stdin --yes is required. The controller dispatches once enough distinct operators signed
      and the requester is among them.
  shadanctl agents [--json]
  shadanctl agents approve AGENT_ID --reason TEXT
      Enrolled and pending agents; approve a pending agent (no trust on first use).

connection (every command above):
  --controller https://HOST:PORT   the controller's API
  --ca FILE                        the CA that issued the controller's certificate (the only
                                   trust anchor; the system store is never used)
  --token-file FILE                your API token (mode 0600); or set SHADAN_TOKEN
  --config FILE                    JSON {"controller","ca","token_file"}; default
                                   ~/.config/shadan/shadanctl.json if it exists
  --timeout SECONDS                per request (default 10)

exit codes: 0 done, 1 the controller refused or the order failed, 2 usage (nothing was done),
            3 the controller could not be reached or TLS failed, 4 awaiting approval
)";

const std::set<std::string> kConnectionOptions = {"--controller", "--ca", "--token-file",
                                                  "--config", "--timeout"};

// A JSON member as display text: "-" when missing or null.
std::string text(const Json& object, const char* key) {
  if (!object.is_object() || !object.contains(key)) return "-";
  const Json& value = object[key];
  if (value.is_null()) return "-";
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

std::string firstOf(const Json& object, std::initializer_list<const char*> keys) {
  for (const char* key : keys) {
    if (std::string value = text(object, key); value != "-") return value;
  }
  return "-";
}

// Path segments built from user input or server answers: a conservative alphabet so nothing
// can change the path (no "/", "..", "?", "%").
bool isSafePathSegment(const std::string& id) {
  if (id.empty() || id.size() > 128 || id == "." || id == "..") return false;
  return id.find_first_not_of(
             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
         std::string::npos;
}

void printTable(std::ostream& out, const std::vector<std::vector<std::string>>& rows) {
  if (rows.empty()) return;
  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    out << line << "\n";
  }
}

struct GatewayRow {
  std::string gateway;
  std::string state;
  std::string applied_at = "-";
  std::string ruleset = "-";
  std::string reason = "-";
  // The controller's clock: when the dispatch went out, and when its ack (or expiry) came.
  std::optional<int64_t> sent_ms;
  std::optional<int64_t> updated_ms;
};

bool isTerminal(const std::string& state) {
  return state == "applied" || state == "already_applied" || state == "failed" ||
         state == "rejected" || state == "expired";
}
bool isSuccess(const std::string& state) {
  return state == "applied" || state == "already_applied";
}

// The ack of a gateway as the controller reports it: a DSSE ack envelope (decoded and parsed
// for display only; the controller verified it), or plain fields.
void fillFromAck(const Json& ack, GatewayRow& row) {
  if (!ack.is_object()) return;
  if (ack.contains("envelope")) return fillFromAck(ack["envelope"], row);
  if (ack.contains("payload") && ack["payload"].is_string()) {
    auto bytes = base64Decode(ack["payload"].get<std::string>());
    if (!bytes.ok()) return;
    auto parsed = parseAck(std::string(bytes->begin(), bytes->end()));
    if (!parsed.ok()) return;
    if (parsed->applied_at_ms) row.applied_at = formatRfc3339(*parsed->applied_at_ms);
    row.ruleset = parsed->ruleset_sha256;
    if (parsed->reason) row.reason = *parsed->reason;
    return;
  }
  if (row.applied_at == "-") row.applied_at = text(ack, "applied_at");
  if (row.ruleset == "-") row.ruleset = text(ack, "ruleset_sha256");
  if (row.reason == "-") row.reason = text(ack, "reason");
}

GatewayRow gatewayRow(const std::string& id, const Json& entry) {
  GatewayRow row;
  row.gateway = id;
  if (entry.is_string()) {
    row.state = entry.get<std::string>();
    return row;
  }
  row.state = text(entry, "state");
  row.applied_at = text(entry, "applied_at");
  row.ruleset = text(entry, "ruleset_sha256");
  row.reason = text(entry, "reason");
  for (auto [key, slot] : {std::pair{"sent_at", &row.sent_ms}, {"updated_at", &row.updated_ms}}) {
    if (std::string value = text(entry, key); value != "-") {
      if (auto ms = parseRfc3339UtcMillis(value); ms.ok()) *slot = *ms;
    }
  }
  if (entry.is_object() && entry.contains("ack")) fillFromAck(entry["ack"], row);
  return row;
}

// Per-gateway rows of an order answer: {"gateways":{id:{...}}} or {"gateways":[{"gateway"|
// "agent_id"|"id":..., ...}]}, possibly under "order".
std::vector<GatewayRow> gatewayRows(const Json& order) {
  std::vector<GatewayRow> rows;
  const Json* gateways = nullptr;
  if (order.is_object() && order.contains("gateways")) {
    gateways = &order["gateways"];
  } else if (order.is_object() && order.contains("order") && order["order"].is_object() &&
             order["order"].contains("gateways")) {
    gateways = &order["order"]["gateways"];
  }
  if (gateways == nullptr) return rows;
  if (gateways->is_object()) {
    for (const auto& [id, entry] : gateways->items()) rows.push_back(gatewayRow(id, entry));
  } else if (gateways->is_array()) {
    for (const Json& entry : *gateways) {
      if (entry.is_string()) {
        GatewayRow row;
        row.gateway = entry.get<std::string>();
        row.state = "pending";
        rows.push_back(std::move(row));
      } else {
        rows.push_back(gatewayRow(firstOf(entry, {"gateway", "agent_id", "id"}), entry));
      }
    }
  }
  return rows;
}

// Dispatch sent -> ack received, both on the controller's clock; nullopt until answered.
std::optional<int64_t> ackMillis(const GatewayRow& row) {
  if (!isTerminal(row.state) || row.state == "expired" || !row.sent_ms || !row.updated_ms) {
    return std::nullopt;
  }
  return *row.updated_ms - *row.sent_ms;
}

void printGatewayTable(std::ostream& out, const std::vector<GatewayRow>& rows) {
  std::vector<std::vector<std::string>> table = {
      {"GATEWAY", "STATE", "APPLIED_AT", "ACK_MS", "RULESET", "REASON"}};
  std::optional<int64_t> first_sent;
  std::optional<int64_t> last_ack;
  bool all_answered = !rows.empty();
  for (const GatewayRow& row : rows) {
    const std::optional<int64_t> ack_ms = ackMillis(row);
    table.push_back({row.gateway, row.state, row.applied_at, ack_ms ? std::to_string(*ack_ms) : "-",
                     row.ruleset == "-" ? "-" : row.ruleset.substr(0, 12), row.reason});
    if (!ack_ms) {
      all_answered = false;
      continue;
    }
    first_sent = std::min(first_sent.value_or(*row.sent_ms), *row.sent_ms);
    last_ack = std::max(last_ack.value_or(*row.updated_ms), *row.updated_ms);
  }
  printTable(out, table);
  // What an operator wants to know in an emergency: how long until every gateway answered.
  if (all_answered && first_sent && last_ack) {
    out << "dispatch -> last ack: " << (*last_ack - *first_sent) << " ms (" << rows.size()
        << " gateway" << (rows.size() == 1 ? "" : "s") << ", controller clock)\n";
  }
}

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
  auto authz = parseAuthz(out.payload);
  if (!authz.ok()) return authz.error();
  out.authz = std::move(*authz);
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
  return entries;
}

class ControllerCommand {
 public:
  ControllerCommand(std::ostream& out, std::ostream& err, const ControllerCmdEnv& env)
      : out_(out), err_(err), env_(env) {}

  int run(const std::vector<std::string>& args) {
    const std::string& command = args[0];
    OptionSpec spec;
    spec.command = command;
    spec.with_value = kConnectionOptions;
    spec.flags = {"--json"};
    // Never accept a secret on the command line: other users see argv in ps.
    spec.refused = {{"--token", kNoTokenOnArgv}};
    spec.quote = QuoteStyle::kJson;
    size_t positionals = 0;
    if (command == "isolate") {
      spec.with_value.insert({"--profile", "--reason", "--ticket", "--ttl", "--wait"});
      spec.flags.insert("--drill");
      positionals = 1;
    } else if (command == "restore") {
      spec.with_value.insert({"--profile", "--reason", "--ticket"});
      positionals = 1;
    } else if (command == "status") {
      spec.with_value.insert("--order");
    } else if (command == "approve") {
      spec.with_value.insert("--key");
      spec.flags.insert("--yes");
      positionals = 1;
    } else if (command == "agents") {
      spec.with_value.insert("--reason");
      positionals = 2;  // [approve AGENT_ID]
    }
    spec.max_positionals = positionals;
    auto options = parseCommandOptions(args, 1, spec);
    if (!options.ok()) return usage(options.error().message);
    if (options->help) {
      out_ << kUsage;
      return kExitOk;
    }
    json_ = options->has("--json");
    if (positionals == 1 && options->positionals.empty()) {
      return usage("'" + command + "' needs " +
                   (command == "approve" ? "an APPROVAL_ID" : std::string("a SEGMENT")));
    }
    if (command == "isolate" || command == "restore") return order(command, *options);
    if (command == "status") return status(*options);
    if (command == "approvals") return approvals(*options);
    if (command == "agents") return agents(*options);
    return approve(*options);
  }

 private:
  int usage(const std::string& message) {
    err_ << "shadanctl: " << message << "\n\n" << kUsage;
    return kExitUsage;
  }
  int transportFailure(const Error& error) {
    err_ << "shadanctl: " << error.message << "\n";
    if (error.code == ErrorCode::kUnavailable) return kExitUnreachable;
    // An unreadable CA file or an oversized request: refused before anything was sent.
    if (error.code == ErrorCode::kInvalidArgument) return kExitUsage;
    return kExitFailure;
  }
  int refused(const ApiResponse& response, const std::string& what) {
    if (response.status == 401) {
      err_ << "shadanctl: the controller did not accept the token (" << response.errorSummary()
           << "); check --token-file or SHADAN_TOKEN\n";
    } else if (response.status == 403) {
      err_ << "shadanctl: the controller refused " << what << ": not allowed for this token ("
           << response.errorSummary() << ")\n";
    } else {
      err_ << "shadanctl: the controller refused " << what << ": " << response.errorSummary()
           << "\n";
    }
    return kExitFailure;
  }

  // Connection settings from the options, SHADAN_TOKEN and the config file. Errors are usage
  // errors (exit 2): nothing has been sent yet.
  Result<ApiClientOptions> connection(const CommandOptions& options) {
    std::optional<std::string> config_path = options.value("--config");
    bool explicit_config = config_path.has_value();
    if (!config_path) {
      if (auto xdg = env_.getenv("XDG_CONFIG_HOME"); xdg && !xdg->empty()) {
        config_path = *xdg + "/shadan/shadanctl.json";
      } else if (auto home = env_.getenv("HOME"); home && !home->empty()) {
        config_path = *home + "/.config/shadan/shadanctl.json";
      }
    }
    std::map<std::string, std::string> config;
    std::error_code fs_error;
    if (config_path && (explicit_config || std::filesystem::exists(*config_path, fs_error))) {
      auto loaded = loadConfig(*config_path);
      if (!loaded.ok()) return loaded.error();
      config = std::move(*loaded);
    }
    auto pick = [&](const std::string& option,
                    const std::string& key) -> std::optional<std::string> {
      if (auto value = options.value(option)) return value;
      if (auto it = config.find(key); it != config.end()) return it->second;
      return std::nullopt;
    };

    ApiClientOptions out;
    auto controller = pick("--controller", "controller");
    if (!controller) {
      return makeError(ErrorCode::kInvalidArgument,
                       "no controller: pass --controller https://HOST:PORT or set \"controller\" "
                       "in the config file");
    }
    auto url = parseControllerUrl(*controller);
    if (!url.ok()) return url.error();
    out.url = *url;
    auto ca = pick("--ca", "ca");
    if (!ca) {
      return makeError(ErrorCode::kInvalidArgument,
                       "no CA file: pass --ca FILE or set \"ca\" in the config file");
    }
    out.ca_file = *ca;

    // --token-file, then SHADAN_TOKEN, then the config's token_file: the most explicit wins.
    std::optional<std::string> token_file = options.value("--token-file");
    std::optional<std::string> env_token;
    if (!token_file) env_token = env_.getenv("SHADAN_TOKEN");
    if (!token_file && !env_token) {
      if (auto it = config.find("token_file"); it != config.end()) token_file = it->second;
    }
    if (token_file) {
      auto token = loadTokenFile(*token_file);
      if (!token.ok()) return token.error();
      out.token = std::move(*token);
    } else if (env_token) {
      if (Status valid = validateToken(*env_token); !valid.ok()) {
        return valid.error().withContext("SHADAN_TOKEN");
      }
      out.token = *env_token;
    } else {
      return makeError(ErrorCode::kInvalidArgument,
                       "no API token: pass --token-file FILE, set SHADAN_TOKEN, or set "
                       "\"token_file\" in the config file (tokens are never taken from argv)");
    }
    if (auto timeout = options.value("--timeout")) {
      auto seconds = parseCount("--timeout", *timeout, 1, kMaxTimeoutSeconds);
      if (!seconds.ok()) return seconds.error();
      out.timeout = std::chrono::seconds(*seconds);
    }
    return out;
  }

  Result<std::map<std::string, std::string>> loadConfig(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return makeError(ErrorCode::kNotFound, "cannot open config file " + path);
    std::string content(kConfigMaxBytes + 1, '\0');
    in.read(content.data(), static_cast<std::streamsize>(content.size()));
    content.resize(static_cast<size_t>(in.gcount()));
    auto parsed = parseStrictJson(content, path, kConfigMaxBytes);
    if (!parsed.ok()) return parsed.error();
    if (!parsed->is_object()) {
      return makeError(ErrorCode::kParse, path + ": must be a JSON object");
    }
    std::map<std::string, std::string> config;
    const std::filesystem::path base = std::filesystem::path(path).parent_path();
    for (const auto& [key, value] : parsed->items()) {
      if (key != "controller" && key != "ca" && key != "token_file") {
        return makeError(ErrorCode::kParse, path + ": unknown member " + quoteForMessage(key) +
                                                " (known: controller, ca, token_file)");
      }
      if (!value.is_string() || value.get<std::string>().empty()) {
        return makeError(ErrorCode::kParse, path + ": /" + key + ": must be a non-empty string");
      }
      std::string setting = value.get<std::string>();
      if (key != "controller" && std::filesystem::path(setting).is_relative()) {
        setting = (base / setting).string();
      }
      config[key] = setting;
    }
    return config;
  }

  static Result<uint64_t> parseCount(const std::string& option, const std::string& value,
                                     uint64_t min, uint64_t max) {
    if (value.empty() || value.size() > 10 ||
        value.find_first_not_of("0123456789") != std::string::npos || std::stoull(value) < min ||
        std::stoull(value) > max) {
      return makeError(ErrorCode::kInvalidArgument,
                       option + " must be a whole number from " + std::to_string(min) + " to " +
                           std::to_string(max) + ", not " + quoteForMessage(value));
    }
    return std::stoull(value);
  }

  // Connects lazily: usage errors come out before any connection setting is needed.
  Result<std::unique_ptr<ApiTransport>> transport(const CommandOptions& options) {
    auto settings = connection(options);
    if (!settings.ok()) return settings.error();
    return env_.make_transport(*settings);
  }

  int order(const std::string& action, const CommandOptions& options) {
    const std::string& segment = options.positionals[0];
    if (!isSafePathSegment(segment)) {
      return usage("invalid segment name " + quoteForMessage(segment));
    }
    auto reason = options.value("--reason");
    if (!reason) return usage("'" + action + "' needs --reason TEXT (it is audited)");
    if (Status valid = validateReason(*reason); !valid.ok()) return usage(valid.error().message);
    Json body = {{"segment", segment}, {"reason", *reason}};
    if (auto profile = options.value("--profile")) {
      if (!isSafePathSegment(*profile)) {
        return usage("invalid profile name " + quoteForMessage(*profile));
      }
      body["profile"] = *profile;
    }
    if (auto ticket = options.value("--ticket")) {
      if (ticket->empty() || ticket->size() > 128) {
        return usage("--ticket must be 1-128 characters");
      }
      body["ticket"] = *ticket;
    }
    if (auto ttl = options.value("--ttl")) {
      auto duration = parseDuration(*ttl);
      if (!duration.ok()) return usage("--ttl: " + duration.error().message);
      if (duration->count() % 1000 != 0) return usage("--ttl must be whole seconds");
      body["ttl_s"] = duration->count() / 1000;
    }
    if (options.has("--drill")) body["drill"] = true;
    std::optional<uint64_t> wait_seconds;
    if (auto wait = options.value("--wait")) {
      auto seconds = parseCount("--wait", *wait, 1, kMaxWaitSeconds);
      if (!seconds.ok()) return usage(seconds.error().message);
      wait_seconds = *seconds;
    }

    auto api = transport(options);
    if (!api.ok()) return usage(api.error().message);
    auto response = (*api)->request("POST", "/v1/" + action, body);
    if (!response.ok()) return transportFailure(response.error());
    if (!response->ok()) return refused(*response, "the " + action + " of " + segment);

    const Json& answer = response->body;
    const std::string order_id = text(answer, "order_id");
    const std::string state = text(answer, "state");
    if (state == "awaiting_approval") {
      if (json_) {
        out_ << answer.dump() << "\n";
      } else {
        out_ << action << " of " << segment << " is awaiting approval: order " << order_id
             << ", approval " << text(answer, "approval_id");
        if (answer.contains("needed")) {
          out_ << " (" << text(answer, "have") << " of " << text(answer, "needed")
               << " operator signatures)";
        }
        out_ << "\napprove with: shadanctl approve " << text(answer, "approval_id")
             << " --key YOUR.key\n";
      }
      return kExitAwaitingApproval;
    }
    if (!wait_seconds || !isSafePathSegment(order_id)) {
      if (wait_seconds) {
        err_ << "shadanctl: cannot wait: the answer names no usable order_id\n";
        return kExitFailure;
      }
      if (json_) {
        out_ << answer.dump() << "\n";
      } else {
        out_ << action << " of " << segment << ": order " << order_id << " " << state;
        if (answer.contains("gateways") && answer["gateways"].is_array()) {
          std::string names;
          for (const Json& gateway : answer["gateways"]) {
            names += (names.empty() ? "" : ", ") +
                     (gateway.is_string() ? gateway.get<std::string>()
                                          : firstOf(gateway, {"gateway", "agent_id", "id"}));
          }
          out_ << " to " << (names.empty() ? "no gateways" : names);
        }
        out_ << "\n";
      }
      return kExitOk;
    }
    return waitForOrder(**api, order_id, answer, *wait_seconds);
  }

  int waitForOrder(ApiTransport& api, const std::string& order_id, const Json& accepted,
                   uint64_t wait_seconds) {
    const auto deadline = env_.monotonic_now() + std::chrono::seconds(wait_seconds);
    Json last;
    std::vector<GatewayRow> rows;
    bool complete = false;
    for (;;) {
      auto response = api.request("GET", "/v1/orders/" + order_id, std::nullopt);
      if (!response.ok()) return transportFailure(response.error());
      if (!response->ok()) return refused(*response, "the order status of " + order_id);
      last = response->body;
      rows = gatewayRows(last);
      complete = !rows.empty() && std::all_of(rows.begin(), rows.end(), [](const GatewayRow& r) {
        return isTerminal(r.state);
      });
      const auto now = env_.monotonic_now();
      if (complete || now >= deadline) break;
      env_.sleep(std::min<std::chrono::milliseconds>(
          env_.poll_interval,
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now)));
    }
    const bool all_ok = complete && std::all_of(rows.begin(), rows.end(), [](const GatewayRow& r) {
                          return isSuccess(r.state);
                        });
    const size_t pending = static_cast<size_t>(std::count_if(
        rows.begin(), rows.end(), [](const GatewayRow& r) { return !isTerminal(r.state); }));
    if (json_) {
      out_ << Json{{"order_id", order_id},
                   {"accepted", accepted},
                   {"order", last},
                   {"complete", complete}}
                  .dump()
           << "\n";
    } else {
      out_ << "order " << order_id << "\n";
      printGatewayTable(out_, rows);
    }
    if (!complete) {
      err_ << "shadanctl: gave up waiting after " << wait_seconds << " s: "
           << (rows.empty() ? std::string("the controller reports no gateways")
                            : std::to_string(pending) + " gateway(s) still pending")
           << "\n";
      return kExitFailure;
    }
    if (!all_ok) {
      err_ << "shadanctl: the order did not apply on every gateway\n";
      return kExitFailure;
    }
    return kExitOk;
  }

  int status(const CommandOptions& options) {
    std::optional<std::string> order_id = options.value("--order");
    if (order_id && !isSafePathSegment(*order_id)) {
      return usage("invalid order id " + quoteForMessage(*order_id));
    }
    auto api = transport(options);
    if (!api.ok()) return usage(api.error().message);
    const std::string path = order_id ? "/v1/orders/" + *order_id : "/v1/status";
    auto response = (*api)->request("GET", path, std::nullopt);
    if (!response.ok()) return transportFailure(response.error());
    if (!response->ok()) return refused(*response, "the status request");
    const Json& body = response->body;
    if (json_) {
      out_ << body.dump() << "\n";
      return kExitOk;
    }
    if (order_id) {
      out_ << "order " << *order_id;
      for (const char* key : {"action", "segment", "profile", "state"}) {
        if (std::string value = text(body, key); value != "-") out_ << "  " << key << " " << value;
      }
      out_ << "\n";
      printGatewayTable(out_, gatewayRows(body));
      return kExitOk;
    }
    if (body.contains("segments") && body["segments"].is_object()) {
      std::vector<std::vector<std::string>> table = {
          {"SEGMENT", "STATE", "PROFILE", "GEN", "PROTECTED"}};
      for (const auto& [name, segment] : body["segments"].items()) {
        const bool isolated = segment.is_object() && segment.contains("isolated") &&
                              segment["isolated"].is_boolean() && segment["isolated"].get<bool>();
        table.push_back({name, isolated ? "ISOLATED" : "open", text(segment, "profile"),
                         text(segment, "gen"), text(segment, "protected")});
      }
      printTable(out_, table);
    }
    if (body.contains("gateways") && body["gateways"].is_object()) {
      out_ << "\n";
      std::vector<std::vector<std::string>> table = {
          {"GATEWAY", "CONNECTED", "LAST_SEEN", "ENROLLMENT"}};
      for (const auto& [name, gateway] : body["gateways"].items()) {
        const bool connected = gateway.is_object() && gateway.contains("connected") &&
                               gateway["connected"].is_boolean() &&
                               gateway["connected"].get<bool>();
        table.push_back({name, connected ? "yes" : "NO", text(gateway, "last_seen"),
                         text(gateway, "enrollment")});
      }
      printTable(out_, table);
    }
    if (body.contains("orders") && body["orders"].is_array() && !body["orders"].empty()) {
      out_ << "\nrecent orders:\n";
      for (const Json& order : body["orders"]) {
        out_ << "  " << firstOf(order, {"order_id", "id", "command_id"}) << "  "
             << text(order, "action") << " " << text(order, "segment") << "  "
             << text(order, "state");
        for (const GatewayRow& row : gatewayRows(order)) {
          out_ << "  " << row.gateway << "=" << row.state;
        }
        out_ << "\n";
      }
    }
    return kExitOk;
  }

  int approvals(const CommandOptions& options) {
    auto api = transport(options);
    if (!api.ok()) return usage(api.error().message);
    auto response = (*api)->request("GET", "/v1/approvals", std::nullopt);
    if (!response.ok()) return transportFailure(response.error());
    if (!response->ok()) return refused(*response, "the approvals request");
    if (json_) {
      out_ << response->body.dump() << "\n";
      return kExitOk;
    }
    const auto entries = approvalEntries(response->body);
    if (entries.empty()) {
      out_ << "no orders awaiting approval\n";
      return kExitOk;
    }
    std::vector<std::vector<std::string>> table = {
        {"APPROVAL", "ACTION", "SEGMENT", "REQUESTED_BY", "SIGNED", "EXPIRES", "REASON"}};
    for (const Json* entry : entries) {
      const std::string id = firstOf(*entry, {"approval_id", "id"});
      const std::string signed_count = text(*entry, "have") + "/" + text(*entry, "needed");
      auto pending = decodePendingAuthz(*entry);
      if (!pending.ok()) {
        table.push_back({id, "?", "?", "?", signed_count, "?", pending.error().message});
        continue;
      }
      const Authz& authz = pending->authz;
      table.push_back({id, orderActionName(authz.action), authz.segment + ":" + authz.profile,
                       authz.requested_by, signed_count, formatRfc3339(authz.expires_at_ms),
                       authz.reason});
    }
    printTable(out_, table);
    return kExitOk;
  }

  int agents(const CommandOptions& options) {
    const auto& words = options.positionals;
    if (!words.empty() && words[0] != "approve") {
      return usage("unknown agents subcommand " + quoteForMessage(words[0]));
    }
    if (words.empty()) {
      if (options.has("--reason")) return usage("--reason is for 'agents approve'");
      auto api = transport(options);
      if (!api.ok()) return usage(api.error().message);
      auto response = (*api)->request("GET", "/v1/agents", std::nullopt);
      if (!response.ok()) return transportFailure(response.error());
      if (!response->ok()) return refused(*response, "the agents request");
      if (json_) {
        out_ << response->body.dump() << "\n";
        return kExitOk;
      }
      std::vector<std::vector<std::string>> table = {
          {"AGENT", "STATUS", "KEYID", "CONNECTED", "LAST_SEEN"}};
      const Json& body = response->body;
      if (body.contains("agents") && body["agents"].is_array()) {
        for (const Json& agent : body["agents"]) {
          const std::string keyid = text(agent, "keyid");
          table.push_back({text(agent, "agent_id"), text(agent, "status"),
                           keyid.size() > 16 ? keyid.substr(0, 16) : keyid,
                           text(agent, "connected"), text(agent, "last_seen")});
        }
      }
      printTable(out_, table);
      return kExitOk;
    }
    if (words.size() < 2) return usage("'agents approve' needs an AGENT_ID");
    const std::string& agent_id = words[1];
    if (!isSafePathSegment(agent_id)) return usage("invalid agent id " + quoteForMessage(agent_id));
    auto reason = options.value("--reason");
    if (!reason) return usage("'agents approve' needs --reason TEXT (it is audited)");
    if (Status valid = validateReason(*reason); !valid.ok()) return usage(valid.error().message);
    auto api = transport(options);
    if (!api.ok()) return usage(api.error().message);
    auto response =
        (*api)->request("POST", "/v1/agents/" + agent_id + "/approve", Json{{"reason", *reason}});
    if (!response.ok()) return transportFailure(response.error());
    if (!response->ok()) return refused(*response, "the approval of agent " + agent_id);
    if (json_) {
      out_ << response->body.dump() << "\n";
    } else {
      out_ << "agent " << agent_id << " " << text(response->body, "status") << "\n";
    }
    return kExitOk;
  }

  int approve(const CommandOptions& options) {
    const std::string& approval_id = options.positionals[0];
    if (!isSafePathSegment(approval_id)) {
      return usage("invalid approval id " + quoteForMessage(approval_id));
    }
    auto key_file = options.value("--key");
    if (!key_file) return usage("'approve' needs --key FILE (your operator private key)");
    const bool yes = options.has("--yes");
    if (!yes && !env_.stdin_is_tty) {
      return usage("stdin is not a terminal: pass --yes to sign without the confirmation prompt");
    }
    auto key = loadPrivateKeyFile(*key_file);
    if (!key.ok()) return usage("--key: " + key.error().message);

    auto api = transport(options);
    if (!api.ok()) return usage(api.error().message);
    auto listed = (*api)->request("GET", "/v1/approvals", std::nullopt);
    if (!listed.ok()) return transportFailure(listed.error());
    if (!listed->ok()) return refused(*listed, "the approvals request");
    const Json* entry = nullptr;
    for (const Json* candidate : approvalEntries(listed->body)) {
      if (firstOf(*candidate, {"approval_id", "id"}) == approval_id) entry = candidate;
    }
    if (entry == nullptr) {
      err_ << "shadanctl: no pending approval " << approval_id
           << " (see shadanctl approvals; it may be done or expired)\n";
      return kExitFailure;
    }
    auto pending = decodePendingAuthz(*entry);
    if (!pending.ok()) {
      err_ << "shadanctl: approval " << approval_id << ": " << pending.error().message << "\n";
      return kExitFailure;
    }
    const Authz& authz = pending->authz;
    std::ostream& show = json_ ? err_ : out_;
    show << "approval " << approval_id << "\n"
         << "  action        " << orderActionName(authz.action) << (authz.drill ? " (drill)" : "")
         << "\n"
         << "  segment       " << authz.segment << " (profile " << authz.profile << ", gen "
         << authz.segment_gen << ")\n"
         << "  targets       ";
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
    if (toUnixMillis(env_.clock->now()) >= authz.expires_at_ms) {
      err_ << "shadanctl: approval " << approval_id << " expired at "
           << formatRfc3339(authz.expires_at_ms) << "; not signing\n";
      return kExitFailure;
    }
    if (!yes) {
      err_ << "Sign this " << orderActionName(authz.action) << " of " << authz.segment << "? [y/N] "
           << std::flush;
      std::string answer;
      if (env_.in == nullptr || !std::getline(*env_.in, answer) ||
          (answer != "y" && answer != "Y" && answer != "yes")) {
        err_ << "shadanctl: not signed\n";
        return kExitFailure;
      }
    }
    // The signature covers PAE(payloadType, payload) of the exact bytes shown above.
    const Ed25519Signature signature = key->sign(dssePae(pending->payload_type, pending->payload));
    const Json body = {{"keyid", key->keyId()}, {"sig", base64Encode(signature)}};
    auto response = (*api)->request("POST", "/v1/approvals/" + approval_id + "/signatures", body);
    if (!response.ok()) return transportFailure(response.error());
    if (!response->ok()) return refused(*response, "the signature");
    const Json& answer = response->body;
    if (json_) {
      out_ << answer.dump() << "\n";
    } else {
      out_ << "signature accepted";
      if (answer.contains("have")) {
        out_ << " (" << text(answer, "have") << " of " << text(answer, "needed") << ")";
      }
      if (answer.contains("approvers") && answer["approvers"].is_array()) {
        std::string approvers;
        for (const Json& who : answer["approvers"]) {
          approvers += (approvers.empty() ? "" : ", ") +
                       (who.is_string() ? who.get<std::string>() : who.dump());
        }
        out_ << " by " << approvers;
      }
      const std::string state = text(answer, "state");
      if (state == "complete" || state == "dispatched") {
        out_ << "; threshold met, order " << firstOf(answer, {"order_id", "approval_id"})
             << " dispatched";
      } else if (state == "pending") {
        // docs/controller.md: dispatch needs the threshold AND the requester among the signers.
        out_ << "; still pending (the requester " << authz.requested_by
             << " must be among the signers)";
      } else if (state != "-") {
        out_ << "; order " << state;
      }
      out_ << "\n";
    }
    return kExitOk;
  }

  std::ostream& out_;
  std::ostream& err_;
  const ControllerCmdEnv& env_;
  bool json_ = false;
};

}  // namespace

Status validateReason(const std::string& reason) {
  if (reason.empty()) return makeError(ErrorCode::kInvalidArgument, "--reason must not be empty");
  if (reason.size() > kMaxReasonChars) {
    return makeError(ErrorCode::kInvalidArgument,
                     "--reason is longer than " + std::to_string(kMaxReasonChars) + " characters");
  }
  for (const char c : reason) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return makeError(ErrorCode::kInvalidArgument, "--reason holds a control character");
    }
  }
  return okStatus();
}

ControllerCmdEnv defaultControllerCmdEnv() {
  static const SystemClock kSystemClock;
  ControllerCmdEnv env;
  env.make_transport = [](const ApiClientOptions& options) -> std::unique_ptr<ApiTransport> {
    return std::make_unique<ApiClient>(options);
  };
  env.getenv = [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
  env.in = &std::cin;
  env.stdin_is_tty = ::isatty(STDIN_FILENO) == 1;
  env.monotonic_now = [] { return std::chrono::steady_clock::now(); };
  env.sleep = [](std::chrono::milliseconds duration) { std::this_thread::sleep_for(duration); };
  env.clock = &kSystemClock;
  return env;
}

bool isControllerCommand(const std::string& name) {
  return name == "isolate" || name == "restore" || name == "status" || name == "approvals" ||
         name == "approve" || name == "agents";
}

const char* controllerCommandsUsage() { return kUsage; }

int runControllerCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                         const ControllerCmdEnv& env) {
  if (args.empty() || !isControllerCommand(args[0])) {
    err << "shadanctl: not a controller command\n";
    return kExitUsage;
  }
  return ControllerCommand(out, err, env).run(args);
}

}  // namespace shadan
