// Window, timeout, table-full, verdict and decimation behaviour with explicit times.
#include "flowtable/flow_table.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <numeric>
#include <stdexcept>

#include "tests/flowtable/collector.hpp"

namespace flowpic {
namespace {

using test::Collector;
using test::feed;
using test::key_n;
using test::key_v4;
using test::weight_sum;

constexpr TimeNs kT0 = 1'700'000'000ull * kNsPerSec;  // a realistic epoch time

FlowTableConfig count_cfg(uint32_t packets = 20, uint32_t min_packets = 10) {
  FlowTableConfig c;
  c.capacity = 64;
  c.window.kind = WindowPolicy::Kind::kCount;
  c.window.packets = packets;
  c.window.min_packets = min_packets;
  return c;
}

FlowTableConfig time_cfg(TimeNs len = 15 * kNsPerSec, uint32_t min_packets = 1) {
  FlowTableConfig c;
  c.capacity = 64;
  c.idle_timeout_ns = 100 * kNsPerSec;
  c.window.kind = WindowPolicy::Kind::kTime;
  c.window.length_ns = len;
  c.window.min_packets = min_packets;
  return c;
}

uint64_t outcome_sum(const FlowTableCounters& c) {
  return c.windows_emitted + c.windows_sink_full + c.windows_too_small + c.windows_over_limit +
         c.windows_no_records;
}

TEST(FlowTableCount, WindowsOf20Min10ExactBoundaries) {
  Collector col;
  FlowTable t(count_cfg(), &Collector::sink, &col, 3);
  const FlowKey a = key_v4(0x0a000001, 0x0a000002, 5000, 53);
  // 45 packets, 1 ms apart, size 100 + i.
  for (uint32_t i = 0; i < 45; ++i) feed(t, a, 100 + i, kT0 + i * kNsPerMs);
  ASSERT_EQ(col.windows.size(), 2u);
  for (uint32_t w = 0; w < 2; ++w) {
    const Window& win = col.windows[w];
    EXPECT_EQ(win.info.index, w);
    EXPECT_EQ(win.info.reason, CloseReason::kCount);
    EXPECT_EQ(win.info.packets, 20u);
    EXPECT_EQ(win.info.n_records, 20u);
    EXPECT_EQ(win.info.start_ns, kT0 + 20 * w * kNsPerMs);
    EXPECT_EQ(win.info.first_ns, kT0 + 20 * w * kNsPerMs);
    EXPECT_EQ(win.info.end_ns, kT0 + (20 * w + 19) * kNsPerMs);
    EXPECT_EQ(win.info.last_ns, win.info.end_ns);
    EXPECT_EQ(win.info.lcore, 3);
    EXPECT_TRUE(win.info.key == a);
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < 20; ++i) {
      EXPECT_EQ(win.records[i].t_us, i * 1000u);
      EXPECT_EQ(win.records[i].size, 100 + 20 * w + i);
      EXPECT_EQ(win.records[i].weight, 1);
      bytes += 100 + 20 * w + i;
    }
    EXPECT_EQ(win.info.bytes, bytes);
  }
  FlowView v;
  ASSERT_TRUE(t.find(a, v));
  EXPECT_EQ(v.packets, 45u);
  EXPECT_EQ(v.window_index, 2u);
  EXPECT_EQ(v.window_packets, 5u);
  t.flush(kT0 + kNsPerSec);
  EXPECT_EQ(col.windows.size(), 2u);  // 5 packets < min 10
  const auto& c = t.counters();
  EXPECT_EQ(c.windows_closed, 3u);
  EXPECT_EQ(c.windows_too_small, 1u);
  EXPECT_EQ(c.windows_emitted, 2u);
  EXPECT_EQ(outcome_sum(c), c.windows_closed);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.chunks_free(), t.record_chunks());
}

