#include "infer/train.hpp"

#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>

#include "infer/verdict.hpp"

namespace flowpic {
namespace {

void check_dataset(const Dataset& d, int R, int channels, int classes) {
  if (d.R != R)
    throw std::invalid_argument("dataset pictures are " + std::to_string(d.R) + "x" + std::to_string(d.R) +
                                ", the model takes " + std::to_string(R) + "x" + std::to_string(R));
  if (d.channels != channels)
    throw std::invalid_argument("dataset pictures have " + std::to_string(d.channels) + " channel(s), the model takes " +
                                std::to_string(channels));
  if (d.pictures.size() != d.size() * d.picture_floats())
    throw std::invalid_argument("dataset has " + std::to_string(d.pictures.size()) + " floats for " +
                                std::to_string(d.size()) + " pictures of " + std::to_string(R) + "x" +
                                std::to_string(R));
  for (size_t i = 0; i < d.size(); ++i)
    if (d.labels[i] < 0 || d.labels[i] >= classes)
      throw std::invalid_argument("dataset label " + std::to_string(d.labels[i]) + " at " + std::to_string(i) +
                                  " is not a class of the model (0.." + std::to_string(classes - 1) + ")");
}

// Fisher-Yates with explicit draws: the same order on every standard library.
void shuffle(std::vector<size_t>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng() % i]);
}

}  // namespace

float accuracy(const std::vector<int>& predicted, const std::vector<int>& labels) {
  if (labels.empty()) return std::numeric_limits<float>::quiet_NaN();
  size_t ok = 0;
  for (size_t i = 0; i < labels.size() && i < predicted.size(); ++i) ok += predicted[i] == labels[i];
  return static_cast<float>(ok) / static_cast<float>(labels.size());
}

float balanced_accuracy(const std::vector<int>& predicted, const std::vector<int>& labels, int classes) {
  std::vector<size_t> ok(static_cast<size_t>(classes), 0), n(static_cast<size_t>(classes), 0);
  for (size_t i = 0; i < labels.size() && i < predicted.size(); ++i) {
    if (labels[i] < 0 || labels[i] >= classes) continue;
    ++n[labels[i]];
    ok[labels[i]] += predicted[i] == labels[i];
  }
  double sum = 0;
  int present = 0;
  for (int c = 0; c < classes; ++c)
    if (n[c]) {
      sum += static_cast<double>(ok[c]) / static_cast<double>(n[c]);
      ++present;
    }
  return present ? static_cast<float>(sum / present) : std::numeric_limits<float>::quiet_NaN();
}

std::vector<int> predict(const Model& model, const Dataset& data, int batch, int threads, std::vector<float>* probs) {
  check_dataset(data, model.resolution(), model.channels(), model.num_classes());
  const int C = model.num_classes();
  batch = std::max(1, batch);
  // Network wants shared ownership; the caller keeps `model` alive for this call.
  std::shared_ptr<const Model> view(std::shared_ptr<const Model>(), &model);
  Network net(view, batch, threads);
  std::vector<int> out(data.size());
  std::vector<float> local(static_cast<size_t>(batch) * C);
  if (probs) probs->assign(data.size() * C, 0.f);
  for (size_t i = 0; i < data.size(); i += batch) {
    const int n = static_cast<int>(std::min<size_t>(batch, data.size() - i));
    net.classify(data.picture(i), n, local.data());
    for (int k = 0; k < n; ++k) out[i + k] = argmax(local.data() + static_cast<size_t>(k) * C, C);
    if (probs) std::memcpy(probs->data() + i * C, local.data(), static_cast<size_t>(n) * C * sizeof(float));
  }
  if (net.errors() != 0) throw std::runtime_error("inference failed inside oneDNN");
  return out;
}

