#pragma once

// Process-wide settings every program applies at start.

#include <string>

namespace hmrec {

// Keeps freed memory in the process instead of returning large blocks to
// the kernel: glibc otherwise unmaps every block above its mmap threshold,
// and each new batch then pays ~1.5 ms per MB in page faults on this VM.
// Call once, first thing in main.
void ConfigureAllocator();

// Returns the heap's free pages to the kernel (glibc's malloc_trim), for a
// program that ends a phase whose memory the next phase does not reuse:
// under ConfigureAllocator nothing freed leaves the process otherwise, so
// the trainer's towers would still hold their gigabytes while the ranking
// stage builds its matrices (docs/PERFORMANCE.md "Trainer memory"). Costs
// a walk of the heap and, later, the page faults of memory used again.
void ReleaseFreeHeap();

struct ProcessOptions {
  // Put the heap on transparent huge pages (2 MiB) where the kernel offers
  // them on request (/sys/kernel/mm/transparent_hugepage/enabled is
  // "madvise"): glibc's malloc then advises them for its heap
  // (GLIBC_TUNABLES=glibc.malloc.hugetlb=1). For a process that reads tables
  // of tens of MB at random (the server's candidates and features), each
  // access otherwise also misses the TLB. Setting glibc.malloc.hugetlb in
  // GLIBC_TUNABLES yourself (e.g. to 0) decides instead.
  bool heap_huge_pages = false;
};

// Settings that must be in the environment before the program starts, so
// this re-executes the program once (same arguments) when it sets any,
// saying so on stderr. Call first thing in main.
//
// OpenBLAS picks its kernels from the CPU model when the library loads,
// before main(); on CPUs it does not know (virtual machines reporting a
// generic model, such as this project's "Intel(R) Xeon(R) Processor") it falls
// back to SSE3 "Prescott" kernels, 3x slower than AVX-512 ones
// (docs/PERFORMANCE.md). When OPENBLAS_CORETYPE is unset and that happened,
// this sets it from the CPU's features (SkylakeX for AVX-512, Haswell for
// AVX2+FMA). Set OPENBLAS_CORETYPE yourself to choose.
void PrepareProcess(char** argv, const ProcessOptions& options = {});

// How the heap's pages are, for the server's start line: "on transparent
// huge pages" or why not.
std::string HeapPagesStatus();

// The OpenBLAS kernel set in use (e.g. "SkylakeX"), for reports.
const char* BlasCoreName();

// This process's resident memory now, MiB (0 when /proc is not there).
double ResidentMiB();

}  // namespace hmrec
