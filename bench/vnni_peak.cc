// The machine's int8 multiply-add peak, the yardstick of the search's int8
// scan (docs/PERFORMANCE.md "The ranked path"): VPDPBUSD on 512-bit
// registers (64 multiply-adds an instruction) in 24 independent
// accumulators, operands in registers, on 1 and on N threads.
//
//   build/bench/hmrec_vnni_peak [--threads 2] [--seconds 1]
#include <omp.h>

#include <chrono>
#include <cstdint>
#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"

ABSL_FLAG(int, threads, 2, "Threads for the second figure");
ABSL_FLAG(double, seconds, 1.0, "Time per measurement");

namespace {

constexpr int kAcc = 24;
constexpr int64_t kSteps = 1 << 20;  // per call: kSteps x kAcc instructions

// `steps` x kAcc VPDPBUSD into zmm0..zmm23 from operands in zmm30, zmm31,
// written out in assembly so that no compiler keeps fewer chains or moves
// them through memory (what the scan's inner loop compiles to, without its
// loads).
__attribute__((target("avx512f,avx512vnni"), noinline)) void Run(const int32_t* data, int64_t steps) {
  static_assert(kAcc == 24);
  __asm__ volatile(
      "vmovdqu64 (%[d]), %%zmm30\n\t"
      "vmovdqu64 64(%[d]), %%zmm31\n\t"
      "1:\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm0\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm1\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm2\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm3\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm4\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm5\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm6\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm7\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm8\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm9\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm10\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm11\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm12\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm13\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm14\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm15\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm16\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm17\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm18\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm19\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm20\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm21\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm22\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm23\n\t"
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      : [n] "+r"(steps)
      : [d] "r"(data)
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
        "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm30",
        "xmm31", "cc", "memory");
}

// Multiply-adds per second over `threads` threads, each running for
// `seconds`.
double Measure(int threads, double seconds) {
  int64_t calls_total = 0;
  double elapsed = 0;
#pragma omp parallel num_threads(threads) reduction(+ : calls_total) reduction(max : elapsed)
  {
    const auto t0 = std::chrono::steady_clock::now();
    double s = 0;
    int64_t calls = 0;
    int32_t data[32];
    for (int i = 0; i < 32; ++i) data[i] = 0x01020304 * (i + 1);
    while (s < seconds) {
      Run(data, kSteps / 16);
      ++calls;
      s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    calls_total += calls;
    elapsed = s;
  }
  return static_cast<double>(calls_total) * (kSteps / 16) * kAcc * 64 / elapsed;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512vnni")) {
    std::fprintf(stderr, "vnni_peak: this CPU has no AVX-512 VNNI\n");
    return 1;
  }
  const double seconds = absl::GetFlag(FLAGS_seconds);
  const int threads = absl::GetFlag(FLAGS_threads);
  Measure(1, 0.2);  // clocks up
  std::printf("VPDPBUSD (512-bit) peak: 1 thread %.0f G multiply-adds/s, %d threads %.0f G/s\n",
              Measure(1, seconds) / 1e9, threads, Measure(threads, seconds) / 1e9);
  return 0;
}
