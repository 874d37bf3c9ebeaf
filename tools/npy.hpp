// Strict reader for NumPy .npy files (format versions 1 and 2) holding little-endian
// float64 arrays in C order: what ODE-Flow ships. Anything else is refused with a reason.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace flowpic {

struct NpyError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<double> data;  // C order, prod(shape) values
  int64_t size() const noexcept;
};

// Reads a whole file. Throws NpyError("FILE: <reason>") on anything unexpected:
// bad magic, unsupported version, header not a dict, dtype other than '<f8',
// Fortran order, data shorter or longer than the shape says.
NpyArray read_npy(const std::string& path);
NpyArray parse_npy(const std::string& bytes, const std::string& what);

// Writes a v1 file (tests and tools that hand data to Python).
std::string npy_bytes(const std::vector<int64_t>& shape, const std::vector<double>& data);

}  // namespace flowpic
