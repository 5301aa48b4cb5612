#include "trainer/examples.h"

#include <algorithm>
#include <cmath>

#include "common/rng.h"

namespace hmrec {
namespace {
constexpr int kCustomerStatic = 6;
constexpr int kArticleStatic = 1 + kArticleCategoricalFields;
}  // namespace

TrainingData TrainingData::Build(const Dataset& ds, const FeatureSpace& space, const config::TrainerConfig& cfg) {
  TrainingData td;
  td.ds_ = &ds;
  td.space_ = &space;
  td.history_ = CustomerHistory::Build(ds.transactions, ds.customers.size());
  td.sales_ = ArticleSales::Build(ds.transactions, ds.articles.size());
  td.article_id_dropout_ = cfg.model().article_id_dropout();
  td.seed_ = cfg.seed();
  td.window_first_day_ =
      cfg.window_days() > 0 ? std::max(ds.first_day, ds.last_day - cfg.window_days() + 1) : ds.first_day;
  const double half_life = cfg.recency_half_life_days();

  // One example per distinct (customer, article, day); history = purchases
  // on earlier days only.
  std::vector<int64_t> counts(ds.articles.size(), 0);
  for (uint32_t c = 0; c < ds.customers.size(); ++c) {
    const uint32_t* articles = td.history_.articles(c);
    const int32_t* days = td.history_.days(c);
    const size_t n = td.history_.count(c);
    size_t day_start = 0;
    for (size_t p = 0; p < n; ++p) {
      const int32_t day = days[p];
      if (p > 0 && day != days[p - 1]) day_start = p;
      if (day < td.window_first_day_) continue;
      const uint32_t a = articles[p];
      bool repeat = false;
      for (size_t q = day_start; q < p; ++q) repeat |= articles[q] == a;
      if (repeat) continue;
      const float w = half_life > 0 ? static_cast<float>(std::exp2(-(ds.last_day - day) / half_life)) : 1.0f;
      td.examples_.push_back({c, a, day, static_cast<uint32_t>(day_start), w});
      ++counts[a];
    }
  }
  td.has_examples_.resize(ds.articles.size());
  for (size_t a = 0; a < counts.size(); ++a) td.has_examples_[a] = counts[a] > 0;
  // Sampling probability of an article in a batch: its share of examples.
  td.article_log_q_.resize(ds.articles.size());
  const double total = static_cast<double>(std::max<size_t>(1, td.examples_.size()));
  for (size_t a = 0; a < counts.size(); ++a) {
    td.article_log_q_[a] = static_cast<float>(std::log(std::max<int64_t>(counts[a], 1) / total));
  }

  // Article features that depend on the example's day, computed once.
  td.example_article_dynamic_.resize(td.examples_.size() * 2);
  int32_t dyn[kArticleFields];
  for (size_t i = 0; i < td.examples_.size(); ++i) {
    FeatureSpace::EncodeArticleDynamic(td.sales_, td.examples_[i].article, td.examples_[i].day, dyn);
    td.example_article_dynamic_[2 * i] = static_cast<int8_t>(dyn[1 + kArticleCategoricalFields]);
    td.example_article_dynamic_[2 * i + 1] = static_cast<int8_t>(dyn[2 + kArticleCategoricalFields]);
  }

  td.customer_static_.resize(ds.customers.size() * kCustomerStatic);
  int32_t fields[kCustomerFields];
  for (uint32_t c = 0; c < ds.customers.size(); ++c) {
    space.EncodeCustomerStatic(ds, ds.customers[c], fields);
    std::copy(fields, fields + kCustomerStatic, td.customer_static_.begin() + c * kCustomerStatic);
  }
  td.article_static_.resize(ds.articles.size() * kArticleStatic);
  int32_t af[kArticleFields];
  for (uint32_t a = 0; a < ds.articles.size(); ++a) {
    space.EncodeArticleStatic(a, ds.articles[a], af);
    std::copy(af, af + kArticleStatic, td.article_static_.begin() + a * kArticleStatic);
  }
  return td;
}

void TrainingData::FillBatch(const std::vector<uint32_t>& order, size_t begin, size_t end, Batch* b) const {
  const int64_t n = static_cast<int64_t>(end - begin);
  const int h = space_->history_length();
  b->size = n;
  b->customer_fields.resize(n * kCustomerFields);
  b->history.resize(n * h);
  b->article_fields.resize(n * kArticleFields);
  b->article_rows.resize(n);
  b->weight.resize(n);
  b->log_q.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t x = order[begin + i];
    const Example& e = examples_[x];
    int32_t* cf = &b->customer_fields[i * kCustomerFields];
    std::copy_n(&customer_static_[e.customer * kCustomerStatic], kCustomerStatic, cf);
    const int32_t last_day = e.history_count > 0 ? history_.days(e.customer)[e.history_count - 1] : 0;
    space_->EncodeCustomerHistory(history_.articles(e.customer), e.history_count, last_day, e.day, cf,
                                  &b->history[i * h]);
    int32_t* af = &b->article_fields[i * kArticleFields];
    std::copy_n(&article_static_[e.article * kArticleStatic], kArticleStatic, af);
    if (article_id_dropout_ > 0 && Rng(seed_, x, begin + static_cast<size_t>(i)).Uniform() < article_id_dropout_) {
      af[0] = 0;  // the unknown id: the attributes alone
    }
    af[1 + kArticleCategoricalFields] = example_article_dynamic_[2 * x];
    af[2 + kArticleCategoricalFields] = example_article_dynamic_[2 * x + 1];
    b->article_rows[i] = static_cast<int32_t>(e.article);
    b->weight[i] = e.weight;
    b->log_q[i] = article_log_q_[e.article];
  }
  std::vector<std::pair<int32_t, int32_t>> by_article(n);
  for (int64_t i = 0; i < n; ++i) by_article[i] = {b->article_rows[i], static_cast<int32_t>(i)};
  std::sort(by_article.begin(), by_article.end());
  b->same_article.clear();
  for (int64_t g = 0; g < n;) {
    int64_t e = g + 1;
    while (e < n && by_article[e].first == by_article[g].first) ++e;
    for (int64_t x = g; x < e; ++x) {
      for (int64_t y = g; y < e; ++y) {
        if (x != y) b->same_article.push_back(by_article[x].second * n + by_article[y].second);
      }
    }
    g = e;
  }
}

