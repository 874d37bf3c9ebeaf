// Packet parsing shared by the dataplane (mbuf data) and the offline pcap reader.
// Never reads past `caplen`; every packet that yields no flow key is counted by reason.
#pragma once

#include <array>
#include <cstdint>

#include "common/flow_key.hpp"

namespace flowpic {

// Link layers we parse. Pcap DLT values map onto these (link_type_from_dlt).
enum class LinkType : uint8_t {
  kEthernet = 0,     // DLT_EN10MB (1); also what DPDK ports deliver
  kRawIp = 1,        // DLT_RAW (12 / 14 on some BSDs) and LINKTYPE_RAW (101), LINKTYPE_IPV4/6 (228/229)
  kLinuxSll = 2,     // DLT_LINUX_SLL (113)
  kBsdLoopback = 3,  // DLT_NULL (0) and DLT_LOOP (108): 4-byte address family header
  kUnsupported = 255,
};
LinkType link_type_from_dlt(int dlt) noexcept;
const char* link_type_name(LinkType t) noexcept;

// Outcome of parsing one packet. kOk and kOkFragment give a flow key; the rest are
// reasons a packet gets no flow (it is still forwarded by the dataplane).
enum class ParseResult : uint8_t {
  kOk = 0,
  kOkFragment,         // IPv4/IPv6 non-first fragment: keyed without ports (flags = kFlagFragment)
  kNotIp,              // ARP, LLDP, ... (valid, just not IP)
  kUnsupportedLink,    // link type we do not parse
  kTruncatedL2,        // capture ends inside the link header / VLAN tags
  kTruncatedL3,        // capture ends inside the IP header (or its extension headers)
  kTruncatedL4,        // capture ends before the TCP/UDP ports
  kBadIpVersion,       // version nibble does not match the ethertype / family
  kBadIpHeader,        // IPv4 IHL < 5, total length < header, bad extension header chain
  kCount_
};
constexpr std::size_t kParseResultCount = static_cast<std::size_t>(ParseResult::kCount_);
const char* parse_result_name(ParseResult r) noexcept;  // "ok", "truncated_l3", ...

struct ParsedPacket {
  FlowKey key;
  uint32_t ip_len = 0;     // IP packet length: IPv4 total length, IPv6 payload length + 40.
                           // When the header says 0 (TSO/offload captures) the captured IP bytes.
  uint16_t l3_offset = 0;  // offset of the IP header from the start of the buffer
  uint8_t vlan_depth = 0;  // 802.1Q / QinQ tags skipped
};

// Parses one packet starting at `data` (link header first). Fills `out` on kOk / kOkFragment.
// Ethernet and Linux SLL: any number of 802.1Q / 802.1ad / 0x9100 tags, then optionally a PPPoE
// session (PPP IPv4 / IPv6; other PPP protocols are kNotIp). BSD loopback: the address family in
// either byte order (AF_INET 2, AF_INET6 24 / 28 / 30). IPv6: hop-by-hop, routing, destination
// options, fragment, AH, mobility, HIP and shim6 headers are walked (at most 16); ESP and
// "no next header" are keyed by protocol without ports. Ports come from the first 4 bytes of
// TCP, UDP and SCTP only; when the IP length leaves no room for them the result is kBadIpHeader.
ParseResult parse_packet(const uint8_t* data, uint32_t caplen, LinkType link, ParsedPacket& out) noexcept;

// Per-reason counters (one per lcore / reader; no atomics).
struct ParseCounters {
  std::array<uint64_t, kParseResultCount> by_result{};
  void add(ParseResult r) noexcept { ++by_result[static_cast<std::size_t>(r)]; }
  uint64_t get(ParseResult r) const noexcept { return by_result[static_cast<std::size_t>(r)]; }
  uint64_t total() const noexcept;
  ParseCounters& operator+=(const ParseCounters& o) noexcept;
};

}  // namespace flowpic
