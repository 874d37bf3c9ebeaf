// Per-lcore flow table: design (the long form, with examples, is docs/flowtable.md).
//
// Memory. Everything is allocated and touched in the constructor (large arrays 2 MiB aligned
// with MADV_HUGEPAGE, to cut TLB misses at 1M flows); nothing is allocated afterwards.
//   slots   capacity x 128 B  flow state. Line 0 holds what every packet and the sweep read
//                             (key, last time, time-window end, window packets, flags, verdict),
//                             line 1 the rest (window/lifetime sums, record chain, generation).
//   cold    capacity x 12 B   hash tag, confidence, model tag (touched by verdicts and readers).
//   index   pow2 >= 2 x capacity entries of {32-bit hash tag, slot}: open addressing with
//           linear probing, load <= 1/2. Home = tag & mask, tag = low 32 bits of the hash the
//           caller passes (flow_hash(key)). A hit compares the tag, then the 40-byte key in the
//           slot. Removal uses backward-shift deletion: no tombstones, so probe lengths never
//           grow with churn.
//   free    capacity x 4 B    stack of free slots (LIFO: deterministic reuse order).
//   pool    record_chunks x (256 B chunk of 32 PacketRecords + 4 B next link), a free list.
//   scratch max_records x 8 B the records of a window made contiguous for the sink.
//
// Generations. A slot's generation is incremented every time a flow starts in it (0 is never
// a live generation). Windows carry {slot, gen}; apply_verdict ignores a verdict whose gen
// differs or whose slot is free, so a late verdict never lands on another flow.
//
// Table full. A packet of a new flow when all slots are used first reclaims one idle flow
// (now - last > idle_timeout) found among kReclaimProbe slots from a rotating reclaim cursor
// (its open window is closed with reason kIdle: flows_expired and flows_reclaimed). If none
// of those slots is idle the packet is not tracked: flows_rejected_full, on_packet returns
// kNoSlot, and the caller forwards the packet anyway. Deterministic: the cursor depends only
// on the sequence of calls.
//
// Time. Per flow, time never goes backwards: a timestamp older than the flow's last packet is
// taken as the last packet's time. A packet of a known flow idle longer than idle_timeout ends
// that flow (window closed kIdle, flows_expired) and starts a new one in the same slot (new gen),
// so the result does not depend on when the sweep ran.
//
// Windows. kTime: blocks [first + i*L, first + (i+1)*L) from the flow's first packet; a packet
// at or after the open block's end closes it (kTime) and opens the block holding the packet
// (index = block number, empty blocks skipped); expire() closes a block whose end has passed
// (kTime). A packet older than a block the sweep already closed counts in the next block.
// kCount: every `packets` packets close a window (kCount); start/end = first/last packet.
// A closed window goes to exactly one of: over_limit (the flow already closed max_windows
// windows; such windows keep no records), too_small (< min_packets), no_records (the pool had
// no chunk at its first packet), emitted (sink took it), sink_full (sink refused).
//
// Records. {t_us since the window's first packet (saturating), min(ip_len, 65535), weight}.
// A window takes 32-record chunks from the shared pool as it grows and returns the whole chain
// in O(1) at close. When it holds max_records records, or needs a chunk and the pool is empty
// (record_pool_empty), it is decimated in place: records 2j and 2j+1 merge into 2j (weights
// add, time and size of 2j kept), freed chunks go back, and the stride doubles. With stride s
// a new record is started only when the last record's weight has reached s; otherwise the
// packet adds 1 to the last record's weight. Hence sum of weights == packets, n_records <=
// max_records, and the result is deterministic. The stride stops at 2^15 (weights fit 16
// bits): past that a full window stops recording (windows_records_capped).
//
// Fast path. on_packet: one index line, two slot lines, one record line; no allocation, lock,
// exception, log or syscall. on_burst overlaps those misses over a burst (a software pipeline:
// index probe and slot prefetch 20 packets ahead, record prefetch 8 ahead), reusing each
// packet's early index probe unless the index changed in between (index_epoch).
// expire() reads slot line 0 sequentially from a rotating cursor.
#include "flowtable/flow_table.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <utility>
#include <vector>

