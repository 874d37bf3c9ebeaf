// flowpic train --dataset FILE -o MODEL
#include "tools/cli.hpp"

namespace flowpic::cli {

// Filled in when infer/train.hpp (train()) lands.
void add_train(CLI::App& app, Action* action) {
  auto* s = app.add_subcommand("train", "train a model from a dataset (not built yet: waits for infer's train())");
  s->callback([action] { *action = [] { throw std::runtime_error("train is not available in this build yet"); return 1; }; });
}

}  // namespace flowpic::cli
