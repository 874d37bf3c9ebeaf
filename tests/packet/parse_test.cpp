// Parser cases with known answers: every link type and header the parser supports, every
// reason code, and truncation at every byte of several packets.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <string>

#include "packet/parse.hpp"
#include "packet_builder.hpp"

using namespace flowpic;
using namespace flowpic::testing;

namespace {

// Parses a copy of `bytes[0, len)` held in a heap block of exactly `len` bytes, so a read past
// caplen lands outside the allocation (ASan / valgrind report it).
ParseResult parse_exact(const std::vector<uint8_t>& bytes, std::size_t len, LinkType link, ParsedPacket& out) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[len == 0 ? 1 : len]);
  if (len) std::memcpy(copy.get(), bytes.data(), len);
  // Garbage in the output proves the parser clears every byte of the key itself.
  std::memset(static_cast<void*>(&out), 0xAB, sizeof(out));
  return parse_packet(len == 0 ? nullptr : copy.get(), static_cast<uint32_t>(len), link, out);
}

ParseResult parse_all(const Bytes& p, LinkType link, ParsedPacket& out) {
  return parse_exact(p.b, p.size(), link, out);
}

FlowKey key(const char* text) {
  FlowKey k;
  std::string err;
  EXPECT_TRUE(parse_flow_key(text, k, &err)) << text << ": " << err;
  return k;
}

// Expects `p` to parse with `result` into exactly `expected_key` (compared as raw bytes).
void expect_parsed(const Bytes& p, LinkType link, ParseResult result, const char* expected_key,
                   uint32_t ip_len, uint16_t l3_offset, uint8_t vlan_depth = 0) {
  ParsedPacket out;
  ASSERT_EQ(parse_all(p, link, out), result) << parse_result_name(parse_all(p, link, out));
  const FlowKey want = key(expected_key);
  EXPECT_TRUE(out.key == want) << "got " << to_string(out.key) << " want " << expected_key;
  EXPECT_EQ(std::memcmp(&out.key, &want, sizeof(FlowKey)), 0);
  EXPECT_EQ(out.ip_len, ip_len);
  EXPECT_EQ(out.l3_offset, l3_offset);
  EXPECT_EQ(out.vlan_depth, vlan_depth);
}

ParseResult result_of(const Bytes& p, LinkType link) {
  ParsedPacket out;
  return parse_all(p, link, out);
}

Bytes eth_ipv4_udp(std::initializer_list<uint16_t> tpids = {}) {
  Bytes p = eth(0x0800, tpids);
  auto ip = ipv4(p, "10.0.0.1", "10.0.0.2", 17);
  ports(p, 1234, 53, 20);
  finish_ipv4(p, ip);
  return p;
}

}  // namespace

// ---------------------------------------------------------------- Ethernet, VLAN, QinQ

TEST(ParseEthernet, Ipv4Tcp) {
  Bytes p = eth(0x0800);
  auto ip = ipv4(p, "192.168.1.10", "93.184.216.34", 6);
  ports(p, 51000, 443, 36);
  finish_ipv4(p, ip);
  expect_parsed(p, LinkType::kEthernet, ParseResult::kOk, "tcp 192.168.1.10:51000 -> 93.184.216.34:443", 60, 14);
}

TEST(ParseEthernet, Ipv4UdpWithEthernetPaddingUsesTotalLength) {
  Bytes p = eth(0x0800);
  auto ip = ipv4(p, "10.0.0.1", "10.0.0.2", 17);
  ports(p, 1234, 53, 4);  // 8-byte UDP header
  finish_ipv4(p, ip);     // total length 28
  p.zeros(18);            // padding to the 60-byte Ethernet minimum is not part of the packet
  expect_parsed(p, LinkType::kEthernet, ParseResult::kOk, "udp 10.0.0.1:1234 -> 10.0.0.2:53", 28, 14);
}

TEST(ParseEthernet, SingleVlanTag) {
  expect_parsed(eth_ipv4_udp({0x8100}), LinkType::kEthernet, ParseResult::kOk,
                "udp 10.0.0.1:1234 -> 10.0.0.2:53", 44, 18, 1);
}

TEST(ParseEthernet, QinQ88a8) {
  expect_parsed(eth_ipv4_udp({0x88a8, 0x8100}), LinkType::kEthernet, ParseResult::kOk,
                "udp 10.0.0.1:1234 -> 10.0.0.2:53", 44, 22, 2);
}

