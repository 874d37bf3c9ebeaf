// The dataset file loader (.fpd, format 1 and 2). Each input is loaded as it is (the checksum
// path) and with its CRC fixed (crc_fix.hpp: the parser behind it).
#include <exception>
#include <string>

#include "fuzz/crc_fix.hpp"
#include "fuzz/fuzz_target.hpp"
#include "tools/dataset.hpp"

namespace {

void load(const uint8_t* data, size_t size) {
  using namespace flowpic;
  fuzz::MemFile f(data, size);
  if (!f.ok()) return;
  try {
    const WindowDataset ds = load_dataset(f.path());
    // Every window's records must lie inside the record array it claims.
    for (const auto& w : ds.windows)
      if (w.first_record + w.info.n_records > ds.records.size()) __builtin_trap();
  } catch (const std::exception&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  load(data, size);
  const std::string fixed = flowpic::fuzz::with_fixed_crc(data, size);
  load(reinterpret_cast<const uint8_t*>(fixed.data()), fixed.size());
  return 0;
}