// min_ip_len: shorter packets (pure ACKs) count in the flow's totals and enter no window, so a
// count window holds 20 packets of at least that length, whatever ACKs come between them.
TEST(FlowTableCount, MinIpLenLeavesShortPacketsOutOfWindows) {
  Collector col;
  FlowTableConfig cfg = count_cfg();
  cfg.window.min_ip_len = 53;
  FlowTable t(cfg, &Collector::sink, &col, 0);
  const FlowKey a = key_v4(0x0a000001, 0x0a000002, 5000, 443);
  // 60 packets 1 ms apart: every third a 52-byte ACK (left out), the others 1000 + i bytes.
  uint64_t all_bytes = 0;
  for (uint32_t i = 0; i < 60; ++i) {
    const uint32_t len = i % 3 == 2 ? 52 : 1000 + i;
    all_bytes += len;
    feed(t, a, len, kT0 + i * kNsPerMs);
  }
  // 40 long packets: two full windows, no ACK in either.
  ASSERT_EQ(col.windows.size(), 2u);
  uint32_t i = 0;  // the packet index of the next long one
  for (const Window& w : col.windows) {
    EXPECT_EQ(w.info.packets, 20u);
    ASSERT_EQ(w.records.size(), 20u);
    uint64_t bytes = 0;
    if (i % 3 == 2) ++i;  // a window starts at a long packet
    const uint32_t first = i;
    for (const auto& r : w.records) {
      if (i % 3 == 2) ++i;
      EXPECT_EQ(r.size, 1000 + i);
      EXPECT_EQ(r.t_us, (i - first) * 1000u);
      bytes += 1000 + i;
      ++i;
    }
    EXPECT_EQ(w.info.bytes, bytes);
  }
  FlowView v;
  ASSERT_TRUE(t.find(a, v));
  EXPECT_EQ(v.packets, 60u);  // the flow counts every packet
  EXPECT_EQ(v.bytes, all_bytes);
  EXPECT_EQ(v.window_packets, 0u);
  // A flow of ACKs only never opens a window.
  const FlowKey b = key_v4(0x0a000002, 0x0a000001, 443, 5000);
  for (uint32_t k = 0; k < 30; ++k) feed(t, b, 40, kT0 + k * kNsPerMs);
  t.flush(kT0 + kNsPerSec);
  EXPECT_EQ(col.windows.size(), 2u);
  EXPECT_EQ(t.counters().windows_closed, 2u);
  EXPECT_EQ(t.counters().packets, 90u);
}

TEST(FlowTableTime, FifteenSecondBlocksBoundariesAndSkippedBlocks) {
  Collector col;
  FlowTable t(time_cfg(), &Collector::sink, &col);
  const FlowKey a = key_n(1);
  const TimeNs L = 15 * kNsPerSec;
  feed(t, a, 60, kT0);
  feed(t, a, 61, kT0 + kNsPerSec);
  feed(t, a, 62, kT0 + L - 1);          // last ns of block 0
  EXPECT_TRUE(col.windows.empty());
  feed(t, a, 63, kT0 + L);              // exactly at the boundary: opens block 1
  ASSERT_EQ(col.windows.size(), 1u);
  const Window& w0 = col.windows[0];
  EXPECT_EQ(w0.info.index, 0u);
  EXPECT_EQ(w0.info.reason, CloseReason::kTime);
  EXPECT_EQ(w0.info.start_ns, kT0);
  EXPECT_EQ(w0.info.end_ns, kT0 + L);
  EXPECT_EQ(w0.info.first_ns, kT0);
  EXPECT_EQ(w0.info.last_ns, kT0 + L - 1);
  EXPECT_EQ(w0.info.packets, 3u);
  EXPECT_EQ(w0.info.bytes, 183u);
  ASSERT_EQ(w0.records.size(), 3u);
  EXPECT_EQ(w0.records[1].t_us, 1'000'000u);
  EXPECT_EQ(w0.records[2].t_us, 14'999'999u);  // truncated to whole microseconds
  EXPECT_EQ(w0.records[2].size, 62);

  feed(t, a, 64, kT0 + L + 5 * kNsPerSec);
  feed(t, a, 65, kT0 + 3 * L + 2 * kNsPerSec);  // block 3: block 2 had no packet
  ASSERT_EQ(col.windows.size(), 2u);
  const Window& w1 = col.windows[1];
  EXPECT_EQ(w1.info.index, 1u);
  EXPECT_EQ(w1.info.start_ns, kT0 + L);
  EXPECT_EQ(w1.info.end_ns, kT0 + 2 * L);
  EXPECT_EQ(w1.info.first_ns, kT0 + L);
  EXPECT_EQ(w1.info.last_ns, kT0 + L + 5 * kNsPerSec);
  ASSERT_EQ(w1.records.size(), 2u);
  EXPECT_EQ(w1.records[0].t_us, 0u);
  EXPECT_EQ(w1.records[1].t_us, 5'000'000u);

  // Sweep before the end of block 3: nothing; at its end: closed without a new packet.
  t.expire(kT0 + 4 * L - 1, 64);
  EXPECT_EQ(col.windows.size(), 2u);
  t.expire(kT0 + 4 * L, 64);
  ASSERT_EQ(col.windows.size(), 3u);
  const Window& w3 = col.windows[2];
  EXPECT_EQ(w3.info.index, 3u);
  EXPECT_EQ(w3.info.reason, CloseReason::kTime);
  EXPECT_EQ(w3.info.start_ns, kT0 + 3 * L);
  EXPECT_EQ(w3.info.end_ns, kT0 + 4 * L);
  EXPECT_EQ(w3.info.first_ns, kT0 + 3 * L + 2 * kNsPerSec);
  EXPECT_EQ(w3.info.packets, 1u);
  EXPECT_EQ(t.size(), 1u);  // the flow stays until idle
  FlowView v;
  ASSERT_TRUE(t.find(a, v));
  EXPECT_EQ(v.window_packets, 0u);

  // The next packet opens the block holding it (block 5).
  feed(t, a, 66, kT0 + 5 * L + 1);
  t.flush(kT0 + 6 * L);
  ASSERT_EQ(col.windows.size(), 4u);
  EXPECT_EQ(col.windows[3].info.index, 5u);
  EXPECT_EQ(col.windows[3].info.reason, CloseReason::kFlush);
  EXPECT_EQ(col.windows[3].info.start_ns, kT0 + 5 * L);
}

