// Flow key (one direction; see canonicalize for both) shared by the parser, the flow tables and every output.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace flowpic {

// 40 bytes, no implicit padding, so it can be hashed and compared as raw bytes.
// IPv4 addresses sit in the first 4 bytes of src/dst, the rest is zero.
struct FlowKey {
  uint8_t src[16];
  uint8_t dst[16];
  uint16_t sport;   // host byte order; 0 when the protocol has no ports or for later fragments
  uint16_t dport;
  uint8_t proto;    // IP protocol number (6 TCP, 17 UDP, ...)
  uint8_t family;   // 4 or 6
  uint8_t flags;    // kFlagFragment: keyed without ports (non-first IPv4/IPv6 fragment)
  uint8_t pad;      // always 0
  static constexpr uint8_t kFlagFragment = 1;
};
static_assert(sizeof(FlowKey) == 40, "FlowKey must stay 40 packed bytes");

inline bool operator==(const FlowKey& a, const FlowKey& b) noexcept {
  return std::memcmp(&a, &b, sizeof(FlowKey)) == 0;
}
inline bool operator!=(const FlowKey& a, const FlowKey& b) noexcept { return !(a == b); }
// Total order (bytewise) for deterministic sorting of outputs.
inline bool operator<(const FlowKey& a, const FlowKey& b) noexcept {
  return std::memcmp(&a, &b, sizeof(FlowKey)) < 0;
}

// Orders the two endpoints of `k` so that both directions of a connection give the same key:
// the (address, port) pair that compares smaller (bytewise address, then port) becomes the
// source. Returns true when it swapped them (the packet goes from the larger endpoint to the
// smaller). Used by bidirectional flow tables; a fragment's key (no ports) is ordered by address.
// Swaps source and destination (addresses and ports) in place, with whole-word moves (two
// 16-byte halves, the two ports as one 32-bit word): a later 8-byte load of the key (the hash)
// is not stalled behind narrow stores.
inline void swap_endpoints(FlowKey& k) noexcept {
  uint8_t t[16];
  std::memcpy(t, k.src, sizeof(t));
  std::memcpy(k.src, k.dst, sizeof(t));
  std::memcpy(k.dst, t, sizeof(t));
  uint32_t ports;
  std::memcpy(&ports, &k.sport, sizeof ports);
  ports = (ports >> 16) | (ports << 16);
  std::memcpy(&k.sport, &ports, sizeof ports);
}
inline bool canonicalize(FlowKey& k) noexcept {
  const int c = std::memcmp(k.src, k.dst, sizeof(k.src));
  if (c < 0 || (c == 0 && k.sport <= k.dport)) return false;
  swap_endpoints(k);
  return true;
}
// The same key seen from the other side (source and destination swapped).
inline FlowKey reversed(FlowKey k) noexcept {
  swap_endpoints(k);
  return k;
}

// 64-bit hash of the key (XXH3, seeded); used by the flow tables. The seed is drawn from the
// kernel's random source once per process, so hash values differ between runs and keys that
// collide in one process's tables cannot be computed in advance (hash flooding, issue 16).
uint64_t flow_hash(const FlowKey& k) noexcept;
uint64_t flow_hash_seed() noexcept;
// Sets the seed (tests and benchmarks that need repeatable hashes). Call before any table is
// filled: a table's index holds hashes made with the seed of the time.
void set_flow_hash_seed(uint64_t seed) noexcept;

// "tcp 10.0.0.1:443 -> 10.0.0.2:51000", "udp [2001:db8::1]:53 -> [2001:db8::2]:4000",
// "proto-47 10.0.0.1 -> 10.0.0.2"; fragments keyed without ports end in " frag".
std::string to_string(const FlowKey& k);

// Parses the form written by to_string (and "17 1.2.3.4:1 -> 5.6.7.8:2" with a numeric
// protocol). Returns false with a reason in *err on anything else.
bool parse_flow_key(std::string_view text, FlowKey& out, std::string* err = nullptr);

// Address as text (inet_ntop form).
std::string address_string(const FlowKey& k, bool source);
const char* proto_name(uint8_t proto) noexcept;  // "tcp", "udp", "icmp", ... or nullptr

}  // namespace flowpic
