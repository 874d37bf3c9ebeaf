#include "ctl/control_server.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <list>
#include <memory>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

namespace flowpic {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

json ctl_ok(json result) { return json{{"ok", true}, {"result", std::move(result)}}; }

json ctl_error(const std::string& code, const std::string& message) {
  return json{{"ok", false}, {"error", message}, {"code", code}};
}

json log_level_handler(const json& args) {
  if (!args.contains("level") || !args["level"].is_string())
    throw CommandError(ctl_code::kBadRequest, "log.level needs args {\"level\": NAME}");
  const std::string name = args["level"].get<std::string>();
  static const char* const kNames[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
  bool known = false;
  for (const char* n : kNames) known = known || name == n;
  if (!known)
    throw CommandError(ctl_code::kBadRequest,
                       "unknown log level '" + name +
                           "' (trace, debug, info, warn, error, critical, off)");
  const auto previous = spdlog::get_level();
  spdlog::set_level(spdlog::level::from_str(name));
  const auto sv = spdlog::level::to_string_view(previous);
  return json{{"level", name}, {"previous", std::string(sv.data(), sv.size())}};
}

namespace {

std::string errno_text(int e) { return std::strerror(e); }

std::string dump_line(const json& j) {
  // Replace invalid UTF-8 instead of throwing: a handler echoing client bytes must not kill us.
  std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  s.push_back('\n');
  return s;
}

// Best effort, never blocks: used for the last words to a client we are dropping anyway.
void send_now(int fd, const std::string& data) {
  (void)::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

struct Client {
  int fd = -1;
  std::string in;
  std::string out;
  size_t out_off = 0;
  Clock::time_point deadline;
  bool close_after_write = false;  // error that ends the connection, or peer half-closed
  bool peer_eof = false;
  bool waiting = false;            // its slow command runs on the job thread; reply not yet known
};

}  // namespace

ControlServer::ControlServer(ControlServerConfig cfg) : cfg_(std::move(cfg)) {}

ControlServer::~ControlServer() { stop(); }

void ControlServer::handle(const std::string& name, Handler h, const std::string& help) {
  std::lock_guard lk(mu_);
  handlers_[name] = Entry{std::move(h), nullptr, help};
}

void ControlServer::handle_async(const std::string& name, AsyncHandler h, const std::string& help) {
  std::lock_guard lk(mu_);
  handlers_[name] = Entry{nullptr, std::move(h), help};
}

bool ControlServer::is_async(const std::string& name) const {
  std::lock_guard lk(mu_);
  const auto it = handlers_.find(name);
  return it != handlers_.end() && it->second.async;
}

ControlServerStats ControlServer::stats() const {
  std::lock_guard lk(mu_);
  return stats_;
}

json ControlServer::call(const std::string& name, const json& args, JobControl* job) {
  Handler fn;
  AsyncHandler async;
  {
    std::lock_guard lk(mu_);
    auto it = handlers_.find(name);
    if (it != handlers_.end()) {
      fn = it->second.fn;
      async = it->second.async;
    } else if (name == "help") {
      json list = json::array();
      for (const auto& [n, e] : handlers_) list.push_back({{"cmd", n}, {"help", e.help}});
      return ctl_ok(json{{"commands", list}});
    }
  }
  if (!fn && !async) return ctl_error(ctl_code::kUnknownCommand, "unknown command '" + name + "' (try 'help')");
  static const std::atomic<bool> kNever{false};
  try {
    if (async) {
      Commit commit = async(args, job ? job->cancelled : kNever);  // no lock: others are served meanwhile
      std::lock_guard exec(exec_mu_);
      if (job && !job->try_commit())
        return ctl_error(ctl_code::kCancelled, "command '" + name + "' abandoned (client gone, deadline or stop)");
      return ctl_ok(commit ? commit() : json::object());
    }
    std::lock_guard exec(exec_mu_);
    return ctl_ok(fn(args));
  } catch (const CommandError& e) {
    return ctl_error(e.code, e.what());
  } catch (const json::exception& e) {
    // Almost always a handler reading an argument of the wrong type.
    return ctl_error(ctl_code::kBadRequest, std::string("bad arguments for '") + name + "': " + e.what());
  } catch (const std::exception& e) {
    return ctl_error(ctl_code::kFailed, e.what());
  } catch (...) {
    return ctl_error(ctl_code::kFailed, "command '" + name + "' failed (unknown exception)");
  }
}

json ControlServer::parse_request(std::string_view line, json* req, json* args) const {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  *req = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (req->is_discarded()) return ctl_error(ctl_code::kBadRequest, "request is not valid JSON");
  if (!req->is_object() || !req->contains("cmd") || !(*req)["cmd"].is_string())
    return ctl_error(ctl_code::kBadRequest, "request must be an object with a string \"cmd\"");
  if (req->contains("args") && !(*req)["args"].is_object() && !(*req)["args"].is_null())
    return ctl_error(ctl_code::kBadRequest, "\"args\" must be an object");
  *args = req->contains("args") && (*req)["args"].is_object() ? (*req)["args"] : json::object();
  return json();
}

json ControlServer::finish(const json& req, json reply) {
  if (req.is_object() && req.contains("id")) reply["id"] = req["id"];
  std::lock_guard lk(mu_);
  ++stats_.requests;
  if (!reply["ok"].get<bool>()) ++stats_.errors;
  return reply;
}

json ControlServer::dispatch(std::string_view line) {
  json req, args;
  json reply = parse_request(line, &req, &args);
  if (reply.is_null()) reply = call(req["cmd"].get<std::string>(), args);
  return finish(req, std::move(reply));
}

std::string ControlServer::socket_path_problem(const std::string& path) {
  namespace fs = std::filesystem;
  if (path.empty()) return "empty path";
  if (path.size() >= sizeof(sockaddr_un::sun_path))
    return "path is " + std::to_string(path.size()) + " bytes, a Unix socket path holds at most " +
           std::to_string(sizeof(sockaddr_un::sun_path) - 1) + "; use a shorter path";
  // The nearest existing ancestor must be a directory (start() creates the missing ones).
  std::error_code ec;
  for (fs::path dir = fs::absolute(path, ec).parent_path(); !dir.empty(); dir = dir.parent_path()) {
    const auto st = fs::status(dir, ec);
    if (st.type() == fs::file_type::not_found) {
      if (dir == dir.parent_path()) break;
      continue;
    }
    if (st.type() != fs::file_type::directory) return dir.string() + " is not a directory; set a path under a directory";
    break;
  }
  const auto st = fs::symlink_status(path, ec);
  if (st.type() != fs::file_type::not_found && st.type() != fs::file_type::socket)
    return path + " exists and is not a socket; remove it or set another path";
  return "";
}

void ControlServer::start() {
  if (running_) return;
  const std::string& path = cfg_.socket_path;
  if (const std::string why = socket_path_problem(path); !why.empty()) throw std::runtime_error("control socket: " + why);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);

  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    // Missing directories are made private (0750): a run-time directory such as /run/flowpic.
    std::error_code ec;
    std::vector<std::filesystem::path> made;
    for (std::filesystem::path d = parent; !d.empty() && !std::filesystem::exists(d, ec); d = d.parent_path()) {
      made.push_back(d);
      if (d == d.parent_path()) break;
    }
    std::filesystem::create_directories(parent, ec);
    if (ec)
      throw std::runtime_error("control socket: cannot create directory " + parent.string() + ": " +
                               ec.message());
    for (const auto& d : made) ::chmod(d.c_str(), 0750);
  }

  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))  // again at the point of use: a file may have appeared since the check
      throw std::runtime_error("control socket: " + path +
                               " exists and is not a socket; remove it or set another path");
    // A socket file: is anyone listening? Non-blocking so a full backlog cannot hang us.
    int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (probe < 0) throw std::runtime_error("control socket: socket(): " + errno_text(errno));
    const int rc = ::connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
    const int err = errno;
    ::close(probe);
    if (rc == 0 || err == EAGAIN || err == EINPROGRESS)
      throw std::runtime_error("control socket: another instance is listening on " + path +
                               "; stop it or set another path");
    if (err != ECONNREFUSED)
      throw std::runtime_error("control socket: cannot check " + path + ": " + errno_text(err));
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      throw std::runtime_error("control socket: cannot remove stale " + path + ": " +
                               errno_text(errno));
    spdlog::info("control socket: removed stale {}", path);
  }

  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) throw std::runtime_error("control socket: socket(): " + errno_text(errno));
  // umask around bind so the file never exists with wider permissions, chmod to be certain.
  const mode_t old_mask = ::umask(0177);
  const int brc = ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  const int berr = errno;
  ::umask(old_mask);
  if (brc != 0) {
    ::close(fd);
    if (berr == EADDRINUSE)
      throw std::runtime_error("control socket: " + path + " appeared while starting (another instance?)");
    throw std::runtime_error("control socket: bind " + path + ": " + errno_text(berr));
  }
  const bool group = !cfg_.allowed_gids.empty();
  if ((group && ::chown(path.c_str(), static_cast<uid_t>(-1), static_cast<gid_t>(cfg_.allowed_gids[0])) != 0) ||
      ::chmod(path.c_str(), group ? 0660 : 0600) != 0 || ::listen(fd, SOMAXCONN) != 0 ||
      ::stat(path.c_str(), &st) != 0) {
    const int e = errno;
    ::close(fd);
    ::unlink(path.c_str());
    throw std::runtime_error("control socket: " + path + ": " + errno_text(e));
  }
  sock_dev_ = st.st_dev;
  sock_ino_ = st.st_ino;
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    const int e = errno;
    ::close(fd);
    ::unlink(path.c_str());
    throw std::runtime_error("control socket: eventfd(): " + errno_text(e));
  }
  listen_fd_ = fd;
  stop_ = false;
  running_ = true;
  thread_ = std::thread([this] { run(); });
  spdlog::info("control socket listening on {}", path);
}

