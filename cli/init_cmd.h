#pragma once

// shadanctl init controller | init agent: a working starting configuration in one command
// (docs/install.md). Each is the steps an administrator would type (ca init, ca issue, keygen,
// trust init; copies of the policy, trust and TLS files), run in order with their output
// captured: it refuses when any file it would write exists, and removes what it wrote when a
// step fails, so a half-written /etc/shadan is never left. Secrets are 0600 (the controller's
// key, signing key and config owned by user shadan when it exists: the controller runs as
// it); directories holding secrets 0700. Prints what it wrote and the next steps.

#include <iosfwd>
#include <string>
#include <vector>

namespace shadan {

const char* initUsage();

// args[0] == "init". Exit 0 done, 1 failed (nothing left behind), 2 usage.
int runInitCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace shadan
