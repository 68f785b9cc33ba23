// The controller store on a real etcd (Debian's etcd-server, one member on loopback per test):
// the store contract every store keeps (store_contract.h), then what only a shared store has to
// answer for: two controllers writing the same records, members that go away, etcd's own
// limits.

#include "controller/etcd_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <set>
#include <thread>
#include <utility>

#include "cli/ca_cmd.h"
#include "controller/etcd_client.h"
#include "tests/controller/controller_test_support.h"
#include "tests/controller/store_contract.h"
#include "tests/support/etcd_member.h"

namespace shadan::controller {
namespace {

using ::shadan::testing::EtcdMember;
using ::shadan::testing::TempDir;

// Each test its own member and its own prefix (a second prefix on the same member must not see
// the first's records).
struct EtcdStoreMaker {
  ControllerStorePtr open() {
    return openEtcdControllerStore(EtcdStoreOptions{{member.endpoint()}, "/contract/"}).value();
  }
  TempDir dir;
  EtcdMember member{dir.path()};
};

}  // namespace

INSTANTIATE_TYPED_TEST_SUITE_P(Etcd, StoreContractTest, EtcdStoreMaker);

namespace {

class EtcdStoreTest : public ::testing::Test {
 protected:
  ControllerStorePtr open(const std::string& prefix = "/shadan/") {
    return openEtcdControllerStore(EtcdStoreOptions{{member_.endpoint()}, prefix}).value();
  }
  TempDir dir_;
  EtcdMember member_{dir_.path()};
};

TEST_F(EtcdStoreTest, TwoControllersNeverHandOutTheSameSeq) {
  auto first = open();
  auto second = open();
  std::set<int64_t> seen;
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(seen.insert((i % 2 == 0 ? first : second)->nextSeq("core-gw").value()).second);
  }
  EXPECT_EQ(*seen.begin(), 1);
  EXPECT_EQ(*seen.rbegin(), 20);
}

TEST_F(EtcdStoreTest, ATransactionThatLostARaceWritesNothing) {
  auto first = open();
  auto second = open();
  ASSERT_EQ(first->nextSeq("core-gw").value(), 1);
  Status status = first->transaction([&]() -> Status {
    EXPECT_EQ(first->nextSeq("core-gw").value(), 2);  // read seq 1, will write 2
    OrderRecord order;
    order.command_id = "loser";
    order.action = "isolate";
    EXPECT_TRUE(first->putOrder(order).ok());
    // Another controller takes seq 2 before this transaction commits.
    EXPECT_EQ(second->nextSeq("core-gw").value(), 2);
    return okStatus();
  });
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::kState);
  EXPECT_NE(status.error().message.find("changed by another writer"), std::string::npos)
      << status.error().message;
  EXPECT_FALSE(second->getOrder("loser").value().has_value());  // nothing of it written
  EXPECT_EQ(second->nextSeq("core-gw").value(), 3);
}

TEST_F(EtcdStoreTest, PrefixesAreSeparateStores) {
  auto a = open("/site-a/");
  auto b = open("/site-b/");
  ASSERT_EQ(a->nextSeq("gw").value(), 1);
  ASSERT_EQ(a->nextSeq("gw").value(), 2);
  EXPECT_EQ(b->nextSeq("gw").value(), 1);
  ASSERT_TRUE(
      a->putAgent(AgentRecord{"gw", "k", std::nullopt, AgentStatus::kPending, 1, 1, ""}).ok());
  EXPECT_EQ(a->listAgents().value().size(), 1u);
  EXPECT_TRUE(b->listAgents().value().empty());
}

TEST_F(EtcdStoreTest, NamesWithSlashesStayInTheirOwnRecords) {
  auto store = open();
  ASSERT_TRUE(store
                  ->putDispatch(DispatchRecord{"a/b", "cmd%1", 3, "", 0, DispatchState::kPending,
                                               "", 1, 0, 1})
                  .ok());
  ASSERT_TRUE(store
                  ->putDispatch(DispatchRecord{"a", "b/cmd%1", 4, "", 0, DispatchState::kPending,
                                               "", 2, 0, 2})
                  .ok());
  EXPECT_EQ(store->pendingDispatches("a/b").value().size(), 1u);
  EXPECT_EQ(store->pendingDispatches("a").value().size(), 1u);
  EXPECT_EQ(store->dispatchesForOrder("cmd%1").value().size(), 1u);
  EXPECT_EQ(store->dispatchBySeq("a/b", 3).value()->command_id, "cmd%1");
  EXPECT_FALSE(store->dispatchBySeq("a", 3).value().has_value());
}

