#include "server/inspector.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "data/article_table.h"
#include "data/dates.h"
#include "data/ids.h"
#include "server/inspector_page.h"  // generated from inspector.html: kInspectorHtml

namespace hmrec {

namespace {

void Describe(const ArticleTable& t, int64_t row, int32_t article_id, v1::ArticleView* v) {
  v->set_article_id(FormatArticleId(article_id));
  if (row < 0) return;
  const auto r = static_cast<uint32_t>(row);
  v->set_prod_name(std::string(t.Get(r, ArticleTable::kProdName)));
  v->set_product_type_name(std::string(t.Get(r, ArticleTable::kProductType)));
  v->set_product_group_name(std::string(t.Get(r, ArticleTable::kProductGroup)));
  v->set_colour_group_name(std::string(t.Get(r, ArticleTable::kColourGroup)));
  v->set_index_group_name(std::string(t.Get(r, ArticleTable::kIndexGroup)));
  v->set_garment_group_name(std::string(t.Get(r, ArticleTable::kGarmentGroup)));
  v->set_department_name(std::string(t.Get(r, ArticleTable::kDepartment)));
}

}  // namespace

absl::StatusOr<v1::CustomerProfile> InspectCustomer(const Recommender& r, absl::string_view customer_id,
                                                    EventStore* events, int max_purchases) {
  if (!IsValidCustomerId(customer_id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("customer id '", customer_id.substr(0, 80), "' is not 64 lowercase hex characters"));
  }
  v1::CustomerProfile p;
  p.set_customer_id(std::string(customer_id));
  p.set_bundle_version(r.version());
  p.set_features_as_of(FormatDate(r.as_of()));
  p.set_age(-1);
  const ArticleTable& t = r.articles();
  if (events != nullptr) {
    std::vector<std::vector<config::StoredEvent>> found;
    if (const absl::Status s = events->Lookup({customer_id}, r.as_of(), &found); !s.ok()) {
      p.set_recorded_purchases_error(absl::StrCat("recorded purchases unavailable: ", s.message()));
    } else {
      for (auto e = found[0].rbegin(); e != found[0].rend() && p.recorded_purchases_size() < max_purchases; ++e) {
        if (!r.AppliesEvent(*e)) continue;
        v1::PurchaseView* v = p.add_recorded_purchases();
        Describe(t, t.Row(e->article_id()), e->article_id(), v->mutable_article());
        v->set_date(FormatDate(e->day()));
        v->set_price(e->price());
        v->set_sales_channel_id(e->channel());
      }
    }
  }
  absl::StatusOr<config::CustomerRecord> rec = r.StoredRecord(customer_id);
  if (absl::IsNotFound(rec.status())) return p;
  if (!rec.ok()) return rec.status();
  p.set_known(true);
  p.set_age(rec->age());
  const FeatureSpace& space = r.space();
  if (rec->fields_size() > 4) {
    p.set_club_member_status(space.CustomerFieldText(1, rec->fields(1)));
    p.set_fashion_news_frequency(space.CustomerFieldText(2, rec->fields(2)));
    p.set_fn(space.CustomerFieldText(3, rec->fields(3)));
    p.set_active(space.CustomerFieldText(4, rec->fields(4)));
  }
  p.set_purchase_count(rec->purchase_count());
  const int n = rec->purchase_article_ids_size();
  for (int i = n - 1; i >= 0 && p.purchases_size() < max_purchases; --i) {
    v1::PurchaseView* v = p.add_purchases();
    const int32_t id = rec->purchase_article_ids(i);
    Describe(t, t.Row(id), id, v->mutable_article());
    if (i < rec->purchase_days_size()) v->set_date(FormatDate(rec->purchase_days(i)));
    if (i < rec->purchase_prices_size()) v->set_price(rec->purchase_prices(i));
    if (static_cast<size_t>(i) < rec->purchase_channels().size()) {
      v->set_sales_channel_id(static_cast<unsigned char>(rec->purchase_channels()[i]));
    }
  }
  return p;
}

absl::StatusOr<v1::ArticlesResponse> DescribeArticles(const Recommender& r, const v1::ArticlesRequest& request) {
  if (request.article_ids_size() > 1000) {
    return absl::InvalidArgumentError(absl::StrCat(request.article_ids_size(), " article ids; at most 1000 a call"));
  }
  v1::ArticlesResponse out;
  const ArticleTable& t = r.articles();
  for (int i = 0; i < request.article_ids_size(); ++i) {
    absl::StatusOr<int32_t> id = ParseArticleId(request.article_ids(i));
    if (!id.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("article_ids[", i, "]: ", id.status().message()));
    }
    const int64_t row = t.Row(*id);
    if (row >= 0) Describe(t, row, *id, out.add_articles());
  }
  return out;
}

absl::StatusOr<std::string> RandomCustomer(const Recommender& r, uint64_t seed) {
  // splitmix64 of the seed, four times: 64 hex characters.
  std::string key;
  uint64_t x = seed;
  for (int i = 0; i < 4; ++i) {
    x += 0x9e3779b97f4a7c15ULL;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    absl::StrAppendFormat(&key, "%016x", z ^ (z >> 31));
  }
  return r.CustomerAtOrAfter(key);
}

v1::FilterValues FilterValuesOf(const Recommender& r) {
  const ArticleTable& t = r.articles();
  v1::FilterValues out;
  auto fill = [&](int column, google::protobuf::RepeatedPtrField<std::string>* dst) {
    std::vector<std::string> v = t.values(column);
    v.erase(std::remove(v.begin(), v.end(), std::string()), v.end());
    std::sort(v.begin(), v.end());
    for (std::string& s : v) dst->Add(std::move(s));
  };
  fill(ArticleTable::kIndexGroup, out.mutable_index_group_names());
  fill(ArticleTable::kProductGroup, out.mutable_product_group_names());
  fill(ArticleTable::kGarmentGroup, out.mutable_garment_group_names());
  return out;
}

const std::string& InspectorPage() {
  static const std::string* page = new std::string(kInspectorHtml);
  return *page;
}

}  // namespace hmrec
