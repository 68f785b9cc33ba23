#include "common/ed25519.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "common/atomic_file.h"
#include "common/sha256.h"
#include "common/strict_json.h"
#include "common/unique_fd.h"

namespace shadan {
namespace {

using Json = nlohmann::json;

// Key files are tiny; anything bigger is not a key file.
constexpr size_t kKeyFileMaxBytes = 4096;

void ensureSodium() {
  static std::once_flag once;
  std::call_once(once, [] {
    // sodium_init() returns 1 when already initialised (by another library): also fine.
    if (sodium_init() < 0) {
      std::fprintf(stderr, "shadan: broken invariant: libsodium failed to initialise\n");
      std::abort();
    }
  });
}

std::string errnoText(int error) { return std::strerror(error); }

// Reads a small file; the caller decides what its permissions must be.
Result<std::string> readSmallFile(const std::string& path, struct stat* info) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) {
    const int error = errno;
    return makeError(error == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                     "cannot open " + path + ": " + errnoText(error));
  }
  if (::fstat(fd.get(), info) != 0) {
    return makeError(ErrorCode::kIo, "cannot stat " + path + ": " + errnoText(errno));
  }
  if (!S_ISREG(info->st_mode)) {
    return makeError(ErrorCode::kInvalidArgument, path + " is not a regular file");
  }
  if (static_cast<uint64_t>(info->st_size) > kKeyFileMaxBytes) {
    return makeError(ErrorCode::kParse, path + ": larger than " + std::to_string(kKeyFileMaxBytes) +
                                            " bytes; not a key file");
  }
  std::string data(static_cast<size_t>(info->st_size), '\0');
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::read(fd.get(), data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return makeError(ErrorCode::kIo, "cannot read " + path + ": " + errnoText(errno));
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  data.resize(done);
  return data;
}

// Parses a key file: strict JSON, exactly the allowed keys, all strings.
Result<Json> parseKeyFile(const std::string& path, std::string_view text,
                          const std::set<std::string>& required, const char* expected_type) {
  SHADAN_ASSIGN_OR_RETURN(auto parsed, parseStrictJson(text, path, kKeyFileMaxBytes));
  Json& doc = parsed;
  if (!doc.is_object()) return makeError(ErrorCode::kParse, path + ": not a JSON object");
  for (const auto& [key, value] : doc.items()) {
    if (!required.contains(key) && key != "role") {
      return makeError(ErrorCode::kParse, path + ": unknown field " + quoteForMessage(key));
    }
    if (!value.is_string()) {
      return makeError(ErrorCode::kParse, path + ": field \"" + key + "\" must be a string");
    }
  }
  for (const std::string& key : required) {
    if (!doc.contains(key)) {
      return makeError(ErrorCode::kParse, path + ": missing field \"" + key + "\"");
    }
  }
  if (doc["type"] != expected_type) {
    return makeError(ErrorCode::kParse, path + ": type is " +
                                            quoteForMessage(doc["type"].get<std::string>()) +
                                            ", expected \"" + expected_type + "\"");
  }
  if (doc.contains("role")) {
    Status valid = validateKeyRole(doc["role"].get<std::string>());
    if (!valid.ok()) return valid.error().withContext(path);
  }
  return std::move(doc);
}

}  // namespace

SecretBytes::SecretBytes(size_t size) : bytes_(size, 0) {}
SecretBytes::~SecretBytes() { wipe(); }
SecretBytes::SecretBytes(SecretBytes&& other) noexcept : bytes_(std::move(other.bytes_)) {
  other.bytes_.clear();
}
SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    wipe();
    bytes_ = std::move(other.bytes_);
    other.bytes_.clear();
  }
  return *this;
}
void SecretBytes::wipe() {
  if (!bytes_.empty()) sodium_memzero(bytes_.data(), bytes_.size());
}

std::string hexEncode(std::span<const uint8_t> bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t byte : bytes) {
    out.push_back(kHex[byte >> 4]);
    out.push_back(kHex[byte & 0x0f]);
  }
  return out;
}

