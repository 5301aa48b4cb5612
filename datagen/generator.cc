#include "datagen/generator.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <numeric>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/progress.h"
#include "common/rng.h"
#include "common/status_macros.h"
#include "data/csv.h"
#include "data/dates.h"
#include "data/hm_data.h"
#include "data/ids.h"
#include "data/submission.h"
#include "datagen/catalog.h"

namespace hmrec::datagen {
namespace {

// Stream ids: every kind of draw has its own random stream, so changing how
// many draws one part makes does not shift the others.
enum Stream : uint64_t {
  kStreamStyles = 1,
  kStreamCatalogue,
  kStreamProducts,
  kStreamRegions,
  kStreamCustomers,
  kStreamSessions,
  kStreamIds,
  kStreamSeasons,
};

constexpr int kTasteTop = 6;            // styles kept per customer
constexpr int kRecentItems = 8;         // re-buy candidates per customer
constexpr double kBasketExtra = 1.35;   // items per basket = 1 + Poisson(this)
constexpr double kDuplicateRow = 0.07;  // same article twice in a basket
constexpr double kPriceScale = 5900.0;  // SEK -> the real file's normalised price

struct Section {
  int32_t no;
  std::string name;
};

struct Department {
  int32_t no;
  std::string name;
  int section;  // index into sections
};

struct Style {
  int index;  // into Indexes()
  double mass;
  double age_center;
  double age_width;
  std::vector<int> types;  // indices into ProductTypes()
  Categorical type_pick;
  Categorical colour_pick;      // over Colours()
  Categorical appearance_pick;  // over GraphicalAppearances()
  std::vector<int> departments;
  std::vector<double> region_affinity;
};

struct ArticleModel {
  int style;
  int32_t launch;
  float ramp;
  float half_life;
  float quality;
  float price_sek;
};

struct CustomerModel {
  uint8_t styles[kTasteTop];
  float taste_cdf[kTasteTop];
  float p_online;
  int32_t sessions;
  int32_t join;
  int32_t leave;
};

std::string HexId(Rng& rng) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(64, '0');
  for (int w = 0; w < 4; ++w) {
    uint64_t v = rng.Next();
    for (int i = 0; i < 16; ++i) {
      s[w * 16 + i] = kHex[v & 15];
      v >>= 4;
    }
  }
  return s;
}

// Draws `n` distinct integers from [lo, hi].
std::vector<int32_t> DistinctInts(Rng& rng, size_t n, int32_t lo, int32_t hi) {
  std::vector<int32_t> out;
  out.reserve(n);
  std::vector<bool> used(static_cast<size_t>(hi - lo + 1), false);
  while (out.size() < n) {
    const int32_t v = static_cast<int32_t>(rng.Between(lo, hi));
    if (used[v - lo]) continue;
    used[v - lo] = true;
    out.push_back(v);
  }
  return out;
}

// A categorical that favours a few values of `n`: a handful get large random
// weights, the rest a small floor.
Categorical FavourFew(Rng& rng, size_t n, int favourites, double floor, const std::vector<bool>* allowed = nullptr) {
  std::vector<double> w(n, 0.0);
  std::vector<size_t> ok;
  for (size_t i = 0; i < n; ++i) {
    if (allowed == nullptr || (*allowed)[i]) {
      w[i] = floor;
      ok.push_back(i);
    }
  }
  for (int f = 0; f < favourites && !ok.empty(); ++f) {
    w[ok[rng.Below(ok.size())]] += rng.Exponential(1.0);
  }
  return Categorical(w);
}

// Day of the year of a YYYY-MM-DD date, months of 30.4 days (1 .. ~365).
double DayOfYear(const std::string& date) {
  const int month = (date[5] - '0') * 10 + (date[6] - '0');
  const int dom = (date[8] - '0') * 10 + (date[9] - '0');
  return (month - 1) * 30.4 + dom;
}

// Relative shopping volume of a day: weekly rhythm, summer and winter sales,
// Black Friday, the spring 2020 lockdown, slow growth.
double DayWeight(int32_t day, int32_t start) {
  static constexpr double kWeekday[7] = {0.96, 0.93, 0.97, 1.0, 1.08, 1.16, 0.90};
  const std::string date = FormatDate(day);
  const int month = (date[5] - '0') * 10 + (date[6] - '0');
  const int dom = (date[8] - '0') * 10 + (date[9] - '0');
  double w = kWeekday[DayOfWeek(day)];
  const double doy = DayOfYear(date);
  w *= 1.0 + 0.22 * std::cos(2 * M_PI * (doy - 175) / 365.0);                  // summer peak
  if ((month == 6 && dom >= 20) || (month == 7 && dom <= 10)) w *= 1.35;       // summer sale
  if (month == 11 && dom >= 23 && dom <= 29 && DayOfWeek(day) == 4) w *= 2.6;  // Black Friday
  if (month == 12 && dom >= 26) w *= 1.3;
  if (date.compare(0, 7, "2020-03") >= 0 && date.compare(0, 7, "2020-05") <= 0 && !(month == 3 && dom < 15)) {
    w *= 0.62;  // lockdown
  }
  w *= 1.0 + 0.08 * (day - start) / 365.0;
  return w;
}

double Life(const ArticleModel& a, int32_t day) {
  const double x = day - a.launch;
  if (x < 0) return 0.0;
  if (x < a.ramp) return (x + 1.0) / (a.ramp + 1.0);
  return std::exp(-0.6931471805599453 * (x - a.ramp) / a.half_life);
}

void AppendPrice(double value, std::string* out) {
  char buf[32];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  out->append(buf, ptr);
}

class Generator {
 public:
  Generator(const config::DatagenConfig& cfg, std::string out_dir, bool progress)
      : cfg_(cfg), out_dir_(std::move(out_dir)), show_progress_(progress) {}

