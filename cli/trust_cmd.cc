#include "cli/trust_cmd.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

#include "cli/shadanctl.h"
#include "common/duration.h"
#include "common/ed25519.h"
#include "common/strict_json.h"
#include "common/trust.h"

namespace shadan {
namespace {

using Json = nlohmann::ordered_json;

constexpr auto kDefaultValidity = std::chrono::hours(24 * 365);

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> values;
  std::set<std::string> flags;
};

Result<Args> parseArgs(const std::vector<std::string>& args, const std::set<std::string>& valued,
                       const std::set<std::string>& flags, const std::string& command) {
  Args out;
  for (size_t i = 2; i < args.size(); ++i) {
    std::string key = args[i];
    std::optional<std::string> value;
    if (key.rfind("--", 0) != 0) {
      out.positional.push_back(key);
      continue;
    }
    if (const size_t eq = key.find('='); eq != std::string::npos) {
      value = key.substr(eq + 1);
      key = key.substr(0, eq);
    }
    if (out.values.contains(key) || out.flags.contains(key)) {
      return makeError(ErrorCode::kInvalidArgument, "option " + key + " given twice");
    }
    if (flags.contains(key) && !value) {
      out.flags.insert(key);
    } else if (valued.contains(key)) {
      if (!value) {
        if (i + 1 >= args.size()) {
          return makeError(ErrorCode::kInvalidArgument, "option " + key + " needs a value");
        }
        value = args[++i];
      }
      out.values[key] = *value;
    } else {
      return makeError(ErrorCode::kInvalidArgument,
                       "unknown option '" + key + "' for 'trust " + command + "'");
    }
  }
  return out;
}

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

// Writes `contents` to `path` through a temporary file in the same directory: fsync, then
// rename over the target (or link, when `replace` is false, so an existing file is never
// overwritten), then fsync the directory. A reader sees the old file or the new one, never half.
Status writeFileAtomically(const std::string& path, const std::string& contents, bool replace) {
  const std::filesystem::path target(path);
  const std::filesystem::path dir =
      target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
  std::string temp = (dir / ("." + target.filename().string() + ".XXXXXX")).string();
  const int fd = ::mkstemp(temp.data());
  if (fd < 0) return makeError(ErrorCode::kIo, path + ": cannot create a temporary file");
  auto fail = [&](const std::string& what) {
    ::unlink(temp.c_str());
    return makeError(ErrorCode::kIo, path + ": " + what + ": " + std::strerror(errno));
  };
  size_t written = 0;
  while (written < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + written, contents.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return fail("write");
    }
    written += static_cast<size_t>(n);
  }
  // The trust file is public (key material in it is public); 0644 like a public key file.
  if (::fchmod(fd, 0644) != 0 || ::fsync(fd) != 0) {
    ::close(fd);
    return fail("fsync");
  }
  ::close(fd);
  if (replace) {
    if (::rename(temp.c_str(), path.c_str()) != 0) return fail("rename");
  } else {
    if (::link(temp.c_str(), path.c_str()) != 0) {
      if (errno == EEXIST) {
        ::unlink(temp.c_str());
        return makeError(ErrorCode::kInvalidArgument,
                         path + " already exists; refusing to overwrite it");
      }
      return fail("link");
    }
    ::unlink(temp.c_str());
  }
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    (void)::fsync(dir_fd);
    ::close(dir_fd);
  }
  return okStatus();
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
  return writeFileAtomically(path, text, replace);
}

int usage(std::ostream& err, const std::string& message) {
  err << "shadanctl: " << message << "\n\n" << trustUsage();
  return kExitUsage;
}

int failed(std::ostream& err, const Error& error) {
  err << "shadanctl: " << error.message << "\n";
  return kExitFailure;
}

// The {"keyid","public_key","identity","roles"} entry for --pub/--identity/--role.
Result<Json> keyEntry(const Args& a, const std::string& command) {
  for (const char* needed : {"--pub", "--identity", "--role"}) {
    if (!a.values.contains(needed)) {
      return makeError(ErrorCode::kInvalidArgument, "'trust " + command + "' needs " + needed);
    }
  }
  auto key = loadPublicKeyFile(a.values.at("--pub"));
  if (!key.ok()) return key.error();
  std::vector<std::string> roles;
  std::stringstream role_list(a.values.at("--role"));
  for (std::string role; std::getline(role_list, role, ',');) {
    if (role.empty()) {
      return makeError(ErrorCode::kInvalidArgument,
                       "--role: an empty role in '" + a.values.at("--role") + "'");
    }
    roles.push_back(role);
  }
  Json entry;
  entry["keyid"] = key->key_id;
  entry["public_key"] = base64Encode(key->public_key);
  entry["identity"] = a.values.at("--identity");
  entry["roles"] = roles;
  return entry;
}

