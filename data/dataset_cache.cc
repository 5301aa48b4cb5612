#include "data/dataset_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/binary_io.h"
#include "common/progress.h"
#include "common/status_macros.h"
#include "glog/logging.h"

namespace hmrec {
namespace {

constexpr uint64_t kMagic = 0x31534443524d4848ull;  // "HHMRCDS1", little-endian
constexpr uint32_t kFormatVersion = 1;
constexpr size_t kSampleBytes = size_t{1} << 20;

static_assert(sizeof(Customer) == 12, "Customer is cached as raw bytes");

std::string JoinPath(const std::string& dir, const std::string& name) {
  return (std::filesystem::path(dir) / name).string();
}

// Appends size, mtime and the CRC of the first and last MiB of `path`.
absl::Status AppendFileFingerprint(const std::string& path, std::string* out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return absl::InternalError(absl::StrCat("cannot stat ", path));
  }
  std::string head(kSampleBytes, '\0');
  std::string tail(kSampleBytes, '\0');
  ssize_t nh = ::pread(fd, head.data(), head.size(), 0);
  off_t tail_off = st.st_size > static_cast<off_t>(kSampleBytes) ? st.st_size - kSampleBytes : 0;
  ssize_t nt = ::pread(fd, tail.data(), tail.size(), tail_off);
  ::close(fd);
  if (nh < 0 || nt < 0) return absl::InternalError(absl::StrCat("cannot read ", path));
  const uint32_t crc_head = Crc32(0, head.data(), static_cast<size_t>(nh));
  const uint32_t crc_tail = Crc32(0, tail.data(), static_cast<size_t>(nt));
  absl::StrAppend(out, std::filesystem::path(path).filename().string(), ":", st.st_size, ":", st.st_mtim.tv_sec, ".",
                  st.st_mtim.tv_nsec, ":", crc_head, ":", crc_tail, ";");
  return absl::OkStatus();
}

void WriteArticle(BinaryWriter& w, const Article& a) {
  w.Pod(a.article_id);
  w.Pod(a.product_code);
  w.String(a.prod_name);
  w.Pod(a.product_type_no);
  w.String(a.product_type_name);
  w.String(a.product_group_name);
  w.Pod(a.graphical_appearance_no);
  w.String(a.graphical_appearance_name);
  w.Pod(a.colour_group_code);
  w.String(a.colour_group_name);
  w.Pod(a.perceived_colour_value_id);
  w.String(a.perceived_colour_value_name);
  w.Pod(a.perceived_colour_master_id);
  w.String(a.perceived_colour_master_name);
  w.Pod(a.department_no);
  w.String(a.department_name);
  w.String(a.index_code);
  w.String(a.index_name);
  w.Pod(a.index_group_no);
  w.String(a.index_group_name);
  w.Pod(a.section_no);
  w.String(a.section_name);
  w.Pod(a.garment_group_no);
  w.String(a.garment_group_name);
  w.String(a.detail_desc);
}

absl::Status ReadArticle(BinaryReader& r, Article* a) {
  RETURN_IF_ERROR(r.Pod(&a->article_id));
  RETURN_IF_ERROR(r.Pod(&a->product_code));
  RETURN_IF_ERROR(r.String(&a->prod_name));
  RETURN_IF_ERROR(r.Pod(&a->product_type_no));
  RETURN_IF_ERROR(r.String(&a->product_type_name));
  RETURN_IF_ERROR(r.String(&a->product_group_name));
  RETURN_IF_ERROR(r.Pod(&a->graphical_appearance_no));
  RETURN_IF_ERROR(r.String(&a->graphical_appearance_name));
  RETURN_IF_ERROR(r.Pod(&a->colour_group_code));
  RETURN_IF_ERROR(r.String(&a->colour_group_name));
  RETURN_IF_ERROR(r.Pod(&a->perceived_colour_value_id));
  RETURN_IF_ERROR(r.String(&a->perceived_colour_value_name));
  RETURN_IF_ERROR(r.Pod(&a->perceived_colour_master_id));
  RETURN_IF_ERROR(r.String(&a->perceived_colour_master_name));
  RETURN_IF_ERROR(r.Pod(&a->department_no));
  RETURN_IF_ERROR(r.String(&a->department_name));
  RETURN_IF_ERROR(r.String(&a->index_code));
  RETURN_IF_ERROR(r.String(&a->index_name));
  RETURN_IF_ERROR(r.Pod(&a->index_group_no));
  RETURN_IF_ERROR(r.String(&a->index_group_name));
  RETURN_IF_ERROR(r.Pod(&a->section_no));
  RETURN_IF_ERROR(r.String(&a->section_name));
  RETURN_IF_ERROR(r.Pod(&a->garment_group_no));
  RETURN_IF_ERROR(r.String(&a->garment_group_name));
  return r.String(&a->detail_desc);
}

void WriteVocab(BinaryWriter& w, const StringVocab& v) {
  w.Pod<uint64_t>(v.size());
  for (uint32_t i = 0; i < v.size(); ++i) w.String(v.Get(i));
}

absl::Status ReadVocab(BinaryReader& r, StringVocab* v) {
  uint64_t n = 0;
  RETURN_IF_ERROR(r.Pod(&n));
  if (n > r.remaining() / sizeof(uint64_t)) return r.Corrupt("vocabulary too long");
  std::string s;
  for (uint64_t i = 0; i < n; ++i) {
    RETURN_IF_ERROR(r.String(&s));
    if (v->Add(s) != i) return r.Corrupt("duplicate vocabulary entry");
  }
  return absl::OkStatus();
}

}  // namespace

