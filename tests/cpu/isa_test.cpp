// ISA detection and selection: parse names, resolve requests, and agree with the compiler's view.
#include <doctest/doctest.h>

#include <string>

#include "sasq/cpu/isa.hpp"

TEST_CASE("ISA names parse and unknown names are rejected") {
  CHECK(sasq::cpu::parse_isa("scalar") == sasq::Isa::kScalar);
  CHECK(sasq::cpu::parse_isa("avx2") == sasq::Isa::kAvx2);
  CHECK(sasq::cpu::parse_isa("avx512_vnni") == sasq::Isa::kAvx512Vnni);
  CHECK_THROWS_AS(sasq::cpu::parse_isa("avx512"), sasq::Error);
  CHECK(std::string(sasq::to_string(sasq::Isa::kAvx512Vnni)) == sasq::isa::avx512_vnni::kName);
}

TEST_CASE("detection is cached, the best ISA is supported, and scalar always is") {
  CHECK(&sasq::cpu::cpu_features() == &sasq::cpu::cpu_features());
  CHECK(sasq::cpu::isa_supported(sasq::Isa::kScalar));
  CHECK(sasq::cpu::isa_supported(sasq::cpu::best_isa()));
  CHECK(sasq::cpu::resolve_isa(sasq::Isa::kScalar) == sasq::Isa::kScalar);
  // AVX-512 VNNI implies AVX2 on every real CPU; a resolve of an unsupported ISA throws kUnsupported.
  if (sasq::cpu::isa_supported(sasq::Isa::kAvx512Vnni)) CHECK(sasq::cpu::isa_supported(sasq::Isa::kAvx2));
  for (sasq::Isa i : {sasq::Isa::kAvx2, sasq::Isa::kAvx512Vnni}) {
    if (sasq::cpu::isa_supported(i)) continue;
    try {
      (void)sasq::cpu::resolve_isa(i);
      FAIL("unsupported ISA resolved");
    } catch (const sasq::Error& e) {
      CHECK(e.code() == sasq::ErrorCode::kUnsupported);
    }
  }
#if defined(__AVX2__) && defined(__FMA__)
  CHECK(sasq::cpu::isa_supported(sasq::Isa::kAvx2));  // compiled for AVX2: the CPU must have it
#endif
}
