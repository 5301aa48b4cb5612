// Process runtime settings: the allocator keeps what is freed
// (ConfigureAllocator) until ReleaseFreeHeap returns it to the kernel.

#include "common/runtime.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

namespace hmrec {
namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

TEST(Runtime, ReleaseFreeHeapReturnsWhatTheAllocatorKept) {
  if (kSanitized) GTEST_SKIP() << "a sanitizer's allocator replaces glibc's";
  ConfigureAllocator();
  // 256 MiB in 64 KiB blocks (below the mmap threshold: from the heap),
  // touched, then freed, with a block after them holding the heap's top.
  constexpr size_t kBlock = 64 << 10, kBlocks = 4096;
  std::vector<std::unique_ptr<char[]>> blocks;
  for (size_t i = 0; i < kBlocks; ++i) {
    blocks.emplace_back(new char[kBlock]);
    std::memset(blocks.back().get(), 1, kBlock);
  }
  std::unique_ptr<char[]> pin(new char[64]);
  pin[0] = 1;
  const double held = ResidentMiB();
  blocks.clear();
  const double freed = ResidentMiB();
  EXPECT_GT(freed, held - 64) << "the allocator keeps freed memory (ConfigureAllocator)";
  ReleaseFreeHeap();
  const double released = ResidentMiB();
  EXPECT_LT(released, freed - 192) << "held " << held << " MiB, after free " << freed << ", after release " << released;
}

}  // namespace
}  // namespace hmrec
