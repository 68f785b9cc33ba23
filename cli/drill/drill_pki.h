#pragma once

// The credentials of one drill, made fresh in a private directory (mode 0700) for that drill
// only: a CA, the controller's TLS certificate for its lab address, the controller's signing
// key, two drill operators' keys, one agent key and client certificate per gateway, the trust
// file, API tokens (two operators and every detector the scenario names) and the controller's
// config. Nothing here is ever valid outside the drill's lab: the CA and every key are new, the
// trust file names only them, and the directory goes away with the drill.
//
// Layout under `dir`:
//   ca/ca.crt, ca/ca.key                 the drill CA
//   controller/tls.crt, tls.key          server certificate (IP SAN: the controller's addresses)
//   controller/signing.key, signing.pub  the controller's Ed25519 key
//   controller/state/                    the controller's state dir (0700)
//   controller/controller.json           its config
//   operators/NAME.key, NAME.pub         the drill operators' keys
//   GATEWAY/state/agent.key, agent.pub   each agent's key, in its state dir (0700)
//   GATEWAY/tls/                         ca.crt, agent.crt, agent.key (`--tls-dir`)
//   trust.json                           writeDrillTrust()

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/ed25519.h"
#include "common/result.h"

namespace shadan::drill {

// The two drill operators: the requester of every order first.
inline constexpr const char* kDrillOperators[] = {"drill-op1", "drill-op2"};
// The detector token made when no alert step names one.
inline constexpr const char* kDrillDefaultDetector = "detector";

struct DrillPkiRequest {
  std::string dir;  // must not exist yet, or be empty; made 0700
  std::string policy_file;
  std::vector<std::string> gateways;              // policy gateway ids
  std::vector<std::string> controller_addresses;  // the first is where it listens
  uint16_t api_port = 0;
  uint16_t hub_port = 0;
  std::vector<std::string> detectors;  // token names; kDrillDefaultDetector when empty
  nlohmann::json response;             // the scenario's `response` section, or null
};

struct DrillPkiGateway {
  std::string state_dir;
  std::string tls_dir;
  std::string agent_pub;
};

struct DrillPki {
  std::string dir;
  std::string ca_cert;
  std::string controller_config;
  std::string controller_state_dir;
  std::string controller_pub;
  std::string controller_pin;  // SPKI pin of the controller's TLS certificate (agents pin it)
  std::string trust_file;
  std::string api_host;  // where the API listens (the first controller address)
  uint16_t api_port = 0;
  uint16_t hub_port = 0;
  std::map<std::string, DrillPkiGateway> gateways;
  std::map<std::string, std::string> operator_keys;  // operator name -> private key file
  std::map<std::string, std::string> tokens;         // token name -> token (secret)
};

// One key in the drill's trust file.
struct DrillTrustKey {
  std::string identity;            // "controller", "op:drill-op1", "agent:core-gw"
  std::vector<std::string> roles;  // trust role names
  Ed25519PublicKey public_key{};
};

// Writes the drill's trust file: every drill key with its roles, the default thresholds (one
// operator isolates, two restore), valid for one day. The one place that decides what a drill
// trust file says (a lab-only marker and role belong here). Checked with parseTrust before
// it is written; refuses to overwrite.
Status writeDrillTrust(const std::string& path, const std::vector<DrillTrustKey>& keys);

// Makes everything above. Errors name the file that could not be made.
Result<DrillPki> makeDrillPki(const DrillPkiRequest& request);

// "10.99.0.10:8443", "[fd00:99::10]:8443".
std::string hostPort(const std::string& address, uint16_t port);

}  // namespace shadan::drill
