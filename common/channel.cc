#include "common/channel.h"

#include <algorithm>

#include "common/strict_json.h"

namespace shadan {

using Json = nlohmann::json;

namespace {

bool isLowerHex(const std::string& text) {
  return text.find_first_not_of("0123456789abcdef") == std::string::npos;
}

}  // namespace

Status checkChannelMembers(const Json& message, std::initializer_list<std::string_view> allowed) {
  const auto type = message.is_object() ? message.find("type") : message.end();
  const std::string kind =
      type != message.end() && type->is_string() ? type->get<std::string>() : "channel";
  const std::string source = kind + " message";
  return StrictObjectReader(message, source).checkMembers({}, allowed);
}

Json helloMessage(const HelloMessage& hello) {
  Json message = {{"type", kHelloType},
                  {"agent_id", hello.agent_id},
                  {"agent_key", hello.agent_key},
                  {"last_seq", hello.last_seq},
                  {"version", hello.version}};
  if (hello.public_key) message["public_key"] = base64Encode(*hello.public_key);
  return message;
}

Result<HelloMessage> parseHelloMessage(const Json& message) {
  auto bad = [](const std::string& what) { return makeError(ErrorCode::kParse, "hello: " + what); };
  if (!message.is_object()) return bad("not a JSON object");
  if (!message.contains("type") || message["type"] != kHelloType) {
    return bad("type is not \"hello\"");
  }
  SHADAN_RETURN_IF_ERROR(checkChannelMembers(
      message, {"type", "agent_id", "agent_key", "last_seq", "version", "public_key"}));
  HelloMessage hello;
  const auto id = message.find("agent_id");
  if (id == message.end() || !id->is_string() || id->get<std::string>().empty() ||
      id->get<std::string>().size() > 64) {
    return bad("/agent_id must be a string of 1-64 characters");
  }
  hello.agent_id = id->get<std::string>();
  const auto key = message.find("agent_key");
  if (key == message.end() || !key->is_string() || key->get<std::string>().size() != 64 ||
      !isLowerHex(key->get<std::string>())) {
    return bad("/agent_key must be a keyid (64 lower-case hex characters)");
  }
  hello.agent_key = key->get<std::string>();
  const auto seq = message.find("last_seq");
  if (seq == message.end() || !seq->is_number_integer() ||
      (seq->is_number_unsigned() ? false : seq->get<int64_t>() < 0)) {
    return bad("/last_seq must be a non-negative integer");
  }
  hello.last_seq = seq->get<uint64_t>();
  const auto version = message.find("version");
  if (version == message.end() || !version->is_string() ||
      version->get<std::string>().size() > 32) {
    return bad("/version must be a string of at most 32 characters");
  }
  hello.version = version->get<std::string>();
  if (const auto key_text = message.find("public_key"); key_text != message.end()) {
    auto raw = key_text->is_string()
                   ? base64Decode(key_text->get<std::string>())
                   : Result<std::vector<uint8_t>>(makeError(ErrorCode::kParse, ""));
    if (!raw.ok() || raw->size() != Ed25519PublicKey{}.size()) {
      return bad("/public_key must be a base64 Ed25519 public key (32 bytes)");
    }
    Ed25519PublicKey public_key{};
    std::copy(raw->begin(), raw->end(), public_key.begin());
    if (ed25519KeyId(public_key) != hello.agent_key) {
      return bad("/public_key does not match /agent_key");
    }
    hello.public_key = public_key;
  }
  return hello;
}

Json dispatchMessage(Json envelope) {
  return {{"type", kDispatchType}, {"envelope", std::move(envelope)}};
}

Json ackMessage(Json envelope) { return {{"type", kAckType}, {"envelope", std::move(envelope)}}; }

Result<const Json*> channelEnvelope(const Json& message) {
  SHADAN_RETURN_IF_ERROR(checkChannelMembers(message, {"type", "envelope"}));
  const auto envelope = message.find("envelope");
  if (envelope == message.end() || !envelope->is_object()) {
    const std::string type = message.value("type", std::string("channel"));
    return makeError(ErrorCode::kParse, type + " without an \"envelope\" object");
  }
  return &*envelope;
}

const std::string& pingText() {
  static const std::string text = Json{{"type", kPingType}}.dump();
  return text;
}

const std::string& pongText() {
  static const std::string text = Json{{"type", kPongType}}.dump();
  return text;
}

}  // namespace shadan
