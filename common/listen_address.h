#pragma once

// A listening address as the configuration and the command line write it: "host:port" or
// "[v6]:port", the host an IP literal (no name is resolved: a daemon binds where it is told).

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace shadan {

struct ListenAddress {
  std::string host;  // an IP literal (IPv6 without brackets)
  uint16_t port = 0;
};

// Errors are kParse and say what is wrong with the text ("port \"x\" is not 0-65535").
Result<ListenAddress> parseListenAddress(std::string_view text);
// The address as parseListenAddress reads it ("[::1]:9464" for IPv6).
std::string listenAddressText(const ListenAddress& address);

}  // namespace shadan
