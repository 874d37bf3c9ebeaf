#include "dataplane/pipeline.hpp"

#include <omp.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_mempool.h>
#include <rte_pause.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <spdlog/spdlog.h>
#include <tbb/task_arena.h>
#include <tbb/task_scheduler_observer.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "dataplane/placement.hpp"
#include "infer/network.hpp"
#include "picbuilder/batch.hpp"
#include "picbuilder/flowpic.hpp"

namespace flowpic {

// ---------------------------------------------------------------- ClassTable

int16_t ClassTable::intern(const std::string& name) {
  std::lock_guard lk(mu_);
  for (std::size_t i = 0; i < names_.size(); ++i)
    if (names_[i] == name) return static_cast<int16_t>(i);
  if (names_.size() >= kMaxClasses) return -1;
  names_.push_back(name);
  return static_cast<int16_t>(names_.size() - 1);
}

bool ClassTable::intern_all(const std::vector<std::string>& names, std::vector<int16_t>* ids) {
  std::lock_guard lk(mu_);
  std::vector<std::string> fresh;
  for (const auto& n : names)
    if (std::find(names_.begin(), names_.end(), n) == names_.end() && std::find(fresh.begin(), fresh.end(), n) == fresh.end())
      fresh.push_back(n);
  if (names_.size() + fresh.size() > static_cast<std::size_t>(kMaxClasses)) return false;
  ids->clear();
  for (const auto& n : names) {
    auto it = std::find(names_.begin(), names_.end(), n);
    if (it == names_.end()) {
      names_.push_back(n);
      it = names_.end() - 1;
    }
    ids->push_back(static_cast<int16_t>(it - names_.begin()));
  }
  return true;
}

std::string ClassTable::name(int16_t id) const {
  std::lock_guard lk(mu_);
  return id >= 0 && static_cast<std::size_t>(id) < names_.size() ? names_[id] : std::string("?");
}

int ClassTable::size() const {
  std::lock_guard lk(mu_);
  return static_cast<int>(names_.size());
}

void ClassTable::set_action(int16_t id, const Action& a) {
  if (id < 0 || id >= kMaxClasses) return;
  uint16_t code = kForward;
  if (a.kind == Action::Kind::kDrop) code = kDrop;
  if (a.kind == Action::Kind::kDscp) code = static_cast<uint16_t>(kDscpFlag | a.dscp);
  actions_[id].store(code, std::memory_order_relaxed);
}

// ---------------------------------------------------------------- LatencyHistogram

namespace {
int bucket_of(uint64_t v) noexcept {
  if (v < 8) return static_cast<int>(v);
  const int e = 63 - __builtin_clzll(v);  // >= 3
  return 8 + (e - 3) * 8 + static_cast<int>((v >> (e - 3)) & 7);
}
uint64_t bucket_mid(int idx) noexcept {
  if (idx < 8) return static_cast<uint64_t>(idx);
  const int e = (idx - 8) / 8 + 3, sub = (idx - 8) % 8;
  const uint64_t lo = static_cast<uint64_t>(8 + sub) << (e - 3);
  return lo + ((1ULL << (e - 3)) >> 1);
}
}  // namespace

void LatencyHistogram::record(uint64_t ns) noexcept {
  ++b_[std::min(bucket_of(ns), kBuckets - 1)];
  ++count_;
  max_ = std::max(max_, ns);
}

void LatencyHistogram::merge(const LatencyHistogram& o) noexcept {
  for (int i = 0; i < kBuckets; ++i) b_[i] += o.b_[i];
  count_ += o.count_;
  max_ = std::max(max_, o.max_);
}

uint64_t LatencyHistogram::percentile(double p) const noexcept {
  if (count_ == 0) return 0;
  const uint64_t rank = static_cast<uint64_t>(p / 100.0 * static_cast<double>(count_ - 1)) + 1;
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += b_[i];
    if (seen >= rank) return std::min(bucket_mid(i), max_);
  }
  return max_;
}

// ---------------------------------------------------------------- VerdictOutput

VerdictOutput::VerdictOutput(const std::string& where) : where_(where) {
  if (where == "none") return;
  if (where == "stdout") {
    fd_ = STDOUT_FILENO;
    return;
  }
  std::string err;
  if (!open_file(&err)) throw std::runtime_error("outputs.verdicts: " + err);
}

