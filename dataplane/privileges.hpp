// flowpicd's run directory and service user (issue 16): a private directory per instance for
// the control socket, memif sockets and relative outputs, a lock that keeps one flowpicd per
// instance, and the switch of every thread to an unprivileged user once DPDK is set up.
// Every function that can fail throws std::runtime_error with one line that says what to change.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace flowpic {

// The user flowpicd runs as after start-up (YAML user:/group:, --user).
struct ServiceUser {
  std::string user, group;
  uid_t uid = 0;
  gid_t gid = 0;
};

// Looks the names up (getpwnam_r/getgrnam_r). An empty group means the user's primary group.
// Throws with "user: no user 'x' on this system; ..." style messages (`what` is the YAML path
// prefix, e.g. "config c.yaml: ").
ServiceUser lookup_service_user(const std::string& user, const std::string& group, const std::string& what);

// Makes `dir` (0750) and its missing parents (0755), or accepts an existing one only if it is a
// real directory (no symlink), owned by `owner` (or by root while flowpicd runs as root: then it
// is handed to `owner`), and neither group- nor world-writable. With `group` the directory is
// chowned to it. Throws with the reason and the fix.
void prepare_run_dir(const std::string& dir, uid_t owner, std::optional<gid_t> group);

// Takes RUN_DIR/flowpicd.lock (flock, exclusive, non-blocking) and writes the pid into it.
// Returns the open descriptor (held for the life of the process). A lock held by another
// flowpicd throws "instance 'X' is already running (pid N) ...".
int lock_instance(const std::string& dir, const std::string& instance);

// Hands the files flowpicd made directly in `dir` (sockets, lock, outputs) and `dir` itself to
// the service user, so that it can remove its sockets and reopen its outputs after the switch.
void chown_run_dir_entries(const std::string& dir, const ServiceUser& u);

// setgroups({gid}), setresgid(gid), setresuid(uid): glibc applies each to every thread of the
// process (its setxid broadcast), and a uid change away from 0 clears the permitted, effective
// and ambient capabilities. Throws when a call fails.
void switch_user(const ServiceUser& u);

// Uid/Gid/CapPrm/CapEff of every thread of the process, read from /proc/PID/task/*/status.
struct ThreadCreds {
  long tid = 0;
  std::string name;
  uid_t uid[4] = {};  // real, effective, saved, filesystem
  gid_t gid[4] = {};
  uint64_t cap_prm = 0, cap_eff = 0;
};
std::vector<ThreadCreds> thread_creds(pid_t pid = 0);  // 0: this process

// Empty when every thread runs with uid and gid in all four slots and no capability; else the
// first offender ("thread 1234 (lcore-worker-1): CapEff 0000003fffffffff").
std::string creds_problem(const std::vector<ThreadCreds>& threads, uid_t uid, gid_t gid);

}  // namespace flowpic