TEST(ParseEthernet, QinQ9100AndThreeTags) {
  expect_parsed(eth_ipv4_udp({0x9100, 0x8100}), LinkType::kEthernet, ParseResult::kOk,
                "udp 10.0.0.1:1234 -> 10.0.0.2:53", 44, 22, 2);
  expect_parsed(eth_ipv4_udp({0x88a8, 0x9100, 0x8100}), LinkType::kEthernet, ParseResult::kOk,
                "udp 10.0.0.1:1234 -> 10.0.0.2:53", 44, 26, 3);
}

TEST(ParseEthernet, NonIpIsNotIp) {
  Bytes arp = eth(0x0806);
  arp.u16(1).u16(0x0800).u8(6).u8(4).u16(1).zeros(20);
  EXPECT_EQ(result_of(arp, LinkType::kEthernet), ParseResult::kNotIp);
  Bytes vlan_arp = eth(0x0806, {0x8100});
  vlan_arp.zeros(28);
  EXPECT_EQ(result_of(vlan_arp, LinkType::kEthernet), ParseResult::kNotIp);
  Bytes llc = eth(0x0026);  // 802.3 length field, LLC follows
  llc.zeros(38);
  EXPECT_EQ(result_of(llc, LinkType::kEthernet), ParseResult::kNotIp);
}

TEST(ParseEthernet, VersionMustMatchEthertype) {
  Bytes p = eth(0x0800);
  ipv6(p, "2001:db8::1", "2001:db8::2", 17);
  ports(p, 1, 2);
  EXPECT_EQ(result_of(p, LinkType::kEthernet), ParseResult::kBadIpVersion);
  Bytes q = eth(0x86dd);
  auto ip = ipv4(q, "10.0.0.1", "10.0.0.2", 17);
  ports(q, 1, 2);
  finish_ipv4(q, ip);
  q.zeros(20);
  EXPECT_EQ(result_of(q, LinkType::kEthernet), ParseResult::kBadIpVersion);
}

TEST(ParseEthernet, PppoeSessionInsideVlans) {
  Bytes p = eth(0x8864, {0x8100, 0x8100});
  p.u8(0x11).u8(0).u16(0x1234).u16(0).u16(0x0021);  // PPPoE session 0x1234, PPP protocol IPv4
  auto ip = ipv4(p, "100.64.0.1", "1.1.1.1", 17);
  ports(p, 40000, 53, 4);
  finish_ipv4(p, ip);
  expect_parsed(p, LinkType::kEthernet, ParseResult::kOk, "udp 100.64.0.1:40000 -> 1.1.1.1:53", 28, 30, 2);

  Bytes v6 = eth(0x8864);
  v6.u8(0x11).u8(0).u16(1).u16(0).u16(0x0057);
  ip = ipv6(v6, "2001:db8::1", "2001:db8::2", 6);
  ports(v6, 1, 2, 16);
  finish_ipv6(v6, ip);
  expect_parsed(v6, LinkType::kEthernet, ParseResult::kOk, "tcp [2001:db8::1]:1 -> [2001:db8::2]:2", 60, 22);

  Bytes lcp = eth(0x8864);
  lcp.u8(0x11).u8(0).u16(1).u16(8).u16(0xc021).zeros(8);
  EXPECT_EQ(result_of(lcp, LinkType::kEthernet), ParseResult::kNotIp);
}

// ---------------------------------------------------------------- IPv4

TEST(ParseIpv4, OptionsMoveThePorts) {
  Bytes p = eth(0x0800);
  // IHL 7: router alert (4 bytes) + 4 bytes of NOP/EOL.
  auto ip = ipv4(p, "10.1.1.1", "10.2.2.2", 17, 0, {0x94, 0x04, 0x00, 0x00, 0x01, 0x01, 0x01, 0x00});
  ports(p, 5060, 5061, 4);
  finish_ipv4(p, ip);
  expect_parsed(p, LinkType::kEthernet, ParseResult::kOk, "udp 10.1.1.1:5060 -> 10.2.2.2:5061", 36, 14);
}

