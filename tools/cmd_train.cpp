// flowpic train --dataset FILE -o MODEL
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "infer/model.hpp"
#include "infer/train.hpp"
#include "picbuilder/batch.hpp"
#include "tools/cli.hpp"
#include "tools/dataset.hpp"
#include "tools/metrics.hpp"
#include "tools/progress.hpp"
#include "infer/verdict.hpp"

namespace flowpic::cli {

namespace {

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

}  // namespace

void add_train(CLI::App& app, Action* action) {
  struct Args {
    std::string dataset, out, arch = "lenet", classes, one_vs_all, name = "flowpic";
    std::vector<std::string> exclude;
    PictureArgs pic;
    int epochs = 30, batch = 64, threads = 1, patience = 5;
    float lr = 1e-3f, holdout = 0.1f, weight_decay = 0.f;
    uint64_t seed = 1;
    uint32_t min_windows = 1;
    double max_memory_gb = 8.0;
    SelectionArgs sel;
    std::string holdout_by = "window";
    uint32_t augment = 0;
    uint32_t serve_max_windows = 0;
    uint32_t size_jitter = 40;
    double time_jitter = 2.0;
  };
  auto a = std::make_shared<Args>();
  auto* s = app.add_subcommand("train", "train a FlowPic CNN on a dataset's windows (pictures built here, config stored in the model)");
  s->add_option("-d,--dataset", a->dataset, "dataset file (flowpic dataset ...)")->required();
  s->add_option("-o,--output", a->out, "model file to write")->required();
  s->add_option("--arch", a->arch, "lenet (mini-FlowPic, small R) or flowpic (the paper's CNN, R = 1500)")
      ->capture_default_str()
      ->check(CLI::IsMember({"lenet", "flowpic"}));
  a->pic.add_to(s);
  s->add_option("--epochs", a->epochs, "maximum epochs")->capture_default_str()->check(CLI::Range(1, 100000));
  s->add_option("--batch", a->batch, "mini-batch size")->capture_default_str()->check(CLI::Range(1, 65536));
  s->add_option("--lr", a->lr, "Adam learning rate")->capture_default_str()->check(CLI::PositiveNumber);
  s->add_option("--weight-decay", a->weight_decay, "decoupled weight decay (AdamW)")->capture_default_str()->check(CLI::NonNegativeNumber);
  s->add_option("--seed", a->seed, "seed of weights, shuffling, holdout split and dropout")->capture_default_str();
  s->add_option("--threads", a->threads, "OpenMP threads (0 = all cores). Default 1: a 2-thread team on a shared 2-core box stalls at barriers (see docs/accuracy.md)")->capture_default_str()->check(CLI::Range(0, 1024));
  s->add_option("--holdout", a->holdout, "fraction of the dataset held back for early stopping (0 = none)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.9));
  s->add_option("--holdout-by", a->holdout_by,
                 "window: a stratified random fraction of windows; capture: whole captures (about --holdout of them, "
                 "hashed), and the best epoch is the one with the best balanced accuracy on them (use for corpus datasets)")
      ->capture_default_str()
      ->check(CLI::IsMember({"window", "capture"}));
  a->sel.add_to(s);
  s->add_option("--augment", a->augment,
                "extra copies of every training window (not of held-back ones), each with all its sizes shifted by one "
                "seeded offset in [-size-jitter, +size-jitter] bytes and its times scaled by one factor in "
                "[1/time-jitter, time-jitter] (log-uniform): robustness to header overhead and path speed")
      ->capture_default_str()
      ->check(CLI::Range(0u, 16u));
  s->add_option("--serve-max-windows", a->serve_max_windows,
                 "corpus datasets: windows per flow the model asks the flow table for when it serves (0 = all; the corpus's "
                 "--max-windows is how it was sampled, not kept)")
      ->capture_default_str();
  s->add_option("--size-jitter", a->size_jitter, "with --augment: largest size offset, bytes")->capture_default_str()->check(CLI::Range(0u, 1500u));
  s->add_option("--time-jitter", a->time_jitter, "with --augment: largest time scale factor (>= 1)")->capture_default_str()->check(CLI::Range(1.0, 100.0));
  s->add_option("--patience", a->patience, "epochs without holdout improvement before stopping")->capture_default_str()->check(CLI::Range(1, 100000));
  s->add_option("--classes", a->classes, "train on these dataset classes only, e.g. VoIP,Video,Chat");
  s->add_option("--one-vs-all", a->one_vs_all, "binary model: CLASS against all other classes (\"other\")");
  s->add_option("--exclude-class", a->exclude, "leave this class out of training (repeatable; unknown-application experiment)")
      ->delimiter(',');
  s->add_option("--min-windows", a->min_windows, "drop classes with fewer windows than this")->capture_default_str();
  s->add_option("--name", a->name, "model name (the model id is NAME-<checksum>)")->capture_default_str();
  s->add_option("--max-memory", a->max_memory_gb, "refuse when the pictures would need more than this many GiB")
      ->capture_default_str();
  s->callback([action, a] {
    *action = [a] {
      if (!a->classes.empty() && !a->one_vs_all.empty()) throw UsageError("--classes and --one-vs-all exclude each other");
      Arch arch;
      if (!arch_from_name(a->arch, arch)) throw UsageError("--arch: unknown architecture '" + a->arch + "'");
      const auto t0 = std::chrono::steady_clock::now();
      const WindowDataset ds = load_dataset(a->dataset);
      PictureConfig pic = a->pic.make(ds.window);
      // A corpus caps windows per flow when it samples (dataset corpus --max-windows); that is a
      // sampling choice, not how a served model should cut flows: it serves every window unless
      // --serve-max-windows says otherwise (1 = early verdict only).
      if (ds.origin.value("kind", "") == "corpus") pic.window.max_windows = a->serve_max_windows;

      // Dataset class -> model class (-1 = not used).
      for (const auto& x : a->exclude)
        if (ds.class_index(x) < 0) throw UsageError("--exclude-class: the dataset has no class '" + x + "'");
      const std::set<std::string> excluded(a->exclude.begin(), a->exclude.end());
      const WindowSelection selection = a->sel.make();
      std::vector<uint32_t> selected;
      try {
        selected = select_windows(ds, selection);
      } catch (const std::invalid_argument& e) {
        throw UsageError(e.what());
      }
      // Windows per class among the selected ones: a class the selection leaves empty (e.g. a
      // class only the left-out source has) is not made an output the model never learns.
      std::vector<uint64_t> counts(ds.classes.size(), 0);
      for (uint32_t i : selected) ++counts[ds.windows[i].label];
      std::vector<std::string> classes;
      std::vector<int> to_model(ds.classes.size(), -1);
      if (!a->one_vs_all.empty()) {
        const int pos = ds.class_index(a->one_vs_all);
        if (pos < 0) throw UsageError("--one-vs-all: the dataset has no class '" + a->one_vs_all + "'");
        classes = {a->one_vs_all, "other"};
        for (size_t c = 0; c < ds.classes.size(); ++c)
          if (!excluded.count(ds.classes[c])) to_model[c] = static_cast<int>(c) == pos ? 0 : 1;
      } else {
        std::vector<std::string> wanted = a->classes.empty() ? ds.classes : split_list(a->classes);
        for (const auto& w : wanted) {
          const int c = ds.class_index(w);
          if (c < 0) throw UsageError("--classes: the dataset has no class '" + w + "'");
          if (excluded.count(w)) continue;
          if (counts[c] < std::max<uint64_t>(1, a->min_windows)) {
            spdlog::info("class {} dropped: {} selected windows < --min-windows {}", w, counts[c], a->min_windows);
            continue;
          }
          to_model[c] = static_cast<int>(classes.size());
          classes.push_back(w);
        }
      }
      if (classes.size() < 2) throw UsageError("a model needs at least 2 classes; " + std::to_string(classes.size()) + " left");

      std::vector<uint32_t> which;
      for (uint32_t i : selected)
        if (to_model[ds.windows[i].label] >= 0) which.push_back(i);
      if (which.empty()) throw UsageError("no window left to train on after the class and source selection");
      const size_t floats = picture_floats(pic);
      const double gib = static_cast<double>(which.size()) * (1.0 + a->augment) * static_cast<double>(floats) * 4 / (1u << 30);
      if (gib > a->max_memory_gb)
        throw std::runtime_error("pictures of " + std::to_string(which.size()) + " windows at " + std::to_string(pic.resolution) +
                                 "x" + std::to_string(pic.resolution) + " need " + std::to_string(gib) +
                                 " GiB (> --max-memory); use a smaller --resolution or fewer windows");

      // Pictures, built with the same code the appliance runs.
      Dataset data;
      data.R = static_cast<int>(pic.resolution);
      data.channels = static_cast<int>(pic.channels);
      data.pictures.resize(which.size() * floats);
      data.labels.resize(which.size());
      {
        constexpr size_t kChunk = 1024;
        std::vector<WindowRef> refs;
        Progress bar("building FlowPics", which.size(), " windows");
        if (!progress_enabled()) Progress::set_enabled(false);
        for (size_t start = 0; start < which.size(); start += kChunk) {
          const size_t n = std::min(kChunk, which.size() - start);
          refs.clear();
          for (size_t i = 0; i < n; ++i) {
            const auto& w = ds.windows[which[start + i]];
            refs.push_back(WindowRef{&w.info, ds.records_of(w), w.info.n_records});
            data.labels[start + i] = to_model[w.label];
          }
          build_batch(pic, refs.data(), n, data.pictures.data() + start * floats);
          bar.update(start + n);
        }
        bar.finish();
        Progress::set_enabled(true);
      }
      if (a->holdout_by == "capture" && a->holdout > 0) {
        const uint32_t folds = std::max<uint32_t>(2, static_cast<uint32_t>(std::lround(1.0 / a->holdout)));
        data.holdout.resize(which.size());
        size_t held = 0;
        for (size_t i = 0; i < which.size(); ++i)
          held += data.holdout[i] = capture_fold(ds.sources[ds.windows[which[i]].source], folds, 0x5eedull) == 0;
        spdlog::info("holding back {} windows of whole captures (1 in {} captures) for early stopping", held, folds);
        if (held == 0 || held == which.size()) throw UsageError("--holdout-by capture left nothing on one side: too few captures");
      }
      if (a->augment && a->holdout > 0 && data.holdout.empty())
        throw UsageError("--augment needs --holdout-by capture (or --holdout 0): copies of a window must not be held back");
      if (a->augment) {
        // Augmented copies of the training windows, appended after the originals (never held back).
        std::mt19937_64 rng(a->seed * 0x2545f4914f6cdd1dull + 11);
        std::uniform_int_distribution<int> dsize(-static_cast<int>(a->size_jitter), static_cast<int>(a->size_jitter));
        std::uniform_real_distribution<double> dtime(-std::log(a->time_jitter), std::log(a->time_jitter));
        const size_t originals = which.size();
        std::vector<PacketRecord> recs;
        for (uint32_t copy = 0; copy < a->augment; ++copy) {
          for (size_t i = 0; i < originals; ++i) {
            if (!data.holdout.empty() && data.holdout[i]) continue;
            const auto& w = ds.windows[which[i]];
            const PacketRecord* src = ds.records_of(w);
            const int shift = dsize(rng);
            const double scale = std::exp(dtime(rng));
            recs.assign(src, src + w.info.n_records);
            for (auto& r : recs) {
              r.size = static_cast<uint16_t>(std::clamp(static_cast<int>(r.size) + shift, 20, int{PacketRecord::kMaxSize}));
              r.t_us = static_cast<uint32_t>(std::min(4.0e9, std::round(r.t_us * scale)));
            }
            WindowInfo info = w.info;
            info.end_ns = info.start_ns + static_cast<uint64_t>((info.end_ns - info.start_ns) * scale);
            info.last_ns = info.first_ns + static_cast<uint64_t>((info.last_ns - info.first_ns) * scale);
            const size_t at = data.pictures.size();
            data.pictures.resize(at + floats);
            build_flowpic(pic, info, recs.data(), static_cast<uint32_t>(recs.size()), data.pictures.data() + at);
            data.labels.push_back(data.labels[i]);
            if (!data.holdout.empty()) data.holdout.push_back(0);
          }
        }
        spdlog::info("augmented: {} pictures ({} originals + {} copies x {} training windows)", data.size(), originals,
                     a->augment, (data.size() - originals) / a->augment);
      }
      std::vector<uint64_t> per_class(classes.size(), 0);
      for (int l : data.labels) ++per_class[l];
      std::string summary;
      for (size_t c = 0; c < classes.size(); ++c) summary += fmt::format(" {}={}", classes[c], per_class[c]);
      spdlog::info("{} windows, {} classes:{}", data.size(), classes.size(), summary);

      ModelInfo info;
      info.arch = arch;
      info.picture = pic;
      info.classes = classes;
      info.name = a->name;
      auto model = Model::create(info, a->seed);
      TrainOptions opt;
      opt.epochs = a->epochs;
      opt.batch = a->batch;
      opt.lr = a->lr;
      opt.weight_decay = a->weight_decay;
      opt.seed = a->seed;
      opt.threads = a->threads;
      opt.patience = a->patience;
      opt.holdout = a->holdout;
      const char* score_name = data.holdout.empty() ? "accuracy" : "balanced accuracy";
      const TrainReport rep = train(model, data, opt, [score_name](int epoch, int epochs, float loss, float acc) {
        spdlog::info("epoch {}/{}: loss {:.4f}, holdout {} {:.4f}", epoch, epochs, loss, score_name, acc);
      });
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

      nlohmann::json record;
      record["dataset"] = {{"file", std::filesystem::path(a->dataset).filename().string()},
                           {"path", a->dataset},
                           {"origin", ds.origin},
                           {"sources", ds.sources.size() <= 64 ? nlohmann::json(ds.sources) : nlohmann::json(ds.sources.size())},
                           {"window", window_spec_string(ds.window)},
                           {"windows", ds.windows.size()}};
      record["split"] = ds.origin.value("split", std::string("all"));
      record["classes_used"] = {{"one_vs_all", a->one_vs_all}, {"excluded", a->exclude}, {"min_windows", a->min_windows},
                                {"per_class", per_class}};
      record["epochs"] = a->epochs;
      record["epochs_run"] = rep.epochs_run;
      record["best_epoch"] = rep.best_epoch;
      record["holdout"] = a->holdout;
      record["holdout_by"] = a->holdout_by;
      record["holdout_score"] = data.holdout.empty() ? "accuracy" : "balanced accuracy";  // what holdout_accuracy measures
      record["augment"] = {{"copies", a->augment}, {"size_jitter", a->size_jitter}, {"time_jitter", a->time_jitter}};
      record["selection"] = {{"sources", a->sel.sources}, {"exclude_sources", a->sel.exclude_sources},
                             {"captures", a->sel.captures}, {"exclude_captures", a->sel.exclude_captures}, {"fold", a->sel.fold},
                             {"side", a->sel.side}, {"cap", a->sel.cap}, {"cap_seed", a->sel.cap_seed}};
      record["holdout_accuracy"] = std::isnan(rep.best_holdout_acc) ? nlohmann::json(nullptr) : nlohmann::json(rep.best_holdout_acc);
      record["train_size"] = rep.train_size;
      record["holdout_size"] = rep.holdout_size;
      record["train_loss"] = rep.train_loss;
      record["holdout_accuracy_per_epoch"] = rep.holdout_acc;
      record["optimizer"] = {{"name", "adam"}, {"lr", a->lr}, {"batch", a->batch}, {"weight_decay", a->weight_decay},
                             {"patience", a->patience}};
      record["seed"] = a->seed;
      record["threads"] = a->threads;
      record["command"] = command_line();
      record["seconds"] = seconds;
      record["train_seconds"] = rep.seconds;
      record["date"] = utc_now();
      // Calibration fitted on the held-back captures (never on a test): the temperature with the
      // least negative log-likelihood there, and the confidence threshold that keeps 90 % of them.
      if (!data.holdout.empty()) {
        Dataset hold;
        hold.R = data.R;
        hold.channels = data.channels;
        for (size_t i = 0; i < data.size(); ++i)
          if (data.holdout[i]) {
            hold.pictures.insert(hold.pictures.end(), data.picture(i), data.picture(i) + floats);
            hold.labels.push_back(data.labels[i]);
          }
        std::vector<float> probs;
        predict(*model, hold, 256, a->threads > 0 ? a->threads : 1, &probs);
        const int k = static_cast<int>(classes.size());
        const double t = fit_temperature(probs, hold.labels, k);
        apply_temperature(probs.data(), hold.size(), k, t);
        std::vector<float> conf(hold.size());
        for (size_t i = 0; i < hold.size(); ++i) argmax(probs.data() + i * k, k, &conf[i]);
        std::vector<float> sorted = conf;
        std::sort(sorted.begin(), sorted.end(), std::greater<float>());
        const size_t keep = static_cast<size_t>(std::ceil(0.9 * static_cast<double>(sorted.size())));
        const double thr90 = sorted.empty() ? 0.0 : sorted[std::max<size_t>(keep, 1) - 1];
        record["calibration"] = {{"fitted_on", "held-back captures"}, {"windows", hold.size()}, {"temperature", t},
                                 {"threshold_coverage_0.9", thr90}};
        model->mutable_info().temperature = t;  // every inference path applies it from now on
        spdlog::info("calibration on the held-back captures: temperature {:.3f}, 90 % coverage at confidence >= {:.4f}", t, thr90);
      } else {
        spdlog::warn("no calibration: it is fitted on held-back captures (--holdout-by capture with --holdout > 0)");
      }
      model->mutable_info().training = record;
      model->save(a->out);
      spdlog::info("best epoch {} of {}: holdout {} {:.4f}; {:.1f} s; wrote {} ({})", rep.best_epoch, rep.epochs_run, score_name,
                   rep.best_holdout_acc, seconds, a->out, model->id());
      return 0;
    };
  });
}

}  // namespace flowpic::cli
