#pragma once

// Which of several controllers on one etcd leads (docs/ha.md): the one whose lease holds the
// leader key. The leader runs the fleet-wide duties that must happen once (expiring dispatches,
// approvals and automatic actions); every controller serves the API and its agents either way.
//
// Contracts:
//   - Runs on a thread of its own with an etcd client of its own: a slow or unreachable etcd
//     never holds the controller's io thread. Every `interval` it looks at the key; when nobody
//     holds it, it grants a lease of `ttl` and puts the key (its `name`) under that lease only
//     if the key is still absent (one etcd txn), so two candidates never both win.
//   - A leader renews its lease every `interval`. leading() is true only until the moment the
//     lease could have ended as seen from here: the last renewal's *send* time plus the TTL
//     granted, less a margin of a fifth of it. A leader cut off from etcd therefore stops
//     leading before etcd lets the lease (and the key) go and another candidate can win.
//   - A leader whose key was taken or deleted, or whose lease ended, stops leading at once and
//     campaigns again.
//   - stop() (and the destructor) revokes a held lease: the key goes with it, and another
//     controller leads within one `interval` instead of a TTL.
//   - on_change(leading) is called on the election thread when leading() changes, as the
//     thread sees it; expiry by time alone is reported at the thread's next look.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/result.h"
#include "controller/config.h"
#include "controller/etcd_client.h"

namespace shadan::controller {

struct LeadershipOptions {
  std::string key;   // e.g. "/shadan/leader"
  std::string name;  // this controller's name, the key's value while it leads
  std::chrono::seconds ttl{3};
  std::chrono::milliseconds interval{500};  // at most ttl / 3
  std::function<void(bool leading)> on_change{};
};

class Leadership {
 public:
  // Starts the election thread. Refuses an empty key or name, a TTL under 2 s and an interval
  // over a third of the TTL.
  static Result<std::unique_ptr<Leadership>> start(std::unique_ptr<EtcdClient> client,
                                                   LeadershipOptions options);
  ~Leadership();
  Leadership(const Leadership&) = delete;
  Leadership& operator=(const Leadership&) = delete;

  bool leading() const;
  const std::string& name() const { return options_.name; }
  // The name in the leader key when last looked at ("" when nobody held it). Thread-safe.
  std::string leader() const;
  // Resigns (revokes the lease) and stops the thread. Idempotent.
  void stop();

 private:
  using SteadyClock = std::chrono::steady_clock;
  Leadership(std::unique_ptr<EtcdClient> client, LeadershipOptions options);
  void loop();
  void step();
  // The leader key: nullopt when etcd did not answer (noted), else the key or none.
  std::optional<std::optional<EtcdKeyValue>> readKey();
  void campaign();
  void renew();
  void setLeading(bool leading, SteadyClock::time_point sent = {}, std::chrono::seconds ttl = {});
  void noteLeader(std::string name);
  void noteFailure(const Error& error);

  std::unique_ptr<EtcdClient> client_;  // the election thread's only
  const LeadershipOptions options_;
  int64_t lease_ = 0;     // held while leading (election thread only)
  bool failing_ = false;  // etcd calls failing; said once (election thread only)

  std::atomic<int64_t> leading_until_ns_{0};  // steady clock; 0: not leading
  bool reported_ = false;                     // last value given to on_change
  mutable std::mutex mutex_;
  std::string leader_;     // under mutex_
  bool stopping_ = false;  // under mutex_
  std::condition_variable wake_;
  std::thread thread_;
};

// The election of a controller whose store is on etcd: key `<prefix>leader`, its name
// store.controller_name or else the host name, the TTL store.leader_ttl, a look every third of
// it (at most 500 ms), over a client of its own to the same members.
Result<std::unique_ptr<Leadership>> startConfiguredLeadership(
    const StoreConfig& store, std::function<void(bool leading)> on_change);

}  // namespace shadan::controller
