#include "common/runtime.h"

#include <malloc.h>

namespace hmrec {

void ConfigureAllocator() {
  // Serve large blocks from the heap (not fresh mmaps) and never trim it.
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
}

}  // namespace hmrec
