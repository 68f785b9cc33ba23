#pragma once

// `shadanctl trust init|add|remove|show`: make and edit the trust file (common/trust.h) without
// a text editor — the file every agent and the controller load to know whose signatures count.
//
//   trust init --out FILE --pub KEY.pub --identity ID --role ROLE [--version N] [--expires-in D]
//   trust add FILE --pub KEY.pub --identity ID --role ROLE[,ROLE...]
//   trust remove FILE [--identity ID] [--keyid HEX] [--json]
//   trust show FILE [--json]
//
// Every key written follows the identity rule (checkIdentityRoles in common/trust.h). Every
// change is checked by the same strict parser the agents use (parseTrust) before it is written,
// raises the version by one (agents refuse to go back to a lower version, so every edition of
// the file must be newer than the last), and replaces the file atomically: a refused change
// leaves the file byte for byte as it was. remove never takes away the last controller key.

#include <ostream>
#include <string>
#include <vector>

#include "common/clock.h"

namespace shadan {

// `args` is the whole command line after the program name (args[0] == "trust").
// Exit codes: 0 done, 1 failed (file exists, identity rule broken, no such key, last controller
// key, invalid result, write error), 2 usage.
int runTrustCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                    const Clock& clock);

const char* trustUsage();

}  // namespace shadan