namespace flowpic {

namespace {

constexpr uint32_t kNone = 0xffffffffu;
constexpr uint8_t kInUse = 1;
constexpr uint8_t kUnrecorded = 2;  // the open window got no chunk at its first packet
constexpr uint8_t kCapped = 4;      // the open window stopped recording at the maximum stride
constexpr uint8_t kFirstSwapped = 8;  // bidirectional: the flow's first packet had a swapped (canonicalised) key

struct IndexEntry {
  uint32_t tag;
  uint32_t slot;  // kNone = empty
};

struct alignas(64) Slot {
  // Line 0: read by every packet and by the sweep.
  FlowKey key;
  TimeNs last_ns;
  TimeNs win_end_ns;  // time windows: end of the open (or last closed) block
  uint32_t win_packets;
  uint8_t flags;
  uint8_t stride_log2;
  int16_t verdict;
  // Line 1.
  TimeNs win_first_ns;
  uint64_t win_bytes;
  uint64_t packets;
  uint64_t bytes;
  TimeNs first_ns;
  uint32_t n_records;
  uint32_t head;  // first chunk of the open window's records (kNone when none)
  uint32_t tail;  // last chunk
  uint32_t gen;
  uint32_t win_index;     // count: number of the open/next window; time: block number
  uint16_t windows_seen;  // windows closed so far (saturating), for max_windows
};
static_assert(sizeof(Slot) == 128, "slot must stay two cache lines");

struct SlotCold {
  uint32_t tag;
  float confidence;
  uint32_t model_tag;
};

// Flow export state of a slot (only with a flow-end sink).
struct SlotExport {
  uint64_t packets_done;   // packets already in records of this flow
  uint64_t bytes_done;
  TimeNs seg_start_ns;     // start of the flow's next record
  uint16_t windows_sent;   // windows the window sink took (saturating)
  uint16_t verdicts;       // verdicts applied (saturating)
  uint32_t pad;
};
static_assert(sizeof(SlotExport) == 32);

constexpr std::size_t kHugeAlign = 2u << 20;

uint64_t ceil_div(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

}  // namespace

uint32_t FlowTableConfig::effective_record_chunks() const noexcept {
  if (record_chunks != 0) return record_chunks;
  const uint64_t per_window = ceil_div(std::max<uint32_t>(max_records, 1), FlowTable::kChunkRecords);
  uint64_t n;
  if (window.kind == WindowPolicy::Kind::kCount) {
    n = uint64_t(capacity) * ceil_div(std::max<uint32_t>(std::min(window.packets, max_records), 1),
                                      FlowTable::kChunkRecords);
  } else {
    n = std::min<uint64_t>(uint64_t(capacity) / 2 + 1024, uint64_t(capacity) * per_window);
  }
  return static_cast<uint32_t>(std::min<uint64_t>(n, 0xfffffffeu));
}

std::string FlowTableConfig::validate() const {
  if (capacity < 1 || capacity > FlowTable::kMaxCapacity)
    return "flow table capacity must be between 1 and " + std::to_string(FlowTable::kMaxCapacity) +
           " (got " + std::to_string(capacity) + ")";
  if (idle_timeout_ns == 0) return "idle timeout must be > 0 (e.g. 30 s)";
  if (window.kind != WindowPolicy::Kind::kTime && window.kind != WindowPolicy::Kind::kCount)
    return "window kind must be time or count";
  if (window.kind == WindowPolicy::Kind::kTime) {
    if (window.length_ns == 0) return "time window length must be > 0 (e.g. 15 s)";
    if (window.length_ns > 4294ull * kNsPerSec)
      return "time window length must be <= 4294 s (records keep microseconds in 32 bits)";
  } else {
    if (window.packets < 1) return "count window packets must be >= 1 (e.g. 20)";
  }
  if (window.min_packets < 1) return "window min_packets must be >= 1 (e.g. 10)";
  if (window.kind == WindowPolicy::Kind::kCount && window.min_packets > window.packets)
    return "window min_packets (" + std::to_string(window.min_packets) +
           ") must be <= count window packets (" + std::to_string(window.packets) +
           "), or no window would ever be emitted";
  if (window.max_windows > 0xffff) return "max_windows must be <= 65535 (0 = unlimited)";
  if (max_records < 2 || max_records % 2 != 0)
    return "max_records must be an even number >= 2 (got " + std::to_string(max_records) + ")";
  if (max_records > (1u << 20)) return "max_records must be <= 1048576";
  if (record_chunks > 0xfffffffeu) return "record_chunks too large";
  return {};
}

struct FlowTable::Impl {
  FlowTableConfig cfg;
  WindowSink sink;
  void* sink_ctx;
  uint8_t lcore;
  bool time_windows;
  bool bidirectional;
  TimeNs length_ns;
  TimeNs idle_ns;
  uint32_t count_packets;
  uint32_t min_ip_len;
  uint32_t min_packets;
  uint32_t max_windows;
  uint32_t max_records;
  uint32_t capacity;

