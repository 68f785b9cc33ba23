#include "common/sha256.h"

#include <openssl/evp.h>

#include <array>
#include <cstdlib>

namespace shadan {

const EVP_MD* sha256Md() {
  // Never freed: it lives as long as the process, like the default provider it comes from.
  static const EVP_MD* const md = [] {
    EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
    if (fetched == nullptr) std::abort();  // no default provider: OpenSSL is broken
    return fetched;
  }();
  return md;
}

std::string sha256Hex(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  // EVP_Digest only fails on allocation failure or a broken OpenSSL: an invariant, not input.
  if (EVP_Digest(data.data(), data.size(), digest.data(), &length, sha256Md(), nullptr) != 1) {
    std::abort();
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0x0f]);
  }
  return out;
}

}  // namespace shadan
