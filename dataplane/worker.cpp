#include "dataplane/worker.hpp"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_mempool.h>
#include <rte_pause.h>
#include <rte_prefetch.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include <algorithm>
#include <cstring>

#include "dataplane/pipeline.hpp"
#include "export/exporter.hpp"
#include "export/flow_record.hpp"
#include "packet/parse.hpp"
#include "flowtable/packet_step.hpp"  // sweep cadence shared with the offline tools

namespace flowpic {

void TscClock::init(uint64_t hz, uint64_t tsc_now, uint64_t epoch_now_ns) noexcept {
  tsc0 = tsc_now;
  epoch0_ns = epoch_now_ns;
  mult = static_cast<uint64_t>((static_cast<unsigned __int128>(kNsPerSec) << 32) / (hz ? hz : 1));
}

bool rewrite_dscp(uint8_t* ip, uint32_t avail, uint8_t dscp) noexcept {
  if (avail < 2) return false;
  const uint8_t version = ip[0] >> 4;
  if (version == 4) {
    if (avail < 20) return false;
    const uint8_t old_tos = ip[1];
    const uint8_t new_tos = static_cast<uint8_t>((dscp << 2) | (old_tos & 0x03));  // keep ECN
    if (old_tos == new_tos) return true;
    // RFC 1624 incremental update of the word holding version/IHL and TOS: HC' = ~(~HC + ~m + m').
    const uint16_t old_word = static_cast<uint16_t>((ip[0] << 8) | old_tos);
    const uint16_t new_word = static_cast<uint16_t>((ip[0] << 8) | new_tos);
    const uint16_t hc = static_cast<uint16_t>((ip[10] << 8) | ip[11]);
    uint32_t sum = static_cast<uint16_t>(~hc) + static_cast<uint16_t>(~old_word) + new_word;
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    const uint16_t nc = static_cast<uint16_t>(~sum);
    ip[1] = new_tos;
    ip[10] = static_cast<uint8_t>(nc >> 8);
    ip[11] = static_cast<uint8_t>(nc & 0xff);
    return true;
  }
  if (version == 6) {
    // Traffic class straddles bytes 0 and 1: vvvvTTTT TTTTffff; DSCP = its upper 6 bits.
    const uint8_t tc = static_cast<uint8_t>(((ip[0] & 0x0f) << 4) | (ip[1] >> 4));
    const uint8_t ntc = static_cast<uint8_t>((dscp << 2) | (tc & 0x03));
    ip[0] = static_cast<uint8_t>((ip[0] & 0xf0) | (ntc >> 4));
    ip[1] = static_cast<uint8_t>((ip[1] & 0x0f) | ((ntc & 0x0f) << 4));
    return true;
  }
  return false;
}

// One spin of a back-pressure wait (on_full: wait, or the stop's flush): the lcore is busy, so
// its activity time moves on (a replay is not over while it waits), and the wait is counted.
static inline void backpressure_spin(LcoreState* lc, uint64_t& since) noexcept {
  const uint64_t now = rte_rdtsc();
  if (since == 0) since = now;
  lc->c.last_rx_tsc.store(now, std::memory_order_relaxed);
  rte_pause();
}
static inline void backpressure_end(LcoreState* lc, uint64_t since) noexcept {
  if (since == 0) return;
  const uint64_t now = rte_rdtsc();
  lc->c.backpressure_tsc.add(now - since);
  lc->c.last_rx_tsc.store(now, std::memory_order_relaxed);
}

bool window_sink(void* ctx, const WindowInfo& info, const PacketRecord* recs, uint32_t n) {
  auto* lc = static_cast<LcoreState*>(ctx);
  const bool wait = lc->flushing || lc->ring_full == RingFullPolicy::kWait;
  uint64_t waited_since = 0;
  void* obj = nullptr;
  if (lc->msg_stashed == 0 && rte_mempool_get_bulk(lc->win_pool, lc->msg_stash, kWindowMsgStash) == 0)
    lc->msg_stashed = kWindowMsgStash;
  if (lc->msg_stashed > 0) {
    obj = lc->msg_stash[--lc->msg_stashed];
    if (lc->msg_stashed > 0) {  // the next window's header and first records
      const char* next = static_cast<const char*>(lc->msg_stash[lc->msg_stashed - 1]);
      for (unsigned k = 0; k < 4; ++k) __builtin_prefetch(next + 64 * k, 1);
    }
  } else {
    while (rte_mempool_get(lc->win_pool, &obj) != 0) {  // fewer than a stash left
      if (!wait) {
        lc->c.windows_pool_empty.add();
        return false;
      }
      backpressure_spin(lc, waited_since);
    }
  }
  auto* msg = static_cast<WindowMsg*>(obj);
  msg->info = info;
  msg->info.lcore = static_cast<uint8_t>(lc->index);
  msg->n = std::min(n, lc->max_records);
  std::memcpy(msg->recs, recs, sizeof(PacketRecord) * msg->n);
  msg->close_tsc = rte_rdtsc();
  while (rte_ring_sp_enqueue(lc->win_ring, msg) != 0) {
    if (!wait) {
      lc->msg_stash[lc->msg_stashed++] = msg;  // room: this message came from the stash or it was empty
      lc->c.windows_ring_full.add();
      return false;
    }
    backpressure_spin(lc, waited_since);
  }
  backpressure_end(lc, waited_since);
  lc->c.windows_sent.add();
  return true;
}

void flow_end_sink(void* ctx, const FlowEndInfo& info) {
  auto* lc = static_cast<LcoreState*>(ctx);
  FlowExportMsg m = flow_record(info);
  m.model_tag = info.model_tag;
  m.confidence = info.confidence;
  m.ingress = lc->ingress;
  m.cls = info.verdict;
  m.pending = info.pending;
  if (lc->exporter->push(lc->index, m)) {
    lc->c.flow_records.add();
    return;
  }
  if (!lc->flushing) {
    lc->c.flow_records_dropped.add();
    return;
  }
  uint64_t waited_since = 0;
  while (!lc->exporter->push(lc->index, m)) backpressure_spin(lc, waited_since);
  backpressure_end(lc, waited_since);
  lc->c.flow_records.add();
}

void return_window_stash(LcoreState& lc) {
  if (lc.msg_stashed > 0) rte_mempool_put_bulk(lc.win_pool, lc.msg_stash, lc.msg_stashed);
  lc.msg_stashed = 0;
}

namespace {

inline void drain_verdicts(LcoreState& lc) {
  VerdictMsg v[64];
  const unsigned n = rte_ring_sc_dequeue_burst_elem(lc.verdict_ring, v, sizeof(VerdictMsg), 64, nullptr);
  for (unsigned i = 0; i < n; ++i) {
    if (lc.table->apply_verdict(v[i].slot, v[i].gen, v[i].cls, v[i].confidence, v[i].model_tag)) {
      lc.c.verdicts_applied.add();
      continue;
    }
    lc.c.verdicts_stale.add();
    if (lc.exporter) {  // the flow ended: its record may be waiting for this verdict
      FlowExportMsg m;
      m.kind = FlowExportMsg::kLateVerdict;
      m.slot = v[i].slot;
      m.gen = v[i].gen;
      m.cls = v[i].cls;
      m.confidence = v[i].confidence;
      m.model_tag = v[i].model_tag;
      if (lc.exporter->push(lc.index, m)) continue;
      if (!lc.flushing) {
        lc.c.late_verdicts_dropped.add();
        continue;
      }
      lc.exporter->push_wait(lc.index, m);
    }
  }
}

// Time of one packet. Trace: the port's rx timestamp (net_pcap: microseconds since the epoch).
inline TimeNs packet_time(LcoreState& lc, const rte_mbuf* m, TimeNs burst_tsc_ns) {
  uint8_t used = lc.clock_used.load(std::memory_order_relaxed);
  const bool has_ts = lc.ts_offset >= 0 && (m->ol_flags & lc.ts_flag);
  if (used == static_cast<uint8_t>(LcoreClock::kUndecided)) {
    used = static_cast<uint8_t>(lc.clock_mode == ClockMode::kTsc ? LcoreClock::kTsc
                                : lc.clock_mode == ClockMode::kTrace || has_ts ? LcoreClock::kTrace
                                                                              : LcoreClock::kTsc);
    lc.clock_used.store(used, std::memory_order_relaxed);
  }
  if (used == static_cast<uint8_t>(LcoreClock::kTrace)) {
    if (has_ts) return *RTE_MBUF_DYNFIELD(m, lc.ts_offset, const rte_mbuf_timestamp_t*) * kNsPerUs;
    lc.c.no_timestamp.add();
  }
  return burst_tsc_ns;
}

// A burst on its way through the lcore's pipeline (see lcore_main). Everything the stages
// hand on lives here, on the lcore's stack: no allocation.
struct BurstStage {
  rte_mbuf* pkts[kBurst];
  uint16_t n = 0;
  uint16_t nip = 0;          // IP packets among them (the table's part of the burst)
  TimeNs tsc_ns = 0;         // TSC time of the receive
  ParsedPacket parsed[kBurst];
  TimeNs times_all[kBurst];  // per rx packet
  // Per IP packet:
  uint16_t pkt[kBurst];      // index in pkts
  FlowKey keys[kBurst];
  uint64_t hashes[kBurst];
  uint32_t ip_lens[kBurst];
  TimeNs times[kBurst];
  uint8_t swapped[kBurst];   // bidirectional tables: the key was canonicalised (responder -> initiator side)
  uint32_t slots[kBurst];
  int16_t verdicts[kBurst];
};

}  // namespace

// Answers the control plane's flow question a step at a time (see FlowQuery).
static void serve_query(LcoreState& lc) noexcept {
  FlowQuery& q = lc.query;
  if (q.working == 0) {
    const uint32_t asked = q.asked.load(std::memory_order_acquire);
    if (asked == q.answered.load(std::memory_order_relaxed)) return;
    q.working = asked;
    q.cursor = 0;
    q.count = 0;
    q.found = false;
    if (q.kind == FlowQuery::Kind::kGet) {
      q.found = lc.table->find(q.key, q.views[0]);
      q.working = 0;
      q.answered.store(asked, std::memory_order_release);
      return;
    }
  }
  const bool by_bytes = q.by_bytes;
  const uint32_t n = std::min(q.n, FlowQuery::kMaxTop);
  auto greater = [by_bytes](const FlowView& a, const FlowView& b) {  // min-heap on the ranking key
    return by_bytes ? a.bytes > b.bytes : a.packets > b.packets;
  };
  const bool done = lc.table->scan(&q.cursor, FlowQuery::kStep, [&](const FlowView& v) {
    if (n == 0) return;
    if (q.count < n) {
      q.views[q.count++] = v;
      std::push_heap(q.views.begin(), q.views.begin() + q.count, greater);
    } else if (greater(v, q.views[0])) {
      std::pop_heap(q.views.begin(), q.views.begin() + q.count, greater);
      q.views[q.count - 1] = v;
      std::push_heap(q.views.begin(), q.views.begin() + q.count, greater);
    }
  });
  if (done) {
    const uint32_t asked = q.working;
    q.working = 0;
    q.answered.store(asked, std::memory_order_release);
  }
}

// The lcore's pipeline. A burst received in loop iteration i has its mbuf headers prefetched
// in that iteration, its packet data in iteration i + 1 (the headers have arrived by then),
// both spread over the parse of the burst being processed, and is processed in iteration
// i + 2: parse_stage, then account_stage, whose FlowTable::on_burst overlaps the index, slot
// and record misses of the burst. So the two mbuf misses are paid behind a whole burst of
// work instead of one after the other. At 1M flows every packet touches about six cold cache
// lines (mbuf header, packet data, index entry, two slot lines, record); measured in
// docs/benchmarks-dataplane.md. A held burst waits at most two polls.

// The younger bursts' mbuf prefetches, issued one per parsed packet: a run of 32 back-to-back
// prefetches of cold lines fills the core's miss buffers and stalls it until lines arrive.
struct MbufPrefetch {
  const BurstStage& headers;  // received this iteration: prefetch each mbuf header
  const BurstStage& data;     // received last iteration (headers arrived): prefetch each frame
  void operator()(uint16_t i) const noexcept {
    if (i < headers.n) rte_prefetch0(headers.pkts[i]);
    if (i < data.n) rte_prefetch0(rte_pktmbuf_mtod(data.pkts[i], void*));
  }
};

// Time and parse every packet, gather the IP ones, hash them and start their index loads.
static void parse_stage(LcoreState& lc, BurstStage& st, const MbufPrefetch& prefetch) noexcept {
  for (uint16_t i = 0; i < st.n; ++i) {
    prefetch(i);
    const rte_mbuf* m = st.pkts[i];
    st.times_all[i] = packet_time(lc, m, st.tsc_ns);
    const ParseResult pr =
        parse_packet(rte_pktmbuf_mtod(m, const uint8_t*), m->data_len, LinkType::kEthernet, st.parsed[i]);
    lc.c.parse[static_cast<std::size_t>(pr)].add();
    st.pkt[st.nip] = i;
    st.nip = static_cast<uint16_t>(st.nip + (pr == ParseResult::kOk || pr == ParseResult::kOkFragment));
  }
  // A second pass reads the keys once the parser's narrow stores have retired. A bidirectional
  // table keys both directions alike (canonical order) and is told which way each packet went.
  // (Canonical keys are written in a pass of their own, so that the hash's loads of a key do
  // not wait on the stores that swapped it.)
  const bool bidir = lc.table->config().window.bidirectional;
  for (uint16_t k = 0; k < st.nip; ++k) {
    st.keys[k] = st.parsed[st.pkt[k]].key;
    st.swapped[k] = bidir && canonicalize(st.keys[k]);
  }
  for (uint16_t k = 0; k < st.nip; ++k) {
    const uint16_t i = st.pkt[k];
    st.hashes[k] = flow_hash(st.keys[k]);
    lc.table->prefetch(st.hashes[k]);
    st.ip_lens[k] = st.parsed[i].ip_len;
    st.times[k] = st.times_all[i];
  }
}

// The burst through the flow table in packet order, the actions, and TX.
static void account_stage(LcoreState& lc, BurstStage& st) noexcept {
  const uint16_t n = st.n;
  lc.c.rx.add(n);
  // On trace time the sweep runs after every kSweepEveryPackets-th packet, exactly where
  // `flowpic classify` runs it, so replays give the same windows as the offline tool.
  const bool trace = lc.clock_used.load(std::memory_order_relaxed) == static_cast<uint8_t>(LcoreClock::kTrace);
  uint16_t done = 0, ip_done = 0;
  while (done < n) {
    const uint16_t end =
        trace ? static_cast<uint16_t>(std::min<uint32_t>(n, done + (kSweepEveryPackets - lc.since_sweep))) : n;
    uint16_t ip_end = ip_done;
    while (ip_end < st.nip && st.pkt[ip_end] < end) ++ip_end;
    if (ip_end > ip_done)
      lc.table->on_burst(st.keys + ip_done, st.hashes + ip_done, st.ip_lens + ip_done, st.times + ip_done,
                         ip_end - ip_done, st.slots + ip_done, st.verdicts + ip_done, st.swapped + ip_done);
    for (uint16_t i = done; i < end; ++i)
      if (st.times_all[i] > lc.now) lc.now = st.times_all[i];
    if (trace) {
      lc.since_sweep += end - done;
      if (lc.since_sweep == kSweepEveryPackets) {
        lc.table->expire(lc.now, lc.expire_budget);
        lc.since_sweep = 0;
      }
    }
    done = end;
    ip_done = ip_end;
  }
  // Act on each flow's class and collect what goes out.
  rte_mbuf* tx[kBurst];
  uint16_t ntx = 0, next_ip = 0;
  uint64_t rx_bytes = 0, dropped = 0, marked = 0, untracked = 0;
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = st.pkts[i];
    rx_bytes += m->pkt_len;
    if (next_ip < st.nip && st.pkt[next_ip] == i) {
      const uint16_t k = next_ip++;
      const int16_t cls = st.verdicts[k];
      untracked += st.slots[k] == FlowTable::kNoSlot;
      if (cls >= 0) {
        const uint16_t action = lc.classes->action_code(cls);
        if (action == ClassTable::kDrop) {
          rte_pktmbuf_free(m);
          ++dropped;
          continue;
        }
        if ((action & ClassTable::kDscpFlag) &&
            rewrite_dscp(rte_pktmbuf_mtod_offset(m, uint8_t*, st.parsed[i].l3_offset),
                         static_cast<uint32_t>(m->data_len - st.parsed[i].l3_offset), static_cast<uint8_t>(action & 0x3f)))
          ++marked;
      }
    }
    tx[ntx++] = m;  // forwarded, classified or not
  }
  lc.c.rx_bytes.add(rx_bytes);
  if (dropped) lc.c.dropped_action.add(dropped);
  if (marked) lc.c.dscp_marked.add(marked);
  if (untracked) lc.c.untracked.add(untracked);
  if (ntx > 0) {
    uint64_t tx_bytes = 0;  // read before the burst: sent mbufs belong to the driver after it
    for (uint16_t i = 0; i < ntx; ++i) tx_bytes += tx[i]->pkt_len;
    const uint16_t sent = rte_eth_tx_burst(lc.tx_port, lc.tx_queue, tx, ntx);
    lc.c.tx.add(sent);
    if (sent < ntx) {
      for (uint16_t i = sent; i < ntx; ++i) tx_bytes -= tx[i]->pkt_len;
      rte_pktmbuf_free_bulk(tx + sent, ntx - sent);
      lc.c.tx_full.add(ntx - sent);
    }
    lc.c.tx_bytes.add(tx_bytes);
  }
}

