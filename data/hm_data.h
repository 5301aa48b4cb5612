#pragma once

// The H&M Kaggle tables in memory, and their readers.
//
// Articles and customers get dense indices in file order; transactions are
// kept as a struct of arrays of dense indices (15 bytes a row), in file
// order. Malformed rows are errors naming file and line. A transaction whose
// customer or article is missing from the other files is counted, reported
// with examples and excluded (or an error with strict_references).
//
// A Dataset is immutable after loading and safe to read from many threads.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "data/vocab.h"

namespace hmrec {

inline constexpr char kArticlesFile[] = "articles.csv";
inline constexpr char kCustomersFile[] = "customers.csv";
inline constexpr char kTransactionsFile[] = "transactions_train.csv";
inline constexpr char kSampleSubmissionFile[] = "sample_submission.csv";

// Column names exactly as in the Kaggle files.
const std::vector<absl::string_view>& ArticleColumns();      // 25 columns
const std::vector<absl::string_view>& CustomerColumns();     // 7 columns
const std::vector<absl::string_view>& TransactionColumns();  // 5 columns

// One row of articles.csv.
struct Article {
  int32_t article_id = 0;
  int32_t product_code = 0;
  std::string prod_name;
  int32_t product_type_no = 0;
  std::string product_type_name;
  std::string product_group_name;
  int32_t graphical_appearance_no = 0;
  std::string graphical_appearance_name;
  int32_t colour_group_code = 0;
  std::string colour_group_name;
  int32_t perceived_colour_value_id = 0;
  std::string perceived_colour_value_name;
  int32_t perceived_colour_master_id = 0;
  std::string perceived_colour_master_name;
  int32_t department_no = 0;
  std::string department_name;
  std::string index_code;
  std::string index_name;
  int32_t index_group_no = 0;
  std::string index_group_name;
  int32_t section_no = 0;
  std::string section_name;
  int32_t garment_group_no = 0;
  std::string garment_group_name;
  std::string detail_desc;
};

// One row of customers.csv; the id lives in Dataset::customer_ids.
struct Customer {
  int8_t fn = -1;                       // FN: the value written (1 in the real file), -1 if empty
  int8_t active = -1;                   // Active: likewise
  int16_t age = -1;                     // -1 if empty
  uint16_t club_member_status = 0;      // id in Dataset::club_member_status
  uint16_t fashion_news_frequency = 0;  // id in Dataset::fashion_news_frequency
  uint32_t postal_code = 0;             // id in Dataset::postal_codes
};

// transactions_train.csv as columns of dense indices, in file order.
struct Transactions {
  std::vector<int32_t> day;        // days since 1970-01-01
  std::vector<uint32_t> customer;  // index into Dataset::customers
  std::vector<uint32_t> article;   // index into Dataset::articles
  std::vector<float> price;
  std::vector<uint8_t> sales_channel;

  size_t size() const { return day.size(); }
  void Reserve(size_t n);
  void ShrinkToFit();
};

// What loading found besides the rows it kept.
struct LoadReport {
  int64_t transaction_rows_read = 0;
  int64_t unknown_customer_rows = 0;
  int64_t unknown_article_rows = 0;
  // The first few offending rows, as "file:line: what".
  std::vector<std::string> examples;
  bool from_cache = false;

  // Returns a one-paragraph human summary.
  std::string Summary() const;
};

struct Dataset {
  std::vector<Article> articles;
  absl::flat_hash_map<int32_t, uint32_t> article_index;  // article_id -> index

  FixedWidthIndex customer_ids{64};  // index <-> 64-hex customer id
  std::vector<Customer> customers;
  StringVocab club_member_status;      // id 0 is "" (empty field)
  StringVocab fashion_news_frequency;  // id 0 is "" (empty field)
  StringVocab postal_codes;

  Transactions transactions;
  int32_t first_day = 0;  // of transactions; 0 when there are none
  int32_t last_day = 0;
  LoadReport report;

  std::optional<uint32_t> FindArticle(int32_t article_id) const {
    auto it = article_index.find(article_id);
    if (it == article_index.end()) return std::nullopt;
    return it->second;
  }
  std::optional<uint32_t> FindCustomer(absl::string_view id) const { return customer_ids.Find(id); }
  absl::string_view customer_id(uint32_t index) const { return customer_ids.Get(index); }
};

struct LoadOptions {
  // Fail on a transaction naming an unknown customer or article instead of
  // counting and excluding it.
  bool strict_references = false;
  // A transaction naming a customer not in customers.csv adds the customer,
  // with an unknown profile (no age, club status, news frequency, postal
  // code), instead of being excluded: for purchases recorded online
  // (ReadExtraTransactions).
  bool add_unknown_customers = false;
  // Use and refresh the binary cache of the parsed tables.
  bool use_cache = true;
  // Where the cache lives; empty means "<data_dir>/.hmrec_cache".
  std::string cache_dir;
  // Print progress lines on stderr.
  bool show_progress = true;
};

// Readers of the single files; each appends to `ds`. Articles and customers
// must be read before transactions.
absl::Status ReadArticles(const std::string& path, Dataset* ds);
absl::Status ReadCustomers(const std::string& path, Dataset* ds);
absl::Status ReadTransactions(const std::string& path, const LoadOptions& options, Dataset* ds);
// More transactions after a loaded dataset (purchases recorded online,
// `hmrec_events export`): appended like ReadTransactions with
// add_unknown_customers, then the dataset finished again (its day range).
// Returns how many customers they added.
absl::StatusOr<int64_t> ReadExtraTransactions(const std::string& path, LoadOptions options, Dataset* ds);

// Forgets the customers of `erased` (64-hex ids; ids the dataset lacks are
// ignored): their customers.csv rows and transactions are removed, the
// other customers renumbered in their order. For a retrain after erasure
// requests (`--erasures`, the list `hmrec_events erasures` writes), applied
// after every transaction file is read. Returns how many customers it
// removed and, in `*transactions` (may be null), how many of their rows.
int64_t EraseCustomers(const std::vector<std::string>& erased, Dataset* ds, int64_t* transactions = nullptr);

// The --erasures flag of the trainer and the index builder: reads the list
// at `path` (a customer_id header, one id a line, possibly none; errors
// name file and line), erases its customers and finishes the dataset again.
struct ErasureReport {
  int64_t listed = 0;        // ids in the file
  int64_t customers = 0;     // of them in the dataset, now removed
  int64_t transactions = 0;  // their rows removed
};
absl::StatusOr<ErasureReport> ApplyErasures(const std::string& path, Dataset* ds);

// Builds the derived fields (article_index, first/last day) after the
// tables were filled by a reader or the cache.
absl::Status FinishDataset(Dataset* ds);

// A copy of `ds` whose transactions are those before `day` (articles,
// customers and their ids unchanged): the data as it was on `day`, for
// models that must not see what they will be asked to predict.
absl::StatusOr<std::unique_ptr<Dataset>> DatasetBefore(const Dataset& ds, int32_t day);

}  // namespace hmrec
