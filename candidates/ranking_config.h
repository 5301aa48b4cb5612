#pragma once

// The ranking stage's settings with their defaults: every field of a
// RankingConfig left 0 or empty takes the value below, so a config names
// only what it changes and the trainer, the bundle and the server agree on
// the values actually used (the trainer writes the filled config into the
// bundle's manifest).

#include "data/customer_view.h"
#include "proto/config.pb.h"

namespace hmrec {

// Returns `cfg` with every unset field at its default.
config::RankingConfig WithRankingDefaults(config::RankingConfig cfg);

// The history bound of a filled config.
HistoryLimits HistoryLimitsOf(const config::RankingConfig& cfg);

}  // namespace hmrec
