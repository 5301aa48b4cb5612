#pragma once

// What the inspector page (GET /inspect) shows, without any transport: a
// customer's profile and bounded purchase history with article names, the
// articles of a list by id, the values the attribute filters accept, and
// the page itself (server/inspector.html, compiled in: no CDN, no build
// step). Names and attributes come from the bundle's article table
// (articles.bin), never from the CSVs. Served by server/http_api.h.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "events/event_store.h"
#include "proto/recommender.pb.h"
#include "server/recommender.h"

namespace hmrec {

// INVALID_ARGUMENT for an id that is not 64 lowercase hex characters; a
// customer the bundle does not know gets known = false and no history.
// `events` (may be null: recording off): the customer's purchases recorded
// online that Recommend applies are listed; when the store cannot be read
// the profile says so (recorded_purchases_error) and shows the bundle's
// history only, as Recommend would answer from it.
absl::StatusOr<v1::CustomerProfile> InspectCustomer(const Recommender& r, absl::string_view customer_id,
                                                    EventStore* events = nullptr, int max_purchases = 50);

// The articles of `request` in its order (ids the bundle lacks left out);
// INVALID_ARGUMENT naming an id that is not 10 digits, or more than 1000 ids.
absl::StatusOr<v1::ArticlesResponse> DescribeArticles(const Recommender& r, const v1::ArticlesRequest& request);

// A known customer, picked from `seed` (uniform over the key space).
absl::StatusOr<std::string> RandomCustomer(const Recommender& r, uint64_t seed);

// Every value of the three attribute filters in this bundle, sorted.
v1::FilterValues FilterValuesOf(const Recommender& r);

// The page's HTML.
const std::string& InspectorPage();

}  // namespace hmrec