TEST(ParseIpv4, IhlBelowFiveIsBadHeader) {
  Bytes p = eth(0x0800);
  auto ip = ipv4(p, "10.0.0.1", "10.0.0.2", 6);
  ports(p, 1, 2);
  finish_ipv4(p, ip);
  p.b[ip] = 0x44;
  EXPECT_EQ(result_of(p, LinkType::kEthernet), ParseResult::kBadIpHeader);
}

TEST(ParseIpv4, TotalLengthBelowHeaderIsBadHeader) {
  Bytes p = eth(0x0800);
  auto ip = ipv4(p, "10.0.0.1", "10.0.0.2", 6, 0, {1, 1, 1, 0});
  ports(p, 1, 2);
  p.set16(ip + 2, 23);  // header is 24 bytes
  EXPECT_EQ(result_of(p, LinkType::kEthernet), ParseResult::kBadIpHeader);
}

TEST(ParseIpv4, TotalLengthWithoutRoomForPortsIsBadHeader) {
  Bytes p = eth(0x0800);
  auto ip = ipv4(p, "10.0.0.1", "10.0.0.2", 17);
  ports(p, 1, 2);
  p.set16(ip + 2, 22);  // claims 2 bytes of UDP: the ports would come from beyond the packet
  EXPECT_EQ(result_of(p, LinkType::kEthernet), ParseResult::kBadIpHeader);
}

TEST(ParseIpv4, FirstFragmentKeepsPorts) {
  Bytes p = eth(0x0800);
  auto ip = ipv4(p, "10.0.0.1", "10.0.0.2", 17, 0x2000);  // MF, offset 0
  ports(p, 4000, 5000, 1472);
  finish_ipv4(p, ip);
  expect_parsed(p, LinkType::kEthernet, ParseResult::kOk, "udp 10.0.0.1:4000 -> 10.0.0.2:5000", 1496, 14);
}

TEST(ParseIpv4, LaterFragmentsAreKeyedWithoutPorts) {
  for (uint16_t frag : {uint16_t(0x2000 | 185), uint16_t(370)}) {  // middle (MF set) and last fragment
    Bytes p = eth(0x0800);
    auto ip = ipv4(p, "10.0.0.1", "10.0.0.2", 17, frag);
    p.fill(100, 0x77);  // payload bytes that would look like ports
    finish_ipv4(p, ip);
    expect_parsed(p, LinkType::kEthernet, ParseResult::kOkFragment, "udp 10.0.0.1 -> 10.0.0.2 frag", 120, 14);
  }
}

TEST(ParseIpv4, LaterFragmentNeedsNoL4Bytes) {
  Bytes p = eth(0x0800);
  auto ip = ipv4(p, "10.0.0.1", "10.0.0.2", 6, 0x0001);
  finish_ipv4(p, ip);
  p.set16(ip + 2, 1500);  // snapped right after the IP header
  expect_parsed(p, LinkType::kEthernet, ParseResult::kOkFragment, "tcp 10.0.0.1 -> 10.0.0.2 frag", 1500, 14);
}

TEST(ParseIpv4, TsoZeroTotalLengthUsesCapturedBytes) {
  Bytes p = eth(0x0800);
  auto ip = ipv4(p, "10.0.0.1", "10.0.0.2", 6);
  ports(p, 443, 50000, 16 + 2896);
  p.set16(ip + 2, 0);
  expect_parsed(p, LinkType::kEthernet, ParseResult::kOk, "tcp 10.0.0.1:443 -> 10.0.0.2:50000", 20 + 2916, 14);
}

TEST(ParseIpv4, SnapLengthCaptureKeepsHeaderLength) {
  // Requet-style 72-byte snap: the IP length comes from the header, the ports from the first 4 bytes.
  Bytes p = eth(0x0800);
  auto ip = ipv4(p, "10.0.0.1", "10.0.0.2", 6);
  ports(p, 443, 50000, 34);
  finish_ipv4(p, ip);
  p.set16(ip + 2, 1400);
  p.b.resize(14 + 20 + 4);
  expect_parsed(p, LinkType::kEthernet, ParseResult::kOk, "tcp 10.0.0.1:443 -> 10.0.0.2:50000", 1400, 14);
}

