// Leader election among controllers on a real etcd (one member on loopback per test, no root):
// one leader at a time, hand-over on resignation, and a leader cut off from etcd that stops
// leading before anyone else can start.

#include "controller/leadership.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "tests/controller/controller_test_support.h"
#include "tests/support/etcd_member.h"

namespace shadan::controller {
namespace {

using ::shadan::testing::EtcdMember;
using ::shadan::testing::TempDir;
using namespace std::chrono_literals;

// A client whose every call fails while `cut` is set: a controller partitioned from etcd.
class CuttableEtcdClient : public ::shadan::testing::ForwardingEtcdClient {
 public:
  using ForwardingEtcdClient::ForwardingEtcdClient;
  std::atomic<bool> cut{false};

  Result<EtcdRange> range(const EtcdRangeRequest& request) override {
    if (cut) return gone();
    return ForwardingEtcdClient::range(request);
  }
  Result<EtcdTxnResult> txn(const std::vector<EtcdCompare>& compares,
                            const std::vector<EtcdWrite>& writes) override {
    if (cut) return gone();
    return ForwardingEtcdClient::txn(compares, writes);
  }
  Result<EtcdLease> leaseGrant(std::chrono::seconds ttl) override {
    if (cut) return gone();
    return ForwardingEtcdClient::leaseGrant(ttl);
  }
  Result<int64_t> leaseKeepAlive(int64_t lease) override {
    if (cut) return gone();
    return ForwardingEtcdClient::leaseKeepAlive(lease);
  }
  Status leaseRevoke(int64_t lease) override {
    if (cut) return gone();
    return ForwardingEtcdClient::leaseRevoke(lease);
  }

 private:
  static Error gone() { return makeError(ErrorCode::kUnavailable, "etcd: connect: timed out"); }
};

class LeadershipTest : public ::testing::Test {
 protected:
  std::unique_ptr<EtcdClient> client() {
    return EtcdClient::make(EtcdClientOptions{{member_.endpoint()}, 1000ms}).value();
  }
  LeadershipOptions options(const std::string& name) {
    LeadershipOptions out;
    out.key = "/shadan/leader";
    out.name = name;
    out.ttl = 2s;
    out.interval = 200ms;
    return out;
  }
  std::unique_ptr<Leadership> candidate(const std::string& name) {
    return Leadership::start(client(), options(name)).value();
  }
  // Polls `done` every 10 ms for up to `limit`.
  template <typename Done>
  static bool eventually(Done done, std::chrono::milliseconds limit = 10s) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      if (done()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return done();
  }
  std::string keyValue() {
    EtcdRangeRequest request;
    request.key = "/shadan/leader";
    auto range = client()->range(request).value();
    return range.kvs.empty() ? "" : range.kvs.front().value;
  }

  TempDir dir_;
  EtcdMember member_{dir_.path()};
};

TEST_F(LeadershipTest, OneOfTwoCandidatesLeadsAndTheOtherNamesIt) {
  auto a = candidate("ctl-a");
  ASSERT_TRUE(eventually([&] { return a->leading(); }));
  auto b = candidate("ctl-b");
  ASSERT_TRUE(eventually([&] { return b->leader() == "ctl-a"; }));
  std::this_thread::sleep_for(2500ms);  // past the TTL: ctl-a leads on renewed leases
  EXPECT_TRUE(a->leading());
  EXPECT_FALSE(b->leading());
  EXPECT_EQ(keyValue(), "ctl-a");
}

TEST_F(LeadershipTest, AResigningLeaderLetsTheKeyGoAtOnce) {
  auto a = candidate("ctl-a");
  ASSERT_TRUE(eventually([&] { return a->leading(); }));
  auto b = candidate("ctl-b");
  ASSERT_TRUE(eventually([&] { return b->leader() == "ctl-a"; }));
  a->stop();
  EXPECT_FALSE(a->leading());
  // The lease was revoked, not left to expire: the key went with it before stop() returned.
  EXPECT_NE(keyValue(), "ctl-a");
  EXPECT_TRUE(eventually([&] { return b->leading(); }));
  EXPECT_EQ(keyValue(), "ctl-b");
}

TEST_F(LeadershipTest, ALeaderCutOffFromEtcdStopsLeadingBeforeAnotherCanStart) {
  auto cuttable = std::make_unique<CuttableEtcdClient>(client());
  CuttableEtcdClient& link = *cuttable;
  auto a = Leadership::start(std::move(cuttable), options("ctl-a")).value();
  ASSERT_TRUE(eventually([&] { return a->leading(); }));
  auto b = candidate("ctl-b");
  ASSERT_TRUE(eventually([&] { return b->leader() == "ctl-a"; }));

  link.cut = true;
  bool both = false;
  ASSERT_TRUE(eventually([&] {
    const bool b_leads = b->leading();
    both = both || (b_leads && a->leading());
    return b_leads;
  }));
  EXPECT_FALSE(both) << "two controllers led at once";
  EXPECT_FALSE(a->leading());

  // Back on the network, ctl-a finds its lease gone and follows.
  link.cut = false;
  EXPECT_TRUE(eventually([&] { return a->leader() == "ctl-b"; }));
  EXPECT_FALSE(a->leading());
  EXPECT_TRUE(b->leading());
}

TEST_F(LeadershipTest, ALeaderWhoseKeyWasDeletedStepsDownAndCampaignsAgain) {
  std::mutex mutex;
  std::vector<bool> changes;
  LeadershipOptions watched = options("ctl-a");
  watched.on_change = [&](bool leading) {
    std::lock_guard lock(mutex);
    changes.push_back(leading);
  };
  auto a = Leadership::start(client(), watched).value();
  ASSERT_TRUE(eventually([&] { return a->leading(); }));
  ASSERT_EQ(client()->txn({}, {EtcdWrite{"/shadan/leader", std::nullopt}}).value().outcome,
            EtcdTxnResult::Outcome::kApplied);
  EXPECT_TRUE(eventually([&] {
    std::lock_guard lock(mutex);
    return changes.size() >= 3;
  }));
  std::lock_guard lock(mutex);
  EXPECT_EQ(changes, (std::vector<bool>{true, false, true}));
}

TEST_F(LeadershipTest, RefusesATtlUnderTwoSecondsOrASlowLook) {
  LeadershipOptions short_ttl = options("ctl-a");
  short_ttl.ttl = 1s;
  EXPECT_EQ(Leadership::start(client(), short_ttl).error().code, ErrorCode::kInvalidArgument);
  LeadershipOptions slow = options("ctl-a");
  slow.interval = 1000ms;  // over a third of 2 s
  EXPECT_EQ(Leadership::start(client(), slow).error().code, ErrorCode::kInvalidArgument);
  LeadershipOptions nameless = options("");
  EXPECT_EQ(Leadership::start(client(), nameless).error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace shadan::controller
