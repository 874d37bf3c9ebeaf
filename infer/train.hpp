// Training and batch prediction over in-memory datasets: what `flowpic train` / `flowpic eval`
// call. Same Network code as the appliance for every prediction (no train/serve skew).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "infer/model.hpp"
#include "infer/network.hpp"

namespace flowpic {

// Pictures (channels * R * R floats each, FlowPic layout) and their class indices.
struct Dataset {
  int R = 32;
  int channels = 1;
  std::vector<float> pictures;  // size() * picture_floats()
  std::vector<int> labels;
  // Optional explicit holdout (1 = held back), e.g. whole captures: when not empty it replaces
  // the stratified opt.holdout split, and the held-back score that picks the best epoch is the
  // balanced accuracy (mean recall over the classes held back), so a large class cannot
  // outvote the small ones.
  std::vector<uint8_t> holdout;
  size_t size() const noexcept { return labels.size(); }
  size_t picture_floats() const noexcept { return static_cast<size_t>(channels) * R * R; }
  const float* picture(size_t i) const noexcept { return pictures.data() + i * picture_floats(); }
};

struct TrainReport {
  int best_epoch = 0;              // 1-based epoch whose weights the model now holds
  float best_holdout_acc = 0.f;    // accuracy on the held-back part at that epoch (NaN without holdout)
  int epochs_run = 0;              // < opt.epochs when early stopping fired
  std::vector<float> train_loss;   // mean training loss (with dropout) per epoch
  std::vector<float> holdout_acc;  // per epoch (empty without holdout)
  size_t train_size = 0, holdout_size = 0;
  double seconds = 0;              // wall time of the whole call
};

// Called after every epoch (1-based) with its mean training loss and held-back accuracy.
using TrainProgress = std::function<void(int epoch, int epochs, float loss, float holdout_acc)>;

// Trains `model` in place with Trainer (Adam, dropout, opt.batch, opt.threads).
// opt.holdout of `data` (stratified per class, seeded) is held back; after each epoch the held-back
// accuracy is measured with Network; training stops after opt.patience epochs without improvement
// and the model keeps the weights of the best epoch. opt.holdout = 0: all epochs, last weights.
// Shuffling, the split, dropout and initial weights (Model::create) are all seeded: the same
// inputs, seed and thread count give the same weights. Throws std::invalid_argument on bad data.
TrainReport train(std::shared_ptr<Model> model, const Dataset& data, const TrainOptions& opt,
                  const TrainProgress& progress = {});

// Class index per picture (argmax); when probs is given, fills it with size() * classes values.
std::vector<int> predict(const Model& model, const Dataset& data, int batch = 64, int threads = 1,
                         std::vector<float>* probs = nullptr);

// Fraction of labels predicted right.
float accuracy(const std::vector<int>& predicted, const std::vector<int>& labels);
// Mean recall over the classes present in `labels` (NaN when empty).
float balanced_accuracy(const std::vector<int>& predicted, const std::vector<int>& labels, int classes);

}  // namespace flowpic
