#pragma once

// A purchase recorded online, as RecordPurchases validated it: header only,
// so request validation (and its fuzzer) needs no event store.

#include <string>

#include "proto/config.pb.h"

namespace hmrec {

struct RecordedPurchase {
  std::string customer_id;
  config::StoredEvent event;  // event_id, article_id, day, price, channel
};

}  // namespace hmrec
