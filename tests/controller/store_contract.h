#pragma once

// The ControllerStore contract (controller/store.h) as one typed test suite, run against every
// store: store_test.cc instantiates it for SQLite, etcd_store_test.cc for etcd. A store maker
// is a type with `ControllerStorePtr open()`, each call a new store object on the same data
// (a reopen), and a default constructor that makes fresh, empty data.

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "controller/store.h"
#include "tests/controller/controller_test_support.h"

namespace shadan::controller {

template <typename Maker>
class StoreContractTest : public ::testing::Test {
 protected:
  ControllerStorePtr open() { return maker_.open(); }
  Maker maker_;
};

TYPED_TEST_SUITE_P(StoreContractTest);

TYPED_TEST_P(StoreContractTest, EverythingSurvivesReopen) {
  const auto key = ::shadan::testing::keyFromByte(9);
  AgentRecord agent{"core-gw", key.keyId(), key.publicKey(),     AgentStatus::kApproved,
                    10,        20,          R"({"isolated":[]})"};
  OrderRecord order;
  order.command_id = "00000000-0000-4000-8000-000000000001";
  order.action = "restore";
  order.segment = "lgwan";
  order.profile = "full";
  order.requested_by = "op:sato";
  order.reason = "all clear";
  order.ticket = "INC-1";
  order.state = OrderState::kAwaitingApproval;
  order.authz_payload = std::string("{\"v\":1}\0x", 9);  // bytes, not text
  order.targets = {"core-gw", "edge-gw"};
  order.expires_at_ms = 99;
  order.created_ms = 5;
  order.updated_ms = 6;
  DispatchRecord dispatch{"core-gw",
                          order.command_id,
                          3,
                          "{}",
                          50,
                          DispatchState::kApplied,
                          R"({"result":"applied"})",
                          1,
                          2,
                          3};
  ApprovalRecord approval;
  approval.approval_id = order.command_id;
  approval.command_id = order.command_id;
  approval.payload_type = "application/vnd.shadan.authz.v1+json";
  approval.payload = order.authz_payload;
  approval.rule = "restore";
  approval.needed = 2;
  approval.signatures = {DsseSignature{std::string(64, 'a'), std::vector<uint8_t>(64, 7)}};
  approval.created_ms = 5;
  approval.expires_ms = 99;
  {
    auto store = this->open();
    ASSERT_TRUE(store->putAgent(agent).ok());
    ASSERT_EQ(store->nextSeq("core-gw").value(), 1);
    ASSERT_EQ(store->nextSeq("core-gw").value(), 2);
    ASSERT_EQ(store->nextSeq("edge-gw").value(), 1);
    ASSERT_EQ(store->nextSegmentGen("lgwan").value(), 1);
    ASSERT_TRUE(store->putSegment(SegmentRecord{"lgwan", 1, true, "full"}).ok());
    ASSERT_TRUE(store->putOrder(order).ok());
    ASSERT_TRUE(store->putDispatch(dispatch).ok());
    ASSERT_TRUE(store->putApproval(approval).ok());
  }
  auto store = this->open();
  EXPECT_EQ(store->getAgent("core-gw").value(), agent);
  EXPECT_FALSE(store->getAgent("nope").value().has_value());
  EXPECT_EQ(store->nextSeq("core-gw").value(), 3);
  EXPECT_EQ(store->nextSegmentGen("lgwan").value(), 2);
  auto segments = store->listSegments().value();
  ASSERT_EQ(segments.size(), 1u);
  EXPECT_EQ(segments[0].gen, 2);
  EXPECT_TRUE(segments[0].isolated);
  EXPECT_EQ(store->getOrder(order.command_id).value(), order);
  EXPECT_EQ(store->dispatchBySeq("core-gw", 3).value(), dispatch);
  EXPECT_EQ(store->dispatchesForOrder(order.command_id).value().size(), 1u);
  EXPECT_TRUE(store->pendingDispatches("core-gw").value().empty());
  EXPECT_EQ(store->getApproval(order.command_id).value(), approval);
  EXPECT_EQ(store->pendingApprovals().value().size(), 1u);
}

TYPED_TEST_P(StoreContractTest, FailedTransactionLeavesNothing) {
  auto store = this->open();
  Status status = store->transaction([&]() -> Status {
    EXPECT_EQ(store->nextSeq("core-gw").value(), 1);
    return makeError(ErrorCode::kInternal, "boom");
  });
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(store->nextSeq("core-gw").value(), 1);
  ASSERT_TRUE(store
                  ->transaction([&]() -> Status {
                    return store->nextSeq("core-gw").ok() ? okStatus()
                                                          : makeError(ErrorCode::kState, "x");
                  })
                  .ok());
  EXPECT_EQ(store->nextSeq("core-gw").value(), 3);
}

TYPED_TEST_P(StoreContractTest, PendingDispatchesComeInCreationOrder) {
  auto store = this->open();
  for (const char* id : {"c", "a", "b"}) {
    ASSERT_TRUE(
        store->putDispatch(DispatchRecord{"gw", id, 0, "", 0, DispatchState::kPending, "", 1, 0, 1})
            .ok());
  }
  auto pending = store->pendingDispatches("gw").value();
  ASSERT_EQ(pending.size(), 3u);
  EXPECT_EQ(pending[0].command_id, "c");
  EXPECT_EQ(pending[2].command_id, "b");
}

TYPED_TEST_P(StoreContractTest, OrdersComeNewestFirstAndDispatchesByGateway) {
  auto store = this->open();
  for (const char* id : {"o1", "o2", "o3"}) {
    OrderRecord order;
    order.command_id = id;
    order.action = "isolate";
    order.targets = {"b-gw", "a-gw"};
    ASSERT_TRUE(store->putOrder(order).ok());
  }
  OrderRecord again = store->getOrder("o1").value().value();
  again.state = OrderState::kDispatched;
  ASSERT_TRUE(store->putOrder(again).ok());  // an update keeps its place
  auto orders = store->listOrders(2).value();
  ASSERT_EQ(orders.size(), 2u);
  EXPECT_EQ(orders[0].command_id, "o3");
  EXPECT_EQ(orders[1].command_id, "o2");
  EXPECT_EQ(store->listOrders(10).value().back(), again);
  EXPECT_EQ(store->orderCounts().value(),
            (std::map<std::string, int64_t>{{"awaiting_approval", 2}, {"dispatched", 1}}));

  for (const char* gw : {"b-gw", "a-gw"}) {
    ASSERT_TRUE(
        store->putDispatch(DispatchRecord{gw, "o1", 0, "", 0, DispatchState::kPending, "", 1, 0, 1})
            .ok());
  }
  auto dispatches = store->dispatchesForOrder("o1").value();
  ASSERT_EQ(dispatches.size(), 2u);
  EXPECT_EQ(dispatches[0].agent_id, "a-gw");
  EXPECT_EQ(dispatches[1].agent_id, "b-gw");
  EXPECT_TRUE(store->dispatchesForOrder("o2").value().empty());
  EXPECT_EQ(store->allPendingDispatches().value().size(), 2u);
  EXPECT_EQ(store->dispatchCounts().value(), (std::map<std::string, int64_t>{{"pending", 2}}));

  // Signed under seq 4, then again under seq 5: seq 4 names nothing any more.
  DispatchRecord signed_once{"a-gw", "o1", 4, "{}", 9, DispatchState::kPending, "", 1, 2, 2};
  ASSERT_TRUE(store->putDispatch(signed_once).ok());
  EXPECT_EQ(store->dispatchBySeq("a-gw", 4).value(), signed_once);
  DispatchRecord signed_twice = signed_once;
  signed_twice.seq = 5;
  ASSERT_TRUE(store->putDispatch(signed_twice).ok());
  EXPECT_FALSE(store->dispatchBySeq("a-gw", 4).value().has_value());
  EXPECT_EQ(store->dispatchBySeq("a-gw", 5).value(), signed_twice);
  EXPECT_FALSE(store->dispatchBySeq("b-gw", 5).value().has_value());

  // Acked: no longer pending anywhere.
  DispatchRecord acked = signed_twice;
  acked.state = DispatchState::kApplied;
  acked.ack_json = R"({"result":"applied"})";
  ASSERT_TRUE(store->putDispatch(acked).ok());
  EXPECT_TRUE(store->pendingDispatches("a-gw").value().empty());
  auto pending = store->allPendingDispatches().value();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].agent_id, "b-gw");
  EXPECT_EQ(store->dispatchCounts().value(),
            (std::map<std::string, int64_t>{{"applied", 1}, {"pending", 1}}));
}