TEST_F(EtcdStoreTest, PendingDispatchesCreatedSinceACursorAreNamedOnce) {
  auto store = open();
  auto pending = [](const std::string& agent, const std::string& command, int64_t seq) {
    return DispatchRecord{agent, command, seq, "", 0, DispatchState::kPending, "", 1, 0, 1};
  };
  ASSERT_TRUE(store->putDispatch(pending("old-gw", "before", 0)).ok());
  const auto start = store->pendingCreatedSince(0).value();
  EXPECT_TRUE(start.dispatches.empty());  // only where to start
  EXPECT_GT(start.cursor, 0);

  ASSERT_TRUE(store->putDispatch(pending("a/b", "cmd%1", 0)).ok());
  ASSERT_TRUE(store->putDispatch(pending("core-gw", "cmd-2", 0)).ok());
  const auto first = store->pendingCreatedSince(start.cursor).value();
  using Created = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(first.dispatches, (Created{{"a/b", "cmd%1"}, {"core-gw", "cmd-2"}}));
  // Sent (a seq now, still pending) and acked: neither is a new pending dispatch.
  ASSERT_TRUE(store->putDispatch(pending("a/b", "cmd%1", 4)).ok());
  DispatchRecord applied = pending("core-gw", "cmd-2", 1);
  applied.state = DispatchState::kApplied;
  ASSERT_TRUE(store->putDispatch(applied).ok());
  const auto second = store->pendingCreatedSince(first.cursor).value();
  EXPECT_TRUE(second.dispatches.empty());
  ASSERT_TRUE(store->putDispatch(pending("core-gw", "cmd-3", 0)).ok());
  EXPECT_EQ(store->pendingCreatedSince(second.cursor).value().dispatches,
            (Created{{"core-gw", "cmd-3"}}));
}

// A fan-out writes a signed envelope per gateway: it goes through Raft once, in dispatches/;
// pending/ is an index of empty values that pendingDispatches() follows.
TEST_F(EtcdStoreTest, APendingDispatchIsWrittenOnceAndFoundThroughItsIndex) {
  auto store = open();
  const std::string envelope(2000, 'e');
  DispatchRecord sent{"core-gw", "cmd-1", 7, envelope, 99, DispatchState::kPending, "", 1, 2, 3};
  ASSERT_TRUE(store->putDispatch(sent).ok());
  auto client = EtcdClient::make(EtcdClientOptions{{member_.endpoint()}}).value();
  auto raw = [&](const std::string& k) {
    EtcdRangeRequest request;
    request.key = k;
    auto range = client->range(request).value();
    EXPECT_EQ(range.kvs.size(), 1u) << k;
    return range.kvs.empty() ? std::string("<absent>") : range.kvs.front().value;
  };
  EXPECT_EQ(raw("/shadan/pending/core-gw/cmd-1"), "");
  EXPECT_NE(raw("/shadan/dispatches/cmd-1/core-gw").find(envelope), std::string::npos);
  EXPECT_EQ(store->pendingDispatches("core-gw").value(), std::vector<DispatchRecord>{sent});
  EXPECT_EQ(store->allPendingDispatches().value(), std::vector<DispatchRecord>{sent});

  // In a transaction the index and the records it has written itself are read together.
  DispatchRecord next{"core-gw", "cmd-2", 0, "", 0, DispatchState::kPending, "", 4, 0, 4};
  ASSERT_TRUE(store
                  ->transaction([&]() -> Status {
                    SHADAN_RETURN_IF_ERROR(store->putDispatch(next));
                    EXPECT_EQ(store->pendingDispatches("core-gw").value(),
                              (std::vector<DispatchRecord>{sent, next}));
                    return okStatus();
                  })
                  .ok());

  // An index key whose record is gone is named, not skipped.
  ASSERT_EQ(
      client->txn({}, {EtcdWrite{"/shadan/pending/lost-gw/cmd-9", std::string()}}).value().outcome,
      EtcdTxnResult::Outcome::kApplied);
  auto lost = store->allPendingDispatches();
  ASSERT_FALSE(lost.ok());
  EXPECT_EQ(lost.error().code, ErrorCode::kState);
  EXPECT_NE(lost.error().message.find("/shadan/pending/lost-gw/cmd-9 has no dispatch record"),
            std::string::npos)
      << lost.error().message;
  // Read with other agents' lists, the same.
  auto lost_of_many = store->pendingDispatchesOf({"core-gw", "lost-gw"});
  ASSERT_FALSE(lost_of_many.ok());
  EXPECT_NE(lost_of_many.error().message.find("/shadan/pending/lost-gw/cmd-9 has no dispatch"),
            std::string::npos)
      << lost_of_many.error().message;
}