  Slot* slots = nullptr;
  SlotCold* cold = nullptr;
  IndexEntry* index = nullptr;
  uint32_t index_mask = 0;
  uint32_t* free_slots = nullptr;
  uint32_t free_top = 0;  // number of free slots on the stack
  PacketRecord* pool = nullptr;
  uint32_t* chunk_next = nullptr;
  uint32_t n_chunks = 0;
  uint32_t free_chunk = kNone;
  uint32_t n_free_chunks = 0;
  PacketRecord* scratch = nullptr;
  SlotExport* ex = nullptr;          // flow export state (null: no flow-end sink)
  FlowEndSink end_sink = nullptr;
  void* end_ctx = nullptr;
  TimeNs active_ns = 0;

  uint32_t size = 0;
  uint32_t index_epoch = 0;  // bumped by every index insert and erase (validates on_burst's early probes)
  uint32_t sweep_cursor = 0;
  uint32_t reclaim_cursor = 0;
  FlowTableCounters c;

  std::vector<std::pair<void*, std::size_t>> blocks;
  std::size_t mem = 0;

  template <class T>
  T* alloc(std::size_t count) {
    std::size_t bytes = std::max<std::size_t>(count * sizeof(T), 64);
    const bool huge = bytes >= kHugeAlign;
    const std::size_t align = huge ? kHugeAlign : 128;
    bytes = ceil_div(bytes, align) * align;
    void* p = std::aligned_alloc(align, bytes);
    if (!p) throw std::bad_alloc();
    blocks.emplace_back(p, bytes);
    if (huge) madvise(p, bytes, MADV_HUGEPAGE);  // best effort
    std::memset(p, 0, bytes);  // touch now: no page faults on the packet path
    mem += bytes;
    return static_cast<T*>(p);
  }

  explicit Impl(const FlowTableConfig& config) : cfg(config) {
    time_windows = cfg.window.kind == WindowPolicy::Kind::kTime;
    bidirectional = cfg.window.bidirectional;
    length_ns = cfg.window.length_ns;
    idle_ns = cfg.idle_timeout_ns;
    count_packets = cfg.window.packets;
    min_ip_len = cfg.window.min_ip_len;
    min_packets = cfg.window.min_packets;
    max_windows = cfg.window.max_windows;
    max_records = cfg.max_records;
    capacity = cfg.capacity;

    slots = alloc<Slot>(capacity);
    cold = alloc<SlotCold>(capacity);
    uint64_t index_size = 8;
    while (index_size < 2ull * capacity) index_size <<= 1;
    index = alloc<IndexEntry>(index_size);
    std::memset(index, 0xff, index_size * sizeof(IndexEntry));
    index_mask = static_cast<uint32_t>(index_size - 1);
    free_slots = alloc<uint32_t>(capacity);
    for (uint32_t i = 0; i < capacity; ++i) free_slots[i] = capacity - 1 - i;  // pops 0, 1, 2...
    free_top = capacity;
    for (uint32_t i = 0; i < capacity; ++i) {
      slots[i].verdict = -1;
      slots[i].head = slots[i].tail = kNone;
    }
    n_chunks = cfg.effective_record_chunks();
    pool = alloc<PacketRecord>(uint64_t(n_chunks) * kChunkRecords);
    chunk_next = alloc<uint32_t>(n_chunks);
    for (uint32_t i = 0; i < n_chunks; ++i) chunk_next[i] = i + 1 < n_chunks ? i + 1 : kNone;
    free_chunk = n_chunks ? 0 : kNone;
    n_free_chunks = n_chunks;
    scratch = alloc<PacketRecord>(max_records);
  }

  ~Impl() {
    for (auto& b : blocks) std::free(b.first);
  }

  PacketRecord* chunk(uint32_t c_) const { return pool + uint64_t(c_) * kChunkRecords; }

  // ---- index ----
  // count: false for readers on other threads (find): only the owning lcore writes counters.
  uint32_t lookup(const FlowKey& key, uint32_t tag, uint32_t* empty_pos, bool count = true) noexcept {
    uint32_t pos = tag & index_mask;
    for (uint32_t steps = 0;; ++steps) {
      const IndexEntry e = index[pos];
      if (e.slot == kNone || (e.tag == tag && slots[e.slot].key == key)) {
        if (count) c.long_probes += steps > FlowTableCounters::kLongProbe;
        if (e.slot != kNone) return e.slot;
        if (empty_pos) *empty_pos = pos;
        return kNone;
      }
      pos = (pos + 1) & index_mask;
    }
  }

