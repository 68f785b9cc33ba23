#pragma once

// What a controller's configuration names, loaded and cross-checked without starting anything:
// no store opened, no port bound, no audit entry written. `run` loads these first (a file that
// does not load stops startup with one message naming it); `check-config` does only this, so
// an administrator (or a package's postinst, or a config-management run) can validate a
// configuration while the controller keeps running on the old one.
//
// Checked: the config file itself (strict JSON, limits); the policy; the response rules and
// detector tokens against it; the trust file (and that it has not expired); the signing key
// (readable, and a controller key in the trust file, or every dispatch would be refused); the
// TLS CA, certificate, key and revocation list (one server context, as the API and the hub
// build theirs); the state directory (a writable directory, or absent with a parent to make it
// in: the unit's StateDirectory= or the first start makes it).

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/clock.h"
#include "common/ed25519.h"
#include "common/policy.h"
#include "common/result.h"
#include "common/tls.h"
#include "common/trust.h"
#include "controller/config.h"

namespace shadan::controller {

struct ConfiguredFiles {
  Policy policy;
  Trust trust;
  std::unique_ptr<Ed25519Signer> signer;
  TlsContextPtr api_tls;
};

// The files `config` (read from `config_path`) names, loaded and cross-checked.
Result<ConfiguredFiles> loadConfiguredFiles(const ControllerConfig& config,
                                            const std::string& config_path, const Clock& clock);

// `shadan-controller check-config`: the whole check of the configuration at `config_path`; on
// success what was checked, as JSON (policy, trust, signing key, listeners, tokens by role,
// state directory).
Result<nlohmann::json> checkControllerConfig(const std::string& config_path, const Clock& clock);

}  // namespace shadan::controller