std::string DatasetCachePath(const std::string& data_dir, const LoadOptions& options) {
  const std::string dir = options.cache_dir.empty() ? JoinPath(data_dir, ".hmrec_cache") : options.cache_dir;
  return JoinPath(dir, "dataset.bin");
}

absl::StatusOr<std::string> DatasetFingerprint(const std::string& data_dir, const LoadOptions& options) {
  std::string fp = absl::StrCat("v", kFormatVersion, ";strict=", options.strict_references, ";");
  for (const char* name : {kArticlesFile, kCustomersFile, kTransactionsFile}) {
    RETURN_IF_ERROR(AppendFileFingerprint(JoinPath(data_dir, name), &fp));
  }
  return fp;
}

absl::Status WriteDatasetCache(const std::string& path, const std::string& fingerprint, const Dataset& ds) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  ASSIGN_OR_RETURN(std::unique_ptr<BinaryWriter> w, BinaryWriter::Open(path));
  w->Pod(kMagic);
  w->Pod(kFormatVersion);
  w->String(fingerprint);

  w->Pod<uint64_t>(ds.articles.size());
  for (const Article& a : ds.articles) WriteArticle(*w, a);

  const uint64_t ncust = ds.customers.size();
  w->Pod(ncust);
  for (uint32_t i = 0; i < ncust; ++i) w->Write(ds.customer_id(i).data(), 64);
  w->Vector(ds.customers);
  WriteVocab(*w, ds.club_member_status);
  WriteVocab(*w, ds.fashion_news_frequency);
  WriteVocab(*w, ds.postal_codes);

  const Transactions& tx = ds.transactions;
  w->Vector(tx.day);
  w->Vector(tx.customer);
  w->Vector(tx.article);
  w->Vector(tx.price);
  w->Vector(tx.sales_channel);

  const LoadReport& rep = ds.report;
  w->Pod(rep.transaction_rows_read);
  w->Pod(rep.unknown_customer_rows);
  w->Pod(rep.unknown_article_rows);
  w->Pod<uint64_t>(rep.examples.size());
  for (const std::string& e : rep.examples) w->String(e);
  return w->Close();
}

