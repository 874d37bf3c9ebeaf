#include "picbuilder/batch.hpp"

#include <algorithm>
#include <new>
#include <stdexcept>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

namespace flowpic {

namespace {
// Floats of picture work per TBB task: enough that a task is worth its scheduling cost
// (a 32x32 picture is ~1k floats, so 64 of them per task; a 1500x1500 one is a task alone).
constexpr std::size_t kFloatsPerTask = 64 * 1024;
constexpr std::size_t kAlign = 64;
}  // namespace

void build_batch(const PictureConfig& cfg, const WindowRef* windows, std::size_t n, float* out) noexcept {
  const std::size_t pixels = picture_floats(cfg);
  if (n == 0 || pixels == 0) return;
  const std::size_t grain = std::max<std::size_t>(1, kFloatsPerTask / pixels);
  auto build = [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i)
      build_flowpic(cfg, *windows[i].info, windows[i].recs, windows[i].n, out + i * pixels);
  };
  if (n <= grain) {
    build(0, n);
    return;
  }
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, n, grain),
                    [&](const tbb::blocked_range<std::size_t>& r) { build(r.begin(), r.end()); });
}

PictureBatch::PictureBatch(const PictureConfig& cfg, std::size_t capacity) : cfg_(cfg), capacity_(capacity) {
  const std::string err = cfg.validate();
  if (!err.empty()) throw std::invalid_argument("picture batch: " + err);
  if (capacity == 0) throw std::invalid_argument("picture batch: capacity must be at least 1");
  pixels_ = flowpic::picture_floats(cfg);
  std::size_t bytes = capacity * pixels_ * sizeof(float);
  bytes = (bytes + kAlign - 1) / kAlign * kAlign;
  data_ = static_cast<float*>(::operator new(bytes, std::align_val_t(kAlign)));
}

PictureBatch::~PictureBatch() { ::operator delete(data_, std::align_val_t(kAlign)); }

std::size_t PictureBatch::add(const WindowRef* windows, std::size_t n) noexcept {
  const std::size_t take = std::min(n, capacity_ - size_);
  build_batch(cfg_, windows, take, data_ + size_ * pixels_);
  size_ += take;
  return take;
}

}  // namespace flowpic
