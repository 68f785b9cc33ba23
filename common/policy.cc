#include "common/policy.h"

#include <fstream>
#include <string>

#include "common/policy_parser.h"
#include "common/sha256.h"
#include "common/strict_json.h"

namespace shadan {
namespace {

// A policy is hand-written configuration; a megabyte is thousands of prefixes more than any real
// one and small enough to hold in memory on a gateway.
constexpr size_t kMaxPolicyBytes = 1 << 20;

}  // namespace

const char* l4ProtoName(L4Proto proto) {
  switch (proto) {
    case L4Proto::kAny:
      return "any";
    case L4Proto::kTcp:
      return "tcp";
    case L4Proto::kUdp:
      return "udp";
    case L4Proto::kIcmp:
      return "icmp";
    case L4Proto::kIcmpv6:
      return "icmpv6";
    case L4Proto::kSctp:
      return "sctp";
  }
  return "unknown";
}

const Segment* Policy::findSegment(std::string_view segment_name) const {
  const auto it = segments.find(std::string(segment_name));
  return it == segments.end() ? nullptr : &it->second;
}

const Gateway* Policy::findGateway(std::string_view id) const {
  const auto it = gateways.find(std::string(id));
  return it == gateways.end() ? nullptr : &it->second;
}

const Profile* Policy::findProfile(std::string_view profile_name) const {
  const auto it = profiles.find(std::string(profile_name));
  return it == profiles.end() ? nullptr : &it->second;
}

const Segment* Policy::defaultSegment() const {
  for (const auto& entry : segments) {
    if (entry.second.is_default) return &entry.second;
  }
  return nullptr;
}

Result<LoadedPolicy> parsePolicy(std::string_view json_text, std::string_view source) {
  auto document = parseStrictJson(json_text, source, kMaxPolicyBytes);
  if (!document.ok()) return makeError(ErrorCode::kPolicy, document.error().message);
  SHADAN_ASSIGN_OR_RETURN(auto loaded, policy_detail::PolicyParser(source).parse(*document));
  loaded.policy.source_sha256 = sha256Hex(json_text);
  return loaded;
}

Result<LoadedPolicy> loadPolicyFile(const std::filesystem::path& path) {
  const std::string source = path.string();
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return makeError(ErrorCode::kIo, source + ": is a directory, not a policy file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return makeError(ErrorCode::kIo, source + ": cannot open for reading");
  // Read one byte past the cap so that an oversized file is rejected without trusting its
  // reported size (pipes and /proc files report none).
  std::string text(kMaxPolicyBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) return makeError(ErrorCode::kIo, source + ": read failed");
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxPolicyBytes) {
    return makeError(ErrorCode::kPolicy, source + ": larger than the limit of " +
                                             std::to_string(kMaxPolicyBytes) + " bytes");
  }
  return parsePolicy(text, source);
}

}  // namespace shadan