void TrainingData::EncodeCustomers(const std::vector<uint32_t>& customers, std::vector<int32_t>* fields,
                                   std::vector<int32_t>* history) const {
  const int h = space_->history_length();
  fields->resize(customers.size() * kCustomerFields);
  history->resize(customers.size() * h);
  for (size_t i = 0; i < customers.size(); ++i) {
    const uint32_t c = customers[i];
    int32_t* cf = &(*fields)[i * kCustomerFields];
    std::copy_n(&customer_static_[c * kCustomerStatic], kCustomerStatic, cf);
    space_->EncodeCustomerHistory(history_.articles(c), static_cast<int64_t>(history_.count(c)), history_.last_day(c),
                                  as_of_day(), cf, &(*history)[i * h]);
  }
}

void TrainingData::EncodeArticles(int32_t day, std::vector<int32_t>* fields) const {
  fields->resize(ds_->articles.size() * kArticleFields);
  for (uint32_t a = 0; a < ds_->articles.size(); ++a) {
    int32_t* af = &(*fields)[a * kArticleFields];
    std::copy_n(&article_static_[a * kArticleStatic], kArticleStatic, af);
    // An article no example trained has an untrained id row; with id
    // dropout the unknown id's vector stands in for it.
    if (article_id_dropout_ > 0 && !has_examples_[a]) af[0] = 0;
    FeatureSpace::EncodeArticleDynamic(sales_, a, day, af);
  }
}

}  // namespace hmrec
