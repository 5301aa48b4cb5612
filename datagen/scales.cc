#include "absl/strings/str_cat.h"
#include "data/dates.h"
#include "datagen/generator.h"

namespace hmrec::datagen {

absl::StatusOr<config::DatagenConfig> ScalePreset(absl::string_view scale) {
  config::DatagenConfig c;
  c.set_seed(20220207);  // the competition's launch day
  c.set_rebuy_probability(0.09);
  c.set_no_purchase_share(0.0071);  // 9,699 of 1,371,980 real customers never bought
  c.set_demographic_strength(1.0);
  c.set_individual_taste_sigma(1.2);
  if (scale == "tiny") {
    c.set_num_customers(1000);
    c.set_num_articles(400);
    c.set_start_date("2020-03-01");
    c.set_end_date("2020-09-22");
    c.set_mean_transactions_per_customer(12);
    c.set_num_styles(8);
    c.set_num_regions(4);
    c.set_num_postal_codes(300);
    return c;
  }
  // small and full cover the real file's date range.
  c.set_start_date("2018-09-20");
  c.set_end_date("2020-09-22");
  c.set_mean_transactions_per_customer(23.17);  // 31,788,324 rows / 1,371,980 customers
  if (scale == "small") {
    c.set_num_customers(50000);
    c.set_num_articles(5000);
    c.set_num_styles(24);
    c.set_num_regions(12);
    c.set_num_postal_codes(13000);
    return c;
  }
  if (scale == "full") {
    c.set_num_customers(1371980);
    c.set_num_articles(105542);
    c.set_num_styles(64);
    c.set_num_regions(30);
    c.set_num_postal_codes(352899);
    return c;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown scale '", scale, "': use tiny, small or full"));
}

absl::Status ValidateConfig(const config::DatagenConfig& c) {
  auto bad = [](absl::string_view field, auto value, absl::string_view want) {
    return absl::InvalidArgumentError(absl::StrCat(field, " = ", value, ": ", want));
  };
  if (c.num_customers() < 10) return bad("num_customers", c.num_customers(), "need >= 10");
  if (c.num_articles() < 20) return bad("num_articles", c.num_articles(), "need >= 20");
  if (c.num_articles() > 900000) return bad("num_articles", c.num_articles(), "need <= 900000");
  if (c.num_styles() < 1 || c.num_styles() > 255) return bad("num_styles", c.num_styles(), "need 1..255");
  if (c.num_regions() < 1) return bad("num_regions", c.num_regions(), "need >= 1");
  if (c.num_postal_codes() < c.num_regions()) {
    return bad("num_postal_codes", c.num_postal_codes(), "need >= num_regions");
  }
  if (c.mean_transactions_per_customer() <= 0) {
    return bad("mean_transactions_per_customer", c.mean_transactions_per_customer(), "need > 0");
  }
  if (c.rebuy_probability() < 0 || c.rebuy_probability() > 1) {
    return bad("rebuy_probability", c.rebuy_probability(), "need 0..1");
  }
  if (c.no_purchase_share() < 0 || c.no_purchase_share() >= 1) {
    return bad("no_purchase_share", c.no_purchase_share(), "need 0..1");
  }
  if (c.seasonal_strength() < 0 || c.seasonal_strength() > 5) {
    return bad("seasonal_strength", c.seasonal_strength(), "need 0..5");
  }
  absl::StatusOr<int32_t> start = ParseDate(c.start_date());
  if (!start.ok()) return bad("start_date", c.start_date(), start.status().message());
  absl::StatusOr<int32_t> end = ParseDate(c.end_date());
  if (!end.ok()) return bad("end_date", c.end_date(), end.status().message());
  if (*end - *start < 14) return bad("end_date", c.end_date(), "need >= 14 days after start_date");
  return absl::OkStatus();
}

}  // namespace hmrec::datagen
