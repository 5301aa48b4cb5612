#include "common/binary_io.h"

#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace hmrec {

uint32_t Crc32(uint32_t crc, const void* data, size_t size) {
  return static_cast<uint32_t>(crc32_z(crc, static_cast<const Bytef*>(data), static_cast<z_size_t>(size)));
}

absl::StatusOr<std::unique_ptr<BinaryWriter>> BinaryWriter::Open(const std::string& path) {
  std::string tmp = absl::StrCat(path, ".tmp.", ::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) {
    return absl::InternalError(absl::StrCat("cannot create ", tmp, ": ", std::strerror(errno)));
  }
  std::setvbuf(f, nullptr, _IOFBF, 1 << 20);
  return std::unique_ptr<BinaryWriter>(new BinaryWriter(path, std::move(tmp), f));
}

BinaryWriter::BinaryWriter(std::string path, std::string tmp, std::FILE* f)
    : path_(std::move(path)), tmp_path_(std::move(tmp)), file_(f), crc_(Crc32(0, nullptr, 0)) {}

BinaryWriter::~BinaryWriter() {
  if (file_ != nullptr) {
    std::fclose(file_);
    std::remove(tmp_path_.c_str());
  }
}

void BinaryWriter::Write(const void* data, size_t size) {
  if (failed_ || size == 0) return;
  crc_ = Crc32(crc_, data, size);
  if (std::fwrite(data, 1, size, file_) != size) failed_ = true;
}

absl::Status BinaryWriter::Close() {
  const uint32_t crc = crc_;
  if (!failed_ && std::fwrite(&crc, 1, sizeof(crc), file_) != sizeof(crc)) failed_ = true;
  if (!failed_ && std::fflush(file_) != 0) failed_ = true;
  if (!failed_ && ::fsync(fileno(file_)) != 0) failed_ = true;
  const int saved_errno = errno;
  if (std::fclose(file_) != 0) failed_ = true;
  file_ = nullptr;
  if (failed_ || std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    std::remove(tmp_path_.c_str());
    return absl::InternalError(
        absl::StrCat("cannot write ", path_, ": ", std::strerror(saved_errno ? saved_errno : errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<BinaryReader>> BinaryReader::Open(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  struct stat st;
  if (::fstat(fileno(f), &st) != 0) {
    std::fclose(f);
    return absl::InternalError(absl::StrCat("cannot stat ", path));
  }
  std::setvbuf(f, nullptr, _IOFBF, 1 << 20);
  return std::unique_ptr<BinaryReader>(new BinaryReader(path, f, static_cast<uint64_t>(st.st_size)));
}

BinaryReader::BinaryReader(std::string path, std::FILE* f, uint64_t size)
    : path_(std::move(path)), file_(f), size_(size), crc_(Crc32(0, nullptr, 0)) {}

BinaryReader::~BinaryReader() { std::fclose(file_); }

absl::Status BinaryReader::Corrupt(absl::string_view what) const {
  return absl::DataLossError(absl::StrCat(path_, " is corrupt at byte ", offset_, ": ", what));
}

absl::Status BinaryReader::Read(void* data, size_t size) {
  if (size > remaining()) return Corrupt("unexpected end of file");
  if (size == 0) return absl::OkStatus();
  if (std::fread(data, 1, size, file_) != size) return Corrupt("short read");
  crc_ = Crc32(crc_, data, size);
  offset_ += size;
  return absl::OkStatus();
}

absl::Status BinaryReader::String(std::string* s) {
  uint64_t n = 0;
  absl::Status st = Pod(&n);
  if (!st.ok()) return st;
  if (n > remaining()) return Corrupt("string longer than the file");
  s->resize(n);
  return Read(s->data(), n);
}

absl::Status BinaryReader::VerifyChecksum() {
  const uint32_t expected = crc_;
  uint32_t stored = 0;
  if (remaining() != sizeof(stored)) return Corrupt("unexpected length before checksum");
  if (std::fread(&stored, 1, sizeof(stored), file_) != sizeof(stored)) return Corrupt("short read");
  offset_ += sizeof(stored);
  if (stored != expected) return Corrupt("checksum mismatch");
  return absl::OkStatus();
}

}  // namespace hmrec
