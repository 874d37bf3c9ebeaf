#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "common/flow_key.hpp"
#include "common/printable.hpp"

#include <cstdio>

using namespace flowpic;

TEST(FlowKey, RoundTripsIpv4Tcp) {
  FlowKey k{};
  ASSERT_TRUE(parse_flow_key("tcp 10.0.0.1:443 -> 192.168.1.2:51000", k));
  EXPECT_EQ(k.family, 4);
  EXPECT_EQ(k.proto, 6);
  EXPECT_EQ(k.sport, 443);
  EXPECT_EQ(k.dport, 51000);
  EXPECT_EQ(k.src[0], 10);
  EXPECT_EQ(k.dst[3], 2);
  EXPECT_EQ(to_string(k), "tcp 10.0.0.1:443 -> 192.168.1.2:51000");
}

TEST(FlowKey, RoundTripsIpv6UdpAndFragments) {
  FlowKey k{};
  ASSERT_TRUE(parse_flow_key("udp [2001:db8::1]:53 -> [2001:db8::2]:4000", k));
  EXPECT_EQ(k.family, 6);
  EXPECT_EQ(to_string(k), "udp [2001:db8::1]:53 -> [2001:db8::2]:4000");
  FlowKey f{};
  ASSERT_TRUE(parse_flow_key("udp 1.2.3.4 -> 5.6.7.8 frag", f));
  EXPECT_EQ(f.flags, FlowKey::kFlagFragment);
  EXPECT_EQ(f.sport, 0);
  EXPECT_EQ(to_string(f), "udp 1.2.3.4 -> 5.6.7.8 frag");
  FlowKey g{};
  ASSERT_TRUE(parse_flow_key("proto-47 1.2.3.4 -> 5.6.7.8", g));
  EXPECT_EQ(g.proto, 47);
  EXPECT_EQ(to_string(g), "gre 1.2.3.4 -> 5.6.7.8");
}

TEST(FlowKey, RejectsGarbageWithReason) {
  FlowKey k{};
  std::string err;
  EXPECT_FALSE(parse_flow_key("tcp 10.0.0.1 -> 10.0.0.2", k, &err));
  EXPECT_NE(err.find("port"), std::string::npos);
  EXPECT_FALSE(parse_flow_key("bogus 1.2.3.4:1 -> 1.2.3.4:2", k, &err));
  EXPECT_FALSE(parse_flow_key("tcp 1.2.3.4:1 -> [::1]:2", k, &err));
  EXPECT_FALSE(parse_flow_key("tcp 1.2.3.4:99999 -> 1.2.3.5:2", k, &err));
  EXPECT_FALSE(parse_flow_key("", k, &err));
}

TEST(FlowKey, HashDependsOnEveryField) {
  FlowKey a{};
  ASSERT_TRUE(parse_flow_key("tcp 10.0.0.1:443 -> 10.0.0.2:1000", a));
  FlowKey b = a;
  EXPECT_EQ(flow_hash(a), flow_hash(b));
  b.dport = 1001;
  EXPECT_NE(flow_hash(a), flow_hash(b));
  FlowKey c = a;
  std::swap(c.sport, c.dport);  // unidirectional: the reverse direction is another flow
  EXPECT_NE(flow_hash(a), flow_hash(c));
}
// Hash flooding (issue 16): keys crafted to collide in the index under one seed (here, the
// low 12 bits of their hashes equal, as an attacker who knew the hash would make them) spread
// out under another seed, so a process whose seed nobody knows cannot be flooded this way.
TEST(FlowKey, KeysCraftedToCollideUnderOneSeedSpreadUnderAnother) {
  const uint64_t saved = flow_hash_seed();
  set_flow_hash_seed(0x1234);
  std::vector<FlowKey> crafted;
  FlowKey k{};
  ASSERT_TRUE(parse_flow_key("udp 10.0.0.1:1 -> 192.168.0.1:53", k));
  for (uint32_t i = 0; crafted.size() < 64; ++i) {  // ~64 * 4096 tries
    k.sport = static_cast<uint16_t>(i);
    k.src[2] = static_cast<uint8_t>(i >> 16);
    k.src[3] = static_cast<uint8_t>(i >> 8);
    if ((flow_hash(k) & 0xfff) == 0x5a5) crafted.push_back(k);
  }
  std::set<uint64_t> under_a, under_b;
  for (const auto& c : crafted) under_a.insert(flow_hash(c) & 0xfff);
  EXPECT_EQ(under_a.size(), 1u);
  set_flow_hash_seed(0x9876);
  for (const auto& c : crafted) under_b.insert(flow_hash(c) & 0xfff);
  EXPECT_GE(under_b.size(), 60u);  // 64 keys in 4096 buckets: about 63.5 distinct expected
  set_flow_hash_seed(saved);
  // And every process draws its own seed.
  EXPECT_NE(flow_hash_seed(), 0u);
}



// printable(): every control byte (0x00-0x1f, 0x7f) becomes \xNN; every other byte is kept, so
// UTF-8 names stay readable and the result never holds a byte a terminal would act on.
TEST(Printable, EscapesEveryControlByteAndKeepsTheRest) {
  for (int b = 0; b < 256; ++b) {
    const std::string in = std::string("a") + static_cast<char>(b) + "z";
    const std::string out = printable(in);
    if (b < 0x20 || b == 0x7f) {
      char want[8];
      std::snprintf(want, sizeof want, "a\\x%02xz", b);
      EXPECT_EQ(out, want) << b;
    } else {
      EXPECT_EQ(out, in) << b;
    }
  }
  EXPECT_EQ(printable(std::string("\x1b[2J\0", 5)), "\\x1b[2J\\x00");
  EXPECT_EQ(printable("Vidéo"), "Vidéo");
}