TEST(FlowTableTime, PacketOlderThanSweptBlockGoesToNextBlock) {
  Collector col;
  FlowTable t(time_cfg(10 * kNsPerSec), &Collector::sink, &col);
  const FlowKey a = key_n(2);
  feed(t, a, 100, kT0);
  t.expire(kT0 + 12 * kNsPerSec, 8);  // closes block 0
  ASSERT_EQ(col.windows.size(), 1u);
  feed(t, a, 100, kT0 + 9 * kNsPerSec);  // a late timestamp for an already closed block
  t.flush(kT0 + 20 * kNsPerSec);
  ASSERT_EQ(col.windows.size(), 2u);
  EXPECT_EQ(col.windows[1].info.index, 1u);
  EXPECT_EQ(col.windows[1].info.first_ns, kT0 + 10 * kNsPerSec);
}

TEST(FlowTableIdle, ExpireClosesIdleFlowsWithReasonIdle) {
  Collector col;
  FlowTableConfig cfg = count_cfg(20, 2);
  cfg.idle_timeout_ns = 30 * kNsPerSec;
  FlowTable t(cfg, &Collector::sink, &col);
  const FlowKey a = key_n(1), b = key_n(2);
  for (int i = 0; i < 3; ++i) feed(t, a, 500, kT0 + i * kNsPerSec);   // last at +2 s
  for (int i = 0; i < 3; ++i) feed(t, b, 700, kT0 + 10 * kNsPerSec + i);
  t.expire(kT0 + 32 * kNsPerSec, 64);  // a idle exactly 30 s: not more than the timeout
  EXPECT_EQ(t.size(), 2u);
  EXPECT_TRUE(col.windows.empty());
  t.expire(kT0 + 32 * kNsPerSec + 1, 64);
  EXPECT_EQ(t.size(), 1u);
  ASSERT_EQ(col.windows.size(), 1u);
  EXPECT_TRUE(col.windows[0].info.key == a);
  EXPECT_EQ(col.windows[0].info.reason, CloseReason::kIdle);
  EXPECT_EQ(col.windows[0].info.packets, 3u);
  EXPECT_EQ(t.counters().flows_expired, 1u);
  FlowView v;
  EXPECT_FALSE(t.find(a, v));
  EXPECT_TRUE(t.find(b, v));
  // Budget bounds the sweep: 1 slot at a time, b sits in slot 1.
  t.expire(kT0 + 100 * kNsPerSec, 1);  // looks at slot 0 (free now): nothing to do
  EXPECT_EQ(t.size(), 1u);
  t.expire(kT0 + 100 * kNsPerSec, 1);  // slot 1
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.counters().flows_expired, 2u);
}

TEST(FlowTableIdle, PacketAfterIdleGapStartsNewFlowWithoutSweep) {
  Collector col;
  FlowTableConfig cfg = count_cfg(20, 2);
  cfg.idle_timeout_ns = 30 * kNsPerSec;
  FlowTable t(cfg, &Collector::sink, &col);
  const FlowKey a = key_n(1);
  const uint32_t s1 = feed(t, a, 100, kT0);
  feed(t, a, 100, kT0 + 1);
  const uint32_t s2 = feed(t, a, 100, kT0 + 40 * kNsPerSec);
  EXPECT_EQ(s1, s2);
  ASSERT_EQ(col.windows.size(), 1u);
  EXPECT_EQ(col.windows[0].info.reason, CloseReason::kIdle);
  EXPECT_EQ(col.windows[0].info.packets, 2u);
  FlowView v;
  ASSERT_TRUE(t.find(a, v));
  EXPECT_EQ(v.packets, 1u);
  EXPECT_EQ(v.first_ns, kT0 + 40 * kNsPerSec);
  EXPECT_EQ(t.counters().flows_created, 2u);
  EXPECT_EQ(t.counters().flows_expired, 1u);
}

