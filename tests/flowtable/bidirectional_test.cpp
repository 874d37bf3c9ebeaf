// Bidirectional flow tables (issue 10): both directions of a connection in one flow, each
// record marked initiator or responder, against a reference model written from the contract.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <vector>

#include "flowtable/flow_table.hpp"
#include "tests/flowtable/collector.hpp"

namespace flowpic {
namespace {

using test::Collector;
using test::feed;
using test::feed_bi;
using test::key_v4;

constexpr TimeNs kT0 = 1'700'000'000ull * kNsPerSec;

FlowTableConfig bi_count(uint32_t packets = 20, uint32_t min_packets = 10) {
  FlowTableConfig c;
  c.capacity = 256;
  c.window.kind = WindowPolicy::Kind::kCount;
  c.window.packets = packets;
  c.window.min_packets = min_packets;
  c.window.bidirectional = true;
  return c;
}

TEST(FlowKeyCanonical, BothDirectionsGiveOneKeyAndOneOfThemSwaps) {
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    FlowKey k = key_v4(rng() % 8, rng() % 8, static_cast<uint16_t>(rng() % 4), static_cast<uint16_t>(rng() % 4));
    if (i % 5 == 0) {  // IPv6 too
      k.family = 6;
      for (int b = 0; b < 16; ++b) k.src[b] = static_cast<uint8_t>(rng() % 3), k.dst[b] = static_cast<uint8_t>(rng() % 3);
    }
    FlowKey a = k, b = reversed(k);
    const bool sa = canonicalize(a), sb = canonicalize(b);
    EXPECT_TRUE(a == b) << to_string(k);
    const bool same_endpoints = std::memcmp(k.src, k.dst, 16) == 0 && k.sport == k.dport;
    if (same_endpoints) {
      EXPECT_FALSE(sa || sb);
    } else {
      EXPECT_NE(sa, sb) << to_string(k);  // exactly one direction is the swapped one
    }
    FlowKey again = a;
    EXPECT_FALSE(canonicalize(again));  // idempotent
  }
}

TEST(FlowTableBidirectional, OneWindowHoldsBothDirectionsMarkedFromTheInitiator) {
  Collector col;
  FlowTable t(bi_count(), &Collector::sink, &col);
  // The client's address is the larger one, so its packets are the swapped ones: the table
  // must still call the client (first packet) the initiator.
  const FlowKey up = key_v4(0x0a000009, 0x0a000001, 50000, 443, 6), down = reversed(up);
  std::vector<bool> rev;
  for (uint32_t i = 0; i < 20; ++i) {
    const bool r = i % 3 == 1;
    rev.push_back(r);
    feed_bi(t, r ? down : up, r ? 1400 : 80 + i, kT0 + i * kNsPerMs);
  }
  ASSERT_EQ(col.windows.size(), 1u);
  const Window& w = col.windows[0];
  EXPECT_TRUE(w.info.key == up) << to_string(w.info.key);
  EXPECT_EQ(w.info.packets, 20u);
  ASSERT_EQ(w.records.size(), 20u);
  for (uint32_t i = 0; i < 20; ++i) {
    EXPECT_EQ(w.records[i].reverse, rev[i] ? 1 : 0) << i;
    EXPECT_EQ(w.records[i].size, rev[i] ? 1400u : 80 + i) << i;
    EXPECT_EQ(w.records[i].t_us, i * 1000u);
  }
  FlowView v;
  ASSERT_TRUE(t.find(up, v));
  EXPECT_TRUE(v.key == up);
  ASSERT_TRUE(t.find(down, v));  // either direction's key finds the flow
  EXPECT_EQ(v.packets, 20u);
  EXPECT_EQ(t.size(), 1u);
}

TEST(FlowTableBidirectional, UnidirectionalTableKeepsTheDirectionsApart) {
  Collector col;
  FlowTableConfig c = bi_count();
  c.window.bidirectional = false;
  FlowTable t(c, &Collector::sink, &col);
  const FlowKey up = key_v4(0x0a000009, 0x0a000001, 50000, 443, 6), down = reversed(up);
  for (uint32_t i = 0; i < 40; ++i) {
    FlowKey k = i % 2 ? down : up;
    const bool swapped = canonicalize(k);  // a caller that canonicalises by mistake: ignored
    t.on_packet(i % 2 ? down : up, flow_hash(i % 2 ? down : up), 100, kT0 + i * kNsPerMs, swapped);
  }
  ASSERT_EQ(col.windows.size(), 2u);
  EXPECT_EQ(t.size(), 2u);
  for (const auto& w : col.windows)
    for (const auto& r : w.records) EXPECT_EQ(r.reverse, 0);
}

// Reference: per connection (canonical key), the packets in order, cut every `packets`
// packets; direction = differs from the connection's first packet; key = the first packet's.
TEST(FlowTableBidirectional, MatchesTheReferenceOnRandomConnections) {
  constexpr uint32_t kPackets = 20, kMin = 5, kConns = 60;
  Collector col;
  FlowTable t(bi_count(kPackets, kMin), &Collector::sink, &col);
  std::mt19937 rng(11);
  struct Ref {
    FlowKey first;
    std::vector<PacketRecord> open;
    TimeNs open_first = 0;
    std::vector<std::pair<FlowKey, std::vector<PacketRecord>>> done;
  };
  std::map<FlowKey, Ref> ref;
  std::vector<FlowKey> conns;
  for (uint32_t c = 0; c < kConns; ++c)
    conns.push_back(key_v4(0x0a000000 + rng() % 50, 0x0a000000 + rng() % 50, static_cast<uint16_t>(1000 + c),
                           static_cast<uint16_t>(rng() % 2 ? 443 : 1000 + c + 7), rng() % 2 ? 6 : 17));
  TimeNs now = kT0;
  for (int i = 0; i < 20000; ++i) {
    now += 1 + rng() % 200000;  // < 0.2 ms apart: nothing idles out
    const FlowKey& c = conns[rng() % kConns];
    const bool back = rng() % 3 == 0;
    const FlowKey k = back ? reversed(c) : c;
    const uint32_t len = 40 + rng() % 1400;
    feed_bi(t, k, len, now);
    FlowKey canon = k;
    canonicalize(canon);
    auto [it, fresh] = ref.try_emplace(canon);
    Ref& r = it->second;
    if (fresh) r.first = k;
    if (r.open.empty()) r.open_first = now;
    r.open.emplace_back(static_cast<uint32_t>((now - r.open_first) / kNsPerUs), len, 1, !(k == r.first));
    if (r.open.size() == kPackets) {
      r.done.emplace_back(r.first, r.open);
      r.open.clear();
    }
  }
  t.flush(now);
  std::map<FlowKey, std::vector<std::vector<PacketRecord>>> got;
  for (const auto& w : col.windows) got[w.info.key].push_back(w.records);
  size_t expected_windows = 0;
  for (auto& [canon, r] : ref) {
    if (r.open.size() >= kMin) r.done.emplace_back(r.first, r.open);
    ASSERT_TRUE(got.count(r.first)) << to_string(r.first);
    const auto& g = got[r.first];
    ASSERT_EQ(g.size(), r.done.size()) << to_string(r.first);
    for (size_t j = 0; j < g.size(); ++j) EXPECT_TRUE(test::same_records(g[j], r.done[j].second)) << to_string(r.first) << " window " << j;
    expected_windows += r.done.size();
  }
  EXPECT_EQ(col.windows.size(), expected_windows);
  EXPECT_EQ(t.counters().flows_created, ref.size());
}

TEST(FlowTableBidirectional, DecimatedRecordKeepsTheDirectionOfItsFirstPacket) {
  Collector col;
  FlowTableConfig c = bi_count();
  c.window.kind = WindowPolicy::Kind::kTime;
  c.window.length_ns = 15 * kNsPerSec;
  c.window.min_packets = 1;
  c.max_records = 8;
  FlowTable t(c, &Collector::sink, &col);
  const FlowKey up = key_v4(0x0a000001, 0x0a000002, 1000, 2000), down = reversed(up);
  // 16 packets, directions F R R F F R R F ...: stride 2 merges (0,1) (2,3) ...
  std::vector<bool> rev;
  for (uint32_t i = 0; i < 16; ++i) {
    const bool r = (i % 4 == 1) || (i % 4 == 2);
    rev.push_back(r);
    feed_bi(t, r ? down : up, 100, kT0 + i * kNsPerMs);
  }
  t.flush(kT0 + kNsPerSec);
  ASSERT_EQ(col.windows.size(), 1u);
  const auto& recs = col.windows[0].records;
  ASSERT_EQ(recs.size(), 8u);
  for (uint32_t j = 0; j < 8; ++j) {
    EXPECT_EQ(recs[j].weight, 2);
    EXPECT_EQ(recs[j].reverse, rev[2 * j] ? 1 : 0) << j;
  }
}

}  // namespace
}  // namespace flowpic
