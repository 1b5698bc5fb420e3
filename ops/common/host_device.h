// Qualifiers and small math helpers shared by the CPU (.cpp) and CUDA (.cu) kernels, so that both compile the
// very same per-element code.
#pragma once

#include <cmath>

// DETRKIT_INLINE functions are inlined into every caller, so a CPU kernel compiled for several instruction
// sets (cpu_dispatch.h) gets each of them in its own instruction set.
#if defined(__CUDACC__)
#define DETRKIT_INLINE __host__ __device__ __forceinline__
#else
#define DETRKIT_INLINE inline __attribute__((always_inline))
#endif

// `#pragma omp simd reduction` lets the host compiler vectorise a floating-point dot product (it reorders the
// sum); setup.py defines DETRKIT_OPENMP_SIMD with -fopenmp. The device pass never uses it.
#if defined(__CUDA_ARCH__) || !defined(DETRKIT_OPENMP_SIMD)
#define DETRKIT_SIMD_SUM(var)
#else
#define DETRKIT_PRAGMA(text) _Pragma(#text)
#define DETRKIT_SIMD_SUM(var) DETRKIT_PRAGMA(omp simd reduction(+ : var))
#endif

namespace detrkit {

DETRKIT_INLINE float floor_of(float x) { return floorf(x); }
DETRKIT_INLINE double floor_of(double x) { return floor(x); }

// Same results as std::max / std::min (the first argument wins ties and NaN comparisons).
template <typename T>
DETRKIT_INLINE T max_of(T a, T b) {
  return (a < b) ? b : a;
}
template <typename T>
DETRKIT_INLINE T min_of(T a, T b) {
  return (b < a) ? b : a;
}

}  // namespace detrkit
