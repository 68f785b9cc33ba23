#include "common/ed25519.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace shadan {
namespace {

std::vector<uint8_t> unhex(std::string_view hex) { return hexDecode(hex).value(); }

std::string_view asText(const std::vector<uint8_t>& bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// RFC 8032 section 7.1, TEST 1-3: secret key (seed), public key, message, signature.
struct Rfc8032Vector {
  const char* name;
  const char* seed;
  const char* public_key;
  const char* message;
  const char* signature;
};

const Rfc8032Vector kVectors[] = {
    {"TEST 1", "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf"
     "9b46bd25bf5f0595bbe24655141438e7a100b"},
    {"TEST 2", "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f"
     "11d8c387b2eaeb4302aeeb00d291612bb0c00"},
    {"TEST 3", "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984"
     "dc6594a7c15e9716ed28dc027beceea1ec40a"},
};

TEST(Ed25519Test, Rfc8032VectorsSignAndVerify) {
  for (const Rfc8032Vector& v : kVectors) {
    SCOPED_TRACE(v.name);
    auto key = Ed25519KeyPair::fromSeed(unhex(v.seed));
    ASSERT_TRUE(key.ok());
    EXPECT_EQ(hexEncode(key->publicKey()), v.public_key);
    const std::vector<uint8_t> message = unhex(v.message);
    const Ed25519Signature signature = key->sign(asText(message));
    EXPECT_EQ(hexEncode(signature), v.signature);
    EXPECT_TRUE(ed25519Verify(key->publicKey(), asText(message), unhex(v.signature)));
    EXPECT_EQ(key->keyId().size(), 64u);
  }
}

TEST(Ed25519Test, TamperedMessageOrSignatureIsRejected) {
  for (const Rfc8032Vector& v : kVectors) {
    SCOPED_TRACE(v.name);
    Ed25519PublicKey public_key{};
    const auto raw = unhex(v.public_key);
    std::copy(raw.begin(), raw.end(), public_key.begin());
    const std::vector<uint8_t> message = unhex(v.message);
    std::vector<uint8_t> signature = unhex(v.signature);

    std::string longer(asText(message));
    longer.push_back('x');
    EXPECT_FALSE(ed25519Verify(public_key, longer, signature));
    if (!message.empty()) {
      std::vector<uint8_t> flipped = message;
      flipped[0] ^= 0x01;
      EXPECT_FALSE(ed25519Verify(public_key, asText(flipped), signature));
    }
    for (size_t byte : {size_t{0}, size_t{31}, size_t{32}, size_t{63}}) {
      std::vector<uint8_t> bad = signature;
      bad[byte] ^= 0x80;
      EXPECT_FALSE(ed25519Verify(public_key, asText(message), bad)) << "byte " << byte;
    }
    signature.pop_back();
    EXPECT_FALSE(ed25519Verify(public_key, asText(message), signature));
  }
}

TEST(Ed25519Test, KeyIdIsSha256OfThePublicKey) {
  auto key = Ed25519KeyPair::fromSeed(unhex(kVectors[0].seed)).value();
  // sha256 of d75a98...511a, computed independently (sha256sum over the 32 raw bytes).
  EXPECT_EQ(key.keyId(), ed25519KeyId(key.publicKey()));
  EXPECT_NE(Ed25519KeyPair::generate().keyId(), Ed25519KeyPair::generate().keyId());
}

TEST(Ed25519Test, Base64AndPae) {
  const std::vector<uint8_t> bytes = {'f', 'o', 'o', 'b', 'a'};
  EXPECT_EQ(base64Encode(bytes), "Zm9vYmE=");
  EXPECT_EQ(base64Decode("Zm9vYmE=").value(), bytes);
  EXPECT_FALSE(base64Decode("Zm9vYmE").ok());    // missing padding
  EXPECT_FALSE(base64Decode("Zm9v YmE=").ok());  // whitespace
  EXPECT_FALSE(base64Decode("Zm9vYmE=x").ok());  // trailing garbage
  EXPECT_FALSE(base64Decode("Zm9_YmE=").ok());   // URL-safe alphabet
  EXPECT_EQ(dssePae("t/x", "hello"), "DSSEv1 3 t/x 5 hello");
  EXPECT_EQ(dssePae("", ""), "DSSEv1 0  0 ");
}

class KeyFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/shadan-ed25519-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  void writeText(const std::string& name, const std::string& text, mode_t mode = 0600) {
    std::ofstream(path(name)) << text;
    ::chmod(path(name).c_str(), mode);
  }
  std::string dir_;
};

TEST_F(KeyFileTest, WritesAndLoadsKeyFiles) {
  const Ed25519KeyPair key = Ed25519KeyPair::generate();
  ASSERT_TRUE(writePrivateKeyFile(path("a.key"), key, "agent").ok());
  ASSERT_TRUE(writePublicKeyFile(path("a.pub"), key.publicKey(), "agent").ok());
  struct stat info {};
  ASSERT_EQ(::stat(path("a.key").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777, 0600u);
  ASSERT_EQ(::stat(path("a.pub").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777, 0644u);

  auto loaded = loadPrivateKeyFile(path("a.key"));
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->keyId(), key.keyId());
  EXPECT_EQ(loaded->publicKey(), key.publicKey());
  EXPECT_EQ(loaded->sign("m"), key.sign("m"));
  auto pub = loadPublicKeyFile(path("a.pub"));
  ASSERT_TRUE(pub.ok()) << pub.error().message;
  EXPECT_EQ(pub->key_id, key.keyId());
  EXPECT_EQ(pub->role, "agent");
  // No temporary files are left behind.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir_), {}), 2);
}

TEST_F(KeyFileTest, RefusesToOverwrite) {
  const Ed25519KeyPair key = Ed25519KeyPair::generate();
  ASSERT_TRUE(writePrivateKeyFile(path("a.key"), key).ok());
  const Ed25519KeyPair other = Ed25519KeyPair::generate();
  Status again = writePrivateKeyFile(path("a.key"), other);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().message.find("already exists"), std::string::npos);
  EXPECT_EQ(loadPrivateKeyFile(path("a.key"))->keyId(), key.keyId());
}

TEST_F(KeyFileTest, RefusesGroupOrWorldReadablePrivateKey) {
  const Ed25519KeyPair key = Ed25519KeyPair::generate();
  ASSERT_TRUE(writePrivateKeyFile(path("a.key"), key).ok());
  for (mode_t mode : {0640, 0604, 0660, 0601}) {
    ::chmod(path("a.key").c_str(), mode);
    auto loaded = loadPrivateKeyFile(path("a.key"));
    ASSERT_FALSE(loaded.ok()) << std::oct << mode;
    EXPECT_NE(loaded.error().message.find("chmod 600"), std::string::npos);
  }
  ::chmod(path("a.key").c_str(), 0400);
  EXPECT_TRUE(loadPrivateKeyFile(path("a.key")).ok());
}

TEST_F(KeyFileTest, RejectsBadKeyFiles) {
  const Ed25519KeyPair key = Ed25519KeyPair::fromSeed(unhex(kVectors[0].seed)).value();
  const std::string seed = base64Encode(key.seed());
  const std::string id = key.keyId();
  struct Case {
    const char* text_prefix;
    std::string text;
    const char* expected;
  };
  const std::vector<Case> cases = {
      {"type", R"({"type":"shadan-ed25519-public","keyid":")" + id + R"(","seed":")" + seed + "\"}",
       "expected \"shadan-ed25519-private\""},
      {"keyid", R"({"type":"shadan-ed25519-private","keyid":"00","seed":")" + seed + "\"}",
       "keyid does not match"},
      {"short", R"({"type":"shadan-ed25519-private","keyid":")" + id + R"(","seed":"AAAA"})",
       "seed is 3 bytes"},
      {"b64", R"({"type":"shadan-ed25519-private","keyid":")" + id + R"(","seed":"!!"})", "base64"},
      {"dup",
       R"({"type":"shadan-ed25519-private","type":"x","keyid":")" + id + R"(","seed":")" + seed +
           "\"}",
       "duplicate key"},
      {"extra",
       R"({"type":"shadan-ed25519-private","keyid":")" + id + R"(","seed":")" + seed +
           R"(","x":"y"})",
       "unknown field"},
      {"missing", R"({"type":"shadan-ed25519-private","keyid":")" + id + "\"}", "missing field"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text_prefix);
    std::filesystem::remove(path("k.key"));
    writeText("k.key", c.text);
    auto loaded = loadPrivateKeyFile(path("k.key"));
    ASSERT_FALSE(loaded.ok());
    EXPECT_NE(loaded.error().message.find(c.expected), std::string::npos) << loaded.error().message;
  }
  writeText("k.pub",
            R"({"type":"shadan-ed25519-public","keyid":")" + id + R"(","public_key":")" +
                base64Encode(std::vector<uint8_t>(31, 1)) + "\"}",
            0644);
  auto pub = loadPublicKeyFile(path("k.pub"));
  ASSERT_FALSE(pub.ok());
  EXPECT_NE(pub.error().message.find("31 bytes"), std::string::npos);
}

TEST(Ed25519SignerTest, SignsThroughTheInterface) {
  Ed25519Signer signer(Ed25519KeyPair::generate());
  const Signer& as_interface = signer;
  auto sig = as_interface.sign("payload");
  ASSERT_TRUE(sig.ok());
  EXPECT_TRUE(ed25519Verify(signer.publicKey(), "payload", *sig));
  EXPECT_FALSE(ed25519Verify(signer.publicKey(), "payloaD", *sig));
}

}  // namespace
}  // namespace shadan
