#include "cli/lab/prefix_math.h"

#include <array>

namespace shadan {
namespace {

int byteCount(IpFamily family) { return family == IpFamily::kV4 ? 4 : 16; }

// bytes += value << shift, big-endian over the family's bytes; carries past the top are lost
// (the REQUIRES of the callers keep them from happening).
void addShifted(std::array<uint8_t, 16>& bytes, IpFamily family, uint64_t value, int shift) {
  const int total = byteCount(family);
  int byte = total - 1 - shift / 8;
  // value < 2^33 and shift % 8 < 8: the shifted value fits in 64 bits.
  uint64_t carry = value << (shift % 8);
  while (carry != 0 && byte >= 0) {
    const uint64_t sum = bytes[byte] + (carry & 0xff);
    bytes[byte] = static_cast<uint8_t>(sum & 0xff);
    carry = (carry >> 8) + (sum >> 8);
    --byte;
  }
}

bool bitAt(const std::array<uint8_t, 16>& bytes, int bit) {
  return ((bytes[bit / 8] >> (7 - bit % 8)) & 1) != 0;
}

}  // namespace

int ceilLog2(uint64_t n) {
  int k = 0;
  while (k < 63 && (uint64_t{1} << k) < n) ++k;
  return k;
}

IpPrefix subPrefix(const IpPrefix& parent, int length, uint64_t index) {
  std::array<uint8_t, 16> bytes = parent.bytes();
  addShifted(bytes, parent.family(), index, parent.maxLength() - length);
  return IpPrefix::fromBytes(parent.family(), bytes, length);
}

uint64_t subPrefixIndex(const IpPrefix& parent, int length, const IpPrefix& address) {
  uint64_t index = 0;
  for (int bit = parent.length(); bit < length; ++bit) {
    index = (index << 1) | (bitAt(address.bytes(), bit) ? 1 : 0);
  }
  return index;
}

IpPrefix addressAt(const IpPrefix& prefix, uint64_t offset) {
  std::array<uint8_t, 16> bytes = prefix.bytes();
  addShifted(bytes, prefix.family(), offset, 0);
  return IpPrefix::fromBytes(prefix.family(), bytes, prefix.maxLength());
}

LabAddress labAddressOf(const IpPrefix& host, int length) {
  return LabAddress{host.family(), host.addressString(), length};
}

bool isReservedAddress(const IpPrefix& subnet, const IpPrefix& host) {
  if (subnet.length() >= subnet.maxLength() - 1) return false;
  const IpPrefix network = addressAt(subnet, 0);
  if (host == network) return true;
  if (subnet.family() == IpFamily::kV6) return false;
  // IPv4 broadcast: every host bit set.
  for (int bit = subnet.length(); bit < 32; ++bit) {
    if (!bitAt(host.bytes(), bit)) return false;
  }
  return true;
}

}  // namespace shadan
