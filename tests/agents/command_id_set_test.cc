#include "agents/orders/command_id_set.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace shadan::agent {
namespace {

std::vector<std::string> items(const CommandIdSet& set) { return {set.begin(), set.end()}; }

TEST(CommandIdSetTest, BehavesAsASortedSetOfStrings) {
  CommandIdSet set;
  EXPECT_TRUE(set.empty());
  EXPECT_EQ(set.begin(), set.end());
  EXPECT_TRUE(set.insert("b"));
  EXPECT_TRUE(set.insert("a"));
  EXPECT_FALSE(set.insert("a"));
  EXPECT_EQ(set.size(), 2u);
  EXPECT_TRUE(set.contains("a"));
  EXPECT_EQ(set.count("c"), 0u);
  EXPECT_EQ(items(set), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(set.erase("a"));
  EXPECT_FALSE(set.erase("a"));
  EXPECT_EQ(items(set), (std::vector<std::string>{"b"}));
  set.clear();
  EXPECT_TRUE(set.empty());
}

TEST(CommandIdSetTest, CopiesShareUntilOneChangesAndNeverSeeEachOthersChanges) {
  CommandIdSet original{"a", "b"};
  CommandIdSet copy = original;
  EXPECT_TRUE(copy.sharesStorageWith(original));
  EXPECT_EQ(copy, original);

  copy.insert("c");
  EXPECT_FALSE(copy.sharesStorageWith(original));
  EXPECT_EQ(items(original), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(items(copy), (std::vector<std::string>{"a", "b", "c"}));

  CommandIdSet another = original;
  original.erase("a");
  EXPECT_EQ(items(another), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(items(original), (std::vector<std::string>{"b"}));
}

TEST(CommandIdSetTest, OrderIsByteOrderLikeTheDatabaseIndex) {
  CommandIdSet set{"b", "B", "a-", "a", "\x7f", "0"};
  EXPECT_EQ(items(set), (std::vector<std::string>{"0", "B", "a", "a-", "b", "\x7f"}));
}

TEST(CommandIdSetTest, IdsUpToTheLimitFitLongerOnesAreABrokenInvariant) {
  const std::string longest(CommandIdSet::kMaxLength, 'x');
  EXPECT_TRUE(CommandIdSet::fits(longest));
  EXPECT_FALSE(CommandIdSet::fits(longest + "x"));
  CommandIdSet set;
  EXPECT_TRUE(set.insert(longest));
  EXPECT_TRUE(set.contains(longest));
  EXPECT_FALSE(set.contains(longest + "x"));  // asking is fine
  EXPECT_DEATH(set.insert(longest + "x"), "broken invariant: command id");
}

TEST(CommandIdSetTest, EqualityComparesContentsNotStorage) {
  CommandIdSet a{"x", "y"};
  CommandIdSet b;
  b.insert("y");
  b.insert("x");
  EXPECT_FALSE(a.sharesStorageWith(b));
  EXPECT_EQ(a, b);
  b.insert("z");
  EXPECT_NE(a, b);
  EXPECT_EQ(CommandIdSet{}, CommandIdSet());
  CommandIdSet emptied{"q"};
  emptied.erase("q");
  EXPECT_EQ(emptied, CommandIdSet{});
}

TEST(CommandIdSetTest, ForgetsOnlyWhatIsPastItsTimeAndCopiesKeepTheirs) {
  CommandIdSet set;
  set.insert("old", 1000);
  set.insert("edge", 2000);
  set.insert("new", 5000);
  set.insert("kept");                       // no time: kept until erased
  EXPECT_FALSE(set.insert("old", 99'999));  // already there: keeps its time
  const CommandIdSet before = set;

  EXPECT_EQ(set.forgetExpired(500), 0u);
  EXPECT_TRUE(set.sharesStorageWith(before));  // nothing to drop: not even cloned
  EXPECT_EQ(set.forgetExpired(2000), 1u);      // "edge" may be forgotten AFTER 2000, not at
  EXPECT_EQ(items(set), (std::vector<std::string>{"edge", "kept", "new"}));
  EXPECT_EQ(set.forgetExpired(INT64_MAX), 2u);
  EXPECT_EQ(items(set), std::vector<std::string>{"kept"});
  EXPECT_EQ(items(before), (std::vector<std::string>{"edge", "kept", "new", "old"}));
  EXPECT_NE(set, before);
}

TEST(CommandIdSetTest, EqualityIncludesTheForgetTime) {
  CommandIdSet a;
  a.insert("x", 10);
  CommandIdSet b;
  b.insert("x", 20);
  EXPECT_NE(a, b);
  std::vector<int64_t> times;
  for (auto at = a.begin(); at != a.end(); ++at) times.push_back(at.forgetAfterMs());
  EXPECT_EQ(times, std::vector<int64_t>{10});
}

}  // namespace
}  // namespace shadan::agent
