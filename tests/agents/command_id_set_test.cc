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

TEST(CommandIdSetTest, SoleOwnerChangesInPlace) {
  CommandIdSet set{"a"};
  const auto* before = &*set.begin();
  set.insert("b");
  EXPECT_EQ(&*set.begin(), before);  // not cloned: nobody else held it
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