TEST(ParseIpv4, SctpHasPortsOtherProtocolsDoNot) {
  Bytes s = eth(0x0800);
  auto ip = ipv4(s, "10.0.0.1", "10.0.0.2", 132);
  ports(s, 2905, 2905, 8);
  finish_ipv4(s, ip);
  expect_parsed(s, LinkType::kEthernet, ParseResult::kOk, "sctp 10.0.0.1:2905 -> 10.0.0.2:2905", 32, 14);

  Bytes icmp = eth(0x0800);
  ip = ipv4(icmp, "10.0.0.1", "10.0.0.2", 1);
  icmp.u8(8).u8(0).u16(0xf7ff).u32(0x00010001);
  finish_ipv4(icmp, ip);
  expect_parsed(icmp, LinkType::kEthernet, ParseResult::kOk, "icmp 10.0.0.1 -> 10.0.0.2", 28, 14);

  Bytes gre = eth(0x0800);
  ip = ipv4(gre, "10.0.0.1", "10.0.0.2", 47);
  gre.u16(0).u16(0x0800);
  finish_ipv4(gre, ip);
  expect_parsed(gre, LinkType::kEthernet, ParseResult::kOk, "gre 10.0.0.1 -> 10.0.0.2", 24, 14);

  // An unknown protocol with no bytes after the header at all still gets a key.
  Bytes other = eth(0x0800);
  ip = ipv4(other, "10.0.0.1", "10.0.0.2", 253);
  finish_ipv4(other, ip);
  expect_parsed(other, LinkType::kEthernet, ParseResult::kOk, "proto-253 10.0.0.1 -> 10.0.0.2", 20, 14);
}

// ---------------------------------------------------------------- IPv6

TEST(ParseIpv6, Tcp) {
  Bytes p = eth(0x86dd);
  auto ip = ipv6(p, "2001:db8::1", "2001:db8:1::2", 6);
  ports(p, 40000, 443, 16);
  finish_ipv6(p, ip);
  expect_parsed(p, LinkType::kEthernet, ParseResult::kOk, "tcp [2001:db8::1]:40000 -> [2001:db8:1::2]:443", 60, 14);
}

TEST(ParseIpv6, HopByHopRoutingDestinationOptionsChain) {
  Bytes p = eth(0x86dd);
  auto ip = ipv6(p, "fe80::1", "ff02::16", 0);
  ext6(p, 43, 0);  // hop-by-hop, 8 bytes
  ext6(p, 60, 2);  // routing, 24 bytes
  ext6(p, 17, 1);  // destination options, 16 bytes
  ports(p, 546, 547, 4);
  finish_ipv6(p, ip);
  expect_parsed(p, LinkType::kEthernet, ParseResult::kOk, "udp [fe80::1]:546 -> [ff02::16]:547", 40 + 48 + 8, 14);
}

TEST(ParseIpv6, AuthenticationHeaderIsSkipped) {
  Bytes p = eth(0x86dd);
  auto ip = ipv6(p, "2001:db8::1", "2001:db8::2", 51);
  p.u8(6).u8(4).u16(0).u32(0x100).u32(1).fill(12, 0xcc);  // AH: (4 + 2) * 4 = 24 bytes
  ports(p, 179, 33000, 16);
  finish_ipv6(p, ip);
  expect_parsed(p, LinkType::kEthernet, ParseResult::kOk, "tcp [2001:db8::1]:179 -> [2001:db8::2]:33000", 40 + 24 + 20, 14);
}

TEST(ParseIpv6, EspAndNoNextHeaderAreKeyedByProtocol) {
  Bytes esp = eth(0x86dd);
  auto ip = ipv6(esp, "2001:db8::1", "2001:db8::2", 0);
  ext6(esp, 50, 0);
  esp.u32(0x1001).u32(7).fill(32, 0xee);
  finish_ipv6(esp, ip);
  expect_parsed(esp, LinkType::kEthernet, ParseResult::kOk, "esp 2001:db8::1 -> 2001:db8::2", 40 + 8 + 40, 14);

  Bytes none = eth(0x86dd);
  ip = ipv6(none, "2001:db8::1", "2001:db8::2", 59);
  finish_ipv6(none, ip);
  expect_parsed(none, LinkType::kEthernet, ParseResult::kOk, "proto-59 2001:db8::1 -> 2001:db8::2", 40, 14);
}

TEST(ParseIpv6, Icmpv6HasNoPorts) {
  Bytes p = eth(0x86dd, {0x8100});
  auto ip = ipv6(p, "2001:db8::1", "2001:db8::2", 58);
  p.u8(128).u8(0).u16(0).u32(0x00010001);
  finish_ipv6(p, ip);
  expect_parsed(p, LinkType::kEthernet, ParseResult::kOk, "icmp6 2001:db8::1 -> 2001:db8::2", 48, 18, 1);
}

