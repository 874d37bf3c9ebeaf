#include "tools/class_map.hpp"

#include <fnmatch.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace flowpic {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

ClassMap ClassMap::parse(std::string_view text, const std::string& what) {
  ClassMap m;
  m.path_ = what;
  m.crc_ = static_cast<uint32_t>(::crc32(0L, reinterpret_cast<const Bytef*>(text.data()), static_cast<uInt>(text.size())));
  size_t pos = 0;
  int line_no = 0;
  bool header = false;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = trim(text.substr(pos, end - pos));
    pos = end + 1;
    ++line_no;
    auto fail = [&](const std::string& why) {
      return ClassMapError(what + ":" + std::to_string(line_no) + ": " + why);
    };
    if (line_no == 1) {
      constexpr std::string_view kMagic = "# flowpic class map, version ";
      if (line.substr(0, kMagic.size()) != kMagic)
        throw fail("the first line must be '# flowpic class map, version N'");
      const std::string v(line.substr(kMagic.size()));
      char* e = nullptr;
      const long n = std::strtol(v.c_str(), &e, 10);
      if (v.empty() || *e != '\0' || n < 1 || n > 1000000) throw fail("bad version '" + v + "'");
      m.version_ = static_cast<int>(n);
      continue;
    }
    if (line.empty() || line.front() == '#') continue;
    std::vector<std::string> cols;
    size_t s = 0;
    while (true) {
      const size_t c = line.find(',', s);
      cols.emplace_back(trim(line.substr(s, c == std::string_view::npos ? std::string_view::npos : c - s)));
      if (c == std::string_view::npos) break;
      s = c + 1;
    }
    if (cols.size() != 3) throw fail("expected 3 columns (source,label,class), got " + std::to_string(cols.size()));
    if (!header) {
      if (cols[0] != "source" || cols[1] != "label" || cols[2] != "class")
        throw fail("the header must be 'source,label,class'");
      header = true;
      continue;
    }
    for (const auto& c : cols)
      if (c.empty()) throw fail("empty column");
    Row r{cols[0], cols[1], -1};
    if (cols[2] != "-") {
      auto it = std::find(m.classes_.begin(), m.classes_.end(), cols[2]);
      if (it == m.classes_.end()) {
        m.classes_.push_back(cols[2]);
        it = m.classes_.end() - 1;
      }
      r.cls = static_cast<int>(it - m.classes_.begin());
    }
    m.rows_.push_back(std::move(r));
    if (end == text.size()) break;
  }
  if (m.version_ == 0) throw ClassMapError(what + ": empty file");
  if (!header) throw ClassMapError(what + ": no 'source,label,class' header");
  if (m.classes_.size() < 2) throw ClassMapError(what + ": fewer than 2 classes");
  return m;
}

ClassMap ClassMap::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ClassMapError(path + ": cannot open: " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), path);
}

int ClassMap::map(const std::string& source, const std::string& raw_label, bool* dropped) const {
  for (const auto& r : rows_) {
    if (r.source != source) continue;
    if (fnmatch(r.glob.c_str(), raw_label.c_str(), 0) == 0) {
      if (dropped) *dropped = r.cls < 0;
      return r.cls;
    }
  }
  if (dropped) *dropped = false;
  return -1;
}

int ClassMap::map(const std::string& source, const std::string& raw_label) const {
  return map(source, raw_label, nullptr);
}

}  // namespace flowpic
