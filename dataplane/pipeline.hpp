// Everything behind the polling lcores: window messages and rings, the FlowPic builders
// (TBB), the inference workers (oneDNN, pinned with hwloc), verdict routing back to the
// lcores and out to the verdict output, the model currently serving, and their counters.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <latch>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/window.hpp"
#include "dataplane/config.hpp"
#include "dataplane/counters.hpp"
#include "infer/model.hpp"
#include "infer/verdict.hpp"
#include "picbuilder/batch.hpp"

struct rte_ring;
struct rte_mempool;

namespace flowpic {

class Topology;

// Window messages a polling lcore takes from its pool at once (LcoreState::msg_stash).
constexpr unsigned kWindowMsgStash = 16;

// Messages in one lcore's window pool: a full ring, a batch in the builder, the lcore's stash,
// and slack.
constexpr uint32_t window_pool_size(uint32_t ring_size, uint32_t batch) {
  return ring_size + batch + kWindowMsgStash + 64;
}

// A closed window on its way from an lcore to the builders. Lives in the lcore's
// rte_mempool (fixed size: `max_records` records follow the header).
struct WindowMsg {
  WindowInfo info;
  uint64_t close_tsc;  // TSC when the lcore closed it (latency)
  uint32_t n;          // records that follow
  uint32_t pad;
  PacketRecord recs[1];
  static std::size_t bytes_for(uint32_t max_records) {
    return sizeof(WindowMsg) + sizeof(PacketRecord) * (max_records > 0 ? max_records - 1 : 0);
  }
};

// What an inference worker tells the owning lcore (rte_ring element, 20 bytes).
struct VerdictMsg {
  uint32_t slot;
  uint32_t gen;
  int16_t cls;  // global class id (ClassTable)
  uint16_t pad;
  float confidence;
  uint32_t model_tag;
};
static_assert(sizeof(VerdictMsg) % 4 == 0);

// Class names of every model ever loaded get one id each, so a flow's class stays
// meaningful across model swaps and the lcores look actions up with one array read.
class ClassTable {
 public:
  static constexpr int kMaxClasses = 1024;
  static constexpr uint16_t kForward = 0, kDrop = 1, kDscpFlag = 0x100;  // action code: kDscpFlag | dscp

  int16_t intern(const std::string& name);  // off the fast path; -1 when full
  // All of `names` or none: false (nothing registered) when the new ones would pass kMaxClasses.
  bool intern_all(const std::vector<std::string>& names, std::vector<int16_t>* ids);
  std::string name(int16_t id) const;
  int size() const;
  void set_action(int16_t id, const Action& a);
  uint16_t action_code(int16_t id) const noexcept {  // fast path
    return id >= 0 && id < kMaxClasses ? actions_[id].load(std::memory_order_relaxed) : kForward;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> names_;
  std::array<std::atomic<uint16_t>, kMaxClasses> actions_{};
};

// A model as served: the model, its tag (carried by every verdict), its class ids.
struct ModelSlot {
  std::shared_ptr<const Model> model;
  uint32_t tag = 0;
  std::vector<int16_t> class_ids;  // model class index -> ClassTable id
  VerdictFormat format;
};

// Log-bucketed latency histogram (8 sub-buckets per power of two: <= 12.5% error).
class LatencyHistogram {
 public:
  void record(uint64_t ns) noexcept;
  void merge(const LatencyHistogram& o) noexcept;
  uint64_t count() const noexcept { return count_; }
  uint64_t percentile(double p) const noexcept;  // ns
  uint64_t max() const noexcept { return max_; }

 private:
  static constexpr int kBuckets = 8 + 61 * 8;
  std::array<uint64_t, kBuckets> b_{};
  uint64_t count_ = 0, max_ = 0;
};

// Where verdict lines go. Thread-safe; reopen() for log rotation (SIGHUP, `outputs rotate`).
// Lines are written whole or not at all: a write that fails part-way (full disk) is cut back to
// the last whole line where the output is a file, and its lines are counted as dropped; a file
// that does not end in a newline (a crash mid-line before) gets one before the next record. The
// file is opened without following a symlink (O_NOFOLLOW). A closed pipe (stdout) drops lines,
// counted, and nothing else stops.
class VerdictOutput {
 public:
  explicit VerdictOutput(const std::string& where);  // "stdout", "none" or a path; throws on open failure
  ~VerdictOutput();
  void write(const std::string& lines);  // one or more '\n'-terminated lines
  void flush();
  bool reopen(std::string* err);
  const std::string& where() const noexcept { return where_; }

