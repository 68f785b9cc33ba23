#pragma once

// One named spdlog logger per component ("agent", "dataplane", "lab", ...), key=value messages.
// Never log keys, tokens or whole request bodies.

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace shadan {

// Returns the logger `name`, creating it (stderr, shared level) on first use.
std::shared_ptr<spdlog::logger> logger(const std::string& name);

// Sets the level of every Shadan logger: "debug", "info", "warn", "error", "off".
void setLogLevel(const std::string& level);

}  // namespace shadan