void drain_late_verdicts(LcoreState& lc) {
  lc.flushing = true;
  while (rte_ring_count(lc.verdict_ring) > 0) drain_verdicts(lc);
}

int lcore_main(void* arg) {
  LcoreState& lc = *static_cast<LcoreState*>(arg);
  BurstStage stage[kBurstsInFlight];
  const bool trace_possible = lc.clock_mode != ClockMode::kTsc;
  const auto on_tsc = [&lc] {
    return lc.clock_used.load(std::memory_order_relaxed) == static_cast<uint8_t>(LcoreClock::kTsc);
  };
  constexpr unsigned kLast = kBurstsInFlight - 1;
  auto at = [&stage](uint64_t it, unsigned k) -> BurstStage& { return stage[(it - k) % kBurstsInFlight]; };

  // Iteration `it` starts at kBurstsInFlight so that it - k never wraps.
  for (uint64_t it = kBurstsInFlight;; ++it) {
    const bool stopping = lc.stop->load(std::memory_order_relaxed);
    // Receive (not when stopping: the bursts in flight drain first).
    BurstStage& in = at(it, 0);
    const uint64_t tsc = rte_rdtsc();
    in.tsc_ns = lc.tsc.to_ns(tsc);
    in.n = stopping ? 0 : rte_eth_rx_burst(lc.rx_port, lc.rx_queue, in.pkts, kBurst);
    if (on_tsc() || !trace_possible) lc.now = in.tsc_ns;  // trace time only advances with packets
    if (in.n > 0) lc.c.last_rx_tsc.store(tsc, std::memory_order_relaxed);
    // The burst received kLast iterations ago is processed and transmitted; while it is parsed,
    // the new burst's mbuf headers and the previous burst's frames (its headers have arrived)
    // are prefetched, one of each per packet.
    BurstStage& s1 = at(it, 1);
    const MbufPrefetch prefetch{in, s1};
    BurstStage& oldest = at(it, kLast);
    const uint16_t n_done = oldest.n;
    if (oldest.n > 0) {
      parse_stage(lc, oldest, prefetch);
      account_stage(lc, oldest);
    }
    for (uint16_t i = oldest.n; i < std::max(in.n, s1.n); ++i) prefetch(i);
    oldest.n = oldest.nip = 0;
    drain_verdicts(lc);
    serve_query(lc);
    // Live time moves on without packets: sweep (idle flows, ended windows). After a full
    // burst only the slots the elapsed time owes (the table once per sweep period), keeping
    // the sweep's cache misses off the packets; polls with time to spare sweep a whole budget.
    if (on_tsc())
      if (const uint32_t b = lc.sweep.budget(lc.now, n_done == kBurst, lc.expire_budget)) lc.table->expire(lc.now, b);
    bool empty = true;
    for (unsigned k = 0; k < kLast; ++k) empty = empty && at(it, k).n == 0;
    if (stopping && empty) break;
  }

  // Stop: close every open window; the sink may wait now, so nothing that qualifies is lost.
  lc.flushing = true;
  if (lc.clock_used.load(std::memory_order_relaxed) != static_cast<uint8_t>(LcoreClock::kTrace))
    lc.now = lc.tsc.to_ns(rte_rdtsc());
  lc.table->flush(lc.now);
  drain_verdicts(lc);
  return_window_stash(lc);
  return 0;
}

}  // namespace flowpic