  absl::Status Run(GenerateStats* stats);

 private:
  void BuildStyles();
  void BuildCatalogue();
  absl::Status WriteArticles();
  void BuildCustomers();
  absl::Status WriteCustomers();
  absl::Status WriteTransactions(GenerateStats* stats);
  absl::Status WriteSampleSubmission();
  std::string Path(const char* name) const { return (std::filesystem::path(out_dir_) / name).string(); }

  const config::DatagenConfig& cfg_;
  std::string out_dir_;
  bool show_progress_;
  int32_t start_ = 0;
  int32_t end_ = 0;

  std::vector<Style> styles_;
  Categorical style_pick_;
  std::vector<Section> sections_;
  std::vector<Department> departments_;
  std::vector<std::vector<int>> departments_of_index_;

  std::vector<Article> articles_;  // rows of articles.csv, sorted by article_id
  std::vector<ArticleModel> models_;
  std::vector<std::vector<uint32_t>> articles_of_style_;

  std::vector<std::string> customer_ids_;
  std::vector<std::string> postal_codes_;
  std::vector<std::string> customer_rows_;  // customers.csv lines without id order
  std::vector<CustomerModel> customers_;
  std::vector<int64_t> article_counts_;
};

void Generator::BuildStyles() {
  Rng rng(cfg_.seed(), kStreamStyles);
  const auto& indexes = Indexes();
  const auto& types = ProductTypes();
  std::vector<double> index_share;
  for (const IndexInfo& ix : indexes) index_share.push_back(ix.article_share);
  Categorical index_pick(index_share);

  // Sections and departments per index.
  Rng crng(cfg_.seed(), kStreamCatalogue);
  const auto& section_words = SectionWords();
  const int sections_per_index = 5;
  const int departments_per_index = std::max(3, std::min(30, cfg_.num_articles() / 300));
  std::vector<int32_t> section_nos = DistinctInts(crng, indexes.size() * sections_per_index, 2, 99);
  std::vector<int32_t> dept_nos = DistinctInts(crng, indexes.size() * departments_per_index, 1201, 9989);
  departments_of_index_.assign(indexes.size(), {});
  for (size_t ix = 0; ix < indexes.size(); ++ix) {
    const int first_section = static_cast<int>(sections_.size());
    for (int s = 0; s < sections_per_index; ++s) {
      sections_.push_back(
          {section_nos[sections_.size()], std::string(section_words[(ix * 4 + s) % section_words.size()])});
    }
    for (int d = 0; d < departments_per_index; ++d) {
      const ProductTypeInfo& t = types[crng.Below(types.size())];
      static constexpr const char* kSuffix[] = {"",    " Basic",   " Fancy", " Trend",
                                                " DS", " Premium", " Woven", " Jersey"};
      departments_of_index_[ix].push_back(static_cast<int>(departments_.size()));
      departments_.push_back({dept_nos[departments_.size()], absl::StrCat(t.name, kSuffix[crng.Below(8)]),
                              first_section + static_cast<int>(crng.Below(sections_per_index))});
    }
  }

  std::vector<double> masses;
  for (int s = 0; s < cfg_.num_styles(); ++s) {
    Style st;
    // The first styles cover every index once so no audience is missing.
    st.index =
        s < static_cast<int>(indexes.size()) && cfg_.num_styles() >= 10 ? s : static_cast<int>(index_pick.Sample(rng));
    const IndexInfo& ix = indexes[st.index];
    st.mass = rng.LogNormal(0, 0.5) * ix.article_share;
    st.age_center = std::clamp(rng.Normal(ix.age_center, 7), 18.0, 70.0);
    st.age_width = rng.Uniform(6, 13);
    std::vector<bool> allowed(types.size(), false);
    for (size_t t = 0; t < types.size(); ++t) {
      allowed[t] = (types[t].audience & ix.audience) != 0;
      if (ix.code == "C" || ix.code == "J") allowed[t] = allowed[t] && types[t].group == "Accessories";
      if (ix.code == "B") {
        allowed[t] = allowed[t] && (types[t].group == "Underwear" || types[t].group == "Socks & Tights" ||
                                    types[t].group == "Nightwear");
      }
    }
    st.type_pick = FavourFew(rng, types.size(), 4, 0.02, &allowed);
    st.colour_pick = FavourFew(rng, Colours().size(), 4, 0.03);
    st.appearance_pick = FavourFew(rng, GraphicalAppearances().size(), 3, 0.02);
    const auto& pool = departments_of_index_[st.index];
    for (int d = 0; d < 3; ++d) st.departments.push_back(pool[rng.Below(pool.size())]);
    st.region_affinity.resize(cfg_.num_regions());
    for (double& a : st.region_affinity) a = rng.Normal(0, 0.9);
    masses.push_back(st.mass);
    styles_.push_back(std::move(st));
  }
  style_pick_.Reset(masses);
}

void Generator::BuildCatalogue() {
  Rng rng(cfg_.seed(), kStreamProducts);
  const auto& types = ProductTypes();
  const auto& colours = Colours();
  const auto& appearances = GraphicalAppearances();
  const auto& indexes = Indexes();
  const size_t n = static_cast<size_t>(cfg_.num_articles());

  // Products with 1..n colour variants (real file: 2.2 articles per product).
  struct Product {
    int style;
    int type;
    int appearance;
    int department;
    int32_t launch;
    float ramp, half_life, quality, price;
    int variants;
  };
  std::vector<Product> products;
  size_t total = 0;
  while (total < n) {
    Product p;
    p.style = static_cast<int>(style_pick_.Sample(rng));
    const Style& st = styles_[p.style];
    p.type = static_cast<int>(st.type_pick.Sample(rng));
    p.appearance = static_cast<int>(st.appearance_pick.Sample(rng));
    p.department = st.departments[rng.Below(st.departments.size())];
    // Launches spread from four months before the data starts to its last day,
    // so new articles keep arriving, also in a held-out final week.
    p.launch = static_cast<int32_t>(rng.Between(start_ - 120, end_));
    p.ramp = static_cast<float>(rng.Uniform(2, 12));
    p.half_life = static_cast<float>(rng.LogNormal(std::log(40.0), 0.55));
    p.quality = static_cast<float>(rng.LogNormal(0, 1.3));
    const double shelf = types[p.type].price * rng.LogNormal(0, 0.3);
    p.price = static_cast<float>(std::max(19.0, std::round(shelf / 10) * 10 - 1));
    p.variants = static_cast<int>(std::min<int64_t>(1 + rng.Poisson(1.25), 12));
    p.variants = static_cast<int>(std::min<size_t>(p.variants, n - total));
    total += p.variants;
    products.push_back(p);
  }

  // Product codes are random, so neither ids nor file order tell anything.
  std::vector<int32_t> codes = DistinctInts(rng, products.size(), 108775, 959461);
  struct Row {
    Article a;
    ArticleModel m;
  };
  std::vector<Row> rows;
  rows.reserve(n);
  const auto& words = NameWords();
  const auto& fabrics = Fabrics();
  const auto& features = Features();
  for (size_t pi = 0; pi < products.size(); ++pi) {
    const Product& p = products[pi];
    const Style& st = styles_[p.style];
    const ProductTypeInfo& t = types[p.type];
    const IndexInfo& ix = indexes[st.index];
    const Department& dep = departments_[p.department];
    const Section& sec = sections_[dep.section];
    std::string name = absl::StrCat(words[rng.Below(words.size())], " ", t.name);
    if (rng.Bernoulli(0.08)) absl::StrAppend(&name, " (", words[rng.Below(words.size())], ")");
    if (rng.Bernoulli(0.01)) absl::StrAppend(&name, ", 2-pack");
    std::string desc;
    if (!rng.Bernoulli(0.004)) {  // the real file lacks ~0.4% of descriptions
      desc = absl::StrCat(absl::AsciiStrToUpper(std::string(1, t.name[0])), t.name.substr(1), " in ",
                          fabrics[rng.Below(fabrics.size())], " with ", features[rng.Below(features.size())], ", ",
                          features[rng.Below(features.size())], " and ", features[rng.Below(features.size())], ".");
      if (rng.Bernoulli(0.05)) absl::StrAppend(&desc, " Made in a \"soft-touch\" quality.");
      if (rng.Bernoulli(0.003)) absl::StrAppend(&desc, "\nCare: wash at 40\xC2\xB0.");
    }
    std::vector<bool> colour_used(colours.size(), false);
    int32_t variant_no = static_cast<int32_t>(rng.Between(1, 20));
    for (int v = 0; v < p.variants; ++v) {
      size_t c = st.colour_pick.Sample(rng);
      for (int tries = 0; colour_used[c] && tries < 8; ++tries) c = st.colour_pick.Sample(rng);
      colour_used[c] = true;
      const ColourInfo& col = colours[c];
      const NamedCode& app = appearances[p.appearance];
      Row r;
      Article& a = r.a;
      a.article_id = codes[pi] * 1000 + variant_no;
      variant_no += static_cast<int32_t>(rng.Between(1, 6));
      if (variant_no > 999) variant_no = 999 - v;
      a.product_code = codes[pi];
      a.prod_name = name;
      a.product_type_no = t.no;
      a.product_type_name = std::string(t.name);
      a.product_group_name = std::string(t.group);
      a.graphical_appearance_no = app.code;
      a.graphical_appearance_name = std::string(app.name);
      a.colour_group_code = col.code;
      a.colour_group_name = std::string(col.name);
      a.perceived_colour_value_id = col.value_id;
      a.perceived_colour_value_name = std::string(col.value_name);
      a.perceived_colour_master_id = col.master_id;
      a.perceived_colour_master_name = std::string(col.master_name);
      a.department_no = dep.no;
      a.department_name = dep.name;
      a.index_code = std::string(ix.code);
      a.index_name = std::string(ix.name);
      a.index_group_no = ix.group_no;
      a.index_group_name = std::string(ix.group_name);
      a.section_no = sec.no;
      a.section_name = sec.name;
      a.garment_group_no = t.garment_group_no;
      a.garment_group_name = std::string(GarmentGroupName(t.garment_group_no));
      a.detail_desc = desc;
      ArticleModel& m = r.m;
      m.style = p.style;
      m.launch = p.launch + (v == 0 ? 0 : static_cast<int32_t>(rng.Below(3) == 0 ? rng.Between(0, 40) : 0));
      m.ramp = p.ramp;
      m.half_life = p.half_life;
      m.quality = static_cast<float>(p.quality * rng.LogNormal(0, 0.6));
      m.price_sek = p.price;
      rows.push_back(std::move(r));
    }
  }
  // Variant numbers can collide after clamping: keep ids unique.
  std::sort(rows.begin(), rows.end(), [](const Row& x, const Row& y) { return x.a.article_id < y.a.article_id; });
  for (size_t i = 1; i < rows.size(); ++i) {
    if (rows[i].a.article_id <= rows[i - 1].a.article_id) {
      rows[i].a.article_id = rows[i - 1].a.article_id + 1;
    }
  }
  articles_of_style_.assign(styles_.size(), {});
  for (size_t i = 0; i < rows.size(); ++i) {
    articles_.push_back(std::move(rows[i].a));
    models_.push_back(rows[i].m);
    articles_of_style_[models_.back().style].push_back(static_cast<uint32_t>(i));
  }
}

absl::Status Generator::WriteArticles() {
  ASSIGN_OR_RETURN(std::unique_ptr<CsvWriter> w, CsvWriter::Open(Path(kArticlesFile)));
  w->Row(ArticleColumns());
  char id[kArticleIdDigits];
  for (const Article& a : articles_) {
    FormatArticleIdTo(a.article_id, id);
    w->RawField(absl::string_view(id, kArticleIdDigits));
    w->RawField(absl::StrCat(a.product_code));
    w->Field(a.prod_name);
    w->RawField(absl::StrCat(a.product_type_no));
    w->Field(a.product_type_name);
    w->Field(a.product_group_name);
    w->RawField(absl::StrCat(a.graphical_appearance_no));
    w->Field(a.graphical_appearance_name);
    w->RawField(absl::StrCat(a.colour_group_code));
    w->Field(a.colour_group_name);
    w->RawField(absl::StrCat(a.perceived_colour_value_id));
    w->Field(a.perceived_colour_value_name);
    w->RawField(absl::StrCat(a.perceived_colour_master_id));
    w->Field(a.perceived_colour_master_name);
    w->RawField(absl::StrCat(a.department_no));
    w->Field(a.department_name);
    w->Field(a.index_code);
    w->Field(a.index_name);
    w->RawField(absl::StrCat(a.index_group_no));
    w->Field(a.index_group_name);
    w->RawField(absl::StrCat(a.section_no));
    w->Field(a.section_name);
    w->RawField(absl::StrCat(a.garment_group_no));
    w->Field(a.garment_group_name);
    w->Field(a.detail_desc);
    w->EndRow();
  }
  return w->Close();
}

void Generator::BuildCustomers() {
  const int64_t n = cfg_.num_customers();
  const int nregions = cfg_.num_regions();
  const int nstyles = static_cast<int>(styles_.size());

  // Regions differ in size; postal codes belong to one region each, and one
  // catch-all code (8.8% of real customers share one) to none.
  Rng rrng(cfg_.seed(), kStreamRegions);
  std::vector<double> region_size(nregions);
  for (double& s : region_size) s = rrng.LogNormal(0, 0.7);
  Categorical region_pick(region_size);
  postal_codes_.reserve(cfg_.num_postal_codes());
  Rng idrng(cfg_.seed(), kStreamIds);
  for (int i = 0; i < cfg_.num_postal_codes(); ++i) postal_codes_.push_back(HexId(idrng));
  const int per_region = (cfg_.num_postal_codes() - 1) / nregions;

  // Session counts: log-normal, heavy-tailed; scaled below to the target mean.
  customers_.resize(n);
  customer_ids_.resize(n);
  customer_rows_.resize(n);
  std::vector<double> raw(n, 0.0);
  std::vector<double> logits(nstyles);
  std::vector<int> order(nstyles);
  for (int64_t c = 0; c < n; ++c) {
    Rng rng(cfg_.seed(), kStreamCustomers, static_cast<uint64_t>(c));
    CustomerModel& cm = customers_[c];
    customer_ids_[c] = HexId(idrng);
    // Age: bimodal, young adults and a broad 40-60 bump.
    double age = rng.Bernoulli(0.56) ? rng.Normal(24, 4.5) : rng.Normal(49, 10);
    age = std::clamp(std::round(age), 16.0, 99.0);
    const int region = static_cast<int>(region_pick.Sample(rng));
    int postal;
    if (rng.Bernoulli(0.088)) {
      postal = 0;
    } else {
      // Zipf-like within the region.
      const double u = rng.Uniform();
      postal = 1 + region * per_region + static_cast<int>(per_region * u * u);
      postal = std::min(postal, cfg_.num_postal_codes() - 1);
    }
    const bool fn = rng.Bernoulli(0.348);
    const bool active = fn ? rng.Bernoulli(0.965) : rng.Bernoulli(0.003);
    const double club_u = rng.Uniform();
    const char* club = club_u < 0.9275 ? "ACTIVE" : club_u < 0.9955 ? "PRE-CREATE" : club_u < 0.9958 ? "LEFT CLUB" : "";
    const double news_u = rng.Uniform();
    const char* news = fn ? (news_u < 0.985  ? "Regularly"
                             : news_u < 0.99 ? "Monthly"
                                             : "NONE")
                          : (news_u < 0.982    ? "NONE"
                             : news_u < 0.9999 ? ""
                                               : "None");
    const bool age_missing = rng.Bernoulli(0.0116);

    // Taste: demographic pull plus an individual part no file shows.
    for (int s = 0; s < nstyles; ++s) {
      const Style& st = styles_[s];
      const double z = (age - st.age_center) / st.age_width;
      logits[s] = cfg_.demographic_strength() * (-0.5 * z * z + st.region_affinity[region]) +
                  cfg_.individual_taste_sigma() * rng.Normal() + std::log(st.mass);
    }
    std::iota(order.begin(), order.end(), 0);
    const int top = std::min(kTasteTop, nstyles);
    std::partial_sort(order.begin(), order.begin() + top, order.end(),
                      [&](int a, int b) { return logits[a] > logits[b]; });
    double sum = 0;
    for (int k = 0; k < kTasteTop; ++k) {
      const int s = order[std::min(k, top - 1)];
      const double w = k < top ? std::exp(logits[s] - logits[order[0]]) : 0.0;
      sum += w;
      cm.styles[k] = static_cast<uint8_t>(s);
      cm.taste_cdf[k] = static_cast<float>(sum);
    }
    for (float& v : cm.taste_cdf) v = static_cast<float>(v / sum);

    cm.p_online = static_cast<float>(rng.Bernoulli(0.3) ? 0.08 : rng.Bernoulli(0.5) ? 0.97 : 0.75);
    cm.join = rng.Bernoulli(0.7) ? start_ : static_cast<int32_t>(rng.Between(start_, end_));
    cm.leave = rng.Bernoulli(0.15) ? static_cast<int32_t>(rng.Between(cm.join, end_)) : end_;
    if (!rng.Bernoulli(cfg_.no_purchase_share())) {
      double activity = rng.LogNormal(0, 1.15);
      if (fn) activity *= 1.35;
      if (absl::string_view(club) == "PRE-CREATE") activity *= 0.35;
      // Shorter tenure, fewer visits.
      activity *= (cm.leave - cm.join + 1.0) / (end_ - start_ + 1.0);
      raw[c] = std::max(activity, 1e-3);
    }

    std::string row;
    absl::StrAppend(&row, fn ? "1.0" : "", ",", active ? "1.0" : "", ",", club, ",", news, ",",
                    age_missing ? std::string() : absl::StrCat(static_cast<int>(age)), ",", postal_codes_[postal]);
    customer_rows_[c] = std::move(row);
  }

  // Scale visits to the target transaction volume; every buyer visits once.
  const double items_per_session = (1.0 + kBasketExtra) * (1.0 + kDuplicateRow);
  const double target_sessions = cfg_.mean_transactions_per_customer() * n / items_per_session;
  const double raw_sum = std::accumulate(raw.begin(), raw.end(), 0.0);
  const double scale = raw_sum > 0 ? target_sessions / raw_sum : 0;
  for (int64_t c = 0; c < n; ++c) {
    if (raw[c] <= 0) continue;
    Rng rng(cfg_.seed(), kStreamCustomers, static_cast<uint64_t>(c) | (1ull << 40));
    const double want = raw[c] * scale;
    int64_t k = static_cast<int64_t>(want);
    if (rng.Uniform() < want - k) ++k;
    customers_[c].sessions = static_cast<int32_t>(std::max<int64_t>(1, k));
  }
}

absl::Status Generator::WriteCustomers() {
  // customers.csv is ordered by customer id, like the real file.
  std::vector<uint32_t> order(customer_ids_.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return customer_ids_[a] < customer_ids_[b]; });
  ASSIGN_OR_RETURN(std::unique_ptr<CsvWriter> w, CsvWriter::Open(Path(kCustomersFile)));
  w->Row(CustomerColumns());
  for (uint32_t c : order) {
    w->RawField(customer_ids_[c]);
    w->RawField(customer_rows_[c]);
    w->EndRow();
  }
  customer_rows_.clear();
  customer_rows_.shrink_to_fit();
  return w->Close();
}