  void index_erase(uint32_t s) noexcept {
    uint32_t i = cold[s].tag & index_mask;
    while (index[i].slot != s) i = (i + 1) & index_mask;
    // Backward shift: pull later entries of the cluster into the hole when their home
    // position does not lie cyclically in (hole, their position].
    uint32_t j = i;
    for (;;) {
      j = (j + 1) & index_mask;
      if (index[j].slot == kNone) break;
      const uint32_t home = index[j].tag & index_mask;
      const bool stays = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
      if (stays) continue;
      index[i] = index[j];
      i = j;
    }
    index[i].slot = kNone;
    index[i].tag = kNone;
    ++index_epoch;
  }

  // ---- records ----
  void free_chain(Slot& f) noexcept {
    if (f.head == kNone) return;
    chunk_next[f.tail] = free_chunk;
    free_chunk = f.head;
    n_free_chunks += static_cast<uint32_t>(ceil_div(f.n_records, kChunkRecords));
    f.head = f.tail = kNone;
  }

  // Halves the records of the open window in place. False when the stride is at its maximum.
  bool decimate(Slot& f) noexcept {
    if (f.stride_log2 >= kMaxStrideLog2) return false;
    if (f.stride_log2 == 0) ++c.windows_decimated;
    const uint32_t n = f.n_records;
    uint32_t rc = f.head, ri = 0, wc = f.head, wi = 0;
    for (uint32_t j = 0; j < n; j += 2) {
      PacketRecord r = chunk(rc)[ri];
      if (++ri == kChunkRecords) { rc = chunk_next[rc]; ri = 0; }
      if (j + 1 < n) {
        r.weight = static_cast<uint16_t>(r.weight + chunk(rc)[ri].weight);
        if (++ri == kChunkRecords) { rc = chunk_next[rc]; ri = 0; }
      }
      chunk(wc)[wi] = r;
      if (++wi == kChunkRecords) { wc = chunk_next[wc]; wi = 0; }
    }
    const uint32_t kept = (n + 1) / 2;
    const uint32_t need = static_cast<uint32_t>(ceil_div(kept, kChunkRecords));
    uint32_t t = f.head;
    for (uint32_t k = 1; k < need; ++k) t = chunk_next[t];
    const uint32_t rest = chunk_next[t];
    if (rest != kNone) {
      chunk_next[f.tail] = free_chunk;
      free_chunk = rest;
      n_free_chunks += static_cast<uint32_t>(ceil_div(n, kChunkRecords)) - need;
      chunk_next[t] = kNone;
      f.tail = t;
    }
    f.n_records = kept;
    ++f.stride_log2;
    return true;
  }

  PacketRecord& last_record(Slot& f) noexcept { return chunk(f.tail)[(f.n_records - 1) % kChunkRecords]; }

  // `rev`: the packet went responder -> initiator (bidirectional tables). Under decimation a
  // record stands for consecutive packets and keeps the direction of the first of them.
  void record(Slot& f, TimeNs t, uint32_t ip_len, bool rev) noexcept {
    if (f.flags & (kUnrecorded | kCapped)) return;
    if (max_windows && f.windows_seen >= max_windows) return;  // over limit: keep nothing
    if (f.stride_log2 && last_record(f).weight < (1u << f.stride_log2)) {
      ++last_record(f).weight;
      return;
    }
    if (f.n_records == max_records) {
      if (!decimate(f)) { f.flags |= kCapped; ++c.windows_records_capped; return; }
      if (last_record(f).weight < (1u << f.stride_log2)) { ++last_record(f).weight; return; }
    }
    if (f.n_records % kChunkRecords == 0) {
      if (free_chunk == kNone) {
        ++c.record_pool_empty;
        if (f.n_records == 0) { f.flags |= kUnrecorded; return; }
        if (!decimate(f)) { f.flags |= kCapped; ++c.windows_records_capped; return; }
        if (last_record(f).weight < (1u << f.stride_log2)) { ++last_record(f).weight; return; }
      }
      if (f.n_records % kChunkRecords == 0) {
        // decimation of a chain of >= 2 chunks freed one, so this pop succeeds
        const uint32_t nc = free_chunk;
        if (nc == kNone) { f.flags |= kUnrecorded; return; }  // unreachable; stay safe
        free_chunk = chunk_next[nc];
        chunk_next[nc] = kNone;
        --n_free_chunks;
        if (f.head == kNone) f.head = nc; else chunk_next[f.tail] = nc;
        f.tail = nc;
      }
    }
    const TimeNs dt = (t - f.win_first_ns) / kNsPerUs;
    chunk(f.tail)[f.n_records % kChunkRecords] =
        PacketRecord(dt > 0xffffffffull ? 0xffffffffu : static_cast<uint32_t>(dt), ip_len, 1, rev);
    ++f.n_records;
  }