TEST(FlowTableFlush, EmitsPartialWindowsOnlyWithMinPackets) {
  Collector col;
  FlowTable t(count_cfg(20, 10), &Collector::sink, &col);
  const FlowKey a = key_n(1), b = key_n(2), c = key_n(3);
  for (int i = 0; i < 9; ++i) feed(t, a, 100, kT0 + i);
  for (int i = 0; i < 10; ++i) feed(t, b, 200, kT0 + i);
  for (int i = 0; i < 33; ++i) feed(t, c, 300, kT0 + i);  // one full window + 13
  ASSERT_EQ(col.windows.size(), 1u);
  t.flush(kT0 + 100);
  ASSERT_EQ(col.windows.size(), 3u);
  // slot order: a (slot 0) too small, b (slot 1), c (slot 2)
  EXPECT_TRUE(col.windows[1].info.key == b);
  EXPECT_EQ(col.windows[1].info.reason, CloseReason::kFlush);
  EXPECT_EQ(col.windows[1].info.packets, 10u);
  EXPECT_TRUE(col.windows[2].info.key == c);
  EXPECT_EQ(col.windows[2].info.packets, 13u);
  EXPECT_EQ(col.windows[2].info.index, 1u);
  EXPECT_EQ(t.counters().windows_too_small, 1u);
  EXPECT_EQ(t.counters().flows_flushed, 3u);
  EXPECT_EQ(t.size(), 0u);
  // The table is usable after a flush.
  feed(t, a, 100, kT0 + 200);
  EXPECT_EQ(t.size(), 1u);
}

TEST(FlowTableLimit, MaxWindowsOneGivesOnlyTheEarlyWindow) {
  Collector col;
  FlowTableConfig cfg = count_cfg(20, 10);
  cfg.window.max_windows = 1;
  FlowTable t(cfg, &Collector::sink, &col);
  const FlowKey a = key_n(1);
  for (int i = 0; i < 65; ++i) feed(t, a, 100, kT0 + i * kNsPerMs);
  t.flush(kT0 + kNsPerSec);
  ASSERT_EQ(col.windows.size(), 1u);
  EXPECT_EQ(col.windows[0].info.index, 0u);
  EXPECT_EQ(col.windows[0].info.packets, 20u);
  const auto& c = t.counters();
  EXPECT_EQ(c.windows_closed, 4u);  // 20, 20, 20, 5
  EXPECT_EQ(c.windows_over_limit, 3u);
  EXPECT_EQ(outcome_sum(c), c.windows_closed);
  // Past its limit the flow holds no record chunk.
  Collector col2;
  FlowTable t2(cfg, &Collector::sink, &col2);
  for (int i = 0; i < 25; ++i) feed(t2, a, 100, kT0 + i);
  EXPECT_EQ(t2.chunks_free(), t2.record_chunks());
}

TEST(FlowTableFull, NewFlowsPastCapacityAreNotTrackedAndCounted) {
  Collector col;
  FlowTableConfig cfg = count_cfg(20, 1);
  cfg.capacity = 4;
  cfg.idle_timeout_ns = 10 * kNsPerSec;
  FlowTable t(cfg, &Collector::sink, &col);
  for (uint32_t f = 0; f < 4; ++f) EXPECT_EQ(feed(t, key_n(f), 100, kT0 + f), f);
  EXPECT_EQ(t.size(), 4u);
  EXPECT_EQ(feed(t, key_n(10), 100, kT0 + 5), FlowTable::kNoSlot);
  EXPECT_EQ(feed(t, key_n(11), 100, kT0 + 6), FlowTable::kNoSlot);
  EXPECT_EQ(t.counters().flows_rejected_full, 2u);
  EXPECT_EQ(t.counters().packets, 6u);
  // Known flows keep working.
  EXPECT_EQ(feed(t, key_n(2), 100, kT0 + 7), 2u);
  FlowView v;
  EXPECT_FALSE(t.find(key_n(10), v));
  ASSERT_TRUE(t.find(key_n(2), v));
  EXPECT_EQ(v.packets, 2u);
  // Later all but flow 2 are idle: a new flow reclaims the first idle slot from the cursor.
  feed(t, key_n(2), 100, kT0 + 9 * kNsPerSec);
  const uint32_t s = feed(t, key_n(10), 100, kT0 + 12 * kNsPerSec);
  EXPECT_EQ(s, 0u);
  EXPECT_EQ(t.counters().flows_reclaimed, 1u);
  EXPECT_EQ(t.counters().flows_expired, 1u);
  ASSERT_EQ(col.windows.size(), 1u);
  EXPECT_TRUE(col.windows[0].info.key == key_n(0));
  EXPECT_EQ(col.windows[0].info.reason, CloseReason::kIdle);
  EXPECT_FALSE(t.find(key_n(0), v));
  EXPECT_TRUE(t.find(key_n(10), v));
  // The cursor moved on: the next one reclaims slot 1 (slot 2 is still active).
  EXPECT_EQ(feed(t, key_n(11), 100, kT0 + 12 * kNsPerSec + 1), 1u);
  EXPECT_EQ(feed(t, key_n(12), 100, kT0 + 12 * kNsPerSec + 2), 3u);  // skips busy slot 2
  EXPECT_EQ(feed(t, key_n(13), 100, kT0 + 12 * kNsPerSec + 3), FlowTable::kNoSlot);
  EXPECT_EQ(t.counters().flows_rejected_full, 3u);
  EXPECT_EQ(t.size(), 4u);
}

