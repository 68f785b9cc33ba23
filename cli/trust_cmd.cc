#include "cli/trust_cmd.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

#include "cli/options.h"
#include "cli/shadanctl.h"
#include "common/atomic_file.h"
#include "common/duration.h"
#include "common/ed25519.h"
#include "common/strict_json.h"
#include "common/trust.h"

namespace shadan {
namespace {

using Json = nlohmann::ordered_json;

constexpr auto kDefaultValidity = std::chrono::hours(24 * 365);

Result<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return makeError(ErrorCode::kIo, path + ": cannot open for reading");
  std::string text;
  text.resize(kTrustMaxBytes + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kTrustMaxBytes) {
    return makeError(ErrorCode::kInvalidArgument,
                     path + ": larger than " + std::to_string(kTrustMaxBytes) + " bytes");
  }
  return text;
}

// Serialises the document with one key per line, the way people diff trust files.
std::string render(const Json& doc) {
  std::ostringstream out;
  out << "{\n";
  size_t member = 0;
  for (const auto& [name, value] : doc.items()) {
    out << "  " << Json(name).dump() << ": ";
    if (name == "keys" && value.is_array() && !value.empty()) {
      out << "[\n";
      for (size_t i = 0; i < value.size(); ++i) {
        out << "    " << value[i].dump() << (i + 1 < value.size() ? ",\n" : "\n");
      }
      out << "  ]";
    } else {
      out << value.dump();
    }
    out << (++member < doc.size() ? ",\n" : "\n");
  }
  out << "}\n";
  return out.str();
}

// The final gate for every edit: the agents' own parser must accept the result.
Status checkAndWrite(const std::string& path, const Json& doc, bool replace) {
  const std::string text = render(doc);
  if (auto parsed = parseTrust(text, path); !parsed.ok()) {
    return makeError(
        ErrorCode::kInvalidArgument,
        "the result would not be a valid trust file (nothing written): " + parsed.error().message);
  }
  // The trust file is public (key material in it is public); 0644 like a public key file.
  return writeFileAtomically(path, text, 0644,
                             replace ? ExistingFile::kReplace : ExistingFile::kRefuse);
}

int usage(std::ostream& err, const std::string& message) {
  return printUsageError(err, "trust", message);
}

int failed(std::ostream& err, const Error& error) {
  err << "shadanctl: " << error.message << "\n";
  return kExitFailure;
}

// The {"keyid","public_key","identity","roles"} entry for --pub/--identity/--role.
Result<Json> keyEntry(const CommandOptions& a, const std::string& command) {
  for (const char* needed : {"--pub", "--identity", "--role"}) {
    if (!a.values.contains(needed)) {
      return makeError(ErrorCode::kInvalidArgument, "'trust " + command + "' needs " + needed);
    }
  }
  SHADAN_ASSIGN_OR_RETURN(auto key, loadPublicKeyFile(*a.value("--pub")));
  std::vector<std::string> roles;
  std::stringstream role_list(*a.value("--role"));
  for (std::string role; std::getline(role_list, role, ',');) {
    if (role.empty()) {
      return makeError(ErrorCode::kInvalidArgument,
                       "--role: an empty role in '" + *a.value("--role") + "'");
    }
    roles.push_back(role);
  }
  Json entry;
  entry["keyid"] = key.key_id;
  entry["public_key"] = base64Encode(key.public_key);
  entry["identity"] = *a.value("--identity");
  entry["roles"] = roles;
  return entry;
}

// The identity rule (checkIdentityRoles) for a new entry. A role name the parser does not know
// is left to the parser, whose message lists the roles there are.
Status checkEntryRule(const Json& entry) {
  std::set<TrustRole> roles;
  for (const Json& name : entry["roles"]) {
    auto role = trustRoleFromName(name.get<std::string>());
    if (!role) return okStatus();
    roles.insert(*role);
  }
  Status rule = checkIdentityRoles(entry["identity"].get<std::string>(), roles);
  if (!rule.ok()) return makeError(rule.error().code, rule.error().message + " (nothing written)");
  return okStatus();
}

int init(const CommandOptions& a, std::ostream& out, std::ostream& err, const Clock& clock) {
  if (!a.values.contains("--out")) return usage(err, "'trust init' needs --out FILE");
  auto entry = keyEntry(a, "init");
  if (!entry.ok()) {
    if (entry.error().code == ErrorCode::kInvalidArgument) return usage(err, entry.error().message);
    return failed(err, entry.error());
  }
  if (Status rule = checkEntryRule(*entry); !rule.ok()) return failed(err, rule.error());
  int64_t version = 1;
  if (auto given = a.value("--version")) {
    const std::string& text = *given;
    if (text.empty() || text.size() > 15 ||
        text.find_first_not_of("0123456789") != std::string::npos || std::stoll(text) < 1) {
      return usage(err, "--version must be a whole number of at least 1, not '" + text + "'");
    }
    version = std::stoll(text);
  }
  std::chrono::milliseconds validity = kDefaultValidity;
  if (auto given = a.value("--expires-in")) {
    auto parsed = parseDuration(*given);
    if (!parsed.ok()) return usage(err, "--expires-in: " + parsed.error().message);
    validity = *parsed;
  }
  std::optional<std::string> purpose = a.value("--purpose");
  if (purpose && *purpose != "production" && *purpose != "lab") {
    return usage(err, "--purpose must be production or lab, not " + quoteForMessage(*purpose));
  }
  const int64_t expires = toUnixMillis(clock.now()) + validity.count();
  Json doc;
  doc["shadan_trust"] = kTrustFormatVersion;
  doc["version"] = version;
  // Whole seconds: the file is read by people, and the parser takes RFC 3339 either way.
  doc["expires_at"] = formatRfc3339(expires - expires % 1000);
  // Written only when asked for: a file without it is a production file, as it always was.
  if (purpose) doc["purpose"] = *purpose;
  doc["keys"] = Json::array({*entry});
  const TrustThresholds defaults;
  doc["thresholds"] = {{"isolate",
                        {{"operators", defaults.isolate_operators},
                         {"controller_on_behalf", defaults.isolate_controller_on_behalf}}},
                       {"isolate_protected", {{"operators", defaults.isolate_protected_operators}}},
                       {"restore", {{"operators", defaults.restore_operators}}},
                       {"breakglass_isolate", {{"breakglass", defaults.breakglass_isolate}}}};
  const std::string path = *a.value("--out");
  if (Status written = checkAndWrite(path, doc, /*replace=*/false); !written.ok()) {
    return failed(err, written.error());
  }
  out << "wrote " << path << " (" << (purpose == "lab" ? "lab, " : "") << "version " << version
      << ", expires " << doc["expires_at"].get<std::string>() << ") with " << *a.value("--identity")
      << "\n";
  return kExitOk;
}

int add(const CommandOptions& a, std::ostream& out, std::ostream& err) {
  if (a.positionals.size() != 1) return usage(err, "'trust add' needs exactly one FILE");
  const std::string& path = a.positionals[0];
  auto entry = keyEntry(a, "add");
  if (!entry.ok()) {
    if (entry.error().code == ErrorCode::kInvalidArgument) return usage(err, entry.error().message);
    return failed(err, entry.error());
  }
  if (Status rule = checkEntryRule(*entry); !rule.ok()) return failed(err, rule.error());
  // Read through the strict parser first: an invalid file is reported as it is, not "edited".
  auto text = readFile(path);
  if (!text.ok()) return failed(err, text.error());
  if (auto parsed = parseTrust(*text, path); !parsed.ok()) return failed(err, parsed.error());
  Json doc = Json::parse(*text);
  for (const Json& existing : doc["keys"]) {
    if (existing.value("keyid", "") == (*entry)["keyid"]) {
      err << "shadanctl: " << path << ": key " << (*entry)["keyid"].get<std::string>()
          << " is already listed (as " << existing.value("identity", "?") << ")\n";
      return kExitFailure;
    }
  }
  doc["keys"].push_back(*entry);
  const int64_t version = doc["version"].get<int64_t>() + 1;
  doc["version"] = version;
  if (Status written = checkAndWrite(path, doc, /*replace=*/true); !written.ok()) {
    return failed(err, written.error());
  }
  out << "added " << *a.value("--identity") << " (" << (*entry)["keyid"].get<std::string>()
      << ") to " << path << "; version " << version << "\n";
  return kExitOk;
}

bool isKeyId(const std::string& text) {
  return text.size() == 64 && text.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// Why no key of the file matches --identity/--keyid, in the words of what was asked.
std::string noMatch(const Trust& trust, const std::optional<std::string>& identity,
                    const std::optional<std::string>& keyid) {
  if (keyid) {
    const TrustKey* key = trust.findKey(*keyid);
    if (key == nullptr) return "no key " + *keyid;
    return "key " + *keyid + " belongs to " + quoteForMessage(key->identity) + ", not " +
           quoteForMessage(*identity);
  }
  return "no key of identity " + quoteForMessage(*identity);
}

int removeKeys(const CommandOptions& a, std::ostream& out, std::ostream& err) {
  if (a.positionals.size() != 1) return usage(err, "'trust remove' needs exactly one FILE");
  const std::string& path = a.positionals[0];
  const std::optional<std::string> identity = a.value("--identity");
  std::optional<std::string> keyid = a.value("--keyid");
  if (!identity && !keyid) return usage(err, "'trust remove' needs --identity ID or --keyid HEX");
  if (keyid) {
    std::transform(keyid->begin(), keyid->end(), keyid->begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (!isKeyId(*keyid)) {
      return usage(err, "--keyid must be the 64 hex digits shown by 'trust show', not " +
                            quoteForMessage(*a.value("--keyid")));
    }
  }
  auto text = readFile(path);
  if (!text.ok()) return failed(err, text.error());
  auto trust = parseTrust(*text, path);
  if (!trust.ok()) return failed(err, trust.error());

  // Both options given: the key must be that identity's (a check against a mistyped keyid).
  const auto selected = [&](const TrustKey& key) {
    return (!identity || key.identity == *identity) && (!keyid || key.keyid == *keyid);
  };
  std::vector<const TrustKey*> removed;
  size_t controllers_left = 0;
  for (const TrustKey& key : trust->keys) {
    if (selected(key)) {
      removed.push_back(&key);
    } else if (key.hasRole(TrustRole::kController)) {
      ++controllers_left;
    }
  }
  if (removed.empty()) {
    err << "shadanctl: " << path << ": " << noMatch(*trust, identity, keyid)
        << " (nothing written)\n";
    return kExitFailure;
  }
  for (const TrustKey* key : removed) {
    if (key->hasRole(TrustRole::kController) && controllers_left == 0) {
      err << "shadanctl: " << path << ": refusing to remove the last controller key (" << key->keyid
          << "): agents would accept no dispatch; add the new controller key "
          << "first (nothing written)\n";
      return kExitFailure;
    }
  }

  Json doc = Json::parse(*text);
  Json kept = Json::array();
  for (const Json& entry : doc["keys"]) {
    const TrustKey* key = trust->findKey(entry["keyid"].get<std::string>());
    if (!selected(*key)) kept.push_back(entry);
  }
  doc["keys"] = kept;
  const int64_t version = doc["version"].get<int64_t>() + 1;
  doc["version"] = version;
  if (Status written = checkAndWrite(path, doc, /*replace=*/true); !written.ok()) {
    return failed(err, written.error());
  }
  if (a.flags.contains("--json")) {
    nlohmann::json report;
    report["file"] = path;
    report["version"] = version;
    report["removed"] = nlohmann::json::array();
    for (const TrustKey* key : removed) {
      nlohmann::json roles = nlohmann::json::array();
      for (TrustRole role : key->roles) roles.push_back(trustRoleName(role));
      report["removed"].push_back(
          {{"keyid", key->keyid}, {"identity", key->identity}, {"roles", roles}});
    }
    out << report.dump() << "\n";
  } else {
    for (const TrustKey* key : removed) {
      out << "removed " << key->identity << " (" << key->keyid << ") from " << path << "\n";
    }
    out << path << ": version " << version
        << "; distribute it to the controller and every gateway\n";
  }
  return kExitOk;
}

std::string rolesText(const TrustKey& key) {
  std::string out;
  for (TrustRole role : key.roles) {
    if (!out.empty()) out += ",";
    out += trustRoleName(role);
  }
  return out;
}

int show(const CommandOptions& a, std::ostream& out, std::ostream& err, const Clock& clock) {
  if (a.positionals.size() != 1) return usage(err, "'trust show' needs exactly one FILE");
  // Not loadTrustFile: its log line would repeat the warnings printed below.
  auto text = readFile(a.positionals[0]);
  if (!text.ok()) return failed(err, text.error());
  auto trust = parseTrust(*text, a.positionals[0]);
  if (!trust.ok()) return failed(err, trust.error());
  const bool expired = trust->isExpired(clock.now());
  // Keys that break the identity rule were written by hand: agents accept them, but say so.
  const std::vector<std::string> warnings = identityRoleWarnings(*trust);
  if (a.flags.contains("--json")) {
    nlohmann::json doc;
    doc["version"] = trust->version;
    doc["purpose"] = trustPurposeName(trust->purpose);
    doc["expires_at"] = formatRfc3339(trust->expires_at_ms);
    doc["expired"] = expired;
    doc["keys"] = nlohmann::json::array();
    for (const TrustKey& key : trust->keys) {
      nlohmann::json roles = nlohmann::json::array();
      for (TrustRole role : key.roles) roles.push_back(trustRoleName(role));
      doc["keys"].push_back({{"keyid", key.keyid}, {"identity", key.identity}, {"roles", roles}});
    }
    const TrustThresholds& t = trust->thresholds;
    doc["thresholds"] = {{"isolate_operators", t.isolate_operators},
                         {"isolate_controller_on_behalf", t.isolate_controller_on_behalf},
                         {"isolate_protected_operators", t.isolate_protected_operators},
                         {"restore_operators", t.restore_operators},
                         {"breakglass_isolate", t.breakglass_isolate}};
    doc["warnings"] = warnings;
    out << doc.dump() << "\n";
  } else {
    out << trustPurposeName(trust->purpose) << " trust version " << trust->version << ", expires "
        << formatRfc3339(trust->expires_at_ms)
        << (expired ? " (EXPIRED: agents will refuse it)" : "") << "\n";
    if (trust->isLab()) {
      out << "lab: drill:NAME identities sign drill orders only; agents and the controller refuse "
             "every other order\n";
    }
    out << "IDENTITY                 ROLES                KEYID\n";
    for (const TrustKey& key : trust->keys) {
      std::string identity = key.identity;
      std::string roles = rolesText(key);
      identity.resize(std::max<size_t>(identity.size(), 24), ' ');
      roles.resize(std::max<size_t>(roles.size(), 20), ' ');
      out << identity << " " << roles << " " << key.keyid << "\n";
    }
    const TrustThresholds& t = trust->thresholds;
    out << "thresholds: isolate " << t.isolate_operators << " operator(s)"
        << (t.isolate_controller_on_behalf ? " or the controller on behalf of a caller" : "")
        << "; protected isolate " << t.isolate_protected_operators << "; restore "
        << t.restore_operators << "; break-glass isolate " << t.breakglass_isolate << "\n";
    for (const std::string& warning : warnings) err << "shadanctl: warning: " << warning << "\n";
  }
  return expired ? kExitFailure : kExitOk;
}

}  // namespace

const char* trustUsage() {
  return R"(usage: shadanctl trust <init|add|remove|show> ...

  trust init --out FILE --pub KEY.pub --identity ID --role ROLE[,ROLE...]
             [--version N] [--expires-in DURATION] [--purpose production|lab]
      Writes a new trust file with its first key and the default thresholds (isolate: 1 operator or
      the controller on behalf of a caller; protected isolate: 2; restore: 2 operators;
      break-glass isolate: 2). Version default 1, validity default 365d. Never overwrites.
      --purpose lab: a drill lab's file (default production). It holds drill:NAME keys (role
      drill) and no operator or breakglass key, and agents and the controller running with it
      refuse every order that is not a drill; a production file refuses every drill key.
  trust add FILE --pub KEY.pub --identity ID --role ROLE[,ROLE...]
      Adds a public key (from shadanctl keygen or an agent's agent.pub). Identities and the
      roles they may hold: op:NAME (operator, or operator,breakglass), controller (controller),
      agent:GATEWAY (agent), and in a lab file drill:NAME (drill). Any other identity or role is
      refused, as it is for init. Raises the version by one: agents never go back to a lower
      version.
  trust remove FILE [--identity ID] [--keyid HEX] [--json]
      Revokes keys: removes every key of --identity, or the key --keyid (both: that key, which
      must be the identity's). Refuses a key that is not there and the last controller key.
      Prints what it removed. Raises the version by one.
  trust show FILE [--json]
      Lists the purpose (production or lab), keys, identities, roles and thresholds; exit 1 if
      the file has expired.

Every edit is checked by the agents' own strict parser before the file is replaced (atomically);
a refused edit leaves the file as it was (exit 1). Distribute the new file to the controller and
every gateway.
)";
}

int runTrustCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                    const Clock& clock) {
  if (args.size() < 2) return usage(err, "'trust' needs a subcommand: init, add, remove or show");
  const std::string& sub = args[1];
  if (sub == "-h" || sub == "--help" || sub == "help") {
    out << trustUsage();
    return kExitOk;
  }
  if (std::find(args.begin(), args.end(), "--help") != args.end() ||
      std::find(args.begin(), args.end(), "-h") != args.end()) {
    out << trustUsage();
    return kExitOk;
  }
  OptionSpec spec;
  spec.command = "trust " + sub;
  spec.refused = {{"--token", kNoTokenOnArgv}};
  spec.quote = QuoteStyle::kJson;
  if (sub == "init") {
    spec.with_value = {"--out",      "--version", "--expires-in", "--pub",
                       "--identity", "--role",    "--purpose"};
  } else if (sub == "add") {
    spec.with_value = {"--pub", "--identity", "--role"};
    spec.max_positionals = 1;
  } else if (sub == "remove") {
    spec.with_value = {"--identity", "--keyid"};
    spec.flags = {"--json"};
    spec.max_positionals = 1;
  } else if (sub == "show") {
    spec.flags = {"--json"};
    spec.max_positionals = 1;
  } else {
    return usage(err,
                 "unknown trust subcommand '" + sub + "' (subcommands: init, add, remove, show)");
  }
  auto parsed = parseCommandOptions(args, 2, spec);
  if (!parsed.ok()) return usage(err, parsed.error().message);
  if (sub == "init") return init(*parsed, out, err, clock);
  if (sub == "add") return add(*parsed, out, err);
  if (sub == "remove") return removeKeys(*parsed, out, err);
  return show(*parsed, out, err, clock);
}

}  // namespace shadan
