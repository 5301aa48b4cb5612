// A floor under the thread stack sizes libraries ask for.
//
// Why this exists: glibc places a thread's static TLS block inside the stack a
// caller requests with pthread_attr_setstacksize, and pthread_create fails
// with EINVAL when the request is smaller than static TLS plus a small reserve.
// civetweb (the HTTP server under prometheus::Exposer) hard-codes a 100 KiB
// stack for its threads, while this process's static TLS is ~108 KiB (OpenBLAS
// 60 KiB, glog 30 KiB, LibTorch 10 KiB, ...; `readelf -lW` shows each PT_TLS).
// The Exposer then throws "null context" and /metrics cannot be served.
//
// The executable defines pthread_attr_setstacksize, exported so that it
// interposes on libc's for every library, and raises requests below kFloor to
// kFloor before calling libc's. Stacks are reserved address space, touched
// lazily: the floor costs no resident memory. Requests above it are unchanged.

#include <dlfcn.h>
#include <pthread.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>

namespace {

constexpr std::size_t kFloor = std::size_t{1} << 20;  // 1 MiB

using SetStackSize = int (*)(pthread_attr_t*, std::size_t);

SetStackSize LibcSetStackSize() {
  static const SetStackSize fn = reinterpret_cast<SetStackSize>(dlsym(RTLD_NEXT, "pthread_attr_setstacksize"));
  return fn;
}

}  // namespace

extern "C" int pthread_attr_setstacksize(pthread_attr_t* attr, std::size_t size) {
  const SetStackSize libc = LibcSetStackSize();
  if (libc == nullptr) {
    // Without libc's function the stack size cannot be set: say so, and
    // let the caller's pthread_create path report the failure (the server
    // then refuses to start, naming its metrics endpoint).
    static const bool reported = [] {
      std::fprintf(stderr, "stack_floor: dlsym(RTLD_NEXT, pthread_attr_setstacksize) failed: %s\n", dlerror());
      return true;
    }();
    (void)reported;
    return ENOSYS;
  }
  return libc(attr, size < kFloor ? kFloor : size);
}
