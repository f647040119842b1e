#include "common/testing/fault_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"

namespace loyalty::testing {
namespace {

// MySQL client/server protocol: every packet is a 3-byte little-endian
// payload length, a sequence id, then the payload. A command starts a new
// exchange with sequence id 0; its first payload byte is the command.
constexpr size_t kHeaderBytes = 4;
constexpr unsigned char kComQuery = 0x03;
constexpr unsigned char kComStmtExecute = 0x17;
constexpr int kPollMs = 100;
constexpr size_t kReadChunkBytes = 16 * 1024;

size_t PayloadLength(const std::string& buffer) {
  return static_cast<unsigned char>(buffer[0]) | (static_cast<unsigned char>(buffer[1]) << 8) |
         (static_cast<unsigned char>(buffer[2]) << 16);
}

bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

std::string Packet(unsigned char sequence, const std::string& payload) {
  std::string out(kHeaderBytes, '\0');
  out[0] = static_cast<char>(payload.size() & 0xff);
  out[1] = static_cast<char>((payload.size() >> 8) & 0xff);
  out[2] = static_cast<char>((payload.size() >> 16) & 0xff);
  out[3] = static_cast<char>(sequence);
  return out + payload;
}

// The error packet Galera sends for a transaction that lost certification.
std::string DeadlockErrorPacket() {
  constexpr int kErLockDeadlock = 1213;
  std::string payload;
  payload.push_back(static_cast<char>(0xff));
  payload.push_back(static_cast<char>(kErLockDeadlock & 0xff));
  payload.push_back(static_cast<char>(kErLockDeadlock >> 8));
  payload += "#40001Deadlock found when trying to get lock; try restarting transaction";
  return Packet(1, payload);
}

std::string RollbackCommand() { return Packet(0, std::string(1, static_cast<char>(kComQuery)) + "ROLLBACK"); }

int ConnectTo(const std::string& host, int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

}  // namespace

struct FaultProxy::Connection {
  int client_fd = -1;
  int server_fd = -1;
  bool in_transaction = false;
  bool drop_reply = false;            // kCutAfterCommit: cut on the server's next bytes
  bool swallow_reply = false;         // kFailCommit: drop the answer to our ROLLBACK
  std::string swallow_buffer;
  std::string client_buffer;
  absl::Mutex mu;
  bool closed ABSL_GUARDED_BY(mu) = false;

  // Wakes the serving thread by shutting both sockets down (safe from any
  // thread: the descriptors are closed only under `mu`).
  void Cut() {
    absl::MutexLock lock(&mu);
    if (closed) return;
    ::shutdown(client_fd, SHUT_RDWR);
    ::shutdown(server_fd, SHUT_RDWR);
  }
  void Close() {
    absl::MutexLock lock(&mu);
    if (closed) return;
    closed = true;
    ::shutdown(client_fd, SHUT_RDWR);
    ::shutdown(server_fd, SHUT_RDWR);
    ::close(client_fd);
    ::close(server_fd);
  }
};

absl::StatusOr<std::unique_ptr<FaultProxy>> FaultProxy::Start(const std::string& upstream_host,
                                                              int upstream_port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(fd, 128) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return absl::InternalError(absl::StrCat("listen: ", std::strerror(errno)));
  }
  std::unique_ptr<FaultProxy> proxy(new FaultProxy(fd, ntohs(addr.sin_port), upstream_host, upstream_port));
  proxy->acceptor_ = std::thread([p = proxy.get()] { p->AcceptLoop(); });
  return proxy;
}

FaultProxy::FaultProxy(int listen_fd, int port, std::string upstream_host, int upstream_port)
    : listen_fd_(listen_fd), port_(port), upstream_host_(std::move(upstream_host)), upstream_port_(upstream_port) {}

FaultProxy::~FaultProxy() {
  stopping_ = true;
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    for (auto& weak : connections_) {
      if (auto c = weak.lock()) c->Cut();
    }
    threads.swap(threads_);
  }
  for (std::thread& t : threads) t.join();
  ::close(listen_fd_);
}