absl::Status Generator::WriteTransactions(GenerateStats* stats) {
  const int32_t ndays = end_ - start_ + 1;
  // Day of every visit, drawn from the shopping-volume curve within the
  // customer's tenure; visits then bucketed by day.
  std::vector<double> day_cdf(ndays);
  double acc = 0;
  for (int32_t d = 0; d < ndays; ++d) {
    acc += DayWeight(start_ + d, start_);
    day_cdf[d] = acc;
  }
  struct Visit {
    int32_t day;
    uint32_t customer;
    uint64_t key;  // orders visits within a day without saying anything
  };
  std::vector<Visit> visits;
  int64_t total_sessions = 0;
  for (const CustomerModel& cm : customers_) total_sessions += cm.sessions;
  visits.reserve(total_sessions);
  for (size_t c = 0; c < customers_.size(); ++c) {
    const CustomerModel& cm = customers_[c];
    if (cm.sessions == 0) continue;
    Rng rng(cfg_.seed(), kStreamCustomers, static_cast<uint64_t>(c) | (2ull << 40));
    const double lo = cm.join > start_ ? day_cdf[cm.join - start_ - 1] : 0.0;
    const double hi = day_cdf[cm.leave - start_];
    for (int32_t s = 0; s < cm.sessions; ++s) {
      const double u = rng.Uniform(lo, hi);
      const int32_t d = static_cast<int32_t>(std::upper_bound(day_cdf.begin(), day_cdf.end(), u) - day_cdf.begin());
      const int32_t day = std::min(d, ndays - 1);
      visits.push_back({day, static_cast<uint32_t>(c), MixSeed(cfg_.seed(), static_cast<uint64_t>(day), c)});
    }
  }
  std::sort(visits.begin(), visits.end(), [](const Visit& a, const Visit& b) {
    if (a.day != b.day) return a.day < b.day;
    if (a.key != b.key) return a.key < b.key;
    return a.customer < b.customer;
  });

  std::vector<uint32_t> recent(customers_.size() * kRecentItems);
  std::vector<uint8_t> recent_count(customers_.size(), 0);
  std::vector<uint8_t> recent_head(customers_.size(), 0);
  article_counts_.assign(articles_.size(), 0);

  // Each product type's seasonal peak (its own stream: the other draws do
  // not move when the strength changes), and its factor on the current day.
  const double season = cfg_.seasonal_strength();
  absl::flat_hash_map<int32_t, double> peak_of_type, factor_of_type;
  if (season > 0) {
    for (const Article& a : articles_) {
      if (peak_of_type.contains(a.product_type_no)) continue;
      Rng prng(cfg_.seed(), kStreamSeasons, static_cast<uint64_t>(a.product_type_no));
      peak_of_type[a.product_type_no] = prng.Uniform(0, 365);
    }
  }
  std::vector<Categorical> day_pick(styles_.size());
  std::vector<double> weights;
  std::vector<double> global_weights(articles_.size());
  Categorical global_pick;

  // Pre-formatted pieces: ids never change.
  std::vector<std::array<char, kArticleIdDigits>> article_ids(articles_.size());
  for (size_t a = 0; a < articles_.size(); ++a) FormatArticleIdTo(articles_[a].article_id, article_ids[a].data());

  ASSIGN_OR_RETURN(std::unique_ptr<CsvWriter> w, CsvWriter::Open(Path(kTransactionsFile)));
  w->Row(TransactionColumns());
  ProgressReporter progress("datagen transactions", static_cast<int64_t>(visits.size()), "visits");
  progress.set_enabled(show_progress_);
  std::string row;
  char date[10];
  int64_t rows = 0;
  size_t v = 0;
  for (int32_t d = 0; d < ndays; ++d) {
    const int32_t day = start_ + d;
    FormatDateTo(day, date);
    if (season > 0) {
      const double doy = DayOfYear(FormatDate(day));
      for (const auto& [type, peak] : peak_of_type) {
        factor_of_type[type] = std::exp(season * std::cos(2 * M_PI * (doy - peak) / 365.0));
      }
    }
    for (size_t s = 0; s < styles_.size(); ++s) {
      const auto& arts = articles_of_style_[s];
      weights.resize(arts.size());
      for (size_t i = 0; i < arts.size(); ++i) {
        weights[i] = models_[arts[i]].quality * Life(models_[arts[i]], day);
        if (season > 0) weights[i] *= factor_of_type[articles_[arts[i]].product_type_no];
      }
      day_pick[s].Reset(weights);
      for (size_t i = 0; i < arts.size(); ++i) global_weights[arts[i]] = weights[i];
    }
    global_pick.Reset(global_weights);
    for (; v < visits.size() && visits[v].day == d; ++v) {
      const uint32_t c = visits[v].customer;
      const CustomerModel& cm = customers_[c];
      Rng rng(cfg_.seed(), kStreamSessions, v);
      const int64_t items = 1 + rng.Poisson(kBasketExtra);
      const char* channel = rng.Uniform() < cm.p_online ? "2" : "1";
      for (int64_t it = 0; it < items; ++it) {
        uint32_t a;
        if (recent_count[c] > 0 && rng.Bernoulli(cfg_.rebuy_probability())) {
          a = recent[c * kRecentItems + rng.Below(recent_count[c])];
        } else {
          const double u = rng.Uniform();
          int k = 0;
          while (k < kTasteTop - 1 && cm.taste_cdf[k] < u) ++k;
          const Categorical& pick = day_pick[cm.styles[k]];
          if (!pick.empty()) {
            a = articles_of_style_[cm.styles[k]][pick.Sample(rng)];
          } else if (!global_pick.empty()) {
            a = static_cast<uint32_t>(global_pick.Sample(rng));
          } else {
            continue;  // nothing on sale yet
          }
        }
        const ArticleModel& m = models_[a];
        // Markdowns late in an article's life.
        double price = m.price_sek;
        if (day - m.launch > m.ramp + 2 * m.half_life && rng.Bernoulli(0.4)) {
          price = std::round(price * rng.Uniform(0.5, 0.7));
        }
        const int copies = rng.Bernoulli(kDuplicateRow) ? 2 : 1;
        for (int copy = 0; copy < copies; ++copy) {
          row.assign(date, 10);
          row.push_back(',');
          row.append(customer_ids_[c]);
          row.push_back(',');
          row.append(article_ids[a].data(), kArticleIdDigits);
          row.push_back(',');
          AppendPrice(price / kPriceScale, &row);
          row.push_back(',');
          row.append(channel);
          w->RawField(row);
          w->EndRow();
          ++rows;
          ++article_counts_[a];
        }
        uint32_t* ring = &recent[c * kRecentItems];
        ring[recent_head[c]] = a;
        recent_head[c] = static_cast<uint8_t>((recent_head[c] + 1) % kRecentItems);
        if (recent_count[c] < kRecentItems) ++recent_count[c];
      }
      if ((v & 0x3FFF) == 0) progress.Update(static_cast<int64_t>(v));
    }
  }
  progress.Finish(static_cast<int64_t>(visits.size()));
  RETURN_IF_ERROR(w->Close());
  stats->transactions = rows;
  int64_t no_purchase = 0;
  for (uint8_t cnt : recent_count) no_purchase += cnt == 0;
  stats->customers_without_purchase = no_purchase;
  for (int64_t cnt : article_counts_) stats->articles_never_bought += cnt == 0;
  return absl::OkStatus();
}