// A member that passes requests on to a real one until its election starts; from then on it
// answers every request as etcd's gateway does during one ("etcdserver: leader changed", gRPC
// UNAVAILABLE as HTTP 503), and counts those.
class ElectingMember {
 public:
  explicit ElectingMember(EtcdEndpoint upstream, bool electing = true)
      : upstream_(std::move(upstream)), electing_(electing) {
    thread_ = std::thread([this] { serve(); });
  }
  ~ElectingMember() {
    stop_ = true;
    boost::asio::ip::tcp::socket wake(ioc_);  // unblocks the accept
    boost::system::error_code ignored;
    wake.connect(acceptor_.local_endpoint(), ignored);
    thread_.join();
  }
  EtcdEndpoint endpoint() const {
    return EtcdEndpoint{"127.0.0.1", acceptor_.local_endpoint().port()};
  }
  int requests() const { return requests_; }
  void elect() { electing_ = true; }

 private:
  void serve() {
    namespace http = boost::beast::http;
    while (!stop_) {
      boost::asio::ip::tcp::socket socket(ioc_);
      boost::system::error_code error;
      acceptor_.accept(socket, error);
      if (error || stop_) return;  // stop_: the destructor's wake-up connection
      boost::beast::flat_buffer buffer;
      for (;;) {
        http::request<http::string_body> request;
        http::read(socket, buffer, request, error);
        if (error) break;
        if (!electing_) {
          if (!forward(request, socket)) break;
          continue;
        }
        ++requests_;
        http::response<http::string_body> response{http::status::service_unavailable, 11};
        response.set(http::field::content_type, "application/json");
        response.keep_alive(request.keep_alive());
        response.body() =
            R"({"error":"etcdserver: leader changed","code":14,"message":"etcdserver: leader changed"})";
        response.prepare_payload();
        http::write(socket, response, error);
        if (error) break;
      }
    }
  }

  bool forward(const boost::beast::http::request<boost::beast::http::string_body>& request,
               boost::asio::ip::tcp::socket& client) {
    namespace http = boost::beast::http;
    boost::asio::ip::tcp::socket up(ioc_);
    boost::system::error_code error;
    up.connect({boost::asio::ip::make_address(upstream_.host), upstream_.port}, error);
    if (!error) http::write(up, request, error);
    boost::beast::flat_buffer buffer;
    http::response<http::string_body> response;
    if (!error) http::read(up, buffer, response, error);
    response.keep_alive(request.keep_alive());
    if (!error) http::write(client, response, error);
    return !error;
  }

  const EtcdEndpoint upstream_;
  std::atomic<bool> electing_;
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_{ioc_, {boost::asio::ip::make_address("127.0.0.1"), 0}};
  std::atomic<bool> stop_ = false;
  std::atomic<int> requests_ = 0;
  std::thread thread_;
};

// etcd's "leader changed" (or "no leader", "request timed out") is the member's, not the
// cluster's: a read moves on to the next member; a write's outcome is not known (etcd may
// still apply a proposal it timed out), so it is settled through the fence, never refused as if
// nothing had happened.
TEST_F(EtcdStoreTest, AMemberInAnElectionSendsReadsOnAndSettlesWritesThroughTheFence) {
  ElectingMember electing(member_.endpoint());
  auto client =
      EtcdClient::make(EtcdClientOptions{{electing.endpoint(), member_.endpoint()}}).value();
  EtcdRangeRequest request;
  request.key = "/anything";
  auto read = client->range(request);
  ASSERT_TRUE(read.ok()) << read.error().message;  // served by the second member
  EXPECT_EQ(electing.requests(), 1);
  EXPECT_EQ(client->currentEndpoint(), member_.endpoint().text());

  auto alone = EtcdClient::make(EtcdClientOptions{{electing.endpoint()}}).value();
  auto refused = alone->range(request);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(refused.error().message.find("leader changed"), std::string::npos)
      << refused.error().message;
  auto write = alone->txn({}, {EtcdWrite{"/k", std::string("v")}});
  ASSERT_TRUE(write.ok()) << write.error().message;
  EXPECT_EQ(write->outcome, EtcdTxnResult::Outcome::kUnknown);
  EXPECT_NE(write->why.find("leader changed"), std::string::npos) << write->why;

  // Through the store: the election starts while it talks to the first member; the commit that
  // member refused is fenced on the other, so it can never apply, and reported as not written.
  ElectingMember later(member_.endpoint(), /*electing=*/false);
  auto both = openEtcdControllerStore(
      EtcdClient::make(EtcdClientOptions{{later.endpoint(), member_.endpoint()}}).value(),
      "/shadan/");
  ASSERT_TRUE(both.ok()) << both.error().message;
  ASSERT_EQ((*both)->nextSeq("core-gw").value(), 1);  // through the first member
  later.elect();
  Status put = (*both)->putOrder(OrderRecord{});
  EXPECT_EQ(later.requests(), 1);
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(put.error().message.find("not applied, nothing was written"), std::string::npos)
      << put.error().message;
  auto store = open();
  EXPECT_TRUE(store->listOrders(10).value().empty());
  EXPECT_EQ(store->nextSeq("core-gw").value(), 2);
}