void FaultProxy::Arm(Fault fault, int skip) {
  absl::MutexLock lock(&mu_);
  armed_ = fault;
  skip_ = skip;
}

FaultProxy::Fault FaultProxy::armed() const {
  absl::MutexLock lock(&mu_);
  return armed_;
}

void FaultProxy::SetDelay(absl::Duration delay) {
  absl::MutexLock lock(&mu_);
  delay_ = delay;
}

void FaultProxy::SetRefusing(bool refusing) {
  absl::MutexLock lock(&mu_);
  refusing_ = refusing;
  if (!refusing) return;
  for (auto& weak : connections_) {
    if (auto c = weak.lock()) c->Cut();
  }
}

void FaultProxy::AcceptLoop() {
  while (!stopping_) {
    pollfd pfd{listen_fd_, POLLIN, 0};
    if (::poll(&pfd, 1, kPollMs) <= 0) continue;
    const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    bool refusing;
    {
      absl::MutexLock lock(&mu_);
      refusing = refusing_;
    }
    const int server = refusing ? -1 : ConnectTo(upstream_host_, upstream_port_);
    if (server < 0) {
      ::close(client);
      continue;
    }
    const int one = 1;
    ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    auto connection = std::make_shared<Connection>();
    connection->client_fd = client;
    connection->server_fd = server;
    absl::MutexLock lock(&mu_);
    connections_.push_back(connection);
    threads_.emplace_back([this, connection] { Serve(connection); });
  }
}

FaultProxy::Action FaultProxy::OnClientCommand(Connection& c, const std::string& packet) {
  ++commands_;
  if (packet.size() <= kHeaderBytes) return Action::kForward;
  const auto command = static_cast<unsigned char>(packet[kHeaderBytes]);
  absl::MutexLock lock(&mu_);
  if (command == kComQuery) {
    const std::string text =
        absl::AsciiStrToUpper(absl::StripAsciiWhitespace(absl::string_view(packet).substr(kHeaderBytes + 1)));
    if (absl::StartsWith(text, "START TRANSACTION") || absl::StartsWith(text, "BEGIN")) {
      c.in_transaction = true;
    } else if (absl::StartsWith(text, "ROLLBACK")) {
      c.in_transaction = false;
    } else if (absl::StartsWith(text, "COMMIT")) {
      c.in_transaction = false;
      const Fault fault = armed_;
      if ((fault == Fault::kCutAtCommit || fault == Fault::kCutAfterCommit || fault == Fault::kFailCommit) &&
          skip_-- == 0) {
        armed_ = Fault::kNone;
        ++fired_;
        if (fault == Fault::kCutAtCommit) return Action::kCutBefore;
        if (fault == Fault::kCutAfterCommit) return Action::kForwardThenDropReply;
        return Action::kRollBackAndFail;
      }
    }
  } else if (command == kComStmtExecute && c.in_transaction && armed_ == Fault::kCutMidStatement &&
             skip_-- == 0) {
    armed_ = Fault::kNone;
    ++fired_;
    return Action::kForwardHalfThenCut;
  }
  return Action::kForward;
}

