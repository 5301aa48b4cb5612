#include "trainer/ranking_study.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bundle/bundle.h"
#include "candidates/ranking_config.h"
#include "candidates/tables.h"
#include "common/metrics.h"
#include "common/progress.h"
#include "common/status_macros.h"
#include "data/dates.h"
#include "data/history.h"
#include "features/ranking_features.h"
#include "trainer/retriever.h"

namespace hmrec {
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void SetSourceQuotas(const std::array<int, kNumSources>& q, config::RankingConfig* c) {
  c->set_repurchase_candidates(q[kRepurchase]);
  c->set_two_tower_candidates(q[kTwoTower]);
  c->set_copurchase_candidates(q[kCoPurchase]);
  c->set_same_product_candidates(q[kSameProduct]);
  c->set_segment_candidates(q[kSegmentPopular]);
  c->set_trending_candidates(q[kTrending]);
  c->set_taste_candidates(q[kTaste]);
  c->set_new_arrival_candidates(q[kNewArrival]);
  c->set_neighbour_candidates(q[kNeighbours]);
  c->set_style_buyers_candidates(q[kStyleBuyers]);
}

// Every source's limit times f (at least 1); a source that is off stays off.
config::RankingConfig Scaled(const config::RankingConfig& rc, double f) {
  std::array<int, kNumSources> q = SourceQuotas(rc);
  for (int& v : q) v = v <= 0 ? v : std::max(1, static_cast<int>(std::lround(v * f)));
  config::RankingConfig c = rc;
  SetSourceQuotas(q, &c);
  return c;
}

// The bundle's filled ranking config, refused when it has no ranking stage
// or, when its ranker is to be used, when that ranker was trained on another
// feature schema (the studies that retrain the ranker read only the towers
// and the config).
absl::StatusOr<config::RankingConfig> BundleRankingConfig(const std::string& bundle_dir, bool uses_ranker) {
  ASSIGN_OR_RETURN(config::BundleManifest manifest, ReadManifest(bundle_dir));
  if (manifest.ranking_schema().empty() || (uses_ranker && manifest.ranking_schema() != kRankingSchema)) {
    return absl::FailedPreconditionError(absl::StrCat(bundle_dir, " has no ranker of this feature schema"));
  }
  return WithRankingDefaults(manifest.trainer().ranking());
}

// The feature group of a column, by its name.
std::string GroupOf(const std::string& name) {
  auto starts = [&](const char* p) { return name.rfind(p, 0) == 0; };
  if (starts("src_")) return "source ranks and scores";
  if (starts("ca_") || starts("cp_")) return "customer x article history";
  if (name == "c_mean_gap_days" || name == "c_overdue") return "purchase rhythm";
  if (starts("c_")) return "customer";
  if (starts("a_")) return "article sales and profile";
  if (name == "price_ratio" || name == "age_diff" || starts("aff_")) return "attribute match";
  if (name == "two_tower_cosine" || starts("sim_")) return "embedding similarity";
  if (starts("ab_")) return "age band sales";
  if (starts("l_")) return "within the list";
  return "unassigned";
}

// The label weeks' tower must not have seen the label weeks: its data ends
// before the first of them (what the trainer's own tower does by
// construction). A tower trained later would give the two-tower source and
// features scores that know the labels, and the study would measure a leak.
absl::Status CheckLabelBundle(const std::string& label_bundle_dir, int weeks, int32_t first_label_day) {
  ASSIGN_OR_RETURN(const config::BundleManifest m, ReadManifest(label_bundle_dir));
  const absl::StatusOr<int32_t> last = ParseDate(m.data_last_day());
  if (!last.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("label bundle ", label_bundle_dir, ": data_last_day '", m.data_last_day(), "' is not a date"));
  }
  if (*last >= first_label_day) {
    return absl::FailedPreconditionError(absl::StrCat(
        "label bundle ", label_bundle_dir, " was trained on data up to ", m.data_last_day(), ", but the first of the ",
        weeks, " label weeks begins ", FormatDate(first_label_day),
        ": its scores would know the labels (use a tower trained on data before that day, or fewer label_weeks)"));
  }
  return absl::OkStatus();
}

}  // namespace

