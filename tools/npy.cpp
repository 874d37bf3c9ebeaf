#include "tools/npy.hpp"

#include <bit>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

namespace flowpic {

static_assert(std::endian::native == std::endian::little, "the .npy reader assumes a little-endian host");

int64_t NpyArray::size() const noexcept {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;

// The header is a Python dict literal, e.g. {'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }.
// We parse exactly the subset numpy writes: string keys, values that are strings, booleans
// or tuples of non-negative integers.
struct HeaderValue {
  enum Kind { kString, kBool, kTuple } kind = kString;
  std::string str;
  bool boolean = false;
  std::vector<int64_t> tuple;
};

class DictParser {
 public:
  explicit DictParser(const std::string& s) : s_(s) {}

  std::map<std::string, HeaderValue> parse() {
    std::map<std::string, HeaderValue> out;
    skip_ws();
    expect('{');
    skip_ws();
    while (peek() != '}') {
      std::string key = parse_string();
      skip_ws();
      expect(':');
      skip_ws();
      if (out.count(key)) fail("duplicate key '" + key + "'");
      out[key] = parse_value();
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        skip_ws();
      } else if (peek() != '}') {
        fail("expected ',' or '}'");
      }
    }
    ++pos_;
    skip_ws();
    if (pos_ != s_.size()) fail("text after the closing '}'");
    return out;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw NpyError("header " + why + " at column " + std::to_string(pos_));
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n')) ++pos_;
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string parse_string() {
    const char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted string");
    ++pos_;
    const size_t end = s_.find(q, pos_);
    if (end == std::string::npos) fail("unterminated string");
    std::string v = s_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return v;
  }
  int64_t parse_int() {
    if (peek() < '0' || peek() > '9') fail("expected a non-negative integer");
    int64_t v = 0;
    while (peek() >= '0' && peek() <= '9') {
      if (v > (std::numeric_limits<int64_t>::max() - 9) / 10) fail("integer too large");
      v = v * 10 + (s_[pos_++] - '0');
    }
    // numpy on some platforms writes 3L
    if (peek() == 'L') ++pos_;
    return v;
  }
  HeaderValue parse_value() {
    HeaderValue v;
    const char c = peek();
    if (c == '\'' || c == '"') {
      v.kind = HeaderValue::kString;
      v.str = parse_string();
    } else if (s_.compare(pos_, 4, "True") == 0) {
      v.kind = HeaderValue::kBool;
      v.boolean = true;
      pos_ += 4;
    } else if (s_.compare(pos_, 5, "False") == 0) {
      v.kind = HeaderValue::kBool;
      pos_ += 5;
    } else if (c == '(') {
      v.kind = HeaderValue::kTuple;
      ++pos_;
      skip_ws();
      while (peek() != ')') {
        v.tuple.push_back(parse_int());
        skip_ws();
        if (peek() == ',') {
          ++pos_;
          skip_ws();
        } else if (peek() != ')') {
          fail("expected ',' or ')' in shape");
        }
      }
      ++pos_;
    } else {
      fail("unsupported value");
    }
    return v;
  }

  const std::string& s_;
  size_t pos_ = 0;
};

}  // namespace

NpyArray parse_npy(const std::string& bytes, const std::string& what) {
  auto fail = [&](const std::string& why) -> NpyError { return NpyError(what + ": " + why); };
  if (bytes.size() < kMagicLen + 2 || std::memcmp(bytes.data(), kMagic, kMagicLen) != 0)
    throw fail("not a .npy file (bad magic)");
  const auto major = static_cast<uint8_t>(bytes[6]);
  size_t header_len = 0, offset = 0;
  if (major == 1) {
    if (bytes.size() < 10) throw fail("truncated in the preamble");
    header_len = static_cast<uint8_t>(bytes[8]) | (static_cast<size_t>(static_cast<uint8_t>(bytes[9])) << 8);
    offset = 10;
  } else if (major == 2) {
    if (bytes.size() < 12) throw fail("truncated in the preamble");
    uint32_t n;
    std::memcpy(&n, bytes.data() + 8, 4);
    header_len = n;
    offset = 12;
  } else {
    throw fail("unsupported .npy format version " + std::to_string(major) + " (only 1 and 2 are read)");
  }
  if (bytes.size() - offset < header_len)
    throw fail("truncated in the header (" + std::to_string(header_len) + " header bytes announced)");
  std::string header = bytes.substr(offset, header_len);
  if (header.empty() || header.back() != '\n') throw fail("header does not end in a newline");
  header.pop_back();
  while (!header.empty() && header.back() == ' ') header.pop_back();

  std::map<std::string, HeaderValue> dict;
  try {
    dict = DictParser(header).parse();
  } catch (const NpyError& e) {
    throw fail(e.what());
  }
  for (const char* k : {"descr", "fortran_order", "shape"})
    if (!dict.count(k)) throw fail(std::string("header lacks '") + k + "'");
  if (dict.size() != 3) throw fail("header has keys other than descr, fortran_order, shape");
  const auto& descr = dict["descr"];
  if (descr.kind != HeaderValue::kString) throw fail("descr is not a string");
  if (descr.str != "<f8")
    throw fail("dtype '" + descr.str + "' is not supported (only little-endian float64 '<f8')");
  const auto& fortran = dict["fortran_order"];
  if (fortran.kind != HeaderValue::kBool) throw fail("fortran_order is not True/False");
  if (fortran.boolean) throw fail("Fortran-ordered arrays are not supported (save with C order)");
  const auto& shape = dict["shape"];
  if (shape.kind != HeaderValue::kTuple) throw fail("shape is not a tuple");

  NpyArray a;
  a.shape = shape.tuple;
  const size_t data_off = offset + header_len;
  const size_t avail = bytes.size() - data_off;
  // Element count in 128 bits so a hostile shape cannot overflow it.
  unsigned __int128 count128 = 1;
  for (auto d : a.shape) {
    count128 *= static_cast<uint64_t>(d);
    if (count128 > avail) count128 = static_cast<unsigned __int128>(avail) + 1;  // saturate
  }
  const uint64_t count = static_cast<uint64_t>(count128);
  if (count * 8 > avail)
    throw fail("data truncated: shape needs " + std::to_string(count * 8) + " bytes, file has " +
               std::to_string(avail));
  if (count * 8 < avail)
    throw fail(std::to_string(avail - count * 8) + " unexpected bytes after the data");
  a.data.resize(count);
  if (count) std::memcpy(a.data.data(), bytes.data() + data_off, count * 8);
  return a;
}

NpyArray read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw NpyError(path + ": cannot open: " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw NpyError(path + ": read error");
  return parse_npy(ss.str(), path);
}

std::string npy_bytes(const std::vector<int64_t>& shape, const std::vector<double>& data) {
  std::string dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < shape.size(); ++i) {
    dict += std::to_string(shape[i]);
    if (shape.size() == 1 || i + 1 < shape.size()) dict += ",";
    if (i + 1 < shape.size()) dict += " ";
  }
  dict += "), }";
  // Pad so the data starts at a multiple of 64, as numpy does.
  size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';
  std::string out(kMagic, kMagicLen);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(dict.size() & 0xff);
  out += static_cast<char>((dict.size() >> 8) & 0xff);
  out += dict;
  out.append(reinterpret_cast<const char*>(data.data()), data.size() * 8);
  return out;
}

}  // namespace flowpic
