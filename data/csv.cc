#include "data/csv.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace hmrec {
namespace {

constexpr size_t kWriterFlushBytes = size_t{1} << 20;

absl::Status ErrnoStatus(absl::string_view what, const std::string& path) {
  return absl::Status(absl::ErrnoToStatusCode(errno), absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

}  // namespace

// ---------------------------------------------------------------- reader

absl::StatusOr<std::unique_ptr<CsvReader>> CsvReader::Open(const std::string& path, size_t buffer_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("cannot open", path);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    absl::Status s = ErrnoStatus("cannot stat", path);
    ::close(fd);
    return s;
  }
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  if (buffer_bytes < 64) buffer_bytes = 64;
  return std::unique_ptr<CsvReader>(new CsvReader(path, fd, static_cast<int64_t>(st.st_size), buffer_bytes));
}

CsvReader::CsvReader(std::string path, int fd, int64_t file_size, size_t buffer_bytes)
    : path_(std::move(path)), fd_(fd), file_size_(file_size), buffer_(buffer_bytes) {}

CsvReader::~CsvReader() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status CsvReader::RecordError(absl::string_view message) const {
  return absl::InvalidArgumentError(absl::StrCat(path_, ":", record_line_, ": ", message));
}

absl::Status CsvReader::Refill() {
  // Keep the unparsed tail; grow when one record fills the whole buffer.
  if (pos_ > 0) {
    std::memmove(buffer_.data(), buffer_.data() + pos_, end_ - pos_);
    consumed_before_buffer_ += static_cast<int64_t>(pos_);
    end_ -= pos_;
    pos_ = 0;
  }
  if (end_ == buffer_.size()) buffer_.resize(buffer_.size() * 2);
  while (end_ < buffer_.size()) {
    ssize_t n = ::read(fd_, buffer_.data() + end_, buffer_.size() - end_);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("cannot read", path_);
    }
    if (n == 0) {
      eof_ = true;
      break;
    }
    end_ += static_cast<size_t>(n);
  }
  if (at_file_start_ && end_ >= 3 && static_cast<unsigned char>(buffer_[0]) == 0xEF &&
      static_cast<unsigned char>(buffer_[1]) == 0xBB && static_cast<unsigned char>(buffer_[2]) == 0xBF) {
    pos_ = 3;
  }
  if (end_ >= 3 || eof_) at_file_start_ = false;
  return absl::OkStatus();
}

absl::StatusOr<bool> CsvReader::Next() {
  while (true) {
    if (pos_ < end_) {
      absl::StatusOr<int> r = ParseRecord();
      if (!r.ok()) return r.status();
      if (*r == 1) return true;
      if (*r == 2) continue;  // skipped a blank line
      // *r == 0: the record continues past the buffer; read more below.
    } else if (eof_) {
      return false;
    }
    absl::Status s = Refill();
    if (!s.ok()) return s;
    if (pos_ == end_ && eof_) return false;
  }
}

// Returns 1 when a record was parsed, 2 when a blank line was skipped, and
// 0 when the buffer ends before the record does and more input exists.
absl::StatusOr<int> CsvReader::ParseRecord() {
  const char* const base = buffer_.data();
  const size_t end = end_;
  size_t p = pos_;
  int64_t newlines_in_quotes = 0;

  // Blank line (LF or CRLF).
  if (base[p] == '\n' || (base[p] == '\r' && p + 1 < end && base[p + 1] == '\n')) {
    p += base[p] == '\r' ? 2 : 1;
    pos_ = p;
    ++next_line_;
    return 2;
  }
  if (base[p] == '\r' && p + 1 == end && !eof_) return 0;

  refs_.clear();
  scratch_.clear();
  while (true) {
    if (p < end && base[p] == '"') {
      // Quoted field: copy into scratch only when it holds a doubled quote.
      size_t start = ++p;
      bool escaped = false;
      size_t scratch_start = scratch_.size();
      while (true) {
        if (p >= end) {
          if (eof_) {
            record_line_ = next_line_;
            return RecordError("unterminated quoted field");
          }
          return 0;
        }
        char c = base[p];
        if (c == '"') {
          if (p + 1 >= end && !eof_) return 0;
          if (p + 1 < end && base[p + 1] == '"') {
            if (!escaped) {
              scratch_.append(base + start, p - start);
              escaped = true;
            } else {
              scratch_.append(base + start, p - start);
            }
            scratch_.push_back('"');
            p += 2;
            start = p;
            continue;
          }
          break;  // closing quote
        }
        if (c == '\n') ++newlines_in_quotes;
        ++p;
      }
      if (escaped) {
        scratch_.append(base + start, p - start);
        refs_.push_back({scratch_start, scratch_.size() - scratch_start, true});
      } else {
        refs_.push_back({start, p - start, false});
      }
      ++p;  // past the closing quote
      // After a closing quote only a delimiter or the end of the record.
      if (p >= end) {
        if (!eof_) return 0;
        pos_ = p;
        break;
      }
      char c = base[p];
      if (c == ',') {
        ++p;
        if (p >= end && !eof_) return 0;
        if (p >= end) {  // trailing comma at EOF: one more empty field
          refs_.push_back({p, 0, false});
          pos_ = p;
          break;
        }
        continue;
      }
      if (c == '\n') {
        pos_ = p + 1;
        break;
      }
      if (c == '\r') {
        if (p + 1 >= end && !eof_) return 0;
        if (p + 1 >= end || base[p + 1] == '\n') {
          pos_ = p + (p + 1 < end ? 2 : 1);
          break;
        }
      }
      record_line_ = next_line_;
      return RecordError(absl::StrCat("unexpected character after closing quote in field ", refs_.size()));
    }

    // Unquoted field. A CR ends it only as part of CRLF (or at end of file).
    size_t start = p;
    while (true) {
      while (p < end) {
        char c = base[p];
        if (c == ',' || c == '\n' || c == '\r' || c == '"') break;
        ++p;
      }
      if (p >= end || base[p] != '\r') break;
      if (p + 1 >= end) {
        if (!eof_) return 0;
        break;
      }
      if (base[p + 1] == '\n') break;
      ++p;  // a lone CR is data
    }
    if (p >= end) {
      if (!eof_) return 0;
      refs_.push_back({start, p - start, false});
      pos_ = p;
      break;
    }
    const char c = base[p];
    if (c == '"') {
      record_line_ = next_line_;
      return RecordError(absl::StrCat("quote inside unquoted field ", refs_.size() + 1));
    }
    refs_.push_back({start, p - start, false});
    if (c == '\n') {
      pos_ = p + 1;
      break;
    }
    if (c == '\r') {
      pos_ = p + 1 < end ? p + 2 : p + 1;
      break;
    }
    // c == ','
    ++p;
    if (p >= end) {
      if (!eof_) return 0;
      refs_.push_back({p, 0, false});
      pos_ = p;
      break;
    }
  }

  record_line_ = next_line_;
  next_line_ += 1 + newlines_in_quotes;
  fields_.clear();
  fields_.reserve(refs_.size());
  for (const FieldRef& r : refs_) {
    fields_.emplace_back(r.in_scratch ? scratch_.data() + r.offset : base + r.offset, r.size);
  }
  return 1;
}

