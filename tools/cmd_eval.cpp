// flowpic eval --model M --dataset D
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <tuple>
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
    bool json = false, fit_temperature = false, calibrated = false;
    int batch = 256, threads = 1, bins = 15;
    double temperature = 1.0;
    std::string reliability_png, flows_csv;
    SelectionArgs sel;
    std::vector<std::string> skip_classes;
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
  a->sel.add_to(s);
  s->add_option("--skip-class", a->skip_classes,
                "leave windows of this dataset class out (repeatable): compare a model with a class against one without it "
                "on the same windows")
      ->delimiter(',');
  s->add_option("--temperature", a->temperature, "divide the logits by T before the softmax, on top of the model's own temperature")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 100.0));
  s->add_flag("--calibrated", a->calibrated,
              "report accuracy at the 90 %-coverage confidence threshold that `flowpic train --holdout-by capture` fitted on its held-back "
              "captures (the temperature fitted there is in the model and always applied)");
  s->add_flag("--fit-temperature", a->fit_temperature,
              "fit T on THESE windows (least negative log-likelihood) and report it: run it on held-back captures, never the test");
  s->add_option("--bins", a->bins, "confidence bins for the expected calibration error")->capture_default_str()->check(CLI::Range(2, 100));
  s->add_option("--reliability-png", a->reliability_png, "draw the reliability diagram (accuracy by confidence bin) as a PNG");
  s->add_option("--flows-csv", a->flows_csv,
                "write one row per connection (capture, flow, true class, windows, mean probability of each model class): "
                "the flow-level evidence, e.g. to combine the verdicts of two window policies on the same connections");
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
      std::vector<uint32_t> which, selected;
      try {
        selected = select_windows(ds, a->sel.make());
      } catch (const std::invalid_argument& e) {
        throw UsageError(e.what());
      }
      std::map<std::string, uint64_t> skipped;
      for (const auto& c : a->skip_classes)
        if (ds.class_index(c) < 0) throw UsageError("--skip-class: the dataset has no class '" + c + "'");
      const std::set<std::string> skip(a->skip_classes.begin(), a->skip_classes.end());
      for (uint32_t i : selected) {
        if (skip.count(ds.classes[ds.windows[i].label])) continue;
        if (to_model[ds.windows[i].label] >= 0) which.push_back(i);
        else ++skipped[ds.classes[ds.windows[i].label]];
      }
      for (const auto& [c, n] : skipped)
        spdlog::warn("{} windows of dataset class '{}' skipped: the model has no such class (see --map-classes)", n, c);
      if (which.empty()) throw std::runtime_error("no window of " + a->dataset + " has a class the model knows");
      if (ds.window.bidirectional != model->info().picture.window.bidirectional)
        throw UsageError(std::string("dataset windows hold ") + (ds.window.bidirectional ? "both directions" : "one direction") +
                         " of a connection, the model was trained on " +
                         (model->info().picture.window.bidirectional ? "both" : "one") +
                         ": make the dataset with" + (model->info().picture.window.bidirectional ? "" : "out") + " --flows bi");
      if (!(ds.window.kind == model->info().picture.window.kind &&
            (ds.window.kind == WindowPolicy::Kind::kCount ? ds.window.packets == model->info().picture.window.packets
                                                          : ds.window.length_ns == model->info().picture.window.length_ns)))
        spdlog::warn("dataset windows are {} but the model was trained on {}", window_spec_string(ds.window),
                     window_spec_string(model->info().picture.window));

      auto probs = predict_windows(model, ds, which, a->batch, a->threads, progress_enabled());
      const int k = model->num_classes();
      double fitted_t = 0;
      if (a->fit_temperature) {
        std::vector<int> truth(which.size());
        for (size_t i = 0; i < which.size(); ++i) truth[i] = to_model[ds.windows[which[i]].label];
        fitted_t = fit_temperature(probs, truth, k);
      }
      double temperature = a->temperature, fitted_threshold = -1;
      if (a->calibrated) {
        const auto& tr = model->info().training;
        if (!tr.contains("calibration") || !tr["calibration"].is_object())
          throw UsageError("--calibrated: " + a->model + " has no calibration (train it with --holdout-by capture)");
        fitted_threshold = tr["calibration"].value("threshold_coverage_0.9", -1.0);
        if (fitted_threshold >= 0 && std::find(a->thresholds.begin(), a->thresholds.end(), fitted_threshold) == a->thresholds.end())
          a->thresholds.push_back(fitted_threshold);
      }
      apply_temperature(probs.data(), which.size(), k, temperature);
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
      const Calibration cal = calibration(conf, correct, a->bins);
      // Top-5 (application id): the true class among the five most probable.
      uint64_t top5 = 0;
      for (size_t i = 0; i < which.size(); ++i) {
        const int truth = to_model[ds.windows[which[i]].label];
        const float pt = probs[i * k + truth];
        int above = 0;
        for (int c = 0; c < k; ++c) above += probs[i * k + c] > pt;
        top5 += above < 5;
      }
      const double top5_acc = which.empty() ? 0.0 : static_cast<double>(top5) / static_cast<double>(which.size());
      // The most confused pairs (truth -> predicted), largest share of the true class first,
      // among true classes with at least 100 windows (a share of 3 windows says nothing).
      std::vector<std::tuple<double, int, int>> confused;
      for (int t = 0; t < k; ++t) {
        uint64_t row = 0;
        for (int p = 0; p < k; ++p) row += cm.at(t, p);
        if (row < 100) continue;
        for (int p = 0; p < k; ++p)
          if (p != t && cm.at(t, p)) confused.emplace_back(static_cast<double>(cm.at(t, p)) / static_cast<double>(row), t, p);
      }
      std::sort(confused.begin(), confused.end(), [](const auto& x, const auto& y) { return std::get<0>(x) > std::get<0>(y); });
      if (confused.size() > 10) confused.resize(10);

      // Flow level: the windows of one connection (both directions, within one capture) vote
      // with their mean probabilities, as the appliance's flow verdict would accumulate them.
      // Sources whose keys are not real flows (corpus origin flow_identity false: ODE-Flow's
      // stand-alone windows, Learn-Live's chunks) are left out of the flow level.
      std::vector<uint8_t> no_flows(ds.sources.size(), 0);
      if (ds.origin.contains("sources") && ds.origin["sources"].is_object())
        for (uint32_t c = 0; c < ds.sources.size(); ++c) {
          const auto& src = ds.origin["sources"];
          const std::string name = window_source(ds, c);
          no_flows[c] = src.contains(name) && src[name].is_object() && !src[name].value("flow_identity", true);
        }
      uint64_t flow_skipped = 0;
      std::map<std::pair<uint32_t, std::string>, std::pair<std::vector<double>, int>> flows;
      std::map<std::pair<uint32_t, std::string>, uint64_t> flow_windows;
      for (size_t i = 0; i < which.size(); ++i) {
        const auto& w = ds.windows[which[i]];
        if (no_flows[w.source]) {
          ++flow_skipped;
          continue;
        }
        FlowKey key = w.info.key;
        canonicalize(key);  // both directions of a connection: one flow
        const std::pair<uint32_t, std::string> id{w.source, std::string(reinterpret_cast<const char*>(&key), sizeof key)};
        ++flow_windows[id];
        auto& f = flows[id];
        if (f.first.empty()) f.first.assign(static_cast<size_t>(k), 0.0), f.second = to_model[w.label];
        for (int c = 0; c < k; ++c) f.first[static_cast<size_t>(c)] += probs[i * k + c];
      }
      const bool keyed = ds.origin.value("kind", "") != "ode-flow" && flow_skipped < which.size();
      if (!a->flows_csv.empty()) {
        std::ofstream f(a->flows_csv);
        f << "capture,flow,truth,windows";
        for (const auto& c : mclasses) f << ",p_" << c;
        f << "\n";
        for (const auto& [id, fl] : flows) {
          FlowKey key;
          std::memcpy(&key, id.second.data(), sizeof key);
          f << ds.sources[id.first] << ',' << to_string(key) << ',' << mclasses[static_cast<size_t>(fl.second)] << ','
            << flow_windows[id];
          for (int c = 0; c < k; ++c) f << ',' << fl.first[static_cast<size_t>(c)] / static_cast<double>(flow_windows[id]);
          f << "\n";
        }
        if (!f) throw std::runtime_error(a->flows_csv + ": cannot write");
      }
      Confusion flow_cm(k);
      for (const auto& [id, f] : flows) {
        int best = 0;
        for (int c = 1; c < k; ++c)
          if (f.first[static_cast<size_t>(c)] > f.first[static_cast<size_t>(best)]) best = c;
        flow_cm.add(f.second, best);
      }
      // Per source (corpus datasets): accuracy and windows.
      std::map<std::string, std::pair<uint64_t, uint64_t>> per_source;
      for (size_t i = 0; i < which.size(); ++i) {
        auto& ps = per_source[window_source(ds, ds.windows[which[i]].source)];
        ++ps.second;
        ps.first += correct[i];
      }
      if (!a->reliability_png.empty()) {
        std::vector<ReliabilityBin> bins;
        for (const auto& b : cal.bins) bins.push_back({b.confidence, b.accuracy, b.count});
        char title[128];
        std::snprintf(title, sizeof title, "ECE %.3f  (%zu windows)", cal.ece, which.size());
        std::string err;
        if (!write_reliability_png(a->reliability_png, bins, title, &err)) throw std::runtime_error(a->reliability_png + ": " + err);
      }

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
        j["ece"] = cal.ece;
        j["top5_accuracy"] = top5_acc;
        nlohmann::json mc = nlohmann::json::array();
        for (const auto& [share, t, p] : confused)
          mc.push_back({{"truth", mclasses[t]}, {"predicted", mclasses[p]}, {"share_of_truth", share}, {"windows", cm.at(t, p)}});
        j["most_confused"] = mc;
        j["temperature"] = temperature;
        j["model_temperature"] = model->info().temperature;
        if (fitted_threshold >= 0) j["fitted_threshold"] = fitted_threshold;
        if (a->fit_temperature) j["fitted_temperature"] = fitted_t;
        nlohmann::json rel = nlohmann::json::array();
        for (const auto& b : cal.bins) rel.push_back({{"confidence", b.confidence}, {"accuracy", b.accuracy}, {"windows", b.count}});
        j["reliability"] = rel;
        if (keyed) j["flow_level"] = {{"flows", flow_cm.total()}, {"accuracy", flow_cm.accuracy()}, {"macro_f1", flow_cm.macro_f1()},
                                      {"windows_without_flows", flow_skipped}, {"confusion", flow_cm.to_json(mclasses)}};
        nlohmann::json src = nlohmann::json::object();
        for (const auto& [name, v] : per_source)
          src[name] = {{"windows", v.second}, {"accuracy", v.second ? static_cast<double>(v.first) / v.second : 0.0}};
        j["per_source"] = src;
        j["selection"] = {{"sources", a->sel.sources}, {"exclude_sources", a->sel.exclude_sources}, {"fold", a->sel.fold},
                          {"side", a->sel.side}, {"cap", a->sel.cap}};
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
      }
      std::printf("model     %s\ndataset   %s (%zu windows evaluated)\n", model->id().c_str(), a->dataset.c_str(),
                  which.size());
      std::printf("accuracy  %.4f\nmacro-F1  %.4f\nECE       %.4f (%d bins%s)\n", cm.accuracy(), cm.macro_f1(), cal.ece, a->bins,
                  fmt::format(", model temperature {:.3f}{}", model->info().temperature,
                              temperature != 1.0 ? fmt::format(" then {:.3f}", temperature) : std::string()).c_str());
      if (fitted_threshold >= 0)
        std::printf("threshold %.4f fitted on the model's held-back captures for 90 %% coverage (row below)\n", fitted_threshold);
      if (a->fit_temperature) std::printf("fitted temperature %.4f (on these windows)\n", fitted_t);
      if (k > 5) std::printf("top-5     %.4f\n", top5_acc);
      if (keyed)
        std::printf("flows     %llu: accuracy %.4f, macro-F1 %.4f (mean window probabilities per connection)\n",
                    static_cast<unsigned long long>(flow_cm.total()), flow_cm.accuracy(), flow_cm.macro_f1());
      if (per_source.size() > 1)
        for (const auto& [name, v] : per_source)
          std::printf("source    %-14s %8llu windows, accuracy %.4f\n", name.c_str(), static_cast<unsigned long long>(v.second),
                      v.second ? static_cast<double>(v.first) / v.second : 0.0);
      std::printf("\n");
      std::printf("%s\n", cm.table(mclasses).c_str());
      if (k > 8 && !confused.empty()) {
        std::printf("most confused (share of the true class):\n");
        for (const auto& [share, t, p] : confused)
          std::printf("  %-28s -> %-28s %6.2f%%  (%llu windows)\n", mclasses[t].c_str(), mclasses[p].c_str(), share * 100,
                      static_cast<unsigned long long>(cm.at(t, p)));
        std::printf("\n");
      }
      std::printf("threshold  coverage  accuracy  windows\n");
      for (const auto& p : cov)
        std::printf("%9.2f  %8.4f  %8.4f  %7llu\n", p.threshold, p.coverage, p.accuracy,
                    static_cast<unsigned long long>(p.covered));
      return 0;
    };
  });
}

}  // namespace flowpic::cli
