#pragma once

// Process-wide settings every program applies at start.

namespace hmrec {

// Keeps freed memory in the process instead of returning large blocks to
// the kernel: glibc otherwise unmaps every block above its mmap threshold,
// and each new batch then pays ~1.5 ms per MB in page faults on this VM.
// Call once, first thing in main.
void ConfigureAllocator();

// Makes OpenBLAS use the kernels this CPU can run. OpenBLAS picks its
// kernels from the CPU model when the library loads, before main(); on CPUs
// it does not know (virtual machines reporting a generic model, such as this
// project's "Intel(R) Xeon(R) Processor") it falls back to SSE3 "Prescott"
// kernels, 3x slower than AVX-512 ones (docs/PERFORMANCE.md). When
// OPENBLAS_CORETYPE is unset and that happened, this sets it from the CPU's
// features (SkylakeX for AVX-512, Haswell for AVX2+FMA) and re-executes the
// program with the same arguments, saying so on stderr. Set
// OPENBLAS_CORETYPE yourself to choose. Call first thing in main.
void SelectBlasKernels(char** argv);

// The OpenBLAS kernel set in use (e.g. "SkylakeX"), for reports.
const char* BlasCoreName();

// This process's resident memory now, MiB (0 when /proc is not there).
double ResidentMiB();

}  // namespace hmrec
