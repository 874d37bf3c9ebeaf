// Model probabilities for dataset windows: pictures built with the model's picture config
// (build_batch), run through Network in batches. Shared by `flowpic eval` and `render`.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "infer/model.hpp"
#include "tools/dataset.hpp"

namespace flowpic {

// Returns which.size() * classes probabilities (row i = window which[i]).
// Throws std::runtime_error if the network reports failed batches.
std::vector<float> predict_windows(const std::shared_ptr<const Model>& model, const WindowDataset& ds,
                                   const std::vector<uint32_t>& which, int batch, int threads, bool progress);

}  // namespace flowpic
