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
  // Content id: "<name>-<8 hex of the checksum>", fixed when saved/loaded.
  const std::string& id() const noexcept { return id_; }
  uint32_t checksum() const noexcept { return checksum_; }
  int num_classes() const noexcept { return static_cast<int>(info_.classes.size()); }
  int resolution() const noexcept { return static_cast<int>(info_.picture.resolution); }

 private:
  ModelInfo info_;
  std::vector<Tensor> tensors_;
  std::string id_;
  uint32_t checksum_ = 0;
};

// Shapes of the parameter tensors an architecture needs for R x R input and C classes.
std::vector<Tensor> parameter_shapes(Arch arch, int resolution, int classes);

}  // namespace flowpic
