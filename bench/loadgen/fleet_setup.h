#pragma once

// Everything a load-generator run needs before anything connects, made fresh in a private
// directory that goes away with the run: a CA, the controller's TLS certificate (127.0.0.1) and
// signing key, two operators' keys and API tokens, the trust file (controller and operators
// only: the agents send their public keys in their hello), a policy whose every gateway borders
// one segment, the controller's config, and per simulated agent an Ed25519 key (in memory) and
// a client certificate. Nothing here is valid outside the run: every key is new.
//
// Layout under `dir`:
//   ca/ca.crt, ca/ca.key            the run's CA
//   controller/tls.crt, tls.key     server certificate for 127.0.0.1 (every controller's)
//   controller/signing.key          the controller key (shared by every controller: docs/ha.md)
//   controller/state/               the controller's state dir (0700); with several
//                                   controllers controller-<k>/state/ for the k-th (1-based)
//   controller/controller.json      its config; controller/log its output (controller-<k>/...)
//   etcd/                           with an etcd store: the member's data; etcd/log its output
//                                   (a cluster: etcd-<k>/ per member)
//   policy.json, trust.json
//   agents/<id>.crt, <id>.key       one client certificate per simulated agent

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bench/loadgen/sim_agent.h"
#include "common/ed25519.h"
#include "common/policy.h"
#include "common/result.h"
#include "common/trust.h"

namespace shadan::loadgen {

// The segment every simulated gateway borders: what `fanout` isolates.
inline constexpr const char* kFleetSegment = "site";
// The most agents one run makes (gateway ids are lg-00001 ... lg-50000).
inline constexpr size_t kMaxAgents = 50'000;

struct FleetRequest {
  std::string dir;  // must not exist; made 0700
  size_t agents = 100;
  unsigned threads = 2;  // for making keys and certificates
  std::string controller_log_level = "info";
  bool etcd = false;  // the controller's store on one etcd member of the run's (else SQLite)
  // Controllers sharing one store (more than one: on a three-member etcd cluster, docs/ha.md).
  size_t controllers = 1;
};

// One shadan-controller of the run.
struct FleetController {
  std::string name;  // store.controller_name: lg-controller, or lg-controller-<k>
  std::string config;
  std::string state_dir;
  std::string log;
  uint16_t api_port = 0;
  uint16_t hub_port = 0;
};

// One etcd member of the run (plain http on loopback).
struct FleetEtcdMember {
  std::string name;
  uint16_t client_port = 0;
  uint16_t peer_port = 0;
  std::string dir;  // data in dir/data, output in dir/log
};

inline constexpr size_t kMaxControllers = 7;  // an agent takes at most 7 controller addresses

struct Operator {
  std::string name;   // "lg-alice": identity op:<name>, API token name <name>
  std::string token;  // secret
  std::shared_ptr<const Ed25519Signer> key;
};

struct Fleet {
  std::string dir;
  std::vector<FleetController> controllers;  // at least one; all share the store
  // With an etcd store: its members (one, or three for several controllers), and the
  // --max-txn-ops / --max-request-bytes sized for the fleet.
  bool etcd = false;
  std::vector<FleetEtcdMember> etcd_members;
  size_t etcd_max_txn_ops = 0;
  size_t etcd_max_request_bytes = 0;
  // Where agents dial, with the CA and the pin: the first controller, the others in `more`
  // (agentEndpoint() turns the list for each agent).
  SimEndpoint endpoint;
  std::vector<Operator> operators;    // two: one isolates, both sign a restore
  std::vector<SimAgentSetup> agents;  // index i is lg-<i+1>
  Policy agent_policy;                // the fleet's policy with one gateway: agentPolicy()
  Trust trust;
  double credentials_ms = 0;  // making the agents' keys and certificates (all threads)
};

// Makes everything above. Ports are free loopback ports chosen now.
Result<Fleet> makeFleet(const FleetRequest& request);

// The policy agent `id` loads: the fleet's segments, profiles and management, and its own
// gateway. (Every agent holding all N gateways would make the simulation O(N^2) in memory;
// an agent's verifier and planner read only its own entry.)
Policy agentPolicy(const Fleet& fleet, const std::string& id);

// Agent `index`'s controllers: all of them, starting at controller index % controllers, so the
// fleet is spread evenly and each agent moves on to the next when its own goes away.
SimEndpoint agentEndpoint(const Fleet& fleet, size_t index);

// Etcd member `member`'s command line (etcd_bin first) for a fleet with an etcd store.
std::vector<std::string> etcdArgv(const Fleet& fleet, size_t member, const std::string& etcd_bin);

// Enrolls every agent (approved, with its public key) in the controller's store (the one its
// config names: SQLite, or the run's etcd, which must be up), in one transaction, before the
// controller starts: what an operator's approval of each would do,
// without one API call per agent (not what a run measures). No audit entry is written for it.
Status enrollFleet(const Fleet& fleet);

}  // namespace shadan::loadgen
