#include "common/strict_json.h"

#include <gtest/gtest.h>

#include <string>

namespace shadan {
namespace {

constexpr size_t kLimit = 4096;

std::string errorOf(std::string_view text, size_t limit = kLimit) {
  auto parsed = parseStrictJson(text, "doc.json", limit);
  if (parsed.ok()) return "<parsed>";
  EXPECT_EQ(parsed.error().code, ErrorCode::kParse);
  return parsed.error().message;
}

TEST(StrictJsonTest, ParsesEveryAllowedType) {
  auto parsed = parseStrictJson(
      R"({"s": "x", "i": -3, "u": 18446744073709551615, "b": true, "n": null,
          "a": [1, "two", [3]], "o": {"k": {}}})",
      "doc.json", kLimit);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  const auto& doc = *parsed;
  EXPECT_EQ(doc.at("s"), "x");
  EXPECT_EQ(doc.at("i"), -3);
  EXPECT_EQ(doc.at("u").get<uint64_t>(), 18446744073709551615u);
  EXPECT_EQ(doc.at("b"), true);
  EXPECT_TRUE(doc.at("n").is_null());
  EXPECT_EQ(doc.at("a").size(), 3u);
  EXPECT_TRUE(doc.at("o").at("k").is_object());
}

TEST(StrictJsonTest, AcceptsScalarRootAndSameKeyInDifferentObjects) {
  EXPECT_EQ(errorOf("42"), "<parsed>");
  EXPECT_EQ(errorOf(R"([{"a": 1}, {"a": 2}, {"b": {"a": 3}, "a": 4}])"), "<parsed>");
}

TEST(StrictJsonTest, SizeCapIsCheckedBeforeParsing) {
  // Not JSON at all: only the size check can produce this message.
  const std::string big(kLimit + 1, '{');
  EXPECT_EQ(errorOf(big), "doc.json: 4097 bytes exceeds the limit of 4096 bytes");
  const std::string exact = "\"" + std::string(kLimit - 2, 'a') + "\"";
  EXPECT_EQ(errorOf(exact), "<parsed>");
}

TEST(StrictJsonTest, DuplicateKeyAtRootNamesRootPointer) {
  EXPECT_EQ(errorOf(R"({"name": "a", "name": "b"})"), "doc.json: /: duplicate key \"name\"");
}

TEST(StrictJsonTest, DuplicateKeyNamesPointerOfTheObject) {
  EXPECT_EQ(errorOf(R"({"gateways": {"core-gw": {"borders": [], "borders": ["x"]}}})"),
            "doc.json: /gateways/core-gw: duplicate key \"borders\"");
}

TEST(StrictJsonTest, DuplicateKeyInsideArrayElementCountsIndices) {
  EXPECT_EQ(errorOf(R"({"list": [1, {"a": 1}, [2, {"b": 1}], {"p": 1, "p": 2}]})"),
            "doc.json: /list/3: duplicate key \"p\"");
  EXPECT_EQ(errorOf(R"([[], [0, {"x": {"y": 1, "y": 1}}]])"),
            "doc.json: /1/1/x: duplicate key \"y\"");
}

TEST(StrictJsonTest, DuplicateKeyInALargeObjectIsFoundWhereverItIs) {
  // Small objects are checked by a scan, large ones by a set: both must see every duplicate.
  for (const int keys : {3, 16, 17, 200}) {
    std::string doc = R"({"big": {)";
    for (int i = 0; i < keys; ++i)
      doc += "\"k" + std::to_string(i) + "\": " + std::to_string(i) + ", ";
    for (const int again : {0, keys - 1}) {
      const std::string text = doc + "\"k" + std::to_string(again) + "\": 0}}";
      EXPECT_EQ(errorOf(text), "doc.json: /big: duplicate key \"k" + std::to_string(again) + "\"")
          << keys << " keys";
    }
    doc.resize(doc.size() - 2);
    EXPECT_EQ(errorOf(doc + "}}"), "<parsed>") << keys << " keys";
  }
}

TEST(StrictJsonTest, PointerEscapesSlashAndTilde) {
  EXPECT_EQ(errorOf(R"({"a/b": {"c~d": {"k": 1, "k": 2}}})"),
            "doc.json: /a~1b/c~0d: duplicate key \"k\"");
}