void ControlServer::stop() {
  if (!running_) return;
  stop_ = true;
  const uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
  ::close(listen_fd_);
  ::close(wake_fd_);
  listen_fd_ = wake_fd_ = -1;
  // Remove the file only if it is still the one we bound (a successor may have replaced it).
  struct stat st {};
  if (::lstat(cfg_.socket_path.c_str(), &st) == 0 && st.st_dev == sock_dev_ && st.st_ino == sock_ino_)
    ::unlink(cfg_.socket_path.c_str());
  running_ = false;
}

// The one slow command in flight: its thread, its client (null once that client is gone) and reply.
struct ControlServer::Job : JobControl {
  std::thread thread;
  std::atomic<bool> done{false};
  json reply;
  Client* client = nullptr;
};

void ControlServer::run() {
  std::list<Client> clients;
  std::unique_ptr<Job> job;
  const auto job_timeout = std::chrono::milliseconds(std::max(cfg_.job_timeout_ms, cfg_.request_timeout_ms));
  const auto timeout = std::chrono::milliseconds(cfg_.request_timeout_ms);
  std::vector<pollfd> pfds;
  std::vector<Client*> order;
  std::vector<char> buf(64 * 1024);

  auto bump = [this](uint64_t ControlServerStats::*field) {
    std::lock_guard lk(mu_);
    ++(stats_.*field);
  };

  // Answers complete lines one at a time: the next request is read only once the previous
  // reply left, so a client that pipelines without reading cannot make us buffer without bound.
  auto service = [&](Client& c) {
    while (c.out.empty() && !c.close_after_write && !c.waiting) {
      const size_t nl = c.in.find('\n');
      if (nl == std::string::npos) {
        if (c.in.size() > cfg_.max_message_bytes) {
          c.out = dump_line(ctl_error(ctl_code::kTooLarge,
                                      "request larger than " + std::to_string(cfg_.max_message_bytes) +
                                          " bytes"));
          bump(&ControlServerStats::errors);
          c.in.clear();
          c.close_after_write = true;
        } else if (c.peer_eof) {
          // Peer sent its last request without a newline and half-closed: answer it anyway.
          if (!c.in.empty()) c.out = dump_line(dispatch(c.in));
          c.in.clear();
          c.close_after_write = true;
        }
        return;
      }
      if (nl > cfg_.max_message_bytes) {
        c.out = dump_line(ctl_error(ctl_code::kTooLarge, "request larger than " +
                                                             std::to_string(cfg_.max_message_bytes) +
                                                             " bytes"));
        bump(&ControlServerStats::errors);
        c.in.clear();
        c.close_after_write = true;
        return;
      }
      std::string line = c.in.substr(0, nl);
      c.in.erase(0, nl + 1);
      if (line.empty() || line == "\r") continue;  // blank lines are keep-alives, not requests
      json req, args;
      json bad = parse_request(line, &req, &args);
      if (bad.is_null() && is_async(req["cmd"].get<std::string>())) {
        if (job) {
          c.out = dump_line(finish(req, ctl_error(ctl_code::kBusy, "command '" + req["cmd"].get<std::string>() +
                                                                   "' waits for another slow command; retry later")));
        } else {
          // Off this thread: the server keeps answering everyone else meanwhile.
          job = std::make_unique<Job>();
          job->client = &c;
          c.waiting = true;
          c.deadline = Clock::now() + job_timeout;
          Job* j = job.get();
          j->thread = std::thread([this, j, req = std::move(req), args = std::move(args)] {
            json reply = finish(req, call(req["cmd"].get<std::string>(), args, j));
            j->reply = std::move(reply);
            j->done = true;
            const uint64_t one = 1;
            (void)!::write(wake_fd_, &one, sizeof(one));
          });
          return;
        }
        c.out_off = 0;
        c.deadline = Clock::now() + timeout;
        continue;
      }
      c.out = dump_line(finish(req, bad.is_null() ? call(req["cmd"].get<std::string>(), args) : std::move(bad)));
      c.out_off = 0;
      c.deadline = Clock::now() + timeout;
    }
  };

  while (!stop_) {
    pfds.clear();
    order.clear();
    pfds.push_back({wake_fd_, POLLIN, 0});
    pfds.push_back({listen_fd_, POLLIN, 0});
    auto now = Clock::now();
    auto next_deadline = now + std::chrono::hours(1);
    for (Client& c : clients) {
      short ev = 0;  // a waiting client asks for nothing: POLLHUP (always reported) says it went away
      if (c.waiting) {
      } else if (!c.out.empty()) {
        ev = POLLOUT;
      } else if (!c.close_after_write && !c.peer_eof) {
        ev = POLLIN;
      }
      pfds.push_back({c.fd, ev, 0});
      order.push_back(&c);
      next_deadline = std::min(next_deadline, c.deadline);
    }
    const auto wait_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(next_deadline - now).count() + 1;
    const int n = ::poll(pfds.data(), pfds.size(), static_cast<int>(std::max<int64_t>(0, wait_ms)));
    if (n < 0) {
      if (errno == EINTR) continue;
      spdlog::error("control socket: poll(): {}", errno_text(errno));
      break;
    }
    if (stop_) break;
    if (pfds[0].revents & POLLIN) {
      uint64_t v = 0;
      (void)!::read(wake_fd_, &v, sizeof v);
    }
    if (job && job->done) {  // the slow command finished: its reply goes to its client, if still there
      job->thread.join();
      if (Client* c = job->client) {
        c->waiting = false;
        c->out = dump_line(job->reply);
        c->out_off = 0;
        c->deadline = Clock::now() + timeout;
      }
      job.reset();
    }

    if (pfds[1].revents & POLLIN) {
      for (;;) {
        int cfd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) break;  // EAGAIN, or a transient error (EMFILE, ...): try again next round
        ucred peer{};
        socklen_t plen = sizeof peer;
        const bool known = ::getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &peer, &plen) == 0;
        auto in = [](const std::vector<uint32_t>& v, uint32_t x) { return std::find(v.begin(), v.end(), x) != v.end(); };
        if (!known || !(peer.uid == 0 || peer.uid == ::geteuid() || in(cfg_.allowed_uids, peer.uid) ||
                        in(cfg_.allowed_gids, peer.gid))) {
          bump(&ControlServerStats::rejected_peer);  // before the reply: a client may read stats after it
          send_now(cfd, dump_line(ctl_error(ctl_code::kForbidden,
                                            "uid " + std::to_string(known ? peer.uid : ~0u) +
                                                " may not control this flowpicd (control.allowed_uids / allowed_gids)")));
          ::close(cfd);
          continue;
        }
        if (static_cast<int>(clients.size()) >= cfg_.max_clients) {
          send_now(cfd, dump_line(ctl_error(ctl_code::kBusy, "too many control clients, retry later")));
          ::close(cfd);
          bump(&ControlServerStats::rejected_busy);
          continue;
        }
        Client c;
        c.fd = cfd;
        c.deadline = Clock::now() + timeout;
        clients.push_back(std::move(c));
        bump(&ControlServerStats::connections);
      }
    }

    for (size_t i = 0; i < order.size(); ++i) {
      Client& c = *order[i];
      const short re = pfds[i + 2].revents;
      if (re == 0) continue;
      if (c.waiting) {
        if (re & (POLLERR | POLLHUP)) {  // gone before its reply: the slow command is abandoned
          if (job && job->client == &c) {
            job->try_abandon();  // or, if already committing, it completes and its reply is dropped
            job->client = nullptr;
          }
          c.waiting = false;
          c.close_after_write = true;
        }
        continue;
      }
      if ((re & POLLERR) || ((re & POLLHUP) && !(re & POLLIN))) {
        c.out.clear();  // peer is gone: nothing more can be delivered
        c.out_off = 0;
        c.close_after_write = true;
        continue;
      }
      if (re & POLLOUT) {
        while (c.out_off < c.out.size()) {
          const ssize_t w = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off,
                                   MSG_NOSIGNAL | MSG_DONTWAIT);
          if (w > 0) {
            c.out_off += static_cast<size_t>(w);
          } else {
            if (w < 0 && (errno == EAGAIN || errno == EINTR)) break;
            c.close_after_write = true;  // peer gone
            c.out.clear();
            c.out_off = 0;
            break;
          }
        }
        if (c.out_off >= c.out.size()) {
          c.out.clear();
          c.out_off = 0;
        }
      } else if (re & POLLIN) {
        for (;;) {
          const ssize_t r = ::recv(c.fd, buf.data(), buf.size(), MSG_DONTWAIT);
          if (r > 0) {
            c.in.append(buf.data(), static_cast<size_t>(r));
            if (c.in.size() > cfg_.max_message_bytes + 1) break;  // enough to judge it too large
          } else {
            if (r == 0) c.peer_eof = true;
            else if (errno != EAGAIN && errno != EINTR) c.peer_eof = true;
            break;
          }
        }
      }
      service(c);
    }

    // Close finished connections and drop the ones past their deadline.
    now = Clock::now();
    for (auto it = clients.begin(); it != clients.end();) {
      Client& c = *it;
      bool drop = false;
      if (c.waiting && now < c.deadline) {
        // its reply comes from the job thread (a half-closed client still reads it)
      } else if (c.out.empty() && (c.close_after_write || c.peer_eof) && !c.waiting) {
        drop = true;
      } else if (c.waiting && job && job->client == &c && !job->try_abandon()) {
        // past its deadline but already applying: the reply follows in a moment
      } else if (now >= c.deadline) {
        if (c.waiting) {
          if (job && job->client == &c) job->client = nullptr;
          send_now(c.fd, dump_line(ctl_error(ctl_code::kTimeout, "command did not finish within " +
                                                                     std::to_string(job_timeout.count()) +
                                                                     " ms; abandoned, nothing changed")));
        } else if (c.out.empty()) {
          send_now(c.fd, dump_line(ctl_error(ctl_code::kTimeout,
                                             "no complete request within " +
                                                 std::to_string(cfg_.request_timeout_ms) + " ms")));
        }
        bump(&ControlServerStats::timeouts);
        drop = true;
      }
      if (drop) {
        ::close(c.fd);
        it = clients.erase(it);
      } else {
        ++it;
      }
    }
  }
  // Stopping: a slow command in flight is abandoned (its commit step never runs). Its prepare
  // step notices the flag at its next check; a model load is bounded by the size limit.
  if (job) {
    job->try_abandon();
    job->thread.join();
  }
  for (Client& c : clients) ::close(c.fd);
}

}  // namespace flowpic
