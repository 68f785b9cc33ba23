#include "common/dsse.h"

#include <algorithm>

#include "common/strict_json.h"

namespace shadan {
namespace {

using Json = nlohmann::json;

Error parseError(std::string_view source, std::string_view pointer, const std::string& what) {
  return makeError(ErrorCode::kParse,
                   std::string(source) + ": " + jsonPointerDisplay(pointer) + ": " + what);
}

bool isLowerHex64(std::string_view text) {
  return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// Strict base64: libsodium's decoder already refuses whitespace, missing padding and the URL
// alphabet; re-encoding additionally refuses non-zero bits in the last character, so each byte
// string has exactly one accepted spelling.
Result<std::vector<uint8_t>> decodeCanonicalBase64(std::string_view text) {
  auto bytes = base64Decode(text);
  if (!bytes.ok()) return bytes.error();
  if (base64Encode(*bytes) != text) {
    return makeError(ErrorCode::kParse, "not canonical base64 (non-zero padding bits)");
  }
  return bytes;
}

// Fails unless `object` has exactly the members in `names`.
Status checkExactMembers(const Json& object, std::initializer_list<std::string_view> names,
                         std::string_view source, std::string_view pointer) {
  for (const auto& [key, unused] : object.items()) {
    if (std::find(names.begin(), names.end(), key) == names.end()) {
      return parseError(source, pointer, "unknown member " + quoteForMessage(key));
    }
  }
  for (std::string_view name : names) {
    if (!object.contains(name)) {
      return parseError(source, pointer, "missing member \"" + std::string(name) + "\"");
    }
  }
  return okStatus();
}

Result<std::string> stringMember(const Json& object, const char* name, std::string_view source,
                                 std::string_view pointer) {
  const Json& value = object.at(name);
  if (!value.is_string()) {
    return parseError(source, jsonPointerAppend(pointer, name), "must be a string");
  }
  return value.get<std::string>();
}

}  // namespace

Result<DsseEnvelope> parseDsseEnvelope(std::string_view text, std::string_view source,
                                       size_t max_bytes) {
  auto doc = parseStrictJson(text, source, max_bytes);
  if (!doc.ok()) return doc.error();
  return dsseEnvelopeFromJson(*doc, source, "");
}

Result<DsseEnvelope> dsseEnvelopeFromJson(const Json& value, std::string_view source,
                                          std::string_view pointer) {
  if (!value.is_object()) return parseError(source, pointer, "an envelope must be an object");
  SHADAN_RETURN_IF_ERROR(
      checkExactMembers(value, {"payloadType", "payload", "signatures"}, source, pointer));
  DsseEnvelope envelope;

  auto type = stringMember(value, "payloadType", source, pointer);
  if (!type.ok()) return type.error();
  if (type->empty()) {
    return parseError(source, jsonPointerAppend(pointer, "payloadType"), "must not be empty");
  }
  envelope.payload_type = std::move(*type);

  auto payload_text = stringMember(value, "payload", source, pointer);
  if (!payload_text.ok()) return payload_text.error();
  // Checked on the text so a hostile size costs nothing to refuse.
  if (payload_text->size() > (kDssePayloadMaxBytes + 2) / 3 * 4) {
    return parseError(source, jsonPointerAppend(pointer, "payload"),
                      "payload over the " + std::to_string(kDssePayloadMaxBytes) + "-byte cap");
  }
  auto payload = decodeCanonicalBase64(*payload_text);
  if (!payload.ok()) {
    return parseError(source, jsonPointerAppend(pointer, "payload"), payload.error().message);
  }
  if (payload->size() > kDssePayloadMaxBytes) {
    return parseError(source, jsonPointerAppend(pointer, "payload"),
                      "payload over the " + std::to_string(kDssePayloadMaxBytes) + "-byte cap");
  }
  envelope.payload.assign(payload->begin(), payload->end());

  const std::string signatures_pointer = jsonPointerAppend(pointer, "signatures");
  const Json& signatures = value.at("signatures");
  if (!signatures.is_array() || signatures.empty()) {
    return parseError(source, signatures_pointer, "must be a non-empty array");
  }
  if (signatures.size() > kDsseMaxSignatures) {
    return parseError(source, signatures_pointer,
                      "more than " + std::to_string(kDsseMaxSignatures) + " signatures");
  }
  for (size_t i = 0; i < signatures.size(); ++i) {
    const std::string item_pointer = jsonPointerAppend(signatures_pointer, i);
    const Json& item = signatures[i];
    if (!item.is_object()) return parseError(source, item_pointer, "must be an object");
    SHADAN_RETURN_IF_ERROR(checkExactMembers(item, {"keyid", "sig"}, source, item_pointer));
    auto keyid = stringMember(item, "keyid", source, item_pointer);
    if (!keyid.ok()) return keyid.error();
    if (!isLowerHex64(*keyid)) {
      return parseError(source, jsonPointerAppend(item_pointer, "keyid"),
                        "must be 64 lower-case hex digits (SHA-256 of the public key)");
    }
    auto sig_text = stringMember(item, "sig", source, item_pointer);
    if (!sig_text.ok()) return sig_text.error();
    auto sig = decodeCanonicalBase64(*sig_text);
    if (!sig.ok()) {
      return parseError(source, jsonPointerAppend(item_pointer, "sig"), sig.error().message);
    }
    if (sig->empty()) {
      return parseError(source, jsonPointerAppend(item_pointer, "sig"), "must not be empty");
    }
    envelope.signatures.push_back(DsseSignature{std::move(*keyid), std::move(*sig)});
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
