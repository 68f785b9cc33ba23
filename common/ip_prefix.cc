#include "common/ip_prefix.h"

#include <arpa/inet.h>

#include <charconv>

namespace shadan {
namespace {

int byteCount(IpFamily family) { return family == IpFamily::kV4 ? 4 : 16; }

void clearHostBits(std::array<uint8_t, 16>& bytes, IpFamily family, int length) {
  const int total = byteCount(family);
  for (int i = 0; i < 16; ++i) {
    const int bit_start = i * 8;
    if (i >= total || bit_start >= length + 8) {
      bytes[i] = 0;
    } else if (bit_start + 8 > length) {
      const int keep = length - bit_start;  // may be negative: the shift then clears the whole byte
      bytes[i] &= static_cast<uint8_t>(0xff << (8 - keep));
    }
  }
}

void flipBit(std::array<uint8_t, 16>& bytes, int bit) {
  bytes[bit / 8] ^= static_cast<uint8_t>(1 << (7 - bit % 8));
}

}  // namespace

Result<IpPrefix> IpPrefix::parse(std::string_view text) {
  const auto fail = [&](const std::string& why) {
    return makeError(ErrorCode::kParse, "invalid prefix \"" + std::string(text) + "\": " + why);
  };
  if (text.empty()) return fail("empty");
  if (text.size() > 64) return fail("too long");

  std::string_view address = text;
  std::string_view length_text;
  const auto slash = text.find('/');
  if (slash != std::string_view::npos) {
    address = text.substr(0, slash);
    length_text = text.substr(slash + 1);
    if (length_text.empty()) return fail("missing prefix length after '/'");
  }

  IpPrefix prefix;
  const std::string address_string(address);
  if (address_string.find(':') != std::string::npos) {
    prefix.family_ = IpFamily::kV6;
    if (inet_pton(AF_INET6, address_string.c_str(), prefix.bytes_.data()) != 1) {
      return fail("not an IPv6 address");
    }
  } else {
    prefix.family_ = IpFamily::kV4;
    // inet_pton(AF_INET) accepts only dotted quads with four decimal parts: no "10.1", no octal.
    if (inet_pton(AF_INET, address_string.c_str(), prefix.bytes_.data()) != 1) {
      return fail("not an IPv4 address");
    }
  }

  prefix.length_ = prefix.maxLength();
  if (!length_text.empty()) {
    int length = -1;
    const auto [end, ec] =
        std::from_chars(length_text.data(), length_text.data() + length_text.size(), length);
    if (ec != std::errc() || end != length_text.data() + length_text.size() || length < 0 ||
        length > prefix.maxLength() || (length_text.size() > 1 && length_text[0] == '0')) {
      return fail("prefix length must be 0.." + std::to_string(prefix.maxLength()));
    }
    prefix.length_ = length;
  }

  std::array<uint8_t, 16> network = prefix.bytes_;
  clearHostBits(network, prefix.family_, prefix.length_);
  if (network != prefix.bytes_) {
    IpPrefix canonical = prefix;
    canonical.bytes_ = network;
    return fail("host bits set (did you mean " + canonical.toCidr() + "?)");
  }
  return prefix;
}

IpPrefix IpPrefix::fromBytes(IpFamily family, const std::array<uint8_t, 16>& bytes, int length) {
  IpPrefix prefix;
  prefix.family_ = family;
  prefix.length_ = length < 0 ? 0 : (length > prefix.maxLength() ? prefix.maxLength() : length);
  prefix.bytes_ = bytes;
  clearHostBits(prefix.bytes_, family, prefix.length_);
  return prefix;
}

std::string IpPrefix::addressString() const {
  char buffer[INET6_ADDRSTRLEN] = {};
  inet_ntop(family_ == IpFamily::kV4 ? AF_INET : AF_INET6, bytes_.data(), buffer, sizeof buffer);
  return buffer;
}

std::string IpPrefix::toCidr() const { return addressString() + "/" + std::to_string(length_); }

std::string IpPrefix::toString() const { return isHost() ? addressString() : toCidr(); }

bool IpPrefix::contains(const IpPrefix& other) const {
  if (family_ != other.family_ || other.length_ < length_) return false;
  std::array<uint8_t, 16> masked = other.bytes_;
  clearHostBits(masked, family_, length_);
  return masked == bytes_;
}

bool IpPrefix::overlaps(const IpPrefix& other) const {
  return contains(other) || other.contains(*this);
}

std::vector<IpPrefix> IpPrefix::subtract(const IpPrefix& hole) const {
  if (!overlaps(hole)) return {*this};
  if (hole.contains(*this)) return {};
  // `hole` is strictly inside: walk from our length down to the hole's, keeping at each level
  // the sibling half that does not contain the hole.
  std::vector<IpPrefix> result;
  for (int bit = length_; bit < hole.length_; ++bit) {
    std::array<uint8_t, 16> sibling = hole.bytes_;
    flipBit(sibling, bit);
    result.push_back(fromBytes(family_, sibling, bit + 1));
  }
  return result;
}

}  // namespace shadan
