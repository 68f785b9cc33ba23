#pragma once

// The operator tool's client for the controller's HTTPS API (issue3 contract, "Controller HTTPS
// API"): one JSON request, one JSON answer, over TLS 1.3 only.
//
// Contracts:
//   - The server certificate is verified against the CA file given in the options and nothing
//     else (never the system store), and must name the host of the URL (DNS name or IP
//     address). Anything below TLS 1.3 is refused.
//   - The bearer token travels only in the Authorization header; it is never logged and never
//     part of an error message. Callers get it from a file or SHADAN_TOKEN (loadToken), never
//     from argv.
//   - Request bodies are capped at kApiMaxRequestBytes before sending, answers at
//     ApiClientOptions::max_response_bytes while reading; one deadline (timeout) covers resolve,
//     connect, handshake, write and read.
//   - Errors split into two kinds the CLI maps to exit codes: kUnavailable (the controller could
//     not be reached or TLS failed: exit 3) and everything else. An HTTP error status is not an
//     error of request(): it comes back as an ApiResponse with that status.
//   - One request per connection; an ApiClient is cheap and thread-compatible.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace shadan {

// The contract caps bodies at 64 KiB on the server; the CLI never needs to send more.
inline constexpr size_t kApiMaxRequestBytes = 64 * 1024;
inline constexpr size_t kApiDefaultMaxResponseBytes = 1024 * 1024;
inline constexpr size_t kApiMaxTokenBytes = 4096;
// requestRaw() bodies: the alert intake (POST /v1/alerts) takes up to 4 MiB per request.
inline constexpr size_t kApiMaxRawRequestBytes = 4 * 1024 * 1024;

// "https://HOST:PORT" split up. HOST may be a DNS name, an IPv4 address or "[IPv6]".
struct ControllerUrl {
  std::string host;  // without brackets
  uint16_t port = 443;
  bool host_is_ip = false;
};

// Accepts https://HOST[:PORT] with an optional trailing "/"; no path, query or user info.
Result<ControllerUrl> parseControllerUrl(std::string_view url);

struct ApiClientOptions {
  ControllerUrl url;
  std::string ca_file;  // PEM; the only trust anchor
  std::string token;    // bearer token; secret
  std::chrono::milliseconds timeout{10000};
  size_t max_response_bytes = kApiDefaultMaxResponseBytes;
};

struct ApiResponse {
  int status = 0;
  nlohmann::json body;  // null when the answer had no body

  bool ok() const { return status >= 200 && status < 300; }
  // For an error answer: "<code>: <message>" from {"error":{"code","message"}}, else the
  // status line. Text from the server is quoted/escaped.
  std::string errorSummary() const;
};

// A request whose body the caller serialized itself (the alert intake takes NDJSON with a
// detector's media type), sent as is.
struct RawApiRequest {
  std::string method = "POST";  // only POST
  std::string path;             // starts with "/v1/"; may carry a query ("?format=eve")
  std::string content_type;     // visible ASCII, e.g. "application/vnd.suricata.eve+json"
  std::string body;             // at most kApiMaxRawRequestBytes
};

// The answer to a raw request: the same ApiResponse, and the headers its caller needs.
struct RawApiResponse {
  ApiResponse response;
  // The Retry-After header as sent (a 429 says how many seconds to wait); nullopt when absent.
  std::optional<std::string> retry_after;
};

// Something that sends API requests; the commands take this so tests can hand them a fake.
class ApiTransport {
 public:
  virtual ~ApiTransport() = default;
  // `method` is "GET" or "POST"; `path` starts with "/v1/". `body` is sent as JSON when set.
  virtual Result<ApiResponse> request(std::string_view method, std::string_view path,
                                      const std::optional<nlohmann::json>& body) = 0;
  // Sends `request.body` with its content type; the answer carries Retry-After. Errors and
  // statuses as for request(). The default refuses (kInternal), so transports that only send
  // JSON need not implement it.
  virtual Result<RawApiResponse> requestRaw(const RawApiRequest& request);
};

class ApiClient : public ApiTransport {
 public:
  explicit ApiClient(ApiClientOptions options) : options_(std::move(options)) {}

  Result<ApiResponse> request(std::string_view method, std::string_view path,
                              const std::optional<nlohmann::json>& body) override;
  Result<RawApiResponse> requestRaw(const RawApiRequest& request) override;

 private:
  // One HTTPS exchange; the body (with its content type) is sent when `content_type` is set.
  Result<RawApiResponse> exchange(std::string_view method, std::string_view path,
                                  std::optional<std::string_view> content_type,
                                  std::string body_text);

  ApiClientOptions options_;
};

// Reads a bearer token from `path` (one line; a trailing newline is dropped). Refused when the
// file is readable by group or others, empty, larger than kApiMaxTokenBytes, or holds anything
// but visible ASCII (the token goes into an HTTP header).
Result<std::string> loadTokenFile(const std::string& path);

// Checks a token taken from the environment the same way (visible ASCII, size).
Status validateToken(std::string_view token);

}  // namespace shadan
