#include "dataplane/privileges.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace flowpic {

namespace {

std::string err_text(int e) { return std::strerror(e); }

std::string parent_of(const std::string& dir) {
  const auto slash = dir.find_last_of('/');
  if (slash == std::string::npos || slash == 0) return "/";
  return dir.substr(0, slash);
}

std::string owner_name(uid_t uid) {
  char buf[4096];
  passwd pw{}, *res = nullptr;
  if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) == 0 && res) return res->pw_name;
  return "uid " + std::to_string(uid);
}

// mkdir -p with `mode` for what it creates (umask ignored), refusing a component that is a
// world-writable directory without the sticky bit.
void make_parents(const std::string& dir) {
  if (dir.empty() || dir == "/") return;
  struct stat st {};
  if (::lstat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) throw std::runtime_error(dir + " exists and is not a directory");
    if ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX))
      throw std::runtime_error(dir + " is world-writable without the sticky bit: anyone could replace the run "
                                     "directory in it; use a private parent (run_dir: or $FLOWPICD_RUN_DIR)");
    return;
  }
  make_parents(parent_of(dir));
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    const int e = errno;
    throw std::runtime_error("cannot create " + dir + ": " + err_text(e) +
                             (e == EACCES || e == EPERM || e == EROFS
                                  ? " (run flowpicd as root, or set $FLOWPICD_RUN_DIR or run_dir: to a directory you own)"
                                  : ""));
  }
  ::chmod(dir.c_str(), 0755);
}

}  // namespace

ServiceUser lookup_service_user(const std::string& user, const std::string& group, const std::string& what) {
  ServiceUser u;
  char buf[16384];
  passwd pw{}, *pres = nullptr;
  errno = 0;
  if (getpwnam_r(user.c_str(), &pw, buf, sizeof buf, &pres) != 0 || !pres)
    throw std::runtime_error(what + "user: no user '" + user + "' on this system; create it (useradd --system "
                             "--no-create-home --shell /usr/sbin/nologin " + user + ") or fix user:/--user");
  u.user = pres->pw_name;
  u.uid = pres->pw_uid;
  u.gid = pres->pw_gid;
  if (u.uid == 0)
    throw std::runtime_error(what + "user: '" + user + "' is root (uid 0): name an unprivileged user, or remove user: "
                             "to keep running as root");
  struct group g {}, *gres = nullptr;
  if (!group.empty()) {
    if (getgrnam_r(group.c_str(), &g, buf, sizeof buf, &gres) != 0 || !gres)
      throw std::runtime_error(what + "group: no group '" + group + "' on this system; create it (groupadd --system " +
                               group + ") or fix group:");
    u.group = gres->gr_name;
    u.gid = gres->gr_gid;
  } else if (getgrgid_r(u.gid, &g, buf, sizeof buf, &gres) == 0 && gres) {
    u.group = gres->gr_name;
  } else {
    u.group = std::to_string(u.gid);
  }
  if (u.gid == 0)
    throw std::runtime_error(what + "group: '" + u.group + "' is gid 0 (root's group): name an unprivileged group");
  return u;
}

void prepare_run_dir(const std::string& dir, uid_t owner, std::optional<gid_t> group) {
  const std::string where = "run directory " + dir + ": ";
  try {
    make_parents(parent_of(dir));
  } catch (const std::exception& e) {
    throw std::runtime_error(where + e.what());
  }
  bool made = false;
  if (::mkdir(dir.c_str(), 0750) == 0) {
    made = true;
  } else if (errno != EEXIST) {
    throw std::runtime_error(where + "cannot create it: " + err_text(errno) +
                             (errno == EACCES ? " (run flowpicd as root, or set $FLOWPICD_RUN_DIR or run_dir: to a "
                                                "directory you own)"
                                              : ""));
  }
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) throw std::runtime_error(where + err_text(errno));
  if (!S_ISDIR(st.st_mode))
    throw std::runtime_error(where + "exists and is not a directory (a symlink or a file): remove it, or set run_dir: "
                                     "or $FLOWPICD_RUN_DIR elsewhere");
  const bool by_root_for_us = st.st_uid == 0 && ::geteuid() == 0;
  if (!made && st.st_uid != owner && !by_root_for_us)
    throw std::runtime_error(where + "owned by " + owner_name(st.st_uid) + ", not by " + owner_name(owner) +
                             ": someone else made it; remove it (rm -r " + dir + ") or set run_dir:/$FLOWPICD_RUN_DIR "
                             "to a private directory");
  if (!made && (st.st_mode & (S_IWGRP | S_IWOTH)))
    throw std::runtime_error(where + "is group- or world-writable (mode " +
                             [&] {
                               char m[8];
                               std::snprintf(m, sizeof m, "%04o", st.st_mode & 07777);
                               return std::string(m);
                             }() +
                             "): others could replace its sockets; chmod 0750 " + dir + " or remove it");
  if (made && ::chmod(dir.c_str(), 0750) != 0) throw std::runtime_error(where + "chmod: " + err_text(errno));
  const gid_t want_gid = group ? *group : st.st_gid;
  if ((st.st_uid != owner || st.st_gid != want_gid) && ::lchown(dir.c_str(), owner, want_gid) != 0)
    throw std::runtime_error(where + "cannot hand it to " + owner_name(owner) + ": " + err_text(errno));
}

