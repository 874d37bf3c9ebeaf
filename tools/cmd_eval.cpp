// flowpic eval --model M --dataset D
#include <spdlog/spdlog.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "infer/model.hpp"
#include "infer/verdict.hpp"
#include "picbuilder/render.hpp"
#include "tools/cli.hpp"
#include "tools/dataset.hpp"
#include "tools/metrics.hpp"
#include "tools/predict.hpp"

namespace flowpic::cli {

void add_eval(CLI::App& app, Action* action) {
  struct Args {
    std::string model, dataset, csv, png, map;
    std::vector<double> thresholds = {0.0, 0.5, 0.7, 0.9};
    bool json = false;
    int batch = 256, threads = 1;
  };
  auto a = std::make_shared<Args>();
  auto* s = app.add_subcommand("eval", "accuracy, per-class precision/recall/F1, confusion matrix and accuracy against coverage");
  s->add_option("-m,--model", a->model, "model file")->required();
  s->add_option("-d,--dataset", a->dataset, "dataset file")->required();
  s->add_option("--csv", a->csv, "write the confusion matrix and per-class scores as CSV");
  s->add_option("--png", a->png, "draw the confusion matrix as a PNG");
  s->add_option("--thresholds", a->thresholds, "confidence thresholds for accuracy against coverage")
      ->delimiter(',')
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  s->add_option("--map-classes", a->map,
                "dataset class -> model class, e.g. 'Zoom=VoIP,Skype=VoIP' (unknown-application experiment); "
                "unmapped classes match by name");
  s->add_flag("--json", a->json, "print the report as JSON");
  s->add_option("--batch", a->batch, "pictures per inference batch")->capture_default_str()->check(CLI::Range(1, 4096));
  s->add_option("--threads", a->threads, "inference threads")->capture_default_str()->check(CLI::Range(1, 256));
  s->callback([action, a] {
    *action = [a] {
      // Parse the mapping before the (slow) loads so a typo fails fast.
      std::map<std::string, std::string> mapping;
      if (!a->map.empty()) {
        std::stringstream ss(a->map);
        std::string item;
        while (std::getline(ss, item, ',')) {
          const auto eq = item.find('=');
          if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
            throw UsageError("--map-classes: '" + item + "' is not DATASET_CLASS=MODEL_CLASS");
          mapping[item.substr(0, eq)] = item.substr(eq + 1);
        }
      }
      const auto model = Model::load(a->model);
      const WindowDataset ds = load_dataset(a->dataset);
      const auto& mclasses = model->info().classes;
      for (const auto& [from, to] : mapping)
        if (ds.class_index(from) < 0 || std::find(mclasses.begin(), mclasses.end(), to) == mclasses.end())
          throw UsageError("--map-classes: '" + from + "=" + to + "': no dataset class '" + from +
                           "' or no model class '" + to + "'");
      // WindowDataset class -> model class index (-1: not evaluated).
      std::vector<int> to_model(ds.classes.size(), -1);
      for (size_t c = 0; c < ds.classes.size(); ++c) {
        auto it = mapping.find(ds.classes[c]);
        const std::string& name = it == mapping.end() ? ds.classes[c] : it->second;
        auto m = std::find(mclasses.begin(), mclasses.end(), name);
        if (m != mclasses.end()) to_model[c] = static_cast<int>(m - mclasses.begin());
      }
      std::vector<uint32_t> which;
      std::map<std::string, uint64_t> skipped;
      for (uint32_t i = 0; i < ds.windows.size(); ++i) {
        if (to_model[ds.windows[i].label] >= 0) which.push_back(i);
        else ++skipped[ds.classes[ds.windows[i].label]];
      }
      for (const auto& [c, n] : skipped)
        spdlog::warn("{} windows of dataset class '{}' skipped: the model has no such class (see --map-classes)", n, c);
      if (which.empty()) throw std::runtime_error("no window of " + a->dataset + " has a class the model knows");
      if (!(ds.window.kind == model->info().picture.window.kind &&
            (ds.window.kind == WindowPolicy::Kind::kCount ? ds.window.packets == model->info().picture.window.packets
                                                          : ds.window.length_ns == model->info().picture.window.length_ns)))
        spdlog::warn("dataset windows are {} but the model was trained on {}", window_spec_string(ds.window),
                     window_spec_string(model->info().picture.window));

      const auto probs = predict_windows(model, ds, which, a->batch, a->threads, progress_enabled());
      const int k = model->num_classes();
      Confusion cm(k);
      std::vector<float> conf(which.size());
      std::vector<uint8_t> correct(which.size());
      for (size_t i = 0; i < which.size(); ++i) {
        const int truth = to_model[ds.windows[which[i]].label];
        const int pred = argmax(probs.data() + i * k, k, &conf[i]);
        cm.add(truth, pred);
        correct[i] = pred == truth;
      }
      const auto cov = accuracy_coverage(conf, correct, a->thresholds);

      if (!a->csv.empty()) {
        std::ofstream f(a->csv);
        f << cm.csv(mclasses);
        if (!f) throw std::runtime_error(a->csv + ": cannot write");
      }
      if (!a->png.empty()) {
        std::vector<std::vector<uint64_t>> counts(k, std::vector<uint64_t>(k));
        for (int t = 0; t < k; ++t)
          for (int p = 0; p < k; ++p) counts[t][p] = cm.at(t, p);
        std::string err;
        char title[256];
        std::snprintf(title, sizeof title, "accuracy %.2f%%  macro-F1 %.3f", cm.accuracy() * 100, cm.macro_f1());
        if (!write_confusion_png(a->png, counts, mclasses, title, &err)) throw std::runtime_error(a->png + ": " + err);
      }
      if (a->json) {
        nlohmann::json j = cm.to_json(mclasses);
        j["model"] = model->id();
        j["dataset"] = a->dataset;
        nlohmann::json c = nlohmann::json::array();
        for (const auto& p : cov)
          c.push_back({{"threshold", p.threshold}, {"coverage", p.coverage}, {"accuracy", p.accuracy}, {"windows", p.covered}});
        j["coverage"] = c;
        j["skipped"] = skipped;
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
      }
      std::printf("model     %s\ndataset   %s (%zu windows evaluated)\n", model->id().c_str(), a->dataset.c_str(),
                  which.size());
      std::printf("accuracy  %.4f\nmacro-F1  %.4f\n\n", cm.accuracy(), cm.macro_f1());
      std::printf("%s\n", cm.table(mclasses).c_str());
      std::printf("threshold  coverage  accuracy  windows\n");
      for (const auto& p : cov)
        std::printf("%9.2f  %8.4f  %8.4f  %7llu\n", p.threshold, p.coverage, p.accuracy,
                    static_cast<unsigned long long>(p.covered));
      return 0;
    };
  });
}

}  // namespace flowpic::cli
