// oneDNN execution of a Model: primitives are built and weights reordered once in the
// constructor; forward() then runs with no allocation. Exceptions only at construction.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "infer/model.hpp"

namespace flowpic {

class Network {
 public:
  // Builds the inference graph for batches of up to max_batch pictures. `threads` is the
  // OpenMP team size used by this network's calls (set explicitly: an unconfigured team on a
  // pinned thread runs ~300x slower). Throws ModelError / dnnl::error on failure.
  Network(std::shared_ptr<const Model> model, int max_batch, int threads = 1);
  ~Network();
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  // Where to write up to max_batch pictures (channels * R * R floats each, FlowPic layout) before forward().
  float* input() noexcept;
  // Runs the first n pictures of input(); writes n * classes probabilities (softmax).
  // n > max_batch is a caller error: only max_batch pictures are run and errors() counts it.
  // Allocates nothing on our side (prebuilt C argument arrays, user scratchpad); sets this
  // thread's OpenMP team size to `threads` on every call.
  void forward(int n, float* probs) noexcept;
  // Convenience: copies n pictures into input() and runs.
  void classify(const float* pictures, int n, float* probs) noexcept;

  const Model& model() const noexcept;
  const std::shared_ptr<const Model>& model_ptr() const noexcept;
  int max_batch() const noexcept;
  // Runs a few reference pictures (empty, one lit pixel per channel, a sparse random one) and
  // returns "" when every output is a finite probability distribution, else what is wrong
  // (e.g. a model whose weights overflow gives NaN: every window would become class 0).
  std::string probe_outputs() noexcept;

  // Batches whose first convolution ran from the pictures' lit pixels (sparse scatter), and
  // batches that ran oneDNN's dense kernel (other archs, or pictures with more than 128 lit
  // pixels on average). Same outputs either way, to float rounding (tests: tests/infer).
  uint64_t sparse_batches() const noexcept;
  bool sparse_capable() const noexcept;  // the arch and oneDNN's layouts allow the sparse first layer
  uint64_t dense_batches() const noexcept;
  // Calls that failed inside oneDNN (probs zeroed) or asked for more than max_batch pictures.
  uint64_t errors() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct TrainOptions {
  int epochs = 30;
  int batch = 64;
  float lr = 1e-3f;          // Adam
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  float weight_decay = 0.f;  // decoupled (AdamW) decay of weight tensors, biases untouched
  uint64_t seed = 1;
  // OpenMP team size; 0 = all cores. On a shared, oversubscribed machine use 1: a team whose
  // threads get descheduled waits at every barrier (lenet, 12k pictures/epoch, 2 cores at load ~9:
  // 99 s/epoch with 2 threads, 4.7 s with 1).
  int threads = 0;
  int patience = 5;          // early stopping on the held-back part of train (<= 0: off)
  float holdout = 0.1f;      // fraction of train held back for early stopping
};

// Trains in place: forward + backward (oneDNN primitives, built once) with dropout,
// softmax cross-entropy and Adam. Keeps the weights of the best held-back epoch.
class Trainer {
 public:
  Trainer(std::shared_ptr<Model> model, const TrainOptions& opt, int batch);
  ~Trainer();
  // One optimisation step on a mini-batch (n <= batch). Returns the mean loss.
  float step(const float* pictures, const int* labels, int n);
  // Loss and gradients of every parameter tensor for a batch, dropout off (gradient checks).
  float loss_and_gradients(const float* pictures, const int* labels, int n,
                           std::vector<std::vector<float>>* grads);
  Model& model() noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flowpic