  // ---- windows ----
  void close_window(uint32_t s, CloseReason reason) noexcept {
    Slot& f = slots[s];
    ++c.windows_closed;
    const bool over = max_windows && f.windows_seen >= max_windows;
    if (over) {
      ++c.windows_over_limit;
    } else if (f.win_packets < min_packets) {
      ++c.windows_too_small;
    } else if (f.flags & kUnrecorded) {
      ++c.windows_no_records;
    } else {
      WindowInfo info;
      info.key = (f.flags & kFirstSwapped) ? reversed(f.key) : f.key;
      if (time_windows) {
        info.start_ns = f.win_end_ns - length_ns;
        info.end_ns = f.win_end_ns;
      } else {
        info.start_ns = f.win_first_ns;
        info.end_ns = f.last_ns;
      }
      info.first_ns = f.win_first_ns;
      info.last_ns = f.last_ns;
      info.bytes = f.win_bytes;
      info.packets = f.win_packets;
      info.index = f.win_index;
      info.n_records = f.n_records;
      info.reason = reason;
      info.lcore = lcore;
      info.flow_slot = s;
      info.flow_gen = f.gen;
      const PacketRecord* recs = scratch;
      if (f.n_records <= kChunkRecords) {
        if (f.head != kNone) recs = chunk(f.head);  // already contiguous
      } else {
        uint32_t left = f.n_records, at = 0;
        for (uint32_t ch = f.head; left; ch = chunk_next[ch]) {
          const uint32_t k = std::min(left, kChunkRecords);
          std::memcpy(scratch + at, chunk(ch), k * sizeof(PacketRecord));
          at += k;
          left -= k;
        }
      }
      if (!sink || sink(sink_ctx, info, recs, f.n_records)) {
        ++c.windows_emitted;
        if (ex && ex[s].windows_sent != 0xffff) ++ex[s].windows_sent;
      } else {
        ++c.windows_sink_full;
      }
    }
    free_chain(f);
    f.n_records = 0;
    f.win_packets = 0;
    f.win_bytes = 0;
    f.stride_log2 = 0;
    f.flags &= static_cast<uint8_t>(~(kUnrecorded | kCapped));
    if (f.windows_seen != 0xffff) ++f.windows_seen;
    if (!time_windows) ++f.win_index;
  }

  void start_flow(uint32_t s, const FlowKey& key, uint32_t tag, TimeNs now, bool swapped) noexcept {
    Slot& f = slots[s];
    f.key = key;
    f.last_ns = now;
    f.win_end_ns = now;  // time windows: the first packet opens block 0
    f.win_packets = 0;
    f.flags = static_cast<uint8_t>(kInUse | (bidirectional && swapped ? kFirstSwapped : 0));
    f.stride_log2 = 0;
    f.verdict = -1;
    f.win_first_ns = now;
    f.win_bytes = 0;
    f.packets = 0;
    f.bytes = 0;
    f.first_ns = now;
    f.n_records = 0;
    f.head = f.tail = kNone;
    ++f.gen;
    if (f.gen == 0) f.gen = 1;
    f.win_index = 0;
    f.windows_seen = 0;
    cold[s] = SlotCold{tag, 0.f, 0};
    if (ex) ex[s] = SlotExport{0, 0, now, 0, 0, 0};
    ++c.flows_created;
  }

  void remove_flow(uint32_t s) noexcept {
    Slot& f = slots[s];
    free_chain(f);
    index_erase(s);
    f.flags = 0;
    f.win_packets = 0;
    f.n_records = 0;
    free_slots[free_top++] = s;
    --size;
  }

  bool idle(const Slot& f, TimeNs now) const noexcept { return now > f.last_ns && now - f.last_ns > idle_ns; }

  // Hands the flow's record (since its previous one) to the flow-end sink.
  void flow_record(uint32_t s, FlowEndReason reason) noexcept {
    if (!ex) return;
    const Slot& f = slots[s];
    SlotExport& e = ex[s];
    FlowEndInfo r;
    r.key = (f.flags & kFirstSwapped) ? reversed(f.key) : f.key;
    r.start_ns = e.seg_start_ns;
    r.end_ns = f.last_ns;
    r.packets = f.packets - e.packets_done;
    r.bytes = f.bytes - e.bytes_done;
    r.slot = s;
    r.gen = f.gen;
    r.verdict = f.verdict;
    r.confidence = cold[s].confidence;
    r.model_tag = cold[s].model_tag;
    r.pending = reason == FlowEndReason::kActive || e.verdicts >= e.windows_sent
                    ? uint16_t{0}
                    : static_cast<uint16_t>(e.windows_sent - e.verdicts);
    r.reason = reason;
    ++c.flow_records;
    c.flow_updates += reason == FlowEndReason::kActive;
    end_sink(end_ctx, r);
  }