TEST(StrictJsonTest, DuplicateKeyIsQuotedAndEscaped) {
  EXPECT_EQ(errorOf("{\"a\\nb\": 1, \"a\\nb\": 2}"), "doc.json: /: duplicate key \"a\\nb\"");
}

TEST(StrictJsonTest, RejectsFloatsWithPointer) {
  EXPECT_EQ(errorOf(R"({"port": 8443.0})"),
            "doc.json: /port: floating-point numbers are not allowed (integers must fit in 64 "
            "bits)");
  EXPECT_NE(errorOf(R"({"a": [1, 2, 1e3]})").find("doc.json: /a/2: floating-point"),
            std::string::npos);
  // Too large for 64 bits: nlohmann would silently turn it into a double.
  EXPECT_NE(errorOf(R"({"n": 18446744073709551616})").find("doc.json: /n: floating-point"),
            std::string::npos);
  EXPECT_NE(errorOf("1.5").find("doc.json: /: floating-point"), std::string::npos);
}

TEST(StrictJsonTest, MalformedJsonNamesBytePosition) {
  const std::string error = errorOf("{\"a\": 1,\n \"b\": }");
  EXPECT_EQ(error.rfind("doc.json: byte 16: ", 0), 0u) << error;
  EXPECT_NE(error.find("line 2"), std::string::npos) << error;
  EXPECT_EQ(error.find("[json.exception"), std::string::npos) << error;
}

TEST(StrictJsonTest, RejectsOtherMalformedInputs) {
  const char* cases[] = {
      "",                    // empty
      "{",                   // truncated
      "{\"a\": 1} x",        // trailing garbage
      "{\"a\": 1,}",         // trailing comma
      "{'a': 1}",            // single quotes
      "{\"a\": 1 /* c */}",  // comments
      "{\"a\": \"\xff\"}",   // invalid UTF-8
      "{\"a\": 01}",         // leading zero
      "{\"a\": NaN}",
  };
  for (const char* text : cases) {
    const std::string error = errorOf(text);
    EXPECT_EQ(error.rfind("doc.json: byte ", 0), 0u) << "\"" << text << "\" -> " << error;
  }
}

TEST(StrictJsonTest, NumberOverflowIsAnErrorNotAnException) {
  const std::string error = errorOf(R"({"n": 1e400})");
  EXPECT_EQ(error.rfind("doc.json: ", 0), 0u) << error;
  EXPECT_NE(error, "<parsed>");
}

TEST(StrictJsonTest, RejectsNestingBeyondTheLimit) {
  const std::string ok_depth =
      std::string(kStrictJsonMaxDepth, '[') + std::string(kStrictJsonMaxDepth, ']');
  EXPECT_EQ(errorOf(ok_depth), "<parsed>");
  const std::string too_deep =
      std::string(kStrictJsonMaxDepth + 1, '[') + std::string(kStrictJsonMaxDepth + 1, ']');
  const std::string error = errorOf(too_deep);
  EXPECT_NE(error.find("nesting deeper than 64 levels"), std::string::npos) << error;
  // A hostile document far deeper than the limit stops early instead of being built.
  EXPECT_NE(errorOf(std::string(4000, '[')).find("nesting deeper"), std::string::npos);
}

TEST(StrictJsonTest, PointerHelpers) {
  EXPECT_EQ(jsonPointerAppend("", "segments"), "/segments");
  EXPECT_EQ(jsonPointerAppend("/segments", "a/b~c"), "/segments/a~1b~0c");
  EXPECT_EQ(jsonPointerAppend("/list", size_t{7}), "/list/7");
  EXPECT_EQ(jsonPointerDisplay(""), "/");
  EXPECT_EQ(jsonPointerDisplay("/x"), "/x");
}

TEST(StrictJsonTest, QuoteForMessageEscapesAndTruncates) {
  EXPECT_EQ(quoteForMessage("lgwn"), "\"lgwn\"");
  EXPECT_EQ(quoteForMessage("a\x01"), "\"a\\u0001\"");
  EXPECT_EQ(quoteForMessage(std::string(100, 'x')), "\"" + std::string(64, 'x') + "\"...");
  // Truncation inside a multi-byte character must not throw.
  EXPECT_NO_THROW((void)quoteForMessage(std::string(63, 'a') + "\xe3\x81\x82"));
  EXPECT_EQ(quoteForMessage("\xe9\x81\xae\xe6\x96\xad"), "\"\xe9\x81\xae\xe6\x96\xad\"");
}

}  // namespace
}  // namespace shadan
