#include "search/article_index.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_io.h>

#include "absl/strings/str_cat.h"

#ifdef HMREC_WITH_CUDA_FAISS
#include <faiss/gpu/GpuCloner.h>
#include <faiss/gpu/StandardGpuResources.h>
#include <faiss/gpu/utils/DeviceUtils.h>
#endif

namespace hmrec {
namespace {

using Idx = faiss::Index::idx_t;

template <typename T>
T* Unwrap(faiss::Index* index) {
  if (auto* map = dynamic_cast<faiss::IndexIDMap*>(index)) return dynamic_cast<T*>(map->index);
  return dynamic_cast<T*>(index);
}

}  // namespace

absl::StatusOr<BuiltIndex> BuildArticleIndex(const ArticleEmbeddings& e, const config::IndexBuilderConfig& cfg) {
  const int d = e.dim;
  const Idx n = static_cast<Idx>(e.article_ids.size());
  if (n == 0 || d <= 0) return absl::InvalidArgumentError("no article embeddings to index");
  const std::string type = cfg.index_type().empty() ? "flat" : cfg.index_type();
  BuiltIndex out;
  try {
    std::unique_ptr<faiss::Index> inner;
    if (type == "flat") {
      inner = std::make_unique<faiss::IndexFlatIP>(d);
      out.description = "IDMap,FlatIP";
    } else if (type == "ivf") {
      const int nlist = cfg.ivf_nlist() > 0 ? cfg.ivf_nlist() : 256;
      if (n < nlist) {
        return absl::InvalidArgumentError(
            absl::StrCat("ivf_nlist ", nlist, " needs at least as many articles; there are ", n));
      }
      auto* quantizer = new faiss::IndexFlatIP(d);
      auto ivf = std::make_unique<faiss::IndexIVFFlat>(quantizer, d, nlist, faiss::METRIC_INNER_PRODUCT);
      ivf->own_fields = true;
      ivf->nprobe = cfg.ivf_nprobe() > 0 ? cfg.ivf_nprobe() : 16;
      ivf->cp.seed = 1234;  // reproducible k-means
      ivf->train(n, e.values.data());
      inner = std::move(ivf);
      out.description =
          absl::StrCat("IDMap,IVF", nlist, ",Flat(IP) nprobe ", cfg.ivf_nprobe() > 0 ? cfg.ivf_nprobe() : 16);
    } else if (type == "sq8") {
      // 8-bit scalar quantisation per dimension: a quarter of the memory of
      // flat, scores approximate.
      auto sq = std::make_unique<faiss::IndexScalarQuantizer>(d, faiss::ScalarQuantizer::QT_8bit,
                                                              faiss::METRIC_INNER_PRODUCT);
      sq->train(n, e.values.data());
      inner = std::move(sq);
      out.description = "IDMap,SQ8";
    } else if (type == "hnsw") {
      const int m = cfg.hnsw_m() > 0 ? cfg.hnsw_m() : 32;
      auto hnsw = std::make_unique<faiss::IndexHNSWFlat>(d, m, faiss::METRIC_INNER_PRODUCT);
      hnsw->hnsw.efConstruction = cfg.hnsw_ef_construction() > 0 ? cfg.hnsw_ef_construction() : 80;
      hnsw->hnsw.efSearch = cfg.hnsw_ef_search() > 0 ? cfg.hnsw_ef_search() : 64;
      inner = std::move(hnsw);
      out.description =
          absl::StrCat("IDMap,HNSW", m, ",Flat(IP) efSearch ", cfg.hnsw_ef_search() > 0 ? cfg.hnsw_ef_search() : 64);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("index_type '", type, "': use flat, ivf, sq8 or hnsw"));
    }
    auto map = std::make_unique<faiss::IndexIDMap>(inner.release());
    map->own_fields = true;
    std::vector<Idx> labels(e.article_ids.begin(), e.article_ids.end());
#ifdef HMREC_WITH_CUDA_FAISS
    if (cfg.use_gpu() && type != "hnsw" && faiss::gpu::getNumDevices() > 0) {
      faiss::gpu::StandardGpuResources res;
      std::unique_ptr<faiss::Index> gpu(faiss::gpu::index_cpu_to_gpu(&res, 0, map.get()));
      gpu->add_with_ids(n, e.values.data(), labels.data());
      out.index.reset(faiss::gpu::index_gpu_to_cpu(gpu.get()));
      out.description += " (built on GPU)";
      return out;
    }
#endif
    map->add_with_ids(n, e.values.data(), labels.data());
    out.index = std::move(map);
    out.description += cfg.use_gpu() ? " (built on CPU: this faiss has no CUDA or no GPU is present)" : " (CPU)";
  } catch (const faiss::FaissException& ex) {
    return absl::InternalError(absl::StrCat("faiss: ", ex.what()));
  }
  return out;
}

absl::Status WriteArticleIndex(const faiss::Index& index, const std::string& path) {
  try {
    faiss::write_index(&index, path.c_str());
  } catch (const faiss::FaissException& ex) {
    return absl::InternalError(absl::StrCat("cannot write ", path, ": ", ex.what()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<faiss::Index>> ReadArticleIndex(const std::string& path) {
  try {
    return std::unique_ptr<faiss::Index>(faiss::read_index(path.c_str()));
  } catch (const faiss::FaissException& ex) {
    return absl::DataLossError(absl::StrCat("cannot read index ", path, ": ", ex.what()));
  }
}

absl::Status ConfigureSearch(faiss::Index* index, const config::IndexBuilderConfig& cfg) {
  if (auto* ivf = Unwrap<faiss::IndexIVF>(index); ivf != nullptr && cfg.ivf_nprobe() > 0) {
    ivf->nprobe = cfg.ivf_nprobe();
  }
  if (auto* hnsw = Unwrap<faiss::IndexHNSW>(index); hnsw != nullptr && cfg.hnsw_ef_search() > 0) {
    hnsw->hnsw.efSearch = cfg.hnsw_ef_search();
  }
  return absl::OkStatus();
}

absl::Status SearchArticles(const faiss::Index& index, const float* queries, int64_t n, int k,
                            std::vector<int64_t>* ids, std::vector<float>* scores) {
  ids->resize(n * k);
  scores->resize(n * k);
  try {
    std::vector<Idx> labels(n * k);
    index.search(n, queries, k, scores->data(), labels.data());
    for (int64_t i = 0; i < n * k; ++i) (*ids)[i] = labels[i];
  } catch (const faiss::FaissException& ex) {
    return absl::InternalError(absl::StrCat("faiss search: ", ex.what()));
  }
  return absl::OkStatus();
}

}  // namespace hmrec
