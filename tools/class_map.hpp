// The label mapping of the corpus: (source, raw label) -> class, read from a versioned CSV
// file (corpus/class-map.csv), never from code. Raw labels are what a source says of a flow
// (nDPI "category/app", a VCA activity, an fgnet app package, ...); classes are what models
// learn (VoIP, Video, File_Transfer, Chat, Browsing, other).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace flowpic {

struct ClassMapError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// File format (UTF-8 text):
//   # flowpic class map, version N        <- first line; N is recorded in every dataset
//   source,label,class                     <- header
//   ndpi,VoIP/*,VoIP                       <- rows: label is a glob (fnmatch: * ? [..]);
//   ndpi,Media/RTP,VoIP                       the FIRST row of a source whose glob matches wins
//   ndpi,*,-                               <- class "-": the window is not used (dropped, counted)
// Lines starting with '#' and blank lines are skipped. Classes keep the order in which the
// file first names them.
class ClassMap {
 public:
  static ClassMap parse(std::string_view text, const std::string& what);  // throws ClassMapError
  static ClassMap load(const std::string& path);                          // throws ClassMapError

  // Class index of (source, raw label); -1 when the matching row says "-" or no row matches.
  int map(const std::string& source, const std::string& raw_label) const;
  // Same, telling "dropped by a '-' row" (true) from "no row matches" (false) when -1.
  int map(const std::string& source, const std::string& raw_label, bool* dropped) const;

  const std::vector<std::string>& classes() const noexcept { return classes_; }
  int version() const noexcept { return version_; }
  const std::string& path() const noexcept { return path_; }
  uint32_t crc32() const noexcept { return crc_; }  // of the file's bytes (recorded in datasets)
  size_t rows() const noexcept { return rows_.size(); }

 private:
  struct Row {
    std::string source, glob;
    int cls;  // -1 = drop
  };
  std::vector<Row> rows_;
  std::vector<std::string> classes_;
  int version_ = 0;
  std::string path_;
  uint32_t crc_ = 0;
};

}  // namespace flowpic
