#include "data/csv.h"

#include <filesystem>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/test_util.h"

namespace hmrec {
namespace {

using hmrec::testing::TempDir;
using hmrec::testing::WriteFile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::vector<std::string>> ReadAll(const std::string& path, size_t buffer = 1 << 20,
                                              std::vector<int64_t>* lines = nullptr) {
  auto r = CsvReader::Open(path, buffer);
  EXPECT_TRUE(r.ok()) << r.status();
  std::vector<std::vector<std::string>> rows;
  while (true) {
    absl::StatusOr<bool> more = (*r)->Next();
    EXPECT_TRUE(more.ok()) << more.status();
    if (!more.ok() || !*more) break;
    std::vector<std::string> row;
    for (absl::string_view f : (*r)->fields()) row.emplace_back(f);
    rows.push_back(row);
    if (lines) lines->push_back((*r)->line());
  }
  return rows;
}

absl::Status FirstError(const std::string& path) {
  auto r = CsvReader::Open(path, 64);
  if (!r.ok()) return r.status();
  while (true) {
    absl::StatusOr<bool> more = (*r)->Next();
    if (!more.ok()) return more.status();
    if (!*more) return absl::OkStatus();
  }
}

class CsvTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& content) {
    const std::string p = dir_.File("f.csv");
    WriteFile(p, content);
    return p;
  }
  TempDir dir_;
};

TEST_F(CsvTest, PlainRows) {
  auto rows = ReadAll(Write("a,b,c\n1,2,3\n"));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_THAT(rows[1], ElementsAre("1", "2", "3"));
}

TEST_F(CsvTest, QuotedCommasDoubledQuotesAndNewlines) {
  std::vector<int64_t> lines;
  auto rows = ReadAll(Write("id,desc\n1,\"a, b\"\n2,\"say \"\"hi\"\"\"\n3,\"two\nlines\"\n4,x\n"), 1 << 20, &lines);
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_THAT(rows[1], ElementsAre("1", "a, b"));
  EXPECT_THAT(rows[2], ElementsAre("2", "say \"hi\""));
  EXPECT_THAT(rows[3], ElementsAre("3", "two\nlines"));
  EXPECT_THAT(rows[4], ElementsAre("4", "x"));
  // The record after a quoted newline starts one physical line later.
  EXPECT_THAT(lines, ElementsAre(1, 2, 3, 4, 6));
}

TEST_F(CsvTest, EmptyFieldsAndTrailingComma) {
  auto rows = ReadAll(Write("a,,c\n,,\n\"\",x,\n"));
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_THAT(rows[0], ElementsAre("a", "", "c"));
  EXPECT_THAT(rows[1], ElementsAre("", "", ""));
  EXPECT_THAT(rows[2], ElementsAre("", "x", ""));
}

TEST_F(CsvTest, BomCrlfAndNoFinalNewline) {
  auto rows = ReadAll(Write("\xEF\xBB\xBFh1,h2\r\n1,\"q\r\nz\"\r\n2,3"));
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_THAT(rows[0], ElementsAre("h1", "h2"));  // no BOM in the first name
  EXPECT_THAT(rows[1], ElementsAre("1", "q\r\nz"));
  EXPECT_THAT(rows[2], ElementsAre("2", "3"));
}

TEST_F(CsvTest, BlankLinesSkippedButCounted) {
  std::vector<int64_t> lines;
  auto rows = ReadAll(Write("a\n\n\r\nb\n"), 1 << 20, &lines);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_THAT(lines, ElementsAre(1, 4));
}

TEST_F(CsvTest, RecordsLongerThanTheBufferAndAcrossBoundaries) {
  std::string big(1000, 'x');
  std::string content = "k,v\n";
  for (int i = 0; i < 50; ++i) content += std::to_string(i) + ",\"" + big + ",\"\"" + "\"\n";
  auto small = ReadAll(Write(content), 64);
  auto large = ReadAll(Write(content), 1 << 20);
  ASSERT_EQ(small.size(), 51u);
  EXPECT_EQ(small, large);
  EXPECT_EQ(small[50][1], big + ",\"");
}

TEST_F(CsvTest, UnterminatedQuoteNamesFileAndLine) {
  absl::Status s = FirstError(Write("a,b\n1,\"open\n2,3\n"));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("f.csv:2:"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("unterminated"));
}

TEST_F(CsvTest, QuoteInsideUnquotedFieldIsAnError) {
  absl::Status s = FirstError(Write("a,b\n1,ab\"c\n"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("f.csv:2: quote inside unquoted field 2"));
}

TEST_F(CsvTest, TextAfterClosingQuoteIsAnError) {
  absl::Status s = FirstError(Write("a\n\"x\"y\n"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("f.csv:2: unexpected character after closing quote"));
}

TEST_F(CsvTest, MissingFileIsNotFound) {
  auto r = CsvReader::Open(dir_.File("nope.csv"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CsvTest, WriterQuotesWhatNeedsItAndRoundTrips) {
  const std::string p = dir_.File("out.csv");
  auto w = CsvWriter::Open(p);
  ASSERT_TRUE(w.ok());
  (*w)->Row({"plain", "with,comma", "with \"quote\"", "two\nlines", ""});
  // Not visible under its name before Close().
  EXPECT_FALSE(std::filesystem::exists(p));
  ASSERT_TRUE((*w)->Close().ok());
  EXPECT_EQ(hmrec::testing::ReadFile(p), "plain,\"with,comma\",\"with \"\"quote\"\"\",\"two\nlines\",\n");
  auto rows = ReadAll(p);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_THAT(rows[0], ElementsAre("plain", "with,comma", "with \"quote\"", "two\nlines", ""));
}

// A row of one empty field must not become a blank line (which readers
// skip): found by tests/fuzz/csv_fuzz.cc's round trip.
TEST_F(CsvTest, WriterKeepsARowOfOneEmptyField) {
  const std::string p = dir_.File("empty.csv");
  auto w = CsvWriter::Open(p);
  ASSERT_TRUE(w.ok());
  (*w)->Row({"a"});
  (*w)->Row({""});
  (*w)->Row({"", ""});
  ASSERT_TRUE((*w)->Close().ok());
  EXPECT_EQ(hmrec::testing::ReadFile(p), "a\n\"\"\n,\n");
  auto rows = ReadAll(p);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_THAT(rows[1], ElementsAre(""));
  EXPECT_THAT(rows[2], ElementsAre("", ""));
}

// A first field that starts with the bytes of a byte-order mark keeps them:
// unquoted, the reader would take them for a BOM and drop them (found by
// tests/fuzz/csv_fuzz.cc's round trip).
TEST_F(CsvTest, WriterKeepsBomBytesAtTheStartOfTheFirstField) {
  const std::string p = dir_.File("bom.csv");
  auto w = CsvWriter::Open(p);
  ASSERT_TRUE(w.ok());
  (*w)->Row({"\xEF\xBB\xBFx", "\xEF\xBB\xBFy"});
  ASSERT_TRUE((*w)->Close().ok());
  auto rows = ReadAll(p);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_THAT(rows[0], ElementsAre("\xEF\xBB\xBFx", "\xEF\xBB\xBFy"));
}

TEST_F(CsvTest, WriterDroppedWithoutCloseLeavesNothing) {
  const std::string p = dir_.File("out.csv");
  {
    auto w = CsvWriter::Open(p);
    ASSERT_TRUE(w.ok());
    (*w)->Row({"a"});
  }
  EXPECT_FALSE(std::filesystem::exists(p));
  EXPECT_FALSE(std::filesystem::exists(p + ".tmp"));
}

}  // namespace
}  // namespace hmrec
