// CPU instruction-set tags, feature detection (cpuid + XGETBV, cached) and the SASQ_ISA override.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "sasq/core/config.hpp"
#include "sasq/core/status.hpp"

#if SASQ_HAS_X86_KERNELS
#include <cpuid.h>
#endif

namespace sasq {

/// ISA tags selecting kernel specializations; each names the function target attributes it needs.
namespace isa {
struct scalar {
  static constexpr const char* kName = "scalar";
};
/// AVX2 + FMA (x86-64-v3).
struct avx2 {
  static constexpr const char* kName = "avx2";
};
/// AVX-512 F/BW/VL/DQ + VNNI (vpdpbusd): Ice Lake, Sapphire Rapids, Zen 4/5.
struct avx512_vnni {
  static constexpr const char* kName = "avx512_vnni";
};
}  // namespace isa

/// Runtime ISA choice: kAuto takes the SASQ_ISA environment variable if set, else the best supported.
enum class Isa { kAuto, kScalar, kAvx2, kAvx512Vnni };

inline const char* to_string(Isa i) {
  switch (i) {
    case Isa::kAuto: return "auto";
    case Isa::kScalar: return isa::scalar::kName;
    case Isa::kAvx2: return isa::avx2::kName;
    case Isa::kAvx512Vnni: return isa::avx512_vnni::kName;
  }
  return "unknown";
}

namespace cpu {

/// x86 features relevant to the kernels, each true only if the CPU has it and the OS saves its state.
struct CpuFeatures {
  bool avx2 = false, fma = false, avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false,
       avx512vnni = false, avx_vnni = false;
};

/// Queries cpuid and XGETBV (XCR0: YMM state for AVX2, opmask/ZMM state for AVX-512).
inline CpuFeatures detect_cpu_features() {
  CpuFeatures f;
#if SASQ_HAS_X86_KERNELS
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, avx = (c >> 28) & 1;
  if (!osxsave || !avx) return f;
  std::uint32_t xlo = 0, xhi = 0;
  __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
  const bool ymm_os = (xlo & 0x6) == 0x6, zmm_os = (xlo & 0xE6) == 0xE6;
  if (!ymm_os || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
  f.avx2 = (b >> 5) & 1;
  f.fma = fma;
  f.avx512f = zmm_os && ((b >> 16) & 1);
  f.avx512dq = f.avx512f && ((b >> 17) & 1);
  f.avx512bw = f.avx512f && ((b >> 30) & 1);
  f.avx512vl = f.avx512f && ((b >> 31) & 1);
  f.avx512vnni = f.avx512f && ((c >> 11) & 1);
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) f.avx_vnni = (a >> 4) & 1;
#endif
  return f;
}

/// Features of this CPU, detected once.
inline const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect_cpu_features();
  return f;
}

/// Whether kernels for `i` can run here (kAuto: always).
inline bool isa_supported(Isa i) {
  const CpuFeatures& f = cpu_features();
  switch (i) {
    case Isa::kAuto: return true;
    case Isa::kScalar: return true;
    case Isa::kAvx2: return SASQ_HAS_X86_KERNELS && f.avx2 && f.fma;
    case Isa::kAvx512Vnni:
      return SASQ_HAS_X86_KERNELS && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512vnni && f.fma;
  }
  return false;
}

/// The fastest supported ISA.
inline Isa best_isa() {
  if (isa_supported(Isa::kAvx512Vnni)) return Isa::kAvx512Vnni;
  if (isa_supported(Isa::kAvx2)) return Isa::kAvx2;
  return Isa::kScalar;
}

/// Parses "scalar", "avx2" or "avx512_vnni"; throws kInvalidArgument for anything else.
inline Isa parse_isa(const char* name) {
  for (Isa i : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512Vnni})
    if (std::strcmp(name, to_string(i)) == 0) return i;
  fail(ErrorCode::kInvalidArgument, "SASQ_ISA='", name, "' is not one of scalar, avx2, avx512_vnni");
}

/// The ISA that kAuto means: SASQ_ISA from the environment (read once) or best_isa(). Throws
/// kInvalidArgument for an unknown name and kUnsupported when the named ISA is missing on this CPU.
inline Isa default_isa() {
  static const std::string env = [] {
    const char* e = std::getenv("SASQ_ISA");
    return std::string(e ? e : "");
  }();
  if (env.empty()) return best_isa();
  const Isa i = parse_isa(env.c_str());
  if (!isa_supported(i)) fail(ErrorCode::kUnsupported, "SASQ_ISA=", env, " but this CPU lacks that ISA");
  return i;
}

/// Resolves a requested ISA to a concrete, supported one (throws kUnsupported otherwise).
inline Isa resolve_isa(Isa requested) {
  if (requested == Isa::kAuto) return default_isa();
  if (!isa_supported(requested))
    fail(ErrorCode::kUnsupported, "ISA ", to_string(requested), " is not supported by this CPU");
  return requested;
}

}  // namespace cpu
}  // namespace sasq
