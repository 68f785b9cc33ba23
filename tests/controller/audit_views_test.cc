// GET /v1/audit's reader: entries of a real audit log (newest first, paged, filtered) and the
// verdict of the same verification `shadanctl audit verify` runs, a broken chain included.

#include "controller/audit_views.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "tests/common/audit_test_support.h"

namespace shadan::controller {
namespace {

using nlohmann::json;
using testing::FakeClock;
using testing::readLines;
using testing::TempDir;

class AuditViewsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AuditLogOptions o;
    o.path = dir_.file("audit.log");
    o.log_id = "controller";
    o.checkpoint_every_entries = 0;
    o.checkpoint_interval = std::chrono::milliseconds(0);
    auto log = AuditLog::open(std::move(o), fs_, clock_, &signer_);
    ASSERT_TRUE(log.ok()) << log.error().message;
    log_ = std::move(*log);
    // Events a, b, a, b, a at log_seq 0..4, then a signed checkpoint.
    for (int i = 0; i < 5; ++i) {
      AuditEvent e;
      e.event = i % 2 == 0 ? "order_requested" : "order_applied";
      e.reason = "n=" + std::to_string(i);
      ASSERT_TRUE(log_->append(e).ok());
    }
    ASSERT_TRUE(log_->checkpoint().ok());
    AuditSources sources;
    sources.controller_log = dir_.file("audit.log");
    sources.controller_keys = {PublicKeyInfo{signer_.keyId(), signer_.publicKey(), std::nullopt}};
    sources.agent_ids = [] { return std::vector<std::string>{"gw-1"}; };
    sources.agent_log = [this](const std::string& id) -> Result<std::string> {
      if (id.find('/') != std::string::npos) {
        return makeError(ErrorCode::kInvalidArgument, "agent id not usable");
      }
      return dir_.file("agents/" + id + "/audit.log");
    };
    sources.agent_key = [](const std::string&) { return std::optional<Ed25519PublicKey>(); };
    verifier_ = std::make_unique<AuditVerifier>(
        fs_, clock_, [this] { ++verdicts_; }, std::chrono::milliseconds(0));
    reader_ = std::make_unique<AuditReader>(fs_, *verifier_, std::move(sources));
  }

  json read(const std::string& query) {
    auto parsed = parseAuditQuery(query);
    EXPECT_TRUE(parsed.ok()) << query << ": " << parsed.error().message;
    auto page = reader_->read(*parsed);
    EXPECT_TRUE(page.ok()) << query << ": " << page.error().message;
    return page.ok() ? *page : json();
  }
  // The page once the verification it asked for is done.
  json readVerified(const std::string& query) {
    read(query);
    verifier_->drain();
    return read(query);
  }

  static std::vector<uint64_t> seqs(const json& page) {
    std::vector<uint64_t> out;
    for (const json& entry : page["entries"]) out.push_back(entry["log_seq"].get<uint64_t>());
    return out;
  }

  TempDir dir_;
  PosixLogFileSystem fs_;
  FakeClock clock_;
  Ed25519Signer signer_{Ed25519KeyPair::generate()};
  std::unique_ptr<AuditLog> log_;
  std::atomic<int> verdicts_{0};
  std::unique_ptr<AuditVerifier> verifier_;
  std::unique_ptr<AuditReader> reader_;
};

TEST_F(AuditViewsTest, ReadsNewestFirstWithTheVerdictOfTheWholeChain) {
  // The first answer does not wait for the verdict: it is being reached on its own thread.
  const json first = read("");
  EXPECT_TRUE(first["verification"].is_null());
  EXPECT_TRUE(first["verifying"].get<bool>());
  EXPECT_EQ(first["entries"].size(), 5u);
  verifier_->drain();
  EXPECT_EQ(verdicts_, 1);
  const json page = read("");
  EXPECT_FALSE(page["verifying"].get<bool>());
  EXPECT_TRUE(page["verification_current"].get<bool>());
  EXPECT_TRUE(page["verification"]["verified_at"].is_string());
  EXPECT_EQ(page["log"], "controller");
  EXPECT_EQ(page["logs"], json::array({"controller", "agent:gw-1"}));
  EXPECT_EQ(seqs(page), (std::vector<uint64_t>{4, 3, 2, 1, 0}));
  EXPECT_EQ(page["entries"][0]["reason"], "n=4");
  EXPECT_TRUE(page["next_before"].is_null());
  const json& v = page["verification"];
  EXPECT_TRUE(v["valid"].get<bool>()) << v.dump();
  EXPECT_EQ(v["entries"], 5);
  EXPECT_EQ(v["checkpoints"], 1);
  EXPECT_TRUE(v["signatures_checked"].get<bool>());
  EXPECT_EQ(v["signatures_verified"], 1);
  EXPECT_EQ(v["unprotected_entries"], 0);
  EXPECT_TRUE(v["error"].is_null());
}

