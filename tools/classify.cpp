#include "tools/classify.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "infer/network.hpp"
#include "infer/verdict.hpp"
#include "picbuilder/batch.hpp"
#include "tools/pipeline.hpp"
#include "tools/progress.hpp"

namespace flowpic {

FlowTableConfig classify_table_config(const Model& model, const ClassifyOptions& opt) {
  FlowTableConfig cfg;
  cfg.capacity = opt.flow_capacity;
  cfg.idle_timeout_ns = opt.idle_timeout_ns;
  cfg.window = model.info().picture.window;
  return cfg;
}

namespace {

struct Pending {
  WindowInfo info;
  uint64_t first_record;
  TimeNs closed_ns;
};

}  // namespace

void classify_pcap(const std::string& path, const std::shared_ptr<const Model>& model, const ClassifyOptions& opt,
                   const std::function<void(const std::string&, const WindowInfo&, int, float)>& on_verdict,
                   ClassifyReport* report) {
  ClassifyReport local;
  ClassifyReport& rep = report ? *report : local;
  const auto t0 = std::chrono::steady_clock::now();

  std::vector<Pending> windows;
  std::vector<PacketRecord> records;
  OfflinePipeline pipe(classify_table_config(*model, opt),
                       [&](const WindowInfo& info, const PacketRecord* recs, uint32_t n, TimeNs closed_ns) {
                         windows.push_back(Pending{info, records.size(), closed_ns});
                         windows.back().info.n_records = n;
                         records.insert(records.end(), recs, recs + n);
                       });
  {
    Progress bar("reading " + path, 0, " packets");
    if (!opt.progress) Progress::set_enabled(false);
    pipe.run_pcap(path, &bar, &rep.warning);
    bar.finish();
    Progress::set_enabled(true);
  }
  rep.packets = pipe.counters().packets;
  rep.parse = pipe.step_state().parse;
  rep.clock_backwards = pipe.clock_backwards();
  rep.table = pipe.table_counters();

  // Order of window close; ties (same time: a flush, a burst's sweep) by key, then index.
  std::stable_sort(windows.begin(), windows.end(), [](const Pending& a, const Pending& b) {
    if (a.closed_ns != b.closed_ns) return a.closed_ns < b.closed_ns;
    if (a.info.key != b.info.key) return a.info.key < b.info.key;
    return a.info.index < b.info.index;
  });

  const int classes = model->num_classes();
  rep.per_class.assign(static_cast<size_t>(classes), 0);
  if (windows.empty()) {
    rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return;
  }
  const int batch = std::max(1, opt.batch);
  Network net(model, batch, opt.threads);
  const PictureConfig& pic = model->info().picture;
  const size_t floats = picture_floats(pic);
  std::vector<WindowRef> refs(static_cast<size_t>(batch));
  std::vector<float> probs(static_cast<size_t>(batch) * classes);
  VerdictFormat fmt;
  fmt.classes = &model->info().classes;
  fmt.model_id = model->id();
  fmt.unknown_below = opt.threshold;
  // Flow verdicts accumulated over each flow's windows, in close order, as flowpicd does.
  FlowEvidence evidence;
  evidence.reset(opt.flow_capacity, classes);
  for (size_t start = 0; start < windows.size(); start += static_cast<size_t>(batch)) {
    const size_t n = std::min(windows.size() - start, static_cast<size_t>(batch));
    for (size_t i = 0; i < n; ++i) {
      const Pending& w = windows[start + i];
      refs[i] = WindowRef{&w.info, records.data() + w.first_record, w.info.n_records};
    }
    build_batch(pic, refs.data(), n, net.input());
    net.forward(static_cast<int>(n), probs.data());
    for (size_t i = 0; i < n; ++i) {
      const float* p = probs.data() + i * classes;
      float conf = 0;
      const int cls = argmax(p, classes, &conf);
      ++rep.windows_classified;
      if (conf < opt.threshold) ++rep.windows_unknown;
      else ++rep.per_class[static_cast<size_t>(cls)];
      const WindowInfo& info = windows[start + i].info;
      FlowVerdict fv;
      fv.cls = evidence.add(info.flow_slot, info.flow_gen, p, &fv.confidence, &fv.windows);
      on_verdict(verdict_json(info, p, fmt, fv), info, cls, conf);
    }
  }
  (void)floats;
  if (net.errors() > 0) throw std::runtime_error("inference failed on " + std::to_string(net.errors()) + " batches");
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace flowpic