  void expire_flow(uint32_t s, FlowEndReason reason = FlowEndReason::kIdle) noexcept {
    if (slots[s].win_packets) close_window(s, CloseReason::kIdle);
    flow_record(s, reason);
    remove_flow(s);
    ++c.flows_expired;
  }

  uint32_t create(const FlowKey& key, uint32_t tag, uint32_t pos, TimeNs now, bool swapped) noexcept {
    if (free_top == 0) {
      bool reclaimed = false;
      for (uint32_t k = 0; k < kReclaimProbe && k < capacity; ++k) {
        const uint32_t s = reclaim_cursor;
        reclaim_cursor = reclaim_cursor + 1 == capacity ? 0 : reclaim_cursor + 1;
        if ((slots[s].flags & kInUse) && idle(slots[s], now)) {
          expire_flow(s, FlowEndReason::kLackOfResources);
          ++c.flows_reclaimed;
          reclaimed = true;
          break;
        }
      }
      if (!reclaimed) return kNone;
      lookup(key, tag, &pos);  // the backward shift may have moved the empty position
    }
    const uint32_t s = free_slots[--free_top];
    index[pos] = IndexEntry{tag, s};
    ++index_epoch;
    ++size;
    start_flow(s, key, tag, now, swapped);
    return s;
  }

  void add_packet(uint32_t s, uint32_t ip_len, TimeNs now, bool swapped) noexcept {
    Slot& f = slots[s];
    TimeNs t = now < f.last_ns ? f.last_ns : now;
    if (ip_len < min_ip_len) {  // in the flow, in no window
      ++f.packets;
      f.bytes += ip_len;
      f.last_ns = t;
      return;
    }
    if (time_windows) {
      if (f.win_packets == 0 || t >= f.win_end_ns) {
        if (f.win_packets) close_window(s, CloseReason::kTime);
        else if (t < f.win_end_ns) t = f.win_end_ns;  // its block was closed by the sweep
        const uint64_t b = (t - f.first_ns) / length_ns;
        f.win_index = b > 0xffffffffull ? 0xffffffffu : static_cast<uint32_t>(b);
        f.win_end_ns = f.first_ns + (b + 1) * length_ns;
        f.win_first_ns = t;
      }
    } else if (f.win_packets == 0) {
      f.win_first_ns = t;
    }
    ++f.win_packets;
    f.win_bytes += ip_len;
    ++f.packets;
    f.bytes += ip_len;
    f.last_ns = t;
    record(f, t, ip_len, bidirectional && swapped != ((f.flags & kFirstSwapped) != 0));
    if (!time_windows && f.win_packets == count_packets) close_window(s, CloseReason::kCount);
  }

  uint32_t on_packet(const FlowKey& key, uint64_t hash, uint32_t ip_len, TimeNs now, bool swapped) noexcept {
    const uint32_t tag = static_cast<uint32_t>(hash);
    uint32_t pos = 0;
    const uint32_t s = lookup(key, tag, &pos);  // sets pos: not inside the call below (argument order is unspecified)
    return account(key, tag, s, pos, ip_len, now, swapped);
  }

  // The packet of a flow found at `s` (kNone: absent, `pos` = where its index entry goes).
  uint32_t account(const FlowKey& key, uint32_t tag, uint32_t s, uint32_t pos, uint32_t ip_len, TimeNs now,
                   bool swapped) noexcept {
    ++c.packets;
    if (s == kNone) {
      s = create(key, tag, pos, now, swapped);
      if (s == kNone) {
        ++c.flows_rejected_full;
        return kNoSlot;
      }
    } else if (idle(slots[s], now)) {
      // Idle flow not swept yet: it ends here and a new flow starts in the same slot.
      if (slots[s].win_packets) close_window(s, CloseReason::kIdle);
      flow_record(s, FlowEndReason::kIdle);
      free_chain(slots[s]);
      ++c.flows_expired;
      start_flow(s, key, tag, now, swapped);
    }
    add_packet(s, ip_len, now, swapped);
    return s;
  }

