#pragma once

// The agent channel's vocabulary (PROTOCOL.md "Channel", docs/protocol.md): one JSON object per
// WebSocket text frame on wss://HOST:PORT/v1/agent, mutual TLS 1.3. Both ends spell the path, the
// limits and every message type from here, and build and check the messages with these
// functions, so the two ends cannot drift apart.
//
//   agent -> controller {"type":"hello","agent_id","agent_key","last_seq","version"[,"public_key"]}
//   first
//                         {"type":"ack","envelope":{DSSE ack}}
//                         "audit" / "audit_checkpoint" (common/audit_ship.h)
//   controller -> agent   {"type":"dispatch","envelope":{DSSE dispatch}}
//                         "audit_resume" / "audit_ack" (common/audit_ship.h)
//   both ways             {"type":"ping"} -> {"type":"pong"}
//
// The session mechanics (write queue, heartbeat, read loop, close) are common/channel_session.h.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/ed25519.h"
#include "common/result.h"

namespace shadan {

inline constexpr const char* kAgentChannelPath = "/v1/agent";
// Larger frames close the session; a dispatch is far smaller (its authz is capped at 64 KiB).
inline constexpr size_t kAgentChannelMaxMessageBytes = 256 * 1024;
inline constexpr std::chrono::milliseconds kChannelHelloTimeout{10'000};
inline constexpr std::chrono::milliseconds kChannelHeartbeatInterval{10'000};
// A session that received nothing for this many heartbeat intervals is closed.
inline constexpr int kChannelHeartbeatMisses = 3;

inline constexpr const char* kHelloType = "hello";
inline constexpr const char* kDispatchType = "dispatch";
inline constexpr const char* kAckType = "ack";
inline constexpr const char* kPingType = "ping";
inline constexpr const char* kPongType = "pong";

// The hello an agent sends first.
struct HelloMessage {
  std::string agent_id;
  std::string agent_key;  // keyid of the agent's Ed25519 key (hex)
  uint64_t last_seq = 0;  // the last dispatch seq the agent accepted
  std::string version;
  // The agent's Ed25519 public key (base64 on the wire, optional): lets the controller enroll
  // an agent whose key is not in the trust file (a fleet of thousands: a trust file lists the
  // people and the controller, not every gateway). Its keyid must equal agent_key; the key is
  // still only trusted after an operator approves it.
  std::optional<Ed25519PublicKey> public_key = std::nullopt;
};

nlohmann::json helloMessage(const HelloMessage& hello);
// Checks the shape of a hello (kParse naming the offending member).
Result<HelloMessage> parseHelloMessage(const nlohmann::json& message);

// {"type":"dispatch","envelope":...} and {"type":"ack","envelope":...}.
nlohmann::json dispatchMessage(nlohmann::json envelope);
nlohmann::json ackMessage(nlohmann::json envelope);
// The envelope object of a dispatch or ack message, after checking that the message has exactly
// the members "type" and "envelope" and that the envelope is an object. The pointer refers into
// `message`.
Result<const nlohmann::json*> channelEnvelope(const nlohmann::json& message);

// kParse naming the first member of `message` that is not in `allowed` (the strict reader's
// wording: `ping message: /: unknown member "x"`).
Status checkChannelMembers(const nlohmann::json& message,
                           std::initializer_list<std::string_view> allowed);

// The serialised heartbeat frames.
const std::string& pingText();
const std::string& pongText();

}  // namespace shadan