std::array<int, kNumSources> SourceQuotas(const config::RankingConfig& rc) {
  std::array<int, kNumSources> q{};
  q[kRepurchase] = rc.repurchase_candidates();
  q[kTwoTower] = rc.two_tower_candidates();
  q[kCoPurchase] = rc.copurchase_candidates();
  q[kSameProduct] = rc.same_product_candidates();
  q[kSegmentPopular] = rc.segment_candidates();
  q[kTrending] = rc.trending_candidates();
  q[kTaste] = rc.taste_candidates();
  q[kNewArrival] = rc.new_arrival_candidates();
  q[kNeighbours] = rc.neighbour_candidates();
  q[kStyleBuyers] = rc.style_buyers_candidates();
  return q;
}

absl::StatusOr<CurveCascade> ParseCurveCascade(absl::string_view text) {
  const absl::Status bad = absl::InvalidArgumentError(absl::StrCat("cascade '", text, "' is not FIRST:KEEP[@TREES]"));
  CurveCascade out;
  absl::string_view cut = text;
  if (const size_t at = text.find('@'); at != absl::string_view::npos) {
    cut = text.substr(0, at);
    if (!absl::SimpleAtoi(text.substr(at + 1), &out.trees) || out.trees <= 0) return bad;
  }
  std::vector<absl::string_view> fk = absl::StrSplit(cut, ':');
  if (fk.size() != 2 || !absl::SimpleAtoi(fk[0], &out.first_trees) || !absl::SimpleAtoi(fk[1], &out.keep) ||
      out.first_trees <= 0 || out.keep <= 0) {
    return bad;
  }
  return out;
}

std::string CurveCascadeText(int first_trees, int keep, int trees) {
  std::string out = keep > 0 ? absl::StrCat(first_trees, ":", keep) : "";
  if (trees > 0) absl::StrAppend(&out, "@", trees);
  return out.empty() ? "all" : out;
}

absl::StatusOr<std::vector<RankingCurvePoint>> RankingCurve(const Dataset& ds, const Holdout& holdout,
                                                            const std::string& bundle_dir,
                                                            const std::vector<double>& candidate_scales,
                                                            const std::vector<int>& tree_counts,
                                                            const std::vector<CurveCascade>& cascades,
                                                            const std::vector<int>& active_weeks, int64_t max_customers,
                                                            const config::RankingConfig& overrides) {
  ASSIGN_OR_RETURN(config::RankingConfig base, BundleRankingConfig(bundle_dir, /*uses_ranker=*/true));
  base.MergeFrom(overrides);
  const fs::path dir(bundle_dir);
  ASSIGN_OR_RETURN(std::unique_ptr<Ranker> ranker,
                   Ranker::Load((dir / kRankerFile).string(), 1, base.ranker().evaluator()));
  ASSIGN_OR_RETURN(RankingTables tables, RankingTables::Load((dir / kRankingTablesFile).string()));
  ASSIGN_OR_RETURN(std::unique_ptr<TwoTowerRetriever> retriever, TwoTowerRetriever::Load(bundle_dir, ds, 1));
  const CustomerHistory history = CustomerHistory::Build(ds.transactions, ds.customers.size());
  const size_t n =
      max_customers > 0 ? std::min<size_t>(max_customers, holdout.customers.size()) : holdout.customers.size();
  const int nf = NumRankingFeatures();
  const std::vector<ScoredArticle>& popular = tables.segment(kUnknownAgeBand);
  std::vector<RankingCurvePoint> out;
  std::vector<std::pair<int, double>> settings;  // active weeks, candidate scale
  for (int w : active_weeks.empty() ? std::vector<int>{base.two_tower_active_weeks()} : active_weeks) {
    for (double scale : candidate_scales) settings.emplace_back(w, scale);
  }
  for (const auto& [weeks, scale] : settings) {
    config::RankingConfig rc = Scaled(base, scale);
    rc.set_two_tower_active_weeks(weeks);
    const std::vector<int64_t> rows = TwoTowerSearchRows(tables, rc);
    const int64_t searched = static_cast<int64_t>(rows.size());
    retriever->SearchOnly(tables.day(), rows);
    CandidateBuilder builder(ds, history, rc, 1);
    // One point per tree count (those trees on every candidate), then one
    // per cascade (its first trees on every candidate, the rest of its
    // trees only over the kept).
    std::vector<RankingCurvePoint> points;
    for (int t : tree_counts) {
      points.emplace_back();
      points.back().trees = t;
    }
    for (const CurveCascade& c : cascades) {
      points.emplace_back();
      points.back().cascade_first_trees = c.first_trees;
      points.back().cascade_keep = c.keep;
      points.back().trees = c.trees;
    }
    for (RankingCurvePoint& p : points) {
      p.candidate_scale = scale;
      p.active_weeks = weeks;
      p.searched_articles = searched;
    }
    double candidates = 0, build_seconds = 0;
    Chunk chunk;
    std::vector<float> scores;
    CascadeScratch cascade;
    std::vector<uint32_t> order;
    std::vector<int32_t> pred;
    for (size_t b = 0; b < n; b += kCustomerChunk) {
      const size_t e = std::min(n, b + kCustomerChunk);
      std::vector<uint32_t> customers(holdout.customers.begin() + b, holdout.customers.begin() + e);
      auto t0 = Clock::now();
      RETURN_IF_ERROR(builder.Build(customers, tables, retriever.get(), &chunk));
      build_seconds += Since(t0);
      for (size_t t = 0; t < customers.size(); ++t) candidates += static_cast<double>(chunk.candidates[t].size());
      for (RankingCurvePoint& p : points) {
        t0 = Clock::now();
        if (p.cascade_keep > 0) {
          RETURN_IF_ERROR(ScoreGroups(*ranker, chunk.features.data(), chunk.offsets, nf, p.cascade_first_trees,
                                      p.cascade_keep, &scores, &cascade, p.trees));
        } else {
          scores.resize(chunk.offsets.back());
          RETURN_IF_ERROR(ranker->Predict(chunk.features.data(), static_cast<int64_t>(chunk.offsets.back()), nf,
                                          scores.data(), p.trees));
        }
        p.predict_us += Since(t0);
        for (size_t i = 0; i < customers.size(); ++i) {
          OrderByScore(scores.data() + chunk.offsets[i], chunk.candidates[i].size(), &order);
          TopIds(chunk.candidates[i], order, popular, ds, &pred);
          p.map_at_12 += AveragePrecisionAtK(pred, holdout.articles[b + i], kRankedK);
        }
      }
    }
    for (RankingCurvePoint& p : points) {
      p.candidates_per_customer = candidates / static_cast<double>(n);
      p.map_at_12 /= static_cast<double>(n);
      // Retrieval (tower + search) is timed with the candidates; it is the
      // same for every point and small beside the rest.
      p.candidates_us = 1e6 * build_seconds / static_cast<double>(n);
      p.predict_us = 1e6 * p.predict_us / static_cast<double>(n);
      out.push_back(p);
    }
  }
  return out;
}

