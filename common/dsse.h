#pragma once

// DSSE envelopes (github.com/secure-systems-lab/dsse, protocol v1): the container of every signed
// Shadan message (PROTOCOL.md "Envelope: DSSE").
//
//   {"payloadType": "<type>", "payload": "<base64 of the payload bytes>",
//    "signatures": [{"keyid": "<hex sha256 of the public key>", "sig": "<base64 Ed25519>"}]}
//
// Contracts:
//   - Parsing is strict: exactly the three members above, `signatures` a non-empty array of
//     objects with exactly `keyid` (64 lower-case hex) and `sig`, base64 in its one canonical
//     padded form, no duplicate keys, size caps before any parsing. Shadan is stricter than the
//     DSSE spec (keyid required, unknown members refused) because these bytes carry authority.
//   - A signature covers dssePae(payloadType, payload bytes), never the bare payload, so the type
//     is authenticated: one kind of message cannot pass for another.
//   - Verification compares the payload type with the expected one before anything else and
//     reports each signature's outcome; deciding what a set of signers may do (roles,
//     thresholds) is the caller's job (see agents/orders/order_verifier.h).
//   - Pure functions; thread-compatible.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/ed25519.h"
#include "common/result.h"

namespace shadan {

// Caps checked before parsing. A payload is at most kDssePayloadMaxBytes once decoded; the
// envelope text may be larger because base64 grows it by a third.
inline constexpr size_t kDssePayloadMaxBytes = 64 * 1024;
inline constexpr size_t kDsseEnvelopeMaxBytes = 128 * 1024;
// More signatures than this is not a Shadan envelope; the cap bounds verification work.
inline constexpr size_t kDsseMaxSignatures = 16;

struct DsseSignature {
  std::string keyid;
  std::vector<uint8_t> sig;  // raw signature bytes (64 for Ed25519; other lengths never verify)

  bool operator==(const DsseSignature&) const = default;
};

struct DsseEnvelope {
  std::string payload_type;
  std::string payload;  // the decoded payload bytes, exactly as signed
  std::vector<DsseSignature> signatures;

  bool operator==(const DsseEnvelope&) const = default;
};

// Parses envelope text. kParse errors start with `<source>: ` and name the JSON pointer; a
// duplicated key reads `... duplicate key "k"` (as parseStrictJson reports it).
Result<DsseEnvelope> parseDsseEnvelope(std::string_view text, std::string_view source,
                                       size_t max_bytes = kDsseEnvelopeMaxBytes);

// The same checks on an already parsed JSON value (an envelope nested inside another payload,
// like dispatch.authz). `pointer` is where `value` sits, for messages.
Result<DsseEnvelope> dsseEnvelopeFromJson(const nlohmann::json& value, std::string_view source,
                                          std::string_view pointer);

nlohmann::json dsseEnvelopeToJson(const DsseEnvelope& envelope);
std::string serializeDsseEnvelope(const DsseEnvelope& envelope);

// An envelope over `payload` signed by every signer, in order. kInvalidArgument without
// signers, with too many, or with an oversized payload; a signer's error is passed on.
Result<DsseEnvelope> signDsse(std::string_view payload_type, std::string_view payload,
                              std::span<const Signer* const> signers);

// Maps a keyid to its public key; nullopt for a key the caller does not know.
using DsseKeyLookup = std::function<std::optional<Ed25519PublicKey>(std::string_view keyid)>;

enum class DsseSignatureStatus {
  kValid,       // a known key, and the signature verifies over PAE
  kUnknownKey,  // the lookup does not know the keyid
  kInvalid,     // a known key, but the signature does not verify
};

struct DsseSignatureCheck {
  std::string keyid;
  DsseSignatureStatus status;
};

struct DsseVerification {
  std::vector<DsseSignatureCheck> checks;  // one per signature, in envelope order

  bool allValid() const;
  // keyids whose signature verified, each once, in first-seen order. Two signatures by one
  // key are one signer.
  std::vector<std::string> validKeyIds() const;
};

// Checks the payload type first (kInvalidArgument `payloadType "x" is not the expected "y"`),
// then every signature against dssePae(payload_type, payload).
Result<DsseVerification> verifyDsse(const DsseEnvelope& envelope,
                                    std::string_view expected_payload_type,
                                    const DsseKeyLookup& lookup);

}  // namespace shadan