// ---------------------------------------------------------------- writer

absl::StatusOr<std::unique_ptr<CsvWriter>> CsvWriter::Open(const std::string& path) {
  std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return ErrnoStatus("cannot create", tmp);
  return std::unique_ptr<CsvWriter>(new CsvWriter(path, std::move(tmp), f));
}

CsvWriter::CsvWriter(std::string path, std::string tmp_path, std::FILE* file)
    : path_(std::move(path)), tmp_path_(std::move(tmp_path)), file_(file) {
  buffer_.reserve(kWriterFlushBytes + 4096);
}

CsvWriter::~CsvWriter() {
  if (file_ != nullptr) {
    std::fclose(file_);
    std::remove(tmp_path_.c_str());
  }
}

void CsvWriter::AppendEscaped(absl::string_view value, std::string* out, bool force_quotes) {
  bool needs_quotes = force_quotes || value.find_first_of(",\"\n\r") != absl::string_view::npos;
  if (!needs_quotes) {
    out->append(value.data(), value.size());
    return;
  }
  out->push_back('"');
  for (char c : value) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

void CsvWriter::Field(absl::string_view value) {
  if (row_started_) buffer_.push_back(',');
  if (!row_started_) row_start_ = buffer_.size();
  row_started_ = true;
  // A file starting with the bytes of a UTF-8 byte-order mark would lose them
  // to the reader, which skips a BOM: quote such a first field (found by
  // tests/fuzz/csv_fuzz.cc's round trip).
  const bool bom_like = first_field_ && absl::StartsWith(value, "\xEF\xBB\xBF");
  first_field_ = false;
  AppendEscaped(value, &buffer_, bom_like);
}

void CsvWriter::RawField(absl::string_view value) {
  if (row_started_) buffer_.push_back(',');
  if (!row_started_) row_start_ = buffer_.size();
  row_started_ = true;
  first_field_ = false;
  buffer_.append(value.data(), value.size());
}

void CsvWriter::EndRow() {
  // A row of one empty field would be a blank line, which readers skip:
  // write it as "" (found by tests/fuzz/csv_fuzz.cc's round trip).
  if (row_started_ && buffer_.size() == row_start_) buffer_.append("\"\"");
  buffer_.push_back('\n');
  row_started_ = false;
  MaybeFlush();
}

void CsvWriter::Row(const std::vector<absl::string_view>& values) {
  for (absl::string_view v : values) Field(v);
  EndRow();
}

void CsvWriter::MaybeFlush() {
  if (buffer_.size() >= kWriterFlushBytes && status_.ok()) status_ = FlushBuffer();
}

absl::Status CsvWriter::FlushBuffer() {
  if (!buffer_.empty() && std::fwrite(buffer_.data(), 1, buffer_.size(), file_) != buffer_.size()) {
    return ErrnoStatus("cannot write", tmp_path_);
  }
  buffer_.clear();
  return absl::OkStatus();
}

absl::Status CsvWriter::Close() {
  if (file_ == nullptr) return absl::FailedPreconditionError("CsvWriter closed twice");
  if (status_.ok()) status_ = FlushBuffer();
  if (status_.ok() && std::fflush(file_) != 0) status_ = ErrnoStatus("cannot flush", tmp_path_);
  if (status_.ok() && ::fsync(fileno(file_)) != 0) status_ = ErrnoStatus("cannot sync", tmp_path_);
  if (std::fclose(file_) != 0 && status_.ok()) status_ = ErrnoStatus("cannot close", tmp_path_);
  file_ = nullptr;
  if (!status_.ok()) {
    std::remove(tmp_path_.c_str());
    return status_;
  }
  if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    absl::Status s = ErrnoStatus("cannot rename onto", path_);
    std::remove(tmp_path_.c_str());
    return s;
  }
  return absl::OkStatus();
}

}  // namespace hmrec