bool VerdictOutput::open_file(std::string* err) {
  const int fd = ::open(where_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) {
    const int e = errno;
    *err = "cannot open '" + where_ + "' for appending: " + std::strerror(e) +
           (e == ELOOP ? " (it is a symlink: flowpicd does not write through symlinks; give the real path)" : "");
    return false;
  }
  // A record cut by a crash or a kill leaves the file without a final newline: the next record
  // then starts on a line of its own instead of being spliced onto the cut one.
  struct stat st{};
  need_newline_ = false;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    const int rfd = ::open(where_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);  // fd is write-only
    char last = '\n';
    if (rfd >= 0 && pread(rfd, &last, 1, st.st_size - 1) == 1) need_newline_ = last != '\n';
    if (rfd >= 0) ::close(rfd);
  }
  if (owned_ && fd_ >= 0) ::close(fd_);
  fd_ = fd;
  owned_ = true;
  return true;
}

VerdictOutput::~VerdictOutput() {
  if (owned_ && fd_ >= 0) ::close(fd_);
}

void VerdictOutput::write(const std::string& lines_in) {
  if (fd_ < 0 || lines_in.empty()) return;
  std::lock_guard lk(mu_);
  const uint64_t n_lines = static_cast<uint64_t>(std::count(lines_in.begin(), lines_in.end(), '\n'));
  std::string with_nl;
  const std::string* lines = &lines_in;
  if (need_newline_) {
    with_nl.reserve(lines_in.size() + 1);
    with_nl += '\n';
    with_nl += lines_in;
    lines = &with_nl;
  }
  struct stat st{};
  const bool regular = fstat(fd_, &st) == 0 && S_ISREG(st.st_mode);
  const off_t before = regular ? st.st_size : 0;
  size_t done = 0;
  int err = 0;
  while (done < lines->size()) {
    const ssize_t w = ::write(fd_, lines->data() + done, lines->size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    done += static_cast<size_t>(w);
  }
  if (err == 0) {
    need_newline_ = false;
    stats_.lines += n_lines;
    return;
  }
  // Part of the batch may be in the file: cut it back to the last whole line we wrote.
  if (regular && done > 0 && ftruncate(fd_, before) != 0) {
    need_newline_ = true;  // could not cut: at least the next record starts on a new line
  } else if (!regular && done > 0) {
    need_newline_ = lines->data()[done - 1] != '\n';
  }
  ++stats_.write_errors;
  stats_.dropped += n_lines;
  const std::string text = std::strerror(err);
  if (stats_.last_error != text)  // once per kind of failure, not per batch
    spdlog::error("outputs.verdicts {}: write failed ({}); verdict lines are dropped and counted "
                  "(outputs.verdicts.dropped) until it works again", where_, text);
  stats_.last_error = text;
}

void VerdictOutput::flush() {
  std::lock_guard lk(mu_);
  if (owned_ && fd_ >= 0) fdatasync(fd_);
}

bool VerdictOutput::reopen(std::string* err) {
  std::lock_guard lk(mu_);
  if (!owned_) return true;
  std::string e;
  if (!open_file(&e)) {
    if (err) *err = "cannot reopen: " + e;
    return false;
  }
  stats_.last_error.clear();
  return true;
}

VerdictOutput::Stats VerdictOutput::stats() const {
  std::lock_guard lk(mu_);
  return stats_;
}

// ---------------------------------------------------------------- Pipeline

struct Pipeline::Batch {
  std::shared_ptr<const ModelSlot> slot;
  uint32_t n = 0;
  std::vector<WindowInfo> infos;
  std::vector<uint64_t> close_tsc;
  std::vector<float> pictures;
  std::vector<float> probs;
};

// TBB arena for the builders whose worker threads pin themselves to the build CPUs.
struct Pipeline::Arena : tbb::task_scheduler_observer {
  Arena(int concurrency, const Topology& topo, std::vector<unsigned> cpus)
      : tbb::task_scheduler_observer(arena), arena(concurrency), topo(topo), cpus(std::move(cpus)) {
    observe(true);
  }
  ~Arena() override { observe(false); }
  void on_scheduler_entry(bool) override { topo.bind_this_thread(cpus); }
  tbb::task_arena arena;
  const Topology& topo;
  std::vector<unsigned> cpus;
};

Pipeline::Pipeline(const PipelineOptions& opt, ClassTable& classes, const Topology& topo, VerdictOutput& out)
    : opt_(opt), classes_(classes), topo_(topo), out_(out) {
  tsc_hz_ = std::max<uint64_t>(1, rte_get_tsc_hz());
  if (opt_.unknown_below > 0) unknown_id_ = classes_.intern("unknown");
  if (opt_.infer_cpus.empty()) opt_.infer_cpus.emplace_back();
  lanes_.resize(opt_.lcores);
  for (uint32_t i = 0; i < opt_.lcores; ++i) evidence_.push_back(std::make_unique<LaneEvidence>());
  const uint32_t pool_size = window_pool_size(opt_.ring_size, opt_.batch);
  for (uint32_t i = 0; i < opt_.lcores; ++i) {
    const int socket = i < opt_.lcore_sockets.size() ? opt_.lcore_sockets[i] : SOCKET_ID_ANY;
    const std::string suffix = std::to_string(i);
    // Single producer (the lcore) and single consumer (the builder thread).
    lanes_[i].windows = rte_ring_create(("fp_win" + suffix).c_str(), opt_.ring_size, socket,
                                        RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ);
    // Gets on the lcore only, puts from the builder thread only; no per-lcore cache
    // (the builder is not an EAL thread and every object must stay countable).
    lanes_[i].pool = rte_mempool_create(("fp_winpool" + suffix).c_str(), pool_size,
                                        static_cast<unsigned>(WindowMsg::bytes_for(opt_.max_records)), 0, 0,
                                        nullptr, nullptr, nullptr, nullptr, socket,
                                        RTE_MEMPOOL_F_SP_PUT | RTE_MEMPOOL_F_SC_GET);
    // Many inference workers enqueue, the lcore alone dequeues.
    lanes_[i].verdicts = rte_ring_create_elem(("fp_verd" + suffix).c_str(), sizeof(VerdictMsg), 4096, socket,
                                              RING_F_SC_DEQ);
    if (!lanes_[i].windows || !lanes_[i].pool || !lanes_[i].verdicts)
      throw std::runtime_error("cannot allocate the window ring/pool of polling lcore " + suffix + " (" +
                               std::to_string(pool_size) + " x " +
                               std::to_string(WindowMsg::bytes_for(opt_.max_records)) +
                               " bytes): " + rte_strerror(rte_errno) +
                               "; lower window_ring.size or flow_table.max_records, or give EAL more memory (-m)");
  }
  const uint32_t n_batches = 2 * static_cast<uint32_t>(opt_.infer_cpus.size()) + 2;
  for (uint32_t i = 0; i < n_batches; ++i) {
    auto b = std::make_unique<Batch>();
    b->infos.resize(opt_.batch);
    b->close_tsc.resize(opt_.batch);
    free_.push_back(b.get());
    batches_.push_back(std::move(b));
  }
  worker_latency_.resize(opt_.infer_cpus.size());
  refs_.resize(opt_.batch);
  arena_ = std::make_unique<Arena>(std::max<int>(1, static_cast<int>(opt_.build_cpus.size())), topo_, opt_.build_cpus);
}

Pipeline::~Pipeline() {
  if (builder_.joinable() || !workers_.empty()) finish();
  for (auto& l : lanes_) {
    rte_ring_free(l.windows);
    rte_mempool_free(l.pool);
    rte_ring_free(l.verdicts);
  }
}

uint32_t Pipeline::publish_model(std::shared_ptr<const Model> model) {
  auto slot = std::make_shared<ModelSlot>();
  slot->model = model;
  if (!classes_.intern_all(model->info().classes, &slot->class_ids))
    throw ModelError("model " + model->id() + ": its classes would pass the limit of " +
                     std::to_string(ClassTable::kMaxClasses) + " distinct class names across the models loaded since start; "
                     "nothing was registered (restart flowpicd to start the count over)");
  slot->format.classes = &model->info().classes;
  slot->format.model_id = model->id();
  slot->format.unknown_below = opt_.unknown_below;
  uint32_t tag;
  {
    std::lock_guard lk(model_mu_);
    tag = next_tag_++;
  }
  // Flow evidence starts over with a new model (its classes may mean other things); batches of
  // the previous model still in flight get window-only flow verdicts. Memory is taken here, off
  // the packet path: table capacity x classes floats per lcore.
  for (auto& ev : evidence_) {
    std::lock_guard lk(ev->mu);
    ev->flows.reset(opt_.table_capacity, model->num_classes(), tag);
  }
  std::lock_guard lk(model_mu_);
  slot->tag = tag;
  model_ = slot;
  return slot->tag;
}

std::shared_ptr<const ModelSlot> Pipeline::current_model() const {
  std::lock_guard lk(model_mu_);
  return model_;
}

void Pipeline::start() {
  // Wait until every inference worker has built and run the serving model once, so windows
  // closed by the first packets are not charged for start-up.
  std::latch ready(static_cast<std::ptrdiff_t>(opt_.infer_cpus.size()));
  workers_ready_ = &ready;
  builder_ = std::thread([this] { builder_main(); });
  for (uint32_t w = 0; w < opt_.infer_cpus.size(); ++w) workers_.emplace_back([this, w] { infer_main(w); });
  ready.wait();
  workers_ready_ = nullptr;
}

void Pipeline::finish() {
  lcores_done_.store(true, std::memory_order_release);
  if (builder_.joinable()) builder_.join();
  {
    std::lock_guard lk(q_mu_);
    build_done_ = true;
  }
  q_cv_.notify_all();
  for (auto& t : workers_)
    if (t.joinable()) t.join();
  workers_.clear();
  out_.flush();
}

LatencyHistogram Pipeline::latency() const {
  std::lock_guard lk(lat_mu_);
  LatencyHistogram h;
  for (const auto& w : worker_latency_) h.merge(w);
  return h;
}

Pipeline::Batch* Pipeline::take_free_batch() {
  std::unique_lock lk(q_mu_);
  free_cv_.wait(lk, [&] { return !free_.empty(); });
  Batch* b = free_.back();
  free_.pop_back();
  return b;
}

void Pipeline::builder_main() {
  topo_.bind_this_thread(opt_.build_cpus);
  std::vector<WindowMsg*> pending;
  pending.reserve(opt_.batch);
  const uint64_t max_wait_tsc = tsc_hz_ / 1000 * opt_.max_wait_ms;
  uint32_t rr = 0;
  for (;;) {
    // Read the flag before draining: once it is set no lcore enqueues any more, so a
    // drain that finds every ring empty afterwards has seen everything.
    const bool done = lcores_done_.load(std::memory_order_acquire);
    uint32_t got = 0;
    for (uint32_t k = 0; k < opt_.lcores && pending.size() < opt_.batch; ++k) {
      const uint32_t i = (rr + k) % opt_.lcores;
      void* objs[256];
      const uint32_t room = std::min<uint32_t>(256, opt_.batch - static_cast<uint32_t>(pending.size()));
      const unsigned n = rte_ring_sc_dequeue_burst(lanes_[i].windows, objs, room, nullptr);
      for (unsigned j = 0; j < n; ++j) pending.push_back(static_cast<WindowMsg*>(objs[j]));
      got += n;
    }
    rr = (rr + 1) % opt_.lcores;
    if (pending.size() >= opt_.batch ||
        (!pending.empty() && rte_rdtsc() - pending.front()->close_tsc >= max_wait_tsc)) {
      emit(pending);
      continue;
    }
    if (got == 0) {
      if (done) {
        if (!pending.empty()) emit(pending);
        return;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
}

void Pipeline::emit(std::vector<WindowMsg*>& pending) {
  Batch* b = take_free_batch();
  b->slot = current_model();
  const Model& model = *b->slot->model;
  const PictureConfig& pic = model.info().picture;
  const std::size_t px = model.picture_floats();  // channels * R * R
  const uint32_t n = static_cast<uint32_t>(pending.size());
  if (b->pictures.size() < px * opt_.batch) b->pictures.resize(px * opt_.batch);
  if (b->probs.size() < static_cast<std::size_t>(model.num_classes()) * opt_.batch)
    b->probs.resize(static_cast<std::size_t>(model.num_classes()) * opt_.batch);
  b->n = n;
  float* pictures = b->pictures.data();
  for (uint32_t i = 0; i < n; ++i) refs_[i] = WindowRef{&pending[i]->info, pending[i]->recs, pending[i]->n};
  // build_batch's parallel_for runs in this arena: on the build CPUs, with their concurrency.
  arena_->arena.execute([&] { build_batch(pic, refs_.data(), n, pictures); });
  for (uint32_t i = 0; i < n; ++i) {
    b->infos[i] = pending[i]->info;
    b->close_tsc[i] = pending[i]->close_tsc;
    rte_mempool_put(lanes_[pending[i]->info.lcore].pool, pending[i]);
  }
  pending.clear();
  {
    std::lock_guard lk(q_mu_);
    ready_.push_back(b);
  }
  q_cv_.notify_one();
}

void Pipeline::infer_main(uint32_t worker) {
  const auto& cpus = opt_.infer_cpus[worker];
  if (!topo_.bind_this_thread(cpus))
    spdlog::warn("inference worker {}: cannot pin to CPUs {}", worker, cpu_list_string(cpus));
  omp_set_num_threads(static_cast<int>(opt_.infer_threads));
  std::unique_ptr<Network> net;
  // Build the serving model's primitives and run them once before traffic arrives, so the
  // first windows do not pay oneDNN's primitive creation and JIT (tens of ms) in their latency.
  if (auto first = current_model()) {
    try {
      net = std::make_unique<Network>(first->model, static_cast<int>(opt_.batch), static_cast<int>(opt_.infer_threads));
      const int n = net->max_batch();
      const std::size_t px = first->model->picture_floats();
      std::fill_n(net->input(), px * n, 0.f);
      std::vector<float> warm(static_cast<std::size_t>(first->model->num_classes()) * n);
      net->forward(n, warm.data());
    } catch (const std::exception& e) {
      net.reset();  // retried, and reported, on the first batch
    }
  }
  workers_ready_->count_down();
  LatencyHistogram local;
  std::string lines;
  for (;;) {
    Batch* b = nullptr;
    {
      std::unique_lock lk(q_mu_);
      q_cv_.wait(lk, [&] { return !ready_.empty() || build_done_; });
      if (ready_.empty()) break;
      b = ready_.front();
      ready_.pop_front();
    }
    const ModelSlot& slot = *b->slot;
    bool ok = true;
    if (!net || net->model_ptr() != slot.model) {
      try {
        net.reset();
        net = std::make_unique<Network>(slot.model, static_cast<int>(opt_.batch), static_cast<int>(opt_.infer_threads));
      } catch (const std::exception& e) {
        spdlog::error("inference worker {}: cannot build the network of model {}: {}", worker, slot.model->id(), e.what());
        ok = false;
      }
    }
    if (ok) {
      const int classes = slot.model->num_classes();
      net->classify(b->pictures.data(), static_cast<int>(b->n), b->probs.data());
      lines.clear();
      const uint64_t now = rte_rdtsc();
      for (uint32_t i = 0; i < b->n; ++i) {
        const WindowInfo& info = b->infos[i];
        const float* probs = b->probs.data() + static_cast<std::size_t>(i) * classes;
        // The flow's verdict (mean of its windows' probabilities so far) is what the lcore acts on.
        // Sent to the lcore under the lane's evidence lock, so that with several inference
        // workers a flow's verdicts reach it in the order their means were taken.
        FlowVerdict fv;
        {
          std::unique_lock<std::mutex> lk;
          if (info.lcore < evidence_.size()) {
            LaneEvidence& ev = *evidence_[info.lcore];
            lk = std::unique_lock<std::mutex>(ev.mu);
            if (ev.flows.keeps(classes, slot.tag))
              fv.cls = ev.flows.add(info.flow_slot, info.flow_gen, probs, &fv.confidence, &fv.windows);
          }
          if (fv.cls < 0) {
            fv.cls = argmax(probs, classes, &fv.confidence);
            fv.windows = 1;
          }
          const int16_t gid = fv.confidence < opt_.unknown_below ? unknown_id_ : slot.class_ids[fv.cls];
          VerdictMsg v{info.flow_slot, info.flow_gen, gid, 0, fv.confidence, slot.tag};
          if (info.lcore < lanes_.size() && rte_ring_mp_enqueue_elem(lanes_[info.lcore].verdicts, &v, sizeof v) != 0)
            counters_.verdict_ring_full.add_shared();
        }
        float conf = 0.f;
        const int cls = argmax(probs, classes, &conf);  // the window's own class, counted per class
        const int16_t wid = conf < opt_.unknown_below ? unknown_id_ : slot.class_ids[cls];
        if (wid >= 0) counters_.by_class[wid].add_shared();
        lines += verdict_json(info, probs, slot.format, fv);
        lines += '\n';
        local.record(static_cast<uint64_t>(static_cast<double>(now - b->close_tsc[i]) * 1e9 / static_cast<double>(tsc_hz_)));
      }
      out_.write(lines);
      counters_.pictures.add_shared(b->n);
      counters_.verdicts.add_shared(b->n);
      counters_.batches.add_shared();
    } else {
      counters_.batch_failed.add_shared();
      counters_.windows_failed.add_shared(b->n);
    }
    b->slot.reset();  // the model is retired once no batch or network holds it
    {
      std::lock_guard lk(lat_mu_);
      worker_latency_[worker] = local;
    }
    {
      std::lock_guard lk(q_mu_);
      free_.push_back(b);
    }
    free_cv_.notify_one();
  }
}

}  // namespace flowpic
