#pragma once

// IPv4 / IPv6 prefixes (CIDR) as values: parsing, printing, containment, overlap and
// subtraction. Pure; no sockets, no kernel.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace shadan {

enum class IpFamily { kV4, kV6 };

class IpPrefix {
 public:
  // Parses "10.20.0.0/16", "fd00:20::/48", or a bare address (a host prefix, /32 or /128).
  // Host bits set below the prefix length are an error ("10.20.0.1/16" is not a network):
  // a policy must say what it means.
  static Result<IpPrefix> parse(std::string_view text);

  // Builds a prefix from raw bytes (network order); host bits are cleared.
  static IpPrefix fromBytes(IpFamily family, const std::array<uint8_t, 16>& bytes, int length);

  IpFamily family() const { return family_; }
  int length() const { return length_; }
  int maxLength() const { return family_ == IpFamily::kV4 ? 32 : 128; }
  bool isHost() const { return length_ == maxLength(); }
  // Network-order bytes; only the first 4 are meaningful for IPv4.
  const std::array<uint8_t, 16>& bytes() const { return bytes_; }

  // "10.20.0.0/16"; a host prefix prints without the length ("10.99.0.10").
  std::string toString() const;
  // Always with the length.
  std::string toCidr() const;
  // The address part only.
  std::string addressString() const;

  bool contains(const IpPrefix& other) const;
  bool overlaps(const IpPrefix& other) const;

  // This prefix minus `hole`: the smallest list of prefixes that covers exactly the addresses
  // of this one that are not in `hole` (empty when `hole` covers it; {*this} when disjoint).
  std::vector<IpPrefix> subtract(const IpPrefix& hole) const;

  friend bool operator==(const IpPrefix&, const IpPrefix&) = default;
  friend auto operator<=>(const IpPrefix&, const IpPrefix&) = default;

 private:
  IpFamily family_ = IpFamily::kV4;
  std::array<uint8_t, 16> bytes_{};
  int length_ = 0;
};

}  // namespace shadan
