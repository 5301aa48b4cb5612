#pragma once

// Streaming RFC 4180 CSV reading and writing.
//
// CsvReader reads one record at a time from a file through a fixed-size
// buffer, so files of many gigabytes are read in bounded memory. It accepts
// a UTF-8 byte order mark, LF and CRLF line ends, quoted fields holding
// commas, doubled quotes and line breaks, and skips blank lines (as pandas
// does). Malformed input is an error naming file, line and what was wrong.
//
// CsvWriter writes to "<path>.tmp" and renames onto <path> in Close(), so a
// reader never sees a half-written file under the final name.
//
// Neither class is thread-safe; use one per thread.

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace hmrec {

class CsvReader {
 public:
  // Opens `path` for reading. `buffer_bytes` is the initial buffer size; it
  // grows if a single record is longer.
  static absl::StatusOr<std::unique_ptr<CsvReader>> Open(const std::string& path,
                                                         size_t buffer_bytes = size_t{4} << 20);
  ~CsvReader();
  CsvReader(const CsvReader&) = delete;
  CsvReader& operator=(const CsvReader&) = delete;

  // Reads the next record. Returns false at end of file. The views returned
  // by fields() stay valid until the next call.
  absl::StatusOr<bool> Next();

  const std::vector<absl::string_view>& fields() const { return fields_; }
  // Returns the 1-based line on which the current record starts.
  int64_t line() const { return record_line_; }
  const std::string& path() const { return path_; }
  // Returns bytes consumed so far, for progress reports.
  int64_t bytes_consumed() const { return consumed_before_buffer_ + pos_; }
  int64_t file_size() const { return file_size_; }

  // Returns an INVALID_ARGUMENT status "path:line: message" for the
  // current record.
  absl::Status RecordError(absl::string_view message) const;

 private:
  CsvReader(std::string path, int fd, int64_t file_size, size_t buffer_bytes);

  // Parses one record starting at pos_. Returns 1 if a record was parsed,
  // 0 if the buffer ends before the record does (more input is needed),
  // or an error.
  absl::StatusOr<int> ParseRecord();
  absl::Status Refill();

  struct FieldRef {
    size_t offset;
    size_t size;
    bool in_scratch;
  };

  std::string path_;
  int fd_;
  int64_t file_size_;
  std::vector<char> buffer_;
  size_t pos_ = 0;  // start of unparsed data in buffer_
  size_t end_ = 0;  // end of valid data in buffer_
  bool eof_ = false;
  bool at_file_start_ = true;
  int64_t consumed_before_buffer_ = 0;
  int64_t next_line_ = 1;
  int64_t record_line_ = 0;
  std::vector<FieldRef> refs_;
  std::string scratch_;
  std::vector<absl::string_view> fields_;
};

class CsvWriter {
 public:
  // Creates "<path>.tmp" for writing; Close() renames it onto `path`.
  static absl::StatusOr<std::unique_ptr<CsvWriter>> Open(const std::string& path);
  // Removes the temporary file if Close() was not reached.
  ~CsvWriter();
  CsvWriter(const CsvWriter&) = delete;
  CsvWriter& operator=(const CsvWriter&) = delete;

  // Appends a field, quoting it when it holds a comma, quote or line break.
  void Field(absl::string_view value);
  // Appends a field written as is; the caller guarantees it needs no quotes.
  void RawField(absl::string_view value);
  void EndRow();
  // Writes a whole header or row.
  void Row(const std::vector<absl::string_view>& values);

  // Flushes, syncs and renames the file into place.
  absl::Status Close();

  // Appends `value` to `out` with RFC 4180 quoting when needed.
  // `force_quotes`: quote even a value that would not need it.
  static void AppendEscaped(absl::string_view value, std::string* out, bool force_quotes = false);

 private:
  CsvWriter(std::string path, std::string tmp_path, std::FILE* file);
  absl::Status FlushBuffer();
  void MaybeFlush();

  std::string path_;
  std::string tmp_path_;
  std::FILE* file_;
  std::string buffer_;
  bool row_started_ = false;
  size_t row_start_ = 0;     // where the current row begins in buffer_
  bool first_field_ = true;  // nothing written to the file yet
  absl::Status status_;
};

}  // namespace hmrec
