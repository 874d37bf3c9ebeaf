// flowpic train --dataset FILE -o MODEL
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "infer/model.hpp"
#include "infer/train.hpp"
#include "picbuilder/batch.hpp"
#include "tools/cli.hpp"
#include "tools/dataset.hpp"
#include "tools/progress.hpp"

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
      const PictureConfig pic = a->pic.make(ds.window);

      // Dataset class -> model class (-1 = not used).
      for (const auto& x : a->exclude)
        if (ds.class_index(x) < 0) throw UsageError("--exclude-class: the dataset has no class '" + x + "'");
      const std::set<std::string> excluded(a->exclude.begin(), a->exclude.end());
      const auto counts = ds.class_counts();
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
          if (counts[c] < a->min_windows) {
            spdlog::info("class {} dropped: {} windows < --min-windows {}", w, counts[c], a->min_windows);
            continue;
          }
          to_model[c] = static_cast<int>(classes.size());
          classes.push_back(w);
        }
      }
      if (classes.size() < 2) throw UsageError("a model needs at least 2 classes; " + std::to_string(classes.size()) + " left");

      std::vector<uint32_t> which;
      for (uint32_t i = 0; i < ds.windows.size(); ++i)
        if (to_model[ds.windows[i].label] >= 0) which.push_back(i);
      const size_t floats = picture_floats(pic);
      const double gib = static_cast<double>(which.size()) * static_cast<double>(floats) * 4 / (1u << 30);
      if (gib > a->max_memory_gb)
        throw std::runtime_error("pictures of " + std::to_string(which.size()) + " windows at " + std::to_string(pic.resolution) +
                                 "x" + std::to_string(pic.resolution) + " need " + std::to_string(gib) +
                                 " GiB (> --max-memory); use a smaller --resolution or fewer windows");

      // Pictures, built with the same code the appliance runs.
      Dataset data;
      data.R = static_cast<int>(pic.resolution);
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
      const TrainReport rep = train(model, data, opt, [](int epoch, int epochs, float loss, float acc) {
        spdlog::info("epoch {}/{}: loss {:.4f}, holdout accuracy {:.4f}", epoch, epochs, loss, acc);
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
      model->mutable_info().training = record;
      model->save(a->out);
      spdlog::info("best epoch {} of {}: holdout accuracy {:.4f}; {:.1f} s; wrote {} ({})", rep.best_epoch, rep.epochs_run,
                   rep.best_holdout_acc, seconds, a->out, model->id());
      return 0;
    };
  });
}

}  // namespace flowpic::cli
