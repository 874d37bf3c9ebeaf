// Batches of FlowPics built in parallel with Intel TBB, in the layout the CNN reads
// (picture i at out + i * picture_floats(cfg)).
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/window.hpp"
#include "picbuilder/flowpic.hpp"

namespace flowpic {

// One closed window to picture; the pointers must stay valid during build_batch.
struct WindowRef {
  const WindowInfo* info;
  const PacketRecord* recs;
  uint32_t n;
};

// Builds windows[i] into out + i * picture_floats(cfg) for i < n, with tbb::parallel_for over the windows
// (small batches of small pictures run serially: spawning would cost more than building).
// Bit-for-bit equal to calling build_flowpic on each window. No allocation by this code
// (TBB's task scheduler may allocate on first use of a thread).
void build_batch(const PictureConfig& cfg, const WindowRef* windows, std::size_t n, float* out) noexcept;

// An owned, 64-byte aligned buffer of up to `capacity` pictures of one config, allocated
// once; fill it with build_batch (or add()) and hand data() to the network.
class PictureBatch {
 public:
  // Throws std::invalid_argument when cfg.validate() is not empty or capacity is 0,
  // std::bad_alloc when memory is short.
  PictureBatch(const PictureConfig& cfg, std::size_t capacity);
  ~PictureBatch();
  PictureBatch(const PictureBatch&) = delete;
  PictureBatch& operator=(const PictureBatch&) = delete;

  // Builds all of `windows` (n <= capacity() - size()) after the pictures already held; returns
  // how many were built (fewer only when the buffer is full).
  std::size_t add(const WindowRef* windows, std::size_t n) noexcept;
  void clear() noexcept { size_ = 0; }

  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return capacity_; }
  bool full() const noexcept { return size_ == capacity_; }
  std::size_t picture_floats() const noexcept { return pixels_; }
  const PictureConfig& config() const noexcept { return cfg_; }
  float* data() noexcept { return data_; }
  const float* data() const noexcept { return data_; }
  const float* picture(std::size_t i) const noexcept { return data_ + i * pixels_; }

 private:
  PictureConfig cfg_;
  std::size_t capacity_ = 0;
  std::size_t pixels_ = 0;
  std::size_t size_ = 0;
  float* data_ = nullptr;
};

}  // namespace flowpic