TEST(FlowTableVerdict, SlotReuseIgnoresStaleVerdictByGeneration) {
  Collector col;
  FlowTableConfig cfg = count_cfg(2, 1);
  cfg.capacity = 1;
  cfg.idle_timeout_ns = kNsPerSec;
  FlowTable t(cfg, &Collector::sink, &col);
  const FlowKey a = key_n(1), b = key_n(2);
  const uint32_t sa = feed(t, a, 100, kT0);
  feed(t, a, 100, kT0 + 1);
  ASSERT_EQ(col.windows.size(), 1u);
  const WindowInfo wa = col.windows[0].info;
  EXPECT_EQ(wa.flow_slot, sa);
  EXPECT_EQ(t.verdict(sa), -1);
  t.expire(kT0 + 2 * kNsPerSec, 1);
  EXPECT_EQ(t.size(), 0u);
  // Verdict for a after a left, slot free: ignored.
  EXPECT_FALSE(t.apply_verdict(wa.flow_slot, wa.flow_gen, 3, 0.9f, 7));
  const uint32_t sb = feed(t, b, 100, kT0 + 3 * kNsPerSec);
  EXPECT_EQ(sb, sa);  // reused
  EXPECT_EQ(t.verdict(sb), -1);
  // a's late verdict must not land on b.
  EXPECT_FALSE(t.apply_verdict(wa.flow_slot, wa.flow_gen, 3, 0.9f, 7));
  EXPECT_EQ(t.verdict(sb), -1);
  feed(t, b, 100, kT0 + 3 * kNsPerSec + 1);
  ASSERT_EQ(col.windows.size(), 2u);
  const WindowInfo wb = col.windows[1].info;
  EXPECT_EQ(wb.flow_gen, wa.flow_gen + 1);
  EXPECT_TRUE(t.apply_verdict(wb.flow_slot, wb.flow_gen, 4, 0.75f, 9));
  EXPECT_EQ(t.verdict(sb), 4);
  FlowView v;
  ASSERT_TRUE(t.find(b, v));
  EXPECT_EQ(v.verdict, 4);
  EXPECT_FLOAT_EQ(v.confidence, 0.75f);
  EXPECT_EQ(v.model_tag, 9u);
  EXPECT_EQ(t.verdict(FlowTable::kNoSlot), -1);
  EXPECT_FALSE(t.apply_verdict(12345, 1, 1, 1.f, 1));
}

TEST(FlowTableDecimation, MaxRecordsKnownAnswer) {
  Collector col;
  FlowTableConfig cfg = count_cfg(100, 10);
  cfg.max_records = 8;
  FlowTable t(cfg, &Collector::sink, &col);
  const FlowKey a = key_n(1);
  for (uint32_t i = 0; i < 100; ++i) feed(t, a, 1000 + i, kT0 + i * kNsPerMs);
  ASSERT_EQ(col.windows.size(), 1u);
  const Window& w = col.windows[0];
  EXPECT_EQ(w.info.packets, 100u);
  // Decimations at packets 8, 16, 32, 64: stride 16; records start at multiples of 16.
  ASSERT_EQ(w.info.n_records, 7u);
  ASSERT_EQ(w.records.size(), 7u);
  const uint16_t weights[7] = {16, 16, 16, 16, 16, 16, 4};
  for (uint32_t j = 0; j < 7; ++j) {
    EXPECT_EQ(w.records[j].t_us, 16 * j * 1000u) << j;
    EXPECT_EQ(w.records[j].size, 1000 + 16 * j) << j;
    EXPECT_EQ(w.records[j].weight, weights[j]) << j;
  }
  EXPECT_EQ(weight_sum(w.records), 100u);
  EXPECT_EQ(t.counters().windows_decimated, 1u);
}

TEST(FlowTableDecimation, LongTimeWindowStaysBoundedAndWeightsSumToPackets) {
  Collector col;
  FlowTableConfig cfg = time_cfg(60 * kNsPerSec, 10);
  cfg.max_records = 1024;
  FlowTable t(cfg, &Collector::sink, &col);
  const FlowKey a = key_n(1), b = key_n(2);
  // 50k packets at 1 kHz in one 60 s block for a; 1000 for b (no decimation).
  for (uint32_t i = 0; i < 50000; ++i) {
    feed(t, a, 40 + i % 1400, kT0 + i * kNsPerMs);
    if (i % 50 == 0) feed(t, b, 100, kT0 + i * kNsPerMs);
  }
  t.flush(kT0 + 61 * kNsPerSec);
  ASSERT_EQ(col.windows.size(), 2u);
  for (const Window& w : col.windows) {
    EXPECT_LE(w.info.n_records, 1024u);
    EXPECT_EQ(w.records.size(), w.info.n_records);
    EXPECT_EQ(weight_sum(w.records), w.info.packets);
    for (size_t j = 1; j < w.records.size(); ++j) EXPECT_LT(w.records[j - 1].t_us, w.records[j].t_us);
  }
  EXPECT_EQ(col.windows[0].info.packets, 50000u);
  EXPECT_GT(col.windows[0].info.n_records, 512u);  // halved at most down to max/2, then grew
  EXPECT_EQ(col.windows[1].info.packets, 1000u);
  EXPECT_EQ(col.windows[1].info.n_records, 1000u);
  EXPECT_EQ(t.counters().windows_decimated, 1u);
  EXPECT_EQ(t.chunks_free(), t.record_chunks());
}

