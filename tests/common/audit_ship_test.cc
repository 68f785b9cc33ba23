#include "common/audit_ship.h"

#include <gtest/gtest.h>

#include "tests/common/audit_test_support.h"

namespace shadan {
namespace {

using Json = nlohmann::json;
using testing::FakeClock;
using testing::readLines;
using testing::readText;
using testing::TempDir;

AuditEvent event(int n) {
  AuditEvent e;
  e.event = "test";
  e.outcome = "ok";
  e.reason = "entry number " + std::to_string(n);
  return e;
}

class AuditShipTest : public ::testing::Test {
 protected:
  AuditLogOptions options() const {
    AuditLogOptions o;
    o.path = base();
    o.log_id = "agent:gw-1";
    o.checkpoint_every_entries = 0;
    o.checkpoint_interval = std::chrono::milliseconds(0);
    return o;
  }
  std::string base() const { return dir_.file("audit.log"); }
  std::unique_ptr<AuditLog> open(AuditLogOptions o) {
    auto log = AuditLog::open(std::move(o), fs_, clock_, &signer_);
    EXPECT_TRUE(log.ok()) << log.error().message;
    return log.ok() ? std::move(*log) : nullptr;
  }
  void append(AuditLog& log, int count) {
    for (int i = 0; i < count; ++i) ASSERT_TRUE(log.append(event(appended_++)).ok());
  }
  // Every entry line of the log, in order: the rotated segments, then the current file.
  std::vector<std::string> allLines() {
    std::vector<std::string> lines;
    auto segments = listAuditSegments(fs_, base());
    EXPECT_TRUE(segments.ok());
    for (const auto& segment : *segments) {
      for (auto& line : readLines(segment.path)) lines.push_back(line);
    }
    for (auto& line : readLines(base())) lines.push_back(line);
    return lines;
  }

  TempDir dir_;
  PosixLogFileSystem fs_;
  PosixAuditFileReader reader_;
  FakeClock clock_;
  Ed25519Signer signer_{Ed25519KeyPair::generate()};
  int appended_ = 0;
};

TEST_F(AuditShipTest, CursorReadsAcrossRotatedSegmentsInOrder) {
  AuditLogOptions o = options();
  o.rotate_bytes = 700;  // a few entries per file
  auto log = open(o);
  append(*log, 25);
  auto segments = listAuditSegments(fs_, base());
  ASSERT_TRUE(segments.ok());
  ASSERT_GE(segments->size(), 3u) << "the test needs several rotated segments";
  const std::vector<std::string> expected = allLines();
  ASSERT_EQ(expected.size(), 25u);

  AuditLogCursor cursor(fs_, reader_, base());
  std::vector<std::string> got;
  while (got.size() < 25) {
    auto lines = cursor.read(got.size(), 4, 64 * 1024);
    ASSERT_TRUE(lines.ok()) << lines.error().message;
    ASSERT_FALSE(lines->empty());
    for (auto& line : *lines) got.push_back(line);
  }
  EXPECT_EQ(got, expected);
  // At the head: nothing yet; beyond it: not found.
  auto at_head = cursor.read(25, 4, 64 * 1024);
  ASSERT_TRUE(at_head.ok());
  EXPECT_TRUE(at_head->empty());
  auto beyond = cursor.read(27, 4, 64 * 1024);
  ASSERT_FALSE(beyond.ok());
  EXPECT_EQ(beyond.error().code, ErrorCode::kNotFound);
  // Seeking into the middle of a segment, and reading a segment's last entry.
  auto middle = cursor.read((*segments)[1].first_seq + 1, 1, 64 * 1024);
  ASSERT_TRUE(middle.ok());
  EXPECT_EQ(middle->front(), expected[(*segments)[1].first_seq + 1]);
  auto last = cursor.entryHash((*segments)[0].last_seq);
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(*last, auditEntryHashHex(expected[(*segments)[0].last_seq]));
}

TEST_F(AuditShipTest, CursorFollowsARotationThatHappensWhileItReads) {
  AuditLogOptions o = options();
  o.rotate_bytes = 900;
  auto log = open(o);
  append(*log, 2);
  AuditLogCursor cursor(fs_, reader_, base());
  auto first = cursor.read(0, 100, 64 * 1024);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->size(), 2u);
  // The current file is renamed under the cursor (which is at its end) and a new one begins.
  append(*log, 10);
  ASSERT_FALSE(listAuditSegments(fs_, base())->empty());
  std::vector<std::string> got = *first;
  while (got.size() < 12) {
    auto lines = cursor.read(got.size(), 100, 64 * 1024);
    ASSERT_TRUE(lines.ok()) << lines.error().message;
    ASSERT_FALSE(lines->empty());
    for (auto& line : *lines) got.push_back(line);
  }
  EXPECT_EQ(got, allLines());
}

TEST_F(AuditShipTest, CursorNeverReturnsATornTail) {
  auto log = open(options());
  append(*log, 3);
  // A write in progress (or a crash): the final line has no newline yet.
  {
    std::ofstream out(base(), std::ios::app | std::ios::binary);
    out << R"({"event":"half-writ)";
  }
  AuditLogCursor cursor(fs_, reader_, base());
  auto lines = cursor.read(0, 100, 64 * 1024);
  ASSERT_TRUE(lines.ok());
  EXPECT_EQ(lines->size(), 3u);
  auto more = cursor.read(3, 100, 64 * 1024);
  ASSERT_TRUE(more.ok());
  EXPECT_TRUE(more->empty());
}