int init(const Args& a, std::ostream& out, std::ostream& err, const Clock& clock) {
  if (!a.positional.empty()) return usage(err, "'trust init' takes no argument");
  if (!a.values.contains("--out")) return usage(err, "'trust init' needs --out FILE");
  auto entry = keyEntry(a, "init");
  if (!entry.ok()) {
    if (entry.error().code == ErrorCode::kInvalidArgument) return usage(err, entry.error().message);
    return failed(err, entry.error());
  }
  int64_t version = 1;
  if (auto it = a.values.find("--version"); it != a.values.end()) {
    const std::string& text = it->second;
    if (text.empty() || text.size() > 15 ||
        text.find_first_not_of("0123456789") != std::string::npos || std::stoll(text) < 1) {
      return usage(err, "--version must be a whole number of at least 1, not '" + text + "'");
    }
    version = std::stoll(text);
  }
  std::chrono::milliseconds validity = kDefaultValidity;
  if (auto it = a.values.find("--expires-in"); it != a.values.end()) {
    auto parsed = parseDuration(it->second);
    if (!parsed.ok()) return usage(err, "--expires-in: " + parsed.error().message);
    validity = *parsed;
  }
  const int64_t expires = toUnixMillis(clock.now()) + validity.count();
  Json doc;
  doc["shadan_trust"] = kTrustFormatVersion;
  doc["version"] = version;
  // Whole seconds: the file is read by people, and the parser takes RFC 3339 either way.
  doc["expires_at"] = formatRfc3339(expires - expires % 1000);
  doc["keys"] = Json::array({*entry});
  const TrustThresholds defaults;
  doc["thresholds"] = {{"isolate",
                        {{"operators", defaults.isolate_operators},
                         {"controller_on_behalf", defaults.isolate_controller_on_behalf}}},
                       {"isolate_protected", {{"operators", defaults.isolate_protected_operators}}},
                       {"restore", {{"operators", defaults.restore_operators}}},
                       {"breakglass_isolate", {{"breakglass", defaults.breakglass_isolate}}}};
  const std::string& path = a.values.at("--out");
  if (Status written = checkAndWrite(path, doc, /*replace=*/false); !written.ok()) {
    return failed(err, written.error());
  }
  out << "wrote " << path << " (version " << version << ", expires "
      << doc["expires_at"].get<std::string>() << ") with " << a.values.at("--identity") << "\n";
  return kExitOk;
}

int add(const Args& a, std::ostream& out, std::ostream& err) {
  if (a.positional.size() != 1) return usage(err, "'trust add' needs exactly one FILE");
  const std::string& path = a.positional[0];
  auto entry = keyEntry(a, "add");
  if (!entry.ok()) {
    if (entry.error().code == ErrorCode::kInvalidArgument) return usage(err, entry.error().message);
    return failed(err, entry.error());
  }
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
  out << "added " << a.values.at("--identity") << " (" << (*entry)["keyid"].get<std::string>()
      << ") to " << path << "; version " << version << "\n";
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

int show(const Args& a, std::ostream& out, std::ostream& err, const Clock& clock) {
  if (a.positional.size() != 1) return usage(err, "'trust show' needs exactly one FILE");
  auto trust = loadTrustFile(a.positional[0]);
  if (!trust.ok()) return failed(err, trust.error());
  const bool expired = trust->isExpired(clock.now());
  if (a.flags.contains("--json")) {
    nlohmann::json doc;
    doc["version"] = trust->version;
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
    out << doc.dump() << "\n";
  } else {
    out << "trust version " << trust->version << ", expires " << formatRfc3339(trust->expires_at_ms)
        << (expired ? " (EXPIRED: agents will refuse it)" : "") << "\n";
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
  }
  return expired ? kExitFailure : kExitOk;
}

}  // namespace

const char* trustUsage() {
  return R"(usage: shadanctl trust <init|add|show> ...

  trust init --out FILE --pub KEY.pub --identity ID --role ROLE[,ROLE...]
             [--version N] [--expires-in DURATION]
      Writes a new trust file with its first key and the default thresholds (isolate: 1 operator or
      the controller on behalf of a caller; protected isolate: 2; restore: 2 operators;
      break-glass isolate: 2). Version default 1, validity default 365d. Never overwrites.
  trust add FILE --pub KEY.pub --identity ID --role ROLE[,ROLE...]
      Adds a public key (from shadanctl keygen or an agent's agent.pub). Identities:
      op:NAME (roles operator[,breakglass]), controller (role controller), agent:GATEWAY
      (role agent). Raises the version by one: agents never go back to a lower version.
  trust show FILE [--json]
      Lists keys, identities, roles and thresholds; exit 1 if the file has expired.

Every edit is checked by the agents' own strict parser before the file is replaced (atomically).
Distribute the new file to the controller and every gateway.
)";
}

int runTrustCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                    const Clock& clock) {
  if (args.size() < 2) return usage(err, "'trust' needs a subcommand: init, add or show");
  const std::string& sub = args[1];
  if (sub == "-h" || sub == "--help") {
    out << trustUsage();
    return kExitOk;
  }
  if (std::find(args.begin(), args.end(), "--help") != args.end() ||
      std::find(args.begin(), args.end(), "-h") != args.end()) {
    out << trustUsage();
    return kExitOk;
  }
  if (sub == "init") {
    auto parsed = parseArgs(
        args, {"--out", "--version", "--expires-in", "--pub", "--identity", "--role"}, {}, sub);
    if (!parsed.ok()) return usage(err, parsed.error().message);
    return init(*parsed, out, err, clock);
  }
  if (sub == "add") {
    auto parsed = parseArgs(args, {"--pub", "--identity", "--role"}, {}, sub);
    if (!parsed.ok()) return usage(err, parsed.error().message);
    return add(*parsed, out, err);
  }
  if (sub == "show") {
    auto parsed = parseArgs(args, {}, {"--json"}, sub);
    if (!parsed.ok()) return usage(err, parsed.error().message);
    return show(*parsed, out, err, clock);
  }
  return usage(err, "unknown trust subcommand '" + sub + "'");
}

}  // namespace shadan
