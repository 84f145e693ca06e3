#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include "sasq/core/buffer.hpp"
#include "sasq/core/matrix_view.hpp"
#include "sasq/core/span.hpp"
#include "sasq/core/status.hpp"

TEST_CASE("Span views a vector and converts to const") {
  std::vector<float> v = {1, 2, 3, 4};
  sasq::Span<float> s(v);
  sasq::Span<const float> c = s;
  CHECK(c.size() == 4);
  CHECK(c[2] == 3);
  CHECK(s.subspan(1, 2)[0] == 2);
}

TEST_CASE("MatrixView addresses rows with the leading dimension") {
  std::vector<int> v(3 * 5);
  for (int i = 0; i < 15; ++i) v[static_cast<std::size_t>(i)] = i;
  sasq::MatrixView<int> m(v.data(), 3, 4, 5);
  CHECK(m(2, 3) == 13);
  CHECK(!m.contiguous());
  auto b = m.block(1, 1, 2, 2);
  CHECK(b(0, 0) == 6);
  CHECK(b(1, 1) == 12);
  CHECK(m.row(1)[0] == 5);
  sasq::MatrixView<const int> cm = m;
  CHECK(cm.ld() == 5);
}

TEST_CASE("AlignedBuffer is aligned, zeroed and movable") {
  sasq::AlignedBuffer<std::int32_t> b(37);
  CHECK(reinterpret_cast<std::uintptr_t>(b.data()) % 64 == 0);
  for (auto x : b) CHECK(x == 0);
  b[3] = 9;
  auto c = b.clone();
  sasq::AlignedBuffer<std::int32_t> d = std::move(b);
  CHECK(d[3] == 9);
  CHECK(c[3] == 9);
  CHECK(b.empty());  // NOLINT(bugprone-use-after-move)
}

TEST_CASE("Status and Error carry a code and a message") {
  sasq::Status s(sasq::ErrorCode::kOutOfRange, "K too large");
  CHECK(!s.is_ok());
  CHECK_THROWS_WITH_AS(s.throw_if_error(), "K too large", sasq::Error);
  CHECK(sasq::Status::ok().is_ok());
  try {
    sasq::fail(sasq::ErrorCode::kCorruptData, "file ", "x.bin", ": truncated at byte ", 28);
  } catch (const sasq::Error& e) {
    CHECK(e.code() == sasq::ErrorCode::kCorruptData);
    CHECK(std::string(e.what()) == "file x.bin: truncated at byte 28");
  }
}
