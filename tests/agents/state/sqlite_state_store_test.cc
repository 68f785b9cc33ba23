#include "agents/state/sqlite_state_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

namespace shadan::agent {
namespace {

class SqliteStateStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("shadan-state-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static DesiredState sampleState() {
    DesiredState state;
    ActiveIsolation a{{"lgwan", "internet-only"}, 1000, std::nullopt, "local-cli"};
    ActiveIsolation b{{"mynumber", "full"}, 2000, 9000, "order:abc", true};
    state.isolations = {a, b};
    state.applied_ruleset_sha256 = "ab12";
    state.replay.last_seq = 1842;
    state.replay.seen_command_ids = {"cmd-1", "cmd-2"};
    state.replay.segment_gens = {{"lgwan", 57}, {"mynumber", 3}};
    state.trust_version = 4;
    return state;
  }

  // Runs `sql` on a second connection to the store's database, behind the store's back (to
  // plant faults, or to write what an older or damaged database would hold). SQLite result code.
  int execBehindTheStore(const std::string& sql) {
    sqlite3* raw = nullptr;
    const int opened = sqlite3_open((dir_ / "agent.db").c_str(), &raw);
    std::unique_ptr<sqlite3, decltype(&sqlite3_close)> db(raw, &sqlite3_close);
    if (opened != SQLITE_OK) return opened;
    return sqlite3_exec(db.get(), sql.c_str(), nullptr, nullptr, nullptr);
  }

  // The schema_version the database holds, read behind the store's back ("" if none).
  std::string schemaVersionBehindTheStore() {
    sqlite3* raw = nullptr;
    if (sqlite3_open((dir_ / "agent.db").c_str(), &raw) != SQLITE_OK) return "";
    std::unique_ptr<sqlite3, decltype(&sqlite3_close)> db(raw, &sqlite3_close);
    std::string version;
    const auto read = [](void* out, int, char** values, char**) {
      *static_cast<std::string*>(out) = values[0] ? values[0] : "";
      return 0;
    };
    sqlite3_exec(db.get(), "SELECT value FROM meta WHERE key = 'schema_version'", read, &version,
                 nullptr);
    return version;
  }

  std::filesystem::path dir_;
};

TEST_F(SqliteStateStoreTest, FreshDirectoryIsCreatedPrivateAndEmpty) {
  auto store = SqliteStateStore::open(dir_);
  ASSERT_TRUE(store.ok()) << store.error().message;
  struct stat st {};
  ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  auto state = (*store)->load();
  ASSERT_TRUE(state.ok());
  EXPECT_TRUE(state->isolations.empty());
  EXPECT_EQ(state->applied_ruleset_sha256, "");
}

// Local commands open with create_directory=false: a mistyped --state-dir is an error that
// names it, and nothing is created.
TEST_F(SqliteStateStoreTest, AMissingDirectoryIsNotCreatedUnlessAsked) {
  auto store = SqliteStateStore::open(dir_, std::chrono::milliseconds(0), false);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code, ErrorCode::kNotFound);
  EXPECT_NE(store.error().message.find(dir_.string() + " does not exist"), std::string::npos)
      << store.error().message;
  EXPECT_FALSE(std::filesystem::exists(dir_));
  std::filesystem::create_directories(dir_);
  EXPECT_TRUE(SqliteStateStore::open(dir_, std::chrono::milliseconds(0), false).ok());
}

TEST_F(SqliteStateStoreTest, SavedStateSurvivesReopening) {
  {
    auto store = SqliteStateStore::open(dir_);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->save(sampleState()).ok());
  }
  auto store = SqliteStateStore::open(dir_);
  ASSERT_TRUE(store.ok()) << store.error().message;
  auto state = (*store)->load();
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state.value(), sampleState());
}

TEST_F(SqliteStateStoreTest, SaveReplacesTheWholeState) {
  auto store = SqliteStateStore::open(dir_);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->save(sampleState()).ok());
  DesiredState smaller = sampleState();
  smaller.isolations = {sampleState().isolations[1]};
  ASSERT_TRUE((*store)->save(smaller).ok());
  EXPECT_EQ((*store)->load().value(), smaller);
}

