// Writes the customer tower's input for a list of customers, exactly as the
// server encodes it (Recommender::EncodeCustomers over the bundle's feature
// store), as NumPy arrays — for bench/python_scorer.py, the side-by-side
// baseline that runs the tower and faiss in Python.
//
//   hmrec_export_features --bundle B --customers sample_submission.csv --out DIR
//
// DIR/fields.npy (int32, n x 8), DIR/history.npy (int32, n x history_length,
// article row + 1, 0 = none), DIR/found.npy (uint8, n): customers in file order.

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "common/runtime.h"
#include "data/customer_list.h"
#include "features/feature_space.h"
#include "glog/logging.h"
#include "server/recommender.h"

ABSL_FLAG(std::string, bundle, "", "A sealed bundle");
ABSL_FLAG(std::string, customers, "", "CSV whose first column is customer_id");
ABSL_FLAG(std::string, out, "", "Output directory (must exist)");

namespace {

int Fail(const std::string& m) {
  std::fprintf(stderr, "export_features: %s\n", m.c_str());
  return 1;
}

// A version 1.0 .npy file: magic, header dict padded to 64 bytes, raw data.
bool WriteNpy(const std::string& path, const char* descr, const std::vector<int64_t>& shape, const void* data,
              size_t bytes) {
  std::string dims;
  for (int64_t d : shape) absl::StrAppend(&dims, d, ",");
  if (shape.size() > 1) dims.pop_back();
  std::string header = absl::StrCat("{'descr': '", descr, "', 'fortran_order': False, 'shape': (", dims, "), }");
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::ofstream f(path, std::ios::binary);
  const uint16_t len = static_cast<uint16_t>(header.size());
  f.write("\x93NUMPY\x01\x00", 8);
  f.write(reinterpret_cast<const char*>(&len), 2);
  f.write(header.data(), static_cast<std::streamsize>(header.size()));
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
  return static_cast<bool>(f);
}

}  // namespace

int main(int argc, char** argv) {
  hmrec::PrepareProcess(argv);
  absl::ParseCommandLine(argc, argv);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  auto ids = hmrec::ReadCustomerIds(absl::GetFlag(FLAGS_customers));
  if (!ids.ok()) return Fail(std::string(ids.status().message()));
  auto r = hmrec::Recommender::Load(absl::GetFlag(FLAGS_bundle), hmrec::RecommenderOptions());
  if (!r.ok()) return Fail(std::string(r.status().message()));
  const int64_t n = static_cast<int64_t>(ids->size());
  const int h = (*r)->history_length();
  std::vector<int32_t> fields(n * hmrec::kCustomerFields), history(n * h);
  std::vector<uint8_t> found(n);
  std::vector<int32_t> f, hist;
  std::vector<bool> fnd;
  std::vector<hmrec::config::CustomerRecord> records;
  constexpr int64_t kChunk = 10000;
  for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
    const int64_t i1 = std::min(n, i0 + kChunk);
    std::vector<absl::string_view> chunk(ids->begin() + i0, ids->begin() + i1);
    absl::Status s = (*r)->EncodeCustomers(chunk, &f, &hist, &fnd, &records);
    if (!s.ok()) return Fail(std::string(s.message()));
    std::copy(f.begin(), f.end(), fields.begin() + i0 * hmrec::kCustomerFields);
    std::copy(hist.begin(), hist.end(), history.begin() + i0 * h);
    for (int64_t i = i0; i < i1; ++i) found[i] = fnd[i - i0];
  }
  const std::string out = absl::GetFlag(FLAGS_out);
  if (!WriteNpy(out + "/fields.npy", "<i4", {n, hmrec::kCustomerFields}, fields.data(), fields.size() * 4) ||
      !WriteNpy(out + "/history.npy", "<i4", {n, h}, history.data(), history.size() * 4) ||
      !WriteNpy(out + "/found.npy", "|u1", {n}, found.data(), found.size())) {
    return Fail("cannot write to " + out);
  }
  std::fprintf(stderr, "export_features: %lld customers to %s\n", static_cast<long long>(n), out.c_str());
  return 0;
}
