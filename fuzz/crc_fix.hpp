// The model (.fpm) and dataset (.fpd) files end with a CRC-32 of everything before it, checked
// before anything else is trusted. A mutated input almost never carries the right CRC, so a
// fuzzer fed the bytes as they are only ever reaches the checksum test. with_fixed_crc() returns
// the input with its last four bytes replaced by the CRC-32 (zlib, little-endian) of the rest:
// the loaders' parsing behind the checksum sees every mutation. Targets run both.
#pragma once

#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

namespace flowpic::fuzz {

inline std::string with_fixed_crc(const uint8_t* data, size_t size) {
  std::string s(reinterpret_cast<const char*>(data), size);
  if (size < 4) return s;
  uLong c = crc32(0L, Z_NULL, 0);
  for (size_t off = 0; off < size - 4;) {  // zlib takes uInt lengths
    const uInt n = static_cast<uInt>(std::min<size_t>(size - 4 - off, 1u << 30));
    c = crc32(c, data + off, n);
    off += n;
  }
  for (int i = 0; i < 4; ++i) s[size - 4 + static_cast<size_t>(i)] = static_cast<char>((c >> (8 * i)) & 0xff);
  return s;
}

}  // namespace flowpic::fuzz