TEST_F(SqliteStateStoreTest, CommandIdsAccumulateAcrossIncrementalSaves) {
  DesiredState state = sampleState();
  {
    auto store = SqliteStateStore::open(dir_);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->save(state).ok());
    // Each order adds one id; only that one is written, the others are already stored.
    for (int i = 3; i < 50; ++i) {
      state.replay.seen_command_ids.insert("cmd-" + std::to_string(i));
      state.replay.last_seq += 1;
      ASSERT_TRUE((*store)->save(state).ok());
    }
    EXPECT_EQ((*store)->load().value(), state);
  }
  // A second process (after the first let go) sees every id, and keeps adding to them.
  auto store = SqliteStateStore::open(dir_);
  ASSERT_TRUE(store.ok());
  auto loaded = (*store)->load();
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->replay.seen_command_ids.size(), 49u);
  EXPECT_EQ(*loaded, state);
  state.replay.seen_command_ids.insert("cmd-after-reopen");
  ASSERT_TRUE((*store)->save(state).ok());
  EXPECT_TRUE((*store)->load()->replay.seen_command_ids.contains("cmd-after-reopen"));
}

TEST_F(SqliteStateStoreTest, UnsyncedSaveIsAtomicAndLaterSavesStayDurable) {
  {
    auto store = SqliteStateStore::open(dir_);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->save(sampleState()).ok());
    DesiredState hashed = sampleState();
    hashed.applied_ruleset_sha256 = "cd34";
    ASSERT_TRUE((*store)->saveUnsynced(hashed).ok());
    EXPECT_EQ((*store)->load().value(), hashed);
    DesiredState next = hashed;
    next.replay.last_seq += 1;
    ASSERT_TRUE((*store)->save(next).ok());
  }
  auto store = SqliteStateStore::open(dir_);
  ASSERT_TRUE(store.ok());
  DesiredState expected = sampleState();
  expected.applied_ruleset_sha256 = "cd34";
  expected.replay.last_seq += 1;
  EXPECT_EQ((*store)->load().value(), expected);
}

TEST_F(SqliteStateStoreTest, EveryKindOfChangeReachesTheDatabase) {
  // save() writes only what differs from the last commit; each kind of difference must still
  // land: a changed row, a removed row, a dropped command id, a dropped generation.
  DesiredState state = sampleState();
  {
    auto store = SqliteStateStore::open(dir_);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->load().ok());
    ASSERT_TRUE((*store)->save(state).ok());
    state.isolations[0].expires_unix_ms = 5000;            // changed row
    state.isolations.erase(state.isolations.begin() + 1);  // removed row
    ASSERT_TRUE(state.replay.seen_command_ids.erase("cmd-1"));
    state.replay.seen_command_ids.insert("cmd-3");
    state.replay.segment_gens.erase("mynumber");
    state.replay.segment_gens["lgwan"] = 58;
    state.trust_version = 5;
    ASSERT_TRUE((*store)->save(state).ok());
  }
  auto store = SqliteStateStore::open(dir_);
  ASSERT_TRUE(store.ok());
  auto loaded = (*store)->load();
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(*loaded, state);
  EXPECT_FALSE(loaded->replay.seen_command_ids.contains("cmd-1"));
  EXPECT_TRUE(loaded->replay.seen_command_ids.contains("cmd-3"));
}

