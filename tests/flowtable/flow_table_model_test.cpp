// Randomized comparison of FlowTable with a plain std::map reference model of the same
// semantics (docs/flowtable.md), plus determinism. The model keeps records in std::vector
// and flows in a std::map; the table under test uses its hash index and chunk pool.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <vector>

#include "flowtable/flow_table.hpp"
#include "tests/flowtable/collector.hpp"

namespace flowpic {
namespace {

using test::Collector;

class RefTable {
 public:
  RefTable(const FlowTableConfig& cfg, Collector* out) : cfg_(cfg), out_(out), slots_(cfg.capacity) {
    for (uint32_t i = 0; i < cfg.capacity; ++i) free_.push_back(cfg.capacity - 1 - i);
    gen_.assign(cfg.capacity, 0);
  }
  FlowTableCounters c;

  uint32_t on_packet(const FlowKey& key, uint32_t len, TimeNs now) {
    ++c.packets;
    auto it = index_.find(key);
    uint32_t s;
    if (it == index_.end()) {
      if (free_.empty()) {
        bool got = false;
        for (uint32_t k = 0; k < FlowTable::kReclaimProbe && k < cfg_.capacity; ++k) {
          const uint32_t r = reclaim_;
          reclaim_ = (reclaim_ + 1) % cfg_.capacity;
          if (idle(*slots_[r], now)) {
            expire_flow(r);
            ++c.flows_reclaimed;
            got = true;
            break;
          }
        }
        if (!got) {
          ++c.flows_rejected_full;
          return FlowTable::kNoSlot;
        }
      }
      s = free_.back();
      free_.pop_back();
      index_[key] = s;
      start(s, key, now);
    } else {
      s = it->second;
      if (idle(*slots_[s], now)) {
        if (slots_[s]->win_packets) close(s, CloseReason::kIdle);
        ++c.flows_expired;
        start(s, key, now);
      }
    }
    add(s, len, now);
    return s;
  }

  void expire(TimeNs now, uint32_t budget) {
    budget = std::min(budget, cfg_.capacity);
    for (uint32_t k = 0; k < budget; ++k) {
      const uint32_t s = sweep_;
      sweep_ = (sweep_ + 1) % cfg_.capacity;
      if (!slots_[s]) continue;
      if (idle(*slots_[s], now)) expire_flow(s);
      else if (is_time() && slots_[s]->win_packets && now >= slots_[s]->win_end) close(s, CloseReason::kTime);
    }
  }

  void flush() {
    for (uint32_t s = 0; s < cfg_.capacity; ++s) {
      if (!slots_[s]) continue;
      if (slots_[s]->win_packets) close(s, CloseReason::kFlush);
      remove(s);
      ++c.flows_flushed;
    }
  }

 private:
  struct Flow {
    FlowKey key;
    TimeNs first = 0, last = 0, win_first = 0, win_end = 0;
    uint32_t win_packets = 0, win_index = 0, windows_seen = 0, stride = 1;
    uint64_t win_bytes = 0;
    bool capped = false;
    std::vector<PacketRecord> recs;
    uint32_t gen = 0;
  };

  bool is_time() const { return cfg_.window.kind == WindowPolicy::Kind::kTime; }
  bool idle(const Flow& f, TimeNs now) const { return now > f.last && now - f.last > cfg_.idle_timeout_ns; }

  void start(uint32_t s, const FlowKey& key, TimeNs now) {
    Flow f;
    f.key = key;
    f.first = f.last = f.win_first = f.win_end = now;
    f.gen = ++gen_[s];
    slots_[s] = f;
    ++c.flows_created;
  }

  void remove(uint32_t s) {
    index_.erase(slots_[s]->key);
    slots_[s].reset();
    free_.push_back(s);
  }

  void expire_flow(uint32_t s) {
    if (slots_[s]->win_packets) close(s, CloseReason::kIdle);
    remove(s);
    ++c.flows_expired;
  }

