#include "cli/sign_cmd.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "cli/controller_cmd.h"
#include "cli/options.h"
#include "cli/shadanctl.h"
#include "common/dsse.h"
#include "common/duration.h"
#include "common/ed25519.h"
#include "common/isolation_scope.h"
#include "common/orders.h"
#include "common/policy.h"
#include "common/strict_json.h"

namespace shadan {
namespace {

// Agents refuse an authz valid for longer than this (OrderVerifierOptions::max_authz_validity).
constexpr std::chrono::hours kMaxAuthzValidity{24};

std::vector<std::string> splitTargets(const std::string& list) {
  std::vector<std::string> targets;
  size_t start = 0;
  for (;;) {
    const size_t comma = list.find(',', start);
    targets.push_back(list.substr(start, comma == std::string::npos ? comma : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return targets;
}

bool isName(const std::string& name) {
  return !name.empty() && name.size() <= 64 &&
         name.find_first_not_of(
             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
             std::string::npos;
}

// "a, b, c": the names of a policy map, for an error that says what would have been valid.
template <typename Map>
std::string namesOf(const Map& map) {
  std::string names;
  for (const auto& [name, unused] : map) names += (names.empty() ? "" : ", ") + name;
  return names;
}

// The gateway's step 7 check of segment and profile names, done before anything is signed.
Status checkNamesAgainstPolicy(const Policy& policy, const std::string& policy_path,
                               const Authz& authz) {
  const bool has_segment =
      authz.scope == IsolationScope::kSegment || authz.scope == IsolationScope::kHost;
  if (has_segment && policy.findSegment(authz.segment) == nullptr) {
    return makeError(ErrorCode::kInvalidArgument,
                     "--segment " + quoteForMessage(authz.segment) + " is not in the policy " +
                         policy_path + " (segments: " + namesOf(policy.segments) + ")");
  }
  if (policy.findProfile(authz.profile) == nullptr) {
    return makeError(ErrorCode::kInvalidArgument,
                     "--profile " + quoteForMessage(authz.profile) + " is not in the policy " +
                         policy_path + " (profiles: " + namesOf(policy.profiles) + ")");
  }
  return okStatus();
}

// --host ADDR[,ADDR...]: each an address or prefix at most /24 (IPv4) or /120 (IPv6), at most
// kMaxHostsPerOrder, none twice (what parseAuthz accepts), in canonical form.
Result<std::vector<IpPrefix>> parseHostList(const std::string& list) {
  std::vector<IpPrefix> hosts;
  for (const std::string& text : splitTargets(list)) {
    auto host = IpPrefix::parse(text);
    if (!host.ok())
      return makeError(ErrorCode::kInvalidArgument, "--host: " + host.error().message);
    const int min_length = minHostPrefixLength(host->family());
    if (host->length() < min_length) {
      return makeError(ErrorCode::kInvalidArgument,
                       "--host " + host->toString() + " is wider than /" +
                           std::to_string(min_length) + " (isolate the segment instead)");
    }
    if (std::find(hosts.begin(), hosts.end(), *host) != hosts.end()) {
      return makeError(ErrorCode::kInvalidArgument,
                       "--host " + host->toString() + " appears twice");
    }
    hosts.push_back(*host);
  }
  if (hosts.size() > kMaxHostsPerOrder) {
    return makeError(ErrorCode::kInvalidArgument, "--host names " + std::to_string(hosts.size()) +
                                                      " addresses; one order takes at most " +
                                                      std::to_string(kMaxHostsPerOrder));
  }
  return hosts;
}

// The rung and what on it: --segment S, --host ADDR[,...] [--segment S], --uplink [--link-down]
// or --island. Without --segment, a host order's segment comes from `policy` (nullptr: no
// --policy); with both, every host must lie in --segment.
Status readScope(const CommandOptions& options, const Policy* policy, Authz& authz) {
  const auto refuse = [](const std::string& message) {
    return makeError(ErrorCode::kInvalidArgument, message);
  };
  int rungs = 0;
  for (const char* rung : {"--host", "--uplink", "--island"}) rungs += options.has(rung) ? 1 : 0;
  if (rungs > 1)
    return refuse("--host, --uplink and --island exclude each other: one rung per order");
  if (options.has("--host")) {
    authz.scope = IsolationScope::kHost;
  } else if (options.has("--uplink")) {
    authz.scope = IsolationScope::kUplink;
  } else if (options.has("--island")) {
    authz.scope = IsolationScope::kIsland;
  }
  if (options.has("--link-down")) {
    if (authz.scope != IsolationScope::kUplink) return refuse("--link-down is for --uplink only");
    if (authz.action != OrderAction::kIsolate) {
      return refuse("--link-down is for isolate only (a restore sets the links up again)");
    }
    authz.link_down = true;
  }
  const std::optional<std::string> segment = options.value("--segment");
  if (segment && !isName(*segment)) return refuse("invalid --segment " + quoteForMessage(*segment));
  switch (authz.scope) {
    case IsolationScope::kSegment:
      if (!segment) return refuse("'sign' needs --segment (or --host, --uplink or --island)");
      authz.segment = *segment;
      return okStatus();
    case IsolationScope::kUplink:
    case IsolationScope::kIsland:
      if (segment) {
        return refuse(std::string("--") + isolationScopeName(authz.scope) +
                      " takes no --segment: it is about the whole gateway");
      }
      return okStatus();
    case IsolationScope::kHost:
      break;
  }
  SHADAN_ASSIGN_OR_RETURN(authz.hosts, parseHostList(*options.value("--host")));
  if (policy == nullptr) {
    if (!segment) return refuse("--host needs --segment, or --policy to find the segment in");
    authz.segment = *segment;
    return okStatus();
  }
  // The gateway's own check (agents/orders/order_target.h), done before anything is signed.
  for (const IpPrefix& host : authz.hosts) {
    Result<std::string> found = segmentOfHost(*policy, host);
    if (!found.ok()) return refuse("--host " + found.error().message);
    if (authz.segment.empty()) authz.segment = segment.value_or(*found);
    if (*found != authz.segment) {
      return refuse("--host " + host.toString() + " is in segment " + quoteForMessage(*found) +
                    ", not in " + quoteForMessage(authz.segment) +
                    ": one order quarantines hosts of one segment");
    }
  }
  return okStatus();
}

// "isolate lgwan:full", "isolate 3 host(s) of lgwan:full", "isolate @uplink:full (link down)".
std::string describe(const Authz& authz) {
  std::string target;
  if (authz.scope == IsolationScope::kHost) {
    target = std::to_string(authz.hosts.size()) + " host(s) of " +
             isolationLabel(IsolationScope::kSegment, authz.segment, std::nullopt, authz.profile);
  } else {
    target = isolationLabel(authz.scope, authz.segment, std::nullopt, authz.profile);
  }
  return std::string(orderActionName(authz.action)) + " " + target +
         (authz.link_down ? " (link down)" : "");
}

struct FdCloser {
  void operator()(const int* fd) const {
    ::close(*fd);
    delete fd;
  }
};

// Writes `content` to a new file (O_EXCL: never replaces an existing one) and fsyncs it.
Status writeNewFile(const std::string& path, const std::string& content) {
  const int raw = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (raw < 0) {
    if (errno == EEXIST) {
      return makeError(ErrorCode::kInvalidArgument,
                       path + " already exists; refusing to overwrite it");
    }
    return makeError(ErrorCode::kIo, "cannot create " + path + ": " + std::strerror(errno));
  }
  std::unique_ptr<int, FdCloser> fd(new int(raw));
  size_t written = 0;
  while (written < content.size()) {
    const ssize_t n = ::write(*fd, content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = std::strerror(errno);
      ::unlink(path.c_str());
      return makeError(ErrorCode::kIo, "cannot write " + path + ": " + why);
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(*fd) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(path.c_str());
    return makeError(ErrorCode::kIo, "cannot sync " + path + ": " + why);
  }
  return okStatus();
}

}  // namespace

const char* signUsage() {
  return R"(usage: shadanctl sign --action isolate|restore
                      (--segment S | --host ADDR[,ADDR...] [--segment S] | --uplink [--link-down]
                       | --island) [--profile P]
                      --targets GW1,GW2 --reason TEXT --requested-by op:NAME
                      --key FILE [--key FILE2 ...] [--segment-gen N] --expires-in DURATION
                      [--ticket T] [--ttl DURATION] [--drill] [--breakglass]
                      [--policy FILE] --out FILE

  Makes a signed authz envelope (DSSE) offline, signed by every --key (operator private key
  files), and writes it to FILE (never overwriting). Prints its command_id.
  What the order cuts (one rung of the ladder per order):
  --segment S: the segment S (what the profile says).
  --host ADDR[,ADDR...]: quarantine these addresses or prefixes (at most /24 IPv4, /120 IPv6,
  at most 256) of one segment. The segment is --segment, or found in --policy; with both,
  every host must lie in --segment. Without --policy, --segment is required.
  --uplink: everything crossing the gateways' interfaces of the default segment.
  --link-down: with --uplink isolate only: also set the interfaces the policy lists in the
  gateway's "link_down" administratively down.
  --island: every segment cut from every other and from the default segment.
  Management is never cut. Agents need isolate_protected approval for --uplink and --island
  unless their trust file says otherwise.
  --requested-by: the identity of one of the signers as named in the trust file (op:NAME).
  --segment-gen: the generation the order carries (of the segment; of the segment's hosts for
  --host; of the uplink or island). Required without --breakglass: agents apply an order from
  the controller only if its generation is above the last one they applied for that rung.
  With --breakglass it may be omitted (0 is written): agents neither compare nor record it for
  break-glass files. --expires-in: validity from now (e.g. 15m; at most 24h).
  --breakglass: a file for `shadan-agent apply-file FILE` on a gateway without the controller:
  isolate only, valid for at most 1h, signed by the break-glass threshold (usually 2 people).
  --ttl: an isolate that lifts itself after DURATION.
  --policy FILE: check --segment and --profile against this policy (the gateways' policy
  file) first, and that every --host lies in one segment (not in management, the default
  segment or no segment); a name it does not have is refused, naming the valid ones, and
  nothing is signed or written. Without --policy the gateway is the first to check them.
  Whether the signers suffice is decided by the agent against its trust file.

  Exit codes: 0 written, 1 failed (file exists, write error), 2 usage (also an unknown
  segment or profile, a host outside its segment, or an unreadable or invalid --policy file).
)";
}

std::string randomUuid() {
  uint8_t bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    // No randomness means no unique command ids: a broken environment, not bad input.
    std::fprintf(stderr, "shadan: broken invariant: RAND_bytes failed\n");
    std::abort();
  }
  bytes[6] = static_cast<uint8_t>((bytes[6] & 0x0f) | 0x40);  // version 4
  bytes[8] = static_cast<uint8_t>((bytes[8] & 0x3f) | 0x80);  // RFC 4122 variant
  const std::string hex = hexEncode(bytes);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20);
}

int runSignCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                   const Clock& clock) {
  auto usage = [&](const std::string& message) { return printUsageError(err, "sign", message); };
  OptionSpec spec;
  spec.command = "sign";
  spec.with_value = {"--action",       "--segment", "--profile",     "--targets",    "--reason",
                     "--requested-by", "--key",     "--segment-gen", "--expires-in", "--ticket",
                     "--ttl",          "--out",     "--policy",      "--host"};
  spec.flags = {"--breakglass", "--drill", "--uplink", "--island", "--link-down"};
  spec.repeatable = {"--key"};
  spec.refused = {{"--token", kNoTokenOnArgv}};
  spec.quote = QuoteStyle::kJson;
  auto options = parseCommandOptions(args, 1, spec);
  if (!options.ok()) return usage(options.error().message);
  if (options->help) {
    out << signUsage();
    return kExitOk;
  }
  for (const char* required :
       {"--action", "--targets", "--reason", "--requested-by", "--key", "--expires-in", "--out"}) {
    if (!options->has(required)) return usage("'sign' needs " + std::string(required));
  }
  const bool breakglass = options->has("--breakglass");
  // Agents ignore segment_gen in a break-glass file (order_verifier.h verifyBreakglass).
  if (!breakglass && !options->has("--segment-gen")) {
    return usage("'sign' needs --segment-gen (it may be omitted only with --breakglass)");
  }

  Authz authz;
  authz.command_id = randomUuid();
  const std::string action = *options->value("--action");
  if (action == "isolate") {
    authz.action = OrderAction::kIsolate;
  } else if (action == "restore") {
    authz.action = OrderAction::kRestore;
  } else {
    return usage("--action must be isolate or restore, not " + quoteForMessage(action));
  }
  // The policy is read before the rung: a host order may take its segment from it.
  std::optional<LoadedPolicy> policy;
  if (auto policy_path = options->value("--policy")) {
    auto loaded = loadPolicyFile(*policy_path);
    if (!loaded.ok()) return usage(loaded.error().message);
    policy = std::move(*loaded);
  }
  if (Status scope = readScope(*options, policy ? &policy->policy : nullptr, authz); !scope.ok()) {
    return usage(scope.error().message);
  }
  authz.profile = options->value("--profile").value_or("full");
  if (!isName(authz.profile)) return usage("invalid --profile " + quoteForMessage(authz.profile));
  for (const std::string& target : splitTargets(*options->value("--targets"))) {
    if (!isName(target)) return usage("invalid gateway in --targets: " + quoteForMessage(target));
    if (std::find(authz.targets.begin(), authz.targets.end(), target) != authz.targets.end()) {
      return usage("gateway " + target + " appears twice in --targets");
    }
    authz.targets.push_back(target);
  }
  authz.reason = *options->value("--reason");
  if (Status valid = validateReason(authz.reason); !valid.ok()) {
    return usage(valid.error().message);
  }
  authz.requested_by = *options->value("--requested-by");
  if (authz.requested_by.empty() || authz.requested_by.size() > 128) {
    return usage("--requested-by must be an identity like op:NAME");
  }
  const std::string gen_text = options->value("--segment-gen").value_or("0");
  if (gen_text.empty() || gen_text.size() > 18 ||
      gen_text.find_first_not_of("0123456789") != std::string::npos) {
    return usage("--segment-gen must be a whole number, not " + quoteForMessage(gen_text));
  }
  authz.segment_gen = std::stoll(gen_text);
  auto validity = parseDuration(*options->value("--expires-in"));
  if (!validity.ok()) return usage("--expires-in: " + validity.error().message);
  if (breakglass) {
    if (authz.action != OrderAction::kIsolate) {
      return usage("--breakglass files can only isolate (a restore needs the controller)");
    }
    if (*validity > kMaxBreakglassValidity) {
      return usage("--expires-in for --breakglass is at most " +
                   formatDuration(kMaxBreakglassValidity) + " (agents refuse longer files)");
    }
  } else if (*validity > kMaxAuthzValidity) {
    return usage("--expires-in is at most " + formatDuration(kMaxAuthzValidity));
  }
  if (auto ticket = options->value("--ticket")) {
    if (ticket->empty() || ticket->size() > 128) return usage("--ticket must be 1-128 characters");
    authz.ticket = *ticket;
  }
  if (auto ttl = options->value("--ttl")) {
    if (authz.action != OrderAction::kIsolate) return usage("--ttl is for isolate only");
    auto duration = parseDuration(*ttl);
    if (!duration.ok()) return usage("--ttl: " + duration.error().message);
    if (duration->count() % 1000 != 0) return usage("--ttl must be whole seconds");
    authz.ttl_s = duration->count() / 1000;
  }
  authz.drill = options->has("--drill");
  authz.issued_at_ms = toUnixMillis(clock.now());
  authz.expires_at_ms = authz.issued_at_ms + validity->count();
  if (policy) {
    if (Status known = checkNamesAgainstPolicy(policy->policy, *options->value("--policy"), authz);
        !known.ok()) {
      return usage(known.error().message);
    }
  }

  // Keys: each file once, each key once (a second signature by one key counts for nothing and
  // would only hide a mistake such as passing the same file twice).
  std::vector<Ed25519Signer> signers;
  for (const std::string& path : options->all("--key")) {
    auto key = loadPrivateKeyFile(path);
    if (!key.ok()) return usage("--key: " + key.error().message);
    for (const Ed25519Signer& existing : signers) {
      if (existing.keyId() == key->keyId()) {
        return usage("--key " + path + " is the same key (" + key->keyId() +
                     ") as an earlier --key");
      }
    }
    signers.emplace_back(std::move(*key));
  }
  if (breakglass && signers.size() < 2) {
    err << "shadanctl: warning: one signature; the break-glass threshold is usually 2 "
           "distinct people\n";
  }

  const std::string payload = serializeAuthz(authz);
  // What we sign must be what agents will parse: check the round trip before signing.
  auto reparsed = parseAuthz(payload);
  if (!reparsed.ok()) return usage(reparsed.error().message);
  std::vector<const Signer*> signer_pointers;
  for (const Ed25519Signer& signer : signers) signer_pointers.push_back(&signer);
  auto envelope = signDsse(kAuthzPayloadType, payload, signer_pointers);
  if (!envelope.ok()) return usage(envelope.error().message);

  const std::string out_path = *options->value("--out");
  if (Status written = writeNewFile(out_path, serializeDsseEnvelope(*envelope) + "\n");
      !written.ok()) {
    err << "shadanctl: " << written.error().message << "\n";
    return kExitFailure;
  }
  out << authz.command_id << "\n";
  err << "wrote " << out_path << ": " << describe(authz) << " on " << authz.targets.size()
      << " gateway(s), " << signers.size() << " signature(s), expires "
      << formatRfc3339(authz.expires_at_ms)
      << (breakglass ? "; apply on a gateway with: shadan-agent apply-file " + out_path : "")
      << "\n";
  return kExitOk;
}

}  // namespace shadan
