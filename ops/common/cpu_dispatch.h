// Runtime choice of the instruction set for CPU kernels: on x86-64 a kernel body is compiled twice, for the
// baseline ISA and for AVX2 + FMA, and the AVX2 build runs where the processor has it. The body is always
// inlined into both, so the very same source becomes both builds.
#pragma once

#include <ATen/Parallel.h>

#include <cstdint>

#if defined(__x86_64__) && defined(__GNUC__)
#define DETRKIT_HAS_AVX2_BUILD 1
#define DETRKIT_TARGET_AVX2 __attribute__((target("avx2,fma")))
#else
#define DETRKIT_HAS_AVX2_BUILD 0
#define DETRKIT_TARGET_AVX2
#endif

namespace detrkit {

inline bool cpu_has_avx2_fma() {
#if DETRKIT_HAS_AVX2_BUILD
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
#else
  return false;
#endif
}

template <typename Body, typename Args>
void run_baseline(const Args& args, int64_t begin, int64_t end) {
  Body::run(args, begin, end);
}

template <typename Body, typename Args>
DETRKIT_TARGET_AVX2 void run_avx2(const Args& args, int64_t begin, int64_t end) {
  Body::run(args, begin, end);
}

// at::parallel_for over [0, n) where each chunk runs Body::run(args, begin, end) (a DETRKIT_INLINE static
// function) in the best instruction set of this processor.
template <typename Body, typename Args>
void parallel_run(int64_t n, int64_t grain, const Args& args) {
  const bool avx2 = cpu_has_avx2_fma();
  at::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) {
    if (avx2) {
      run_avx2<Body>(args, begin, end);
    } else {
      run_baseline<Body>(args, begin, end);
    }
  });
}

}  // namespace detrkit
