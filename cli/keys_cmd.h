#pragma once

// `shadanctl keygen --out PREFIX [--role NAME]`: a new Ed25519 key pair in PREFIX.key (0600)
// and PREFIX.pub; prints the keyid.

#include <ostream>
#include <string>
#include <vector>

namespace shadan {

// `args` is the whole command line after the program name (args[0] == "keygen").
// Exit codes: 0 written, 1 failed (e.g. a file exists), 2 usage.
int runKeygenCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

const char* keygenUsage();

}  // namespace shadan
