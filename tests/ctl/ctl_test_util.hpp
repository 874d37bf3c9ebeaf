// Helpers for the ctl tests: run the real flowpicctl binary, raw socket clients, temp dirs.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace ctltest {

inline std::string make_temp_dir(const char* tag) {
  std::string tmpl = std::string("/tmp/") + tag + "-XXXXXX";
  char* p = ::mkdtemp(tmpl.data());
  if (!p) std::abort();
  return tmpl;
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct RunResult {
  int code = -1;
  std::string out;
  std::string err;
};

// A started child; wait() collects its exit code and output.
struct Child {
  pid_t pid = -1;
  std::string out_path, err_path, in_path;
  RunResult wait() {
    RunResult r;
    int status = 0;
    ::waitpid(pid, &status, 0);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = slurp(out_path);
    r.err = slurp(err_path);
    std::filesystem::remove(out_path);
    std::filesystem::remove(err_path);
    if (!in_path.empty()) std::filesystem::remove(in_path);
    return r;
  }
};

// Starts `exe args...` with stdout/stderr to temp files, optional cwd, stdin from /dev/null
// or from `input`, and extra environment variables.
inline Child spawn(const std::string& exe, const std::vector<std::string>& args, const std::string& cwd = "",
                   const std::map<std::string, std::string>& env = {}, const std::string& input = "") {
  static int seq = 0;
  Child c;
  const std::string base = "/tmp/ctltest-" + std::to_string(::getpid()) + "-" + std::to_string(seq++);
  c.out_path = base + ".out";
  c.err_path = base + ".err";
  std::string in_path = "/dev/null";
  if (!input.empty()) {
    in_path = base + ".in";
    c.in_path = in_path;
    std::ofstream(in_path) << input;
  }
  std::vector<std::string> argv_s = {exe};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  c.pid = ::fork();
  if (c.pid == 0) {
    const int in = ::open(in_path.c_str(), O_RDONLY);
    const int out = ::open(c.out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err = ::open(c.err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(126);
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    ::execv(exe.c_str(), argv.data());
    ::_exit(127);
  }
  return c;
}

inline RunResult run(const std::string& exe, const std::vector<std::string>& args, const std::string& cwd = "",
                     const std::map<std::string, std::string>& env = {}, const std::string& input = "") {
  return spawn(exe, args, cwd, env, input).wait();
}

// Raw client of a Unix stream socket, for what flowpicctl would never send.
struct RawClient {
  int fd = -1;
  explicit RawClient(const std::string& path) {
    fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  ~RawClient() {
    if (fd >= 0) ::close(fd);
  }
  bool ok() const { return fd >= 0; }
  // Sends everything it can; returns bytes sent (the peer may close early).
  size_t send_all(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      const ssize_t w = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (w <= 0) break;
      off += static_cast<size_t>(w);
    }
    return off;
  }
  // Reads one line (without '\n'); empty string on EOF/timeout. *eof tells which.
  std::string read_line(int timeout_ms, bool* eof = nullptr) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      const size_t nl = buf.find('\n');
      if (nl != std::string::npos) {
        std::string line = buf.substr(0, nl);
        buf.erase(0, nl + 1);
        if (eof) *eof = false;
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
      if (left <= 0) {
        if (eof) *eof = false;
        return "";
      }
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char b[65536];
      const ssize_t r = ::recv(fd, b, sizeof b, 0);
      if (r <= 0) {
        if (eof) *eof = true;
        return "";
      }
      buf.append(b, static_cast<size_t>(r));
    }
  }
  // True when the server closed the connection (EOF or reset) within timeout_ms.
  bool closed_by_peer(int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return false;
    char b[4096];
    const ssize_t r = ::recv(fd, b, sizeof b, MSG_DONTWAIT);
    return r <= 0;
  }
  std::string buf;
};

}  // namespace ctltest