TrainReport train(std::shared_ptr<Model> model, const Dataset& data, const TrainOptions& opt,
                  const TrainProgress& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  if (!model) throw std::invalid_argument("train: no model");
  const int R = model->resolution(), C = model->num_classes();
  check_dataset(data, R, model->channels(), C);
  if (data.size() == 0) throw std::invalid_argument("train: empty dataset");
  if (opt.epochs < 1 || opt.batch < 1) throw std::invalid_argument("train: epochs and batch must be >= 1");
  if (!(opt.holdout >= 0.f && opt.holdout < 1.f)) throw std::invalid_argument("train: holdout must be in [0, 1)");

  // Stratified split: round(holdout * n_c) pictures of each class c are held back.
  std::mt19937_64 rng(opt.seed * 0x9e3779b97f4a7c15ull + 1);
  std::vector<std::vector<size_t>> by_class(C);
  for (size_t i = 0; i < data.size(); ++i) by_class[data.labels[i]].push_back(i);
  std::vector<size_t> train_idx, hold_idx;
  const bool explicit_holdout = !data.holdout.empty();
  if (explicit_holdout && data.holdout.size() != data.size())
    throw std::invalid_argument("train: holdout mask has " + std::to_string(data.holdout.size()) + " entries for " +
                                std::to_string(data.size()) + " pictures");
  if (explicit_holdout) {
    for (auto& idx : by_class) shuffle(idx, rng);  // same draws as the stratified split
    for (size_t i = 0; i < data.size(); ++i) (data.holdout[i] ? hold_idx : train_idx).push_back(i);
  } else
  for (auto& idx : by_class) {
    shuffle(idx, rng);
    const size_t h = static_cast<size_t>(std::lround(opt.holdout * static_cast<double>(idx.size())));
    hold_idx.insert(hold_idx.end(), idx.begin(), idx.begin() + h);
    train_idx.insert(train_idx.end(), idx.begin() + h, idx.end());
  }
  if (train_idx.empty()) throw std::invalid_argument("train: nothing left to train on after the holdout");
  Dataset hold;
  hold.R = R;
  hold.channels = data.channels;
  for (size_t i : hold_idx) {
    hold.pictures.insert(hold.pictures.end(), data.picture(i), data.picture(i) + data.picture_floats());
    hold.labels.push_back(data.labels[i]);
  }

  TrainReport rep;
  rep.train_size = train_idx.size();
  rep.holdout_size = hold_idx.size();
  rep.best_holdout_acc = std::numeric_limits<float>::quiet_NaN();
  Trainer trainer(model, opt, opt.batch);
  const size_t pic = data.picture_floats();
  std::vector<float> xb(static_cast<size_t>(opt.batch) * pic);
  std::vector<int> yb(opt.batch);
  std::vector<std::vector<float>> best;
  const int threads = opt.threads > 0 ? opt.threads : std::max(1, omp_get_num_procs());

  for (int epoch = 1; epoch <= opt.epochs; ++epoch) {
    shuffle(train_idx, rng);
    double loss_sum = 0;
    for (size_t i = 0; i < train_idx.size(); i += opt.batch) {
      const int n = static_cast<int>(std::min<size_t>(opt.batch, train_idx.size() - i));
      for (int k = 0; k < n; ++k) {
        std::memcpy(xb.data() + k * pic, data.picture(train_idx[i + k]), pic * sizeof(float));
        yb[k] = data.labels[train_idx[i + k]];
      }
      loss_sum += static_cast<double>(trainer.step(xb.data(), yb.data(), n)) * n;
    }
    const float loss = static_cast<float>(loss_sum / static_cast<double>(train_idx.size()));
    if (!std::isfinite(loss)) throw std::runtime_error("train: loss diverged (" + std::to_string(loss) + ") at epoch " + std::to_string(epoch));
    rep.train_loss.push_back(loss);
    rep.epochs_run = epoch;
    float acc = std::numeric_limits<float>::quiet_NaN();
    if (!hold.labels.empty()) {
      const auto pred = predict(*model, hold, 256, threads);
      acc = explicit_holdout ? balanced_accuracy(pred, hold.labels, C) : accuracy(pred, hold.labels);
      rep.holdout_acc.push_back(acc);
      if (best.empty() || acc > rep.best_holdout_acc) {
        rep.best_holdout_acc = acc;
        rep.best_epoch = epoch;
        best.clear();
        for (const Tensor& t : model->tensors()) best.push_back(t.data);
      }
    } else {
      rep.best_epoch = epoch;
    }
    if (progress) progress(epoch, opt.epochs, loss, acc);
    if (!hold.labels.empty() && opt.patience > 0 && epoch - rep.best_epoch >= opt.patience) break;
  }
  if (!best.empty()) {  // copy into the existing storage: the model's tensors keep their buffers
    auto& T = model->mutable_tensors();
    for (size_t i = 0; i < T.size(); ++i) std::copy(best[i].begin(), best[i].end(), T[i].data.begin());
  }
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

}  // namespace flowpic
