#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "sasq/core/status.hpp"
#include "sasq/metrics/report.hpp"
#include "synthetic_activations.hpp"

TEST_CASE("measure_site fills every field and the writers emit CSV and JSON") {
  const auto l = sasq::test::make_outlier_layer(16, 32, 8, 3);
  std::vector<sasq::SiteMetrics> rows = {sasq::measure_site(0, "down_in", "original", l.xv(), l.wv(), 4)};
  const auto& m = rows[0];
  CHECK(m.difficulty_x > 0.0);
  CHECK(m.difficulty_w > 0.0);
  CHECK(m.max_median_x > 1.0);
  CHECK(m.kurtosis_x > 3.0);
  CHECK(m.error > 0.0);
  CHECK(m.error_estimate > 0.0);
  rows.push_back(m);
  rows[1].transform = "rotate";
  rows[1].sqnr_db = std::numeric_limits<double>::infinity();

  std::ostringstream csv;
  sasq::write_csv(csv, rows);
  const std::string c = csv.str();
  CHECK(c.rfind("layer,site,transform,bits,difficulty_x,difficulty_w,max_median_x,kurtosis_x,error,"
                "error_estimate,sqnr_db\n0,down_in,original,4,", 0) == 0);
  CHECK(c.find("\n0,down_in,rotate,4,") != std::string::npos);
  CHECK(c.find(",inf\n") != std::string::npos);

  std::ostringstream json;
  sasq::write_json(json, rows);
  const std::string j = json.str();
  CHECK(j.find("{\"layer\": 0, \"site\": \"down_in\", \"transform\": \"original\", \"bits\": 4, "
               "\"difficulty_x\": ") != std::string::npos);
  CHECK(j.find("\"sqnr_db\": null}") != std::string::npos);
  CHECK(j.front() == '[');

  std::ostringstream empty;
  sasq::write_json(empty, sasq::Span<const sasq::SiteMetrics>());
  CHECK(empty.str() == "[]\n");
}

TEST_CASE("channel profile CSV and label validation") {
  std::ostringstream os;
  const std::vector<float> mags = {1.5f, 2.0f};
  sasq::write_channel_profile_csv(os, 2, "down_in", "smooth_rotate", mags, true);
  sasq::write_channel_profile_csv(os, 2, "down_in", "original", mags, false);
  CHECK(os.str() ==
        "layer,site,transform,channel,magnitude\n2,down_in,smooth_rotate,0,1.5\n2,down_in,smooth_rotate,1,2\n"
        "2,down_in,original,0,1.5\n2,down_in,original,1,2\n");
  CHECK_THROWS_WITH_AS(sasq::write_channel_profile_csv(os, 0, "a,b", "x", mags, false), doctest::Contains("site"),
                       sasq::Error);
  sasq::SiteMetrics bad;
  bad.site = "q\"k";
  std::ostringstream js;
  CHECK_THROWS_AS(sasq::write_json(js, sasq::Span<const sasq::SiteMetrics>(&bad, 1)), sasq::Error);
}