TEST(ParseIpv6, FirstFragmentKeepsPortsLaterFragmentsDoNot) {
  Bytes first = eth(0x86dd);
  auto ip = ipv6(first, "2001:db8::1", "2001:db8::2", 44);
  frag6(first, 17, 0, true);
  ports(first, 7000, 8000, 100);
  finish_ipv6(first, ip);
  expect_parsed(first, LinkType::kEthernet, ParseResult::kOk, "udp [2001:db8::1]:7000 -> [2001:db8::2]:8000", 40 + 8 + 104, 14);

  Bytes later = eth(0x86dd);
  ip = ipv6(later, "2001:db8::1", "2001:db8::2", 0);
  ext6(later, 44, 0);  // hop-by-hop before the fragment header
  frag6(later, 17, 13, false);
  later.fill(50, 0x77);
  finish_ipv6(later, ip);
  expect_parsed(later, LinkType::kEthernet, ParseResult::kOkFragment, "udp 2001:db8::1 -> 2001:db8::2 frag", 40 + 16 + 50, 14);
}

TEST(ParseIpv6, ZeroPayloadLengthUsesCapturedBytes) {
  Bytes p = eth(0x86dd);
  ipv6(p, "2001:db8::1", "2001:db8::2", 6);
  ports(p, 443, 50000, 2000);
  expect_parsed(p, LinkType::kEthernet, ParseResult::kOk, "tcp [2001:db8::1]:443 -> [2001:db8::2]:50000", 40 + 2004, 14);
}

TEST(ParseIpv6, ExtensionHeaderBeyondPayloadIsBadHeader) {
  Bytes p = eth(0x86dd);
  auto ip = ipv6(p, "2001:db8::1", "2001:db8::2", 60);
  ext6(p, 17, 3);  // 32 bytes
  ports(p, 1, 2, 4);
  finish_ipv6(p, ip);
  p.set16(ip + 4, 16);  // the payload cannot hold the option header
  EXPECT_EQ(result_of(p, LinkType::kEthernet), ParseResult::kBadIpHeader);
}

TEST(ParseIpv6, OverlongExtensionChainIsBadHeader) {
  Bytes p = eth(0x86dd);
  auto ip = ipv6(p, "2001:db8::1", "2001:db8::2", 60);
  for (int i = 0; i < 40; ++i) ext6(p, 60, 0);
  ports(p, 1, 2, 4);
  finish_ipv6(p, ip);
  EXPECT_EQ(result_of(p, LinkType::kEthernet), ParseResult::kBadIpHeader);
  // A realistic chain of the same headers is fine.
  Bytes q = eth(0x86dd);
  ip = ipv6(q, "2001:db8::1", "2001:db8::2", 60);
  for (int i = 0; i < 3; ++i) ext6(q, 60, 0);
  ext6(q, 17, 0);
  ports(q, 1, 2, 4);
  finish_ipv6(q, ip);
  expect_parsed(q, LinkType::kEthernet, ParseResult::kOk, "udp [2001:db8::1]:1 -> [2001:db8::2]:2", 40 + 32 + 8, 14);
}

// ---------------------------------------------------------------- other link types

TEST(ParseRawIp, Ipv4AndIpv6ByVersionNibble) {
  Bytes v4;
  auto ip = ipv4(v4, "172.16.0.1", "8.8.8.8", 17);
  ports(v4, 33333, 53, 30);
  finish_ipv4(v4, ip);
  expect_parsed(v4, LinkType::kRawIp, ParseResult::kOk, "udp 172.16.0.1:33333 -> 8.8.8.8:53", 54, 0);
  Bytes v6;
  ip = ipv6(v6, "2001:db8::a", "2001:db8::b", 17);
  ports(v6, 443, 443, 30);
  finish_ipv6(v6, ip);
  expect_parsed(v6, LinkType::kRawIp, ParseResult::kOk, "udp [2001:db8::a]:443 -> [2001:db8::b]:443", 74, 0);
}

