// LogFollower on real temp files: complete lines only, resume, rotation, truncation,
// copytruncate, oversize lines.

#include "cli/log_follower.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace shadan {
namespace {

class LogFollowerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/shadan-follower-test-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/eve.json";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void append(const std::string& text) { append(path_, text); }
  static void append(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::app);
    out << text;
  }
  FileIdentity identity(const std::string& path) {
    struct stat info {};
    EXPECT_EQ(::stat(path.c_str(), &info), 0);
    return FileIdentity{static_cast<uint64_t>(info.st_dev), static_cast<uint64_t>(info.st_ino)};
  }

  LogRead read(LogFollower& follower, size_t max_lines = 100) {
    auto got = follower.read(max_lines);
    EXPECT_TRUE(got.ok()) << (got.ok() ? "" : got.error().message);
    return got.ok() ? *got : LogRead{};
  }
  static std::vector<std::string> texts(const LogRead& got) {
    std::vector<std::string> out;
    for (const LogLine& line : got.lines) out.push_back(line.text);
    return out;
  }

  std::string dir_;
  std::string path_;
  std::ostringstream notices_;
};

using Lines = std::vector<std::string>;

TEST_F(LogFollowerTest, StartsAtTheEndOnAFirstRunAndAtZeroWithFromStart) {
  append("old\n");
  LogFollower from_end(path_, FollowStart{}, 1024, notices_);
  EXPECT_TRUE(texts(read(from_end)).empty());
  append("new\n");
  EXPECT_EQ(texts(read(from_end)), Lines{"new"});

  LogFollower from_start(path_, FollowStart{std::nullopt, true}, 1024, notices_);
  EXPECT_EQ(texts(read(from_start)), (Lines{"old", "new"}));
}

TEST_F(LogFollowerTest, APartialLastLineWaitsForItsNewline) {
  append("one\ntw");
  LogFollower follower(path_, FollowStart{std::nullopt, true}, 1024, notices_);
  LogRead got = read(follower);
  EXPECT_EQ(texts(got), Lines{"one"});
  EXPECT_TRUE(got.at_end);
  EXPECT_EQ(follower.position()->offset, 4u);
  append("o\n");
  got = read(follower);
  ASSERT_EQ(texts(got), Lines{"two"});
  EXPECT_EQ(got.lines[0].offset, 4u);
  EXPECT_EQ(got.lines[0].end, 8u);
  EXPECT_EQ(follower.position()->offset, 8u);
}

TEST_F(LogFollowerTest, ReturnsAtMostMaxLinesAndTheRestNextTime) {
  append("a\nb\nc\n");
  LogFollower follower(path_, FollowStart{std::nullopt, true}, 1024, notices_);
  LogRead got = read(follower, 2);
  EXPECT_EQ(texts(got), (Lines{"a", "b"}));
  EXPECT_FALSE(got.at_end);
  EXPECT_EQ(follower.position()->offset, 4u);
  got = read(follower, 2);
  EXPECT_EQ(texts(got), Lines{"c"});
  EXPECT_TRUE(got.at_end);
}

TEST_F(LogFollowerTest, ResumesAtThePersistedOffsetOfTheSameFile) {
  append("a\nb\nc\n");
  LogFollower follower(path_, FollowStart{LogPosition{identity(path_), 2}, false}, 1024, notices_);
  EXPECT_EQ(texts(read(follower)), (Lines{"b", "c"}));
  EXPECT_TRUE(notices_.str().empty()) << notices_.str();
}

TEST_F(LogFollowerTest, AFileRotatedWhileStoppedIsReadFromZeroAndSaidSo) {
  append("a\nb\n");
  const FileIdentity other{identity(path_).device, identity(path_).inode + 1};
  LogFollower follower(path_, FollowStart{LogPosition{other, 2}, false}, 1024, notices_);
  EXPECT_EQ(texts(read(follower)), (Lines{"a", "b"}));
  EXPECT_NE(notices_.str().find("rotated while not followed"), std::string::npos);
}

TEST_F(LogFollowerTest, AFileTruncatedWhileStoppedIsReadFromZeroAndSaidSo) {
  append("a\n");
  LogFollower follower(path_, FollowStart{LogPosition{identity(path_), 100}, false}, 1024,
                       notices_);
  EXPECT_EQ(texts(read(follower)), Lines{"a"});
  EXPECT_NE(notices_.str().find("truncated while not followed"), std::string::npos);
}

