// Text from outside (model names, class names, file names) made safe for a terminal: control
// characters (bytes 0x00-0x1f and 0x7f) become \xNN, so a name cannot move the cursor, clear the
// screen or split a table row. Bytes from 0x80 up pass unchanged (UTF-8 names stay readable).
#pragma once

#include <string>
#include <string_view>

namespace flowpic {

inline std::string printable(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += ch;
    }
  }
  return out;
}

}  // namespace flowpic
