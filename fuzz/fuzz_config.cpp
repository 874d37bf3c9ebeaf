// flowpicd's YAML config: parse and validate (no DPDK, no model).
#include <exception>
#include <string>

#include "dataplane/config.hpp"
#include "fuzz/fuzz_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace flowpic;
  try {
    (void)parse_config(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
  } catch (const ConfigError&) {
  } catch (const std::exception&) {
    // yaml-cpp's own exceptions must be turned into ConfigError: anything else is a finding
    __builtin_trap();
  }
  return 0;
}