// A final line without '\n' is a write in progress (or torn by a crash): not an entry yet.
TEST_F(AuditViewsTest, AFinalLineWithoutNewlineIsNotAnEntry) {
  log_.reset();
  std::ofstream(dir_.file("audit.log"), std::ios::app) << R"({"log_id":"controller","log_seq":5)";
  EXPECT_EQ(seqs(read("")), (std::vector<uint64_t>{4, 3, 2, 1, 0}));
  EXPECT_EQ(seqs(read("limit=1")), (std::vector<uint64_t>{4}));
}

TEST_F(AuditViewsTest, PagesOlderEntriesWithBefore) {
  json page = read("limit=2");
  EXPECT_EQ(seqs(page), (std::vector<uint64_t>{4, 3}));
  ASSERT_EQ(page["next_before"], 3);
  page = read("limit=2&before=3");
  EXPECT_EQ(seqs(page), (std::vector<uint64_t>{2, 1}));
  ASSERT_EQ(page["next_before"], 1);
  page = read("limit=2&before=1");
  EXPECT_EQ(seqs(page), (std::vector<uint64_t>{0}));
  EXPECT_TRUE(page["next_before"].is_null());
}

TEST_F(AuditViewsTest, FiltersOneEvent) {
  EXPECT_EQ(seqs(read("event=order_applied")), (std::vector<uint64_t>{3, 1}));
  EXPECT_EQ(seqs(read("event=order_requested&limit=1")), (std::vector<uint64_t>{4}));
  EXPECT_TRUE(read("event=nothing_like_it")["entries"].empty());
}

TEST_F(AuditViewsTest, AChangedEntryBreaksTheVerdictNamingItByFileNameOnly) {
  log_.reset();
  auto lines = readLines(dir_.file("audit.log"));
  ASSERT_EQ(lines.size(), 5u);
  const size_t at = lines[2].find("n=2");
  ASSERT_NE(at, std::string::npos);
  lines[2].replace(at, 3, "n=9");
  std::ofstream out(dir_.file("audit.log"), std::ios::trunc);
  for (const std::string& line : lines) out << line << '\n';
  out.close();

  const json page = readVerified("");
  const json& v = page["verification"];
  EXPECT_FALSE(v["valid"].get<bool>());
  ASSERT_TRUE(v["error"].is_object()) << v.dump();
  EXPECT_EQ(v["error"]["log_seq"], 2) << v.dump();
  EXPECT_EQ(v["error"]["file"], "audit.log");  // never the controller's path
  EXPECT_EQ(v["error"]["line"], 3);
  // The entries are still shown, with the verdict that says not to trust them.
  EXPECT_EQ(page["entries"].size(), 5u);
}

TEST_F(AuditViewsTest, ALogTheControllerDoesNotHoldIsNotFound) {
  auto page = reader_->read(parseAuditQuery("log=agent:gw-9").value());
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.error().code, ErrorCode::kNotFound);
  EXPECT_NE(page.error().message.find("agent:gw-9"), std::string::npos) << page.error().message;
  auto bad = reader_->read(parseAuditQuery("log=agent:..%2Fx").value());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
}

TEST_F(AuditViewsTest, AnAgentCopyIsReadLikeTheControllersLog) {
  std::filesystem::create_directories(dir_.file("agents/gw-1"));
  AuditLogOptions o;
  o.path = dir_.file("agents/gw-1/audit.log");
  o.log_id = "agent:gw-1";
  o.checkpoint_every_entries = 0;
  o.checkpoint_interval = std::chrono::milliseconds(0);
  auto agent_log = AuditLog::open(std::move(o), fs_, clock_, &signer_);
  ASSERT_TRUE(agent_log.ok());
  AuditEvent e;
  e.event = "repaired";
  ASSERT_TRUE((*agent_log)->append(e).ok());
  const json page = readVerified("log=agent%3Agw-1");
  EXPECT_EQ(page["log"], "agent:gw-1");
  ASSERT_EQ(page["entries"].size(), 1u);
  EXPECT_EQ(page["entries"][0]["event"], "repaired");
  EXPECT_TRUE(page["verification"]["valid"].get<bool>());
  // No enrolled key here: the signatures are reported unchecked, not as verified.
  EXPECT_FALSE(page["verification"]["signatures_checked"].get<bool>());
  EXPECT_EQ(page["verification"]["unprotected_entries"], 1);
}

