#pragma once

// Little binary files with a CRC-32 over their whole content, written to a
// temporary name and renamed into place so readers never see a partial file.
// Used for caches; the byte layout is the host's (caches are not portable
// between machines of different endianness, and say so by their magic).
// Not thread-safe.

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace hmrec {

class BinaryWriter {
 public:
  static absl::StatusOr<std::unique_ptr<BinaryWriter>> Open(const std::string& path);
  ~BinaryWriter();

  void Write(const void* data, size_t size);
  template <typename T>
  void Pod(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    Write(&v, sizeof(T));
  }
  template <typename T>
  void Vector(const std::vector<T>& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    Pod<uint64_t>(v.size());
    Write(v.data(), v.size() * sizeof(T));
  }
  void String(absl::string_view s) {
    Pod<uint64_t>(s.size());
    Write(s.data(), s.size());
  }
  // Appends the CRC, syncs and renames into place.
  absl::Status Close();

 private:
  BinaryWriter(std::string path, std::string tmp, std::FILE* f);
  std::string path_;
  std::string tmp_path_;
  std::FILE* file_;
  uint32_t crc_;
  bool failed_ = false;
};

class BinaryReader {
 public:
  static absl::StatusOr<std::unique_ptr<BinaryReader>> Open(const std::string& path);
  ~BinaryReader();

  absl::Status Read(void* data, size_t size);
  template <typename T>
  absl::Status Pod(T* v) {
    static_assert(std::is_trivially_copyable_v<T>);
    return Read(v, sizeof(T));
  }
  template <typename T>
  absl::Status Vector(std::vector<T>* v) {
    static_assert(std::is_trivially_copyable_v<T>);
    uint64_t n = 0;
    absl::Status s = Pod(&n);
    if (!s.ok()) return s;
    if (n > remaining() / sizeof(T)) return Corrupt("vector longer than the file");
    v->resize(n);
    return Read(v->data(), n * sizeof(T));
  }
  absl::Status String(std::string* s);
  // Reads the trailing CRC and checks it against everything read before.
  absl::Status VerifyChecksum();

  uint64_t remaining() const { return size_ - offset_; }
  absl::Status Corrupt(absl::string_view what) const;

 private:
  BinaryReader(std::string path, std::FILE* f, uint64_t size);
  std::string path_;
  std::FILE* file_;
  uint64_t size_;
  uint64_t offset_ = 0;
  uint32_t crc_;
};

// Returns the CRC-32 (zlib) of `size` bytes continuing from `crc`.
uint32_t Crc32(uint32_t crc, const void* data, size_t size);

}  // namespace hmrec
