#include "common/dsse.h"

#include <algorithm>

#include "common/strict_json.h"

namespace shadan {
namespace {

using Json = nlohmann::json;

bool isLowerHex64(std::string_view text) {
  return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// Strict base64: libsodium's decoder already refuses whitespace, missing padding and the URL
// alphabet; re-encoding additionally refuses non-zero bits in the last character, so each byte
// string has exactly one accepted spelling.
Result<std::vector<uint8_t>> decodeCanonicalBase64(std::string_view text) {
  SHADAN_ASSIGN_OR_RETURN(auto bytes, base64Decode(text));
  if (base64Encode(bytes) != text) {
    return makeError(ErrorCode::kParse, "not canonical base64 (non-zero padding bits)");
  }
  return bytes;
}

}  // namespace

Result<DsseEnvelope> parseDsseEnvelope(std::string_view text, std::string_view source,
                                       size_t max_bytes) {
  SHADAN_ASSIGN_OR_RETURN(auto doc, parseStrictJson(text, source, max_bytes));
  return dsseEnvelopeFromJson(doc, source, "");
}

Result<DsseEnvelope> dsseEnvelopeFromJson(const Json& value, std::string_view source,
                                          std::string_view pointer) {
  const StrictObjectReader r(value, source, std::string(pointer));
  if (!value.is_object()) return r.error("an envelope must be an object");
  SHADAN_RETURN_IF_ERROR(r.checkMembers({"payloadType", "payload", "signatures"}));
  DsseEnvelope envelope;

  SHADAN_ASSIGN_OR_RETURN(auto type, r.string("payloadType", kNonEmptyString));
  envelope.payload_type = std::move(type);

  SHADAN_ASSIGN_OR_RETURN(auto payload_text, r.string("payload"));
  const std::string payload_cap =
      "payload over the " + std::to_string(kDssePayloadMaxBytes) + "-byte cap";
  // Checked on the text so a hostile size costs nothing to refuse.
  if (payload_text.size() > (kDssePayloadMaxBytes + 2) / 3 * 4) {
    return r.error("payload", payload_cap);
  }
  auto payload = decodeCanonicalBase64(payload_text);
  if (!payload.ok()) return r.error("payload", payload.error().message);
  if (payload->size() > kDssePayloadMaxBytes) return r.error("payload", payload_cap);
  envelope.payload.assign(payload->begin(), payload->end());

  SHADAN_ASSIGN_OR_RETURN(auto signatures, r.array("signatures", 1));
  if (signatures.size() > kDsseMaxSignatures) {
    return r.error("signatures", "more than " + std::to_string(kDsseMaxSignatures) + " signatures");
  }
  for (size_t i = 0; i < signatures.size(); ++i) {
    SHADAN_ASSIGN_OR_RETURN(auto item, signatures.object(i));
    SHADAN_RETURN_IF_ERROR(item.checkMembers({"keyid", "sig"}));
    SHADAN_ASSIGN_OR_RETURN(auto keyid, item.string("keyid"));
    if (!isLowerHex64(keyid)) {
      return item.error("keyid", "must be 64 lower-case hex digits (SHA-256 of the public key)");
    }
    SHADAN_ASSIGN_OR_RETURN(auto sig_text, item.string("sig"));
    auto sig = decodeCanonicalBase64(sig_text);
    if (!sig.ok()) return item.error("sig", sig.error().message);
    if (sig->empty()) return item.error("sig", "must not be empty");
    envelope.signatures.push_back(DsseSignature{std::move(keyid), std::move(*sig)});
  }
  return envelope;
}

Json dsseEnvelopeToJson(const DsseEnvelope& envelope) {
  Json signatures = Json::array();
  for (const auto& signature : envelope.signatures) {
    signatures.push_back({{"keyid", signature.keyid}, {"sig", base64Encode(signature.sig)}});
  }
  const auto* payload = reinterpret_cast<const uint8_t*>(envelope.payload.data());
  return Json{{"payloadType", envelope.payload_type},
              {"payload", base64Encode(std::span<const uint8_t>(payload, envelope.payload.size()))},
              {"signatures", std::move(signatures)}};
}

std::string serializeDsseEnvelope(const DsseEnvelope& envelope) {
  return dsseEnvelopeToJson(envelope).dump();
}

Result<DsseEnvelope> signDsse(std::string_view payload_type, std::string_view payload,
                              std::span<const Signer* const> signers) {
  if (payload_type.empty()) {
    return makeError(ErrorCode::kInvalidArgument, "DSSE: empty payload type");
  }
  if (signers.empty() || signers.size() > kDsseMaxSignatures) {
    return makeError(ErrorCode::kInvalidArgument,
                     "DSSE: need 1 to " + std::to_string(kDsseMaxSignatures) + " signers, got " +
                         std::to_string(signers.size()));
  }
  if (payload.size() > kDssePayloadMaxBytes) {
    return makeError(ErrorCode::kInvalidArgument,
                     "DSSE: payload of " + std::to_string(payload.size()) + " bytes is over the " +
                         std::to_string(kDssePayloadMaxBytes) + "-byte cap");
  }
  DsseEnvelope envelope{std::string(payload_type), std::string(payload), {}};
  const std::string pae = dssePae(payload_type, payload);
  for (const Signer* signer : signers) {
    auto sig = signer->sign(pae);
    if (!sig.ok()) return sig.error().withContext("DSSE: signing with " + signer->keyId());
    envelope.signatures.push_back(
        DsseSignature{signer->keyId(), std::vector<uint8_t>(sig->begin(), sig->end())});
  }
  return envelope;
}

bool DsseVerification::allValid() const {
  return !checks.empty() && std::all_of(checks.begin(), checks.end(), [](const auto& check) {
    return check.status == DsseSignatureStatus::kValid;
  });
}

std::vector<std::string> DsseVerification::validKeyIds() const {
  std::vector<std::string> out;
  for (const auto& check : checks) {
    if (check.status == DsseSignatureStatus::kValid &&
        std::find(out.begin(), out.end(), check.keyid) == out.end()) {
      out.push_back(check.keyid);
    }
  }
  return out;
}

Result<DsseVerification> verifyDsse(const DsseEnvelope& envelope,
                                    std::string_view expected_payload_type,
                                    const DsseKeyLookup& lookup) {
  if (envelope.payload_type != expected_payload_type) {
    return makeError(ErrorCode::kInvalidArgument,
                     "payloadType " + quoteForMessage(envelope.payload_type) +
                         " is not the expected \"" + std::string(expected_payload_type) + "\"");
  }
  const std::string pae = dssePae(envelope.payload_type, envelope.payload);
  DsseVerification out;
  for (const auto& signature : envelope.signatures) {
    const std::optional<Ed25519PublicKey> key = lookup(signature.keyid);
    DsseSignatureStatus status = DsseSignatureStatus::kUnknownKey;
    if (key) {
      // The keyid is only a hint: the key the caller returned is what the signature must match.
      status = ed25519Verify(*key, pae, signature.sig) ? DsseSignatureStatus::kValid
                                                       : DsseSignatureStatus::kInvalid;
    }
    out.checks.push_back(DsseSignatureCheck{signature.keyid, status});
  }
  return out;
}

}  // namespace shadan