int lock_instance(const std::string& dir, const std::string& instance) {
  const std::string path = dir + "/flowpicd.lock";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
  if (fd < 0) throw std::runtime_error("run directory " + dir + ": cannot open " + path + ": " + err_text(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    char buf[32] = {};
    const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    ::close(fd);
    std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "?";
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    if (e == EWOULDBLOCK)
      throw std::runtime_error("instance '" + instance + "' is already running (pid " + pid + " holds " + path +
                               "): stop it first (systemctl stop flowpicd@" + instance +
                               "), or give this one another name with instance: or run_dir:");
    throw std::runtime_error("cannot lock " + path + ": " + err_text(e));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    const int e = errno;
    ::close(fd);
    throw std::runtime_error("cannot write " + path + ": " + err_text(e));
  }
  return fd;
}

void chown_run_dir_entries(const std::string& dir, const ServiceUser& u) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) throw std::runtime_error("run directory " + dir + ": " + err_text(errno));
  const int dfd = ::dirfd(d);
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    struct stat st {};
    if (::fstatat(dfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || S_ISLNK(st.st_mode)) continue;
    if (st.st_uid != 0) continue;  // only what flowpicd made as root
    const gid_t g = st.st_gid == 0 ? u.gid : st.st_gid;  // keep a group given to the socket (allowed_gids)
    if (::fchownat(dfd, name.c_str(), u.uid, g, AT_SYMLINK_NOFOLLOW) != 0) {
      const int err = errno;
      ::closedir(d);
      throw std::runtime_error("run directory " + dir + ": cannot hand " + name + " to " + u.user + ": " + err_text(err));
    }
  }
  ::closedir(d);
}

void switch_user(const ServiceUser& u) {
  const gid_t groups[1] = {u.gid};
  if (::setgroups(1, groups) != 0) throw std::runtime_error("setgroups(" + u.group + "): " + err_text(errno));
  if (::setresgid(u.gid, u.gid, u.gid) != 0) throw std::runtime_error("setresgid(" + u.group + "): " + err_text(errno));
  if (::setresuid(u.uid, u.uid, u.uid) != 0) throw std::runtime_error("setresuid(" + u.user + "): " + err_text(errno));
}

std::vector<ThreadCreds> thread_creds(pid_t pid) {
  const std::string base = pid == 0 ? "/proc/self/task" : "/proc/" + std::to_string(pid) + "/task";
  std::vector<ThreadCreds> out;
  DIR* d = ::opendir(base.c_str());
  if (!d) throw std::runtime_error("cannot read " + base + ": " + err_text(errno));
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream f(base + "/" + e->d_name + "/status");
    if (!f) continue;  // the thread ended meanwhile
    ThreadCreds t;
    t.tid = std::strtol(e->d_name, nullptr, 10);
    bool uid = false, gid = false, eff = false;
    for (std::string line; std::getline(f, line);) {
      std::istringstream ls(line);
      std::string key;
      ls >> key;
      if (key == "Name:") {
        std::getline(ls >> std::ws, t.name);
      } else if (key == "Uid:") {
        for (auto& v : t.uid) ls >> v;
        uid = true;
      } else if (key == "Gid:") {
        for (auto& v : t.gid) ls >> v;
        gid = true;
      } else if (key == "CapPrm:") {
        ls >> std::hex >> t.cap_prm;
      } else if (key == "CapEff:") {
        ls >> std::hex >> t.cap_eff;
        eff = true;
      }
    }
    if (uid && gid && eff) out.push_back(std::move(t));
  }
  ::closedir(d);
  return out;
}

std::string creds_problem(const std::vector<ThreadCreds>& threads, uid_t uid, gid_t gid) {
  if (threads.empty()) return "no thread found in /proc/self/task";
  for (const auto& t : threads) {
    const std::string who = "thread " + std::to_string(t.tid) + " (" + t.name + ")";
    for (int i = 0; i < 4; ++i) {
      if (t.uid[i] != uid) return who + ": Uid " + std::to_string(t.uid[i]) + ", not " + std::to_string(uid);
      if (t.gid[i] != gid) return who + ": Gid " + std::to_string(t.gid[i]) + ", not " + std::to_string(gid);
    }
    if (t.cap_eff != 0 || t.cap_prm != 0) {
      char b[64];
      std::snprintf(b, sizeof b, "CapPrm %016llx CapEff %016llx", static_cast<unsigned long long>(t.cap_prm),
                    static_cast<unsigned long long>(t.cap_eff));
      return who + ": " + b;
    }
  }
  return "";
}

}  // namespace flowpic
