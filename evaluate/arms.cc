#include "evaluate/arms.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "data/csv.h"
#include "data/dates.h"
#include "data/ids.h"
#include "google/protobuf/util/json_util.h"
#include "proto/config.pb.h"

namespace hmrec::evaluate {
namespace {

struct Bought {
  int32_t day;
  int32_t article;
};

}  // namespace

absl::StatusOr<std::vector<ArmResult>> CompareArms(const std::string& impressions_path,
                                                   const std::string& purchases_path, int window_days) {
  if (window_days < 0) return absl::InvalidArgumentError(absl::StrCat("window days = ", window_days, ": need >= 0"));
  // Purchases by customer.
  absl::flat_hash_map<std::string, std::vector<Bought>> bought;
  {
    ASSIGN_OR_RETURN(std::unique_ptr<CsvReader> r, CsvReader::Open(purchases_path));
    ASSIGN_OR_RETURN(bool header, r->Next());
    if (!header || r->fields().size() < 3 || r->fields()[0] != "t_dat" || r->fields()[1] != "customer_id" ||
        r->fields()[2] != "article_id") {
      return absl::InvalidArgumentError(
          absl::StrCat(purchases_path, ":1: expected the transactions header (t_dat,customer_id,article_id,...)"));
    }
    while (true) {
      ASSIGN_OR_RETURN(bool more, r->Next());
      if (!more) break;
      const auto& f = r->fields();
      if (f.size() < 3) return r->RecordError("expected t_dat,customer_id,article_id,...");
      absl::StatusOr<int32_t> day = ParseDate(f[0]);
      if (!day.ok()) return r->RecordError(absl::StrCat("column t_dat: ", day.status().message()));
      absl::StatusOr<int32_t> article = ParseArticleId(f[2]);
      if (!article.ok()) return r->RecordError(absl::StrCat("column article_id: ", article.status().message()));
      bought[std::string(f[1])].push_back({*day, *article});
    }
  }
  std::map<std::pair<std::string, std::string>, ArmResult> arms;
  std::map<std::pair<std::string, std::string>, absl::flat_hash_set<std::string>> customers;
  // A customer's purchase counts once per arm even when several impressions'
  // windows hold it: (arm, version, customer, purchase index).
  std::map<std::pair<std::string, std::string>, absl::flat_hash_set<std::string>> counted;
  std::ifstream in(impressions_path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", impressions_path));
  std::string line;
  int64_t line_no = 0;
  config::ImpressionRecord rec;
  google::protobuf::util::JsonParseOptions parse;
  parse.ignore_unknown_fields = true;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    rec.Clear();
    const auto parsed = google::protobuf::util::JsonStringToMessage(line, &rec, parse);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(impressions_path, ":", line_no, ": not an impression record: ", std::string(parsed.message())));
    }
    if (rec.time().size() < 10) {
      return absl::InvalidArgumentError(absl::StrCat(impressions_path, ":", line_no, ": time '", rec.time(), "'"));
    }
    absl::StatusOr<int32_t> day = ParseDate(rec.time().substr(0, 10));
    if (!day.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(impressions_path, ":", line_no, ": time: ", day.status().message()));
    }
    const auto key = std::make_pair(rec.arm(), rec.bundle_version());
    ArmResult& a = arms[key];
    a.arm = rec.arm();
    a.bundle_version = rec.bundle_version();
    ++a.impressions;
    customers[key].insert(rec.customer_id());
    absl::flat_hash_set<int32_t> shown;
    for (const std::string& id : rec.article_ids()) {
      absl::StatusOr<int32_t> article = ParseArticleId(id);
      if (!article.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(impressions_path, ":", line_no, ": article_ids: ", article.status().message()));
      }
      shown.insert(*article);
    }
    a.shown += static_cast<int64_t>(shown.size());
    absl::flat_hash_set<int32_t> hit_articles;
    auto it = bought.find(rec.customer_id());
    if (it != bought.end()) {
      for (size_t p = 0; p < it->second.size(); ++p) {
        const Bought& b = it->second[p];
        if (b.day < *day || b.day > *day + window_days) continue;
        const bool was_shown = shown.contains(b.article);
        if (was_shown) hit_articles.insert(b.article);
        if (counted[key].insert(absl::StrCat(rec.customer_id(), "/", p)).second) {
          ++a.purchases;
          a.purchases_shown += was_shown;
        }
      }
    }
    a.hits += !hit_articles.empty();
    a.shown_bought += static_cast<int64_t>(hit_articles.size());
  }
  std::vector<ArmResult> out;
  for (auto& [key, a] : arms) {
    a.customers = static_cast<int64_t>(customers[key].size());
    out.push_back(a);
  }
  return out;
}

std::string ArmsJson(const std::vector<ArmResult>& arms, int window_days) {
  std::string items;
  for (const ArmResult& a : arms) {
    absl::StrAppend(&items, items.empty() ? "" : ", ",
                    absl::StrFormat(R"({"arm": "%s", "bundle_version": "%s", "impressions": %d, "customers": %d, )"
                                    R"("hits": %d, "hit_rate": %.6f, "precision": %.6f, "purchase_recall": %.6f})",
                                    a.arm, a.bundle_version, a.impressions, a.customers, a.hits, a.hit_rate(),
                                    a.precision(), a.purchase_recall()));
  }
  return absl::StrCat("{\"window_days\": ", window_days, ", \"arms\": [", items, "]}\n");
}

}  // namespace hmrec::evaluate
