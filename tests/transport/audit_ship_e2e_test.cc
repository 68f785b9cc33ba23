// Audit shipping end to end on loopback: an agent's AuditLog, AuditShipper and ControllerLink
// against a real WebSocketAgentHub feeding an AuditMirror, over mutual TLS, with restarts of
// both sides. The glue on each side mirrors agents/daemon.cc and controller/main.cc.

// Boost 1.74's asio uses std::exchange without including <utility> (C++20, GCC 12).
#include <gtest/gtest.h>

#include <boost/asio/post.hpp>
#include <fstream>
#include <memory>
#include <sstream>
#include <utility>

#include "agents/controller_link.h"
#include "common/audit_ship.h"
#include "common/audit_verify.h"
#include "common/clock.h"
#include "controller/agent_audit_sessions.h"
#include "controller/agent_hub.h"
#include "controller/audit_mirror.h"
#include "tests/transport/test_pki.h"

namespace shadan {

using namespace shadan::agent;  // NOLINT: the agent under test
namespace {

using namespace shadan::controller;  // NOLINT: the controller under test

using Json = nlohmann::json;
using std::chrono::milliseconds;
using testing::runUntil;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

class AuditShipE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(testing::makeTestPki(pki_));
    agent_dir_ = pki_.dir.file("agent-state");
    controller_dir_ = pki_.dir.file("controller-state");
    std::filesystem::create_directories(agent_dir_);
    std::filesystem::create_directories(controller_dir_);
  }
  void TearDown() override {
    link_.reset();
    sessions_.reset();
    hub_.reset();
  }

  // ---- controller side: the controller's own AgentAuditSessions over a real hub ----
  void startController(uint16_t port = 0) {
    mirror_ = std::make_unique<AuditMirror>(controller_dir_, fs_, clock_, nullptr);
    if (!store_) {
      auto store = openSqliteControllerStore(controller_dir_);
      ASSERT_TRUE(store.ok()) << store.error().message;
      store_ = std::move(*store);
      AgentRecord agent;
      agent.agent_id = testing::kTestAgentId;
      agent.status = AgentStatus::kApproved;
      agent.public_key = signer_.publicKey();
      ASSERT_TRUE(store_->putAgent(agent).ok());
    }
    AgentHubOptions options;
    options.bind_address = "127.0.0.1";
    options.port = port;
    options.ca_file = pki_.ca_cert;
    options.cert_file = pki_.server_cert;
    options.key_file = pki_.server_key;
    AgentHubCallbacks callbacks;
    // The callbacks run on the io thread, after sessions_ is set below.
    callbacks.on_hello = [this](uint64_t, const std::string& agent_id, const HelloMessage&) {
      sessions_->onHello(agent_id);
      return true;
    };
    callbacks.on_disconnect = [this](const std::string& agent_id) {
      sessions_->onDisconnect(agent_id);
    };
    callbacks.on_audit = [this](const std::string& agent_id, const Json& message) {
      if (message["type"] == kAuditEntriesType) ++batches_;
      sessions_->onMessage(agent_id, message);
    };
    auto hub = WebSocketAgentHub::create(io_, std::move(options), std::move(callbacks));
    ASSERT_TRUE(hub.ok()) << hub.error().message;
    hub_ = std::move(*hub);
    // As the controller wires it: messages of one moment made durable with one sync.
    sessions_ = std::make_unique<AgentAuditSessions>(
        *store_, *mirror_, *hub_,
        [this](std::function<void()> work) { boost::asio::post(io_, std::move(work)); });
  }

