#include "controller/audit_mirror.h"

#include <gtest/gtest.h>

#include "common/audit_verify.h"
#include "tests/common/audit_test_support.h"
#include "tests/fakes/fake_audit_sink.h"

namespace shadan::controller {
namespace {

using Json = nlohmann::json;
using testing::FakeAuditSink;
using testing::FakeClock;
using testing::readLines;
using testing::readText;
using testing::TempDir;

class AuditMirrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(agent_dir_.path());
    AuditLogOptions o;
    o.path = agent_dir_.file("audit.log");
    o.log_id = "agent:gw-1";
    o.checkpoint_every_entries = 0;
    o.checkpoint_interval = std::chrono::milliseconds(0);
    auto log = AuditLog::open(std::move(o), fs_, clock_, &signer_);
    ASSERT_TRUE(log.ok()) << log.error().message;
    log_ = std::move(*log);
    mirror_ = makeMirror();
  }
  std::unique_ptr<AuditMirror> makeMirror() {
    return std::make_unique<AuditMirror>(controller_dir_.path(), fs_, clock_, &sink_);
  }
  void append(int count) {
    for (int i = 0; i < count; ++i) {
      AuditEvent e;
      e.event = "test";
      e.reason = "n=" + std::to_string(appended_++);
      ASSERT_TRUE(log_->append(e).ok());
    }
  }
  std::vector<std::string> agentLines() { return readLines(agent_dir_.file("audit.log")); }
  std::vector<std::string> lastCheckpoint() {
    auto lines = readLines(agent_dir_.file("audit.log.checkpoints"));
    return {lines.back()};
  }
  std::string copyPath() const { return controller_dir_.path() + "/agents/gw-1/audit.log"; }
  std::vector<std::string> slice(size_t from, size_t to) {
    auto lines = agentLines();
    return std::vector<std::string>(lines.begin() + static_cast<long>(from),
                                    lines.begin() + static_cast<long>(to));
  }
  void expectAlarm(const std::string& fragment) {
    ASSERT_EQ(mirror_->alarms().size(), 1u);
    EXPECT_NE(mirror_->alarms()[0].reason.find(fragment), std::string::npos)
        << mirror_->alarms()[0].reason;
    ASSERT_FALSE(sink_.events.empty());
    EXPECT_EQ(sink_.events.back().event, kAgentAuditChainBreakEvent);
    EXPECT_TRUE(mirror_->broken("gw-1"));
    EXPECT_TRUE(std::filesystem::exists(controller_dir_.path() + "/agents/gw-1/audit.break"));
  }

  TempDir agent_dir_;
  TempDir controller_dir_;
  PosixLogFileSystem fs_;
  FakeClock clock_;
  Ed25519Signer signer_{Ed25519KeyPair::generate()};
  std::unique_ptr<AuditLog> log_;
  FakeAuditSink sink_;
  std::unique_ptr<AuditMirror> mirror_;
  int appended_ = 0;
};

TEST_F(AuditMirrorTest, StoresEntriesAndCheckpointsThatVerifyWithTheAgentKey) {
  append(4);
  ASSERT_TRUE(log_->checkpoint().ok());
  auto resume = mirror_->resumePoint("gw-1");
  ASSERT_TRUE(resume.ok());
  EXPECT_EQ(resume->next_seq, 0u);
  EXPECT_EQ(resume->prev_hash, kAuditZeroHash);
  auto ack = mirror_->storeEntries("gw-1", agentLines());
  ASSERT_TRUE(ack.ok()) << ack.error().message;
  EXPECT_EQ(ack->next_seq, 4u);
  auto checkpoint_ack = mirror_->storeCheckpoint("gw-1", lastCheckpoint()[0], signer_.publicKey());
  ASSERT_TRUE(checkpoint_ack.ok()) << checkpoint_ack.error().message;
  EXPECT_EQ(checkpoint_ack->checkpoint_size, 4u);

  EXPECT_EQ(readText(copyPath()), readText(agent_dir_.file("audit.log")));
  EXPECT_EQ(readText(copyPath() + ".checkpoints"),
            readText(agent_dir_.file("audit.log.checkpoints")));
  auto report = verifyAuditLog(fs_, copyPath(),
                               {PublicKeyInfo{signer_.keyId(), signer_.publicKey(), std::nullopt}});
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->valid) << report->error->message;
  EXPECT_EQ(report->entries, 4u);
  EXPECT_EQ(report->signatures_verified, 1u);
  EXPECT_TRUE(mirror_->alarms().empty());
  EXPECT_TRUE(sink_.events.empty());
}