TEST_F(SqliteStateStoreTest, FailedSaveLeavesNothingAndTheNextSaveWritesEverythingItMust) {
  DesiredState first = sampleState();
  auto store = SqliteStateStore::open(dir_);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->save(first).ok());

  // A second connection plants a trigger that aborts the transaction half-way: after the
  // isolation rows are written, at the command id.
  ASSERT_EQ(execBehindTheStore(
                "CREATE TRIGGER poison BEFORE INSERT ON seen_commands "
                "WHEN NEW.command_id = 'poison' BEGIN SELECT RAISE(ABORT, 'refused'); END"),
            SQLITE_OK);

  DesiredState refused = first;
  refused.isolations.erase(refused.isolations.begin());
  refused.replay.seen_command_ids.insert("poison");
  const Status failed = (*store)->save(refused);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.error().message.find("command id"), std::string::npos) << failed.error().message;
  ASSERT_EQ(execBehindTheStore("DROP TRIGGER poison"), SQLITE_OK);

  // The same isolation change again, without the poison: it must be written although it was
  // part of the failed attempt (the store must not believe the database already holds it).
  DesiredState second = first;
  second.isolations.erase(second.isolations.begin());
  second.replay.seen_command_ids.insert("cmd-ok");
  ASSERT_TRUE((*store)->save(second).ok());
  store.value().reset();
  auto reopened = SqliteStateStore::open(dir_);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)->load().value(), second);
}

TEST_F(SqliteStateStoreTest, StoredCommandIdLongerThanAnyAcceptedIsRefusedAtLoad) {
  {
    auto store = SqliteStateStore::open(dir_);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->save(sampleState()).ok());
  }
  ASSERT_EQ(execBehindTheStore("INSERT INTO seen_commands(command_id) VALUES ('" +
                               std::string(CommandIdSet::kMaxLength + 1, 'z') + "')"),
            SQLITE_OK);

  auto store = SqliteStateStore::open(dir_);
  ASSERT_TRUE(store.ok());
  auto loaded = (*store)->load();
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.error().code, ErrorCode::kState);
  EXPECT_NE(loaded.error().message.find("command id of 64 bytes"), std::string::npos)
      << loaded.error().message;
}