  // ---- agent side (as agents/daemon.cc) ----
  void openLog() {
    AuditLogOptions o;
    o.path = agent_dir_ + "/audit.log";
    o.log_id = std::string("agent:") + testing::kTestAgentId;
    o.rotate_bytes = 2500;
    o.checkpoint_every_entries = 7;
    o.checkpoint_interval = milliseconds(0);
    auto log = AuditLog::open(std::move(o), fs_, clock_, &signer_);
    ASSERT_TRUE(log.ok()) << log.error().message;
    log_ = std::move(*log);
    shipper_ = std::make_unique<AuditShipper>(fs_, reader_, agent_dir_ + "/audit.log");
  }
  void startAgent() {
    LinkOptions options;
    options.host = "127.0.0.1";
    options.port = hub_port_;
    options.ca_file = pki_.ca_cert;
    options.cert_file = pki_.agent_cert;
    options.key_file = pki_.agent_key;
    options.controller_pin = pki_.server_pin;
    options.agent_id = testing::kTestAgentId;
    options.agent_keyid = signer_.keyId();
    options.backoff_initial = milliseconds(20);
    options.backoff_max = milliseconds(100);
    LinkCallbacks callbacks;
    callbacks.on_connected = [this] { shipper_->reset(); };
    callbacks.on_audit = [this](const Json& message) {
      if (message["type"] == kAuditResumeType) {
        // A mismatch halts the shipper (checked by the test that provokes it).
        (void)shipper_->onResume(*parseAuditResume(message));
      } else {
        EXPECT_TRUE(shipper_->onAck(*parseAuditAck(message)).ok());
      }
      pump();
    };
    link_ = std::make_unique<ControllerLink>(io_, std::move(options), std::move(callbacks), clock_);
    ASSERT_TRUE(link_->start().ok());
  }
  void pump() {
    if (!link_ || !link_->connected()) return;
    auto message = shipper_->next(log_->size());
    ASSERT_TRUE(message.ok()) << message.error().message;
    if (*message) {
      ASSERT_TRUE(link_->send(**message).ok());
    }
  }
  void append(int count) {
    for (int i = 0; i < count; ++i) {
      AuditEvent e;
      e.event = "applied";
      e.outcome = "ok";
      e.reason = "entry " + std::to_string(appended_++) + std::string(40, 'x');
      ASSERT_TRUE(log_->append(e).ok());
    }
  }
  // Until the controller's copy holds every entry and checkpoint of the agent's log.
  bool caughtUp() {
    return runUntil(
        io_,
        [this] {
          pump();
          auto resume = mirror_->resumePoint(testing::kTestAgentId);
          auto checkpoints = slurp(agent_dir_ + "/audit.log.checkpoints");
          return resume.ok() && resume->next_seq == log_->size() &&
                 slurp(copyPath() + ".checkpoints") == checkpoints;
        },
        std::chrono::seconds(10));
  }
  std::string agentEntries() {
    std::string all;
    auto segments = listAuditSegments(fs_, agent_dir_ + "/audit.log");
    EXPECT_TRUE(segments.ok());
    for (const auto& segment : *segments) all += slurp(segment.path);
    return all + slurp(agent_dir_ + "/audit.log");
  }
  std::string copyPath() const {
    return controller_dir_ + "/agents/" + testing::kTestAgentId + "/audit.log";
  }

  boost::asio::io_context io_;
  SystemClock clock_;
  testing::TestPki pki_;
  std::string agent_dir_, controller_dir_;
  PosixLogFileSystem fs_;
  PosixAuditFileReader reader_;
  Ed25519Signer signer_{Ed25519KeyPair::generate()};
  std::unique_ptr<AuditLog> log_;
  std::unique_ptr<AuditShipper> shipper_;
  std::unique_ptr<ControllerLink> link_;
  std::unique_ptr<AuditMirror> mirror_;
  std::unique_ptr<WebSocketAgentHub> hub_;
  ControllerStorePtr store_;
  std::unique_ptr<AgentAuditSessions> sessions_;
  uint16_t hub_port_ = 0;
  int appended_ = 0;
  int batches_ = 0;
};