TEST_F(EtcdStoreTest, AnUnreachableEtcdIsUnavailableAndNamed) {
  const EtcdEndpoint nobody{"127.0.0.1", ::shadan::testing::freeLoopbackPort()};
  auto refused = openEtcdControllerStore(
      EtcdStoreOptions{{nobody}, "/shadan/", std::chrono::milliseconds(1000)});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(refused.error().message.find(nobody.text()), std::string::npos)
      << refused.error().message;

  // The first member of the list is down: the store uses the next.
  auto store = openEtcdControllerStore(EtcdStoreOptions{{nobody, member_.endpoint()},
                                                        "/shadan/",
                                                        std::chrono::milliseconds(1000)})
                   .value();
  EXPECT_EQ(store->nextSeq("gw").value(), 1);

  // Every member gone: reads and writes fail, unavailable, and say where.
  member_.stop();
  auto read = store->getOrder("x");
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(read.error().message.find(member_.endpoint().text()), std::string::npos)
      << read.error().message;
  Status write =
      store->putAgent(AgentRecord{"gw", "k", std::nullopt, AgentStatus::kPending, 1, 1, ""});
  ASSERT_FALSE(write.ok());
  EXPECT_EQ(write.error().code, ErrorCode::kUnavailable);
}

TEST_F(EtcdStoreTest, ATransactionOverEtcdsLimitIsRefusedWhole) {
  // etcd's default --max-txn-ops is 128; a pending dispatch is two writes.
  auto store = open();
  Status status = store->transaction([&]() -> Status {
    for (int i = 0; i < 100; ++i) {
      SHADAN_RETURN_IF_ERROR(store->putDispatch(DispatchRecord{
          "gw-" + std::to_string(i), "big", 0, "", 0, DispatchState::kPending, "", 1, 0, 1}));
    }
    return okStatus();
  });
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::kState);
  EXPECT_NE(status.error().message.find("too many operations"), std::string::npos)
      << status.error().message;
  EXPECT_TRUE(store->dispatchesForOrder("big").value().empty());
  EXPECT_TRUE(store->allPendingDispatches().value().empty());
}

// A client whose txn answers can be lost: the member applied it and died before answering
// (kApplyThenLose), or it never got there but may yet (kHold: kept for replay()). With
// reads_fail, etcd stays silent afterwards as well.
class LossyEtcdClient : public ::shadan::testing::ForwardingEtcdClient {
 public:
  enum class Mode { kPass, kApplyThenLose, kHold };
  using ForwardingEtcdClient::ForwardingEtcdClient;

  Mode mode = Mode::kPass;
  bool reads_fail = false;

  Result<EtcdRange> range(const EtcdRangeRequest& request) override {
    if (reads_fail) return makeError(ErrorCode::kUnavailable, "etcd 127.0.0.1:1: connect: gone");
    return ForwardingEtcdClient::range(request);
  }
  Result<EtcdTxnResult> txn(const std::vector<EtcdCompare>& compares,
                            const std::vector<EtcdWrite>& writes) override {
    const Mode now = std::exchange(mode, Mode::kPass);  // one answer lost, not the fence's
    if (now == Mode::kPass) {
      if (reads_fail) return makeError(ErrorCode::kUnavailable, "etcd 127.0.0.1:1: connect: gone");
      return ForwardingEtcdClient::txn(compares, writes);
    }
    if (now == Mode::kApplyThenLose) {
      EXPECT_EQ(inner().txn(compares, writes).value().outcome, EtcdTxnResult::Outcome::kApplied);
    } else {
      held_compares_ = compares;
      held_writes_ = writes;
    }
    EtcdTxnResult lost;
    lost.outcome = EtcdTxnResult::Outcome::kUnknown;
    lost.why = "etcd 127.0.0.1:2379: answer: end of stream";
    return lost;
  }