TEST_F(AuditShipTest, CursorRespectsTheByteBudgetAndRefusesAnOversizedEntry) {
  auto log = open(options());
  append(*log, 5);
  const auto lines = allLines();
  AuditLogCursor cursor(fs_, reader_, base());
  auto two = cursor.read(0, 100, lines[0].size() + lines[1].size() + 2 + 5);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->size(), 2u);
  auto too_small = cursor.read(2, 100, 10);
  ASSERT_FALSE(too_small.ok());
  EXPECT_EQ(too_small.error().code, ErrorCode::kInvalidArgument);
}

TEST_F(AuditShipTest, CheckpointReaderReturnsOnlyNewCompleteLines) {
  auto log = open(options());
  append(*log, 2);
  ASSERT_TRUE(log->checkpoint().ok());
  AuditCheckpointReader reader(reader_, base());
  auto first = reader.readNew();
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->size(), 1u);
  EXPECT_EQ((*first)[0].size, 2u);
  EXPECT_EQ((*first)[0].line + "\n", readText(auditCheckpointsPath(base())));
  auto none = reader.readNew();
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  append(*log, 1);
  ASSERT_TRUE(log->checkpoint().ok());
  {
    std::ofstream out(auditCheckpointsPath(base()), std::ios::app | std::ios::binary);
    out << R"({"head_hash":"torn)";
  }
  auto second = reader.readNew();
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->size(), 1u);
  EXPECT_EQ((*second)[0].size, 3u);
}

