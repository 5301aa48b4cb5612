#include "rules/merch_rules.h"

#include <algorithm>
#include <filesystem>
#include <numeric>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "common/text_proto.h"
#include "data/dates.h"
#include "data/ids.h"

namespace hmrec {
namespace {

using google::protobuf::TextFormat;

// Campaign ids are 16-bit in the compiled rules.
constexpr int kMaxCampaigns = 10000;

// "source:line" of a field of `message` as the parser read it (index -1 for
// a singular field); the source alone when the tree does not know it.
class Locator {
 public:
  Locator(std::string source, const TextFormat::ParseInfoTree* tree) : source_(std::move(source)), tree_(tree) {}

  std::string At(const google::protobuf::Message& message, const std::string& field, int index = -1,
                 const TextFormat::ParseInfoTree* tree = nullptr) const {
    if (tree == nullptr) tree = tree_;
    const google::protobuf::FieldDescriptor* f = message.GetDescriptor()->FindFieldByName(field);
    if (tree == nullptr || f == nullptr) return source_;
    const google::protobuf::TextFormat::ParseLocation loc = tree->GetLocation(f, index);
    if (loc.line < 0) return source_;
    return absl::StrCat(source_, ":", loc.line + 1);
  }
  // The tree of the index-th element of a repeated message field.
  const TextFormat::ParseInfoTree* Nested(const google::protobuf::Message& message, const std::string& field,
                                          int index) const {
    const google::protobuf::FieldDescriptor* f = message.GetDescriptor()->FindFieldByName(field);
    return tree_ == nullptr || f == nullptr ? nullptr : tree_->GetTreeForNested(f, index);
  }