TYPED_TEST_P(StoreContractTest, ReadsInATransactionSeeItsOwnWrites) {
  auto store = this->open();
  ASSERT_TRUE(store
                  ->transaction([&]() -> Status {
                    EXPECT_EQ(store->nextSeq("gw").value(), 1);
                    EXPECT_EQ(store->nextSeq("gw").value(), 2);
                    OrderRecord order;
                    order.command_id = "in-txn";
                    order.action = "isolate";
                    EXPECT_TRUE(store->putOrder(order).ok());
                    EXPECT_EQ(store->getOrder("in-txn").value()->command_id, "in-txn");
                    EXPECT_EQ(store->listOrders(5).value().size(), 1u);
                    EXPECT_TRUE(
                        store
                            ->putDispatch(DispatchRecord{"gw", "in-txn", 0, "", 0,
                                                         DispatchState::kPending, "", 1, 0, 1})
                            .ok());
                    EXPECT_EQ(store->pendingDispatches("gw").value().size(), 1u);
                    return okStatus();
                  })
                  .ok());
  EXPECT_EQ(store->nextSeq("gw").value(), 3);
  EXPECT_EQ(store->pendingDispatches("gw").value().size(), 1u);
}

TYPED_TEST_P(StoreContractTest, SegmentsDocumentsAndApprovalsKeepTheirRules) {
  auto store = this->open();
  EXPECT_EQ(store->nextSegmentGen("host:lgwan").value(), 1);
  EXPECT_EQ(store->listSegments().value(),
            (std::vector<SegmentRecord>{{"host:lgwan", 1, false, ""}}));

  ASSERT_TRUE(store->putDocument(StoredDocument{"auto", "b", R"({"n":1})", true, 20, 20}).ok());
  ASSERT_TRUE(store->putDocument(StoredDocument{"auto", "a", R"({"n":2})", true, 20, 21}).ok());
  ASSERT_TRUE(store->putDocument(StoredDocument{"auto", "c", "{}", true, 10, 10}).ok());
  ASSERT_TRUE(store->putDocument(StoredDocument{"other", "x", "{}", true, 1, 1}).ok());
  // A later put keeps the first created time and can close the document.
  ASSERT_TRUE(
      store->putDocument(StoredDocument{"auto", "c", R"({"closed":1})", false, 99, 30}).ok());
  EXPECT_EQ(store->getDocument("auto", "c").value(),
            (StoredDocument{"auto", "c", R"({"closed":1})", false, 10, 30}));
  auto open_docs = store->openDocuments("auto").value();
  ASSERT_EQ(open_docs.size(), 2u);
  EXPECT_EQ(open_docs[0].id, "a");  // created at the same time: by id
  EXPECT_EQ(open_docs[1].id, "b");
  EXPECT_FALSE(store->getDocument("auto", "nope").value().has_value());

  ApprovalRecord first;
  first.approval_id = "ap-2";
  first.command_id = "ap-2";
  first.rule = "restore";
  first.needed = 2;
  first.created_ms = 2;
  ApprovalRecord second = first;
  second.approval_id = second.command_id = "ap-1";
  second.created_ms = 5;
  ApprovalRecord done = first;
  done.approval_id = done.command_id = "ap-0";
  done.state = ApprovalState::kComplete;
  for (const auto& a : {first, second, done}) ASSERT_TRUE(store->putApproval(a).ok());
  auto pending = store->pendingApprovals().value();
  ASSERT_EQ(pending.size(), 2u);
  EXPECT_EQ(pending[0].approval_id, "ap-2");
  EXPECT_EQ(pending[1].approval_id, "ap-1");
}

