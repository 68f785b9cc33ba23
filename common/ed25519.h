#pragma once

// Ed25519 keys, signatures and key files (libsodium), plus the small encodings around them.
//
// Contracts:
//   - Every function initialises libsodium on first use (sodium_init under std::call_once);
//     callers need no setup. A libsodium that cannot initialise is a broken invariant: abort.
//   - Secret key bytes live only in SecretBytes, which wipes them (sodium_memzero) when freed.
//   - keyid = lower-case hex SHA-256 of the raw 32-byte public key (PROTOCOL.md "Keys and trust").
//   - Verification uses crypto_sign_verify_detached, which rejects non-canonical signatures and
//     small-order public keys.
//   - All types are thread-compatible; a const Ed25519KeyPair may be shared between threads.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace shadan {

inline constexpr size_t kEd25519SeedBytes = 32;
inline constexpr size_t kEd25519PublicKeyBytes = 32;
inline constexpr size_t kEd25519SignatureBytes = 64;

using Ed25519PublicKey = std::array<uint8_t, kEd25519PublicKeyBytes>;
using Ed25519Signature = std::array<uint8_t, kEd25519SignatureBytes>;

inline constexpr const char* kPrivateKeyFileType = "shadan-ed25519-private";
inline constexpr const char* kPublicKeyFileType = "shadan-ed25519-public";

// A heap buffer for secret bytes that is wiped when destroyed or overwritten. Move-only.
class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(size_t size);
  ~SecretBytes();
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  uint8_t* data() { return bytes_.data(); }
  const uint8_t* data() const { return bytes_.data(); }
  size_t size() const { return bytes_.size(); }

 private:
  void wipe();
  std::vector<uint8_t> bytes_;
};

// Lower-case hex of `bytes`, and its inverse (kParse on odd length or a non-hex character).
std::string hexEncode(std::span<const uint8_t> bytes);
Result<std::vector<uint8_t>> hexDecode(std::string_view hex);

// Standard base64 with padding (libsodium's "original" variant), and a strict decoder that
// rejects anything else (whitespace, missing padding, the URL-safe alphabet).
std::string base64Encode(std::span<const uint8_t> bytes);
Result<std::vector<uint8_t>> base64Decode(std::string_view text);

// keyid of a public key: lower-case hex SHA-256 of its 32 raw bytes.
std::string ed25519KeyId(const Ed25519PublicKey& public_key);

// DSSE pre-authentication encoding: "DSSEv1 <len(type)> <type> <len(body)> <body>", lengths as
// ASCII decimal. Every Shadan signature covers these bytes, never the bare body.
std::string dssePae(std::string_view payload_type, std::string_view body);

// Verifies a detached Ed25519 signature. False for a wrong-length signature.
bool ed25519Verify(const Ed25519PublicKey& public_key, std::string_view message,
                   std::span<const uint8_t> signature);

class Ed25519KeyPair {
 public:
  // A fresh key pair from libsodium's CSPRNG.
  static Ed25519KeyPair generate();
  // The key pair of a 32-byte RFC 8032 seed ("secret key" in RFC 8032 terms).
  static Result<Ed25519KeyPair> fromSeed(std::span<const uint8_t> seed);

  const Ed25519PublicKey& publicKey() const { return public_key_; }
  const std::string& keyId() const { return key_id_; }
  // The 32-byte seed. Secret: never log it; copy it only into SecretBytes.
  std::span<const uint8_t> seed() const;

  Ed25519Signature sign(std::string_view message) const;

 private:
  Ed25519KeyPair() = default;
  SecretBytes secret_key_;  // libsodium's 64-byte form: seed || public key
  Ed25519PublicKey public_key_{};
  std::string key_id_;
};

// Something that signs with one key: the agent's or the controller's key, an HSM later. The
// audit log signs its checkpoints through this so it never holds a key file itself.
class Signer {
 public:
  virtual ~Signer() = default;
  virtual std::string keyId() const = 0;
  virtual Result<Ed25519Signature> sign(std::string_view message) const = 0;
};

// A Signer over an in-memory key pair.
class Ed25519Signer : public Signer {
 public:
  explicit Ed25519Signer(Ed25519KeyPair key) : key_(std::move(key)) {}
  std::string keyId() const override { return key_.keyId(); }
  Result<Ed25519Signature> sign(std::string_view message) const override {
    return key_.sign(message);
  }
  const Ed25519PublicKey& publicKey() const { return key_.publicKey(); }

 private:
  Ed25519KeyPair key_;
};

// A public key as read from a public key file.
struct PublicKeyInfo {
  std::string key_id;
  Ed25519PublicKey public_key{};
  std::optional<std::string> role;  // a label for people; authority comes from the trust file
};

// Key files (JSON, one object):
//   private: {"type":"shadan-ed25519-private","keyid":..,"seed":base64(32 bytes)[,"role":..]}
//   public:  {"type":"shadan-ed25519-public","keyid":..,"public_key":base64(32)[,"role":..]}
// Writing is atomic (temporary file in the same directory, fsync, link into place, fsync the
// directory) and refuses to overwrite an existing file (kInvalidArgument). The private key file
// is created 0600, the public one 0644. `role`, if given, is 1-32 of [a-z0-9_-].
Status writePrivateKeyFile(const std::string& path, const Ed25519KeyPair& key,
                           const std::optional<std::string>& role = std::nullopt);
Status writePublicKeyFile(const std::string& path, const Ed25519PublicKey& public_key,
                          const std::optional<std::string>& role = std::nullopt);

// Loading checks the type, the lengths, that keyid matches the key, and (private) that the file
// is not accessible to group or others (kInvalidArgument naming the mode and the chmod fix).
Result<Ed25519KeyPair> loadPrivateKeyFile(const std::string& path);
Result<PublicKeyInfo> loadPublicKeyFile(const std::string& path);

// Checks a role label as accepted in key files.
Status validateKeyRole(std::string_view role);

}  // namespace shadan
