// A stand-in for the Hugging Face Hub on 127.0.0.1, for the download tests: the file list API, resolve
// URLs with the Hub's headers (X-Repo-Commit; X-Linked-Etag / X-Linked-Size and a redirect to a CDN path
// for LFS files; ETag for the others), Range requests, a gated repo answering 401 without the right
// token, 404 for what does not exist, and on request a connection dropped halfway or corrupted bytes.
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace mmx::test {

inline std::string hex_digest(const std::string& bytes, const EVP_MD* md) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_Digest(bytes.data(), bytes.size(), d, &n, md, nullptr);
  std::string hex;
  char b[3];
  for (unsigned i = 0; i < n; ++i) {
    std::snprintf(b, sizeof b, "%02x", d[i]);
    hex += b;
  }
  return hex;
}

inline std::string sha256_hex(const std::string& bytes) { return hex_digest(bytes, EVP_sha256()); }

// git's object id of a file: SHA-1 of "blob <size>\0" + bytes (the Hub's ETag of a regular file).
inline std::string git_blob_id(const std::string& bytes) {
  return hex_digest("blob " + std::to_string(bytes.size()) + std::string(1, '\0') + bytes, EVP_sha1());
}

class HubServer {
 public:
  struct Repo {
    std::string commit;
    std::map<std::string, std::string> files;  // path → bytes
    std::string token;                         // non-empty: gated, requires "Bearer <token>"
    std::vector<std::string> listed;           // more names in the file list (a hostile server's)
  };

  HubServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 16);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~HubServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void add(const std::string& repo_id, Repo repo) {
    std::lock_guard<std::mutex> lock(mutex_);
    repos_[repo_id] = std::move(repo);
  }
  void drop_once(const std::string& path) { std::lock_guard<std::mutex> l(mutex_); drop_.insert(path); }
  void corrupt(const std::string& path) { std::lock_guard<std::mutex> l(mutex_); corrupt_.insert(path); }
  // Answer Range requests with the whole file (200), as a server that cannot resume does.
  void ignore_ranges() { std::lock_guard<std::mutex> l(mutex_); ignore_ranges_ = true; }
  // A repo renamed: its old id answers with relative 307 redirects to the new one, as the Hub does.
  void rename(const std::string& old_id, const std::string& new_id) { std::lock_guard<std::mutex> l(mutex_); renamed_[old_id] = new_id; }
  // Lies for the hostile-server tests: GETs of `path` answered `status` with an error page `times` times;
  // a wrong ETag; a body trickled a byte every half second; twice the bytes the HEAD announced.
  void fail_gets(const std::string& path, int status, int times) { std::lock_guard<std::mutex> l(mutex_); fail_[path] = {status, times}; }
  void lie_etag(const std::string& path, const std::string& etag) { std::lock_guard<std::mutex> l(mutex_); etag_[path] = etag; }
  void trickle(const std::string& path) { std::lock_guard<std::mutex> l(mutex_); trickle_.insert(path); }
  void oversend(const std::string& path) { std::lock_guard<std::mutex> l(mutex_); oversend_.insert(path); }
  // No Content-Length in the HEAD, and a GET that streams 65 MiB until the connection closes.
  void unsized(const std::string& path) { std::lock_guard<std::mutex> l(mutex_); unsized_.insert(path); }
  int requests() const { return requests_; }
  int range_requests() const { return range_requests_; }

 private:
  static bool lfs(const std::string& path) {
    return path.size() > 12 && (path.rfind(".safetensors") == path.size() - 12 || path.rfind(".bin") == path.size() - 4);
  }

  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      handle(c);
      ::close(c);
    }
  }

  static void send_all(int c, const std::string& s) {
    for (size_t off = 0; off < s.size();) {
      const ssize_t n = ::send(c, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }

  static void reply(int c, int status, const std::map<std::string, std::string>& headers, const std::string& body,
                    bool head, size_t length) {
    static const std::map<int, std::string> reason = {{200, "OK"}, {206, "Partial Content"}, {302, "Found"}, {307, "Temporary Redirect"},
                                                      {401, "Unauthorized"}, {404, "Not Found"}, {416, "Range Not Satisfiable"},
                                                      {500, "Internal Server Error"}, {503, "Service Unavailable"}};
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason.at(status) + "\r\n";
    for (const auto& [k, v] : headers) out += k + ": " + v + "\r\n";
    out += "Content-Length: " + std::to_string(length) + "\r\nConnection: close\r\n\r\n";
    if (!head) out += body;
    send_all(c, out);
  }

  void handle(int c) {
    std::string req;
    char buf[4096];
    while (req.find("\r\n\r\n") == std::string::npos) {
      const ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) return;
      req.append(buf, static_cast<size_t>(n));
    }
    ++requests_;
    const std::string method = req.substr(0, req.find(' '));
    const size_t t0 = req.find(' ') + 1;
    const std::string target = req.substr(t0, req.find(' ', t0) - t0);
    auto header = [&](const std::string& name) -> std::string {
      const size_t p = req.find("\r\n" + name + ": ");
      if (p == std::string::npos) return "";
      const size_t b = p + name.size() + 4;
      return req.substr(b, req.find("\r\n", b) - b);
    };
    const bool head = method == "HEAD";
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [from, to] : renamed_)
      for (const std::string& prefix : {"/api/models/" + from + "/", "/" + from + "/resolve/"})
        if (target.rfind(prefix, 0) == 0) {
          std::string moved = target;
          moved.replace(moved.find(from), from.size(), to);
          return reply(c, 307, {{"Location", moved}}, "", head, 0);
        }
    auto unauthorized = [&](const Repo& r) {
      return !r.token.empty() && header("Authorization") != "Bearer " + r.token;
    };
    if (target.rfind("/api/models/", 0) == 0) {  // /api/models/<org>/<name>/revision/<rev>
      const std::string rest = target.substr(12);
      const size_t rev = rest.find("/revision/");
      const auto it = repos_.find(rest.substr(0, rev));
      if (it == repos_.end()) return reply(c, 404, {{"X-Error-Code", "RepoNotFound"}}, "", head, 0);
      if (unauthorized(it->second)) return reply(c, 401, {{"X-Error-Code", "GatedRepo"}}, "", head, 0);
      nlohmann::json j = {{"id", it->first}, {"sha", it->second.commit}, {"siblings", nlohmann::json::array()}};
      for (const auto& [path, bytes] : it->second.files) j["siblings"].push_back({{"rfilename", path}});
      for (const auto& path : it->second.listed) j["siblings"].push_back({{"rfilename", path}});
      const std::string body = j.dump();
      return reply(c, 200, {{"Content-Type", "application/json"}}, body, head, body.size());
    }
    if (target.rfind("/cdn/", 0) == 0) {  // /cdn/<sha256>: the LFS bytes, with Range
      const std::string sha = target.substr(5);
      for (const auto& [id, repo] : repos_)
        for (const auto& [path, bytes] : repo.files)
          if (lfs(path) && sha256_hex(bytes) == sha) {
            std::string body = bytes;
            if (corrupt_.count(path)) body[body.size() / 2] ^= 0x5a;
            size_t from = 0;
            const std::string range = header("Range");
            if (range.rfind("bytes=", 0) == 0 && !ignore_ranges_) {
              ++range_requests_;
              from = std::stoull(range.substr(6));
              if (from >= body.size()) return reply(c, 416, {}, "", head, 0);
            }
            const std::string part = body.substr(from);
            std::map<std::string, std::string> h = {{"ETag", "\"" + sha + "\""}};
            if (from) h["Content-Range"] = "bytes " + std::to_string(from) + "-" + std::to_string(body.size() - 1) + "/" +
                                           std::to_string(body.size());
            if (drop_.count(path) && !head) {  // promise the whole file, send half, hang up
              drop_.erase(path);
              std::string out = "HTTP/1.1 " + std::string(from ? "206 Partial Content" : "200 OK") + "\r\n";
              for (const auto& [k, v] : h) out += k + ": " + v + "\r\n";
              out += "Content-Length: " + std::to_string(part.size()) + "\r\nConnection: close\r\n\r\n";
              send_all(c, out + part.substr(0, part.size() / 2));
              return;
            }
            return reply(c, from ? 206 : 200, h, part, head, part.size());
          }
      return reply(c, 404, {}, "", head, 0);
    }
    // /<org>/<name>/resolve/<rev>/<path>
    const size_t r = target.find("/resolve/");
    if (r == std::string::npos) return reply(c, 404, {}, "", head, 0);
    const auto it = repos_.find(target.substr(1, r - 1));
    if (it == repos_.end()) return reply(c, 404, {{"X-Error-Code", "RepoNotFound"}}, "", head, 0);
    if (unauthorized(it->second)) return reply(c, 401, {{"X-Error-Code", "GatedRepo"}}, "", head, 0);
    const std::string after = target.substr(r + 9);
    const std::string path = after.substr(after.find('/') + 1);
    const auto f = it->second.files.find(path);
    if (f == it->second.files.end()) return reply(c, 404, {{"X-Error-Code", "EntryNotFound"}}, "", head, 0);
    if (lfs(path)) {
      const std::string sha = sha256_hex(f->second);
      return reply(c, 302,
                   {{"Location", endpoint() + "/cdn/" + sha}, {"X-Repo-Commit", it->second.commit},
                    {"X-Linked-Etag", "\"" + sha + "\""}, {"X-Linked-Size", std::to_string(f->second.size())}},
                   "", head, 0);
    }
    const std::string etag = etag_.count(path) ? etag_.at(path) : git_blob_id(f->second);  // the Hub's ETag of a regular file
    const std::map<std::string, std::string> h = {{"X-Repo-Commit", it->second.commit}, {"ETag", "\"" + etag + "\""}};
    if (unsized_.count(path)) {  // headers without a length; the body ends when the connection does
      std::string out = "HTTP/1.1 200 OK\r\n";
      for (const auto& [k, v] : h) out += k + ": " + v + "\r\n";
      send_all(c, out + "Connection: close\r\n\r\n");
      const std::string chunk(1 << 20, 'x');
      for (int k = 0; k < 65 && !head && !stop_; ++k)
        if (::send(c, chunk.data(), chunk.size(), MSG_NOSIGNAL) <= 0) return;
      return;
    }
    if (!head) {
      if (auto failing = fail_.find(path); failing != fail_.end() && failing->second.second > 0) {
        --failing->second.second;
        const std::string page = "<html><body><h1>" + std::to_string(failing->second.first) + "</h1>upstream error</body></html>";
        return reply(c, failing->second.first, {}, page, false, page.size());
      }
      if (oversend_.count(path)) return reply(c, 200, h, f->second + f->second, false, 2 * f->second.size());
      if (trickle_.count(path)) {  // the headers, then a byte every half second until the client hangs up (≤ 60 s)
        std::string out = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(f->second.size()) + "\r\nConnection: close\r\n\r\n";
        send_all(c, out);
        for (size_t k = 0; k < f->second.size() && k < 120 && !stop_; ++k) {
          if (::send(c, f->second.data() + k, 1, MSG_NOSIGNAL) <= 0) return;
          std::this_thread::sleep_for(std::chrono::milliseconds(500));
        }
        return;
      }
    }
    return reply(c, 200, h, f->second, head, f->second.size());
  }

  int fd_ = -1, port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0}, range_requests_{0};
  std::mutex mutex_;
  std::map<std::string, Repo> repos_;
  std::set<std::string> drop_, corrupt_, trickle_, oversend_, unsized_;
  std::map<std::string, std::pair<int, int>> fail_;  // path → (status, times left)
  std::map<std::string, std::string> etag_;
  std::map<std::string, std::string> renamed_;
  bool ignore_ranges_ = false;
};

}  // namespace mmx::test