// The reads of many at once (a fan-out's) answer exactly what the one-by-one reads would: in
// the order asked, nullopt for the unknown, more than one round trip's worth (etcd reads a few
// dozen keys per trip), seqs counted on per agent, inside a transaction its own writes.
TYPED_TEST_P(StoreContractTest, ReadsOfManyAnswerAsReadsOfOne) {
  auto store = this->open();
  const auto key = ::shadan::testing::keyFromByte(4);
  std::vector<std::string> ids;
  for (int i = 0; i < 150; ++i) {
    const std::string id = "gw-" + std::to_string(i);
    ids.push_back(id);
    if (i % 3 == 0) continue;  // every third is not enrolled
    ASSERT_TRUE(store
                    ->putAgent(AgentRecord{id, key.keyId(), key.publicKey(), AgentStatus::kApproved,
                                           i, i, ""})
                    .ok());
  }
  ids.push_back("gw-1");  // asked twice
  auto agents = store->getAgents(ids).value();
  ASSERT_EQ(agents.size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(agents[i], store->getAgent(ids[i]).value()) << ids[i];
  }
  EXPECT_FALSE(agents[0].has_value());
  EXPECT_EQ(agents[1]->first_seen_ms, 1);
  EXPECT_TRUE(store->getAgents({}).value().empty());

  ASSERT_EQ(store->nextSeq("gw-1").value(), 1);
  std::vector<std::string> seq_ids(ids.begin(), ids.begin() + 100);
  seq_ids.push_back("gw-1");
  auto seqs = store->nextSeqs(seq_ids).value();
  ASSERT_EQ(seqs.size(), seq_ids.size());
  EXPECT_EQ(seqs[0], 1);
  EXPECT_EQ(seqs[1], 2);    // gw-1 had 1
  EXPECT_EQ(seqs[99], 1);   // gw-99
  EXPECT_EQ(seqs[100], 3);  // gw-1 again
  EXPECT_EQ(store->nextSeq("gw-1").value(), 4);
  // In a transaction: its own counts; a failed one leaves the counters as they were.
  ASSERT_TRUE(
      store
          ->transaction([&]() -> Status {
            EXPECT_EQ(store->nextSeq("gw-2").value(), 2);
            EXPECT_EQ(store->nextSeqs({"gw-2", "gw-new"}).value(), (std::vector<int64_t>{3, 1}));
            return okStatus();
          })
          .ok());
  EXPECT_FALSE(store
                   ->transaction([&]() -> Status {
                     EXPECT_EQ(store->nextSeqs({"gw-2"}).value(), (std::vector<int64_t>{4}));
                     return makeError(ErrorCode::kInternal, "rolled back");
                   })
                   .ok());
  EXPECT_EQ(store->nextSeqs({"gw-2"}).value(), (std::vector<int64_t>{4}));

  // What an ack is checked against: the same with or without the command it names.
  DispatchRecord sent{"gw-1", "order-a", 7, "{}", 0, DispatchState::kPending, "", 1, 2, 2};
  ASSERT_TRUE(store->putDispatch(sent).ok());
  ASSERT_TRUE(store
                  ->putDispatch(DispatchRecord{"gw-1", "order-b", 0, "", 0, DispatchState::kPending,
                                               "", 3, 0, 3})
                  .ok());
  using Query = ControllerStore::AckQuery;
  const auto subject = [&](int64_t seq, std::optional<std::string> named,
                           const std::string& agent = "gw-1") {
    return store->ackSubjects({Query{agent, seq, std::move(named)}}).value().at(0);
  };
  for (const std::optional<std::string>& named :
       {std::optional<std::string>("order-a"), std::optional<std::string>(),
        std::optional<std::string>("order-b"), std::optional<std::string>("nope")}) {
    SCOPED_TRACE(named.value_or("(no command)"));
    const auto found = subject(7, named);
    EXPECT_EQ(found.agent, store->getAgent("gw-1").value());
    EXPECT_EQ(found.dispatch, sent);  // the seq's, whatever the ack names
    EXPECT_FALSE(subject(8, named).dispatch.has_value());
    // order-b has no seq yet: seq 0 is no dispatch's
    EXPECT_FALSE(subject(0, named).dispatch.has_value());
  }
  const auto unknown = subject(7, std::string("order-a"), "gw-0");
  EXPECT_FALSE(unknown.agent.has_value());
  EXPECT_FALSE(unknown.dispatch.has_value());
  // Many at once (more than one round trip's worth): each answered as alone, in order.
  std::vector<Query> many;
  for (int i = 0; i < 80; ++i) {
    many.push_back(i % 2 == 0 ? Query{"gw-1", 7, std::string("order-a")}
                              : Query{"gw-" + std::to_string(60 + i), 7, std::nullopt});
  }
  const auto answers = store->ackSubjects(many).value();
  ASSERT_EQ(answers.size(), many.size());
  for (size_t i = 0; i < many.size(); ++i) {
    EXPECT_EQ(answers[i].agent, store->getAgent(many[i].agent_id).value()) << i;
    EXPECT_EQ(answers[i].dispatch.has_value(), i % 2 == 0) << i;
  }
  EXPECT_TRUE(store->ackSubjects({}).value().empty());
  // Signed again under a newer seq: the old seq is no longer its.
  sent.seq = 9;
  ASSERT_TRUE(store->putDispatch(sent).ok());
  EXPECT_FALSE(subject(7, std::string("order-a")).dispatch.has_value());
  EXPECT_EQ(subject(9, std::string("order-a")).dispatch, sent);
}