TEST_F(SqliteStateStoreTest, ForgetTimesArePersistedAndForgottenIdsLeaveTheDatabase) {
  DesiredState state = sampleState();
  state.replay.seen_command_ids.insert("cmd-timed", 123'456);
  {
    auto store = SqliteStateStore::open(dir_);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->save(state).ok());
    EXPECT_EQ((*store)->load().value(), state);  // equality compares the times too
    ASSERT_EQ(state.replay.seen_command_ids.forgetExpired(200'000), 1u);
    ASSERT_TRUE((*store)->save(state).ok());
  }
  auto store = SqliteStateStore::open(dir_);
  ASSERT_TRUE(store.ok());
  auto loaded = (*store)->load();
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(*loaded, state);
  EXPECT_FALSE(loaded->replay.seen_command_ids.contains("cmd-timed"));
  EXPECT_TRUE(loaded->replay.seen_command_ids.contains("cmd-1"));  // kept: no time
}

TEST_F(SqliteStateStoreTest, DatabaseFromBeforeForgetTimesIsMigratedAndKeepsItsIds) {
  std::filesystem::create_directories(dir_);
  {
    const char* old_schema =
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;"
        "INSERT INTO meta VALUES ('schema_version', '1'), ('last_seq', '7');"
        "CREATE TABLE seen_commands (command_id TEXT PRIMARY KEY) STRICT;"
        "INSERT INTO seen_commands VALUES ('cmd-old');"
        "CREATE TABLE segment_gens (segment TEXT PRIMARY KEY, gen INTEGER NOT NULL) STRICT;"
        "CREATE TABLE isolations (segment TEXT NOT NULL, profile TEXT NOT NULL, since_ms INTEGER "
        "NOT NULL, expires_ms INTEGER, origin TEXT NOT NULL, drill INTEGER NOT NULL DEFAULT 0, "
        "PRIMARY KEY (segment, profile)) STRICT;";
    ASSERT_EQ(execBehindTheStore(old_schema), SQLITE_OK);
  }
  auto store = SqliteStateStore::open(dir_);
  ASSERT_TRUE(store.ok()) << store.error().message;
  auto loaded = (*store)->load();
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->replay.last_seq, 7);
  ASSERT_TRUE(loaded->replay.seen_command_ids.contains("cmd-old"));
  EXPECT_EQ(loaded->replay.seen_command_ids.begin().forgetAfterMs(), CommandIdSet::kKeepForever);
  DesiredState next = *loaded;
  next.replay.seen_command_ids.insert("cmd-new", 5000);
  ASSERT_TRUE((*store)->save(next).ok());
  EXPECT_EQ((*store)->load().value(), next);
}

TEST_F(SqliteStateStoreTest, VersionOneIsolationsBecomeSegmentRungsBesideNewRungs) {
  std::filesystem::create_directories(dir_);
  {
    const char* old_schema =
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;"
        "INSERT INTO meta VALUES ('schema_version', '1');"
        "CREATE TABLE isolations (segment TEXT NOT NULL, profile TEXT NOT NULL, since_ms INTEGER "
        "NOT NULL, expires_ms INTEGER, origin TEXT NOT NULL, drill INTEGER NOT NULL DEFAULT 0, "
        "PRIMARY KEY (segment, profile)) STRICT;"
        "INSERT INTO isolations VALUES ('lgwan', 'full', 1000, NULL, 'local-cli', 0),"
        " ('mynumber', 'full', 2000, 9000, 'order:abc', 1);";
    ASSERT_EQ(execBehindTheStore(old_schema), SQLITE_OK);
  }
  auto store = SqliteStateStore::open(dir_);
  ASSERT_TRUE(store.ok()) << store.error().message;
  auto loaded = (*store)->load();
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  ASSERT_EQ(loaded->isolations.size(), 2u);
  EXPECT_EQ(loaded->isolations[0],
            (ActiveIsolation{{"lgwan", "full"}, 1000, std::nullopt, "local-cli"}));
  EXPECT_EQ(loaded->isolations[1].isolation.scope, IsolationScope::kSegment);
  EXPECT_TRUE(loaded->isolations[1].drill);

  // The same segment and profile as a host quarantine, an uplink with its link down, an island:
  // four distinct rows, each restored on its own.
  DesiredState next = *loaded;
  const IpPrefix host = IpPrefix::parse("10.20.0.5").value();
  ActiveIsolation quarantined{
      {"lgwan", "full", IsolationScope::kHost, host}, 3000, std::nullopt, "local-cli"};
  ActiveIsolation uplink{{"", "full", IsolationScope::kUplink}, 4000, std::nullopt, "local-cli"};
  uplink.link_down = true;
  ActiveIsolation island{{"", "full", IsolationScope::kIsland}, 5000, 6000, "local-cli"};
  next.isolations.push_back(quarantined);
  next.isolations.push_back(uplink);
  next.isolations.push_back(island);
  std::sort(next.isolations.begin(), next.isolations.end(),
            [](const auto& a, const auto& b) { return a.isolation < b.isolation; });
  ASSERT_TRUE((*store)->save(next).ok());
  store->reset();
  auto reopened = SqliteStateStore::open(dir_);
  ASSERT_TRUE(reopened.ok()) << reopened.error().message;
  EXPECT_EQ((*reopened)->load().value(), next);
  next.isolations.erase(std::find(next.isolations.begin(), next.isolations.end(), quarantined));
  ASSERT_TRUE((*reopened)->save(next).ok());
  EXPECT_EQ((*reopened)->load().value(), next);
  EXPECT_EQ(execBehindTheStore("SELECT 1"), SQLITE_OK);
}

TEST_F(SqliteStateStoreTest, AutomaticFlagSurvivesReopening) {
  DesiredState state = sampleState();
  state.isolations[0].automatic = true;  // lgwan: applied by an automatic response
  {
    auto store = SqliteStateStore::open(dir_);
    ASSERT_TRUE(store.ok()) << store.error().message;
    ASSERT_TRUE((*store)->save(state).ok());
  }
  EXPECT_EQ(schemaVersionBehindTheStore(), "3");
  {
    auto store = SqliteStateStore::open(dir_);
    ASSERT_TRUE(store.ok()) << store.error().message;
    auto loaded = (*store)->load();
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    EXPECT_EQ(*loaded, state);
    EXPECT_TRUE(loaded->isolations[0].automatic);
    EXPECT_FALSE(loaded->isolations[1].automatic);
    // Confirmed: the flag goes, and only that row is written.
    state.isolations[0].automatic = false;
    ASSERT_TRUE((*store)->save(state).ok());
  }
  auto store = SqliteStateStore::open(dir_);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->load().value(), state);
}

