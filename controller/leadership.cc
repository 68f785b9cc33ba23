#include "controller/leadership.h"

#include <unistd.h>

#include <algorithm>
#include <utility>

#include "common/logging.h"

namespace shadan::controller {

Result<std::unique_ptr<Leadership>> Leadership::start(std::unique_ptr<EtcdClient> client,
                                                      LeadershipOptions options) {
  if (client == nullptr) return makeError(ErrorCode::kInvalidArgument, "leadership: no client");
  if (options.key.empty() || options.name.empty()) {
    return makeError(ErrorCode::kInvalidArgument, "leadership: a key and a name are required");
  }
  if (options.ttl < std::chrono::seconds(2)) {
    return makeError(ErrorCode::kInvalidArgument, "leadership: the lease TTL must be at least 2 s");
  }
  if (options.interval.count() <= 0 || options.interval * 3 > options.ttl) {
    return makeError(ErrorCode::kInvalidArgument,
                     "leadership: the interval must be positive and at most a third of the TTL");
  }
  std::unique_ptr<Leadership> self(new Leadership(std::move(client), std::move(options)));
  self->thread_ = std::thread([raw = self.get()] { raw->loop(); });
  return self;
}

Leadership::Leadership(std::unique_ptr<EtcdClient> client, LeadershipOptions options)
    : client_(std::move(client)), options_(std::move(options)) {}

Leadership::~Leadership() { stop(); }

bool Leadership::leading() const {
  const int64_t until = leading_until_ns_.load();
  return until != 0 && SteadyClock::now().time_since_epoch().count() < until;
}

std::string Leadership::leader() const {
  std::lock_guard lock(mutex_);
  return leader_;
}

void Leadership::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (lease_ != 0) {
    setLeading(false);
    if (auto revoked = client_->leaseRevoke(lease_); !revoked.ok()) {
      logger("controller")
          ->warn("event=leader_resign_failed error=\"{}\" (the lease ends by itself)",
                 revoked.error().message);
    }
    lease_ = 0;
    logger("controller")->info("event=leader_resigned name={}", options_.name);
  }
  if (reported_ && options_.on_change) options_.on_change(false);
  reported_ = false;
}

void Leadership::loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    step();
    lock.lock();
    wake_.wait_for(lock, options_.interval, [this] { return stopping_; });
  }
}

void Leadership::step() {
  if (lease_ != 0) {
    renew();
  } else {
    campaign();
  }
  const bool now = leading();
  if (now != reported_) {
    reported_ = now;
    logger("controller")
        ->info("event={} name={}", now ? "leader_acquired" : "leader_lost", options_.name);
    if (options_.on_change) options_.on_change(now);
  }
}

std::optional<std::optional<EtcdKeyValue>> Leadership::readKey() {
  EtcdRangeRequest request;
  request.key = options_.key;
  auto range = client_->range(request);
  if (!range.ok()) {
    noteFailure(range.error());
    return std::nullopt;
  }
  if (range->kvs.empty()) return std::optional<EtcdKeyValue>();
  return std::optional<EtcdKeyValue>(std::move(range->kvs.front()));
}

void Leadership::campaign() {
  const auto held = readKey();
  if (!held) return;
  if (*held) {
    noteLeader((*held)->value);
    return;
  }
  const auto sent = SteadyClock::now();
  auto lease = client_->leaseGrant(options_.ttl);
  if (!lease.ok()) {
    noteFailure(lease.error());
    return;
  }
  auto put = client_->txn({EtcdCompare{options_.key, 0}},
                          {EtcdWrite{options_.key, options_.name, lease->id}});
  if (!put.ok() || put->outcome != EtcdTxnResult::Outcome::kApplied) {
    // Lost to another candidate, or no answer: revoking the lease removes the key should the
    // put have landed after all, so nobody is left leading on a lease nobody renews.
    if (!put.ok()) noteFailure(put.error());
    (void)client_->leaseRevoke(lease->id);
    return;
  }
  failing_ = false;
  lease_ = lease->id;
  setLeading(true, sent, std::chrono::seconds(lease->ttl_s));
  noteLeader(options_.name);
}

void Leadership::renew() {
  const auto sent = SteadyClock::now();
  auto left = client_->leaseKeepAlive(lease_);
  if (!left.ok()) {
    noteFailure(left.error());  // leading() lapses by itself when this goes on
    return;
  }
  if (*left > 0) {
    // The key must still be this controller's (an operator may have deleted it).
    const auto held = readKey();
    if (!held) return;
    if (*held && (*held)->lease == lease_ && (*held)->value == options_.name) {
      failing_ = false;
      setLeading(true, sent, std::chrono::seconds(*left));
      return;
    }
    noteLeader(*held ? (*held)->value : "");
  }
  logger("controller")
      ->warn("event={} name={}", *left > 0 ? "leader_key_lost" : "leader_lease_ended",
             options_.name);
  (void)client_->leaseRevoke(lease_);
  lease_ = 0;
  setLeading(false);
}

void Leadership::setLeading(bool leading, SteadyClock::time_point sent, std::chrono::seconds ttl) {
  if (!leading) {
    leading_until_ns_.store(0);
    return;
  }
  // etcd counts the TTL from when it got the request, after `sent`: a fifth of it earlier
  // still, for the two clocks' rates.
  const auto until = sent + ttl - std::chrono::duration_cast<SteadyClock::duration>(ttl) / 5;
  leading_until_ns_.store(until.time_since_epoch().count());
}

void Leadership::noteLeader(std::string name) {
  std::lock_guard lock(mutex_);
  leader_ = std::move(name);
}

void Leadership::noteFailure(const Error& error) {
  if (failing_) return;  // said once until it works again
  failing_ = true;
  logger("controller")->warn("event=leader_election_failing error=\"{}\"", error.message);
}

Result<std::unique_ptr<Leadership>> startConfiguredLeadership(
    const StoreConfig& store, std::function<void(bool leading)> on_change) {
  LeadershipOptions options;
  options.key = store.etcd.prefix + "leader";
  SHADAN_ASSIGN_OR_RETURN(options.name, controllerNameOf(store));
  options.ttl = store.leader_ttl;
  options.interval = std::min<std::chrono::milliseconds>(
      std::chrono::milliseconds(500),
      std::chrono::duration_cast<std::chrono::milliseconds>(options.ttl) / 3);
  options.on_change = std::move(on_change);
  SHADAN_ASSIGN_OR_RETURN(auto client, EtcdClient::make(store.etcd.client()));
  return Leadership::start(std::move(client), std::move(options));
}

}  // namespace shadan::controller