const std::vector<FeatureGroup>& RankingFeatureGroups() {
  static const std::vector<FeatureGroup>* groups = [] {
    auto* g = new std::vector<FeatureGroup>;
    const std::vector<std::string>& names = RankingFeatureNames();
    for (int f = 0; f < static_cast<int>(names.size()); ++f) {
      const std::string group = GroupOf(names[static_cast<size_t>(f)]);
      auto it = std::find_if(g->begin(), g->end(), [&](const FeatureGroup& x) { return x.name == group; });
      if (it == g->end()) it = g->insert(g->end(), FeatureGroup{group, {}});
      it->columns.push_back(f);
    }
    return g;
  }();
  return *groups;
}

std::vector<RankingVariant> StandardAblations() {
  std::vector<RankingVariant> out;
  out.push_back({"all", {}});
  for (int s = 0; s < kNumSources; ++s) {
    RankingVariant v{absl::StrCat("-", SourceName(s)), {}};
    v.trim.quota[s] = 0;
    out.push_back(v);
  }
  for (const FeatureGroup& g : RankingFeatureGroups()) {
    RankingVariant v{absl::StrCat("-", g.name), {}};
    v.trim.masked_features = g.columns;
    out.push_back(v);
  }
  return out;
}

absl::StatusOr<std::vector<RankingVariantResult>> RankingVariants(const Dataset& ds, const Holdout& holdout,
                                                                  const std::string& bundle_dir,
                                                                  const std::string& label_bundle_dir,
                                                                  const std::vector<RankingVariant>& variants,
                                                                  int ranker_seeds, int threads, bool show_progress,
                                                                  const config::RankingConfig& overrides) {
  ASSIGN_OR_RETURN(config::RankingConfig rc, BundleRankingConfig(bundle_dir, /*uses_ranker=*/false));
  rc.MergeFrom(overrides);
  threads = std::max(1, threads);
  const int weeks = rc.label_weeks();
  const int32_t as_of = ds.last_day + 1;
  const int32_t first_label_day = as_of - 7 * weeks;
  RETURN_IF_ERROR(CheckLabelBundle(label_bundle_dir, weeks, first_label_day));
  const CustomerHistory history = CustomerHistory::Build(ds.transactions, ds.customers.size());
  ASSIGN_OR_RETURN(std::unique_ptr<TwoTowerRetriever> label_retriever,
                   TwoTowerRetriever::Load(label_bundle_dir, ds, threads));
  ASSIGN_OR_RETURN(std::unique_ptr<TwoTowerRetriever> retriever, TwoTowerRetriever::Load(bundle_dir, ds, threads));
  // The tables do not depend on the quotas: built once for every variant.
  std::vector<RankingTables> label_tables;
  for (int w = 0; w < weeks; ++w) {
    ASSIGN_OR_RETURN(RankingTables t,
                     BuildRankingTables(ds, history, first_label_day + 7 * w, rc, label_retriever.get()));
    label_tables.push_back(std::move(t));
  }
  ASSIGN_OR_RETURN(const RankingTables holdout_tables, BuildRankingTables(ds, history, as_of, rc, retriever.get()));
  const int ranker_threads = rc.ranker().threads() > 0 ? rc.ranker().threads() : threads;

  std::vector<RankingVariantResult> out;
  for (const RankingVariant& v : variants) {
    const auto t0 = Clock::now();
    for (int f : v.trim.masked_features) {
      if (f < 0 || f >= NumRankingFeatures()) {
        return absl::InvalidArgumentError(absl::StrCat("variant ", v.name, ": no feature column ", f));
      }
    }
    config::RankingConfig gen = rc;
    std::array<int, kNumSources> q = SourceQuotas(rc);
    for (int s = 0; s < kNumSources; ++s) q[s] = std::max(q[s], v.trim.quota[s]);
    SetSourceQuotas(q, &gen);
    if (show_progress) std::fprintf(stderr, "variant %s\n", v.name.c_str());
    CandidateBuilder builder(ds, history, gen, threads, &v.trim);
    RankingVariantResult r;
    r.name = v.name;
    std::vector<RankingSet> train;
    RankingSet valid, refit;
    for (int w = 0; w < weeks; ++w) {
      label_retriever->SearchOnly(label_tables[w].day(), TwoTowerSearchRows(label_tables[w], gen));
      RankingWeekStats stats;
      const bool last = w + 1 == weeks;
      ASSIGN_OR_RETURN(RankingSet set, LabelWeek(ds, history, label_tables[w], label_retriever.get(), &builder, gen,
                                                 gen.ranker().seed(), !last, show_progress, &stats));
      r.weeks.push_back(stats);
      if (last && gen.refit() > 0) {
        RankingWeekStats refit_stats;
        ASSIGN_OR_RETURN(refit, LabelWeek(ds, history, label_tables[w], label_retriever.get(), &builder, gen,
                                          gen.ranker().seed(), true, show_progress, &refit_stats));
      }
      if (last) {
        valid = std::move(set);
      } else {
        train.push_back(std::move(set));
      }
    }
    // One ranker a seed (the boosting samples rows and columns), the
    // holdout's figures averaged over them.
    retriever->SearchOnly(as_of, TwoTowerSearchRows(holdout_tables, gen));
    const int seeds = std::max(1, ranker_seeds);
    for (int k = 0; k < seeds; ++k) {
      config::RankerParams params = gen.ranker();
      params.set_seed(gen.ranker().seed() + static_cast<uint64_t>(k));
      RankerTrainReport report;
      std::unique_ptr<Ranker> early_stopped;
      ASSIGN_OR_RETURN(std::unique_ptr<Ranker> ranker,
                       Ranker::Train(params, ranker_threads, k + 1 < seeds ? train : std::move(train),
                                     k + 1 < seeds ? valid : std::move(valid), show_progress, &report,
                                     k + 1 < seeds ? refit : std::move(refit), &early_stopped));
      ASSIGN_OR_RETURN(RankingEvaluation ev, Evaluate(ds, history, holdout_tables, retriever.get(), &builder, *ranker,
                                                      gen, holdout, show_progress));
      r.map_by_seed.push_back(ev.map_ranked);
      if (early_stopped != nullptr) {
        // The same seed's ranker before its refit, on the same candidates.
        ASSIGN_OR_RETURN(const RankingEvaluation before,
                         Evaluate(ds, history, holdout_tables, retriever.get(), &builder, *early_stopped, gen, holdout,
                                  show_progress));
        r.early_stopped_map_by_seed.push_back(before.map_ranked);
      }
      if (k == 0) {
        r.ranker = report;
        r.holdout = ev;
        continue;
      }
      r.holdout.map_ranked += ev.map_ranked;
      r.holdout.recall12_ranked += ev.recall12_ranked;
    }
    r.holdout.map_ranked /= seeds;
    r.holdout.recall12_ranked /= seeds;
    r.seconds = Since(t0);
    out.push_back(std::move(r));
  }
  return out;
}

