#pragma once

// shadan-loadgen's command line: the scenario, its options, and the report as a human summary
// or one JSON object (--json). Exit status: 0 when the report says every order reached every
// agent exactly once, 1 when it does not, 2 for a usage error, 3 when the run could not be set
// up or failed.

#include <ostream>
#include <string>
#include <vector>

namespace shadan::loadgen {

int runLoadgen(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace shadan::loadgen
