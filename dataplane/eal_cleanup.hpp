// Leaving DPDK: rte_eal_cleanup, then this process's runtime directory.
#pragma once

#include <rte_eal.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace flowpic {

// rte_eal_cleanup(), then removes the runtime directory of this process's --file-prefix
// (/var/run/dpdk/PREFIX as root, $XDG_RUNTIME_DIR/dpdk/PREFIX otherwise): DPDK 22.11 leaves it
// behind, and a test suite's unique prefixes piled up gigabytes of tmpfs (issue 17). Only a
// primary process removes it (secondaries share their primary's); --in-memory creates none.
inline void eal_cleanup_and_remove_runtime_dir() {
  const std::string dir = rte_eal_get_runtime_dir();
  const bool primary = rte_eal_process_type() == RTE_PROC_PRIMARY;
  rte_eal_cleanup();
  if (!primary || dir.empty() || dir.find("/dpdk/") == std::string::npos) return;
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace flowpic
