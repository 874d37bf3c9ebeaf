#include "packet/parse.hpp"

#include <cstring>

namespace flowpic {

namespace {

constexpr uint16_t kEtherIpv4 = 0x0800;
constexpr uint16_t kEtherIpv6 = 0x86DD;
constexpr uint16_t kEtherVlan = 0x8100;     // 802.1Q
constexpr uint16_t kEtherQinQ = 0x88A8;     // 802.1ad
constexpr uint16_t kEtherQinQOld = 0x9100;  // pre-standard QinQ
constexpr uint16_t kEtherPppoeSession = 0x8864;
constexpr uint16_t kPppIpv4 = 0x0021;
constexpr uint16_t kPppIpv6 = 0x0057;

constexpr uint32_t kEthernetHeader = 14;
constexpr uint32_t kVlanTag = 4;
constexpr uint32_t kPppoeHeader = 8;  // PPPoE session header (6) + PPP protocol (2)
constexpr uint32_t kSllHeader = 16;
constexpr uint32_t kLoopbackHeader = 4;
constexpr uint32_t kIpv4MinHeader = 20;
constexpr uint32_t kIpv6Header = 40;
constexpr uint32_t kPortBytes = 4;  // sport + dport: all we need of TCP/UDP/SCTP
// A real chain has a handful of extension headers; a longer one is an attack or garbage.
constexpr int kMaxIpv6ExtHeaders = 16;

constexpr uint8_t kProtoHopByHop = 0;
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;
constexpr uint8_t kProtoRouting = 43;
constexpr uint8_t kProtoFragment = 44;
constexpr uint8_t kProtoEsp = 50;
constexpr uint8_t kProtoAh = 51;
constexpr uint8_t kProtoNoNext = 59;
constexpr uint8_t kProtoDestOpts = 60;
constexpr uint8_t kProtoMobility = 135;
constexpr uint8_t kProtoHip = 139;
constexpr uint8_t kProtoShim6 = 140;
constexpr uint8_t kProtoSctp = 132;

// BSD address families as they appear in DLT_NULL / DLT_LOOP headers.
constexpr uint32_t kBsdAfInet = 2;
constexpr uint32_t kBsdAfInet6Bsd = 24;      // NetBSD, OpenBSD, BSD/OS
constexpr uint32_t kBsdAfInet6FreeBsd = 28;  // FreeBSD, DragonFly
constexpr uint32_t kBsdAfInet6Darwin = 30;   // macOS, iOS

inline uint16_t be16(const uint8_t* p) noexcept { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

// True when [off, off + n) lies inside the captured bytes; never overflows.
inline bool captured(uint32_t caplen, uint32_t off, uint32_t n) noexcept {
  return off <= caplen && caplen - off >= n;
}

inline bool has_ports(uint8_t proto) noexcept {
  return proto == kProtoTcp || proto == kProtoUdp || proto == kProtoSctp;
}

// Reads the ports of an upper-layer header at `l4`. `ip_end` is where the IP packet says it ends
// (it may lie beyond caplen on snap-length captures).
ParseResult finish_l4(const uint8_t* data, uint32_t caplen, uint32_t l4, uint64_t ip_end,
                      uint8_t proto, FlowKey& key) noexcept {
  key.proto = proto;
  if (!has_ports(proto)) return ParseResult::kOk;
  if (static_cast<uint64_t>(l4) + kPortBytes > ip_end) return ParseResult::kBadIpHeader;
  if (!captured(caplen, l4, kPortBytes)) return ParseResult::kTruncatedL4;
  key.sport = be16(data + l4);
  key.dport = be16(data + l4 + 2);
  return ParseResult::kOk;
}

ParseResult parse_ipv4(const uint8_t* data, uint32_t caplen, uint32_t l3, ParsedPacket& out) noexcept {
  if (!captured(caplen, l3, kIpv4MinHeader)) return ParseResult::kTruncatedL3;
  const uint8_t* ip = data + l3;
  if ((ip[0] >> 4) != 4) return ParseResult::kBadIpVersion;
  const uint32_t header_len = (ip[0] & 0x0Fu) * 4u;
  if (header_len < kIpv4MinHeader) return ParseResult::kBadIpHeader;
  if (!captured(caplen, l3, header_len)) return ParseResult::kTruncatedL3;
  const uint32_t total_len = be16(ip + 2);
  uint64_t ip_end;
  if (total_len == 0) {
    // TSO/LRO captures: the NIC fills the length in later; what was captured is the packet.
    out.ip_len = caplen - l3;
    ip_end = caplen;
  } else {
    if (total_len < header_len) return ParseResult::kBadIpHeader;
    out.ip_len = total_len;
    ip_end = static_cast<uint64_t>(l3) + total_len;
  }
  FlowKey& key = out.key;
  key.family = 4;
  std::memcpy(key.src, ip + 12, 4);
  std::memcpy(key.dst, ip + 16, 4);
  const uint8_t proto = ip[9];
  const uint16_t frag_offset = be16(ip + 6) & 0x1FFFu;
  if (frag_offset != 0) {
    // Later fragments carry no L4 header: keyed by addresses and protocol only.
    key.proto = proto;
    key.flags = FlowKey::kFlagFragment;
    return ParseResult::kOkFragment;
  }
  return finish_l4(data, caplen, l3 + header_len, ip_end, proto, key);
}

ParseResult parse_ipv6(const uint8_t* data, uint32_t caplen, uint32_t l3, ParsedPacket& out) noexcept {
  if (!captured(caplen, l3, kIpv6Header)) return ParseResult::kTruncatedL3;
  const uint8_t* ip = data + l3;
  if ((ip[0] >> 4) != 6) return ParseResult::kBadIpVersion;
  const uint32_t payload_len = be16(ip + 4);
  uint64_t ip_end;
  if (payload_len == 0) {
    // TSO captures and jumbograms (RFC 2675): take what was captured.
    out.ip_len = caplen - l3;
    ip_end = caplen;
  } else {
    out.ip_len = payload_len + kIpv6Header;
    ip_end = static_cast<uint64_t>(l3) + kIpv6Header + payload_len;
  }
  FlowKey& key = out.key;
  key.family = 6;
  std::memcpy(key.src, ip + 8, 16);
  std::memcpy(key.dst, ip + 24, 16);

  uint8_t next = ip[6];
  uint32_t off = l3 + kIpv6Header;
  for (int depth = 0;; ++depth) {
    switch (next) {
      case kProtoHopByHop:
      case kProtoRouting:
      case kProtoDestOpts:
      case kProtoMobility:
      case kProtoHip:
      case kProtoShim6:
      case kProtoAh:
      case kProtoFragment:
        break;
      case kProtoEsp:
      case kProtoNoNext:
        // Nothing readable follows: the flow is the protocol between the two addresses.
        key.proto = next;
        return ParseResult::kOk;
      default:
        return finish_l4(data, caplen, off, ip_end, next, key);
    }
    if (depth >= kMaxIpv6ExtHeaders) return ParseResult::kBadIpHeader;
    // Every extension header starts with (next header, length); the fragment header is 8 bytes.
    if (static_cast<uint64_t>(off) + 8 > ip_end) return ParseResult::kBadIpHeader;
    if (!captured(caplen, off, 8)) return ParseResult::kTruncatedL3;
    const uint8_t* h = data + off;
    uint32_t len;
    if (next == kProtoFragment) {
      len = 8;
      if ((be16(h + 2) & 0xFFF8u) != 0) {
        key.proto = h[0];
        key.flags = FlowKey::kFlagFragment;
        return ParseResult::kOkFragment;
      }
    } else if (next == kProtoAh) {
      len = (static_cast<uint32_t>(h[1]) + 2u) * 4u;  // RFC 4302: 32-bit words minus 2
    } else {
      len = (static_cast<uint32_t>(h[1]) + 1u) * 8u;  // RFC 8200: 8-octet units minus 1
    }
    if (static_cast<uint64_t>(off) + len > ip_end) return ParseResult::kBadIpHeader;
    if (!captured(caplen, off, len)) return ParseResult::kTruncatedL3;
    next = h[0];
    off += len;
  }
}

// Dispatches on an ethertype, skipping any 802.1Q / QinQ tags and a PPPoE session header first.
ParseResult parse_ethertype(const uint8_t* data, uint32_t caplen, uint32_t off, uint16_t type,
                            ParsedPacket& out) noexcept {
  while (type == kEtherVlan || type == kEtherQinQ || type == kEtherQinQOld) {
    if (!captured(caplen, off, kVlanTag)) return ParseResult::kTruncatedL2;
    type = be16(data + off + 2);
    off += kVlanTag;
    if (out.vlan_depth < 255) ++out.vlan_depth;
  }
  if (type == kEtherPppoeSession) {
    // Access networks carry subscriber traffic in PPPoE sessions (RFC 2516), often inside VLANs.
    if (!captured(caplen, off, kPppoeHeader)) return ParseResult::kTruncatedL2;
    const uint16_t ppp = be16(data + off + 6);
    off += kPppoeHeader;
    if (ppp == kPppIpv4) type = kEtherIpv4;
    else if (ppp == kPppIpv6) type = kEtherIpv6;
    else return ParseResult::kNotIp;  // LCP, IPCP, ... session control
  }
  out.l3_offset = static_cast<uint16_t>(off > 0xFFFFu ? 0xFFFFu : off);
  if (type == kEtherIpv4) return parse_ipv4(data, caplen, off, out);
  if (type == kEtherIpv6) return parse_ipv6(data, caplen, off, out);
  return ParseResult::kNotIp;
}

ParseResult parse_by_version(const uint8_t* data, uint32_t caplen, uint32_t off, ParsedPacket& out) noexcept {
  if (!captured(caplen, off, 1)) return ParseResult::kTruncatedL3;
  out.l3_offset = static_cast<uint16_t>(off);
  switch (data[off] >> 4) {
    case 4: return parse_ipv4(data, caplen, off, out);
    case 6: return parse_ipv6(data, caplen, off, out);
    default: return ParseResult::kBadIpVersion;
  }
}

ParseResult parse_loopback(const uint8_t* data, uint32_t caplen, ParsedPacket& out) noexcept {
  if (!captured(caplen, 0, kLoopbackHeader)) return ParseResult::kTruncatedL2;
  // DLT_NULL holds the family in the capturing host's byte order, DLT_LOOP in network order:
  // accept either reading, as the values involved never collide.
  const uint32_t big = (uint32_t{data[0]} << 24) | (uint32_t{data[1]} << 16) | (uint32_t{data[2]} << 8) | data[3];
  const uint32_t little = (uint32_t{data[3]} << 24) | (uint32_t{data[2]} << 16) | (uint32_t{data[1]} << 8) | data[0];
  out.l3_offset = kLoopbackHeader;
  for (uint32_t family : {big, little}) {
    if (family == kBsdAfInet) return parse_ipv4(data, caplen, kLoopbackHeader, out);
    if (family == kBsdAfInet6Bsd || family == kBsdAfInet6FreeBsd || family == kBsdAfInet6Darwin)
      return parse_ipv6(data, caplen, kLoopbackHeader, out);
  }
  return ParseResult::kNotIp;
}

}  // namespace

ParseResult parse_packet(const uint8_t* data, uint32_t caplen, LinkType link, ParsedPacket& out) noexcept {
  // The key is hashed and compared as raw bytes: every byte not set below must be zero.
  std::memset(&out.key, 0, sizeof(out.key));
  out.ip_len = 0;
  out.l3_offset = 0;
  out.vlan_depth = 0;
  if (data == nullptr) caplen = 0;
  switch (link) {
    case LinkType::kEthernet:
      if (!captured(caplen, 0, kEthernetHeader)) return ParseResult::kTruncatedL2;
      return parse_ethertype(data, caplen, kEthernetHeader, be16(data + 12), out);
    case LinkType::kRawIp:
      return parse_by_version(data, caplen, 0, out);
    case LinkType::kLinuxSll:
      // The SLL protocol field is the ethertype of what follows the 16-byte pseudo-header.
      if (!captured(caplen, 0, kSllHeader)) return ParseResult::kTruncatedL2;
      return parse_ethertype(data, caplen, kSllHeader, be16(data + 14), out);
    case LinkType::kBsdLoopback:
      return parse_loopback(data, caplen, out);
    case LinkType::kUnsupported:
      break;
  }
  return ParseResult::kUnsupportedLink;
}

LinkType link_type_from_dlt(int dlt) noexcept {
  switch (dlt) {
    case 1: return LinkType::kEthernet;    // DLT_EN10MB
    case 12:                               // DLT_RAW (most systems)
    case 14:                               // DLT_RAW (OpenBSD)
    case 101:                              // LINKTYPE_RAW as stored in files
    case 228:                              // LINKTYPE_IPV4
    case 229: return LinkType::kRawIp;     // LINKTYPE_IPV6
    case 113: return LinkType::kLinuxSll;  // DLT_LINUX_SLL
    case 0:                                // DLT_NULL
    case 108: return LinkType::kBsdLoopback;  // DLT_LOOP
    default: return LinkType::kUnsupported;
  }
}

const char* link_type_name(LinkType t) noexcept {
  switch (t) {
    case LinkType::kEthernet: return "ethernet";
    case LinkType::kRawIp: return "raw_ip";
    case LinkType::kLinuxSll: return "linux_sll";
    case LinkType::kBsdLoopback: return "bsd_loopback";
    case LinkType::kUnsupported: return "unsupported";
  }
  return "unsupported";
}

const char* parse_result_name(ParseResult r) noexcept {
  switch (r) {
    case ParseResult::kOk: return "ok";
    case ParseResult::kOkFragment: return "ok_fragment";
    case ParseResult::kNotIp: return "not_ip";
    case ParseResult::kUnsupportedLink: return "unsupported_link";
    case ParseResult::kTruncatedL2: return "truncated_l2";
    case ParseResult::kTruncatedL3: return "truncated_l3";
    case ParseResult::kTruncatedL4: return "truncated_l4";
    case ParseResult::kBadIpVersion: return "bad_ip_version";
    case ParseResult::kBadIpHeader: return "bad_ip_header";
    case ParseResult::kCount_: break;
  }
  return "unknown";
}

uint64_t ParseCounters::total() const noexcept {
  uint64_t sum = 0;
  for (uint64_t v : by_result) sum += v;
  return sum;
}

ParseCounters& ParseCounters::operator+=(const ParseCounters& o) noexcept {
  for (std::size_t i = 0; i < by_result.size(); ++i) by_result[i] += o.by_result[i];
  return *this;
}

}  // namespace flowpic