TEST(FlowTableDecimation, PoolEmptyDecimatesEarlyOrDropsUnrecordedWindow) {
  Collector col;
  FlowTableConfig cfg = count_cfg(100, 10);
  cfg.record_chunks = 1;
  FlowTable t(cfg, &Collector::sink, &col);
  EXPECT_EQ(t.record_chunks(), 1u);
  const FlowKey a = key_n(1), b = key_n(2);
  for (uint32_t i = 0; i < 40; ++i) feed(t, a, 100 + i, kT0 + i * kNsPerUs);
  for (uint32_t i = 0; i < 12; ++i) feed(t, b, 100, kT0 + 100 * kNsPerUs + i);  // no chunk left
  EXPECT_EQ(t.counters().record_pool_empty, 2u);  // a at its 33rd packet, b at its first
  t.flush(kT0 + kNsPerSec);
  ASSERT_EQ(col.windows.size(), 1u);
  const Window& w = col.windows[0];
  EXPECT_TRUE(w.info.key == a);
  EXPECT_EQ(w.info.packets, 40u);
  // 32 records halved to 16 (weight 2) then packets 32..39 as 4 records of stride 2.
  ASSERT_EQ(w.info.n_records, 20u);
  for (uint32_t j = 0; j < 20; ++j) {
    EXPECT_EQ(w.records[j].t_us, 2 * j);
    EXPECT_EQ(w.records[j].weight, 2);
  }
  EXPECT_EQ(weight_sum(w.records), 40u);
  EXPECT_EQ(t.counters().windows_no_records, 1u);
  EXPECT_EQ(t.counters().windows_decimated, 1u);
  EXPECT_EQ(outcome_sum(t.counters()), t.counters().windows_closed);
  EXPECT_EQ(t.chunks_free(), 1u);
}

TEST(FlowTableDecimation, StrideCapStopsRecordingAndCounts) {
  Collector col;
  FlowTableConfig cfg = time_cfg(4000 * kNsPerSec, 1);
  cfg.max_records = 2;
  FlowTable t(cfg, &Collector::sink, &col);
  const FlowKey a = key_n(1);
  const uint32_t n = 2 * 32768 + 100;  // past max_records x max stride
  for (uint32_t i = 0; i < n; ++i) feed(t, a, 100, kT0 + i * kNsPerUs);
  t.flush(kT0 + 10 * kNsPerSec);
  ASSERT_EQ(col.windows.size(), 1u);
  EXPECT_EQ(col.windows[0].info.packets, n);
  EXPECT_EQ(col.windows[0].info.n_records, 2u);
  EXPECT_EQ(weight_sum(col.windows[0].records), 65536u);
  EXPECT_EQ(t.counters().windows_records_capped, 1u);
}

TEST(FlowTableSink, RefusedWindowsAreCountedAndDropped) {
  Collector col;
  col.refuse_every = 2;  // refuse every second window
  FlowTable t(count_cfg(10, 10), &Collector::sink, &col);
  const FlowKey a = key_n(1);
  for (uint32_t i = 0; i < 60; ++i) feed(t, a, 100, kT0 + i);
  EXPECT_EQ(col.calls, 6u);
  EXPECT_EQ(col.windows.size(), 3u);
  EXPECT_EQ(t.counters().windows_sink_full, 3u);
  EXPECT_EQ(t.counters().windows_emitted, 3u);
  EXPECT_EQ(col.windows[1].info.index, 2u);
  EXPECT_EQ(t.chunks_free(), t.record_chunks());
}

TEST(FlowTableSink, SinkMayApplyVerdictDuringTheCall) {
  struct Ctx {
    FlowTable* t = nullptr;
    int calls = 0;
  } ctx;
  auto sink = [](void* p, const WindowInfo& info, const PacketRecord*, uint32_t) {
    auto* c = static_cast<Ctx*>(p);
    ++c->calls;
    return c->t->apply_verdict(info.flow_slot, info.flow_gen, 2, 0.5f, 1);
  };
  FlowTable t(count_cfg(10, 10), sink, &ctx);
  ctx.t = &t;
  const FlowKey a = key_n(1);
  uint32_t s = 0;
  for (uint32_t i = 0; i < 10; ++i) s = feed(t, a, 100, kT0 + i);
  EXPECT_EQ(ctx.calls, 1);
  EXPECT_EQ(t.verdict(s), 2);
  EXPECT_EQ(t.counters().windows_emitted, 1u);
}

