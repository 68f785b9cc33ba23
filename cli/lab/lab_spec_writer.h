#pragma once

// LabSpec -> the JSON text parseLabSpec (cli/lab/lab.h) reads: a spec computed in code (a lab
// built from a policy) can be saved, shown and loaded again with `--spec`.

#include <string>

#include "cli/lab/lab.h"

namespace shadan {

// Pretty-printed JSON; parseLabSpec(formatLabSpec(spec), ...) == spec for every valid spec whose
// endpoints all name their interface (parseLabSpec fills missing names in) and whose nftables
// text is empty or ends with a newline.
std::string formatLabSpec(const LabSpec& spec);

}  // namespace shadan