TEST_F(SqliteStateStoreTest, VersionTwoIsMigratedInPlaceAndItsIsolationsAreNotAutomatic) {
  std::filesystem::create_directories(dir_);
  {
    // What an agent of schema 2 wrote.
    const char* old_schema =
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;"
        "INSERT INTO meta VALUES ('schema_version', '2'), ('last_seq', '9');"
        "CREATE TABLE seen_commands (command_id TEXT PRIMARY KEY, forget_after_ms INTEGER) STRICT;"
        "CREATE TABLE segment_gens (segment TEXT PRIMARY KEY, gen INTEGER NOT NULL) STRICT;"
        "CREATE TABLE isolations (scope TEXT NOT NULL DEFAULT 'segment', segment TEXT NOT NULL, "
        "host TEXT NOT NULL DEFAULT '', profile TEXT NOT NULL, since_ms INTEGER NOT NULL, "
        "expires_ms INTEGER, origin TEXT NOT NULL, drill INTEGER NOT NULL DEFAULT 0, "
        "link_down INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (scope, segment, host, profile)) STRICT;"
        "INSERT INTO isolations VALUES ('host', 'lgwan', '10.20.0.5/32', 'full', 1000, 61000, "
        "'order:abc', 0, 0), ('segment', 'mynumber', '', 'full', 2000, NULL, 'local-cli', 0, 0);";
    ASSERT_EQ(execBehindTheStore(old_schema), SQLITE_OK);
  }
  {
    auto store = SqliteStateStore::open(dir_);
    ASSERT_TRUE(store.ok()) << store.error().message;
    auto loaded = (*store)->load();
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    EXPECT_EQ(loaded->replay.last_seq, 9);
    ASSERT_EQ(loaded->isolations.size(), 2u);
    for (const ActiveIsolation& active : loaded->isolations) {
      EXPECT_FALSE(active.automatic) << isolationLabel(active.isolation);
    }
    EXPECT_EQ(loaded->isolations[0].isolation.scope, IsolationScope::kHost);
    EXPECT_EQ(loaded->isolations[0].expires_unix_ms, 61000);
    DesiredState next = *loaded;
    next.isolations[0].automatic = true;
    ASSERT_TRUE((*store)->save(next).ok());
  }
  EXPECT_EQ(schemaVersionBehindTheStore(), "3");
  auto store = SqliteStateStore::open(dir_);
  ASSERT_TRUE(store.ok()) << store.error().message;
  auto loaded = (*store)->load();
  ASSERT_TRUE(loaded.ok());
  EXPECT_TRUE(loaded->isolations[0].automatic);
  EXPECT_FALSE(loaded->isolations[1].automatic);
}

TEST_F(SqliteStateStoreTest, VersionOneIsMigratedThroughTwoToThree) {
  std::filesystem::create_directories(dir_);
  ASSERT_EQ(execBehindTheStore(
                "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;"
                "INSERT INTO meta VALUES ('schema_version', '1');"
                "CREATE TABLE isolations (segment TEXT NOT NULL, profile TEXT NOT NULL, since_ms "
                "INTEGER NOT NULL, expires_ms INTEGER, origin TEXT NOT NULL, PRIMARY KEY "
                "(segment, profile)) STRICT;"
                "INSERT INTO isolations VALUES ('lgwan', 'full', 1000, NULL, 'local-cli');"),
            SQLITE_OK);
  {
    auto store = SqliteStateStore::open(dir_);
    ASSERT_TRUE(store.ok()) << store.error().message;
    auto loaded = (*store)->load();
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    ASSERT_EQ(loaded->isolations.size(), 1u);
    EXPECT_FALSE(loaded->isolations[0].automatic);
    DesiredState next = *loaded;
    next.isolations[0].automatic = true;
    ASSERT_TRUE((*store)->save(next).ok());
    EXPECT_TRUE((*store)->load().value().isolations[0].automatic);
  }
  EXPECT_EQ(schemaVersionBehindTheStore(), "3");
}