// GET /v1/status's "last_repair": the newest repair entry the agent shipped, kept across a
// restart of the controller (read back from the copy).
TEST_F(AuditMirrorTest, RemembersTheNewestRepairTheAgentShipped) {
  append(2);
  ASSERT_TRUE(mirror_->storeEntries("gw-1", slice(0, 2)).ok());
  EXPECT_FALSE(mirror_->lastRepair("gw-1").has_value());
  for (const char* event : {"repaired", "test", "routes_repaired", "test"}) {
    AuditEvent e;
    e.event = event;
    ASSERT_TRUE(log_->append(e).ok());
  }
  ASSERT_TRUE(mirror_->storeEntries("gw-1", slice(2, 6)).ok());
  auto repair = mirror_->lastRepair("gw-1");
  ASSERT_TRUE(repair.has_value());
  EXPECT_EQ(repair->log_seq, 4u);
  EXPECT_EQ(repair->event, "routes_repaired");
  EXPECT_FALSE(repair->ts.empty());
  EXPECT_FALSE(mirror_->lastRepair("gw-2").has_value());

  mirror_ = makeMirror();
  mirror_->loadExisting();
  auto reloaded = mirror_->lastRepair("gw-1");
  ASSERT_TRUE(reloaded.has_value());
  EXPECT_EQ(reloaded->log_seq, 4u);
  EXPECT_EQ(mirror_->agentIds(), std::vector<std::string>{"gw-1"});
}

TEST_F(AuditMirrorTest, DeferredWritesBecomeDurableWithOneSyncOfTheFileSystem) {
  testing::RecordingFileSystem recording;
  AuditMirror mirror(controller_dir_.path(), recording, clock_, &sink_);
  append(4);
  ASSERT_TRUE(mirror.resumePoint("gw-1").ok());
  recording.ops.clear();
  auto first = mirror.storeEntries("gw-1", slice(0, 2), MirrorSync::kDeferred);
  auto second = mirror.storeEntries("gw-1", slice(2, 4), MirrorSync::kDeferred);
  ASSERT_TRUE(first.ok()) << first.error().message;
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(second->next_seq, 4u);
  // Written, nothing synced yet: the acks must wait.
  EXPECT_EQ(recording.ops, (std::vector<std::string>{"append audit.log", "append audit.log"}));
  ASSERT_TRUE(mirror.syncDeferred().ok());
  EXPECT_EQ(recording.ops.back(), "syncfs");
  EXPECT_EQ(readText(copyPath()), readText(agent_dir_.file("audit.log")));
  recording.ops.clear();
  ASSERT_TRUE(mirror.syncDeferred().ok());  // nothing written since: no sync
  EXPECT_TRUE(recording.ops.empty());
}

TEST_F(AuditMirrorTest, AFailedDeferredSyncForgetsTheCopyWhichReloadsFromTheFile) {
  testing::RecordingFileSystem recording;
  AuditMirror mirror(controller_dir_.path(), recording, clock_, &sink_);
  append(4);
  ASSERT_TRUE(mirror.storeEntries("gw-1", slice(0, 2), MirrorSync::kDeferred).ok());
  recording.fail_syncs = true;
  EXPECT_FALSE(mirror.syncDeferred().ok());
  recording.fail_syncs = false;
  // The agent had no ack and sends again: what reached the file is a duplicate, the rest new.
  auto ack = mirror.storeEntries("gw-1", slice(0, 4));
  ASSERT_TRUE(ack.ok()) << ack.error().message;
  EXPECT_EQ(ack->next_seq, 4u);
  EXPECT_EQ(readText(copyPath()), readText(agent_dir_.file("audit.log")));
  EXPECT_TRUE(mirror.alarms().empty());
}