TEST_F(AuditShipE2eTest, ShipsEverythingOnceAcrossRestartsOfBothSides) {
  ASSERT_NO_FATAL_FAILURE(openLog());
  ASSERT_NO_FATAL_FAILURE(append(30));
  ASSERT_NO_FATAL_FAILURE(startController());
  hub_port_ = hub_->port();
  ASSERT_NO_FATAL_FAILURE(startAgent());
  ASSERT_TRUE(caughtUp()) << "first shipment";
  ASSERT_GE(listAuditSegments(fs_, agent_dir_ + "/audit.log")->size(), 2u)
      << "the log must span rotated segments";
  EXPECT_EQ(slurp(copyPath()), agentEntries());

  // Entries written while connected arrive promptly.
  ASSERT_NO_FATAL_FAILURE(append(3));
  ASSERT_TRUE(caughtUp()) << "live entries";

  // The controller restarts (new hub and mirror on the same directory and port); the agent
  // writes while it is away.
  sessions_.reset();
  hub_.reset();
  mirror_.reset();
  testing::runFor(io_, milliseconds(100));
  ASSERT_NO_FATAL_FAILURE(append(9));
  ASSERT_NO_FATAL_FAILURE(startController(hub_port_));
  ASSERT_TRUE(caughtUp()) << "after the controller restart";
  EXPECT_EQ(slurp(copyPath()), agentEntries());

  // The agent restarts: the link goes, the log is closed (a final checkpoint) and reopened.
  link_.reset();
  ASSERT_TRUE(log_->close().ok());
  ASSERT_NO_FATAL_FAILURE(openLog());
  ASSERT_NO_FATAL_FAILURE(append(4));
  ASSERT_NO_FATAL_FAILURE(startAgent());
  ASSERT_TRUE(caughtUp()) << "after the agent restart";

  // Nothing lost, nothing duplicated: the copy is the agent's log byte for byte, and it
  // verifies with the agent's key.
  EXPECT_EQ(slurp(copyPath()), agentEntries());
  EXPECT_EQ(slurp(copyPath() + ".checkpoints"), slurp(agent_dir_ + "/audit.log.checkpoints"));
  auto report =
      verifyAuditLog(fs_, copyPath(), {PublicKeyInfo{signer_.keyId(), signer_.publicKey(), {}}});
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->valid) << report->error->message;
  EXPECT_EQ(report->entries, 46u);
  EXPECT_GE(report->signatures_verified, 6u);
  EXPECT_TRUE(mirror_->alarms().empty());
}

TEST_F(AuditShipE2eTest, AgentStopsAtAResumePointThatDoesNotMatchItsLog) {
  // The controller's copy holds a different history under the same name (e.g. the agent's
  // log was replaced): the agent ships nothing.
  ASSERT_NO_FATAL_FAILURE(openLog());
  ASSERT_NO_FATAL_FAILURE(append(3));
  {
    const std::string other_dir = pki_.dir.file("other-agent");
    std::filesystem::create_directories(other_dir);
    AuditLogOptions o;
    o.path = other_dir + "/audit.log";
    o.log_id = std::string("agent:") + testing::kTestAgentId;
    o.checkpoint_every_entries = 0;
    o.checkpoint_interval = milliseconds(0);
    auto forged = AuditLog::open(std::move(o), fs_, clock_, &signer_);
    ASSERT_TRUE(forged.ok());
    AuditEvent e;
    e.event = "other";
    ASSERT_TRUE((*forged)->append(e).ok());
    std::filesystem::create_directories(std::filesystem::path(copyPath()).parent_path());
    std::filesystem::copy_file(other_dir + "/audit.log", copyPath());
  }
  ASSERT_NO_FATAL_FAILURE(startController());
  hub_port_ = hub_->port();
  ASSERT_NO_FATAL_FAILURE(startAgent());
  ASSERT_TRUE(runUntil(io_, [this] { return shipper_->halted(); }));
  testing::runFor(io_, milliseconds(200));
  EXPECT_EQ(batches_, 0);
  EXPECT_NE(shipper_->haltReason().find("log_seq 0"), std::string::npos) << shipper_->haltReason();
}

}  // namespace
}  // namespace shadan
