// A trained FlowPic classifier: architecture, picture config, class names, weights and
// training record. Immutable once loaded, shared (shared_ptr<const Model>) by every
// inference thread; a model swap publishes a new one.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "picbuilder/flowpic.hpp"

namespace flowpic {

enum class Arch : uint8_t {
  kLeNet,    // mini-FlowPic, 32x32 (and other small R)
  kFlowPic,  // the paper's CNN for 1500x1500
};
const char* arch_name(Arch a) noexcept;
bool arch_from_name(const std::string& s, Arch& out) noexcept;

// Thrown by load/validate with a message fit for an operator ("model X: truncated at byte N").
struct ModelError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One tensor of parameters, in the layout the network's layers expect (oihw for
// convolution weights, oi for inner products, o for biases).
struct Tensor {
  std::string name;            // "conv1.weight", "fc3.bias", ...
  std::vector<int64_t> dims;
  std::vector<float> data;
};

struct ModelInfo {
  Arch arch = Arch::kLeNet;
  PictureConfig picture;
  std::vector<std::string> classes;
  nlohmann::json training = nlohmann::json::object();  // data, split, epochs, seed, accuracy, command
  std::string name = "flowpic";
  // Temperature scaling of the output (softmax(logits / T)), fitted on held-back captures by
  // `flowpic train --holdout-by capture`; it changes confidences, never the class. Every
  // inference path (Network) applies it. 1 = none (files without the field).
  double temperature = 1.0;
};

class Model {
 public:
  static constexpr uint32_t kFormatVersion = 1;

  // Fresh model with initialised weights (He-uniform, seeded).
  static std::shared_ptr<Model> create(const ModelInfo& info, uint64_t seed);
  // Reads and fully validates a model file. Throws ModelError.
  static std::shared_ptr<const Model> load(const std::string& path);
  static std::shared_ptr<const Model> from_bytes(const std::string& bytes, const std::string& what);
  void save(const std::string& path) const;      // atomic (write temp, rename); throws ModelError
  std::string to_bytes() const;

  const ModelInfo& info() const noexcept { return info_; }
  ModelInfo& mutable_info() noexcept { return info_; }
  const std::vector<Tensor>& tensors() const noexcept { return tensors_; }
  std::vector<Tensor>& mutable_tensors() noexcept { return tensors_; }
  // Content id: "<name>-<8 hex of the checksum>", fixed when saved/loaded (also updated by
  // to_bytes()/save(), which is why they are mutable; "<name>-unsaved" for a fresh model).
  const std::string& id() const noexcept { return id_; }
  uint32_t checksum() const noexcept { return checksum_; }
  int num_classes() const noexcept { return static_cast<int>(info_.classes.size()); }
  int resolution() const noexcept { return static_cast<int>(info_.picture.resolution); }
  int channels() const noexcept { return static_cast<int>(info_.picture.channels); }  // 1, or 2 (one per direction)
  // Floats of one input picture: channels * R * R.
  std::size_t picture_floats() const noexcept {
    return static_cast<std::size_t>(info_.picture.channels) * info_.picture.resolution * info_.picture.resolution;
  }

 private:
  ModelInfo info_;
  std::vector<Tensor> tensors_;
  mutable std::string id_;
  mutable uint32_t checksum_ = 0;
};

// Shapes of the parameter tensors an architecture needs for R x R input and C classes
// (data left empty). Order = file order = Trainer gradient order:
//   conv1.weight [o,channels,k,k], conv1.bias, conv2.weight [o,i,k,k], conv2.bias,
//   fc1.weight [o, C2*P2*P2] (input flattened in c,h,w order), fc1.bias, ..., fcN.weight [classes, i], fcN.bias.
// Throws ModelError when R is too small for the arch or classes < 2.
std::vector<Tensor> parameter_shapes(Arch arch, int resolution, int classes, int channels = 1);

// Layer geometry of an arch at resolution R (shared by the model file, Network and Trainer).
struct ConvGeometry {
  int64_t channels, kernel, stride, pad_l, pad_r;
};
struct ArchGeometry {
  ConvGeometry conv1, conv2;          // conv1: 1 input channel; pooling is 2x2 stride 2 after each conv
  std::vector<int64_t> fc_hidden;     // hidden inner-product widths (ReLU after each)
  float dropout_conv = 0, dropout_fc = 0;  // training only: after conv2 ReLU, after the last hidden FC ReLU
  int64_t input = 0, c1 = 0, p1 = 0, c2 = 0, p2 = 0;  // spatial sizes: input, conv1 out, pool1 out, ...
  int64_t flat = 0;                   // conv2.channels * p2 * p2
};
ArchGeometry arch_geometry(Arch arch, int resolution);  // throws ModelError when R is too small

}  // namespace flowpic
