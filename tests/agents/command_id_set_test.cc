#include "agents/command_id_set.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace shadan {
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

}  // namespace
}  // namespace shadan
