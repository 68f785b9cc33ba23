#include "common/audit_log.h"

#include <gtest/gtest.h>

#include <cerrno>

#include "common/audit_verify.h"
#include "common/sha256.h"
#include "tests/common/audit_test_support.h"

namespace shadan {
namespace {

using testing::FakeClock;
using testing::readLines;
using testing::readText;
using testing::RecordingFileSystem;
using testing::sampleEvent;
using testing::TempDir;
using testing::writeText;

class AuditLogTest : public ::testing::Test {
 protected:
  AuditLogOptions options() const {
    AuditLogOptions o;
    o.path = dir_.file("audit.log");
    o.log_id = "agent:core-gw";
    o.checkpoint_every_entries = 0;
    o.checkpoint_interval = std::chrono::milliseconds(0);
    return o;
  }
  std::unique_ptr<AuditLog> open(AuditLogOptions o) {
    auto log = AuditLog::open(std::move(o), fs_, clock_, &signer_);
    EXPECT_TRUE(log.ok()) << log.error().message;
    return log.ok() ? std::move(*log) : nullptr;
  }
  AuditVerifyReport verify(std::vector<PublicKeyInfo> keys = {}) {
    auto report = verifyAuditLog(fs_, dir_.file("audit.log"), keys);
    EXPECT_TRUE(report.ok());
    return std::move(*report);
  }
  PublicKeyInfo signerKey() const {
    return PublicKeyInfo{signer_.keyId(), signer_.publicKey(), std::nullopt};
  }

  TempDir dir_;
  RecordingFileSystem fs_;
  FakeClock clock_;
  Ed25519Signer signer_{Ed25519KeyPair::generate()};
};

TEST_F(AuditLogTest, AppendsHashChainedLines) {
  auto log = open(options());
  std::vector<AuditReceipt> receipts;
  for (int i = 0; i < 3; ++i) {
    auto receipt = log->append(sampleEvent(i));
    ASSERT_TRUE(receipt.ok()) << receipt.error().message;
    receipts.push_back(*receipt);
    clock_.advance(std::chrono::milliseconds(1500));
  }
  const auto lines = readLines(dir_.file("audit.log"));
  ASSERT_EQ(lines.size(), 3u);
  std::string prev(kAuditZeroHash);
  for (size_t i = 0; i < lines.size(); ++i) {
    auto record = parseAuditLine(lines[i]);
    ASSERT_TRUE(record.ok()) << record.error().message;
    EXPECT_EQ(record->log_seq, i);
    EXPECT_EQ(record->log_id, "agent:core-gw");
    EXPECT_EQ(record->prev_hash, prev);
    EXPECT_EQ(record->event, sampleEvent(static_cast<int>(i)));
    EXPECT_EQ(receipts[i].log_seq, i);
    // entry_hash = SHA-256(0x00 || line): check against the generic hex helper.
    EXPECT_EQ(receipts[i].entry_hash, sha256Hex(std::string(1, '\0') + lines[i]));
    prev = receipts[i].entry_hash;
  }
  EXPECT_EQ(parseAuditLine(lines[0])->ts, "2026-11-18T11:06:40.000Z");
  EXPECT_EQ(parseAuditLine(lines[1])->ts, "2026-11-18T11:06:41.500Z");
  // Absent optionals are omitted, not null.
  EXPECT_EQ(lines[0].find("null"), std::string::npos);
  EXPECT_EQ(lines[0].find("\"who\""), std::string::npos);
  EXPECT_EQ(log->headHash(), receipts.back().entry_hash);
  EXPECT_TRUE(verify().valid);
}

TEST_F(AuditLogTest, EveryFieldRoundTrips) {
  AuditEvent event;
  event.event = "applied";
  event.outcome = "ok";
  event.reason = "r";
  event.who = AuditWho{"op:sato", std::vector<std::string>{"op:ito"},
                       std::vector<std::string>{"ab", "cd"}, "ctl-1"};
  event.what = AuditWhat{"isolate", "lgwan", "full", "h1", "h2"};
  event.why = AuditWhy{"JPCERT notice", "INC-4711"};
  event.where = AuditWhere{"core-gw", "gw1.example", "0.1.0"};
  event.command_id = "c";
  event.correlation_id = "inc-4711";
  event.seq = 1842;
  event.authz_sha256 = "ff";
  event.drill = false;
  event.detail = nlohmann::json{{"pid", 4242}, {"comm", "nft"}};
  AuditRecord record{"log", 7, "2026-11-26T10:01:00.000Z", std::string(kAuditZeroHash), event};
  auto line = formatAuditLine(record);
  ASSERT_TRUE(line.ok());
  auto parsed = parseAuditLine(*line);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->event, event);
  EXPECT_EQ(formatAuditLine(*parsed).value(), *line);  // deterministic bytes
}

TEST_F(AuditLogTest, StrictParsingNamesTheProblem) {
  const std::string zeros(kAuditZeroHash);
  const std::string head =
      R"({"log_id":"l","log_seq":0,"ts":"2026-11-26T10:01:00.000Z","prev_hash":")" + zeros + "\"";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {head + R"(,"event":"x","event":"y"})", "duplicate key"},
      {head + R"(,"event":"x","colour":"red"})", "unknown field"},
      {head + "}", "missing field \"event\""},
      {head + R"(,"event":"x","seq":-1})", "\"seq\" must be a non-negative integer"},
      {head + R"(,"event":"x","drill":"no"})", "\"drill\" must be true or false"},
      {head + R"(,"event":"x","who":{"approvers":"op"}})", "\"who.approvers\" must be an array"},
      {head + R"(,"event":"x","detail":{"load":0.5}})", "floating-point"},
      {R"({"log_id":"l","log_seq":0,"ts":"yesterday","prev_hash":")" + zeros + R"(","event":"x"})",
       "RFC 3339"},
  };
  for (const auto& [line, expected] : cases) {
    auto parsed = parseAuditLine(line);
    ASSERT_FALSE(parsed.ok()) << line;
    EXPECT_NE(parsed.error().message.find(expected), std::string::npos) << parsed.error().message;
  }
  AuditEvent with_float = sampleEvent(0);
  with_float.detail = nlohmann::json{{"x", 1.5}};
  auto log = open(options());
  EXPECT_EQ(log->append(with_float).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(log->size(), 0u);
}

