#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "sasq/quant/params.hpp"

using namespace sasq;

TEST_CASE("param_from_range: symmetric scale is absmax / qmax with zero point 0") {
  const QuantParam p = param_from_range<GridS8>(-3.0f, 1.5f);
  CHECK(p.scale == 3.0f / 127.0f);
  CHECK(p.inv_scale == 1.0f / p.scale);
  CHECK(p.zero_point == 0);
  CHECK(param_from_range<GridS4>(-0.5f, 7.0f).scale == 1.0f);
  CHECK(param_from_range<GridS8Full>(-254.0f, 1.0f).scale == 2.0f);
  CHECK(param_from_absmax<GridS8>(12.7f).scale == 12.7f / 127.0f);
}

TEST_CASE("param_from_range: asymmetric range includes zero and rounds the zero point") {
  const QuantParam p = param_from_range<GridU8>(-1.0f, 3.0f);
  CHECK(p.scale == 4.0f / 255.0f);
  CHECK(p.zero_point == static_cast<int>(round_half_even(1.0f / p.scale)));
  CHECK(p.zero_point == 64);
  // A positive-only range is widened to [0, max]: z = 0.
  const QuantParam q = param_from_range<GridU4>(2.0f, 15.0f);
  CHECK(q.scale == 1.0f);
  CHECK(q.zero_point == 0);
  // A negative-only range is widened to [min, 0]: z = qmax.
  const QuantParam n = param_from_range<GridU8>(-5.0f, -1.0f);
  CHECK(n.zero_point == 255);
}

TEST_CASE("zero ranges get scale 1 and map every value to the zero point") {
  CHECK(param_from_range<GridS8>(0.0f, 0.0f).scale == 1.0f);
  CHECK(param_from_range<GridU8>(0.0f, 0.0f).scale == 1.0f);
  CHECK(param_from_range<GridU8>(0.0f, 0.0f).zero_point == 0);
  CHECK(param_from_absmax<GridS4>(0.0f).scale == 1.0f);
  const QuantParam p = param_from_range<GridU4>(0.0f, 0.0f);
  CHECK(quantize_value<GridU4>(0.0f, p) == p.zero_point);
}

TEST_CASE("tiny ranges are raised to kMinScale so 1/scale stays finite") {
  const float tiny = std::numeric_limits<float>::denorm_min();
  const QuantParam p = param_from_absmax<GridS8>(tiny);
  CHECK(p.scale == kMinScale);
  CHECK(std::isfinite(p.inv_scale));
  CHECK(quantize_value<GridS8>(tiny, p) == 0);
  const QuantParam u = param_from_range<GridU8>(-tiny, tiny);
  CHECK(u.scale == kMinScale);
  CHECK(std::isfinite(u.inv_scale));
}

TEST_CASE("param_from_range rejects non-finite and inverted ranges") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH_AS(param_from_range<GridS8>(nan, 1.0f), doctest::Contains("not finite"), Error);
  CHECK_THROWS_WITH_AS(param_from_range<GridU8>(0.0f, inf), doctest::Contains("not finite"), Error);
  CHECK_THROWS_WITH_AS(param_from_range<GridS8>(2.0f, 1.0f), doctest::Contains("min > max"), Error);
  CHECK_THROWS_WITH_AS(param_from_absmax<GridS8>(-1.0f), doctest::Contains("absmax -1"), Error);
  const float big = std::numeric_limits<float>::max();
  CHECK_THROWS_WITH_AS(param_from_range<GridU8>(-big, big), doctest::Contains("wider than FLT_MAX"), Error);
  // The symmetric formula has no overflow: s = FLT_MAX / 127.
  CHECK(std::isfinite(param_from_range<GridS8>(-big, big).scale));
}

TEST_CASE("param_from_range_unchecked has defined results for infinite rows (device kernels)") {
  const float inf = std::numeric_limits<float>::infinity();
  const QuantParam both = param_from_range_unchecked<GridU8>(-inf, inf);
  CHECK(std::isinf(both.scale));
  CHECK(both.zero_point == 0);  // NaN zero point -inf/inf mapped to 0, not cast (UB)
  CHECK(std::isinf(param_from_range_unchecked<GridU8>(0.0f, inf).scale));
  CHECK(param_from_range_unchecked<GridU8>(0.0f, inf).zero_point == 0);
  CHECK(param_from_range_unchecked<GridU8>(-inf, 0.0f).zero_point == 0);
  CHECK(std::isinf(param_from_range_unchecked<GridS8>(-inf, 1.0f).scale));
}

TEST_CASE("validate_scale names the problem and the caller") {
  CHECK_NOTHROW(validate_scale(0.5f, "here"));
  CHECK_THROWS_WITH_AS(validate_scale(0.0f, "layer3"), "layer3: scale is zero", Error);
  CHECK_THROWS_WITH_AS(validate_scale(-2.0f, "x"), "x: scale -2 is negative", Error);
  CHECK_THROWS_WITH_AS(validate_scale(std::nanf(""), "x"), "x: scale is NaN", Error);
  CHECK_THROWS_WITH_AS(validate_scale(std::numeric_limits<float>::infinity(), "x"),
                       doctest::Contains("is infinite"), Error);
  CHECK_THROWS_WITH_AS(validate_scale(1e-45f, "x"), doctest::Contains("too small"), Error);
  try {
    validate_scale(0.0f, "w");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::kInvalidArgument);
  }
}

TEST_CASE("validate_param checks inv_scale and the zero point") {
  CHECK_NOTHROW(validate_param<GridU8>(QuantParam::make(0.1f, 255), "p"));
  CHECK_THROWS_WITH_AS(validate_param<GridU8>(QuantParam::make(0.1f, 256), "p"),
                       doctest::Contains("zero point 256 outside [0, 255]"), Error);
  CHECK_THROWS_WITH_AS(validate_param<GridS8>(QuantParam::make(0.1f, 3), "p"),
                       doctest::Contains("symmetric grid"), Error);
  QuantParam bad{0.1f, 11.0f, 0};
  CHECK_THROWS_WITH_AS(validate_param<GridS8>(bad, "p"), doctest::Contains("not 1/scale"), Error);
  CHECK_FALSE(is_valid_param<GridS8>(bad));
  CHECK(is_valid_param<GridS8>(QuantParam::make(0.1f)));
}
