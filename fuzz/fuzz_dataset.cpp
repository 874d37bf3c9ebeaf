// The dataset file loader (.fpd, format 1 and 2).
#include <exception>

#include "fuzz/fuzz_target.hpp"
#include "tools/dataset.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace flowpic;
  fuzz::MemFile f(data, size);
  if (!f.ok()) return 0;
  try {
    const WindowDataset ds = load_dataset(f.path());
    // Every window's records must lie inside the record array it claims.
    for (const auto& w : ds.windows)
      if (w.first_record + w.info.n_records > ds.records.size()) __builtin_trap();
  } catch (const std::exception&) {
  }
  return 0;
}