TEST_F(AuditLogTest, AppendReturnsOnlyAfterFdatasync) {
  auto log = open(options());
  fs_.ops.clear();
  ASSERT_TRUE(log->append(sampleEvent(0)).ok());
  EXPECT_EQ(fs_.ops, (std::vector<std::string>{"append audit.log", "sync audit.log"}));
}

TEST_F(AuditLogTest, BufferedAppendIsSyncedByTheNextAppend) {
  auto log = open(options());
  fs_.ops.clear();
  ASSERT_TRUE(log->appendBuffered(sampleEvent(0)).ok());
  EXPECT_EQ(fs_.ops, (std::vector<std::string>{"append audit.log"}));
  ASSERT_TRUE(log->append(sampleEvent(1)).ok());
  // One fdatasync covers both entries.
  EXPECT_EQ(fs_.ops,
            (std::vector<std::string>{"append audit.log", "append audit.log", "sync audit.log"}));
  EXPECT_TRUE(verify().valid);
}

TEST_F(AuditLogTest, CheckpointNeverCoversAnUnsyncedEntry) {
  AuditLogOptions o = options();
  o.checkpoint_every_entries = 1;  // due after every entry
  auto log = open(o);
  fs_.ops.clear();
  ASSERT_TRUE(log->appendBuffered(sampleEvent(0)).ok());
  // No checkpoint behind a buffered entry...
  EXPECT_EQ(fs_.ops, (std::vector<std::string>{"append audit.log"}));
  EXPECT_TRUE(readLines(dir_.file("audit.log.checkpoints")).empty());
  // ...and an explicit one syncs the log first.
  ASSERT_TRUE(log->checkpoint().ok());
  ASSERT_GE(fs_.ops.size(), 2u);
  EXPECT_EQ(fs_.ops[1], "sync audit.log");
  EXPECT_EQ(readLines(dir_.file("audit.log.checkpoints")).size(), 1u);
  // close() syncs a pending buffered entry even with nothing else to do.
  ASSERT_TRUE(log->appendBuffered(sampleEvent(1)).ok());
  fs_.ops.clear();
  ASSERT_TRUE(log->close().ok());
  ASSERT_FALSE(fs_.ops.empty());
  EXPECT_EQ(fs_.ops[0], "sync audit.log");
  EXPECT_TRUE(verify({signerKey()}).valid);
}

