#include "common/strict_json.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

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

TEST(StrictJsonTest, AllowFloatsLiftsOnlyTheFloatRule) {
  auto parsed = parseStrictJson(R"({"ts": 1320279566.452687, "n": [1e3]})", "doc.json", 1024,
                                StrictJsonNumbers::kAllowFloats);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_DOUBLE_EQ((*parsed)["ts"].get<double>(), 1320279566.452687);
  auto duplicate = parseStrictJson(R"({"a": {"b": 1.5, "b": 2}})", "doc.json", 1024,
                                   StrictJsonNumbers::kAllowFloats);
  ASSERT_FALSE(duplicate.ok());
  EXPECT_EQ(duplicate.error().message, "doc.json: /a: duplicate key \"b\"");
  auto overflow =
      parseStrictJson(R"({"a": 1e400})", "doc.json", 1024, StrictJsonNumbers::kAllowFloats);
  EXPECT_FALSE(overflow.ok());
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

// ---------------------------------------------------------------------------------------------
// StrictObjectReader

nlohmann::json doc(std::string_view text) {
  return parseStrictJson(text, "doc.json", kLimit).value();
}

// The message of a failed read, or "<ok>".
template <typename T>
std::string messageOf(const Result<T>& result) {
  if (result.ok()) return "<ok>";
  EXPECT_EQ(result.error().code, ErrorCode::kParse);
  return result.error().message;
}

struct ReaderCase {
  const char* name;
  const char* json;
  std::function<Status(const StrictObjectReader&)> read;
  std::string expected;  // the whole message, or "<ok>"
};

// Runs `cases` against a reader over each document at pointer "/obj" in `wording`.
void runReaderCases(const std::vector<ReaderCase>& cases, StrictJsonWording wording) {
  for (const ReaderCase& c : cases) {
    const nlohmann::json value = doc(c.json);
    const StrictObjectReader reader(value, "doc.json", "/obj", wording);
    EXPECT_EQ(messageOf(c.read(reader)), c.expected) << c.name;
  }
}

template <typename T>
Status statusOf(const Result<T>& result) {
  if (!result.ok()) return result.error();
  return okStatus();
}

TEST(StrictObjectReaderTest, MemberSetInEachWording) {
  const auto members = [](const StrictObjectReader& r) {
    return r.checkMembers({"a", "b"}, {"c"});
  };
  struct Case {
    const char* json;
    std::string members;  // kMembers
    std::string fields;   // kFields
    std::string audit;    // kAuditFields
  };
  const std::vector<Case> cases = {
      {R"({"a": 1, "b": 2})", "<ok>", "<ok>", "<ok>"},
      {R"({"a": 1, "b": 2, "c": 3})", "<ok>", "<ok>", "<ok>"},
      {R"({"a": 1, "b": 2, "d/e": 3})", "doc.json: /obj: unknown member \"d/e\"",
       "doc.json: /obj/d~1e: unknown field \"d/e\"", "field \"obj.d/e\" unknown field"},
      {R"({"a": 1})", "doc.json: /obj: missing member \"b\"", "doc.json: /obj/b: is required",
       "missing field \"obj.b\""},
      // Unknown members are reported before missing ones.
      {R"({"z": 1})", "doc.json: /obj: unknown member \"z\"",
       "doc.json: /obj/z: unknown field \"z\"", "field \"obj.z\" unknown field"},
      {R"([1])", "doc.json: /obj: must be an object", "doc.json: /obj: must be an object",
       "field \"obj\" must be an object"},
  };
  for (const Case& c : cases) {
    const nlohmann::json value = doc(c.json);
    EXPECT_EQ(messageOf(members(StrictObjectReader(value, "doc.json", "/obj"))), c.members)
        << c.json;
    EXPECT_EQ(messageOf(members(
                  StrictObjectReader(value, "doc.json", "/obj", StrictJsonWording::kFields))),
              c.fields)
        << c.json;
    EXPECT_EQ(messageOf(members(
                  StrictObjectReader(value, "doc.json", "/obj", StrictJsonWording::kAuditFields))),
              c.audit)
        << c.json;
  }
}

TEST(StrictObjectReaderTest, RootObjectIsNamedSlash) {
  const nlohmann::json value = doc(R"({"x": 1})");
  const StrictObjectReader reader(value, "authz");
  EXPECT_EQ(messageOf(reader.checkMembers({})), "authz: /: unknown member \"x\"");
  EXPECT_EQ(reader.error("bad").message, "authz: /: bad");
  EXPECT_EQ(reader.error("x", "bad").message, "authz: /x: bad");
}

TEST(StrictObjectReaderTest, TypedGetters) {
  const StringRules name{.non_empty = true, .max_bytes = 4, .no_control = true};
  const std::vector<ReaderCase> cases = {
      {"string", R"({"s": "abc"})", [](auto& r) { return statusOf(r.string("s")); }, "<ok>"},
      {"empty string allowed", R"({"s": ""})", [](auto& r) { return statusOf(r.string("s")); },
       "<ok>"},
      {"string missing", R"({})", [](auto& r) { return statusOf(r.string("s")); },
       "doc.json: /obj: missing member \"s\""},
      {"string null", R"({"s": null})", [](auto& r) { return statusOf(r.string("s")); },
       "doc.json: /obj/s: must be a string"},
      {"string empty", R"({"s": ""})", [&](auto& r) { return statusOf(r.string("s", name)); },
       "doc.json: /obj/s: must not be empty"},
      {"string long", R"({"s": "abcde"})", [&](auto& r) { return statusOf(r.string("s", name)); },
       "doc.json: /obj/s: longer than 4 bytes"},
      {"string control", R"({"s": "a\tb"})", [&](auto& r) { return statusOf(r.string("s", name)); },
       "doc.json: /obj/s: contains a control character"},
      {"string delete", "{\"s\": \"a\x7f\"}",
       [&](auto& r) { return statusOf(r.string("s", name)); },
       "doc.json: /obj/s: contains a control character"},
      {"optional string absent", R"({})", [](auto& r) { return statusOf(r.optionalString("s")); },
       "<ok>"},
      {"optional string wrong", R"({"s": 1})",
       [](auto& r) { return statusOf(r.optionalString("s", kNonEmptyString)); },
       "doc.json: /obj/s: must be a string"},
      {"integer", R"({"i": -5})", [](auto& r) { return statusOf(r.integer("i", -5, 5)); }, "<ok>"},
      {"integer low", R"({"i": -6})", [](auto& r) { return statusOf(r.integer("i", -5, 5)); },
       "doc.json: /obj/i: must be between -5 and 5"},
      {"integer not", R"({"i": "1"})", [](auto& r) { return statusOf(r.integer("i")); },
       "doc.json: /obj/i: must be an integer"},
      {"integer huge", R"({"i": 9223372036854775808})",
       [](auto& r) { return statusOf(r.integer("i")); }, "doc.json: /obj/i: out of range"},
      {"integer max", R"({"i": 9223372036854775807})",
       [](auto& r) { return statusOf(r.integer("i")); }, "<ok>"},
      {"optional integer absent", R"({})", [](auto& r) { return statusOf(r.optionalInteger("i")); },
       "<ok>"},
      {"unsigned", R"({"u": 18446744073709551615})",
       [](auto& r) { return statusOf(r.unsignedInteger("u")); }, "<ok>"},
      {"unsigned negative", R"({"u": -1})",
       [](auto& r) { return statusOf(r.unsignedInteger("u")); },
       "doc.json: /obj/u: must be a non-negative integer"},
      {"boolean", R"({"b": false})", [](auto& r) { return statusOf(r.boolean("b")); }, "<ok>"},
      {"boolean not", R"({"b": 0})", [](auto& r) { return statusOf(r.optionalBoolean("b")); },
       "doc.json: /obj/b: must be true or false"},
      {"strings", R"({"a": ["x", ""]})", [](auto& r) { return statusOf(r.strings("a")); }, "<ok>"},
      {"strings mixed", R"({"a": ["x", 1]})", [](auto& r) { return statusOf(r.strings("a")); },
       "doc.json: /obj/a: must be an array of strings"},
      {"object", R"({"o": {}})", [](auto& r) { return statusOf(r.object("o")); }, "<ok>"},
      {"object not", R"({"o": []})", [](auto& r) { return statusOf(r.optionalObject("o")); },
       "doc.json: /obj/o: must be an object"},
      {"array", R"({"a": []})", [](auto& r) { return statusOf(r.array("a")); }, "<ok>"},
      {"array not", R"({"a": {}})", [](auto& r) { return statusOf(r.array("a")); },
       "doc.json: /obj/a: must be an array"},
      {"array empty", R"({"a": []})", [](auto& r) { return statusOf(r.array("a", 1)); },
       "doc.json: /obj/a: must be a non-empty array"},
      {"array long", R"({"a": [1, 2, 3]})", [](auto& r) { return statusOf(r.array("a", 1, 2)); },
       "doc.json: /obj/a: must be an array of 1 to 2 elements"},
      {"array own refusal", R"({"a": [1, 2, 3]})",
       [](auto& r) { return statusOf(r.array("a", 1, 2, "must hold 1 or 2 ids")); },
       "doc.json: /obj/a: must hold 1 or 2 ids"},
  };
  runReaderCases(cases, StrictJsonWording::kMembers);
}

TEST(StrictObjectReaderTest, GettersSpeakTheReadersWording) {
  const std::vector<ReaderCase> fields = {
      {"missing", R"({})", [](auto& r) { return statusOf(r.integer("n")); },
       "doc.json: /obj/n: is required"},
      {"wrong", R"({"n": true})", [](auto& r) { return statusOf(r.integer("n")); },
       "doc.json: /obj/n: must be an integer"},
  };
  runReaderCases(fields, StrictJsonWording::kFields);
  const std::vector<ReaderCase> audit = {
      {"missing", R"({})", [](auto& r) { return statusOf(r.integer("n")); },
       "missing field \"obj.n\""},
      {"wrong", R"({"n": true})", [](auto& r) { return statusOf(r.unsignedInteger("n")); },
       "field \"obj.n\" must be a non-negative integer"},
      {"nested", R"({"who": {"approvers": "op"}})",
       [](auto& r) {
         auto who = r.object("who");
         if (!who.ok()) return Status(who.error());
         return statusOf(who->strings("approvers"));
       },
       "field \"obj.who.approvers\" must be an array of strings"},
  };
  runReaderCases(audit, StrictJsonWording::kAuditFields);
}

TEST(StrictObjectReaderTest, ArrayElementsAreNamedByIndex) {
  const nlohmann::json value = doc(R"({"list": ["a", 7, {"k": 1}, ""]})");
  const StrictObjectReader reader(value, "doc.json");
  auto list = reader.array("list");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 4u);
  EXPECT_EQ(list->string(0).value(), "a");
  EXPECT_EQ(messageOf(list->string(1)), "doc.json: /list/1: must be a string");
  EXPECT_EQ(messageOf(list->string(3, kNonEmptyString)), "doc.json: /list/3: must not be empty");
  EXPECT_EQ(messageOf(list->object(0)), "doc.json: /list/0: must be an object");
  auto element = list->object(2);
  ASSERT_TRUE(element.ok());
  EXPECT_EQ(messageOf(element->checkMembers({}, {"j"})), "doc.json: /list/2: unknown member \"k\"");
  EXPECT_EQ(list->error(3, "duplicate").message, "doc.json: /list/3: duplicate");
  EXPECT_EQ(list->error("too long").message, "doc.json: /list: too long");
}

TEST(StrictObjectReaderTest, ReadsValues) {
  const nlohmann::json value =
      doc(R"({"s": "x", "i": -3, "u": 7, "b": true, "a": ["p", "q"], "o": {"k": "v"}})");
  const StrictObjectReader reader(value, "doc.json");
  ASSERT_TRUE(reader.checkMembers({"s", "i", "u", "b", "a", "o"}).ok());
  EXPECT_EQ(reader.string("s").value(), "x");
  EXPECT_EQ(reader.integer("i").value(), -3);
  EXPECT_EQ(reader.unsignedInteger("u").value(), 7u);
  EXPECT_TRUE(reader.boolean("b").value());
  EXPECT_EQ(reader.strings("a").value(), (std::vector<std::string>{"p", "q"}));
  EXPECT_EQ(reader.object("o").value().string("k").value(), "v");
  EXPECT_FALSE(reader.optionalString("t").value().has_value());
  EXPECT_FALSE(reader.optionalObject("t").value().has_value());
  EXPECT_TRUE(reader.has("o"));
  EXPECT_FALSE(reader.has("t"));
  EXPECT_EQ(reader.pointerOf("a/b"), "/a~1b");
}

}  // namespace
}  // namespace shadan