Result<std::vector<uint8_t>> hexDecode(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (hex.size() % 2 != 0) return makeError(ErrorCode::kParse, "hex text has an odd length");
  std::vector<uint8_t> out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int high = nibble(hex[i]);
    const int low = nibble(hex[i + 1]);
    if (high < 0 || low < 0) {
      return makeError(ErrorCode::kParse, "not a hex character at offset " + std::to_string(i));
    }
    out.push_back(static_cast<uint8_t>(high << 4 | low));
  }
  return out;
}

std::string base64Encode(std::span<const uint8_t> bytes) {
  ensureSodium();
  const size_t length = sodium_base64_encoded_len(bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  std::string out(length, '\0');
  sodium_bin2base64(out.data(), out.size(), bytes.data(), bytes.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  out.resize(length - 1);  // the encoded length counts the terminating NUL
  return out;
}

Result<std::vector<uint8_t>> base64Decode(std::string_view text) {
  ensureSodium();
  std::vector<uint8_t> out(text.size() / 4 * 3 + 3);
  size_t length = 0;
  const char* end = nullptr;
  if (sodium_base642bin(out.data(), out.size(), text.data(), text.size(), nullptr, &length, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != text.data() + text.size()) {
    return makeError(ErrorCode::kParse, "not valid base64 (standard alphabet, padded)");
  }
  out.resize(length);
  return out;
}

std::string ed25519KeyId(const Ed25519PublicKey& public_key) {
  return sha256Hex(
      std::string_view(reinterpret_cast<const char*>(public_key.data()), public_key.size()));
}

std::string dssePae(std::string_view payload_type, std::string_view body) {
  std::string out = "DSSEv1 " + std::to_string(payload_type.size()) + " ";
  out.append(payload_type);
  out += " " + std::to_string(body.size()) + " ";
  out.append(body);
  return out;
}

bool ed25519Verify(const Ed25519PublicKey& public_key, std::string_view message,
                   std::span<const uint8_t> signature) {
  ensureSodium();
  if (signature.size() != crypto_sign_BYTES) return false;
  return crypto_sign_verify_detached(signature.data(),
                                     reinterpret_cast<const unsigned char*>(message.data()),
                                     message.size(), public_key.data()) == 0;
}

Ed25519KeyPair Ed25519KeyPair::generate() {
  ensureSodium();
  SecretBytes seed(crypto_sign_SEEDBYTES);
  randombytes_buf(seed.data(), seed.size());
  auto pair = fromSeed(std::span<const uint8_t>(seed.data(), seed.size()));
  return std::move(pair).value();  // a 32-byte seed cannot be refused
}

Result<Ed25519KeyPair> Ed25519KeyPair::fromSeed(std::span<const uint8_t> seed) {
  ensureSodium();
  if (seed.size() != crypto_sign_SEEDBYTES) {
    return makeError(ErrorCode::kInvalidArgument,
                     "an Ed25519 seed is 32 bytes, not " + std::to_string(seed.size()));
  }
  Ed25519KeyPair pair;
  pair.secret_key_ = SecretBytes(crypto_sign_SECRETKEYBYTES);
  crypto_sign_seed_keypair(pair.public_key_.data(), pair.secret_key_.data(), seed.data());
  pair.key_id_ = ed25519KeyId(pair.public_key_);
  return pair;
}

std::span<const uint8_t> Ed25519KeyPair::seed() const {
  return {secret_key_.data(), crypto_sign_SEEDBYTES};
}

Ed25519Signature Ed25519KeyPair::sign(std::string_view message) const {
  Ed25519Signature signature{};
  crypto_sign_detached(signature.data(), nullptr,
                       reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                       secret_key_.data());
  return signature;
}

Status validateKeyRole(std::string_view role) {
  const bool ok =
      !role.empty() && role.size() <= 32 &&
      role.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") == std::string_view::npos;
  if (!ok) {
    return makeError(ErrorCode::kInvalidArgument,
                     "invalid role " + quoteForMessage(role) + ": use 1-32 of a-z 0-9 _ -");
  }
  return okStatus();
}

Status writePrivateKeyFile(const std::string& path, const Ed25519KeyPair& key,
                           const std::optional<std::string>& role) {
  if (role) SHADAN_RETURN_IF_ERROR(validateKeyRole(*role));
  // The seed passes through a std::string here; wipe every copy we made before returning.
  std::string seed_text = base64Encode(key.seed());
  Json doc = {{"type", kPrivateKeyFileType}, {"keyid", key.keyId()}, {"seed", seed_text}};
  if (role) doc["role"] = *role;
  std::string text = doc.dump() + "\n";
  Status written = writeFileAtomically(path, text, 0600, ExistingFile::kRefuse);
  sodium_memzero(seed_text.data(), seed_text.size());
  sodium_memzero(text.data(), text.size());
  doc["seed"].get_ref<std::string&>().assign(seed_text.size(), '\0');
  return written;
}

Status writePublicKeyFile(const std::string& path, const Ed25519PublicKey& public_key,
                          const std::optional<std::string>& role) {
  if (role) SHADAN_RETURN_IF_ERROR(validateKeyRole(*role));
  Json doc = {{"type", kPublicKeyFileType},
              {"keyid", ed25519KeyId(public_key)},
              {"public_key", base64Encode(public_key)}};
  if (role) doc["role"] = *role;
  return writeFileAtomically(path, doc.dump() + "\n", 0644, ExistingFile::kRefuse);
}

Result<Ed25519KeyPair> loadPrivateKeyFile(const std::string& path) {
  struct stat info {};
  SHADAN_ASSIGN_OR_RETURN(auto text, readSmallFile(path, &info));
  if ((info.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    sodium_memzero(text.data(), text.size());
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(info.st_mode & 07777));
    return makeError(ErrorCode::kInvalidArgument,
                     "private key file " + path + " has mode " + mode +
                         ": group or others may access it; refusing to use it (fix: chmod 600 " +
                         path + ", and consider the key exposed)");
  }
  auto doc = parseKeyFile(path, text, {"type", "keyid", "seed"}, kPrivateKeyFileType);
  sodium_memzero(text.data(), text.size());
  if (!doc.ok()) return doc.error();
  std::string& seed_text = (*doc)["seed"].get_ref<std::string&>();
  auto seed = base64Decode(seed_text);
  sodium_memzero(seed_text.data(), seed_text.size());
  if (!seed.ok()) return seed.error().withContext(path + ": seed");
  SecretBytes secret(seed->size());
  std::memcpy(secret.data(), seed->data(), seed->size());
  sodium_memzero(seed->data(), seed->size());
  if (secret.size() != kEd25519SeedBytes) {
    return makeError(ErrorCode::kParse,
                     path + ": seed is " + std::to_string(secret.size()) + " bytes, expected 32");
  }
  auto pair = Ed25519KeyPair::fromSeed(std::span<const uint8_t>(secret.data(), secret.size()));
  if (!pair.ok()) return pair.error().withContext(path);
  if ((*doc)["keyid"] != pair->keyId()) {
    return makeError(ErrorCode::kParse, path + ": keyid does not match the key (file says " +
                                            quoteForMessage((*doc)["keyid"].get<std::string>()) +
                                            ")");
  }
  return pair;
}

Result<PublicKeyInfo> loadPublicKeyFile(const std::string& path) {
  struct stat info {};
  SHADAN_ASSIGN_OR_RETURN(auto text, readSmallFile(path, &info));
  SHADAN_ASSIGN_OR_RETURN(
      auto doc, parseKeyFile(path, text, {"type", "keyid", "public_key"}, kPublicKeyFileType));
  auto raw = base64Decode(doc["public_key"].get<std::string>());
  if (!raw.ok()) return raw.error().withContext(path + ": public_key");
  if (raw->size() != kEd25519PublicKeyBytes) {
    return makeError(ErrorCode::kParse, path + ": public_key is " + std::to_string(raw->size()) +
                                            " bytes, expected 32");
  }
  PublicKeyInfo out;
  std::memcpy(out.public_key.data(), raw->data(), raw->size());
  out.key_id = ed25519KeyId(out.public_key);
  if (doc["keyid"] != out.key_id) {
    return makeError(ErrorCode::kParse, path + ": keyid does not match the key (file says " +
                                            quoteForMessage(doc["keyid"].get<std::string>()) + ")");
  }
  if (doc.contains("role")) out.role = doc["role"].get<std::string>();
  return out;
}

}  // namespace shadan
