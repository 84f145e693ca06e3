// Compiler and platform macros shared by every sasq header (host and device).
#pragma once

#include <cassert>

#if defined(__CUDACC__)
#define SASQ_HOST_DEVICE __host__ __device__
#else
#define SASQ_HOST_DEVICE
#endif

#if defined(__GNUC__) || defined(__clang__)
#define SASQ_INLINE inline __attribute__((always_inline))
#define SASQ_LIKELY(x) __builtin_expect(!!(x), 1)
#define SASQ_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define SASQ_INLINE inline
#define SASQ_LIKELY(x) (x)
#define SASQ_UNLIKELY(x) (x)
#endif

// x86-64 with a GCC-compatible compiler: SIMD kernels are compiled with function
// target attributes, so no translation unit needs -m flags.
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(__CUDA_ARCH__)
#define SASQ_HAS_X86_KERNELS 1
#define SASQ_TARGET(isa) __attribute__((target(isa)))
#else
#define SASQ_HAS_X86_KERNELS 0
#define SASQ_TARGET(isa)
#endif

/// Internal precondition check inside kernels; override by defining SASQ_ASSERT before
/// including sasq. API entry points never rely on it: they validate and throw sasq::Error.
#ifndef SASQ_ASSERT
#define SASQ_ASSERT(cond) assert(cond)
#endif