// A verdict stays until the log changes; then the next read asks for a new one (here at once:
// the fixture's recheck interval is 0) and says the old one is no longer current.
TEST_F(AuditViewsTest, ANewVerdictIsReachedOnlyWhenTheLogChanged) {
  readVerified("");
  const json same = read("");
  EXPECT_FALSE(same["verifying"].get<bool>());
  EXPECT_TRUE(same["verification_current"].get<bool>());
  EXPECT_EQ(verdicts_, 1);

  AuditEvent e;
  e.event = "order_requested";
  ASSERT_TRUE(log_->append(e).ok());
  const json grown = read("");
  EXPECT_FALSE(grown["verification_current"].get<bool>());
  EXPECT_TRUE(grown["verifying"].get<bool>());
  EXPECT_EQ(grown["verification"]["entries"], 5);  // the old verdict, said as old
  EXPECT_EQ(grown["entries"][0]["log_seq"], 5);    // the entries are read as they are now
  verifier_->drain();
  const json again = read("");
  EXPECT_TRUE(again["verification_current"].get<bool>());
  EXPECT_EQ(again["verification"]["entries"], 6);
  EXPECT_EQ(verdicts_, 2);
}

// The page is found from the newest file back: a rotated log's first page reads the current
// file only, and paging skips whole segments.
TEST_F(AuditViewsTest, PagesAcrossRotatedSegments) {
  log_.reset();
  AuditLogOptions o;
  o.path = dir_.file("audit.log");
  o.log_id = "controller";
  o.rotate_bytes = 600;  // a few entries per segment
  o.checkpoint_every_entries = 0;
  o.checkpoint_interval = std::chrono::milliseconds(0);
  auto log = AuditLog::open(std::move(o), fs_, clock_, &signer_);
  ASSERT_TRUE(log.ok()) << log.error().message;
  for (int i = 5; i < 30; ++i) {
    AuditEvent e;
    e.event = "order_applied";
    e.reason = "n=" + std::to_string(i);
    ASSERT_TRUE((*log)->append(e).ok());
  }
  ASSERT_GT(listAuditSegments(fs_, dir_.file("audit.log")).value().size(), 2u);
  std::vector<uint64_t> all;
  std::optional<uint64_t> before;
  for (int pages = 0; pages < 20; ++pages) {
    const json page = read("limit=7" + (before ? "&before=" + std::to_string(*before) : ""));
    for (uint64_t seq : seqs(page)) all.push_back(seq);
    if (page["next_before"].is_null()) break;
    before = page["next_before"].get<uint64_t>();
  }
  std::vector<uint64_t> expected;
  for (uint64_t seq = 30; seq-- > 0;) expected.push_back(seq);
  EXPECT_EQ(all, expected);
  EXPECT_TRUE(readVerified("")["verification"]["valid"].get<bool>());
}

TEST(AuditQueryTest, ParsesTheDocumentedParameters) {
  auto query = parseAuditQuery("log=agent%3Acore-gw&limit=50&before=120&event=order_applied");
  ASSERT_TRUE(query.ok()) << query.error().message;
  EXPECT_EQ(query->log, "agent:core-gw");
  EXPECT_EQ(query->limit, 50u);
  EXPECT_EQ(query->before, 120u);
  EXPECT_EQ(query->event, "order_applied");
  auto defaults = parseAuditQuery("");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->log, "controller");
  EXPECT_EQ(defaults->limit, kAuditPageDefault);
  EXPECT_FALSE(defaults->before.has_value());
}

TEST(AuditQueryTest, RefusesWhatItDoesNotTakeNamingTheParameter) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"from=3", "from"},       {"limit=0", "limit"},         {"limit=1001", "limit"},
      {"limit=-1", "limit"},    {"limit=5&limit=6", "limit"}, {"before=abc", "before"},
      {"log=other", "log"},     {"log=agent:", "log"},        {"event=%zz", "event"},
      {"event=a%0Ab", "event"}, {"before=", "before"},
  };
  for (const auto& [text, name] : cases) {
    auto query = parseAuditQuery(text);
    ASSERT_FALSE(query.ok()) << text;
    EXPECT_EQ(query.error().code, ErrorCode::kInvalidArgument) << text;
    EXPECT_NE(query.error().message.find(name), std::string::npos)
        << text << ": " << query.error().message;
  }
}

}  // namespace
}  // namespace shadan::controller
