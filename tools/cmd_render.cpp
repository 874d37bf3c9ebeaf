// flowpic render --pcap FILE [--flow KEY] | --dataset FILE --class-means  -o OUT.png
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <map>

#include "infer/model.hpp"
#include "picbuilder/render.hpp"
#include "tools/cli.hpp"
#include "tools/dataset.hpp"
#include "tools/pipeline.hpp"

namespace flowpic::cli {

namespace {

std::string seconds_text(uint64_t ns) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3f", static_cast<double>(ns) / 1e9);
  return b;
}

}  // namespace

// Two-channel pictures are drawn as two panels side by side (their planes are contiguous, so
// picture i's channel c is panel 2i + c): one title per panel.
static void split_channels(const PictureConfig& pc, std::vector<std::string>& titles) {
  if (pc.channels != 2) return;
  std::vector<std::string> two;
  for (const auto& t : titles) {
    two.push_back(t + ", initiator");
    two.push_back(t + ", responder");
  }
  titles.swap(two);
}

void add_render(CLI::App& app, Action* action) {
  struct Args {
    std::string pcap, flow, dataset, model, out, window, idle = "30s", flows;
    bool class_means = false;
    uint32_t max_windows = 16, min_packets = 10;
    PictureArgs pic;
  };
  auto a = std::make_shared<Args>();
  auto* s = app.add_subcommand("render", "draw FlowPics as PNG: one flow's windows (--pcap) or each class's mean picture (--dataset --class-means)");
  auto* o_pcap = s->add_option("--pcap", a->pcap, "capture: draw the windows of one flow");
  s->add_option("--flow", a->flow, "the flow, as flowpic prints it: \"udp 1.2.3.4:5 -> 6.7.8.9:10\" (default: the flow with most packets)")
      ->needs(o_pcap);
  auto* o_ds = s->add_option("--dataset", a->dataset, "dataset file")->excludes(o_pcap);
  s->add_flag("--class-means", a->class_means, "mean picture of each class of --dataset")->needs(o_ds);
  s->add_option("-m,--model", a->model, "take the picture config (window, resolution, axes) from this model")
      ;
  s->add_option("--window", a->window, "window policy for --pcap: time:SECONDS or count:PACKETS (default time:15 or the model's)");
  s->add_option("--flows", a->flows, "for --pcap with --window: uni (one direction) or bi (both directions, drawn as "
                                     "two pictures: initiator, responder); default uni or the model's")
      ->check(CLI::IsMember({"uni", "bi"}));
  s->add_option("--min-packets", a->min_packets, "windows with fewer packets are not drawn")->capture_default_str();
  s->add_option("--max-windows", a->max_windows, "draw at most this many windows of the flow")->capture_default_str()->check(CLI::Range(1u, 1024u));
  s->add_option("--idle-timeout", a->idle, "a flow idle this long ends")->capture_default_str();
  a->pic.add_to(s);
  s->add_option("-o,--output", a->out, "PNG file to write")->required();
  s->callback([action, a] {
    *action = [a] {
      if (a->pcap.empty() && a->dataset.empty()) throw UsageError("give --pcap FILE or --dataset FILE --class-means");
      if (!a->dataset.empty() && !a->class_means) throw UsageError("--dataset needs --class-means");
      std::shared_ptr<const Model> model;
      if (!a->model.empty()) model = Model::load(a->model);

      if (!a->pcap.empty()) {
        WindowPolicy w;
        w.kind = WindowPolicy::Kind::kTime;
        if (model) w = model->info().picture.window;
        std::string err;
        if (!a->window.empty() && !parse_window_spec(a->window, w, &err)) throw UsageError("--window: " + err);
        if (!a->flows.empty()) w.bidirectional = a->flows == "bi";
        w.min_packets = a->min_packets;
        w.max_windows = 0;
        PictureConfig pc = model && a->window.empty() ? model->info().picture : a->pic.make(w);
        pc.window = w;
        if (model && a->window.empty() && w.bidirectional != model->info().picture.window.bidirectional)
          pc.channels = w.bidirectional ? 2 : 1;  // --flows changed the model's: one plane per direction
        FlowKey want{};
        const bool pick = !a->flow.empty();
        if (pick && !parse_flow_key(a->flow, want, &err)) throw UsageError("--flow: " + err);
        FlowTableConfig tc;
        tc.window = w;
        tc.idle_timeout_ns = parse_duration(a->idle, "--idle-timeout");
        // Keep every qualifying window (few per capture), then choose the flow.
        std::vector<Window> windows;
        OfflinePipeline pipe(tc, [&](const WindowInfo& info, const PacketRecord* recs, uint32_t n, TimeNs) {
          if (pick && info.key != want && !(w.bidirectional && info.key == reversed(want))) return;
          windows.push_back(Window{info, std::vector<PacketRecord>(recs, recs + n)});
        });
        std::string warning;
        pipe.run_pcap(a->pcap, nullptr, &warning);
        if (!warning.empty()) spdlog::warn("{}", warning);
        FlowKey key = want;
        if (!pick) {
          std::map<FlowKey, uint64_t> packets;
          for (const auto& win : windows) packets[win.info.key] += win.info.packets;
          if (packets.empty())
            throw std::runtime_error(a->pcap + ": no flow has a window of at least " + std::to_string(w.min_packets) +
                                     " packets (" + window_spec_string(w) + ")");
          key = std::max_element(packets.begin(), packets.end(), [](auto& x, auto& y) { return x.second < y.second; })->first;
        }
        std::vector<const Window*> mine;
        for (const auto& win : windows)
          if ((win.info.key == key || (w.bidirectional && win.info.key == reversed(key))) && mine.size() < a->max_windows)
            mine.push_back(&win);
        if (mine.empty())
          throw std::runtime_error(a->pcap + ": flow '" + a->flow + "' has no window of at least " +
                                   std::to_string(w.min_packets) + " packets (" + window_spec_string(w) + ")");
        const size_t floats = picture_floats(pc);
        std::vector<float> pics(mine.size() * floats);
        std::vector<std::string> titles;
        for (size_t i = 0; i < mine.size(); ++i) {
          build_flowpic(pc, mine[i]->info, mine[i]->records.data(), mine[i]->info.n_records, pics.data() + i * floats);
          titles.push_back("window " + std::to_string(mine[i]->info.index) + ": " + std::to_string(mine[i]->info.packets) +
                           " pkts, " + seconds_text(mine[i]->info.last_ns - mine[i]->info.first_ns) + " s");
        }
        split_channels(pc, titles);
        if (!write_flowpic_grid_png(a->out, pics.data(), titles.size(), pc.resolution, titles, pc.channels == 2 ? 2 : 0,
                                    &err, &pc))
          throw std::runtime_error(a->out + ": " + err);
        spdlog::info("{}: {} windows of {} ({}) -> {}", a->pcap, mine.size(), to_string(key), window_spec_string(w), a->out);
        return 0;
      }

      const WindowDataset ds = load_dataset(a->dataset);
      if (model && ds.window.bidirectional != model->info().picture.window.bidirectional)
        throw UsageError("--dataset holds " + std::string(ds.window.bidirectional ? "both directions" : "one direction") +
                         " per window, the model's pictures " +
                         (model->info().picture.window.bidirectional ? "both" : "one") + ": drop -m or use a matching dataset");
      PictureConfig pc = model ? model->info().picture : a->pic.make(ds.window);
      pc.window = ds.window;
      const size_t floats = picture_floats(pc);
      std::vector<double> sums(ds.classes.size() * floats, 0.0);
      std::vector<uint64_t> counts(ds.classes.size(), 0);
      std::vector<float> pic(floats);
      for (const auto& w : ds.windows) {
        build_flowpic(pc, w.info, ds.records_of(w), w.info.n_records, pic.data());
        double* sum = sums.data() + static_cast<size_t>(w.label) * floats;
        for (size_t i = 0; i < floats; ++i) sum[i] += pic[i];
        ++counts[w.label];
      }
      std::vector<float> means(sums.size());
      std::vector<std::string> titles;
      for (size_t c = 0; c < ds.classes.size(); ++c) {
        for (size_t i = 0; i < floats; ++i)
          means[c * floats + i] = counts[c] ? static_cast<float>(sums[c * floats + i] / static_cast<double>(counts[c])) : 0.f;
        titles.push_back(ds.classes[c] + " (" + std::to_string(counts[c]) + " windows)");
      }
      std::string err;
      split_channels(pc, titles);
      if (!write_flowpic_grid_png(a->out, means.data(), titles.size(), pc.resolution, titles, pc.channels == 2 ? 2 : 0,
                                  &err, &pc))
        throw std::runtime_error(a->out + ": " + err);
      spdlog::info("{}: mean FlowPic of {} classes ({}x{}, {} axis) -> {}", a->dataset, ds.classes.size(), pc.resolution,
                   pc.resolution, time_axis_name(pc.time_axis), a->out);
      return 0;
    };
  });
}

}  // namespace flowpic::cli
