#include "common/dsse.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace shadan {
namespace {

using nlohmann::json;

constexpr std::string_view kType = "application/vnd.shadan.test.v1+json";

Ed25519KeyPair keyFromByte(uint8_t byte) {
  std::vector<uint8_t> seed(kEd25519SeedBytes, byte);
  return Ed25519KeyPair::fromSeed(seed).value();
}

class DsseTest : public ::testing::Test {
 protected:
  DsseTest() : alice_(keyFromByte(1)), bob_(keyFromByte(2)) {}

  DsseKeyLookup lookup() const {
    return [this](std::string_view keyid) -> std::optional<Ed25519PublicKey> {
      if (keyid == alice_.keyId()) return alice_.publicKey();
      if (keyid == bob_.keyId()) return bob_.publicKey();
      return std::nullopt;
    };
  }

  std::string signedText(std::string_view payload) const {
    const Signer* signers[] = {&alice_};
    return serializeDsseEnvelope(signDsse(kType, payload, signers).value());
  }

  Ed25519Signer alice_;
  Ed25519Signer bob_;
};

TEST_F(DsseTest, PaeMatchesTheSpecExample) {
  // The worked example of the DSSE v1 protocol document.
  EXPECT_EQ(dssePae("http://example.com/HelloWorld", "hello world"),
            "DSSEv1 29 http://example.com/HelloWorld 11 hello world");
  EXPECT_EQ(dssePae("", ""), "DSSEv1 0  0 ");
  // Lengths count bytes, not characters.
  EXPECT_EQ(dssePae("t", "\xc3\xa9"), "DSSEv1 1 t 2 \xc3\xa9");
}

TEST_F(DsseTest, SignParseVerifyRoundTrip) {
  const Signer* signers[] = {&alice_, &bob_};
  auto envelope = signDsse(kType, R"({"a":1})", signers);
  ASSERT_TRUE(envelope.ok()) << envelope.error().message;
  const std::string text = serializeDsseEnvelope(*envelope);
  auto parsed = parseDsseEnvelope(text, "test");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(*parsed, *envelope);
  EXPECT_EQ(parsed->payload, R"({"a":1})");
  ASSERT_EQ(parsed->signatures.size(), 2u);
  EXPECT_EQ(parsed->signatures[0].keyid, alice_.keyId());
  EXPECT_EQ(parsed->signatures[0].sig.size(), kEd25519SignatureBytes);

  auto verification = verifyDsse(*parsed, kType, lookup());
  ASSERT_TRUE(verification.ok()) << verification.error().message;
  EXPECT_TRUE(verification->allValid());
  EXPECT_EQ(verification->validKeyIds(), (std::vector<std::string>{alice_.keyId(), bob_.keyId()}));
  // The signature covers PAE, not the bare payload.
  EXPECT_TRUE(
      ed25519Verify(alice_.publicKey(), dssePae(kType, R"({"a":1})"), parsed->signatures[0].sig));
  EXPECT_FALSE(ed25519Verify(alice_.publicKey(), R"({"a":1})", parsed->signatures[0].sig));
}

TEST_F(DsseTest, TamperedPayloadDoesNotVerify) {
  auto envelope = parseDsseEnvelope(signedText(R"({"action":"isolate"})"), "test").value();
  envelope.payload = R"({"action":"restore"})";
  auto verification = verifyDsse(envelope, kType, lookup());
  ASSERT_TRUE(verification.ok());
  EXPECT_FALSE(verification->allValid());
  EXPECT_EQ(verification->checks[0].status, DsseSignatureStatus::kInvalid);
  EXPECT_TRUE(verification->validKeyIds().empty());
}

TEST_F(DsseTest, TamperedPayloadTypeIsRefusedBeforeSignatures) {
  auto envelope = parseDsseEnvelope(signedText("{}"), "test").value();
  envelope.payload_type = "application/vnd.shadan.other.v1+json";
  auto wrong = verifyDsse(envelope, kType, lookup());
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message.find("is not the expected"), std::string::npos);
  // Even when the caller expects the tampered type, the signature no longer verifies: the type
  // is signed.
  auto verification = verifyDsse(envelope, envelope.payload_type, lookup());
  ASSERT_TRUE(verification.ok());
  EXPECT_EQ(verification->checks[0].status, DsseSignatureStatus::kInvalid);
  // A prefix or case variant of the type is not the type.
  EXPECT_FALSE(verifyDsse(envelope, "application/vnd.shadan.other.v1", lookup()).ok());
}

TEST_F(DsseTest, UnknownKeyAndDuplicateSignerAreReported) {
  Ed25519Signer carol(keyFromByte(3));
  const Signer* signers[] = {&alice_, &alice_, &carol};
  auto envelope = signDsse(kType, "x", signers).value();
  auto verification = verifyDsse(envelope, kType, lookup()).value();
  ASSERT_EQ(verification.checks.size(), 3u);
  EXPECT_EQ(verification.checks[2].status, DsseSignatureStatus::kUnknownKey);
  EXPECT_FALSE(verification.allValid());
  // One key signing twice is one signer.
  EXPECT_EQ(verification.validKeyIds(), std::vector<std::string>{alice_.keyId()});
}

TEST_F(DsseTest, KeyidIsOnlyAHint) {
  // A signature by bob labelled with alice's keyid is checked against alice's key: invalid.
  const Signer* signers[] = {&bob_};
  auto envelope = signDsse(kType, "x", signers).value();
  envelope.signatures[0].keyid = alice_.keyId();
  EXPECT_EQ(verifyDsse(envelope, kType, lookup())->checks[0].status, DsseSignatureStatus::kInvalid);
}

