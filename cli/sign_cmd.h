#pragma once

// `shadanctl sign`: makes an authz DSSE envelope offline (common/orders.h + common/dsse.h),
// signed by one or more operator keys. Used for break-glass files (applied on a gateway with
// `shadan-agent apply-file FILE`, no controller involved) and for tests.
//
//   shadanctl sign --action isolate|restore
//                  (--segment S | --host ADDR[,ADDR...] [--segment S] | --uplink [--link-down]
//                   | --island) [--profile P] --targets gw1,gw2 --reason TEXT
//                  --requested-by op:NAME --key FILE [--key FILE2 ...]
//                  [--segment-gen N] --expires-in DURATION [--ticket T] [--ttl DURATION]
//                  [--drill] [--breakglass] [--policy FILE] --out FILE
//
// Prints the new command_id on stdout. Whether the signatures are enough (roles, thresholds,
// distinct identities) is decided by the verifier on the gateway against its trust file; this
// command only checks what it can know offline: well-formed payload, distinct keys, the
// break-glass limits (isolate only, at most kMaxBreakglassValidity), the rung's own limits (one
// rung; hosts at most /24 or /120, at most kMaxHostsPerOrder; --link-down on uplink isolates
// only), and with --policy that the segment and profile exist and that every host lies in one
// segment, which a host order without --segment takes from it (else a usage error and nothing
// is signed or written).
// --segment-gen is required except with --breakglass, where agents ignore it (0 is written).
//
// Exit codes: 0 written, 1 failed (the output file exists, a write failed), 2 usage.

#include <chrono>
#include <ostream>
#include <string>
#include <vector>

#include "common/clock.h"

namespace shadan {

// Agents refuse break-glass files valid for longer than this by default
// (OrderVerifierOptions::max_breakglass_validity).
inline constexpr std::chrono::seconds kMaxBreakglassValidity{3600};

// `args` is the command line after the program name (args[0] == "sign"). `clock` gives
// issued_at.
int runSignCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                   const Clock& clock);

const char* signUsage();

// A random (version 4) UUID in lower-case canonical form, from the OpenSSL CSPRNG.
std::string randomUuid();

}  // namespace shadan