TEST_F(AuditShipTest, ShipperSendsBatchesUpToEachCheckpointThenTheCheckpoint) {
  AuditLogOptions o = options();
  o.checkpoint_every_entries = 5;
  auto log = open(o);
  append(*log, 12);  // checkpoints at sizes 5 and 10
  const auto lines = allLines();
  AuditShipper shipper(fs_, reader_, base());
  auto idle = shipper.next(log->size());
  ASSERT_TRUE(idle.ok());
  EXPECT_FALSE(idle->has_value()) << "nothing is sent before audit_resume";
  ASSERT_TRUE(shipper.onResume(AuditResume{}).ok());

  std::vector<std::string> shipped;
  std::vector<uint64_t> checkpoint_sizes;
  for (int round = 0; round < 10; ++round) {
    auto message = shipper.next(log->size());
    ASSERT_TRUE(message.ok()) << message.error().message;
    if (!message->has_value()) break;
    const Json& m = **message;
    auto blocked = shipper.next(log->size());
    ASSERT_TRUE(blocked.ok());
    EXPECT_FALSE(blocked->has_value()) << "one message in flight at a time";
    if (m["type"] == kAuditEntriesType) {
      auto entries = parseAuditEntries(m);
      ASSERT_TRUE(entries.ok());
      for (auto& line : *entries) shipped.push_back(line);
      ASSERT_TRUE(shipper.onAck({shipped.size(), shipper.ackedCheckpointSize()}).ok());
    } else {
      auto line = parseAuditCheckpointMessage(m);
      ASSERT_TRUE(line.ok());
      auto checkpoint = parseCheckpointLine(*line);
      ASSERT_TRUE(checkpoint.ok());
      EXPECT_EQ(checkpoint->size, shipped.size()) << "a checkpoint follows exactly its entries";
      checkpoint_sizes.push_back(checkpoint->size);
      ASSERT_TRUE(shipper.onAck({shipped.size(), checkpoint->size}).ok());
    }
  }
  EXPECT_EQ(shipped, lines);
  EXPECT_EQ(checkpoint_sizes, (std::vector<uint64_t>{5, 10}));
  EXPECT_EQ(shipper.ackedSeq(), 12u);
  // An ack for something not in flight is refused.
  EXPECT_FALSE(shipper.onAck({12, 10}).ok());
}

TEST_F(AuditShipTest, ShipperResumesAfterTheControllersLastEntry) {
  auto log = open(options());
  append(*log, 6);
  const auto lines = allLines();
  AuditShipper shipper(fs_, reader_, base());
  ASSERT_TRUE(shipper.onResume({4, auditEntryHashHex(lines[3]), 0}).ok());
  auto message = shipper.next(log->size());
  ASSERT_TRUE(message.ok());
  ASSERT_TRUE(message->has_value());
  auto entries = parseAuditEntries(**message);
  ASSERT_TRUE(entries.ok());
  EXPECT_EQ(*entries, (std::vector<std::string>{lines[4], lines[5]}));
}

TEST_F(AuditShipTest, ShipperHaltsOnAResumePointThatIsNotThisLog) {
  auto log = open(options());
  append(*log, 3);
  AuditShipper shipper(fs_, reader_, base());
  Status wrong_hash = shipper.onResume({2, std::string(64, 'a'), 0});
  ASSERT_FALSE(wrong_hash.ok());
  EXPECT_TRUE(shipper.halted());
  EXPECT_NE(shipper.haltReason().find("log_seq 1"), std::string::npos) << shipper.haltReason();
  auto nothing = shipper.next(log->size());
  ASSERT_TRUE(nothing.ok());
  EXPECT_FALSE(nothing->has_value());

  Status beyond = shipper.onResume({9, std::string(64, 'a'), 0});
  ASSERT_FALSE(beyond.ok());
  EXPECT_TRUE(shipper.halted());
  EXPECT_NE(shipper.haltReason().find("more than this log has"), std::string::npos);
}

TEST_F(AuditShipTest, MessagesRoundTripAndRejectStrangers) {
  auto resume = parseAuditResume(auditResumeMessage({7, std::string(64, 'b'), 5}));
  ASSERT_TRUE(resume.ok());
  EXPECT_EQ(resume->next_seq, 7u);
  EXPECT_EQ(resume->checkpoint_size, 5u);
  EXPECT_FALSE(parseAuditResume(Json{{"type", "audit_resume"}, {"next_seq", 1}}).ok());
  EXPECT_FALSE(
      parseAuditAck(Json{{"type", "audit_ack"}, {"next_seq", -1}, {"checkpoint_size", 0}}).ok());
  EXPECT_FALSE(parseAuditEntries(Json{{"type", "audit"}, {"entries", Json::array()}}).ok());
  EXPECT_FALSE(parseAuditEntries(Json{{"type", "audit"}, {"entries", {"a\nb"}}}).ok());
  EXPECT_FALSE(parseAuditEntries(Json{{"type", "audit"}, {"entries", {"a"}}, {"extra", 1}}).ok());
  EXPECT_TRUE(parseAuditCheckpointMessage(auditCheckpointMessage("{}")).ok());
}

}  // namespace
}  // namespace shadan
