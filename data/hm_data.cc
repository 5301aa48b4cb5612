#include "data/hm_data.h"

#include "data/customer_list.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/progress.h"
#include "common/status_macros.h"
#include "data/csv.h"
#include "data/dates.h"
#include "data/ids.h"

namespace hmrec {
namespace {

constexpr size_t kMaxReportExamples = 10;

absl::Status CheckHeader(CsvReader& reader, const std::vector<absl::string_view>& expected) {
  ASSIGN_OR_RETURN(bool has_row, reader.Next());
  if (!has_row) return absl::InvalidArgumentError(absl::StrCat(reader.path(), ": empty file"));
  const auto& got = reader.fields();
  if (got.size() != expected.size()) {
    return reader.RecordError(absl::StrCat("header has ", got.size(), " columns, expected ", expected.size(), ": ",
                                           absl::StrJoin(expected, ",")));
  }
  for (size_t i = 0; i < expected.size(); ++i) {
    if (got[i] != expected[i]) {
      return reader.RecordError(
          absl::StrCat("header column ", i + 1, " is '", got[i], "', expected '", expected[i], "'"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckFieldCount(const CsvReader& reader, size_t expected) {
  if (reader.fields().size() != expected) {
    return reader.RecordError(absl::StrCat("expected ", expected, " fields, got ", reader.fields().size()));
  }
  return absl::OkStatus();
}

// Parses column `col` as an int32, naming the column in errors.
absl::Status IntColumn(const CsvReader& reader, size_t col, absl::string_view name, int32_t* out) {
  absl::StatusOr<int64_t> v = ParseIntegerField(reader.fields()[col]);
  if (!v.ok() || *v < std::numeric_limits<int32_t>::min() || *v > std::numeric_limits<int32_t>::max()) {
    return reader.RecordError(absl::StrCat("column ", name, ": bad integer '", reader.fields()[col], "'"));
  }
  *out = static_cast<int32_t>(*v);
  return absl::OkStatus();
}

// Parses an optional flag-like column (FN, Active): empty -> -1.
absl::Status FlagColumn(const CsvReader& reader, size_t col, absl::string_view name, int8_t* out) {
  absl::string_view f = reader.fields()[col];
  if (f.empty()) {
    *out = -1;
    return absl::OkStatus();
  }
  absl::StatusOr<double> v = ParseDoubleField(f);
  if (!v.ok() || *v < 0 || *v > 100 || *v != std::floor(*v)) {
    return reader.RecordError(absl::StrCat("column ", name, ": bad value '", f, "'"));
  }
  *out = static_cast<int8_t>(*v);
  return absl::OkStatus();
}

void Note(LoadReport* report, std::string example) {
  if (report->examples.size() < kMaxReportExamples) report->examples.push_back(std::move(example));
}

}  // namespace

const std::vector<absl::string_view>& ArticleColumns() {
  static const auto* kColumns = new std::vector<absl::string_view>{"article_id",
                                                                   "product_code",
                                                                   "prod_name",
                                                                   "product_type_no",
                                                                   "product_type_name",
                                                                   "product_group_name",
                                                                   "graphical_appearance_no",
                                                                   "graphical_appearance_name",
                                                                   "colour_group_code",
                                                                   "colour_group_name",
                                                                   "perceived_colour_value_id",
                                                                   "perceived_colour_value_name",
                                                                   "perceived_colour_master_id",
                                                                   "perceived_colour_master_name",
                                                                   "department_no",
                                                                   "department_name",
                                                                   "index_code",
                                                                   "index_name",
                                                                   "index_group_no",
                                                                   "index_group_name",
                                                                   "section_no",
                                                                   "section_name",
                                                                   "garment_group_no",
                                                                   "garment_group_name",
                                                                   "detail_desc"};
  return *kColumns;
}

const std::vector<absl::string_view>& CustomerColumns() {
  static const auto* kColumns = new std::vector<absl::string_view>{
      "customer_id", "FN", "Active", "club_member_status", "fashion_news_frequency", "age", "postal_code"};
  return *kColumns;
}

const std::vector<absl::string_view>& TransactionColumns() {
  static const auto* kColumns =
      new std::vector<absl::string_view>{"t_dat", "customer_id", "article_id", "price", "sales_channel_id"};
  return *kColumns;
}

void Transactions::Reserve(size_t n) {
  day.reserve(n);
  customer.reserve(n);
  article.reserve(n);
  price.reserve(n);
  sales_channel.reserve(n);
}

void Transactions::ShrinkToFit() {
  day.shrink_to_fit();
  customer.shrink_to_fit();
  article.shrink_to_fit();
  price.shrink_to_fit();
  sales_channel.shrink_to_fit();
}

std::string LoadReport::Summary() const {
  std::string s = absl::StrCat(transaction_rows_read, " transaction rows read", from_cache ? " (from cache)" : "");
  if (unknown_customer_rows + unknown_article_rows > 0) {
    absl::StrAppend(&s, "; excluded ", unknown_customer_rows, " rows naming a customer missing from customers.csv and ",
                    unknown_article_rows, " rows naming an article missing from articles.csv");
    for (const std::string& e : examples) absl::StrAppend(&s, "\n  e.g. ", e);
  }
  return s;
}

absl::Status ReadArticles(const std::string& path, Dataset* ds) {
  ASSIGN_OR_RETURN(std::unique_ptr<CsvReader> reader, CsvReader::Open(path));
  RETURN_IF_ERROR(CheckHeader(*reader, ArticleColumns()));
  const size_t ncol = ArticleColumns().size();
  while (true) {
    ASSIGN_OR_RETURN(bool has_row, reader->Next());
    if (!has_row) break;
    RETURN_IF_ERROR(CheckFieldCount(*reader, ncol));
    const auto& f = reader->fields();
    Article a;
    absl::StatusOr<int32_t> id = ParseArticleId(f[0]);
    if (!id.ok()) return reader->RecordError(absl::StrCat("column article_id: ", id.status().message()));
    a.article_id = *id;
    RETURN_IF_ERROR(IntColumn(*reader, 1, "product_code", &a.product_code));
    a.prod_name = std::string(f[2]);
    RETURN_IF_ERROR(IntColumn(*reader, 3, "product_type_no", &a.product_type_no));
    a.product_type_name = std::string(f[4]);
    a.product_group_name = std::string(f[5]);
    RETURN_IF_ERROR(IntColumn(*reader, 6, "graphical_appearance_no", &a.graphical_appearance_no));
    a.graphical_appearance_name = std::string(f[7]);
    RETURN_IF_ERROR(IntColumn(*reader, 8, "colour_group_code", &a.colour_group_code));
    a.colour_group_name = std::string(f[9]);
    RETURN_IF_ERROR(IntColumn(*reader, 10, "perceived_colour_value_id", &a.perceived_colour_value_id));
    a.perceived_colour_value_name = std::string(f[11]);
    RETURN_IF_ERROR(IntColumn(*reader, 12, "perceived_colour_master_id", &a.perceived_colour_master_id));
    a.perceived_colour_master_name = std::string(f[13]);
    RETURN_IF_ERROR(IntColumn(*reader, 14, "department_no", &a.department_no));
    a.department_name = std::string(f[15]);
    a.index_code = std::string(f[16]);
    a.index_name = std::string(f[17]);
    RETURN_IF_ERROR(IntColumn(*reader, 18, "index_group_no", &a.index_group_no));
    a.index_group_name = std::string(f[19]);
    RETURN_IF_ERROR(IntColumn(*reader, 20, "section_no", &a.section_no));
    a.section_name = std::string(f[21]);
    RETURN_IF_ERROR(IntColumn(*reader, 22, "garment_group_no", &a.garment_group_no));
    a.garment_group_name = std::string(f[23]);
    a.detail_desc = std::string(f[24]);
    const uint32_t index = static_cast<uint32_t>(ds->articles.size());
    if (!ds->article_index.emplace(a.article_id, index).second) {
      return reader->RecordError(absl::StrCat("duplicate article_id ", f[0]));
    }
    ds->articles.push_back(std::move(a));
  }
  return absl::OkStatus();
}

absl::Status ReadCustomers(const std::string& path, Dataset* ds) {
  ASSIGN_OR_RETURN(std::unique_ptr<CsvReader> reader, CsvReader::Open(path));
  RETURN_IF_ERROR(CheckHeader(*reader, CustomerColumns()));
  if (ds->club_member_status.size() == 0) ds->club_member_status.Add("");
  if (ds->fashion_news_frequency.size() == 0) ds->fashion_news_frequency.Add("");
  ds->customer_ids.Reserve(static_cast<size_t>(reader->file_size() / 150));
  ds->customers.reserve(static_cast<size_t>(reader->file_size() / 150));
  const size_t ncol = CustomerColumns().size();
  while (true) {
    ASSIGN_OR_RETURN(bool has_row, reader->Next());
    if (!has_row) break;
    RETURN_IF_ERROR(CheckFieldCount(*reader, ncol));
    const auto& f = reader->fields();
    if (!IsValidCustomerId(f[0])) {
      return reader->RecordError(absl::StrCat("column customer_id: '", f[0], "' is not 64 lowercase hex characters"));
    }
    Customer c;
    RETURN_IF_ERROR(FlagColumn(*reader, 1, "FN", &c.fn));
    RETURN_IF_ERROR(FlagColumn(*reader, 2, "Active", &c.active));
    const uint32_t club = ds->club_member_status.Add(f[3]);
    const uint32_t news = ds->fashion_news_frequency.Add(f[4]);
    if (club > std::numeric_limits<uint16_t>::max() || news > std::numeric_limits<uint16_t>::max()) {
      return reader->RecordError("more than 65535 distinct club_member_status or news values");
    }
    c.club_member_status = static_cast<uint16_t>(club);
    c.fashion_news_frequency = static_cast<uint16_t>(news);
    if (!f[5].empty()) {
      absl::StatusOr<double> age = ParseDoubleField(f[5]);
      if (!age.ok() || *age < 0 || *age > 150) {
        return reader->RecordError(absl::StrCat("column age: bad age '", f[5], "'"));
      }
      c.age = static_cast<int16_t>(*age);
    }
    c.postal_code = ds->postal_codes.Add(f[6]);
    uint32_t index = 0;
    if (!ds->customer_ids.Add(f[0], &index)) {
      return reader->RecordError(absl::StrCat("duplicate customer_id ", f[0]));
    }
    ds->customers.push_back(c);
  }
  return absl::OkStatus();
}

absl::Status ReadTransactions(const std::string& path, const LoadOptions& options, Dataset* ds) {
  ASSIGN_OR_RETURN(std::unique_ptr<CsvReader> reader, CsvReader::Open(path));
  RETURN_IF_ERROR(CheckHeader(*reader, TransactionColumns()));
  // Rows are ~108 bytes; reserving avoids doubling copies of 31.8 M rows.
  ds->transactions.Reserve(static_cast<size_t>(reader->file_size() / 100 + 16));
  ProgressReporter progress("reading " + path, reader->file_size() >> 20, "MiB");
  progress.set_enabled(options.show_progress);
  LoadReport& report = ds->report;
  Transactions& tx = ds->transactions;

  char last_date[10] = {0};
  int32_t last_day = 0;
  std::string last_customer;
  uint32_t last_customer_index = 0;
  bool last_customer_known = false;
  int64_t rows = 0;
  while (true) {
    ASSIGN_OR_RETURN(bool has_row, reader->Next());
    if (!has_row) break;
    if ((++rows & 0xFFFF) == 0) progress.Update(reader->bytes_consumed() >> 20);
    const auto& f = reader->fields();
    if (f.size() != 5) RETURN_IF_ERROR(CheckFieldCount(*reader, 5));

    int32_t day = last_day;
    if (f[0].size() != 10 || std::memcmp(f[0].data(), last_date, 10) != 0 || rows == 1) {
      absl::StatusOr<int32_t> d = ParseDate(f[0]);
      if (!d.ok()) return reader->RecordError(absl::StrCat("column t_dat: ", d.status().message()));
      day = last_day = *d;
      std::memcpy(last_date, f[0].data(), 10);
    }

    if (f[1] != last_customer) {
      if (!IsValidCustomerId(f[1])) {
        return reader->RecordError(absl::StrCat("column customer_id: '", f[1], "' is not 64 lowercase hex characters"));
      }
      last_customer.assign(f[1].data(), f[1].size());
      std::optional<uint32_t> c = ds->FindCustomer(f[1]);
      if (!c.has_value() && options.add_unknown_customers) {
        uint32_t index = 0;
        ds->customer_ids.Add(f[1], &index);
        Customer unknown;
        unknown.postal_code = ds->postal_codes.Add("");
        ds->customers.push_back(unknown);
        c = index;
      }
      last_customer_known = c.has_value();
      last_customer_index = c.value_or(0);
    }

    absl::StatusOr<int32_t> article_id = ParseArticleId(f[2]);
    if (!article_id.ok()) {
      return reader->RecordError(absl::StrCat("column article_id: ", article_id.status().message()));
    }
    absl::StatusOr<double> price = ParseDoubleField(f[3]);
    if (!price.ok() || !std::isfinite(*price) || *price < 0) {
      return reader->RecordError(absl::StrCat("column price: bad price '", f[3], "'"));
    }
    absl::StatusOr<int64_t> channel = ParseIntegerField(f[4]);
    if (!channel.ok() || *channel < 1 || *channel > 255) {
      return reader->RecordError(absl::StrCat("column sales_channel_id: bad channel '", f[4], "'"));
    }

    std::optional<uint32_t> article = ds->FindArticle(*article_id);
    if (!last_customer_known || !article.has_value()) {
      std::string what = !last_customer_known ? absl::StrCat("customer_id ", f[1], " is not in customers.csv")
                                              : absl::StrCat("article_id ", f[2], " is not in articles.csv");
      if (options.strict_references) return reader->RecordError(what);
      if (!last_customer_known) ++report.unknown_customer_rows;
      if (!article.has_value()) ++report.unknown_article_rows;
      Note(&report, absl::StrCat(path, ":", reader->line(), ": ", what));
      continue;
    }
    tx.day.push_back(day);
    tx.customer.push_back(last_customer_index);
    tx.article.push_back(*article);
    tx.price.push_back(static_cast<float>(*price));
    tx.sales_channel.push_back(static_cast<uint8_t>(*channel));
  }
  report.transaction_rows_read += rows;
  progress.Finish(reader->file_size() >> 20);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ReadExtraTransactions(const std::string& path, LoadOptions options, Dataset* ds) {
  const size_t before = ds->customers.size();
  options.add_unknown_customers = true;
  RETURN_IF_ERROR(ReadTransactions(path, options, ds));
  RETURN_IF_ERROR(FinishDataset(ds));
  return static_cast<int64_t>(ds->customers.size() - before);
}

int64_t EraseCustomers(const std::vector<std::string>& erased, Dataset* ds, int64_t* transactions) {
  if (transactions != nullptr) *transactions = 0;
  constexpr uint32_t kGone = UINT32_MAX;
  std::vector<uint32_t> new_index(ds->customers.size());
  for (uint32_t i = 0; i < new_index.size(); ++i) new_index[i] = i;
  int64_t removed = 0;
  for (const std::string& id : erased) {
    const std::optional<uint32_t> c = ds->FindCustomer(id);
    if (!c.has_value() || new_index[*c] == kGone) continue;
    new_index[*c] = kGone;
    ++removed;
  }
  if (removed == 0) return 0;
  FixedWidthIndex ids(ds->customer_ids.width());
  ids.Reserve(ds->customers.size() - static_cast<size_t>(removed));
  std::vector<Customer> customers;
  customers.reserve(ds->customers.size() - static_cast<size_t>(removed));
  for (uint32_t i = 0; i < new_index.size(); ++i) {
    if (new_index[i] == kGone) continue;
    uint32_t index = 0;
    ids.Add(ds->customer_ids.Get(i), &index);
    new_index[i] = index;
    customers.push_back(ds->customers[i]);
  }
  ds->customer_ids = std::move(ids);
  ds->customers = std::move(customers);
  Transactions& tx = ds->transactions;
  size_t kept = 0;
  for (size_t r = 0; r < tx.size(); ++r) {
    const uint32_t c = new_index[tx.customer[r]];
    if (c == kGone) continue;
    tx.day[kept] = tx.day[r];
    tx.customer[kept] = c;
    tx.article[kept] = tx.article[r];
    tx.price[kept] = tx.price[r];
    tx.sales_channel[kept] = tx.sales_channel[r];
    ++kept;
  }
  if (transactions != nullptr) *transactions = static_cast<int64_t>(tx.size() - kept);
  tx.day.resize(kept);
  tx.customer.resize(kept);
  tx.article.resize(kept);
  tx.price.resize(kept);
  tx.sales_channel.resize(kept);
  return removed;
}

absl::StatusOr<ErasureReport> ApplyErasures(const std::string& path, Dataset* ds) {
  ASSIGN_OR_RETURN(const std::vector<std::string> ids, ReadCustomerIds(path, /*allow_empty=*/true));
  ErasureReport report;
  report.listed = static_cast<int64_t>(ids.size());
  report.customers = EraseCustomers(ids, ds, &report.transactions);
  RETURN_IF_ERROR(FinishDataset(ds));
  return report;
}

absl::Status FinishDataset(Dataset* ds) {
  if (ds->article_index.size() != ds->articles.size()) {
    ds->article_index.clear();
    ds->article_index.reserve(ds->articles.size());
    for (uint32_t i = 0; i < ds->articles.size(); ++i) {
      if (!ds->article_index.emplace(ds->articles[i].article_id, i).second) {
        return absl::DataLossError(absl::StrCat("duplicate article_id ", ds->articles[i].article_id));
      }
    }
  }
  const Transactions& tx = ds->transactions;
  if (tx.size() > 0) {
    int32_t lo = tx.day[0], hi = tx.day[0];
    for (int32_t d : tx.day) {
      lo = std::min(lo, d);
      hi = std::max(hi, d);
    }
    ds->first_day = lo;
    ds->last_day = hi;
  }
  return absl::OkStatus();
}

namespace {

void CopyVocab(const StringVocab& from, StringVocab* to) {
  for (uint32_t i = 0; i < from.size(); ++i) to->Add(from.Get(i));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Dataset>> DatasetBefore(const Dataset& ds, int32_t day) {
  auto out = std::make_unique<Dataset>();
  out->articles = ds.articles;
  out->customers = ds.customers;
  out->customer_ids.Reserve(ds.customer_ids.size());
  for (uint32_t c = 0; c < ds.customer_ids.size(); ++c) {
    uint32_t id = 0;
    out->customer_ids.Add(ds.customer_ids.Get(c), &id);
  }
  CopyVocab(ds.club_member_status, &out->club_member_status);
  CopyVocab(ds.fashion_news_frequency, &out->fashion_news_frequency);
  CopyVocab(ds.postal_codes, &out->postal_codes);
  const Transactions& tx = ds.transactions;
  Transactions& kept = out->transactions;
  for (size_t i = 0; i < tx.size(); ++i) {
    if (tx.day[i] >= day) continue;
    kept.day.push_back(tx.day[i]);
    kept.customer.push_back(tx.customer[i]);
    kept.article.push_back(tx.article[i]);
    kept.price.push_back(tx.price[i]);
    kept.sales_channel.push_back(tx.sales_channel[i]);
  }
  if (kept.size() == 0) {
    return absl::FailedPreconditionError(absl::StrCat("no transactions before ", day, " (days since 1970)"));
  }
  out->report = ds.report;
  RETURN_IF_ERROR(FinishDataset(out.get()));
  return out;
}

}  // namespace hmrec
