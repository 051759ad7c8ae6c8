// servers.h -- real servers a test starts on 127.0.0.1 (an SMTP server, a
// webhook receiver ...): a child process that prints {"port": N} on its
// first line of output, stopped when the test ends; a scratch folder; a
// self-signed certificate made with openssl at test time. Header-only, for
// tests that link only the SDK's test host. Not thread-safe.
#ifndef OPSKERNEL_TESTS_SUPPORT_SERVERS_H
#define OPSKERNEL_TESTS_SUPPORT_SERVERS_H

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace opk::test {

// A fresh folder under the system temp folder, removed on destruction.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "opk-test-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// The whole of a text file; empty when it cannot be read.
inline std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A child process serving on 127.0.0.1.
class ServerProcess {
 public:
  ServerProcess() = default;
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  ~ServerProcess() { stop(); }

  // Runs `argv` with its standard error in `stderr_file` and waits up to
  // 20 s for {"port": N} on its standard output. Empty on success, else
  // why it did not start (with its standard error).
  std::string start(const std::vector<std::string>& argv, const std::string& stderr_file) {
    stderr_file_ = stderr_file;
    int out[2];
    if (pipe(out) != 0) return "pipe failed";
    pid_ = fork();
    if (pid_ < 0) return "fork failed";
    if (pid_ == 0) {
      dup2(out[1], 1);
      const int err = open(stderr_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (err >= 0) dup2(err, 2);
      close(out[0]);
      close(out[1]);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    close(out[1]);
    std::string line;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < until) {
      pollfd p{out[0], POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[256];
      const ssize_t n = read(out[0], buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
    }
    close(out[0]);
    std::smatch m;
    if (!std::regex_search(line, m, std::regex(R"re("port"\s*:\s*(\d+))re"))) {
      stop();
      return argv[0] + " did not report its port (output '" + line + "'); its standard error: " + slurp(stderr_file);
    }
    port_ = std::stoi(m[1]);
    return {};
  }

  int port() const { return port_; }
  // What the server wrote to its standard error so far.
  std::string errors() const { return slurp(stderr_file_); }

  // SIGTERM, then SIGKILL after 3 s.
  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 300; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string stderr_file_;
};

// A port on 127.0.0.1 nobody listens on (bound, then closed at once).
inline int closed_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// A self-signed certificate for localhost and 127.0.0.1, made with openssl:
// `dir`/`name`.pem and `dir`/`name`.key. Empty on success, else openssl's
// complaint.
inline std::string make_certificate(const std::filesystem::path& dir, const std::string& name) {
  const std::string cert = (dir / (name + ".pem")).string();
  const std::string key = (dir / (name + ".key")).string();
  const std::string log = (dir / (name + ".openssl.log")).string();
  const std::string cmd =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "
      "'/CN=localhost' -addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' -keyout '" +
      key + "' -out '" + cert + "' >'" + log + "' 2>&1";
  if (std::system(cmd.c_str()) != 0) return "openssl failed: " + slurp(log);
  return {};
}

}  // namespace opk::test

#endif  // OPSKERNEL_TESTS_SUPPORT_SERVERS_H