  void add(uint32_t s, uint32_t len, TimeNs now) {
    Flow& f = *slots_[s];
    TimeNs t = std::max(now, f.last);
    const TimeNs L = cfg_.window.length_ns;
    if (is_time()) {
      if (f.win_packets == 0 || t >= f.win_end) {
        if (f.win_packets) close(s, CloseReason::kTime);
        else if (t < f.win_end) t = f.win_end;
        const uint64_t b = (t - f.first) / L;
        f.win_index = static_cast<uint32_t>(b);
        f.win_end = f.first + (b + 1) * L;
        f.win_first = t;
      }
    } else if (f.win_packets == 0) {
      f.win_first = t;
    }
    ++f.win_packets;
    f.win_bytes += len;
    f.last = t;
    const bool over = cfg_.window.max_windows && f.windows_seen >= cfg_.window.max_windows;
    if (!over && !f.capped) {
      if (f.stride > 1 && f.recs.back().weight < f.stride) {
        ++f.recs.back().weight;
      } else {
        bool append = true;
        if (f.recs.size() == cfg_.max_records) {
          if (f.stride == (1u << FlowTable::kMaxStrideLog2)) {
            f.capped = true;
            ++c.windows_records_capped;
            append = false;
          } else {
            if (f.stride == 1) ++c.windows_decimated;
            std::vector<PacketRecord> kept;
            for (size_t j = 0; j < f.recs.size(); j += 2) {
              PacketRecord r = f.recs[j];
              if (j + 1 < f.recs.size()) r.weight = static_cast<uint16_t>(r.weight + f.recs[j + 1].weight);
              kept.push_back(r);
            }
            f.recs = kept;
            f.stride *= 2;
            if (f.recs.back().weight < f.stride) {
              ++f.recs.back().weight;
              append = false;
            }
          }
        }
        if (append) {
          const uint64_t dt = (t - f.win_first) / 1000;
          f.recs.push_back(PacketRecord{static_cast<uint32_t>(std::min<uint64_t>(dt, 0xffffffffu)),
                                        static_cast<uint16_t>(std::min<uint32_t>(len, 65535)), 1});
        }
      }
    }
    if (!is_time() && f.win_packets == cfg_.window.packets) close(s, CloseReason::kCount);
  }

  void close(uint32_t s, CloseReason reason) {
    Flow& f = *slots_[s];
    ++c.windows_closed;
    if (cfg_.window.max_windows && f.windows_seen >= cfg_.window.max_windows) {
      ++c.windows_over_limit;
    } else if (f.win_packets < cfg_.window.min_packets) {
      ++c.windows_too_small;
    } else {
      WindowInfo info;
      info.key = f.key;
      info.start_ns = is_time() ? f.win_end - cfg_.window.length_ns : f.win_first;
      info.end_ns = is_time() ? f.win_end : f.last;
      info.first_ns = f.win_first;
      info.last_ns = f.last;
      info.bytes = f.win_bytes;
      info.packets = f.win_packets;
      info.index = f.win_index;
      info.n_records = static_cast<uint32_t>(f.recs.size());
      info.reason = reason;
      info.lcore = 5;
      info.flow_slot = s;
      info.flow_gen = f.gen;
      if (Collector::sink(out_, info, f.recs.data(), info.n_records)) ++c.windows_emitted;
      else ++c.windows_sink_full;
    }
    f.recs.clear();
    f.win_packets = 0;
    f.win_bytes = 0;
    f.stride = 1;
    f.capped = false;
    ++f.windows_seen;
    if (!is_time()) ++f.win_index;
  }