  struct Stats {
    uint64_t lines = 0;         // written whole
    uint64_t dropped = 0;       // lines not written (write error), never half-written
    uint64_t write_errors = 0;  // failed writes
    std::string last_error;     // errno text of the latest failure ("" none)
  };
  Stats stats() const;

 private:
  bool open_file(std::string* err);  // under mu_
  mutable std::mutex mu_;
  std::string where_;
  int fd_ = -1;
  bool owned_ = false;
  bool need_newline_ = false;  // the file ends mid-line: start the next write with '\n'
  Stats stats_;
};

struct PipelineCounters {
  Counter batches;
  Counter pictures;
  Counter verdicts;
  Counter verdict_ring_full;   // verdict not delivered to its lcore (ring full): output still written
  Counter batch_failed;        // network could not be built for a batch's model: windows lost, counted
  Counter windows_failed;      // windows in failed batches
  std::array<Counter, ClassTable::kMaxClasses> by_class;
};

struct PipelineOptions {
  uint32_t lcores = 1;
  uint32_t ring_size = 4096;
  uint32_t max_records = 1024;
  uint32_t batch = 64;
  uint32_t max_wait_ms = 10;
  uint32_t infer_threads = 1;
  float unknown_below = 0.f;
  uint32_t table_capacity = 1u << 16;             // flows per lcore table: room for flow evidence
  std::vector<unsigned> build_cpus;               // pinned builders (all of them)
  std::vector<std::vector<unsigned>> infer_cpus;  // one entry per inference worker
  std::vector<int> lcore_sockets;                 // NUMA socket of each lcore's rings/pools
};

class Pipeline {
 public:
  // Creates the rings and pools (after EAL init). Throws std::runtime_error.
  Pipeline(const PipelineOptions& opt, ClassTable& classes, const Topology& topo, VerdictOutput& out);
  ~Pipeline();

  rte_ring* window_ring(uint32_t lcore) const { return lanes_[lcore].windows; }
  rte_mempool* window_pool(uint32_t lcore) const { return lanes_[lcore].pool; }
  rte_ring* verdict_ring(uint32_t lcore) const { return lanes_[lcore].verdicts; }

  // Publishes a model for the windows built from now on; returns its tag. Throws ModelError
  // if a class cannot be registered. (Model swap, issue 4, goes through here.)
  uint32_t publish_model(std::shared_ptr<const Model> model);
  std::shared_ptr<const ModelSlot> current_model() const;

  void start();
  // Call once every lcore has returned (tables flushed): drains rings and queues, then joins.
  void finish();

  const PipelineCounters& counters() const noexcept { return counters_; }
  LatencyHistogram latency() const;  // merged over workers
  uint32_t inference_workers() const noexcept { return static_cast<uint32_t>(opt_.infer_cpus.size()); }

 private:
  struct Batch;
  struct Lane {
    rte_ring* windows = nullptr;
    rte_mempool* pool = nullptr;
    rte_ring* verdicts = nullptr;
  };
  // Per lcore: its flows' accumulated window evidence (inference workers, under mu).
  struct LaneEvidence {
    std::mutex mu;
    FlowEvidence flows;
  };
  void builder_main();
  void infer_main(uint32_t worker);
  void emit(std::vector<WindowMsg*>& pending);
  Batch* take_free_batch();

  PipelineOptions opt_;
  ClassTable& classes_;
  const Topology& topo_;
  VerdictOutput& out_;
  std::vector<Lane> lanes_;
  std::vector<std::unique_ptr<LaneEvidence>> evidence_;
  PipelineCounters counters_;
  uint64_t tsc_hz_ = 1;
  int16_t unknown_id_ = -1;

  mutable std::mutex model_mu_;
  std::shared_ptr<const ModelSlot> model_;
  uint32_t next_tag_ = 1;

  std::mutex q_mu_;
  std::condition_variable q_cv_, free_cv_;
  std::deque<Batch*> ready_;
  std::vector<Batch*> free_;
  std::vector<std::unique_ptr<Batch>> batches_;
  bool build_done_ = false;

  std::atomic<bool> lcores_done_{false};
  std::thread builder_;
  std::latch* workers_ready_ = nullptr;  // counted down by each inference worker once warm (start())
  std::vector<std::thread> workers_;
  std::vector<LatencyHistogram> worker_latency_;
  mutable std::mutex lat_mu_;
  struct Arena;
  std::unique_ptr<Arena> arena_;
  std::vector<WindowRef> refs_;  // builder thread only
};

}  // namespace flowpic
