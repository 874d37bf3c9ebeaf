// flowpic info MODEL|DATASET
#include <cstdio>

#include "common/printable.hpp"
#include "infer/model.hpp"
#include "tools/cli.hpp"
#include "tools/dataset.hpp"

namespace flowpic::cli {

void add_info(CLI::App& app, Action* action) {
  struct Args {
    std::string file;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  auto* s = app.add_subcommand("info", "print a model's metadata or a dataset's summary");
  s->add_option("file", a->file, "model or dataset file")->required();
  s->add_flag("--json", a->json, "machine-readable JSON");
  s->callback([action, a] {
    *action = [a] {
      if (looks_like_dataset(a->file)) {
        const auto h = read_dataset_header(a->file);
        // Validate the whole file too: info on a corrupt dataset must say so.
        const WindowDataset ds = load_dataset(a->file);
        if (a->json) {
          std::printf("%s\n", h.dump(2).c_str());
          return 0;
        }
        std::printf("dataset   %s (format %d)\n", a->file.c_str(), h.value("version", 0));
        std::printf("origin    %s\n", ds.origin.dump().c_str());
        std::printf("window    %s, min %u packets%s, %s\n", window_spec_string(ds.window).c_str(), ds.window.min_packets,
                    ds.window.max_windows ? (", max " + std::to_string(ds.window.max_windows) + " per flow").c_str() : "",
                    ds.window.bidirectional ? "both directions of a connection" : "one direction of a connection");
        std::printf("sources   %zu\n", ds.sources.size());
        std::printf("windows   %zu (%zu packet records)\n", ds.windows.size(), ds.records.size());
        const auto counts = ds.class_counts();
        for (size_t c = 0; c < ds.classes.size(); ++c)
          std::printf("  %-20s %8llu\n", printable(ds.classes[c]).c_str(), static_cast<unsigned long long>(counts[c]));
        return 0;
      }
      const auto m = Model::load(a->file);
      const auto& info = m->info();
      nlohmann::json picture = info.picture;
      if (a->json) {
        nlohmann::ordered_json j;
        j["file"] = a->file;
        j["id"] = m->id();
        j["name"] = info.name;
        j["arch"] = arch_name(info.arch);
        j["classes"] = info.classes;
        j["picture"] = picture;
        j["training"] = info.training;
        size_t params = 0;
        for (const auto& t : m->tensors()) params += t.data.size();
        j["parameters"] = params;
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
      }
      size_t params = 0;
      for (const auto& t : m->tensors()) params += t.data.size();
      std::printf("model     %s\n", a->file.c_str());
      std::printf("id        %s\n", printable(m->id()).c_str());
      std::printf("arch      %s, %zu parameters\n", arch_name(info.arch), params);
      std::string classes;
      for (const auto& c : info.classes) classes += (classes.empty() ? "" : ", ") + printable(c);
      std::printf("classes   %zu: %s\n", info.classes.size(), classes.c_str());
      std::printf("window    %s, min %u packets, %s; %u channel(s)\n", window_spec_string(info.picture.window).c_str(),
                  info.picture.window.min_packets,
                  info.picture.window.bidirectional ? "both directions of a connection" : "one direction of a connection",
                  info.picture.channels);
      std::printf("picture   %s\n", picture.dump().c_str());
      std::printf("training  %s\n", info.training.dump(2).c_str());
      return 0;
    };
  });
}

}  // namespace flowpic::cli