  FlowTableConfig cfg_;
  Collector* out_;
  std::vector<std::optional<Flow>> slots_;
  std::vector<uint32_t> gen_;
  std::vector<uint32_t> free_;
  std::map<FlowKey, uint32_t> index_;
  uint32_t sweep_ = 0, reclaim_ = 0;
};

struct Scenario {
  FlowTableConfig cfg;
  uint32_t flows;
  uint32_t packets;
  TimeNs mean_gap_ns;
  uint32_t refuse_every;
};

// Drives `run(op)` with a seeded sequence of packets, sweeps and a final flush.
template <class Packet, class Expire, class Flush>
void drive(const Scenario& sc, uint32_t seed, Packet&& packet, Expire&& expire, Flush&& flush) {
  std::mt19937_64 rng(seed);
  std::exponential_distribution<double> gap(1.0 / double(sc.mean_gap_ns));
  std::uniform_int_distribution<uint32_t> flow(0, sc.flows - 1);
  std::uniform_int_distribution<uint32_t> pct(0, 99);
  std::uniform_int_distribution<uint32_t> len(20, 1600);
  TimeNs now = 1'000'000 * kNsPerSec;
  for (uint32_t i = 0; i < sc.packets; ++i) {
    now += static_cast<TimeNs>(gap(rng));
    if (pct(rng) == 0) now += sc.cfg.idle_timeout_ns;  // occasional long silence
    // Popular flows: skew towards low ids so some flows get many packets.
    uint32_t f = flow(rng);
    if (pct(rng) < 50) f %= std::max<uint32_t>(1, sc.flows / 8);
    TimeNs t = now;
    if (pct(rng) < 3) t -= std::min<TimeNs>(t, sc.cfg.idle_timeout_ns / 4);  // late timestamp
    uint32_t l = len(rng);
    if (pct(rng) == 0) l = 70000;  // above 65535: size saturates
    packet(test::key_n(f), l, t);
    if (pct(rng) < 10) expire(now, 1 + pct(rng) % 20);
  }
  flush(now);
}

std::vector<Scenario> scenarios() {
  std::vector<Scenario> v;
  auto base = [] {
    FlowTableConfig c;
    c.capacity = 64;
    c.idle_timeout_ns = 2 * kNsPerSec;
    return c;
  };
  {  // count windows of 20, min 10, plenty of room
    Scenario s{base(), 40, 20000, 5 * kNsPerMs, 0};
    s.cfg.capacity = 128;
    v.push_back(s);
  }
  {  // count windows, full table, small max_records (decimation), sink refusing
    Scenario s{base(), 150, 30000, 2 * kNsPerMs, 5};
    s.cfg.window.packets = 100;
    s.cfg.max_records = 8;
    s.cfg.window.min_packets = 3;
    v.push_back(s);
  }
  {  // early verdict: first window only
    Scenario s{base(), 60, 20000, 3 * kNsPerMs, 0};
    s.cfg.window.max_windows = 1;
    v.push_back(s);
  }
  {  // time windows of 1 s, decimation, full table
    Scenario s{base(), 100, 30000, 1 * kNsPerMs, 7};
    s.cfg.window.kind = WindowPolicy::Kind::kTime;
    s.cfg.window.length_ns = kNsPerSec;
    s.cfg.window.min_packets = 5;
    s.cfg.max_records = 16;
    s.cfg.window.max_windows = 3;
    v.push_back(s);
  }
  {  // time windows, long idle timeout so sweeps close windows by time
    Scenario s{base(), 30, 20000, 10 * kNsPerMs, 0};
    s.cfg.idle_timeout_ns = 20 * kNsPerSec;
    s.cfg.window.kind = WindowPolicy::Kind::kTime;
    s.cfg.window.length_ns = 500 * kNsPerMs;
    s.cfg.window.min_packets = 1;
    s.cfg.max_records = 2;
    v.push_back(s);
  }
  for (auto& s : v) {
    // The model has no chunk pool: give the table enough chunks never to run dry.
    s.cfg.record_chunks = s.cfg.capacity * ((s.cfg.max_records + 31) / 32);
  }
  return v;
}

void expect_same(const Collector& a, const Collector& b) {
  ASSERT_EQ(a.calls, b.calls);
  ASSERT_EQ(a.windows.size(), b.windows.size());
  for (size_t i = 0; i < a.windows.size(); ++i) {
    ASSERT_TRUE(test::same_info(a.windows[i].info, b.windows[i].info))
        << "window " << i << " of " << a.windows.size() << ": index " << a.windows[i].info.index << " vs "
        << b.windows[i].info.index << ", packets " << a.windows[i].info.packets << " vs "
        << b.windows[i].info.packets << ", reason " << int(a.windows[i].info.reason) << " vs "
        << int(b.windows[i].info.reason);
    ASSERT_TRUE(test::same_records(a.windows[i].records, b.windows[i].records)) << "window " << i;
  }
}

void expect_same_counters(const FlowTableCounters& a, const FlowTableCounters& b) {
  EXPECT_EQ(a.packets, b.packets);
  EXPECT_EQ(a.flows_created, b.flows_created);
  EXPECT_EQ(a.flows_expired, b.flows_expired);
  EXPECT_EQ(a.flows_rejected_full, b.flows_rejected_full);
  EXPECT_EQ(a.flows_reclaimed, b.flows_reclaimed);
  EXPECT_EQ(a.flows_flushed, b.flows_flushed);
  EXPECT_EQ(a.windows_closed, b.windows_closed);
  EXPECT_EQ(a.windows_emitted, b.windows_emitted);
  EXPECT_EQ(a.windows_too_small, b.windows_too_small);
  EXPECT_EQ(a.windows_sink_full, b.windows_sink_full);
  EXPECT_EQ(a.windows_over_limit, b.windows_over_limit);
  EXPECT_EQ(a.windows_decimated, b.windows_decimated);
  EXPECT_EQ(a.windows_records_capped, b.windows_records_capped);
}

TEST(FlowTableModel, RandomTrafficMatchesReferenceModel) {
  const auto all = scenarios();
  for (size_t si = 0; si < all.size(); ++si) {
    for (uint32_t seed : {1u, 2u, 3u}) {
      SCOPED_TRACE("scenario " + std::to_string(si) + " seed " + std::to_string(seed));
      const Scenario& sc = all[si];
      Collector got, want;
      got.refuse_every = want.refuse_every = sc.refuse_every;
      FlowTable table(sc.cfg, &Collector::sink, &got, 5);
      RefTable ref(sc.cfg, &want);
      uint32_t mismatched_slots = 0;
      drive(
          sc, seed,
          [&](const FlowKey& k, uint32_t l, TimeNs t) {
            const uint32_t a = table.on_packet(k, flow_hash(k), l, t);
            const uint32_t b = ref.on_packet(k, l, t);
            mismatched_slots += a != b;
          },
          [&](TimeNs now, uint32_t budget) {
            table.expire(now, budget);
            ref.expire(now, budget);
          },
          [&](TimeNs now) {
            table.flush(now);
            ref.flush();
          });
      EXPECT_EQ(mismatched_slots, 0u);
      expect_same(got, want);
      expect_same_counters(table.counters(), ref.c);
      // The scenario did exercise what it is meant to.
      EXPECT_GT(got.windows.size(), 20u);
      EXPECT_EQ(table.size(), 0u);
      EXPECT_EQ(table.chunks_free(), table.record_chunks());
      if (si == 1 || si == 3) {
        EXPECT_GT(table.counters().flows_rejected_full, 0u);
        EXPECT_GT(table.counters().windows_decimated, 0u);
        EXPECT_GT(table.counters().windows_sink_full, 0u);
      }
      if (si == 4) {
        EXPECT_GT(table.counters().windows_decimated, 0u);
      }
      for (const Window& w : got.windows) {
        EXPECT_EQ(test::weight_sum(w.records), w.info.packets);
        EXPECT_LE(w.info.n_records, sc.cfg.max_records);
      }
    }
  }
}

TEST(FlowTableModel, SameInputTwiceGivesIdenticalOutput) {
  const auto all = scenarios();
  for (size_t si = 0; si < all.size(); ++si) {
    SCOPED_TRACE("scenario " + std::to_string(si));
    Collector runs[2];
    FlowTableCounters counters[2];
    for (int r = 0; r < 2; ++r) {
      runs[r].refuse_every = all[si].refuse_every;
      FlowTable table(all[si].cfg, &Collector::sink, &runs[r]);
      drive(
          all[si], 42,
          [&](const FlowKey& k, uint32_t l, TimeNs t) { table.on_packet(k, flow_hash(k), l, t); },
          [&](TimeNs now, uint32_t budget) { table.expire(now, budget); },
          [&](TimeNs now) { table.flush(now); });
      counters[r] = table.counters();
    }
    ASSERT_GT(runs[0].windows.size(), 20u);
    expect_same(runs[0], runs[1]);
    expect_same_counters(counters[0], counters[1]);
  }
}

}  // namespace
}  // namespace flowpic