TEST(FlowTableScan, ScanVisitsEveryFlowInSmallSteps) {
  FlowTableConfig cfg = count_cfg(20, 10);
  cfg.capacity = 100;
  FlowTable t(cfg, nullptr, nullptr);
  for (uint32_t f = 0; f < 37; ++f)
    for (uint32_t i = 0; i <= f % 5; ++i) feed(t, key_n(f), 100, kT0 + i);
  uint32_t cursor = 0, steps = 0;
  uint64_t flows = 0, packets = 0;
  bool done = false;
  while (!done) {
    done = t.scan(&cursor, 16, [&](const FlowView& v) { ++flows; packets += v.packets; });
    ++steps;
  }
  EXPECT_EQ(steps, 7u);  // ceil(100 / 16)
  EXPECT_EQ(cursor, 0u);
  EXPECT_EQ(flows, 37u);
  uint64_t expect = 0;
  for (uint32_t f = 0; f < 37; ++f) expect += f % 5 + 1;
  EXPECT_EQ(packets, expect);
}

TEST(FlowTableConfig, ValidateSaysWhatToChange) {
  FlowTableConfig c;
  EXPECT_EQ(c.validate(), "");
  c.capacity = 0;
  EXPECT_NE(c.validate().find("capacity"), std::string::npos);
  c.capacity = (1u << 26) + 1;
  EXPECT_NE(c.validate().find("capacity"), std::string::npos);
  c = FlowTableConfig{};
  c.window.kind = WindowPolicy::Kind::kTime;
  c.window.length_ns = 0;
  EXPECT_NE(c.validate().find("length"), std::string::npos);
  c = FlowTableConfig{};
  c.window.packets = 0;
  EXPECT_NE(c.validate().find("packets"), std::string::npos);
  c = FlowTableConfig{};
  c.window.min_packets = 0;
  EXPECT_NE(c.validate().find("min_packets"), std::string::npos);
  c = FlowTableConfig{};
  c.window.min_packets = 30;  // > 20 packets per count window
  EXPECT_NE(c.validate().find("min_packets"), std::string::npos);
  c = FlowTableConfig{};
  c.max_records = 7;
  EXPECT_NE(c.validate().find("max_records"), std::string::npos);
  c.max_records = 0;
  EXPECT_NE(c.validate().find("max_records"), std::string::npos);
  c = FlowTableConfig{};
  c.idle_timeout_ns = 0;
  EXPECT_NE(c.validate().find("idle"), std::string::npos);
  c = FlowTableConfig{};
  c.capacity = 0;
  EXPECT_THROW(FlowTable(c, nullptr, nullptr), std::invalid_argument);
}

// on_burst reuses index probes taken up to 20 packets before the packet is accounted; every
// way the index can change in between (new flows, a full table that
// reclaims idle flows, idle flows restarting) and tag collisions between different keys must
// give exactly the packet-by-packet result: slots, verdicts, windows and counters.
struct BurstCase {
  uint32_t burst;        // packets per on_burst call (kMaxBurst is 64)
  uint32_t tag_classes;  // hashes given to the table: 0 = flow_hash, else key id % tag_classes
  TimeNs idle_ns;
};

class FlowTableBurst : public ::testing::TestWithParam<BurstCase> {};

