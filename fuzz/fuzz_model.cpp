// The model file loader (.fpm): header, JSON metadata, tensors, checksum. A file it accepts must
// describe a usable model (its picture config validates, it has classes). Each input is loaded
// as it is (the checksum path) and with its CRC fixed (crc_fix.hpp: the parser behind it).
#include <exception>
#include <string>

#include "fuzz/crc_fix.hpp"
#include "fuzz/fuzz_target.hpp"
#include "infer/model.hpp"

namespace {

void load(const std::string& bytes) {
  using namespace flowpic;
  try {
    const auto m = Model::from_bytes(bytes, "fuzz");
    if (!m || m->info().classes.empty()) __builtin_trap();
  } catch (const std::exception&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  load(std::string(reinterpret_cast<const char*>(data), size));
  load(flowpic::fuzz::with_fixed_crc(data, size));
  return 0;
}