  void view(uint32_t s, FlowView& v) const noexcept {
    const Slot& f = slots[s];
    v.key = (f.flags & kFirstSwapped) ? reversed(f.key) : f.key;  // as its first packet saw it
    v.packets = f.packets;
    v.bytes = f.bytes;
    v.first_ns = f.first_ns;
    v.last_ns = f.last_ns;
    v.window_index = f.win_index;
    v.window_packets = f.win_packets;
    v.verdict = f.verdict;
    v.confidence = cold[s].confidence;
    v.model_tag = cold[s].model_tag;
  }
};

FlowTable::FlowTable(const FlowTableConfig& cfg, WindowSink sink, void* sink_ctx, uint8_t lcore_id) {
  const std::string err = cfg.validate();
  if (!err.empty()) throw std::invalid_argument("flow table config: " + err);
  impl_ = std::make_unique<Impl>(cfg);
  impl_->sink = sink;
  impl_->sink_ctx = sink_ctx;
  impl_->lcore = lcore_id;
}

FlowTable::~FlowTable() = default;

uint32_t FlowTable::on_packet(const FlowKey& key, uint64_t hash, uint32_t ip_len, TimeNs now, bool swapped) noexcept {
  return impl_->on_packet(key, hash, ip_len, now, swapped);
}

void FlowTable::prefetch(uint64_t hash) const noexcept {
  __builtin_prefetch(&impl_->index[static_cast<uint32_t>(hash) & impl_->index_mask]);
}

void FlowTable::on_burst(const FlowKey* keys, const uint64_t* hashes, const uint32_t* ip_lens,
                         const TimeNs* times, uint32_t n, uint32_t* slots_out, int16_t* verdicts_out,
                         const uint8_t* swapped) noexcept {
  Impl& m = *impl_;
  // A software pipeline over the burst: packet j + kSlotAhead has its index entry read by tag
  // alone (its line was prefetched with the hash) and its candidate slot prefetched, packet
  // j + kRecordAhead its record line prefetched (its slot has arrived), packet j is accounted.
  // Spreading the misses keeps the core's miss buffers from filling (a run of back-to-back
  // prefetches stalls). A probe is what lookup() finds while the index is unchanged: packet j
  // reuses it if index_epoch has not moved since and the key matches, else takes the full lookup.
  constexpr uint32_t kSlotAhead = 20, kRecordAhead = 8;
  uint32_t cand[kMaxBurst], pos[kMaxBurst], epoch[kMaxBurst];
  for (uint32_t base = 0; base < n; base += kMaxBurst) {
    const uint32_t g = std::min(n - base, kMaxBurst);
    auto probe = [&](uint32_t j) {
      const uint32_t tag = static_cast<uint32_t>(hashes[base + j]);
      uint32_t p = tag & m.index_mask;
      uint32_t c = kNone, steps = 0;
      for (;; ++steps) {
        const IndexEntry e = m.index[p];
        if (e.slot == kNone) break;
        if (e.tag == tag) { c = e.slot; break; }
        p = (p + 1) & m.index_mask;
      }
      m.c.long_probes += steps > FlowTableCounters::kLongProbe;
      cand[j] = c;
      pos[j] = p;
      epoch[j] = m.index_epoch;
      if (c != kNone) {
        const char* line = reinterpret_cast<const char*>(&m.slots[c]);
        __builtin_prefetch(line, 1);
        __builtin_prefetch(line + 64, 1);
      }
    };
    for (uint32_t j = 0; j < std::min(g, kSlotAhead); ++j) probe(j);
    for (uint32_t j = 0; j < g; ++j) {
      if (j + kSlotAhead < g) probe(j + kSlotAhead);
      if (j + kRecordAhead < g && cand[j + kRecordAhead] != kNone) {
        const Slot& f = m.slots[cand[j + kRecordAhead]];
        if (f.tail != kNone) __builtin_prefetch(m.chunk(f.tail) + f.n_records % kChunkRecords, 1);
      }
      const uint32_t i = base + j;
      const uint32_t tag = static_cast<uint32_t>(hashes[i]);
      uint32_t s = cand[j], p = pos[j];
      if (m.index_epoch != epoch[j] || (s != kNone && !(m.slots[s].key == keys[i]))) s = m.lookup(keys[i], tag, &p);
      s = m.account(keys[i], tag, s, p, ip_lens[i], times[i], swapped != nullptr && swapped[i] != 0);
      if (slots_out) slots_out[i] = s;
      if (verdicts_out) verdicts_out[i] = s == kNoSlot ? int16_t{-1} : m.slots[s].verdict;
    }
  }
}

void FlowTable::set_flow_end_sink(FlowEndSink sink, void* ctx, TimeNs active_timeout_ns) {
  Impl& m = *impl_;
  if (!m.ex) m.ex = m.alloc<SlotExport>(m.capacity);
  for (uint32_t s = 0; s < m.capacity; ++s)
    if (m.slots[s].flags & kInUse) m.ex[s] = SlotExport{0, 0, m.slots[s].first_ns, 0, 0, 0};
  m.end_sink = sink;
  m.end_ctx = ctx;
  m.active_ns = active_timeout_ns;
  if (!sink) m.ex = nullptr;  // the memory stays with the table
}

int16_t FlowTable::verdict(uint32_t slot) const noexcept {
  if (slot >= impl_->capacity) return -1;
  return impl_->slots[slot].verdict;
}

void FlowTable::expire(TimeNs now, uint32_t budget) noexcept {
  Impl& m = *impl_;
  budget = std::min(budget, m.capacity);
  for (uint32_t k = 0; k < budget; ++k) {
    const uint32_t s = m.sweep_cursor;
    m.sweep_cursor = s + 1 == m.capacity ? 0 : s + 1;
    Slot& f = m.slots[s];
    if (!(f.flags & kInUse)) continue;
    if (m.idle(f, now)) {
      m.expire_flow(s);
      continue;
    }
    if (m.time_windows && f.win_packets && now >= f.win_end_ns) m.close_window(s, CloseReason::kTime);
    if (m.active_ns) {
      SlotExport& e = m.ex[s];
      if (now > e.seg_start_ns && now - e.seg_start_ns >= m.active_ns && f.packets > e.packets_done) {
        m.flow_record(s, FlowEndReason::kActive);
        e.packets_done = f.packets;
        e.bytes_done = f.bytes;
        e.seg_start_ns = now;
      }
    }
  }
}

void FlowTable::flush(TimeNs /*now*/) noexcept {
  Impl& m = *impl_;
  for (uint32_t s = 0; s < m.capacity && m.size; ++s) {
    if (!(m.slots[s].flags & kInUse)) continue;
    if (m.slots[s].win_packets) m.close_window(s, CloseReason::kFlush);
    m.flow_record(s, FlowEndReason::kForced);
    m.remove_flow(s);
    ++m.c.flows_flushed;
  }
}

bool FlowTable::apply_verdict(uint32_t slot, uint32_t gen, int16_t cls, float confidence,
                              uint32_t model_tag) noexcept {
  Impl& m = *impl_;
  if (slot >= m.capacity) return false;
  Slot& f = m.slots[slot];
  if (!(f.flags & kInUse) || f.gen != gen) return false;
  f.verdict = cls;
  if (m.ex && m.ex[slot].verdicts != 0xffff) ++m.ex[slot].verdicts;
  m.cold[slot].confidence = confidence;
  m.cold[slot].model_tag = model_tag;
  return true;
}

const FlowTableCounters& FlowTable::counters() const noexcept { return impl_->c; }
uint32_t FlowTable::size() const noexcept { return impl_->size; }
uint32_t FlowTable::capacity() const noexcept { return impl_->capacity; }
std::size_t FlowTable::memory_bytes() const noexcept { return impl_->mem + sizeof(Impl); }
uint32_t FlowTable::record_chunks() const noexcept { return impl_->n_chunks; }
uint32_t FlowTable::chunks_free() const noexcept { return impl_->n_free_chunks; }
const FlowTableConfig& FlowTable::config() const noexcept { return impl_->cfg; }

bool FlowTable::find(const FlowKey& key_in, FlowView& out) const noexcept {
  FlowKey key = key_in;
  if (impl_->bidirectional) canonicalize(key);
  const uint32_t s = impl_->lookup(key, static_cast<uint32_t>(flow_hash(key)), nullptr, /*count=*/false);
  if (s == kNone) return false;
  impl_->view(s, out);
  return true;
}

bool FlowTable::scan_impl(uint32_t* cursor, uint32_t budget, void (*visit)(void*, const FlowView&),
                          void* ctx) const {
  const Impl& m = *impl_;
  uint32_t s = *cursor < m.capacity ? *cursor : 0;
  for (uint32_t k = 0; k < budget; ++k) {
    if (m.slots[s].flags & kInUse) {
      FlowView v;
      m.view(s, v);
      visit(ctx, v);
    }
    if (++s == m.capacity) {
      *cursor = 0;
      return true;
    }
  }
  *cursor = s;
  return false;
}

}  // namespace flowpic