absl::StatusOr<CandidateBudgetReport> CandidateBudget(const Dataset& ds, const Holdout& holdout,
                                                      const std::string& bundle_dir, const std::vector<int>& ns,
                                                      const std::vector<double>& scales, int step,
                                                      int64_t max_customers, int threads, bool show_progress) {
  if (ns.empty() || step < 1) return absl::InvalidArgumentError("budget: no candidate counts, or a step below 1");
  ASSIGN_OR_RETURN(const config::RankingConfig rc, BundleRankingConfig(bundle_dir, /*uses_ranker=*/false));
  const int nmax = *std::max_element(ns.begin(), ns.end());
  if (nmax < 1 || nmax > 4096) return absl::InvalidArgumentError("budget: candidate counts must be in [1, 4096]");
  CandidateBudgetReport rep;
  rep.ns = ns;
  rep.bundle_quota = SourceQuotas(rc);
  // The quotas of each merged point; the sources propose as many as the
  // largest asks for (a scaled quota above max(ns) included).
  std::vector<std::array<int, kNumSources>> merged_quota;
  for (double f : scales) merged_quota.push_back(SourceQuotas(Scaled(rc, f)));
  std::array<int, kNumSources> big{};
  for (int s = 0; s < kNumSources; ++s) {
    big[s] = std::max(nmax, rep.bundle_quota[s]);
    for (const auto& q : merged_quota) big[s] = std::max(big[s], q[s]);
  }
  config::RankingConfig gen = rc;
  SetSourceQuotas(big, &gen);
  const int width = *std::max_element(big.begin(), big.end());
  // Whether a source keeps `c` under quotas `q` (its first q[s]).
  auto kept = [](const Candidate& c, const std::array<int, kNumSources>& q) {
    for (int s = 0; s < kNumSources; ++s) {
      if (c.from(s) && c.rank[s] < q[s]) return true;
    }
    return false;
  };

  const CustomerHistory history = CustomerHistory::Build(ds.transactions, ds.customers.size());
  const int32_t as_of = ds.last_day + 1;
  ASSIGN_OR_RETURN(std::unique_ptr<TwoTowerRetriever> retriever,
                   TwoTowerRetriever::Load(bundle_dir, ds, std::max(1, threads)));
  ASSIGN_OR_RETURN(const RankingTables tables, BuildRankingTables(ds, history, as_of, rc, retriever.get()));
  retriever->SearchOnly(as_of, TwoTowerSearchRows(tables, gen));
  CandidateBuilder builder(ds, history, gen, threads);
  const size_t n = max_customers > 0 ? std::min<size_t>(static_cast<size_t>(max_customers), holdout.customers.size())
                                     : holdout.customers.size();
  rep.customers = static_cast<int64_t>(n);
  rep.recall_at.assign(ns.size(), {});
  rep.unique_at.assign(ns.size(), {});
  for (double f : scales) rep.merged.push_back({f, 0, 0});

  // Per customer: which candidate each source ranked at each position, and
  // the weight of a bought candidate (1 / distinct purchases).
  struct Customer {
    std::vector<int32_t> at;      // [source * width + rank] -> candidate, -1 none
    std::vector<float> weight;    // per candidate: 1/|truth| when bought, else 0
    std::vector<uint8_t> in_mix;  // per candidate, for the greedy mix
  };
  std::vector<Customer> cs(n);
  ProgressReporter progress("candidate budget", static_cast<int64_t>(n), "customers");
  progress.set_enabled(show_progress);
  Chunk chunk;
  for (size_t b = 0; b < n; b += kCustomerChunk) {
    const size_t e = std::min(n, b + kCustomerChunk);
    std::vector<uint32_t> customers(holdout.customers.begin() + static_cast<std::ptrdiff_t>(b),
                                    holdout.customers.begin() + static_cast<std::ptrdiff_t>(e));
    RETURN_IF_ERROR(builder.Build(customers, tables, retriever.get(), &chunk));
    for (size_t i = 0; i < customers.size(); ++i) {
      const absl::flat_hash_set<int32_t>& truth = holdout.articles[b + i];
      const std::vector<Candidate>& cands = chunk.candidates[i];
      Customer& c = cs[b + i];
      c.at.assign(static_cast<size_t>(kNumSources * width), -1);
      c.weight.assign(cands.size(), 0.f);
      c.in_mix.assign(cands.size(), 0);
      const double inv = 1.0 / static_cast<double>(std::max<size_t>(1, truth.size()));
      for (size_t j = 0; j < cands.size(); ++j) {
        const Candidate& cand = cands[j];
        const bool bought = truth.contains(ds.articles[cand.article].article_id);
        if (bought) c.weight[j] = static_cast<float>(inv);
        for (int s = 0; s < kNumSources; ++s) {
          if (cand.from(s) && cand.rank[s] < width)
            c.at[static_cast<size_t>(s * width + cand.rank[s])] = static_cast<int32_t>(j);
        }
        if (!bought) continue;
        for (int s = 0; s < kNumSources; ++s) {
          if (!cand.from(s)) continue;
          bool elsewhere = false;
          for (int t = 0; t < kNumSources; ++t)
            elsewhere = elsewhere || (t != s && cand.from(t) && cand.rank[t] < rep.bundle_quota[t]);
          for (size_t k = 0; k < ns.size(); ++k) {
            if (cand.rank[s] >= ns[k]) continue;
            rep.recall_at[k][s] += inv;
            if (!elsewhere) rep.unique_at[k][s] += inv;
          }
        }
      }
      for (size_t j = 0; j < cands.size(); ++j) {
        for (size_t m = 0; m < rep.merged.size(); ++m) {
          if (!kept(cands[j], merged_quota[m])) continue;
          rep.merged[m].candidates += 1;
          rep.merged[m].recall += c.weight[j];
        }
        if (!kept(cands[j], rep.bundle_quota)) continue;
        rep.bundle_candidates += 1;
        rep.bundle_recall += c.weight[j];
      }
    }
    progress.Update(static_cast<int64_t>(e));
  }
  progress.Finish(static_cast<int64_t>(n));
  const double dn = static_cast<double>(std::max<size_t>(1, n));
  for (auto& row : rep.recall_at)
    for (double& v : row) v /= dn;
  for (auto& row : rep.unique_at)
    for (double& v : row) v /= dn;
  for (auto& m : rep.merged) {
    m.candidates /= dn;
    m.recall /= dn;
  }
  rep.bundle_candidates /= dn;  // the bundle's own mix: the greedy mix's budget
  rep.bundle_recall /= dn;

  // The greedy mix, up to the bundle's candidates per customer.
  CandidateBudgetReport::MixPoint mix;
  double candidates = 0, recall = 0;
  while (candidates / dn < rep.bundle_candidates) {
    int best = -1;
    double best_ratio = -1, best_c = 0, best_r = 0;
    for (int s = 0; s < kNumSources; ++s) {
      if (mix.quota[s] >= width) continue;
      const int hi = std::min(width, mix.quota[s] + step);
      double gc = 0, gr = 0;
      for (const Customer& c : cs) {
        for (int r = mix.quota[s]; r < hi; ++r) {
          const int32_t j = c.at[static_cast<size_t>(s * width + r)];
          if (j < 0 || c.in_mix[static_cast<size_t>(j)] != 0) continue;
          gc += 1;
          gr += c.weight[static_cast<size_t>(j)];
        }
      }
      if (gc == 0) continue;
      if (gr / gc > best_ratio) {
        best_ratio = gr / gc;
        best = s;
        best_c = gc;
        best_r = gr;
      }
    }
    if (best < 0) break;
    const int hi = std::min(width, mix.quota[best] + step);
    for (Customer& c : cs) {
      for (int r = mix.quota[best]; r < hi; ++r) {
        const int32_t j = c.at[static_cast<size_t>(best * width + r)];
        if (j >= 0) c.in_mix[static_cast<size_t>(j)] = 1;
      }
    }
    mix.quota[best] = hi;
    candidates += best_c;
    recall += best_r;
    mix.candidates = candidates / dn;
    mix.recall = recall / dn;
    rep.greedy.push_back(mix);
  }
  return rep;
}

}  // namespace hmrec