TEST_F(AuditLogTest, FailedSyncStopsTheLog) {
  auto log = open(options());
  ASSERT_TRUE(log->append(sampleEvent(0)).ok());
  fs_.fail_syncs = true;
  auto failed = log->append(sampleEvent(1));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, ErrorCode::kIo);
  fs_.fail_syncs = false;
  // Sticky: the file's state is unknown after a failed fdatasync.
  auto after = log->append(sampleEvent(2));
  ASSERT_FALSE(after.ok());
  EXPECT_NE(after.error().message.find("not writable"), std::string::npos);
}

// A full disk refuses the entry, and the half line it took is cut off: the log stays whole and
// writable, and the next entry (once there is room) continues the chain.
TEST_F(AuditLogTest, FullDiskRefusesTheEntryAndTheLogGoesOn) {
  auto log = open(options());
  ASSERT_TRUE(log->append(sampleEvent(0)).ok());
  fs_.no_space_appends = 1;
  auto refused = log->append(sampleEvent(1));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kNoSpace);
  EXPECT_EQ(readLines(dir_.file("audit.log")).size(), 1u);
  auto next = log->append(sampleEvent(1));
  ASSERT_TRUE(next.ok()) << next.error().message;
  EXPECT_EQ(next->log_seq, 1u);
  ASSERT_TRUE(log->close().ok());
  EXPECT_EQ(readLines(dir_.file("audit.log")).size(), 2u);
  EXPECT_TRUE(verify({signerKey()}).valid);
}

// The real file system says kNoSpace for ENOSPC (/dev/full answers every write with it).
TEST(PosixLogFileSystemTest, AWriteToAFullDeviceIsNoSpace) {
  PosixLogFileSystem fs;
  auto file = fs.openForAppend("/dev/full");
  ASSERT_TRUE(file.ok()) << file.error().message;
  const Status written = (*file)->append("entry\n");
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.error().code, ErrorCode::kNoSpace) << written.error().message;
  EXPECT_EQ(writeErrorCode(EDQUOT), ErrorCode::kNoSpace);
  EXPECT_EQ(writeErrorCode(EIO), ErrorCode::kIo);
}

TEST_F(AuditLogTest, ReopenContinuesTheChain) {
  std::string head;
  {
    auto log = open(options());
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(log->append(sampleEvent(i)).ok());
    head = log->headHash();
    ASSERT_TRUE(log->close().ok());
    EXPECT_FALSE(log->append(sampleEvent(9)).ok());
  }
  auto log = open(options());
  EXPECT_EQ(log->size(), 4u);
  EXPECT_EQ(log->headHash(), head);
  auto receipt = log->append(sampleEvent(4));
  ASSERT_TRUE(receipt.ok());
  EXPECT_EQ(receipt->log_seq, 4u);
  EXPECT_EQ(parseAuditLine(readLines(dir_.file("audit.log"))[4])->prev_hash, head);
  auto report = verify({signerKey()});
  EXPECT_TRUE(report.valid) << report.error->message;
  EXPECT_EQ(report.entries, 5u);
  EXPECT_TRUE(log->recoveries().empty());
}