TEST_F(LogFollowerTest, RotationByRenameFinishesTheOldFileFirst) {
  append("a\n");
  LogFollower follower(path_, FollowStart{std::nullopt, true}, 1024, notices_);
  EXPECT_EQ(texts(read(follower)), Lines{"a"});
  const FileIdentity old_file = identity(path_);
  std::filesystem::rename(path_, path_ + ".1");
  append(path_ + ".1", "b\n");  // the writer still had the old file open
  append("c\n");
  const FileIdentity new_file = identity(path_);

  LogRead got = read(follower);
  ASSERT_EQ(texts(got), Lines{"b"});
  EXPECT_EQ(got.lines[0].file, old_file);
  EXPECT_FALSE(got.at_end);  // the old file gets one more look before it is left

  got = read(follower);
  ASSERT_EQ(texts(got), Lines{"c"});
  EXPECT_EQ(got.lines[0].file, new_file);
  EXPECT_EQ(got.lines[0].offset, 0u);
  EXPECT_TRUE(got.at_end);
  EXPECT_EQ(follower.position(), (LogPosition{new_file, 2}));
  EXPECT_NE(notices_.str().find("was rotated"), std::string::npos) << notices_.str();
}

TEST_F(LogFollowerTest, AnUnterminatedLineLeftInARotatedFileComesBackIncomplete) {
  append("a\npart");
  LogFollower follower(path_, FollowStart{std::nullopt, true}, 1024, notices_);
  EXPECT_EQ(texts(read(follower)), Lines{"a"});
  std::filesystem::rename(path_, path_ + ".1");
  append("c\n");
  EXPECT_TRUE(read(follower).lines.empty());
  LogRead got = read(follower);
  ASSERT_EQ(got.lines.size(), 2u);
  EXPECT_EQ(got.lines[0].kind, LogLineKind::kIncomplete);
  EXPECT_EQ(got.lines[0].offset, 2u);
  EXPECT_EQ(got.lines[0].end, 6u);
  EXPECT_EQ(got.lines[1].text, "c");
}

TEST_F(LogFollowerTest, TruncationStartsAgainAtZero) {
  append("first line\nsecond line\n");
  LogFollower follower(path_, FollowStart{std::nullopt, true}, 1024, notices_);
  EXPECT_EQ(texts(read(follower)).size(), 2u);
  std::filesystem::resize_file(path_, 0);
  append("x\n");
  LogRead got = read(follower);
  ASSERT_EQ(texts(got), Lines{"x"});
  EXPECT_EQ(got.lines[0].offset, 0u);
  EXPECT_NE(notices_.str().find("was truncated"), std::string::npos) << notices_.str();
}

TEST_F(LogFollowerTest, CopytruncateKeepsTheFileAndStartsAgainAtZero) {
  append("a1\na2\n");
  LogFollower follower(path_, FollowStart{std::nullopt, true}, 1024, notices_);
  EXPECT_EQ(texts(read(follower)).size(), 2u);
  const FileIdentity file = identity(path_);
  std::filesystem::copy_file(path_, path_ + ".1");
  { std::ofstream truncate(path_, std::ios::binary | std::ios::trunc); }
  append("b\n");
  ASSERT_EQ(identity(path_), file);
  LogRead got = read(follower);
  EXPECT_EQ(texts(got), Lines{"b"});
  EXPECT_EQ(follower.position(), (LogPosition{file, 2}));
}

TEST_F(LogFollowerTest, AnOversizeLineComesBackWithoutItsTextOnceComplete) {
  const std::string big(5000, 'x');
  append("ok\n" + big.substr(0, 3000));
  LogFollower follower(path_, FollowStart{std::nullopt, true}, 1024, notices_);
  EXPECT_EQ(texts(read(follower)), Lines{"ok"});
  EXPECT_EQ(follower.position()->offset, 3u);  // the oversize line is not complete yet
  append(big.substr(3000) + "\nnext\n");
  LogRead got = read(follower);
  ASSERT_EQ(got.lines.size(), 2u);
  EXPECT_EQ(got.lines[0].kind, LogLineKind::kOversize);
  EXPECT_TRUE(got.lines[0].text.empty());
  EXPECT_EQ(got.lines[0].offset, 3u);
  EXPECT_EQ(got.lines[0].end, 3u + 5000 + 1);
  EXPECT_EQ(got.lines[1].text, "next");
  EXPECT_EQ(got.lines[1].offset, 3u + 5000 + 1);
}

TEST_F(LogFollowerTest, AMissingFileIsWaitedForAndReadFromZero) {
  LogFollower follower(path_, FollowStart{}, 1024, notices_);
  LogRead got = read(follower);
  EXPECT_TRUE(got.lines.empty());
  EXPECT_TRUE(got.at_end);
  EXPECT_FALSE(follower.position());
  EXPECT_NE(notices_.str().find("does not exist yet"), std::string::npos);
  append("a\n");
  EXPECT_EQ(texts(read(follower)), Lines{"a"});
}

}  // namespace
}  // namespace shadan
