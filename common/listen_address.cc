#include "common/listen_address.h"

#include <arpa/inet.h>

#include <charconv>

#include "common/strict_json.h"

namespace shadan {

Result<ListenAddress> parseListenAddress(std::string_view text) {
  std::string host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return makeError(ErrorCode::kParse, "must be [IPv6]:port");
    }
    host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
    in6_addr v6{};
    if (inet_pton(AF_INET6, host.c_str(), &v6) != 1) {
      return makeError(ErrorCode::kParse,
                       "host " + quoteForMessage(host) + " is not an IPv6 address");
    }
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return makeError(ErrorCode::kParse, "must be host:port");
    host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
    in_addr v4{};
    if (inet_pton(AF_INET, host.c_str(), &v4) != 1) {
      return makeError(
          ErrorCode::kParse,
          "host " + quoteForMessage(host) + " is not an IPv4 address (write IPv6 as [addr]:port)");
    }
  }
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    return makeError(ErrorCode::kParse, "port " + quoteForMessage(port_text) + " is not 0-65535");
  }
  return ListenAddress{host, static_cast<uint16_t>(port)};
}

std::string listenAddressText(const ListenAddress& address) {
  const bool v6 = address.host.find(':') != std::string::npos;
  return (v6 ? "[" + address.host + "]" : address.host) + ":" + std::to_string(address.port);
}

}  // namespace shadan