 private:
  std::string source_;
  const TextFormat::ParseInfoTree* tree_;
};

absl::Status Refuse(const std::string& where, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
}

// Dates of a campaign or a pin; both optional.
absl::StatusOr<RuleSet::Window> WindowOf(const std::string& start, const std::string& end, const std::string& where,
                                         const std::string& what) {
  RuleSet::Window w;
  if (!start.empty()) {
    absl::StatusOr<int32_t> d = ParseDate(start);
    if (!d.ok()) return Refuse(where, absl::StrCat(what, ": start_date \"", start, "\" is not YYYY-MM-DD"));
    w.start = *d;
  }
  if (!end.empty()) {
    absl::StatusOr<int32_t> d = ParseDate(end);
    if (!d.ok()) return Refuse(where, absl::StrCat(what, ": end_date \"", end, "\" is not YYYY-MM-DD"));
    w.end = *d;
  }
  if (w.end < w.start) return Refuse(where, absl::StrCat(what, ": end_date ", end, " is before start_date ", start));
  return w;
}

absl::Status CheckArticleIds(const google::protobuf::RepeatedPtrField<std::string>& ids, const std::string& where,
                             const std::string& what) {
  for (const std::string& id : ids) {
    if (!ParseArticleId(id).ok()) return Refuse(where, absl::StrCat(what, ": \"", id, "\" is not an article id"));
  }
  return absl::OkStatus();
}

bool MatchesNothing(const config::ArticleMatch& m) {
  return m.article_ids().empty() && m.product_type_name().empty() && m.product_group_name().empty() &&
         m.colour_group_name().empty() && m.department_name().empty() && m.index_group_name().empty() &&
         m.section_name().empty() && m.garment_group_name().empty();
}

// The unavailable_file: one id a line; blank lines and # comments skipped.
absl::Status ReadIdFile(const std::string& path, std::vector<int32_t>* out) {
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  int64_t line = 0;
  for (absl::string_view l : absl::StrSplit(text, '\n')) {
    ++line;
    l = absl::StripAsciiWhitespace(l);
    if (l.empty() || l[0] == '#') continue;
    absl::StatusOr<int32_t> id = ParseArticleId(l);
    if (!id.ok()) return Refuse(absl::StrCat(path, ":", line), absl::StrCat("\"", l, "\" is not an article id"));
    out->push_back(*id);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<const RuleSet>> RuleSet::Load(const std::string& path, int max_k) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return absl::NotFoundError(absl::StrCat("cannot read rules file ", path));
  return Parse(*text, path, std::filesystem::path(path).parent_path().string(), max_k);
}

absl::StatusOr<std::shared_ptr<const RuleSet>> RuleSet::Parse(const std::string& text, const std::string& source,
                                                              const std::string& base_dir, int max_k) {
  auto set = std::make_shared<RuleSet>();
  set->source = source;
  TextFormat::ParseInfoTree tree;
  RETURN_IF_ERROR(ParseTextProto(text, source, &set->rules, &tree));
  const config::MerchandisingRules& r = set->rules;
  const Locator at(source, &tree);

  for (int i = 0; i < r.unavailable_article_ids_size(); ++i) {
    absl::StatusOr<int32_t> id = ParseArticleId(r.unavailable_article_ids(i));
    if (!id.ok()) {
      return Refuse(
          at.At(r, "unavailable_article_ids", i),
          absl::StrCat("unavailable_article_ids: \"", r.unavailable_article_ids(i), "\" is not an article id"));
    }
    set->unavailable.push_back(*id);
  }
  if (!r.unavailable_file().empty()) {
    std::filesystem::path p(r.unavailable_file());
    if (p.is_relative() && !base_dir.empty()) p = std::filesystem::path(base_dir) / p;
    set->unavailable_file = p.string();
    absl::Status read = ReadIdFile(set->unavailable_file, &set->unavailable);
    if (!read.ok()) {
      return Refuse(at.At(r, "unavailable_file"), absl::StrCat("unavailable_file: ", read.message()));
    }
  }
  std::sort(set->unavailable.begin(), set->unavailable.end());
  set->unavailable.erase(std::unique(set->unavailable.begin(), set->unavailable.end()), set->unavailable.end());

  const config::DiversityRule& d = r.diversity();
  if (d.max_per_product_code() < 0 || d.max_per_product_type() < 0) {
    return Refuse(at.At(r, "diversity"), "diversity: a cap must be >= 0 (0 = off)");
  }

  absl::flat_hash_set<std::string> segments;
  for (int i = 0; i < r.segments_size(); ++i) {
    const config::CustomerSegment& s = r.segments(i);
    const std::string where = at.At(r, "segments", i);
    if (s.name().empty()) return Refuse(where, "a segment needs a name");
    if (!segments.insert(s.name()).second) return Refuse(where, absl::StrCat("segment \"", s.name(), "\" twice"));
    if (s.min_age() < 0 || s.max_age() < 0 || (s.max_age() > 0 && s.max_age() < s.min_age())) {
      return Refuse(where, absl::StrCat("segment \"", s.name(), "\": ages must be >= 0 and max_age >= min_age"));
    }
    if (!s.customers().empty() && s.customers() != "known" && s.customers() != "unknown") {
      return Refuse(where,
                    absl::StrCat("segment \"", s.name(), "\": customers must be \"known\", \"unknown\" or empty"));
    }
  }
  auto check_segments = [&](const google::protobuf::RepeatedPtrField<std::string>& names, const std::string& where,
                            const std::string& what) {
    for (const std::string& n : names) {
      if (!segments.contains(n)) return Refuse(where, absl::StrCat(what, ": no segment named \"", n, "\""));
    }
    return absl::OkStatus();
  };

  if (r.campaigns_size() > kMaxCampaigns) {
    return Refuse(at.At(r, "campaigns", kMaxCampaigns), absl::StrCat("at most ", kMaxCampaigns, " campaigns"));
  }
  absl::flat_hash_set<std::string> names;
  for (int i = 0; i < r.campaigns_size(); ++i) {
    const config::Campaign& c = r.campaigns(i);
    const std::string where = at.At(r, "campaigns", i);
    const std::string what = absl::StrCat("campaign \"", c.name(), "\"");
    if (c.name().empty()) return Refuse(where, "a campaign needs a name");
    if (!names.insert(c.name()).second) return Refuse(where, absl::StrCat(what, " twice"));
    RETURN_IF_ERROR(check_segments(c.segments(), where, what));
    const TextFormat::ParseInfoTree* nested = at.Nested(r, "campaigns", i);
    ASSIGN_OR_RETURN(Window w, WindowOf(c.start_date(), c.end_date(), at.At(c, "end_date", -1, nested), what));
    set->campaign_windows.push_back(w);
    const bool factor = c.score_factor() != 0, move = c.move_positions() != 0;
    if (factor == move) {
      return Refuse(where, absl::StrCat(what, ": set one of score_factor (> 0) and move_positions (not 0)"));
    }
    if (factor && !(c.score_factor() > 0)) return Refuse(where, absl::StrCat(what, ": score_factor must be > 0"));
    if (MatchesNothing(c.articles())) return Refuse(where, absl::StrCat(what, ": articles matches nothing"));
    RETURN_IF_ERROR(CheckArticleIds(c.articles().article_ids(), where, what));
  }
  for (int i = 0; i < r.pins_size(); ++i) {
    const config::Pin& p = r.pins(i);
    const std::string where = at.At(r, "pins", i);
    const std::string what = absl::StrCat("pin \"", p.name(), "\"");
    if (p.name().empty()) return Refuse(where, "a pin needs a name");
    if (!names.insert(p.name()).second) return Refuse(where, absl::StrCat(what, ": name used twice"));
    if (!ParseArticleId(p.article_id()).ok()) {
      return Refuse(where, absl::StrCat(what, ": article_id \"", p.article_id(), "\" is not an article id"));
    }
    if (p.position() < 1 || p.position() > max_k) {
      return Refuse(where, absl::StrCat(what, ": position ", p.position(), " is outside 1..max_k (", max_k, ")"));
    }
    RETURN_IF_ERROR(check_segments(p.segments(), where, what));
    const TextFormat::ParseInfoTree* nested = at.Nested(r, "pins", i);
    ASSIGN_OR_RETURN(Window w, WindowOf(p.start_date(), p.end_date(), at.At(p, "end_date", -1, nested), what));
    for (int j = 0; j < i; ++j) {
      const Window& q = set->pin_windows[static_cast<size_t>(j)];
      if (r.pins(j).position() == p.position() && q.start <= w.end && w.start <= q.end) {
        return Refuse(where, absl::StrCat(what, ": position ", p.position(), " is pin \"", r.pins(j).name(),
                                          "\"'s on overlapping dates"));
      }
    }
    set->pin_windows.push_back(w);
  }
  return std::shared_ptr<const RuleSet>(std::move(set));
}

bool RuleSet::Shapes() const {
  return rules.diversity().max_per_product_code() > 0 || rules.diversity().max_per_product_type() > 0 ||
         rules.campaigns_size() > 0 || rules.pins_size() > 0;
}

int RuleSet::PoolSize(int k, int limit) const {
  if (!Shapes()) return k;
  return std::max(k, std::min(limit, 2 * k + 24));
}

std::string RuleSet::Summary() const {
  return absl::StrCat(unavailable.size(), " unavailable articles, diversity max_per_product_code ",
                      rules.diversity().max_per_product_code(), " max_per_product_type ",
                      rules.diversity().max_per_product_type(), ", ", rules.segments_size(), " segments, ",
                      rules.campaigns_size(), " campaigns, ", rules.pins_size(), " pins");
}

std::shared_ptr<const CompiledRules> CompiledRules::Compile(std::shared_ptr<const RuleSet> rules,
                                                            const ArticleTable& articles,
                                                            const std::vector<std::string>& club_status_names,
                                                            std::vector<int32_t> popular) {
  std::shared_ptr<CompiledRules> c(new CompiledRules());
  c->rules_ = std::move(rules);
  c->articles_ = &articles;
  const config::MerchandisingRules& r = c->rules_->rules;
  const size_t n = articles.size();
  c->unavailable_rows_.assign(n, 0);
  for (int32_t id : c->rules_->unavailable) {
    const int64_t row = articles.Row(id);
    if (row < 0) {
      ++c->unknown_ids_;
    } else {
      c->unavailable_rows_[static_cast<size_t>(row)] = 1;
      ++c->unavailable_count_;
    }
  }
  for (const config::CustomerSegment& s : r.segments()) {
    std::vector<int32_t> codes;
    for (const std::string& name : s.club_member_status()) {
      int32_t code = -1;  // a status no customer of this bundle has: nobody matches it
      for (size_t v = 1; v < club_status_names.size(); ++v) {
        if (club_status_names[v] == name) code = static_cast<int32_t>(v);
      }
      codes.push_back(code);
    }
    c->segment_clubs_.push_back(std::move(codes));
  }
  std::vector<std::vector<uint8_t>> campaign_rows;  // per campaign, 1 for its rows
  for (const config::Campaign& campaign : r.campaigns()) {
    const config::ArticleMatch& m = campaign.articles();
    std::vector<uint8_t> rows(n, 0);
    for (const std::string& text : m.article_ids()) {
      const int64_t row = articles.Row(*ParseArticleId(text));  // validated by Parse
      if (row < 0) {
        ++c->unknown_ids_;
      } else {
        rows[static_cast<size_t>(row)] = 1;
      }
    }
    // Attribute lists: a row matches when it is in every list given.
    std::vector<std::pair<int, absl::flat_hash_set<uint32_t>>> lists;
    auto add = [&](int column, const google::protobuf::RepeatedPtrField<std::string>& values) {
      if (values.empty()) return;
      absl::flat_hash_set<uint32_t> ids;
      for (const std::string& v : values) {
        const int64_t id = articles.FindValue(column, v);
        if (id >= 0) ids.insert(static_cast<uint32_t>(id));
      }
      lists.emplace_back(column, std::move(ids));
    };
    add(ArticleTable::kProductType, m.product_type_name());
    add(ArticleTable::kProductGroup, m.product_group_name());
    add(ArticleTable::kColourGroup, m.colour_group_name());
    add(ArticleTable::kDepartment, m.department_name());
    add(ArticleTable::kIndexGroup, m.index_group_name());
    add(ArticleTable::kSection, m.section_name());
    add(ArticleTable::kGarmentGroup, m.garment_group_name());
    if (!lists.empty()) {
      for (size_t row = 0; row < n; ++row) {
        bool all = true;
        for (const auto& [column, ids] : lists) {
          if (!ids.contains(articles.ValueId(static_cast<uint32_t>(row), column))) {
            all = false;
            break;
          }
        }
        if (all) rows[row] = 1;
      }
    }
    campaign_rows.push_back(std::move(rows));
  }
  // Each row's campaigns (compressed rows): a list's articles look up only
  // their own, however many campaigns there are.
  c->row_campaign_offsets_.assign(n + 1, 0);
  for (size_t row = 0; row < n; ++row) {
    for (size_t k = 0; k < campaign_rows.size(); ++k) {
      if (campaign_rows[k][row] != 0) c->row_campaigns_.push_back(static_cast<uint16_t>(k));
    }
    c->row_campaign_offsets_[row + 1] = static_cast<uint32_t>(c->row_campaigns_.size());
  }
  for (const config::Pin& p : r.pins()) {
    const int64_t row = articles.Row(*ParseArticleId(p.article_id()));
    if (row < 0) ++c->unknown_ids_;
    c->pin_rows_.push_back(row);
  }
  // Segment names as indices; the names rules answer with.
  auto indices = [&r](const google::protobuf::RepeatedPtrField<std::string>& names) {
    std::vector<int> out;
    for (const std::string& name : names) {
      for (int i = 0; i < r.segments_size(); ++i) {
        if (r.segments(i).name() == name) out.push_back(i);
      }
    }
    return out;
  };
  for (const config::Campaign& campaign : r.campaigns()) {
    c->campaign_segments_.push_back(indices(campaign.segments()));
    c->rule_names_.push_back(absl::StrCat("campaign:", campaign.name()));
  }
  for (const config::Pin& pin : r.pins()) {
    c->pin_segments_.push_back(indices(pin.segments()));
    c->rule_names_.push_back(absl::StrCat("pin:", pin.name()));
  }
  c->rule_names_.push_back("diversity");
  c->popular_ = std::move(popular);
  return c;
}

RequestOptions CompiledRules::Pooled(const RequestOptions& o, int limit) const {
  RequestOptions p = o;
  p.k = rules_->PoolSize(o.k, limit);
  if (unavailable_count_ > 0) p.unavailable_rows = &unavailable_rows_;
  return p;
}

void CompiledRules::Shape(const RequestOptions& options, int32_t day, Recommendation* rec, RuleCounts* counts) const {
  if (!rules_->Shapes()) return;
  CustomerTraits traits;
  traits.known = options.similar != nullptr ? rec->personalised : !rec->fallback;
  traits.age = rec->customer_age;
  traits.club_status = rec->club_status;
  Apply(options, traits, day, rec, counts);
}

bool CompiledRules::InSegment(int i, const CustomerTraits& t) const {
  const config::CustomerSegment& s = rules_->rules.segments(i);
  if ((s.min_age() > 0 || s.max_age() > 0) &&
      !(t.age >= 0 && t.age >= s.min_age() && (s.max_age() == 0 || t.age <= s.max_age()))) {
    return false;
  }
  const std::vector<int32_t>& clubs = segment_clubs_[static_cast<size_t>(i)];
  if (!clubs.empty() && std::find(clubs.begin(), clubs.end(), t.club_status) == clubs.end()) return false;
  if (s.customers() == "known" && !t.known) return false;
  if (s.customers() == "unknown" && t.known) return false;
  return true;
}

bool CompiledRules::RequestAllows(const RequestOptions& o, uint32_t row) const {
  if (unavailable_rows_[row] != 0) return false;
  const int32_t id = articles_->article_id(row);
  const RequestFilters& f = o.filters;
  if (f.exclude_article_ids.contains(id)) return false;
  auto in = [&](const std::vector<std::string>& names, int column) {
    return names.empty() || std::find(names.begin(), names.end(), articles_->Get(row, column)) != names.end();
  };
  if (!in(f.index_group_names, ArticleTable::kIndexGroup) || !in(f.product_group_names, ArticleTable::kProductGroup) ||
      !in(f.garment_group_names, ArticleTable::kGarmentGroup)) {
    return false;
  }
  if (o.similar != nullptr) {
    for (int32_t q : o.similar->article_ids) {
      if (q == id) return false;
      if (o.similar->exclude_same_product_code) {
        const int64_t qrow = articles_->Row(q);
        if (qrow >= 0 && articles_->product_code(static_cast<uint32_t>(qrow)) == articles_->product_code(row)) {
          return false;
        }
      }
    }
  }
  return true;
}

namespace {

// One article of a list being shaped.
struct Item {
  int32_t id = 0;
  int64_t row = -1;                       // -1: not in the bundle (never: the core serves its own articles)
  float score = 0;                        // the served score, campaigns' factors applied
  int from = -1;                          // index in the core's answer; -1 added here
  bool popular = false;                   // from the popular list (the core's fill or the refill here)
  int popular_rank = 0;                   // its place in the popular list, when refilled here
  int move = 0;                           // campaigns' moves, summed
  absl::InlinedVector<int16_t, 4> rules;  // rule ids that moved or added it
};

// What one Apply call works in, kept by the thread for the next call (no
// allocation per list once warm).
struct ApplyScratch {
  std::vector<Item> items;                     // the core's articles, then those added here
  std::vector<uint32_t> order, list, skipped;  // indices into items
  struct Target {
    int64_t at;
    int side;
    uint32_t i;
  };
  std::vector<Target> targets;
  std::vector<uint8_t> campaign_on, in_segment;
  std::vector<int32_t> codes;
  std::vector<uint32_t> types;
  std::vector<int16_t> touched;
  std::vector<uint8_t> touched_mask;  // by rule id
};

}  // namespace

void CompiledRules::Apply(const RequestOptions& options, const CustomerTraits& traits, int32_t day, Recommendation* rec,
                          RuleCounts* counts) const {
  thread_local ApplyScratch scratch;
  ApplyScratch& s = scratch;
  const config::MerchandisingRules& r = rules_->rules;
  const size_t k = static_cast<size_t>(options.k);
  const bool explain = options.explain && rec->explanations.size() == rec->article_ids.size();
  const int16_t diversity_rule = static_cast<int16_t>(rule_names_.size() - 1);
  const size_t n = rec->article_ids.size();
  const size_t core_popular_from = n - static_cast<size_t>(std::min<int>(rec->filled_from_popular, n));

  // The customer's segments, then the campaigns and pins in force for them
  // today.
  s.in_segment.resize(static_cast<size_t>(r.segments_size()));
  for (int i = 0; i < r.segments_size(); ++i) s.in_segment[static_cast<size_t>(i)] = InSegment(i, traits);
  auto in_force = [&](const std::vector<int>& segments, const RuleSet::Window& w) {
    if (!w.Contains(day)) return false;
    if (segments.empty()) return true;
    for (int i : segments) {
      if (s.in_segment[static_cast<size_t>(i)] != 0) return true;
    }
    return false;
  };
  // Whether each campaign is in force, found when an article first meets
  // it (0 not yet known, 1 off, 2 on): most lists meet few of them.
  s.campaign_on.assign(static_cast<size_t>(r.campaigns_size()), 0);
  const bool any_campaign = r.campaigns_size() > 0;

  // The core's rows when it gave them (else looked up by id).
  const bool rows = rec->article_rows.size() == n;
  s.items.resize(n);
  s.order.resize(n);
  for (size_t i = 0; i < n; ++i) {
    Item& it = s.items[i];
    it.id = rec->article_ids[i];
    it.row = rows ? static_cast<int64_t>(rec->article_rows[i]) : articles_->Row(it.id);
    it.score = i < rec->scores.size() ? rec->scores[i] : 0.0f;
    it.from = static_cast<int>(i);
    it.popular = rec->fallback || i >= core_popular_from;
    it.popular_rank = 0;
    it.move = 0;
    it.rules.clear();
    s.order[i] = static_cast<uint32_t>(i);
  }
  // The rules that changed the list, each once (a mask over rule ids, left
  // clear at the end of each call).
  s.touched_mask.assign(rule_names_.size(), 0);
  s.touched.clear();
  auto note = [&s](int16_t rule) {
    uint8_t& seen = s.touched_mask[static_cast<size_t>(rule)];
    if (seen == 0) s.touched.push_back(rule);
    seen = 1;
  };

  // 1. Campaigns: each article's own (the row's list), those in force.
  bool factors = false, moves = false;
  if (any_campaign) {
    for (Item& it : s.items) {
      if (it.row < 0) continue;
      const size_t row = static_cast<size_t>(it.row);
      for (uint32_t x = row_campaign_offsets_[row]; x < row_campaign_offsets_[row + 1]; ++x) {
        const uint16_t c = row_campaigns_[x];
        uint8_t& on = s.campaign_on[c];
        if (on == 0) on = in_force(campaign_segments_[c], rules_->campaign_windows[c]) ? 2 : 1;
        if (on != 2) continue;
        const config::Campaign& campaign = r.campaigns(c);
        if (campaign.score_factor() != 0) {
          it.score = std::min(1.0f, it.score * static_cast<float>(campaign.score_factor()));
          factors = true;
        } else {
          it.move += campaign.move_positions();
          moves = true;
        }
        it.rules.push_back(static_cast<int16_t>(c));
      }
    }
  }
  if (factors) {
    // Best first; equal scores keep the list's order.
    std::sort(s.order.begin(), s.order.end(), [&s](uint32_t a, uint32_t b) {
      const float x = s.items[a].score, y = s.items[b].score;
      return x != y ? x > y : a < b;
    });
  }
  if (moves) {
    // An article moved by m ranks as if it stood m places lower (higher);
    // at a tie a buried one goes after the article already there, a boosted
    // one before it.
    s.targets.resize(n);
    for (size_t p = 0; p < n; ++p) {
      const int m = s.items[s.order[p]].move;
      s.targets[p] = {static_cast<int64_t>(p) + m, m > 0 ? 1 : m < 0 ? -1 : 0, s.order[p]};
    }
    std::sort(s.targets.begin(), s.targets.end(), [](const ApplyScratch::Target& a, const ApplyScratch::Target& b) {
      return a.at != b.at ? a.at < b.at : a.side != b.side ? a.side < b.side : a.i < b.i;
    });
    for (size_t p = 0; p < n; ++p) s.order[p] = s.targets[p].i;
  }
  if (factors || moves) {
    for (size_t p = 0; p < n; ++p) {
      const Item& it = s.items[s.order[p]];
      if (it.rules.empty()) continue;
      for (int16_t rule : it.rules) note(rule);
      if (static_cast<int>(p) < it.from) ++counts->boosted;
      if (static_cast<int>(p) > it.from) ++counts->buried;
    }
  }

  // 2. Diversity caps: the first k that keep within them, then the popular
  // list's, then (caps that k articles cannot meet) the skipped ones. Lists
  // are short: the caps are counted by scanning what was taken.
  const int cap_code = r.diversity().max_per_product_code(), cap_type = r.diversity().max_per_product_type();
  s.list.clear();
  if (cap_code > 0 || cap_type > 0) {
    s.codes.clear();
    s.types.clear();
    s.skipped.clear();
    auto fits = [&](int64_t row) {
      if (row < 0) return true;
      const uint32_t u = static_cast<uint32_t>(row);
      if (cap_code > 0 && std::count(s.codes.begin(), s.codes.end(), articles_->product_code(u)) >= cap_code) {
        return false;
      }
      return cap_type <= 0 ||
             std::count(s.types.begin(), s.types.end(), articles_->ValueId(u, ArticleTable::kProductType)) < cap_type;
    };
    auto take = [&](uint32_t i) {
      const int64_t row = s.items[i].row;
      if (row >= 0) {
        s.codes.push_back(articles_->product_code(static_cast<uint32_t>(row)));
        s.types.push_back(articles_->ValueId(static_cast<uint32_t>(row), ArticleTable::kProductType));
      }
      s.list.push_back(i);
    };
    for (size_t p = 0; p < n && s.list.size() < k; ++p) {
      const uint32_t i = s.order[p];
      if (fits(s.items[i].row)) {
        // Below the cut before the caps: it is here because one above was capped.
        if (!s.skipped.empty()) {
          s.items[i].rules.push_back(diversity_rule);
          note(diversity_rule);
        }
        take(i);
      } else {
        if (p < k) ++counts->capped;
        s.skipped.push_back(i);
      }
    }
    if (s.list.size() < k) {
      absl::flat_hash_set<int32_t> held;
      for (const Item& it : s.items) held.insert(it.id);
      for (size_t p = 0; p < popular_.size() && s.list.size() < k; ++p) {
        const int64_t row = articles_->Row(popular_[p]);
        if (row < 0 || held.contains(popular_[p]) || !fits(row) ||
            !RequestAllows(options, static_cast<uint32_t>(row))) {
          continue;
        }
        Item it;
        it.id = popular_[p];
        it.row = row;
        it.score = s.list.empty() ? 0.0f : s.items[s.list.back()].score;
        it.popular = true;
        it.popular_rank = static_cast<int>(p);
        it.rules.push_back(diversity_rule);
        note(diversity_rule);
        s.items.push_back(std::move(it));
        take(static_cast<uint32_t>(s.items.size() - 1));
      }
    }
    if (s.list.size() < k && !s.skipped.empty()) {
      ++counts->unmet;
      for (size_t x = 0; x < s.skipped.size() && s.list.size() < k; ++x) s.list.push_back(s.skipped[x]);
    }
  } else {
    s.list.assign(s.order.begin(), s.order.begin() + static_cast<std::ptrdiff_t>(std::min(n, k)));
  }

  // 3. Pins in force for this customer today, by position.
  absl::InlinedVector<int, 4> pins;
  for (int p = 0; p < r.pins_size(); ++p) {
    const size_t x = static_cast<size_t>(p);
    if (pin_rows_[x] < 0 || !in_force(pin_segments_[x], rules_->pin_windows[x])) continue;
    if (!RequestAllows(options, static_cast<uint32_t>(pin_rows_[x]))) continue;
    pins.push_back(p);
  }
  std::sort(pins.begin(), pins.end(), [&](int a, int b) { return r.pins(a).position() < r.pins(b).position(); });
  for (int p : pins) {
    const config::Pin& pin = r.pins(p);
    const int64_t row = pin_rows_[static_cast<size_t>(p)];
    uint32_t i;
    auto held = std::find_if(s.list.begin(), s.list.end(), [&](uint32_t x) { return s.items[x].row == row; });
    if (held != s.list.end()) {
      i = *held;
      s.list.erase(held);
    } else {
      Item it;
      it.id = articles_->article_id(static_cast<uint32_t>(row));
      it.row = row;
      s.items.push_back(std::move(it));
      i = static_cast<uint32_t>(s.items.size() - 1);
    }
    const size_t at = std::min(s.list.size(), static_cast<size_t>(pin.position() - 1));
    Item& it = s.items[i];
    it.score = at < s.list.size() ? s.items[s.list[at]].score : (s.list.empty() ? 1.0f : s.items[s.list.back()].score);
    const int16_t rule = static_cast<int16_t>(r.campaigns_size() + p);
    it.rules.push_back(rule);
    note(rule);
    s.list.insert(s.list.begin() + static_cast<std::ptrdiff_t>(at), i);
    ++counts->pinned;
  }
  if (s.list.size() > k) s.list.resize(k);

  // The answer, on its one non-increasing scale.
  std::vector<Explanation> explanations;
  rec->article_ids.clear();
  rec->article_rows.clear();
  rec->scores.clear();
  int popular = 0;
  for (uint32_t i : s.list) {
    Item& it = s.items[i];
    rec->article_ids.push_back(it.id);
    rec->article_rows.push_back(static_cast<uint32_t>(it.row));
    const float before = rec->scores.empty() ? 1.0f : rec->scores.back();
    rec->scores.push_back(std::clamp(std::min(it.score, before), 0.0f, 1.0f));
    popular += it.popular;
    if (explain) {
      Explanation e;
      if (it.from >= 0) {
        e = std::move(rec->explanations[static_cast<size_t>(it.from)]);
      } else if (it.popular) {
        e.reasons.push_back({kPopularSource, it.popular_rank, it.score, 0});
      }
      for (int16_t rule : it.rules) e.rules.push_back(rule_names_[static_cast<size_t>(rule)]);
      explanations.push_back(std::move(e));
    }
  }
  if (explain) rec->explanations = std::move(explanations);
  rec->filled_from_popular = popular;
  rec->fewer_than_k = rec->article_ids.size() < k;
  rec->rules.clear();
  for (int16_t rule : s.touched) rec->rules.push_back(rule_names_[static_cast<size_t>(rule)]);
}

}  // namespace hmrec
