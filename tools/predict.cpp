#include "tools/predict.hpp"

#include <algorithm>
#include <stdexcept>

#include "infer/network.hpp"
#include "picbuilder/batch.hpp"
#include "tools/progress.hpp"

namespace flowpic {

std::vector<float> predict_windows(const std::shared_ptr<const Model>& model, const WindowDataset& ds,
                                   const std::vector<uint32_t>& which, int batch, int threads, bool progress) {
  const int classes = model->num_classes();
  std::vector<float> probs(which.size() * static_cast<size_t>(classes));
  if (which.empty()) return probs;
  batch = std::max(1, batch);
  Network net(model, batch, threads);
  std::vector<WindowRef> refs(static_cast<size_t>(batch));
  Progress bar("predicting", which.size(), " windows");
  if (!progress) Progress::set_enabled(false);
  for (size_t start = 0; start < which.size(); start += static_cast<size_t>(batch)) {
    const size_t n = std::min(which.size() - start, static_cast<size_t>(batch));
    for (size_t i = 0; i < n; ++i) {
      const DatasetWindow& w = ds.windows[which[start + i]];
      refs[i] = WindowRef{&w.info, ds.records_of(w), w.info.n_records};
    }
    build_batch(model->info().picture, refs.data(), n, net.input());
    net.forward(static_cast<int>(n), probs.data() + start * static_cast<size_t>(classes));
    bar.update(start + n);
  }
  bar.finish();
  Progress::set_enabled(true);
  if (net.errors() > 0) throw std::runtime_error("inference failed on " + std::to_string(net.errors()) + " batches");
  return probs;
}

}  // namespace flowpic
