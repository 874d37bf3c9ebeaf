// Why rte_eal_init failed, in one line that says what to do (issue 14). DPDK 22.11 returns -1
// without setting rte_errno at several steps (the --file-prefix lock among them), so
// rte_strerror(rte_errno) alone printed "Success"; the commonest cause, another DPDK process
// with the same --file-prefix, is recognised by asking the kernel who holds its lock.
#pragma once

#include <fcntl.h>
#include <rte_errno.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace flowpic {

// The --file-prefix EAL uses for these arguments ("rte" when none is given).
inline std::string eal_file_prefix(const std::vector<std::string>& eal) {
  std::string prefix = "rte";
  for (std::size_t i = 0; i < eal.size(); ++i) {
    if (eal[i] == "--file-prefix" && i + 1 < eal.size()) prefix = eal[i + 1];
    else if (eal[i].rfind("--file-prefix=", 0) == 0) prefix = eal[i].substr(14);
  }
  return prefix;
}

// The runtime directory of a prefix as EAL 22.11 makes it (eal_create_runtime_dir): /var/run/dpdk
// as root, else $XDG_RUNTIME_DIR/dpdk or /tmp/dpdk.
inline std::string eal_runtime_dir(const std::string& prefix) {
  std::string base = "/var/run";
  if (::getuid() != 0) {
    const char* xdg = std::getenv("XDG_RUNTIME_DIR");
    base = xdg && *xdg ? xdg : "/tmp";
  }
  return base + "/dpdk/" + prefix;
}

// The pid holding the primary process's lock on RUNTIME_DIR/config (an fcntl lock), 0 if none.
inline pid_t eal_prefix_lock_holder(const std::string& prefix) {
  const std::string path = eal_runtime_dir(prefix) + "/config";
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return 0;
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 0;  // the whole file: any lock on it conflicts
  pid_t holder = 0;
  if (::fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK) holder = fl.l_pid;
  ::close(fd);
  return holder;
}

inline std::string process_name(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/comm");
  std::string name;
  std::getline(f, name);
  return name.empty() ? "?" : name;
}

// The line after "DPDK EAL init failed: ". err: rte_errno after the failure; source: the config.
inline std::string eal_init_failure(const std::vector<std::string>& eal, int err, const std::string& source) {
  bool in_memory = false;
  for (const auto& a : eal) in_memory = in_memory || a == "--in-memory" || a == "--no-shconf";
  const std::string prefix = eal_file_prefix(eal);
  if (!in_memory)
    if (const pid_t holder = eal_prefix_lock_holder(prefix); holder > 0 && holder != ::getpid())
      return "--file-prefix " + prefix + " is in use by another DPDK process (pid " + std::to_string(holder) + ", " +
             process_name(holder) + ", holds " + eal_runtime_dir(prefix) +
             "/config): give this flowpicd its own --file-prefix in eal: of " + source +
             " (each DPDK process running at the same time needs one), or stop that process if it is this instance";
  if (err != 0)
    return std::string(rte_strerror(err)) +
           " (the EAL lines above say which step failed; check eal: in " + source + ")";
  return "EAL gave no error code (the EAL lines above say which step failed); check eal: in " + source;
}

}  // namespace flowpic
