#pragma once

// A client of etcd's v3 API through its JSON gateway (etcd 3.4: POST /v3/kv/range,
// /v3/kv/txn, /v3/lease/grant|keepalive|revoke), for the controller's store on etcd
// (controller/etcd_store.h) and its leader election (controller/leadership.h).
// Beast over one HTTP/1.1 keep-alive connection: no gRPC stack for a handful of calls.
//
// Contracts:
//   - Blocking: a call returns when a member answered or `timeout` passed. It uses one
//     connection to one member of `endpoints`; a member that cannot be reached, or whose
//     connection fails, is dropped and the next one is tried.
//   - A read (range) is tried on every member once before it fails. A txn is tried on the next
//     member only when it was not sent: one that was sent and got no answer may have been
//     applied, so its outcome is kUnknown and the caller finds out (EtcdControllerStore fences
//     every txn with a key of its own for that). One exception: a call on a kept-alive
//     connection that fails (the member closed it while idle, or restarted: etcd's gateway has
//     no idle timeout, so mostly a killed member, which never read it) is sent once more on a
//     new connection. If the member did apply it and died before answering, the repeat's
//     compares fail (kNotApplied for a txn that was applied: the fence key tells), or for a txn
//     without compares the same bytes are written again.
//   - https:// members are dialled over TLS 1.3 only, their certificate verified against the
//     configured CA file alone and required to name the IP address dialled, with the
//     configured client certificate presented (etcd's --client-cert-auth). Plain http:// only
//     to loopback addresses (127.0.0.0/8, ::1): an etcd on the controller's own host.
//   - Keys and values are bytes (base64 on the wire); revisions are etcd's int64 revisions.
//   - Errors: kUnavailable when no member answered, naming the last one and why; kState when a
//     member answered with an error ("etcd 127.0.0.1:2379: <its message>"); kParse when the
//     answer was not what the API documents. Keys and values never appear in messages.
//   - Not thread-safe.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace shadan::controller {

struct EtcdEndpoint {
  std::string host;  // an IP address, without brackets (a loopback one unless tls)
  uint16_t port = 2379;
  bool tls = false;  // https://

  std::string text() const;  // "127.0.0.1:2379", "[::1]:2379"
};

// "https://10.0.0.5:2379" or "http://127.0.0.1:2379" (optional trailing "/"). Refuses other
// schemes, host names, plain http to a non-loopback address, paths, and ports outside 1-65535,
// saying which.
Result<EtcdEndpoint> parseEtcdEndpoint(std::string_view url);

// The smallest key after every key that starts with `prefix` (etcd's range_end for a prefix).
std::string etcdPrefixEnd(std::string_view prefix);

struct EtcdKeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;  // the lease the key is attached to (0: none)
};

struct EtcdRangeRequest {
  std::string key;
  std::string range_end;  // "" for the one key
  int64_t limit = 0;      // 0: all
  enum class Sort { kKey, kCreateAscending, kCreateDescending } sort = Sort::kKey;
  int64_t revision = 0;             // 0: the newest; else read as of that revision
  int64_t min_create_revision = 0;  // only keys created at or after it (0: any)
  bool keys_only = false;           // values left out (empty)
};

struct EtcdRange {
  std::vector<EtcdKeyValue> kvs;
  int64_t revision = 0;  // the store's revision the answer was read at
  bool more = false;     // more keys than `limit` matched
};

// One write of a txn.
struct EtcdWrite {
  std::string key;
  std::optional<std::string> value;  // nullopt: delete the key
  int64_t lease = 0;                 // a put attached to this lease (deleted when it ends)
};

// A txn's condition: `key`'s mod_revision equals `mod_revision` (0: the key does not exist).
struct EtcdCompare {
  std::string key;
  int64_t mod_revision = 0;
};

struct EtcdTxnResult {
  enum class Outcome {
    kApplied,     // every compare held; the writes are in, at `revision`
    kNotApplied,  // a compare failed; nothing written
    kUnknown,     // sent, no answer: it may or may not be (or later be) applied
  } outcome = Outcome::kNotApplied;
  int64_t revision = 0;  // kApplied: the store revision of the writes
  std::string why{};     // kUnknown: the failure, naming the member
};

struct EtcdLease {
  int64_t id = 0;
  int64_t ttl_s = 0;
};

struct EtcdClientOptions {
  std::vector<EtcdEndpoint> endpoints;
  std::chrono::milliseconds timeout{5000};
  // PEM files, required when an endpoint is https (the key's mode is checked as for every key).
  std::string tls_ca{};
  std::string tls_cert{};
  std::string tls_key{};
};

inline constexpr size_t kEtcdRangesPerCall = 64;

class EtcdClient {
 public:
  // Does not connect: the first call does.
  static Result<std::unique_ptr<EtcdClient>> make(EtcdClientOptions options);
  virtual ~EtcdClient() = default;

  virtual Result<EtcdRange> range(const EtcdRangeRequest& request) = 0;
  // Several ranges read together, each answer at one and the same revision: one read-only txn
  // (one round trip) on the real client; up to kEtcdRangesPerCall at a time (etcd's default
  // --max-txn-ops is 128). This default asks range() for each, one after another (each at its
  // own revision).
  virtual Result<std::vector<EtcdRange>> rangeMany(const std::vector<EtcdRangeRequest>& requests);
  // Applies every write at once when every compare holds. An error only when it was never
  // sent (no member reachable) or a member refused it: nothing written either way.
  virtual Result<EtcdTxnResult> txn(const std::vector<EtcdCompare>& compares,
                                    const std::vector<EtcdWrite>& writes) = 0;
  // A lease of `ttl` (etcd raises it to its minimum, about 2 s with default timings); its id
  // and the TTL granted. A grant sent without an answer is not repeated elsewhere: a lease
  // granted that way is never kept alive and ends after its TTL.
  virtual Result<EtcdLease> leaseGrant(std::chrono::seconds ttl) = 0;
  // Renews the lease; the seconds it has left, 0 when it has ended (expired or revoked).
  virtual Result<int64_t> leaseKeepAlive(int64_t lease) = 0;
  // Ends the lease now, deleting every key attached to it. A lease that has already ended is
  // not an error.
  virtual Status leaseRevoke(int64_t lease) = 0;
  // The member it talks to now (or will try first), for messages.
  virtual std::string currentEndpoint() const = 0;
};

}  // namespace shadan::controller
