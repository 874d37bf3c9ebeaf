// The model file loader (.fpm): header, JSON metadata, tensors, checksum. A file it accepts must
// describe a usable model (its picture config validates, it has classes).
#include <exception>
#include <string>

#include "fuzz/fuzz_target.hpp"
#include "infer/model.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace flowpic;
  try {
    const auto m = Model::from_bytes(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
    if (!m || m->info().classes.empty()) __builtin_trap();
  } catch (const std::exception&) {
  }
  return 0;
}
