#include "bundle/bundle.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/binary_io.h"
#include "common/status_macros.h"
#include "common/text_proto.h"
#include "google/protobuf/text_format.h"

namespace hmrec {
namespace fs = std::filesystem;
namespace {
constexpr uint64_t kEmbeddingsMagic = 0x31424d4543524d48ull;  // "HMRCEMB1"
}  // namespace

absl::Status WriteArticleEmbeddings(const std::string& path, const ArticleEmbeddings& e) {
  if (e.values.size() != e.article_ids.size() * static_cast<size_t>(e.dim)) {
    return absl::InvalidArgumentError("article embeddings: values do not match ids x dim");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<BinaryWriter> w, BinaryWriter::Open(path));
  w->Pod(kEmbeddingsMagic);
  w->Pod(e.dim);
  w->Vector(e.article_ids);
  w->Vector(e.values);
  return w->Close();
}

absl::StatusOr<ArticleEmbeddings> ReadArticleEmbeddings(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<BinaryReader> r, BinaryReader::Open(path));
  uint64_t magic = 0;
  RETURN_IF_ERROR(r->Pod(&magic));
  if (magic != kEmbeddingsMagic) return r->Corrupt("not an article embeddings file");
  ArticleEmbeddings e;
  RETURN_IF_ERROR(r->Pod(&e.dim));
  if (e.dim <= 0 || e.dim > 4096) return r->Corrupt("bad dimension");
  RETURN_IF_ERROR(r->Vector(&e.article_ids));
  RETURN_IF_ERROR(r->Vector(&e.values));
  RETURN_IF_ERROR(r->VerifyChecksum());
  if (e.values.size() != e.article_ids.size() * static_cast<size_t>(e.dim)) {
    return r->Corrupt("values do not match ids x dim");
  }
  return e;
}

absl::Status WriteTextProto(const std::string& path, const google::protobuf::Message& message) {
  std::string text;
  if (!google::protobuf::TextFormat::PrintToString(message, &text)) {
    return absl::InternalError(absl::StrCat("cannot format ", path));
  }
  return WriteFileAtomically(path, text);
}

absl::StatusOr<std::string> FileCrc32(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::vector<char> buf(size_t{1} << 20);
  uint32_t crc = Crc32(0, nullptr, 0);
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) crc = Crc32(crc, buf.data(), n);
  const bool err = std::ferror(f);
  std::fclose(f);
  if (err) return absl::InternalError(absl::StrCat("cannot read ", path));
  return absl::StrFormat("%08x", crc);
}

absl::Status RecordBundleFile(const std::string& bundle_dir, const std::string& name,
                              config::BundleManifest* manifest) {
  const std::string path = (fs::path(bundle_dir) / name).string();
  std::error_code ec;
  const uint64_t size = fs::file_size(path, ec);
  if (ec) return absl::NotFoundError(absl::StrCat("bundle file ", path, ": ", ec.message()));
  ASSIGN_OR_RETURN(std::string crc, FileCrc32(path));
  config::BundleFile* entry = nullptr;
  for (config::BundleFile& f : *manifest->mutable_files()) {
    if (f.name() == name) entry = &f;
  }
  if (entry == nullptr) entry = manifest->add_files();
  entry->set_name(name);
  entry->set_size(size);
  entry->set_crc32(crc);
  return absl::OkStatus();
}

absl::StatusOr<config::BundleManifest> ReadManifest(const std::string& bundle_dir) {
  config::BundleManifest m;
  RETURN_IF_ERROR(ReadTextProto((fs::path(bundle_dir) / kManifestFile).string(), &m));
  return m;
}

absl::Status WriteManifest(const std::string& bundle_dir, const config::BundleManifest& manifest) {
  return WriteTextProto((fs::path(bundle_dir) / kManifestFile).string(), manifest);
}

bool ManifestLists(const config::BundleManifest& manifest, const std::string& name) {
  return std::any_of(manifest.files().begin(), manifest.files().end(),
                     [&](const config::BundleFile& f) { return f.name() == name; });
}

absl::Status VerifyBundleFiles(const std::string& bundle_dir, const config::BundleManifest& manifest) {
  if (manifest.files_size() == 0) {
    return absl::FailedPreconditionError(absl::StrCat(bundle_dir, ": manifest names no files"));
  }
  for (const config::BundleFile& f : manifest.files()) {
    const std::string path = (fs::path(bundle_dir) / f.name()).string();
    std::error_code ec;
    const uint64_t size = fs::file_size(path, ec);
    if (ec) return absl::DataLossError(absl::StrCat("bundle file ", path, " is missing"));
    if (size != f.size()) {
      return absl::DataLossError(absl::StrCat("bundle file ", path, " has ", size, " bytes, manifest says ", f.size()));
    }
    ASSIGN_OR_RETURN(std::string crc, FileCrc32(path));
    if (crc != f.crc32()) {
      return absl::DataLossError(
          absl::StrCat("bundle file ", path, " has CRC-32 ", crc, ", manifest says ", f.crc32()));
    }
  }
  return absl::OkStatus();
}

}  // namespace hmrec