TEST(ParseRawIp, UnknownVersionAndEmptyPacket) {
  Bytes p;
  p.u8(0x50).zeros(40);
  EXPECT_EQ(result_of(p, LinkType::kRawIp), ParseResult::kBadIpVersion);
  EXPECT_EQ(result_of(Bytes{}, LinkType::kRawIp), ParseResult::kTruncatedL3);
}

TEST(ParseLinuxSll, Ipv4Ipv6VlanAndNotIp) {
  Bytes v4 = sll(0x0800);
  auto ip = ipv4(v4, "10.0.0.5", "10.0.0.6", 6);
  ports(v4, 22, 60000, 16);
  finish_ipv4(v4, ip);
  expect_parsed(v4, LinkType::kLinuxSll, ParseResult::kOk, "tcp 10.0.0.5:22 -> 10.0.0.6:60000", 40, 16);

  Bytes v6 = sll(0x86dd);
  ip = ipv6(v6, "::1", "::2", 17);
  ports(v6, 5353, 5353, 4);
  finish_ipv6(v6, ip);
  expect_parsed(v6, LinkType::kLinuxSll, ParseResult::kOk, "udp [::1]:5353 -> [::2]:5353", 48, 16);

  Bytes tagged = sll(0x8100);
  tagged.u16(7).u16(0x0800);
  ip = ipv4(tagged, "10.0.0.5", "10.0.0.6", 17);
  ports(tagged, 1, 2, 4);
  finish_ipv4(tagged, ip);
  expect_parsed(tagged, LinkType::kLinuxSll, ParseResult::kOk, "udp 10.0.0.5:1 -> 10.0.0.6:2", 28, 20, 1);

  Bytes arp = sll(0x0806);
  arp.zeros(28);
  EXPECT_EQ(result_of(arp, LinkType::kLinuxSll), ParseResult::kNotIp);
}

TEST(ParseBsdLoopback, FamilyInEitherByteOrder) {
  auto v4 = [](bool big_endian) {
    Bytes p;
    big_endian ? p.u32(2) : p.u32le(2);
    auto ip = ipv4(p, "127.0.0.1", "127.0.0.1", 6);
    ports(p, 4222, 50123, 16);
    finish_ipv4(p, ip);
    return p;
  };
  expect_parsed(v4(false), LinkType::kBsdLoopback, ParseResult::kOk, "tcp 127.0.0.1:4222 -> 127.0.0.1:50123", 40, 4);
  expect_parsed(v4(true), LinkType::kBsdLoopback, ParseResult::kOk, "tcp 127.0.0.1:4222 -> 127.0.0.1:50123", 40, 4);
  for (uint32_t af : {24u, 28u, 30u}) {
    for (bool big_endian : {false, true}) {
      Bytes p;
      big_endian ? p.u32(af) : p.u32le(af);
      auto ip = ipv6(p, "::1", "::1", 17);
      ports(p, 53, 5300, 4);
      finish_ipv6(p, ip);
      SCOPED_TRACE(af);
      expect_parsed(p, LinkType::kBsdLoopback, ParseResult::kOk, "udp [::1]:53 -> [::1]:5300", 48, 4);
    }
  }
  Bytes other;
  other.u32le(7).zeros(40);  // AF_OSI or anything else: not IP
  EXPECT_EQ(result_of(other, LinkType::kBsdLoopback), ParseResult::kNotIp);
  Bytes mismatch;
  mismatch.u32le(2);
  ipv6(mismatch, "::1", "::1", 17);
  EXPECT_EQ(result_of(mismatch, LinkType::kBsdLoopback), ParseResult::kBadIpVersion);
}

TEST(ParseLinkType, UnsupportedLinkAndDltMapping) {
  EXPECT_EQ(result_of(eth_ipv4_udp(), LinkType::kUnsupported), ParseResult::kUnsupportedLink);
  EXPECT_EQ(link_type_from_dlt(1), LinkType::kEthernet);
  for (int dlt : {12, 14, 101, 228, 229}) EXPECT_EQ(link_type_from_dlt(dlt), LinkType::kRawIp) << dlt;
  EXPECT_EQ(link_type_from_dlt(113), LinkType::kLinuxSll);
  EXPECT_EQ(link_type_from_dlt(0), LinkType::kBsdLoopback);
  EXPECT_EQ(link_type_from_dlt(108), LinkType::kBsdLoopback);
  for (int dlt : {9, 104, 127, 192, 276, -1}) EXPECT_EQ(link_type_from_dlt(dlt), LinkType::kUnsupported) << dlt;
  EXPECT_STREQ(link_type_name(LinkType::kLinuxSll), "linux_sll");
  EXPECT_STREQ(link_type_name(LinkType::kUnsupported), "unsupported");
}