TEST_F(DsseTest, StrictParsingRefusesMalformedEnvelopes) {
  const json good = json::parse(signedText("{}"));
  struct Case {
    const char* name;
    std::string text;
    const char* expected;  // a substring of the error
  };
  auto with = [&](auto edit) {
    json doc = good;
    edit(doc);
    return doc.dump();
  };
  const std::string sig = good["signatures"][0]["sig"].get<std::string>();
  const std::string keyid = good["signatures"][0]["keyid"].get<std::string>();
  const std::vector<Case> cases = {
      {"not json", "{", "byte"},
      {"not an object", "[]", "must be an object"},
      {"extra top-level member", with([](json& d) { d["extra"] = 1; }), "unknown member"},
      {"missing payload", with([](json& d) { d.erase("payload"); }), "missing member"},
      {"missing signatures", with([](json& d) { d.erase("signatures"); }), "missing member"},
      {"empty signatures", with([](json& d) { d["signatures"] = json::array(); }), "non-empty"},
      {"signatures not array", with([](json& d) { d["signatures"] = json::object(); }),
       "non-empty"},
      {"extra signature member", with([](json& d) { d["signatures"][0]["cert"] = "x"; }),
       "unknown member"},
      {"missing keyid", with([](json& d) { d["signatures"][0].erase("keyid"); }), "missing member"},
      {"short keyid", with([](json& d) { d["signatures"][0]["keyid"] = "abcd"; }), "64 lower"},
      {"upper-case keyid", with([&](json& d) {
         std::string upper = keyid;
         for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
         d["signatures"][0]["keyid"] = upper;
       }),
       "64 lower"},
      {"payload not base64", with([](json& d) { d["payload"] = "e30=!"; }), "base64"},
      {"payload missing padding", with([](json& d) { d["payload"] = "e30"; }), "base64"},
      {"payload url alphabet", with([](json& d) { d["payload"] = "-_8="; }), "base64"},
      {"payload non-canonical bits", with([](json& d) { d["payload"] = "e31="; }), "base64"},
      {"payload with newline", with([](json& d) { d["payload"] = "e3\n0="; }), "base64"},
      {"sig not base64", with([](json& d) { d["signatures"][0]["sig"] = "***"; }), "base64"},
      {"empty sig", with([](json& d) { d["signatures"][0]["sig"] = ""; }), "must not be empty"},
      {"payloadType not string", with([](json& d) { d["payloadType"] = 5; }), "string"},
      {"empty payloadType", with([](json& d) { d["payloadType"] = ""; }), "must not be empty"},
      {"duplicate payload key",
       R"({"payloadType":"a","payload":"e30=","payload":"e30=","signatures":[{"keyid":")" + keyid +
           R"(","sig":")" + sig + R"("}]})",
       "duplicate key"},
      {"duplicate key in signature",
       R"({"payloadType":"a","payload":"e30=","signatures":[{"keyid":")" + keyid + R"(","sig":")" +
           sig + R"(","sig":")" + sig + R"("}]})",
       "duplicate key"},
  };
  for (const Case& c : cases) {
    auto parsed = parseDsseEnvelope(c.text, "test");
    ASSERT_FALSE(parsed.ok()) << c.name;
    EXPECT_EQ(parsed.error().code, ErrorCode::kParse) << c.name;
    EXPECT_NE(parsed.error().message.find(c.expected), std::string::npos)
        << c.name << ": " << parsed.error().message;
  }
}

TEST_F(DsseTest, ErrorsNameTheJsonPointer) {
  json doc = json::parse(signedText("{}"));
  doc["signatures"][0]["sig"] = "***";
  auto parsed = parseDsseEnvelope(doc.dump(), "env.json");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.error().message.find("env.json: /signatures/0/sig"), std::string::npos)
      << parsed.error().message;
}

TEST_F(DsseTest, SizeCapsAreEnforced) {
  EXPECT_FALSE(parseDsseEnvelope(signedText("{}"), "test", 10).ok());
  const std::string big(kDssePayloadMaxBytes + 1, 'a');
  const Signer* signers[] = {&alice_};
  EXPECT_FALSE(signDsse(kType, big, signers).ok());
  json doc = json::parse(signedText("{}"));
  doc["payload"] = base64Encode(std::vector<uint8_t>(big.begin(), big.end()));
  auto parsed = parseDsseEnvelope(doc.dump(), "test", 1 << 20);
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.error().message.find("cap"), std::string::npos) << parsed.error().message;
  // Exactly at the cap is fine.
  const std::string at_cap(kDssePayloadMaxBytes, 'a');
  EXPECT_TRUE(parseDsseEnvelope(serializeDsseEnvelope(signDsse(kType, at_cap, signers).value()),
                                "test", 1 << 20)
                  .ok());
}

TEST_F(DsseTest, SigningNeedsSigners) {
  EXPECT_FALSE(signDsse(kType, "x", {}).ok());
  const Signer* signers[] = {&alice_};
  EXPECT_FALSE(signDsse("", "x", signers).ok());
}

TEST_F(DsseTest, NestedEnvelopeErrorsNameTheirPointer) {
  json outer = {{"authz", json::parse(signedText("{}"))}};
  outer["authz"]["signatures"][0]["keyid"] = "nope";
  auto parsed = dsseEnvelopeFromJson(outer["authz"], "dispatch", "/authz");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.error().message.find("dispatch: /authz/signatures/0/keyid"), std::string::npos)
      << parsed.error().message;
}

}  // namespace
}  // namespace shadan