  // The held txn arrives after all.
  EtcdTxnResult::Outcome replay() {
    return inner().txn(held_compares_, held_writes_).value().outcome;
  }

 private:
  std::vector<EtcdCompare> held_compares_;
  std::vector<EtcdWrite> held_writes_;
};

class EtcdLostAnswerTest : public EtcdStoreTest {
 protected:
  EtcdLostAnswerTest() {
    auto lossy = std::make_unique<LossyEtcdClient>(
        EtcdClient::make(EtcdClientOptions{{member_.endpoint()}}).value());
    lossy_ = lossy.get();
    store_ = openEtcdControllerStore(std::move(lossy), "/shadan/").value();
  }
  static AgentRecord agent(const std::string& id) {
    return AgentRecord{id, "k", std::nullopt, AgentStatus::kPending, 1, 1, ""};
  }
  LossyEtcdClient* lossy_ = nullptr;
  ControllerStorePtr store_;
};

TEST_F(EtcdLostAnswerTest, AWriteAppliedWhoseAnswerWasLostIsReportedDone) {
  lossy_->mode = LossyEtcdClient::Mode::kApplyThenLose;
  Status status = store_->putAgent(agent("gw-1"));
  ASSERT_TRUE(status.ok()) << status.error().message;
  EXPECT_TRUE(open()->getAgent("gw-1").value().has_value());
  ASSERT_TRUE(store_->putAgent(agent("gw-2")).ok());  // the fence's revision was learnt
}

TEST_F(EtcdLostAnswerTest, AWriteThatHadNotArrivedIsFencedOffAndReportedNotWritten) {
  lossy_->mode = LossyEtcdClient::Mode::kHold;
  Status status = store_->putAgent(agent("gw-1"));
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(status.error().message.rfind(kStoreUnavailable, 0), 0u) << status.error().message;
  EXPECT_NE(status.error().message.find("not applied"), std::string::npos)
      << status.error().message;
  // It arrives late: the fence already moved, so it cannot apply.
  EXPECT_EQ(lossy_->replay(), EtcdTxnResult::Outcome::kNotApplied);
  EXPECT_FALSE(open()->getAgent("gw-1").value().has_value());
  ASSERT_TRUE(store_->putAgent(agent("gw-2")).ok());
}

TEST_F(EtcdLostAnswerTest, WhenEtcdStaysSilentTheOutcomeIsUnknownUntilTheNextWriteFencesIt) {
  lossy_->mode = LossyEtcdClient::Mode::kHold;
  lossy_->reads_fail = true;
  Status status = store_->putAgent(agent("gw-1"));
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(status.error().message.rfind(kStoreOutcomeUnknown, 0), 0u) << status.error().message;
  // etcd answers again: the next write reads the fence first and moves it, so the lost one can
  // no longer apply.
  lossy_->reads_fail = false;
  ASSERT_TRUE(store_->putAgent(agent("gw-2")).ok());
  EXPECT_EQ(lossy_->replay(), EtcdTxnResult::Outcome::kNotApplied);
  EXPECT_FALSE(open()->getAgent("gw-1").value().has_value());
  EXPECT_TRUE(open()->getAgent("gw-2").value().has_value());
}

// A CA of the deployment, etcd's server certificate for 127.0.0.1, a controller's client
// certificate; and the same from a stranger CA.
struct EtcdPki {
  explicit EtcdPki(const std::filesystem::path& dir) {
    const std::string ca = (dir / "ca").string();
    const std::string other = (dir / "other-ca").string();
    EXPECT_TRUE(initCertificateAuthority(ca, "etcd CA").ok());
    EXPECT_TRUE(initCertificateAuthority(other, "Other CA").ok());
    ca_cert = caPaths(ca).cert;
    auto issue = [](const std::string& in, const std::string& prefix, const char* name, bool server,
                    std::string& cert, std::string& key) {
      CertificateRequest request;
      request.common_name = name;
      request.server = server;
      if (server) request.ip_addresses = {"127.0.0.1"};
      request.also_client = server;  // an etcd member's (its gateway dials its own gRPC)
      auto issued = issueCertificate(in, request, prefix);
      ASSERT_TRUE(issued.ok()) << issued.error().message;
      cert = issued->cert_path;
      key = issued->key_path;
    };
    issue(ca, (dir / "member").string(), "etcd-1", true, member_cert, member_key);
    issue(ca, (dir / "ctl").string(), "ctl-1", false, client_cert, client_key);
    issue(other, (dir / "stranger").string(), "ctl-1", false, stranger_cert, stranger_key);
  }
  std::string ca_cert, member_cert, member_key, client_cert, client_key, stranger_cert,
      stranger_key;
};