TYPED_TEST_P(StoreContractTest, PendingListsOfManyAgentsAnswerAsEachAlone) {
  auto store = this->open();
  // 150 agents (more than one etcd round trip's worth): agent i has i % 4 pending dispatches,
  // created interleaved with the others' so creation order is not key order; every fifth
  // agent also has one already applied, which is not pending.
  std::vector<std::string> ids;
  for (int i = 0; i < 150; ++i) ids.push_back("gw-" + std::to_string(i));
  for (int round = 3; round >= 1; --round) {
    for (int i = 0; i < 150; ++i) {
      if (i % 4 < round) continue;
      const std::string command = "order-" + std::to_string(round) + "-" + std::to_string(i);
      ASSERT_TRUE(store
                      ->putDispatch(DispatchRecord{ids[i], command, 0, "", 0,
                                                   DispatchState::kPending, "", 1, 0, 1})
                      .ok());
    }
  }
  for (int i = 0; i < 150; i += 5) {
    ASSERT_TRUE(store
                    ->putDispatch(DispatchRecord{ids[i], "done", 3, "{}", 0,
                                                 DispatchState::kApplied, "", 1, 2, 2})
                    .ok());
  }
  std::vector<std::string> asked = ids;
  asked.push_back("gw-3");     // asked twice
  asked.push_back("unknown");  // never seen: an empty list
  const auto lists = store->pendingDispatchesOf(asked).value();
  ASSERT_EQ(lists.size(), asked.size());
  for (size_t i = 0; i < asked.size(); ++i) {
    EXPECT_EQ(lists[i], store->pendingDispatches(asked[i]).value()) << asked[i];
  }
  EXPECT_EQ(lists[3].size(), 3u);
  EXPECT_EQ(lists[3].front().command_id, "order-3-3");  // created first
  EXPECT_EQ(lists[3].back().command_id, "order-1-3");
  EXPECT_TRUE(lists[4].empty());
  EXPECT_TRUE(lists.back().empty());
  EXPECT_TRUE(store->pendingDispatchesOf({}).value().empty());
  // In a transaction: its own writes count.
  ASSERT_TRUE(store
                  ->transaction([&]() -> Status {
                    EXPECT_TRUE(
                        store
                            ->putDispatch(DispatchRecord{"gw-4", "in-txn", 0, "", 0,
                                                         DispatchState::kPending, "", 1, 0, 1})
                            .ok());
                    const auto seen = store->pendingDispatchesOf({"gw-4", "gw-1"}).value();
                    EXPECT_EQ(seen.at(0).size(), 1u);
                    EXPECT_EQ(seen.at(1).size(), 1u);
                    return okStatus();
                  })
                  .ok());
}

REGISTER_TYPED_TEST_SUITE_P(StoreContractTest, EverythingSurvivesReopen,
                            FailedTransactionLeavesNothing, PendingDispatchesComeInCreationOrder,
                            OrdersComeNewestFirstAndDispatchesByGateway,
                            ReadsInATransactionSeeItsOwnWrites,
                            SegmentsDocumentsAndApprovalsKeepTheirRules,
                            ReadsOfManyAnswerAsReadsOfOne,
                            PendingListsOfManyAgentsAnswerAsEachAlone);

}  // namespace shadan::controller
