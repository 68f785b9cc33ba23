#include "cli/controller_context.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <ostream>

#include "cli/shadanctl.h"
#include "common/strict_json.h"

namespace shadan {
namespace {

using Json = nlohmann::json;

constexpr size_t kConfigMaxBytes = 64 * 1024;
constexpr uint64_t kMaxTimeoutSeconds = 600;

// {"controller","ca","token_file"}; relative paths are relative to the file.
Result<std::map<std::string, std::string>> loadConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return makeError(ErrorCode::kNotFound, "cannot open config file " + path);
  std::string content(kConfigMaxBytes + 1, '\0');
  in.read(content.data(), static_cast<std::streamsize>(content.size()));
  content.resize(static_cast<size_t>(in.gcount()));
  SHADAN_ASSIGN_OR_RETURN(auto parsed, parseStrictJson(content, path, kConfigMaxBytes));
  if (!parsed.is_object()) {
    return makeError(ErrorCode::kParse, path + ": must be a JSON object");
  }
  std::map<std::string, std::string> config;
  const std::filesystem::path base = std::filesystem::path(path).parent_path();
  for (const auto& [key, value] : parsed.items()) {
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

}  // namespace

int ControllerContext::usage(const std::string& message) {
  return printUsageError(err_, command_, message);
}

int ControllerContext::transportFailure(const Error& error) {
  err_ << "shadanctl: " << error.message << "\n";
  if (error.code == ErrorCode::kUnavailable) return kExitUnreachable;
  // An unreadable CA file or an oversized request: refused before anything was sent.
  if (error.code == ErrorCode::kInvalidArgument) return kExitUsage;
  return kExitFailure;
}

int ControllerContext::refused(const ApiResponse& response, const std::string& what) {
  if (response.status == 401) {
    err_ << "shadanctl: the controller did not accept the token (" << response.errorSummary()
         << "); check --token-file or SHADAN_TOKEN\n";
  } else if (response.status == 403) {
    err_ << "shadanctl: the controller refused " << what << ": not allowed for this token ("
         << response.errorSummary() << ")\n";
  } else {
    err_ << "shadanctl: the controller refused " << what << ": " << response.errorSummary() << "\n";
  }
  return kExitFailure;
}

Result<ApiClientOptions> ControllerContext::connection(const CommandOptions& options) {
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
    SHADAN_ASSIGN_OR_RETURN(auto loaded, loadConfig(*config_path));
    config = std::move(loaded);
  }
  auto pick = [&](const std::string& option, const std::string& key) -> std::optional<std::string> {
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
  SHADAN_ASSIGN_OR_RETURN(auto url, parseControllerUrl(*controller));
  out.url = url;
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
    SHADAN_ASSIGN_OR_RETURN(auto token, loadTokenFile(*token_file));
    out.token = std::move(token);
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
    SHADAN_ASSIGN_OR_RETURN(auto seconds, parseCount("--timeout", *timeout, 1, kMaxTimeoutSeconds));
    out.timeout = std::chrono::seconds(seconds);
  }
  return out;
}

Result<std::unique_ptr<ApiTransport>> ControllerContext::transport(const CommandOptions& options) {
  SHADAN_ASSIGN_OR_RETURN(auto settings, connection(options));
  return env_.make_transport(settings);
}

Result<uint64_t> parseCount(const std::string& option, const std::string& value, uint64_t min,
                            uint64_t max) {
  if (value.empty() || value.size() > 10 ||
      value.find_first_not_of("0123456789") != std::string::npos || std::stoull(value) < min ||
      std::stoull(value) > max) {
    return makeError(ErrorCode::kInvalidArgument,
                     option + " must be a whole number from " + std::to_string(min) + " to " +
                         std::to_string(max) + ", not " + quoteForMessage(value));
  }
  return std::stoull(value);
}

std::string jsonText(const Json& object, const char* key) {
  if (!object.is_object() || !object.contains(key)) return "-";
  const Json& value = object[key];
  if (value.is_null()) return "-";
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

std::string connectedOn(const Json& object) {
  const std::string on = jsonText(object, "connected_to");
  return on == "-" ? "" : " (on " + on + ")";
}

std::string firstJsonText(const Json& object, std::initializer_list<const char*> keys) {
  for (const char* key : keys) {
    if (std::string value = jsonText(object, key); value != "-") return value;
  }
  return "-";
}

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

}  // namespace shadan
