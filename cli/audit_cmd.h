#pragma once

// `shadanctl audit verify|show`: offline checks and queries of an audit log (common/audit_log.h).
// Separate from cli/shadanctl.cc so tests drive it with string streams and temporary files.

#include <ostream>
#include <string>
#include <vector>

namespace shadan {

// `args` is the whole command line after the program name (args[0] == "audit").
// verify exit codes: 0 valid, 1 invalid (or unreadable), 2 usage. show: 0, 1 on errors, 2 usage.
int runAuditCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// The usage text of `shadanctl audit`.
const char* auditUsage();

}  // namespace shadan
