// The error-propagation macros: a failed Result leaves the function with its error untouched,
// a successful one hands over its value (moved, not copied) and evaluates the expression once.

#include "common/result.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <utility>

namespace shadan {
namespace {

Result<std::unique_ptr<int>> makeInt(bool ok, int value) {
  if (!ok) return makeError(ErrorCode::kNotFound, "no int");
  return std::make_unique<int>(value);
}

Result<int> doubled(bool ok, int value, int* evaluations) {
  SHADAN_ASSIGN_OR_RETURN(auto owned, ([&] {
                            ++*evaluations;
                            return makeInt(ok, value);
                          }()));
  return *owned * 2;  // move-only values come out of the Result
}

Result<std::string> twoInOneScope(bool first_ok, bool second_ok) {
  SHADAN_ASSIGN_OR_RETURN(const auto a, makeInt(first_ok, 1));
  SHADAN_ASSIGN_OR_RETURN(std::unique_ptr<int> b, makeInt(second_ok, 2));
  return std::to_string(*a) + std::to_string(*b);
}

Result<int> withCommas(bool ok) {
  // A template argument list with a comma reaches the macro as two arguments.
  SHADAN_ASSIGN_OR_RETURN(auto m, ok ? Result<std::map<int, int>>(std::map<int, int>{{1, 7}})
                                     : Result<std::map<int, int>>(makeError(ErrorCode::kIo, "x")));
  return m.at(1);
}

Status propagate(bool ok) {
  SHADAN_RETURN_IF_ERROR(makeInt(ok, 1));
  return okStatus();
}

TEST(AssignOrReturnTest, HandsOverTheValueAndEvaluatesTheExpressionOnce) {
  int evaluations = 0;
  Result<int> r = doubled(true, 21, &evaluations);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 42);
  EXPECT_EQ(evaluations, 1);
}

TEST(AssignOrReturnTest, PropagatesTheErrorUnchanged) {
  int evaluations = 0;
  Result<int> r = doubled(false, 21, &evaluations);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(r.error().message, "no int");
  EXPECT_EQ(evaluations, 1);
}

TEST(AssignOrReturnTest, SeveralInOneScopeStopAtTheFirstFailure) {
  EXPECT_EQ(*twoInOneScope(true, true), "12");
  EXPECT_FALSE(twoInOneScope(false, true).ok());
  EXPECT_FALSE(twoInOneScope(true, false).ok());
}

TEST(AssignOrReturnTest, ExpressionsWithCommas) {
  EXPECT_EQ(*withCommas(true), 7);
  EXPECT_EQ(withCommas(false).error().code, ErrorCode::kIo);
}

TEST(ReturnIfErrorTest, PropagatesResultsOfAnyType) {
  EXPECT_TRUE(propagate(true).ok());
  EXPECT_EQ(propagate(false).error().message, "no int");
}

}  // namespace
}  // namespace shadan