TEST_F(SqliteStateStoreTest, ANewerSchemaIsRefusedRatherThanMisread) {
  std::filesystem::create_directories(dir_);
  ASSERT_EQ(execBehindTheStore("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) "
                               "STRICT; INSERT INTO meta VALUES ('schema_version', '4');"),
            SQLITE_OK);
  auto store = SqliteStateStore::open(dir_);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().message.find("schema version 4"), std::string::npos);
}

TEST_F(SqliteStateStoreTest, KeptAcksAreTheNewestOfTheWindowInSeqOrderAndSurviveReopening) {
  constexpr int64_t kDay = 24 * 3'600'000;
  {
    auto store = SqliteStateStore::open(dir_);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->save(sampleState()).ok());
    ASSERT_TRUE((*store)->rememberAck(1, R"({"a":1})", 1'000, kDay).ok());
    ASSERT_TRUE((*store)->rememberAck(3, R"({"a":3})", 3'000, kDay).ok());
    ASSERT_TRUE((*store)->rememberAck(2, R"({"a":2})", 2'000, kDay).ok());
    ASSERT_TRUE((*store)->rememberAck(2, R"({"a":"2b"})", 2'500, kDay).ok());  // same seq: replaced
  }
  auto store = SqliteStateStore::open(dir_);
  ASSERT_TRUE(store.ok());
  const auto envelopes = [](const std::vector<StoredAck>& acks) {
    std::vector<std::string> out;
    for (const auto& ack : acks) out.push_back(std::to_string(ack.seq) + "=" + ack.envelope);
    return out;
  };
  auto all = (*store)->recentAcks(0, 10);
  ASSERT_TRUE(all.ok()) << all.error().message;
  EXPECT_EQ(envelopes(*all),
            (std::vector<std::string>{R"(1={"a":1})", R"(2={"a":"2b"})", R"(3={"a":3})"}));
  EXPECT_EQ(envelopes((*store)->recentAcks(2'000, 10).value()),
            (std::vector<std::string>{R"(2={"a":"2b"})", R"(3={"a":3})"}));
  EXPECT_EQ(envelopes((*store)->recentAcks(0, 1).value()),
            std::vector<std::string>{R"(3={"a":3})"});
  // A day later the old ones are gone from the table, not only filtered out.
  ASSERT_TRUE((*store)->rememberAck(9, R"({"a":9})", 2'600 + kDay, kDay).ok());
  EXPECT_EQ(envelopes((*store)->recentAcks(0, 10).value()),
            (std::vector<std::string>{R"(3={"a":3})", R"(9={"a":9})"}));
  // The kept acks are not part of the desired state.
  EXPECT_EQ((*store)->load().value(), sampleState());
}

TEST_F(SqliteStateStoreTest, SecondOpenerIsTurnedAwayWhileTheFirstHoldsTheLock) {
  auto first = SqliteStateStore::open(dir_);
  ASSERT_TRUE(first.ok());
  auto second = SqliteStateStore::open(dir_, std::chrono::milliseconds(50));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(second.error().message.find("in use by another shadan-agent"), std::string::npos);
  first.value().reset();
  EXPECT_TRUE(SqliteStateStore::open(dir_, std::chrono::milliseconds(50)).ok());
}

TEST_F(SqliteStateStoreTest, ForeignDatabaseIsRefusedByName) {
  std::filesystem::create_directories(dir_);
  std::ofstream(dir_ / "agent.db") << "this is not a database, it is a text file of some length";
  auto store = SqliteStateStore::open(dir_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code, ErrorCode::kState);
  EXPECT_NE(store.error().message.find("agent.db"), std::string::npos);
}

TEST_F(SqliteStateStoreTest, StateDirectoryThatIsAFileIsRefused) {
  std::ofstream(dir_) << "x";
  auto store = SqliteStateStore::open(dir_);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().message.find(dir_.string()), std::string::npos);
  std::filesystem::remove(dir_);
}

}  // namespace
}  // namespace shadan::agent