TEST(ParseNames, EveryResultHasADistinctName) {
  std::set<std::string> names;
  for (std::size_t i = 0; i < kParseResultCount; ++i) {
    const char* n = parse_result_name(static_cast<ParseResult>(i));
    EXPECT_STRNE(n, "unknown");
    names.insert(n);
  }
  EXPECT_EQ(names.size(), kParseResultCount);
  EXPECT_STREQ(parse_result_name(ParseResult::kTruncatedL3), "truncated_l3");
}

TEST(ParseCountersTest, TotalAndSum) {
  ParseCounters a, b;
  a.add(ParseResult::kOk);
  a.add(ParseResult::kOk);
  a.add(ParseResult::kNotIp);
  b.add(ParseResult::kOk);
  b.add(ParseResult::kTruncatedL4);
  EXPECT_EQ(a.total(), 3u);
  a += b;
  EXPECT_EQ(a.total(), 5u);
  EXPECT_EQ(a.get(ParseResult::kOk), 3u);
  EXPECT_EQ(a.get(ParseResult::kTruncatedL4), 1u);
  EXPECT_EQ(a.get(ParseResult::kBadIpHeader), 0u);
}

// ---------------------------------------------------------------- truncation at every byte

namespace {

struct TruncationCase {
  const char* name;
  Bytes packet;
  LinkType link;
  ParseResult full_result;
  uint32_t l3;        // first byte of the IP header
  uint32_t l4;        // first byte after the IP header chain
  uint32_t key_end;   // shortest prefix that yields the key
  ParseResult l2_reason;  // reason for prefixes shorter than l3
};

std::vector<TruncationCase> truncation_cases() {
  std::vector<TruncationCase> cases;
  {
    Bytes p = eth(0x0800, {0x8100});
    auto ip = ipv4(p, "10.0.0.1", "10.0.0.2", 6, 0, {0x94, 0x04, 0, 0});
    ports(p, 1000, 2000, 16);
    finish_ipv4(p, ip);
    cases.push_back({"vlan_ipv4_options_tcp", p, LinkType::kEthernet, ParseResult::kOk, 18, 42, 46, ParseResult::kTruncatedL2});
  }
  {
    Bytes p = eth(0x86dd, {0x88a8, 0x8100});
    auto ip = ipv6(p, "2001:db8::1", "2001:db8::2", 0);
    ext6(p, 43, 0);
    ext6(p, 51, 1);
    p.u8(60).u8(3).u16(0).u32(9).u32(1).fill(8, 0xcc);  // AH, 20 bytes
    ext6(p, 17, 0);
    ports(p, 3478, 50000, 8);
    finish_ipv6(p, ip);
    cases.push_back({"qinq_ipv6_ext_chain_udp", p, LinkType::kEthernet, ParseResult::kOk, 22, 22 + 40 + 8 + 16 + 20 + 8,
                     22 + 40 + 8 + 16 + 20 + 8 + 4, ParseResult::kTruncatedL2});
  }
  {
    Bytes p = eth(0x86dd);
    auto ip = ipv6(p, "2001:db8::1", "2001:db8::2", 44);
    frag6(p, 6, 100, true);
    p.fill(64, 0x42);
    finish_ipv6(p, ip);
    cases.push_back({"ipv6_later_fragment", p, LinkType::kEthernet, ParseResult::kOkFragment, 14, 62, 62, ParseResult::kTruncatedL2});
  }
  {
    Bytes p = eth(0x8864, {0x8100});
    p.u8(0x11).u8(0).u16(7).u16(0).u16(0x0021);
    auto ip = ipv4(p, "10.0.0.1", "10.0.0.2", 17);
    ports(p, 1, 2, 8);
    finish_ipv4(p, ip);
    cases.push_back({"vlan_pppoe_ipv4_udp", p, LinkType::kEthernet, ParseResult::kOk, 26, 46, 50, ParseResult::kTruncatedL2});
  }
  {
    Bytes p = sll(0x0800);
    auto ip = ipv4(p, "10.0.0.1", "10.0.0.2", 17, 0x2000);
    ports(p, 53, 9999, 40);
    finish_ipv4(p, ip);
    cases.push_back({"sll_ipv4_first_fragment", p, LinkType::kLinuxSll, ParseResult::kOk, 16, 36, 40, ParseResult::kTruncatedL2});
  }
  {
    Bytes p;
    p.u32(30);
    auto ip = ipv6(p, "::1", "::1", 132);
    ports(p, 9, 10, 8);
    finish_ipv6(p, ip);
    cases.push_back({"loopback_ipv6_sctp", p, LinkType::kBsdLoopback, ParseResult::kOk, 4, 44, 48, ParseResult::kTruncatedL2});
  }
  {
    Bytes p;
    auto ip = ipv4(p, "10.0.0.1", "10.0.0.2", 17, 64);
    p.fill(30, 1);
    finish_ipv4(p, ip);
    cases.push_back({"raw_ipv4_later_fragment", p, LinkType::kRawIp, ParseResult::kOkFragment, 0, 20, 20, ParseResult::kTruncatedL3});
  }
  {
    Bytes p;
    auto ip = ipv4(p, "10.0.0.1", "10.0.0.2", 1);
    p.u8(8).u8(0).u16(0).u32(1);
    finish_ipv4(p, ip);
    cases.push_back({"raw_ipv4_icmp", p, LinkType::kRawIp, ParseResult::kOk, 0, 20, 20, ParseResult::kTruncatedL3});
  }
  return cases;
}

}  // namespace