TEST_F(AuditLogTest, TornTailIsMovedAsideRecordedAndVerified) {
  {
    auto log = open(options());
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(log->append(sampleEvent(i)).ok());
  }
  // A crash in the middle of the fourth append: half a line, no newline.
  const std::string good = readText(dir_.file("audit.log"));
  const std::string torn = R"({"event":"applied","log_id":"agent:core-gw","log_s)";
  writeText(dir_.file("audit.log"), good + torn);

  // Before the agent reopens: verify says valid up to log_seq 2 and names the torn line 4.
  AuditVerifyReport before = verify();
  EXPECT_TRUE(before.valid);
  ASSERT_TRUE(before.torn_tail.has_value());
  EXPECT_EQ(before.torn_tail->line, 4u);
  EXPECT_EQ(before.torn_tail->log_seq, 3u);
  EXPECT_NE(before.torn_tail->message.find("valid up to log_seq 2"), std::string::npos)
      << before.torn_tail->message;
  EXPECT_EQ(before.entries, 3u);

  auto log = open(options());
  ASSERT_EQ(log->recoveries().size(), 1u);
  const AuditRecovery recovery = log->recoveries()[0];
  EXPECT_EQ(recovery.event, kAuditTornTailEvent);
  EXPECT_EQ(recovery.log_seq, 3u);
  EXPECT_EQ(recovery.bytes, torn.size());
  EXPECT_EQ(recovery.sha256, sha256Hex(torn));
  EXPECT_EQ(recovery.moved_to, "audit.log.torn-3");
  EXPECT_EQ(readText(dir_.file("audit.log.torn-3")), torn);  // kept, not dropped
  auto next = log->append(sampleEvent(3));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->log_seq, 4u);

  const auto lines = readLines(dir_.file("audit.log"));
  ASSERT_EQ(lines.size(), 5u);
  auto entry = parseAuditLine(lines[3]);
  ASSERT_TRUE(entry.ok());
  EXPECT_EQ(entry->event.event, "log_torn_tail_recovered");
  EXPECT_EQ((*entry->event.detail)["torn_bytes"], torn.size());
  EXPECT_EQ((*entry->event.detail)["torn_sha256"], sha256Hex(torn));

  AuditVerifyReport after = verify();
  EXPECT_TRUE(after.valid);
  EXPECT_FALSE(after.torn_tail.has_value());
  ASSERT_EQ(after.recoveries.size(), 1u);
  EXPECT_EQ(after.recoveries[0].log_seq, 3u);
  EXPECT_TRUE(after.recoveries[0].aside_file_matches);

  // Evidence removed afterwards is reported.
  std::filesystem::remove(dir_.file("audit.log.torn-3"));
  AuditVerifyReport gone = verify();
  ASSERT_EQ(gone.recoveries.size(), 1u);
  EXPECT_FALSE(gone.recoveries[0].aside_file_matches);
}

TEST_F(AuditLogTest, InvalidFinalLineWithNewlineIsTreatedAsTorn) {
  {
    auto log = open(options());
    for (int i = 0; i < 2; ++i) ASSERT_TRUE(log->append(sampleEvent(i)).ok());
  }
  writeText(dir_.file("audit.log"), readText(dir_.file("audit.log")) + std::string(7, '\0') + "\n");
  auto log = open(options());
  ASSERT_EQ(log->recoveries().size(), 1u);
  EXPECT_EQ(log->recoveries()[0].bytes, 8u);
  EXPECT_TRUE(verify().valid);
}

TEST_F(AuditLogTest, CorruptionBeforeTheFinalLineFollowsThePolicy) {
  {
    auto log = open(options());
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(log->append(sampleEvent(i)).ok());
  }
  auto lines = readLines(dir_.file("audit.log"));
  lines[2][lines[2].find("cmd-2")] = 'C';
  testing::writeLines(dir_.file("audit.log"), lines);

  auto refused = AuditLog::open(options(), fs_, clock_, &signer_);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("line 4"), std::string::npos) << refused.error().message;

  AuditLogOptions move_aside = options();
  move_aside.on_corruption = CorruptionPolicy::kMoveAsideAndRecord;
  auto log = open(move_aside);
  ASSERT_EQ(log->recoveries().size(), 1u);
  EXPECT_EQ(log->recoveries()[0].event, kAuditCorruptTailEvent);
  EXPECT_EQ(log->recoveries()[0].log_seq, 3u);
  EXPECT_EQ(readLines(dir_.file("audit.log.torn-3")).size(), 2u);
  EXPECT_TRUE(verify().valid);
}