TEST_F(AuditMirrorTest, IdenticalDuplicatesAreIgnored) {
  append(5);
  ASSERT_TRUE(mirror_->storeEntries("gw-1", slice(0, 3)).ok());
  auto ack = mirror_->storeEntries("gw-1", slice(1, 5));  // 1, 2 again, then 3, 4
  ASSERT_TRUE(ack.ok()) << ack.error().message;
  EXPECT_EQ(ack->next_seq, 5u);
  EXPECT_EQ(readText(copyPath()), readText(agent_dir_.file("audit.log")));
  EXPECT_TRUE(mirror_->alarms().empty());
}

TEST_F(AuditMirrorTest, AChangedDuplicateRaisesAnAlarmAndStopsStoring) {
  append(3);
  ASSERT_TRUE(mirror_->storeEntries("gw-1", slice(0, 3)).ok());
  std::string changed = slice(1, 2)[0];
  changed.replace(changed.find("n=1"), 3, "n=9");
  auto refused = mirror_->storeEntries("gw-1", {changed});
  ASSERT_FALSE(refused.ok());
  expectAlarm("differs from the stored copy");
  EXPECT_EQ(mirror_->alarms()[0].seq, 1u);
  // Stopped: even a valid continuation is not stored, and no resume is offered.
  append(1);
  EXPECT_FALSE(mirror_->storeEntries("gw-1", slice(3, 4)).ok());
  EXPECT_FALSE(mirror_->resumePoint("gw-1").ok());
  EXPECT_EQ(readLines(copyPath()).size(), 3u);
}

TEST_F(AuditMirrorTest, AGapRaisesAnAlarm) {
  append(4);
  ASSERT_TRUE(mirror_->storeEntries("gw-1", slice(0, 1)).ok());
  EXPECT_FALSE(mirror_->storeEntries("gw-1", slice(2, 4)).ok());
  expectAlarm("gap");
  EXPECT_EQ(readLines(copyPath()).size(), 1u);
}

TEST_F(AuditMirrorTest, ReorderedEntriesRaiseAnAlarmAfterKeepingTheGoodPrefix) {
  append(4);
  auto lines = agentLines();
  EXPECT_FALSE(mirror_->storeEntries("gw-1", {lines[0], lines[1], lines[3], lines[2]}).ok());
  expectAlarm("gap");
  EXPECT_EQ(readLines(copyPath()), slice(0, 2));
}

TEST_F(AuditMirrorTest, AForeignLogIdRaisesAnAlarm) {
  append(1);
  EXPECT_FALSE(mirror_->storeEntries("gw-2", agentLines()).ok());
  ASSERT_EQ(mirror_->alarms().size(), 1u);
  EXPECT_EQ(mirror_->alarms()[0].agent_id, "gw-2");
  EXPECT_NE(mirror_->alarms()[0].reason.find("log_id"), std::string::npos);
}

TEST_F(AuditMirrorTest, ACheckpointSignedByAnotherKeyRaisesAnAlarm) {
  append(2);
  ASSERT_TRUE(log_->checkpoint().ok());
  ASSERT_TRUE(mirror_->storeEntries("gw-1", agentLines()).ok());
  Ed25519Signer other{Ed25519KeyPair::generate()};
  EXPECT_FALSE(mirror_->storeCheckpoint("gw-1", lastCheckpoint()[0], other.publicKey()).ok());
  expectAlarm("signature");
  EXPECT_EQ(readText(copyPath() + ".checkpoints"), "");
}