absl::Status Generator::WriteSampleSubmission() {
  // Like the real sample: one fixed list (here the 12 best sellers) for all.
  std::vector<uint32_t> order(articles_.size());
  std::iota(order.begin(), order.end(), 0);
  const size_t k = std::min<size_t>(12, order.size());
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](uint32_t a, uint32_t b) {
    if (article_counts_[a] != article_counts_[b]) return article_counts_[a] > article_counts_[b];
    return a < b;
  });
  std::vector<int32_t> top;
  for (size_t i = 0; i < k; ++i) top.push_back(articles_[order[i]].article_id);
  std::vector<uint32_t> ids(customer_ids_.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::sort(ids.begin(), ids.end(), [&](uint32_t a, uint32_t b) { return customer_ids_[a] < customer_ids_[b]; });
  ASSIGN_OR_RETURN(std::unique_ptr<CsvWriter> w, CsvWriter::Open(Path(kSampleSubmissionFile)));
  w->Row({"customer_id", "prediction"});
  std::string line;
  for (uint32_t c : ids) {
    line.clear();
    AppendSubmissionRow(customer_ids_[c], top, &line);
    line.pop_back();  // EndRow adds the newline
    w->RawField(line);
    w->EndRow();
  }
  return w->Close();
}

absl::Status Generator::Run(GenerateStats* stats) {
  const auto t0 = std::chrono::steady_clock::now();
  RETURN_IF_ERROR(ValidateConfig(cfg_));
  start_ = *ParseDate(cfg_.start_date());
  end_ = *ParseDate(cfg_.end_date());
  std::error_code ec;
  std::filesystem::create_directories(out_dir_, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", out_dir_, ": ", ec.message()));

  BuildStyles();
  BuildCatalogue();
  RETURN_IF_ERROR(WriteArticles());
  BuildCustomers();
  RETURN_IF_ERROR(WriteCustomers());
  RETURN_IF_ERROR(WriteTransactions(stats));
  RETURN_IF_ERROR(WriteSampleSubmission());
  stats->articles = static_cast<int64_t>(articles_.size());
  stats->customers = static_cast<int64_t>(customers_.size());
  stats->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return absl::OkStatus();
}

}  // namespace

absl::Status Generate(const config::DatagenConfig& cfg, const std::string& out_dir, bool show_progress,
                      GenerateStats* stats) {
  Generator g(cfg, out_dir, show_progress);
  return g.Run(stats);
}

}  // namespace hmrec::datagen
