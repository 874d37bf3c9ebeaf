// The libFuzzer entry point every fuzz target defines, and a way to hand bytes to loaders that
// only read files (libpcap, the dataset loader): an anonymous in-memory file.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace flowpic::fuzz {

// The bytes as a file: memfd, reachable as /proc/self/fd/N while the object lives.
class MemFile {
 public:
  MemFile(const uint8_t* data, size_t size) : fd_(::memfd_create("fuzz", MFD_CLOEXEC)) {
    size_t off = 0;
    while (fd_ >= 0 && off < size) {
      const ssize_t w = ::write(fd_, data + off, size - off);
      if (w <= 0) break;
      off += static_cast<size_t>(w);
    }
    if (fd_ >= 0) ::lseek(fd_, 0, SEEK_SET);
  }
  ~MemFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;
  bool ok() const { return fd_ >= 0; }
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }

 private:
  int fd_;
};

}  // namespace flowpic::fuzz
