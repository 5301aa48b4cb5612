#pragma once

// Process-wide settings every program applies at start.

namespace hmrec {

// Keeps freed memory in the process instead of returning large blocks to
// the kernel: glibc otherwise unmaps every block above its mmap threshold,
// and each new batch then pays ~1.5 ms per MB in page faults on this VM.
// Call once, first thing in main.
void ConfigureAllocator();

}  // namespace hmrec
