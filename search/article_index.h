#pragma once

// The faiss index over every article embedding of a bundle (index.faiss):
// inner product on unit vectors (cosine), labels are the 10-digit article ids
// themselves (an IndexIDMap), so a search answers in article ids.
// Exact (flat), IVF or HNSW by config. Built on a GPU when this build has a
// CUDA faiss (HMREC_WITH_CUDA_FAISS) and a GPU is present; always written in
// CPU form so any server can load it.
// Search on a const index is thread-safe (faiss guarantees it for these
// index types); building is not.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <faiss/Index.h>

#include "absl/status/statusor.h"
#include "bundle/bundle.h"
#include "proto/config.pb.h"

namespace hmrec {

inline constexpr char kIndexFile[] = "index.faiss";

struct BuiltIndex {
  std::unique_ptr<faiss::Index> index;
  std::string description;  // e.g. "IDMap,IVF256,Flat (CPU)"
};

// Builds the index of `cfg.index_type()` over `e`.
absl::StatusOr<BuiltIndex> BuildArticleIndex(const ArticleEmbeddings& e, const config::IndexBuilderConfig& cfg);

absl::Status WriteArticleIndex(const faiss::Index& index, const std::string& path);
absl::StatusOr<std::unique_ptr<faiss::Index>> ReadArticleIndex(const std::string& path);

// Searches `n` unit queries (n x dim floats) for their top `k` articles;
// writes n x k article ids (-1 when fewer exist) and scores.
absl::Status SearchArticles(const faiss::Index& index, const float* queries, int64_t n, int k,
                            std::vector<int64_t>* ids, std::vector<float>* scores);

// Sets the IVF nprobe / HNSW efSearch of a loaded index from `cfg`.
absl::Status ConfigureSearch(faiss::Index* index, const config::IndexBuilderConfig& cfg);

}  // namespace hmrec