void FaultProxy::Serve(std::shared_ptr<Connection> c) {
  std::string chunk(kReadChunkBytes, '\0');
  bool open = true;
  while (open && !stopping_) {
    pollfd fds[2] = {{c->client_fd, POLLIN, 0}, {c->server_fd, POLLIN, 0}};
    if (::poll(fds, 2, kPollMs) < 0 && errno != EINTR) break;
    {
      absl::MutexLock lock(&mu_);
      if (refusing_) break;
    }
    if (fds[0].revents != 0) {
      const ssize_t n = ::recv(c->client_fd, chunk.data(), chunk.size(), 0);
      if (n <= 0) break;
      c->client_buffer.append(chunk.data(), static_cast<size_t>(n));
      while (open && c->client_buffer.size() >= kHeaderBytes) {
        const size_t size = kHeaderBytes + PayloadLength(c->client_buffer);
        if (c->client_buffer.size() < size) break;
        const std::string packet = c->client_buffer.substr(0, size);
        c->client_buffer.erase(0, size);
        const Action action = packet[3] == 0 ? OnClientCommand(*c, packet) : Action::kForward;
        absl::Duration delay;
        {
          absl::MutexLock lock(&mu_);
          delay = delay_;
        }
        if (packet[3] == 0 && delay > absl::ZeroDuration()) absl::SleepFor(delay);
        switch (action) {
          case Action::kForward:
            open = WriteAll(c->server_fd, packet.data(), packet.size());
            break;
          case Action::kCutBefore:
            open = false;
            break;
          case Action::kForwardThenDropReply:
            c->drop_reply = true;
            open = WriteAll(c->server_fd, packet.data(), packet.size());
            break;
          case Action::kForwardHalfThenCut:
            (void)WriteAll(c->server_fd, packet.data(), packet.size() / 2);
            open = false;
            break;
          case Action::kRollBackAndFail: {
            const std::string rollback = RollbackCommand();
            const std::string error = DeadlockErrorPacket();
            c->swallow_reply = true;
            open = WriteAll(c->server_fd, rollback.data(), rollback.size()) &&
                   WriteAll(c->client_fd, error.data(), error.size());
            break;
          }
        }
      }
    }
    if (open && fds[1].revents != 0) {
      const ssize_t n = ::recv(c->server_fd, chunk.data(), chunk.size(), 0);
      if (n <= 0 || c->drop_reply) break;
      absl::string_view data(chunk.data(), static_cast<size_t>(n));
      if (c->swallow_reply) {
        // Drop exactly one whole packet: the server's answer to our ROLLBACK.
        c->swallow_buffer.append(data.data(), data.size());
        data = {};
        if (c->swallow_buffer.size() >= kHeaderBytes &&
            c->swallow_buffer.size() >= kHeaderBytes + PayloadLength(c->swallow_buffer)) {
          const size_t size = kHeaderBytes + PayloadLength(c->swallow_buffer);
          const std::string rest = c->swallow_buffer.substr(size);
          c->swallow_buffer.clear();
          c->swallow_reply = false;
          open = WriteAll(c->client_fd, rest.data(), rest.size());
        }
      }
      if (open && !data.empty()) open = WriteAll(c->client_fd, data.data(), data.size());
    }
  }
  c->Close();
}

FaultedCall CallUnderFault(FaultProxy& proxy, FaultProxy::Fault fault, int skip,
                           const std::function<absl::Status()>& call, int max_attempts) {
  FaultedCall out;
  const int fired_before = proxy.fired();
  proxy.Arm(fault, skip);
  out.first = call();
  proxy.Arm(FaultProxy::Fault::kNone);
  out.fired = proxy.fired() != fired_before;
  out.last = out.first;
  out.attempts = 1;
  while (out.attempts < max_attempts &&
         (absl::IsUnavailable(out.last) || absl::IsAborted(out.last))) {
    absl::SleepFor(absl::Milliseconds(50));
    out.last = call();
    ++out.attempts;
  }
  return out;
}

std::string FaultName(FaultProxy::Fault fault) {
  switch (fault) {
    case FaultProxy::Fault::kCutAtCommit:
      return "cut-at-commit";
    case FaultProxy::Fault::kCutAfterCommit:
      return "cut-after-commit";
    case FaultProxy::Fault::kCutMidStatement:
      return "cut-mid-statement";
    case FaultProxy::Fault::kFailCommit:
      return "commit-refused";
    case FaultProxy::Fault::kNone:
      break;
  }
  return "none";
}

absl::StatusOr<ProxiedDatabase> ProxiedDatabase::Create(const std::string& prefix,
                                                        const std::vector<db::MigrationFile>& migrations) {
  ProxiedDatabase out;
  ASSIGN_OR_RETURN(out.db, TestDatabase::Create(prefix));
  if (!migrations.empty()) RETURN_IF_ERROR(db::ApplyMigrations(out.db->pool(), migrations).status());
  ASSIGN_OR_RETURN(out.proxy, FaultProxy::Start("127.0.0.1", out.db->options().port));
  ASSIGN_OR_RETURN(out.pool, db::ConnectionPool::Create(OverTcp(out.db->options(), out.proxy->port())));
  return out;
}

}  // namespace loyalty::testing