TEST(ParseTruncation, EveryPrefixFailsWithTheRightReasonOrGivesTheFullKey) {
  for (const TruncationCase& c : truncation_cases()) {
    SCOPED_TRACE(c.name);
    ParsedPacket full;
    ASSERT_EQ(parse_all(c.packet, c.link, full), c.full_result);
    for (std::size_t len = 0; len <= c.packet.size(); ++len) {
      SCOPED_TRACE(len);
      ParsedPacket out;
      const ParseResult r = parse_exact(c.packet.b, len, c.link, out);
      if (len >= c.key_end) {
        ASSERT_EQ(r, c.full_result) << parse_result_name(r);
        ASSERT_TRUE(out.key == full.key) << to_string(out.key);
        ASSERT_EQ(out.ip_len, full.ip_len);  // the length comes from the header, not the capture
        continue;
      }
      ParseResult want = len < c.l3 ? c.l2_reason : len < c.l4 ? ParseResult::kTruncatedL3 : ParseResult::kTruncatedL4;
      ASSERT_EQ(r, want) << parse_result_name(r);
    }
  }
}

// Random bytes behind every link type, each in an exactly-sized heap block: whatever the input,
// the parser returns a reason or a well-formed key, and never reads out of bounds.
TEST(ParseTruncation, RandomGarbageNeverGivesAMalformedKey) {
  std::mt19937 rng(20240601);
  const auto base = truncation_cases();
  uint64_t ok = 0;
  for (int i = 0; i < 20000; ++i) {
    // Mutate a valid packet so the garbage goes deep into the headers.
    const TruncationCase& c = base[i % base.size()];
    std::vector<uint8_t> bytes = c.packet.b;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) bytes[rng() % bytes.size()] = static_cast<uint8_t>(rng());
    const std::size_t len = rng() % (bytes.size() + 1);
    ParsedPacket out;
    const ParseResult r = parse_exact(bytes, len, c.link, out);
    ASSERT_LT(static_cast<std::size_t>(r), kParseResultCount);
    if (r != ParseResult::kOk && r != ParseResult::kOkFragment) continue;
    ++ok;
    ASSERT_TRUE(out.key.family == 4 || out.key.family == 6);
    ASSERT_EQ(out.key.pad, 0);
    ASSERT_LE(out.l3_offset, len);
    if (out.key.family == 4) {
      for (int b = 4; b < 16; ++b) ASSERT_EQ(out.key.src[b] | out.key.dst[b], 0);
    }
    if (r == ParseResult::kOkFragment) {
      ASSERT_EQ(out.key.flags, FlowKey::kFlagFragment);
      ASSERT_EQ(out.key.sport | out.key.dport, 0);
    } else {
      ASSERT_EQ(out.key.flags, 0);
    }
  }
  EXPECT_GT(ok, 1000u);  // the mutations leave many packets valid: the check above ran
}