TEST_F(AuditLogTest, RotationKeepsTheChainAcrossFiles) {
  AuditLogOptions o = options();
  o.rotate_bytes = 1000;  // a few entries per file
  o.checkpoint_every_entries = 7;
  std::string head;
  {
    auto log = open(o);
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(log->append(sampleEvent(i)).ok());
    head = log->headHash();
  }
  auto segments = listAuditSegments(fs_, o.path);
  ASSERT_TRUE(segments.ok());
  ASSERT_GE(segments->size(), 3u);
  EXPECT_EQ((*segments)[0].first_seq, 0u);
  for (size_t i = 1; i < segments->size(); ++i) {
    EXPECT_EQ((*segments)[i].first_seq, (*segments)[i - 1].last_seq + 1);
    // The first entry of each file links to the last entry of the previous file.
    const auto previous = readLines((*segments)[i - 1].path);
    EXPECT_EQ(parseAuditLine(readLines((*segments)[i].path)[0])->prev_hash,
              auditEntryHashHex(previous.back()));
  }
  AuditVerifyReport report = verify({signerKey()});
  EXPECT_TRUE(report.valid) << report.error->message;
  EXPECT_EQ(report.entries, 20u);
  EXPECT_EQ(report.checkpoints, 2u);
  EXPECT_EQ(report.checkpoints_matched, 2u);
  EXPECT_EQ(report.files.size(), segments->size() + 1);

  auto log = open(o);
  EXPECT_EQ(log->size(), 20u);
  EXPECT_EQ(log->headHash(), head);
  ASSERT_EQ(log->append(sampleEvent(20))->log_seq, 20u);

  // A missing middle segment is named.
  std::filesystem::remove((*segments)[1].path);
  AuditVerifyReport broken = verify();
  ASSERT_FALSE(broken.valid);
  EXPECT_EQ(broken.error->log_seq, (*segments)[1].first_seq);
  EXPECT_NE(broken.error->message.find("missing"), std::string::npos) << broken.error->message;
}

// RFC 6962 section 2.1, computed recursively from the definition.
Hash256 referenceMth(const std::vector<Hash256>& leaves, size_t begin, size_t end) {
  if (end - begin == 1) return leaves[begin];
  size_t k = 1;
  while (k * 2 < end - begin) k *= 2;
  return merkleNodeHash(referenceMth(leaves, begin, begin + k),
                        referenceMth(leaves, begin + k, end));
}

TEST(MerkleCompactRangeTest, RootMatchesFromScratchComputation) {
  MerkleCompactRange range;
  std::vector<Hash256> leaves;
  EXPECT_EQ(hexEncode(range.root()), sha256Hex(""));
  for (int n = 1; n <= 33; ++n) {
    leaves.push_back(auditLeafHash("entry " + std::to_string(n)));
    range.append(leaves.back());
    EXPECT_EQ(range.root(), referenceMth(leaves, 0, leaves.size())) << "size " << n;
  }
  EXPECT_EQ(range.size(), 33u);
  // Known answer: two leaves.
  const Hash256 a = auditLeafHash("a");
  const Hash256 b = auditLeafHash("b");
  MerkleCompactRange two;
  two.append(a);
  two.append(b);
  std::string node_input(1, '\x01');
  node_input.append(reinterpret_cast<const char*>(a.data()), 32);
  node_input.append(reinterpret_cast<const char*>(b.data()), 32);
  EXPECT_EQ(hexEncode(two.root()), sha256Hex(node_input));
}