TEST_F(AuditMirrorTest, ACheckpointOverRewrittenEntriesRaisesAnAlarm) {
  // The controller holds entries that differ from what the agent's checkpoint covers (the
  // agent's log was rewritten with a recomputed chain after shipping).
  append(2);
  ASSERT_TRUE(mirror_->storeEntries("gw-1", agentLines()).ok());
  TempDir rewritten_dir;
  AuditLogOptions o;
  o.path = rewritten_dir.file("audit.log");
  o.log_id = "agent:gw-1";
  o.checkpoint_every_entries = 0;
  o.checkpoint_interval = std::chrono::milliseconds(0);
  auto rewritten = AuditLog::open(o, fs_, clock_, &signer_);
  ASSERT_TRUE(rewritten.ok());
  for (int i = 0; i < 2; ++i) {
    AuditEvent e;
    e.event = "test";
    e.reason = "rewritten " + std::to_string(i);
    ASSERT_TRUE((*rewritten)->append(e).ok());
  }
  ASSERT_TRUE((*rewritten)->checkpoint().ok());
  const auto line = readLines(rewritten_dir.file("audit.log.checkpoints")).back();
  EXPECT_FALSE(mirror_->storeCheckpoint("gw-1", line, signer_.publicKey()).ok());
  expectAlarm("does not match the stored entries");
}

TEST_F(AuditMirrorTest, AnEarlierCheckpointIsCheckedAgainstTheStoredPrefix) {
  append(3);
  ASSERT_TRUE(log_->checkpoint().ok());
  const std::string at3 = lastCheckpoint()[0];
  append(2);
  ASSERT_TRUE(mirror_->storeEntries("gw-1", agentLines()).ok());
  auto ack = mirror_->storeCheckpoint("gw-1", at3, signer_.publicKey());
  ASSERT_TRUE(ack.ok()) << ack.error().message;
  EXPECT_EQ(ack->checkpoint_size, 3u);
  // The same line again is a harmless duplicate.
  EXPECT_TRUE(mirror_->storeCheckpoint("gw-1", at3, signer_.publicKey()).ok());
  EXPECT_TRUE(mirror_->alarms().empty());
}

TEST_F(AuditMirrorTest, ARestartedMirrorResumesFromDiskAndKeepsAlarms) {
  append(3);
  ASSERT_TRUE(log_->checkpoint().ok());
  ASSERT_TRUE(mirror_->storeEntries("gw-1", agentLines()).ok());
  ASSERT_TRUE(mirror_->storeCheckpoint("gw-1", lastCheckpoint()[0], signer_.publicKey()).ok());
  mirror_ = makeMirror();
  auto resume = mirror_->resumePoint("gw-1");
  ASSERT_TRUE(resume.ok());
  EXPECT_EQ(resume->next_seq, 3u);
  EXPECT_EQ(resume->prev_hash, log_->headHash());
  EXPECT_EQ(resume->checkpoint_size, 3u);
  append(1);
  auto ack = mirror_->storeEntries("gw-1", slice(3, 4));
  ASSERT_TRUE(ack.ok()) << ack.error().message;
  EXPECT_EQ(ack->next_seq, 4u);

  // A torn final line in the copy (a controller crash mid-write) is moved aside at load.
  mirror_.reset();
  {
    std::ofstream out(copyPath(), std::ios::app | std::ios::binary);
    out << R"({"event":"to)";
  }
  mirror_ = makeMirror();
  auto after_tear = mirror_->resumePoint("gw-1");
  ASSERT_TRUE(after_tear.ok()) << after_tear.error().message;
  EXPECT_EQ(after_tear->next_seq, 4u);
  EXPECT_EQ(readText(copyPath()), readText(agent_dir_.file("audit.log")));

  // A break survives a restart.
  EXPECT_FALSE(mirror_->storeEntries("gw-1", {"{}"}).ok());
  mirror_ = makeMirror();
  mirror_->loadExisting();
  ASSERT_EQ(mirror_->alarms().size(), 1u);
  EXPECT_NE(mirror_->alarms()[0].reason.find("malformed"), std::string::npos);
  EXPECT_FALSE(mirror_->resumePoint("gw-1").ok());
}

TEST_F(AuditMirrorTest, RefusesAgentIdsThatAreNotSafeFileNames) {
  EXPECT_FALSE(mirror_->logPath("../etc").ok());
  EXPECT_FALSE(mirror_->logPath(".hidden").ok());
  EXPECT_FALSE(mirror_->logPath("a/b").ok());
  EXPECT_TRUE(mirror_->logPath("core-gw_1.x").ok());
}

}  // namespace
}  // namespace shadan::controller