TEST_P(FlowTableBurst, BurstEqualsPacketByPacket) {
  const BurstCase bc = GetParam();
  FlowTableConfig cfg = count_cfg(20, 10);
  cfg.capacity = 512;
  cfg.max_records = 16;
  cfg.idle_timeout_ns = bc.idle_ns;
  Collector c1, c2;
  FlowTable t1(cfg, &Collector::sink, &c1), t2(cfg, &Collector::sink, &c2);
  std::vector<FlowKey> keys;
  std::vector<uint64_t> hashes;
  std::vector<uint32_t> lens;
  std::vector<TimeNs> times;
  uint64_t x = 12345;
  TimeNs t = kT0;
  for (uint32_t i = 0; i < 20000; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    // 80 % of the packets from 60 busy flows (they fill windows), the rest spread over 700
    // flows (more than the 512 slots: the table fills up).
    const uint32_t r = static_cast<uint32_t>(x >> 40);
    const uint32_t id = (r % 10 < 8) ? (r / 10) % 60 : (r / 10) % 700;
    keys.push_back(key_n(id));
    hashes.push_back(bc.tag_classes ? 0x9e3779b97f4a7c15ull * (id % bc.tag_classes) : flow_hash(keys.back()));
    lens.push_back(static_cast<uint32_t>(x >> 20) % 1500);
    t += (i % 3000 == 2999) ? 3 * bc.idle_ns : 10 * kNsPerUs;  // now and then everything goes idle
    times.push_back(t);
  }
  const size_t total = keys.size();
  std::vector<uint32_t> s1(total), s2(total);
  std::vector<int16_t> v1(total), v2(total);
  int16_t cls = 0;
  for (size_t i = 0; i < total; i += bc.burst) {
    const uint32_t n = static_cast<uint32_t>(std::min<size_t>(bc.burst, total - i));
    for (size_t k = i; k < i + n; ++k) {
      s1[k] = t1.on_packet(keys[k], hashes[k], lens[k], times[k]);
      v1[k] = t1.verdict(s1[k]);
    }
    t2.on_burst(&keys[i], &hashes[i], &lens[i], &times[i], n, &s2[i], &v2[i]);
    // Verdicts for some flows between bursts, the same on both tables.
    for (const auto& w : c1.windows)
      if (w.info.index % 3 == 0) {
        t1.apply_verdict(w.info.flow_slot, w.info.flow_gen, cls, 0.5f, 1);
        t2.apply_verdict(w.info.flow_slot, w.info.flow_gen, cls, 0.5f, 1);
      }
    cls = static_cast<int16_t>((cls + 1) % 5);
  }
  EXPECT_EQ(s1, s2);
  EXPECT_EQ(v1, v2);
  EXPECT_GT(std::count_if(v2.begin(), v2.end(), [](int16_t v) { return v >= 0; }), 1000);
  t1.flush(times.back());
  t2.flush(times.back());
  ASSERT_EQ(c1.windows.size(), c2.windows.size());
  ASSERT_GT(c1.windows.size(), 100u);
  for (size_t i = 0; i < c1.windows.size(); ++i) {
    EXPECT_TRUE(test::same_info(c1.windows[i].info, c2.windows[i].info)) << i;
    EXPECT_TRUE(test::same_records(c1.windows[i].records, c2.windows[i].records)) << i;
  }
  const FlowTableCounters& a = t1.counters();
  const FlowTableCounters& b = t2.counters();
  EXPECT_GT(a.flows_rejected_full, 0u);
  EXPECT_GT(a.flows_reclaimed, 0u);
  EXPECT_EQ(a.flows_rejected_full, b.flows_rejected_full);
  EXPECT_EQ(a.flows_created, b.flows_created);
  EXPECT_EQ(a.flows_expired, b.flows_expired);
  EXPECT_EQ(a.flows_reclaimed, b.flows_reclaimed);
  EXPECT_EQ(a.windows_closed, b.windows_closed);
}

INSTANTIATE_TEST_SUITE_P(Shapes, FlowTableBurst,
                         ::testing::Values(BurstCase{37, 0, 50 * kNsPerMs}, BurstCase{32, 0, 5 * kNsPerSec},
                                           BurstCase{150, 0, 50 * kNsPerMs},  // > kMaxBurst: several groups
                                           BurstCase{64, 40, 50 * kNsPerMs},  // 700 keys on 40 tags
                                           BurstCase{1, 7, 50 * kNsPerMs}),
                         [](const auto& info) {
                           return "burst" + std::to_string(info.param.burst) + "_tags" +
                                  std::to_string(info.param.tag_classes) + "_idle" +
                                  std::to_string(info.param.idle_ns / kNsPerMs) + "ms";
                         });

TEST(FlowTableScale, MillionFlowTableAndMemoryPerFlow) {
  FlowTableConfig cfg;  // defaults: count windows of 20, min 10
  cfg.capacity = 1u << 20;
  FlowTable t(cfg, nullptr, nullptr);
  EXPECT_EQ(t.capacity(), 1u << 20);
  const double per_flow = double(t.memory_bytes()) / cfg.capacity;
  std::printf("capacity %u: memory_bytes %zu (%.1f bytes per flow), record chunks %u\n", cfg.capacity,
              t.memory_bytes(), per_flow, t.record_chunks());
  // slots (128) + index (>= 16) + one 256-byte chunk per flow at least
  EXPECT_GE(per_flow, 128.0 + 16 + 256);
  EXPECT_LT(per_flow, 512.0);
  for (uint32_t f = 0; f < cfg.capacity; ++f) ASSERT_EQ(feed(t, key_n(f), 100, kT0 + f), f);
  EXPECT_EQ(t.size(), cfg.capacity);
  EXPECT_EQ(feed(t, key_v4(1, 2, 3, 4), 100, kT0 + cfg.capacity), FlowTable::kNoSlot);
  FlowView v;
  ASSERT_TRUE(t.find(key_n(777777), v));
  EXPECT_EQ(v.first_ns, kT0 + 777777);
  t.flush(kT0 + 2 * kNsPerSec);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.counters().windows_too_small, cfg.capacity);
  EXPECT_EQ(t.chunks_free(), t.record_chunks());
}

}  // namespace
}  // namespace flowpic
