#include "tools/classify.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <unordered_map>

#include "export/exporter.hpp"
#include "export/flow_record.hpp"
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

// A closed window waiting for its batch, with its own copy of its records.
struct Pending {
  WindowInfo info;
  std::vector<PacketRecord> records;
};

}  // namespace

// Streams: windows are classified as soon as their place in the output order is known, so
// memory holds the open flows and one batch, whatever the capture's length (issue 12). The
// order is the table time at which each window closed; windows that closed at the same time
// (a flush, a burst's sweep) go by flow key, then window index. The pipeline's table time never
// goes backwards, so a window's place is known once a later time is seen.
void classify_pcap(const std::string& path, const std::shared_ptr<const Model>& model, const ClassifyOptions& opt,
                   const std::function<void(const std::string&, const WindowInfo&, int, float)>& on_verdict,
                   ClassifyReport* report) {
  ClassifyReport local;
  ClassifyReport& rep = report ? *report : local;
  const auto t0 = std::chrono::steady_clock::now();

  const int classes = model->num_classes();
  rep.per_class.assign(static_cast<size_t>(classes), 0);
  const int batch = std::max(1, opt.batch);
  std::unique_ptr<Network> net;  // built at the first window: a capture without windows needs none
  const PictureConfig& pic = model->info().picture;
  std::vector<WindowRef> refs(static_cast<size_t>(batch));
  std::vector<float> probs(static_cast<size_t>(batch) * classes);
  VerdictFormat fmt;
  fmt.classes = &model->info().classes;
  fmt.model_id = model->id();
  fmt.unknown_below = opt.threshold;
  // Flow verdicts accumulated over each flow's windows, in output order, as flowpicd does.
  FlowEvidence evidence;
  evidence.reset(opt.flow_capacity, classes);

  // Flow export: a flow's record leaves once the verdicts of all its windows are known (its last
  // windows close with it and are classified later, in output order), with its flow verdict.
  struct FlowDone {
    uint32_t gen = 0, windows = 0;  // windows of generation `gen` classified so far
    int cls = -1;
    float conf = 0.f;
  };
  struct Ended {
    FlowExportMsg msg;
    uint32_t remaining;
  };
  std::vector<FlowDone> done;
  std::unordered_map<uint64_t, Ended> ended;
  const int unknown_cls = opt.threshold > 0 ? classes : -1;  // "unknown" follows the model's classes
  auto submit = [&](const FlowExportMsg& m) {
    opt.exporter->push_wait(0, m);
    ++rep.flow_records;
  };
  if (opt.exporter) {
    done.resize(opt.flow_capacity);
    std::vector<std::string> names = model->info().classes;
    if (opt.threshold > 0) names.push_back("unknown");
    opt.exporter->publish(1, model->id(), names);
  }

  std::vector<Pending> group;   // windows that closed at group_ns, order among them not yet fixed
  TimeNs group_ns = 0;
  std::deque<Pending> ready;    // in output order
  auto classify_front = [&](size_t n) {
    if (!net) net = std::make_unique<Network>(model, batch, opt.threads);
    for (size_t i = 0; i < n; ++i)
      refs[i] = WindowRef{&ready[i].info, ready[i].records.data(), static_cast<uint32_t>(ready[i].records.size())};
    build_batch(pic, refs.data(), n, net->input());
    net->forward(static_cast<int>(n), probs.data());
    for (size_t i = 0; i < n; ++i) {
      const float* p = probs.data() + i * classes;
      float conf = 0;
      const int cls = argmax(p, classes, &conf);
      ++rep.windows_classified;
      if (conf < opt.threshold) ++rep.windows_unknown;
      else ++rep.per_class[static_cast<size_t>(cls)];
      const WindowInfo& info = ready[i].info;
      FlowVerdict fv;
      fv.cls = evidence.add(info.flow_slot, info.flow_gen, p, &fv.confidence, &fv.windows);
      on_verdict(verdict_json(info, p, fmt, fv), info, cls, conf);
      if (opt.exporter && info.flow_slot < done.size()) {
        FlowDone& d = done[info.flow_slot];
        if (d.gen != info.flow_gen) d = FlowDone{info.flow_gen, 0, -1, 0.f};
        ++d.windows;
        d.cls = fv.confidence < opt.threshold ? unknown_cls : fv.cls;
        d.conf = fv.confidence;
        const auto it = ended.find(uint64_t(info.flow_slot) << 32 | info.flow_gen);
        if (it != ended.end()) {
          it->second.msg.cls = static_cast<int16_t>(d.cls);
          it->second.msg.confidence = d.conf;
          if (--it->second.remaining == 0) {
            submit(it->second.msg);
            ended.erase(it);
          }
        }
      }
    }
    ready.erase(ready.begin(), ready.begin() + static_cast<std::ptrdiff_t>(n));
  };
  auto close_group = [&] {
    std::stable_sort(group.begin(), group.end(), [](const Pending& a, const Pending& b) {
      if (a.info.key != b.info.key) return a.info.key < b.info.key;
      return a.info.index < b.info.index;
    });
    for (auto& w : group) ready.push_back(std::move(w));
    group.clear();
    while (ready.size() >= static_cast<size_t>(batch)) classify_front(static_cast<size_t>(batch));
  };
  OfflinePipeline pipe(classify_table_config(*model, opt),
                       [&](const WindowInfo& info, const PacketRecord* recs, uint32_t n, TimeNs closed_ns) {
                         if (!group.empty() && closed_ns != group_ns) close_group();
                         group_ns = closed_ns;
                         Pending w{info, std::vector<PacketRecord>(recs, recs + n)};
                         w.info.n_records = n;
                         group.push_back(std::move(w));
                       });
  if (opt.exporter)
    pipe.set_flow_end(
        [&](const FlowEndInfo& f) {
          FlowExportMsg m = flow_record(f);
          m.model_tag = 1;
          uint32_t classified = 0;
          if (f.slot < done.size() && done[f.slot].gen == f.gen) {
            classified = done[f.slot].windows;
            m.cls = static_cast<int16_t>(done[f.slot].cls);
            m.confidence = done[f.slot].conf;
          }
          // No verdict is ever applied to the offline table: `pending` counts all the flow's windows.
          if (f.reason == FlowEndReason::kActive || f.pending <= classified) {
            submit(m);
            return;
          }
          ended[uint64_t(f.slot) << 32 | f.gen] = Ended{m, f.pending - classified};
        },
        opt.active_timeout_ns);
  {
    Progress bar("reading " + path, 0, " packets");
    if (!opt.progress) Progress::set_enabled(false);
    pipe.run_pcap(path, &bar, &rep.warning);
    bar.finish();
    Progress::set_enabled(true);
  }
  if (!group.empty()) close_group();
  while (!ready.empty()) classify_front(std::min(ready.size(), static_cast<size_t>(batch)));
  for (auto& [k, e] : ended) submit(e.msg);  // windows that never reached a verdict (none expected)
  ended.clear();
  rep.packets = pipe.counters().packets;
  rep.parse = pipe.step_state().parse;
  rep.clock_backwards = pipe.clock_backwards();
  rep.table = pipe.table_counters();
  if (net && net->errors() > 0) throw std::runtime_error("inference failed on " + std::to_string(net->errors()) + " batches");
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace flowpic