TEST_F(AuditLogTest, CheckpointsAreSignedAndWrittenByCountTimeAndClose) {
  AuditLogOptions o = options();
  o.checkpoint_every_entries = 4;
  o.checkpoint_interval = std::chrono::seconds(60);
  std::vector<std::string> shipped;
  o.on_checkpoint = [&](const std::string& line) { shipped.push_back(line); };
  auto log = open(o);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(log->append(sampleEvent(i)).ok());  // count: at 4
  clock_.advance(std::chrono::seconds(61));
  ASSERT_TRUE(log->maybeCheckpoint().ok());  // time: at 5
  ASSERT_TRUE(log->append(sampleEvent(5)).ok());
  ASSERT_TRUE(log->close().ok());  // close: at 6
  const auto lines = readLines(dir_.file("audit.log.checkpoints"));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(shipped, lines);
  std::vector<uint64_t> sizes;
  for (const std::string& line : lines) {
    auto checkpoint = parseCheckpointLine(line);
    ASSERT_TRUE(checkpoint.ok()) << checkpoint.error().message;
    sizes.push_back(checkpoint->size);
    EXPECT_EQ(checkpoint->key_id, signer_.keyId());
    EXPECT_TRUE(verifyCheckpointSignature(*checkpoint, signer_.publicKey()));
    // The signature covers the PAE of the exact body bytes.
    EXPECT_TRUE(ed25519Verify(
        signer_.publicKey(), dssePae("application/vnd.shadan.checkpoint.v1+json", checkpoint->body),
        base64Decode(checkpoint->sig).value()));
  }
  EXPECT_EQ(sizes, (std::vector<uint64_t>{4, 5, 6}));
  auto last = parseCheckpointLine(lines.back()).value();
  EXPECT_EQ(last.root, log->rootHex());
  EXPECT_EQ(last.head_hash, log->headHash());

  AuditVerifyReport good = verify({signerKey()});
  EXPECT_TRUE(good.valid);
  EXPECT_EQ(good.signatures_verified, 3u);

  const Ed25519KeyPair other = Ed25519KeyPair::generate();
  AuditVerifyReport wrong_key = verify({PublicKeyInfo{signer_.keyId(), other.publicKey(), {}}});
  ASSERT_FALSE(wrong_key.valid);
  EXPECT_NE(wrong_key.error->message.find("signature does not verify"), std::string::npos);
  AuditVerifyReport unknown_key = verify({PublicKeyInfo{other.keyId(), other.publicKey(), {}}});
  ASSERT_FALSE(unknown_key.valid);
  EXPECT_NE(unknown_key.error->message.find("not among the given keys"), std::string::npos);

  AuditVerifyReport no_key = verify();
  EXPECT_TRUE(no_key.valid);
  EXPECT_FALSE(no_key.signatures_checked);
  bool warned = false;
  for (const auto& w : no_key.warnings)
    warned |= w.message.find("NOT checked") != std::string::npos;
  EXPECT_TRUE(warned);
}

TEST_F(AuditLogTest, TornCheckpointLineIsMovedAsideAndRecorded) {
  {
    AuditLogOptions o = options();
    o.checkpoint_every_entries = 2;
    auto log = open(o);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(log->append(sampleEvent(i)).ok());
  }
  const std::string path = dir_.file("audit.log.checkpoints");
  const std::string complete = readText(path);
  writeText(path, complete + "{\"head_hash\":\"ab");
  auto log = open(options());
  ASSERT_EQ(log->recoveries().size(), 1u);
  EXPECT_EQ(log->recoveries()[0].event, kAuditCheckpointTornTailEvent);
  EXPECT_EQ(readText(path), complete);
  EXPECT_EQ(readText(dir_.file("audit.log.checkpoints.torn-" + std::to_string(complete.size()))),
            "{\"head_hash\":\"ab");
  ASSERT_TRUE(log->close().ok());
  AuditVerifyReport report = verify({signerKey()});
  EXPECT_TRUE(report.valid) << report.error->message;
  ASSERT_EQ(report.recoveries.size(), 1u);
  EXPECT_TRUE(report.recoveries[0].aside_file_matches);
}

TEST(AuditTimeTest, ParsesRfc3339) {
  EXPECT_EQ(parseRfc3339Millis("1970-01-01T00:00:00Z").value(), 0);
  EXPECT_EQ(parseRfc3339Millis("2026-11-18T11:13:21.5Z").value(), 1'795'000'401'500);
  EXPECT_EQ(parseRfc3339Millis("2026-11-18T20:13:21.500+09:00").value(), 1'795'000'401'500);
  EXPECT_FALSE(parseRfc3339Millis("2026-11-18 11:33:21Z").ok());
  EXPECT_FALSE(parseRfc3339Millis("2026-11-18T11:33:21").ok());
  EXPECT_FALSE(parseRfc3339Millis("2026-13-18T11:33:21Z").ok());
}

}  // namespace
}  // namespace shadan
