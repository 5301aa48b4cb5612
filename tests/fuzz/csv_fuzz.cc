// libFuzzer target for the CSV readers (clang -fsanitize=fuzzer,address,undefined;
// built with -DHMREC_FUZZ=ON, see tests/fuzz/README.md).
//
// The first input byte picks what reads the rest, written to a file:
//   0  CsvReader with the smallest buffer (64 bytes, so records straddle
//      refills and the buffer grows), and a round trip: every record it
//      parses, written back by CsvWriter and read again, must come back
//      field for field;
//   1  ReadArticles   2  ReadCustomers   3  ReadTransactions (after a small
//      valid articles.csv and customers.csv)   4  ReadCustomerIds
//   5  ReadSubmission
// For 1..5 an error must name the file and line ("path:line: ..."), or the
// file alone for whole-file problems — never crash, hang or read out of bounds.

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "data/csv.h"
#include "data/customer_list.h"
#include "data/hm_data.h"
#include "data/submission.h"
#include "tests/fuzz/fuzz_file.h"

namespace {

using hmrec::fuzz::WriteScratch;

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "csv_fuzz: property violated: %s\n", what);
    std::abort();
  }
}

// Errors name the file they are about.
void CheckError(const absl::Status& s, const std::string& path) {
  if (s.ok()) return;
  Check(absl::StrContains(s.message(), path), "an error message does not name the file");
}

std::vector<std::vector<std::string>> ReadAll(const std::string& path, absl::Status* status) {
  std::vector<std::vector<std::string>> rows;
  auto reader = hmrec::CsvReader::Open(path, 64);
  if (!reader.ok()) {
    *status = reader.status();
    return rows;
  }
  while (true) {
    absl::StatusOr<bool> more = (*reader)->Next();
    if (!more.ok()) {
      *status = more.status();
      // "path:line: message", the line being a real line of the input.
      Check(absl::StartsWith(more.status().message(), path + ":"), "a record error does not start with path:");
      return rows;
    }
    if (!*more) break;
    rows.emplace_back((*reader)->fields().begin(), (*reader)->fields().end());
  }
  *status = absl::OkStatus();
  return rows;
}

void RoundTrip(const uint8_t* data, size_t size) {
  const std::string in = WriteScratch("in.csv", data, size);
  absl::Status status;
  const std::vector<std::vector<std::string>> rows = ReadAll(in, &status);
  const std::string out = hmrec::fuzz::ScratchDir() + "/out.csv";
  {
    auto writer = hmrec::CsvWriter::Open(out);
    Check(writer.ok(), "cannot open the output");
    for (const auto& row : rows) {
      std::vector<absl::string_view> views(row.begin(), row.end());
      (*writer)->Row(views);
    }
    Check((*writer)->Close().ok(), "cannot close the output");
  }
  absl::Status again_status;
  const std::vector<std::vector<std::string>> again = ReadAll(out, &again_status);
  Check(again_status.ok(), "what CsvWriter wrote does not parse");
  Check(again == rows, "records written by CsvWriter read back differently");
}

// Small valid tables for the transactions reader to refer to.
void LoadReferenceTables(hmrec::Dataset* ds) {
  static const char kArticles[] =
      "article_id,product_code,prod_name,product_type_no,product_type_name,product_group_name,"
      "graphical_appearance_no,graphical_appearance_name,colour_group_code,colour_group_name,"
      "perceived_colour_value_id,perceived_colour_value_name,perceived_colour_master_id,"
      "perceived_colour_master_name,department_no,department_name,index_code,index_name,"
      "index_group_no,index_group_name,section_no,section_name,garment_group_no,garment_group_name,"
      "detail_desc\n"
      "0108775015,0108775,Strap top,253,Vest top,Garment Upper body,1010016,Solid,09,Black,4,Dark,5,"
      "Black,1676,Jersey Basic,A,Ladieswear,1,Ladieswear,16,Womens Everyday Basics,1002,Jersey Basic,"
      "Jersey top\n";
  static const char kCustomers[] =
      "customer_id,FN,Active,club_member_status,fashion_news_frequency,age,postal_code\n"
      "00000dbacae5abe5e23885899a1fa44253a17956c6d1c3d25f88aa139fdfc657,,,ACTIVE,NONE,49,"
      "52043ee2162cf5aa7ee79974281641c6f11a68d276429a91f8ca0d4b6efa8100\n";
  const std::string a =
      WriteScratch("articles.csv", reinterpret_cast<const uint8_t*>(kArticles), sizeof(kArticles) - 1);
  const std::string c =
      WriteScratch("customers.csv", reinterpret_cast<const uint8_t*>(kCustomers), sizeof(kCustomers) - 1);
  Check(hmrec::ReadArticles(a, ds).ok(), "the reference articles.csv does not load");
  Check(hmrec::ReadCustomers(c, ds).ok(), "the reference customers.csv does not load");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0] % 6;
  ++data;
  --size;
  switch (mode) {
    case 0:
      RoundTrip(data, size);
      break;
    case 1: {
      hmrec::Dataset ds;
      const std::string p = WriteScratch("articles_in.csv", data, size);
      CheckError(hmrec::ReadArticles(p, &ds), p);
      break;
    }
    case 2: {
      hmrec::Dataset ds;
      const std::string p = WriteScratch("customers_in.csv", data, size);
      CheckError(hmrec::ReadCustomers(p, &ds), p);
      break;
    }
    case 3: {
      hmrec::Dataset ds;
      LoadReferenceTables(&ds);
      const std::string p = WriteScratch("transactions_in.csv", data, size);
      hmrec::LoadOptions options;
      options.use_cache = false;
      options.show_progress = false;
      CheckError(hmrec::ReadTransactions(p, options, &ds), p);
      break;
    }
    case 4: {
      const std::string p = WriteScratch("ids_in.csv", data, size);
      CheckError(hmrec::ReadCustomerIds(p).status(), p);
      break;
    }
    case 5: {
      const std::string p = WriteScratch("submission_in.csv", data, size);
      hmrec::SubmissionCheck check;
      CheckError(hmrec::ReadSubmission(p, &check).status(), p);
      break;
    }
  }
  return 0;
}