class EtcdTlsTest : public ::testing::Test {
 protected:
  Result<ControllerStorePtr> open(const std::string& cert, const std::string& key) {
    EtcdStoreOptions options{{member_.endpoint()}, "/shadan/", std::chrono::milliseconds(2000)};
    options.tls_ca = pki_.ca_cert;
    options.tls_cert = cert;
    options.tls_key = key;
    return openEtcdControllerStore(options);
  }
  TempDir dir_;
  EtcdPki pki_{dir_.path()};
  EtcdMember member_{
      dir_.path() / "etcd",
      {},
      ::shadan::testing::EtcdMemberTls{pki_.ca_cert, pki_.member_cert, pki_.member_key,
                                       pki_.client_cert, pki_.client_key}};
};

TEST_F(EtcdTlsTest, AMemberBehindTlsServesTheControllerItsCaSigned) {
  auto store = open(pki_.client_cert, pki_.client_key);
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_EQ((*store)->nextSeq("gw").value(), 1);
  EXPECT_EQ((*store)->nextSeq("gw").value(), 2);
}

TEST_F(EtcdTlsTest, AClientCertificateOfAnotherCaIsRefusedByTheMember) {
  auto store = open(pki_.stranger_cert, pki_.stranger_key);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(store.error().message.find(member_.endpoint().text()), std::string::npos)
      << store.error().message;
}

TEST_F(EtcdTlsTest, AMemberWhoseCertificateIsNotOfTheCaIsRefusedByTheController) {
  EtcdStoreOptions options{{member_.endpoint()}, "/shadan/", std::chrono::milliseconds(2000)};
  options.tls_ca = pki_.stranger_cert;  // not the CA that signed the member
  options.tls_cert = pki_.client_cert;
  options.tls_key = pki_.client_key;
  auto store = openEtcdControllerStore(options);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().message.find("TLS"), std::string::npos) << store.error().message;

  EtcdStoreOptions plain{{EtcdEndpoint{"127.0.0.1", member_.endpoint().port, false}},
                         "/shadan/",
                         std::chrono::milliseconds(2000)};
  auto cleartext = openEtcdControllerStore(plain);  // http to an https member: no answer
  EXPECT_FALSE(cleartext.ok());

  EtcdStoreOptions no_files{{member_.endpoint()}, "/shadan/"};
  auto refused = openEtcdControllerStore(no_files);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(refused.error().message.find("need a CA"), std::string::npos);
}

TEST(EtcdEndpointTest, PlainHttpOnlyToLoopback) {
  EXPECT_EQ(parseEtcdEndpoint("http://127.0.0.1:2379").value().text(), "127.0.0.1:2379");
  EXPECT_EQ(parseEtcdEndpoint("http://127.0.0.2/").value().text(), "127.0.0.2:2379");
  EXPECT_EQ(parseEtcdEndpoint("http://[::1]:23790").value().text(), "[::1]:23790");
  EXPECT_TRUE(parseEtcdEndpoint("https://10.0.0.1:2379").value().tls);
  EXPECT_FALSE(parseEtcdEndpoint("http://127.0.0.1:2379").value().tls);
  for (const char* bad :
       {"ftp://127.0.0.1:2379", "http://10.0.0.1:2379", "https://etcd:2379", "http://127.0.0.1:0",
        "http://127.0.0.1:65536", "http://127.0.0.1:2379/v3", "127.0.0.1:2379", "http://[::1",
        "http://user@127.0.0.1"}) {
    auto parsed = parseEtcdEndpoint(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidArgument) << bad;
    EXPECT_NE(parsed.error().message.find("etcd endpoint"), std::string::npos) << bad;
  }
}

TEST(EtcdEndpointTest, PrefixEndIsTheNextKey) {
  EXPECT_EQ(etcdPrefixEnd("/a/"), "/a0");
  EXPECT_EQ(etcdPrefixEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(etcdPrefixEnd(""), std::string(1, '\0'));
}

}  // namespace
}  // namespace shadan::controller
