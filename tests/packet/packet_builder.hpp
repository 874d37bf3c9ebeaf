// Hand-built packets with known answers for the parser tests.
#pragma once

#include <arpa/inet.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace flowpic::testing {

struct Bytes {
  std::vector<uint8_t> b;

  Bytes& u8(uint8_t v) { b.push_back(v); return *this; }
  Bytes& u16(uint16_t v) { b.push_back(uint8_t(v >> 8)); b.push_back(uint8_t(v)); return *this; }
  Bytes& u16le(uint16_t v) { b.push_back(uint8_t(v)); b.push_back(uint8_t(v >> 8)); return *this; }
  Bytes& u32(uint32_t v) { u16(uint16_t(v >> 16)); return u16(uint16_t(v)); }
  Bytes& u32le(uint32_t v) { u16le(uint16_t(v)); return u16le(uint16_t(v >> 16)); }
  Bytes& zeros(std::size_t n) { b.insert(b.end(), n, 0); return *this; }
  Bytes& fill(std::size_t n, uint8_t v) { b.insert(b.end(), n, v); return *this; }
  Bytes& raw(const std::vector<uint8_t>& v) { b.insert(b.end(), v.begin(), v.end()); return *this; }
  Bytes& ip4(const char* a) { uint8_t x[4]; inet_pton(AF_INET, a, x); b.insert(b.end(), x, x + 4); return *this; }
  Bytes& ip6(const char* a) { uint8_t x[16]; inet_pton(AF_INET6, a, x); b.insert(b.end(), x, x + 16); return *this; }
  std::size_t size() const { return b.size(); }
  void set16(std::size_t at, uint16_t v) { b[at] = uint8_t(v >> 8); b[at + 1] = uint8_t(v); }
};

// Ethernet header; `tpids` become VLAN tags (TPID + TCI with VLAN id 100 + i) before `type`.
inline Bytes eth(uint16_t type, std::initializer_list<uint16_t> tpids = {}) {
  Bytes p;
  p.raw({0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb});
  uint16_t vid = 100;
  for (uint16_t tpid : tpids) p.u16(tpid).u16(vid++);
  p.u16(type);
  return p;
}

// Linux cooked capture header (DLT_LINUX_SLL) with `protocol` as the ethertype.
inline Bytes sll(uint16_t protocol) {
  Bytes p;
  p.u16(0).u16(1).u16(6).raw({0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0, 0}).u16(protocol);
  return p;
}

// IPv4 header. `total_len` < 0 means "fill in later" (see finish_ipv4). `frag` is the
// flags+offset field. Options are appended (their length must be a multiple of 4).
inline std::size_t ipv4(Bytes& p, const char* src, const char* dst, uint8_t proto, uint16_t frag = 0,
                        const std::vector<uint8_t>& options = {}) {
  const std::size_t start = p.size();
  p.u8(uint8_t(0x40 | ((20 + options.size()) / 4))).u8(0).u16(0).u16(0x1234).u16(frag).u8(64).u8(proto).u16(0);
  p.ip4(src).ip4(dst).raw(options);
  return start;
}
// Sets the IPv4 total length to everything from `start` to the end.
inline void finish_ipv4(Bytes& p, std::size_t start) { p.set16(start + 2, uint16_t(p.size() - start)); }

inline std::size_t ipv6(Bytes& p, const char* src, const char* dst, uint8_t next) {
  const std::size_t start = p.size();
  p.u32(0x60000000).u16(0).u8(next).u8(64).ip6(src).ip6(dst);
  return start;
}
inline void finish_ipv6(Bytes& p, std::size_t start) { p.set16(start + 4, uint16_t(p.size() - start - 40)); }

// Generic IPv6 extension header (hop-by-hop, routing, destination options): 8 * (1 + units) bytes.
inline void ext6(Bytes& p, uint8_t next, uint8_t units = 0) {
  p.u8(next).u8(units).fill(6 + 8u * units, 0x01);
}
inline void frag6(Bytes& p, uint8_t next, uint16_t offset_units, bool more) {
  p.u8(next).u8(0).u16(uint16_t((offset_units << 3) | (more ? 1 : 0))).u32(0xabcdef01);
}
// TCP/UDP/SCTP start with the two ports; the rest is filler of `extra` bytes.
inline void ports(Bytes& p, uint16_t sport, uint16_t dport, std::size_t extra = 16) {
  p.u16(sport).u16(dport).fill(extra, 0x5a);
}

}  // namespace flowpic::testing