absl::StatusOr<std::unique_ptr<Dataset>> ReadDatasetCache(const std::string& path, const std::string& fingerprint) {
  ASSIGN_OR_RETURN(std::unique_ptr<BinaryReader> r, BinaryReader::Open(path));
  uint64_t magic = 0;
  uint32_t version = 0;
  RETURN_IF_ERROR(r->Pod(&magic));
  if (magic != kMagic) return r->Corrupt("not an hmrec dataset cache");
  RETURN_IF_ERROR(r->Pod(&version));
  if (version != kFormatVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": cache format ", version, ", this build reads ", kFormatVersion));
  }
  std::string stored;
  RETURN_IF_ERROR(r->String(&stored));
  if (stored != fingerprint) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": written for other CSV files (they changed since)"));
  }

  auto ds = std::make_unique<Dataset>();
  uint64_t narticles = 0;
  RETURN_IF_ERROR(r->Pod(&narticles));
  if (narticles > r->remaining()) return r->Corrupt("article count");
  ds->articles.resize(narticles);
  for (Article& a : ds->articles) RETURN_IF_ERROR(ReadArticle(*r, &a));

  uint64_t ncust = 0;
  RETURN_IF_ERROR(r->Pod(&ncust));
  if (ncust > r->remaining() / 64) return r->Corrupt("customer count");
  {
    std::string ids(ncust * 64, '\0');
    RETURN_IF_ERROR(r->Read(ids.data(), ids.size()));
    ds->customer_ids.Reserve(ncust);
    for (uint64_t i = 0; i < ncust; ++i) {
      uint32_t index = 0;
      if (!ds->customer_ids.Add(absl::string_view(ids.data() + i * 64, 64), &index)) {
        return r->Corrupt("duplicate customer id");
      }
    }
  }
  RETURN_IF_ERROR(r->Vector(&ds->customers));
  if (ds->customers.size() != ncust) return r->Corrupt("customer table length");
  RETURN_IF_ERROR(ReadVocab(*r, &ds->club_member_status));
  RETURN_IF_ERROR(ReadVocab(*r, &ds->fashion_news_frequency));
  RETURN_IF_ERROR(ReadVocab(*r, &ds->postal_codes));

  Transactions& tx = ds->transactions;
  RETURN_IF_ERROR(r->Vector(&tx.day));
  RETURN_IF_ERROR(r->Vector(&tx.customer));
  RETURN_IF_ERROR(r->Vector(&tx.article));
  RETURN_IF_ERROR(r->Vector(&tx.price));
  RETURN_IF_ERROR(r->Vector(&tx.sales_channel));
  const size_t n = tx.day.size();
  if (tx.customer.size() != n || tx.article.size() != n || tx.price.size() != n || tx.sales_channel.size() != n) {
    return r->Corrupt("transaction columns differ in length");
  }

  LoadReport& rep = ds->report;
  RETURN_IF_ERROR(r->Pod(&rep.transaction_rows_read));
  RETURN_IF_ERROR(r->Pod(&rep.unknown_customer_rows));
  RETURN_IF_ERROR(r->Pod(&rep.unknown_article_rows));
  uint64_t nex = 0;
  RETURN_IF_ERROR(r->Pod(&nex));
  if (nex > 1000) return r->Corrupt("example count");
  rep.examples.resize(nex);
  for (std::string& e : rep.examples) RETURN_IF_ERROR(r->String(&e));
  RETURN_IF_ERROR(r->VerifyChecksum());

  // Indices must point inside the tables: a cache is input like any other.
  for (size_t i = 0; i < n; ++i) {
    if (tx.customer[i] >= ncust || tx.article[i] >= narticles) {
      return r->Corrupt("transaction index out of range");
    }
  }
  for (const Customer& c : ds->customers) {
    if (c.club_member_status >= ds->club_member_status.size() ||
        c.fashion_news_frequency >= ds->fashion_news_frequency.size() || c.postal_code >= ds->postal_codes.size()) {
      return r->Corrupt("customer vocabulary id out of range");
    }
  }
  rep.from_cache = true;
  RETURN_IF_ERROR(FinishDataset(ds.get()));
  return ds;
}

absl::StatusOr<std::unique_ptr<Dataset>> LoadDataset(const std::string& data_dir, const LoadOptions& options) {
  const std::string cache_path = DatasetCachePath(data_dir, options);
  std::string fingerprint;
  if (options.use_cache) {
    ASSIGN_OR_RETURN(fingerprint, DatasetFingerprint(data_dir, options));
    absl::StatusOr<std::unique_ptr<Dataset>> cached = ReadDatasetCache(cache_path, fingerprint);
    if (cached.ok()) return cached;
    if (absl::IsDataLoss(cached.status())) {
      LOG(WARNING) << "ignoring corrupt dataset cache: " << cached.status().message();
    } else if (!absl::IsNotFound(cached.status())) {
      LOG(INFO) << "rebuilding dataset cache: " << cached.status().message();
    }
  }

  auto ds = std::make_unique<Dataset>();
  RETURN_IF_ERROR(ReadArticles(JoinPath(data_dir, kArticlesFile), ds.get()));
  RETURN_IF_ERROR(ReadCustomers(JoinPath(data_dir, kCustomersFile), ds.get()));
  RETURN_IF_ERROR(ReadTransactions(JoinPath(data_dir, kTransactionsFile), options, ds.get()));
  ds->transactions.ShrinkToFit();
  RETURN_IF_ERROR(FinishDataset(ds.get()));

  if (options.use_cache) {
    absl::Status s = WriteDatasetCache(cache_path, fingerprint, *ds);
    if (!s.ok()) LOG(WARNING) << "dataset cache not written (loading stays correct, only slower): " << s.message();
  }
  return ds;
}

}  // namespace hmrec
