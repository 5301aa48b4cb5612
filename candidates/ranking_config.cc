#include "candidates/ranking_config.h"

namespace hmrec {
config::RankingConfig WithRankingDefaults(config::RankingConfig c) {
#define HMREC_DEFAULT(field, value) \
  if (c.field() == decltype(c.field()){}) c.set_##field(value)
  HMREC_DEFAULT(history_max_purchases, 128);
  HMREC_DEFAULT(history_max_age_days, 730);
  HMREC_DEFAULT(repurchase_candidates, 18);
  HMREC_DEFAULT(repurchase_half_life_days, 14.0);
  HMREC_DEFAULT(two_tower_candidates, 24);
  HMREC_DEFAULT(two_tower_active_weeks, 4);
  HMREC_DEFAULT(copurchase_candidates, 24);
  HMREC_DEFAULT(copurchase_window_days, 56);
  HMREC_DEFAULT(copurchase_max_gap_days, 7);
  HMREC_DEFAULT(copurchase_neighbours, 24);
  HMREC_DEFAULT(copurchase_anchors, 12);
  HMREC_DEFAULT(same_product_candidates, 12);
  HMREC_DEFAULT(segment_candidates, 14);
  HMREC_DEFAULT(segment_window_days, 7);
  HMREC_DEFAULT(trending_candidates, 7);
  HMREC_DEFAULT(taste_candidates, 12);
  HMREC_DEFAULT(taste_types, 3);
  HMREC_DEFAULT(taste_depth, 50);
  HMREC_DEFAULT(new_arrival_candidates, 6);
  HMREC_DEFAULT(new_arrival_days, 14);
  HMREC_DEFAULT(neighbour_candidates, 12);
  HMREC_DEFAULT(neighbour_clusters, 256);
  HMREC_DEFAULT(neighbour_window_days, 14);
  HMREC_DEFAULT(style_buyers_candidates, 12);
  HMREC_DEFAULT(style_buyers_window_days, 14);
  HMREC_DEFAULT(style_buyers_depth, 50);
  HMREC_DEFAULT(label_weeks, 3);
  HMREC_DEFAULT(max_groups_per_week, 50000);
  HMREC_DEFAULT(negatives_per_group, 40);
  HMREC_DEFAULT(max_validation_groups, 20000);
  HMREC_DEFAULT(cascade_first_trees, 10);
  HMREC_DEFAULT(cascade_keep, 20);
  HMREC_DEFAULT(refit, -1);
  config::RankerParams* r = c.mutable_ranker();
  if (r->objective().empty()) r->set_objective("binary:logistic");
  if (r->learning_rate() == 0 && r->learning_rate_choices_size() == 0) {
    r->add_learning_rate_choices(0.05);
    r->add_learning_rate_choices(0.1);
  }
  if (r->learning_rate() == 0) r->set_learning_rate(r->learning_rate_choices(0));
  if (r->max_depth() == 0) r->set_max_depth(6);
  if (r->min_child_weight() == 0) r->set_min_child_weight(1.0);
  if (r->subsample() == 0) r->set_subsample(0.8);
  if (r->colsample_bytree() == 0) r->set_colsample_bytree(0.8);
  if (r->max_rounds() == 0) r->set_max_rounds(120);
  if (r->early_stopping_rounds() == 0) r->set_early_stopping_rounds(40);
  if (r->seed() == 0) r->set_seed(42);
  if (r->evaluator().empty()) r->set_evaluator("native");
#undef HMREC_DEFAULT
  return c;
}

HistoryLimits HistoryLimitsOf(const config::RankingConfig& cfg) {
  HistoryLimits l;
  l.max_purchases = cfg.history_max_purchases();
  l.max_age_days = cfg.history_max_age_days();
  return l;
}

}  // namespace hmrec
