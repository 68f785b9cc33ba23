// The agent channel's hello (common/channel.h): what an agent sends first, and the strict reading
// of it on the controller's side, public key included.
#include "common/channel.h"

#include <gtest/gtest.h>

namespace shadan {
namespace {

using nlohmann::json;

HelloMessage helloOf(const Ed25519KeyPair& key, bool with_public_key) {
  HelloMessage hello;
  hello.agent_id = "branch-0042";
  hello.agent_key = key.keyId();
  hello.last_seq = 7;
  hello.version = "1.2.3";
  if (with_public_key) hello.public_key = key.publicKey();
  return hello;
}

TEST(ChannelHelloTest, RoundTripsWithAndWithoutThePublicKey) {
  const Ed25519KeyPair key = Ed25519KeyPair::generate();
  for (const bool with_key : {false, true}) {
    const json message = helloMessage(helloOf(key, with_key));
    EXPECT_EQ(message.contains("public_key"), with_key);
    auto parsed = parseHelloMessage(message);
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    EXPECT_EQ(parsed->agent_key, key.keyId());
    EXPECT_EQ(parsed->last_seq, 7u);
    EXPECT_EQ(parsed->public_key.has_value(), with_key);
    if (with_key) {
      EXPECT_EQ(*parsed->public_key, key.publicKey());
    }
  }
}

TEST(ChannelHelloTest, RefusesAPublicKeyThatIsNotTheNamedKey) {
  const Ed25519KeyPair key = Ed25519KeyPair::generate();
  const Ed25519KeyPair other = Ed25519KeyPair::generate();
  json message = helloMessage(helloOf(key, true));
  message["public_key"] = base64Encode(other.publicKey());
  auto parsed = parseHelloMessage(message);
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.error().message.find("/public_key does not match /agent_key"), std::string::npos)
      << parsed.error().message;
}

TEST(ChannelHelloTest, RefusesAMalformedPublicKey) {
  const Ed25519KeyPair key = Ed25519KeyPair::generate();
  for (const json& bad : {json("not base64!"), json(base64Encode(std::vector<uint8_t>(31, 1))),
                          json(42), json(nullptr)}) {
    json message = helloMessage(helloOf(key, false));
    message["public_key"] = bad;
    auto parsed = parseHelloMessage(message);
    ASSERT_FALSE(parsed.ok()) << bad.dump();
    EXPECT_EQ(parsed.error().code, ErrorCode::kParse);
    EXPECT_NE(parsed.error().message.find("/public_key"), std::string::npos);
  }
}

TEST(ChannelHelloTest, RefusesUnknownMembers) {
  const Ed25519KeyPair key = Ed25519KeyPair::generate();
  json message = helloMessage(helloOf(key, true));
  message["public_keys"] = json::array();
  EXPECT_FALSE(parseHelloMessage(message).ok());
}

}  // namespace
}  // namespace shadan
