#include "common/testing/service_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"

extern char** environ;

namespace loyalty::testing {

absl::Status CallRaw(const std::string& address, const std::string& method,
                     const std::string& request, const std::string& api_key,
                     absl::Duration deadline) {
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(deadline));
  if (!api_key.empty()) context.AddMetadata("authorization", "Bearer " + api_key);
  grpc::CompletionQueue cq;
  void* tag = nullptr;
  bool ok = false;
  auto step_ok = [&] { return cq.Next(&tag, &ok) && ok; };
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call = stub.PrepareCall(&context, method, &cq);
  call->StartCall(nullptr);
  if (step_ok()) {
    grpc::Slice slice(request);
    grpc::ByteBuffer buffer(&slice, 1);
    call->WriteLast(buffer, grpc::WriteOptions(), nullptr);
    if (step_ok()) {
      grpc::ByteBuffer response;
      do {
        call->Read(&response, nullptr);
      } while (step_ok());
    }
  }
  grpc::Status status;
  call->Finish(&status, nullptr);
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

int PickFreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

absl::Status CheckServing(const std::string& address, const std::string& service,
                          absl::Duration timeout) {
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  }
  if (response.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
    return absl::UnavailableError(absl::StrCat("health status ", response.status()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ServiceProcess>> ServiceProcess::Start(
    const std::string& binary, const std::vector<std::string>& args, const EnvVars& env,
    absl::Duration ready_timeout, ReadyCheck ready) {
  // A caller that must know the port in advance (services that call each
  // other) passes --listen=127.0.0.1:PORT; otherwise a free one is picked.
  int port = 0;
  bool listen_given = false;
  for (const std::string& a : args) {
    absl::string_view v = a;
    if (absl::ConsumePrefix(&v, "--listen=127.0.0.1:") && absl::SimpleAtoi(v, &port)) listen_given = true;
  }
  if (!listen_given) port = PickFreePort();
  if (port == 0) return absl::UnavailableError("no free port");
  char log_template[] = "/tmp/loyalty-service-XXXXXX.log";
  int log_fd = ::mkstemps(log_template, 4);
  if (log_fd < 0) return absl::InternalError("cannot create a log file");

  std::vector<std::string> argv_storage = {binary};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  if (!listen_given) argv_storage.push_back(absl::StrCat("--listen=127.0.0.1:", port));
  std::vector<char*> argv;
  for (std::string& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) env_storage.emplace_back(*e);
  for (const auto& [k, v] : env) env_storage.push_back(absl::StrCat(k, "=", v));
  std::vector<char*> envp;
  for (std::string& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, log_fd, STDERR_FILENO);
  posix_spawn_file_actions_adddup2(&actions, log_fd, STDOUT_FILENO);
  // The child must not inherit a blocked SIGTERM from a test that blocked it.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, binary.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(log_fd);
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("spawn ", binary, ": ", std::strerror(rc)));
  }
  auto process = std::unique_ptr<ServiceProcess>(new ServiceProcess(pid, port, log_template));

  const absl::Time give_up = absl::Now() + ready_timeout;
  absl::Status last = absl::UnavailableError("not checked yet");
  while (absl::Now() < give_up) {
    int wstatus = 0;
    if (::waitpid(pid, &wstatus, WNOHANG) == pid) {
      process->exited_ = true;
      return absl::InternalError(absl::StrCat(binary, " exited during start (status ", wstatus,
                                              "); log:\n", process->LogTail()));
    }
    last = ready ? ready(process->address()) : CheckServing(process->address(), "", absl::Milliseconds(500));
    if (last.ok()) return process;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return absl::DeadlineExceededError(absl::StrCat(binary, " not SERVING after ",
                                                  absl::FormatDuration(ready_timeout), ": ",
                                                  last.ToString(), "; log:\n", process->LogTail()));
}

ServiceProcess::~ServiceProcess() {
  if (!exited_) {
    if (!Stop(absl::Seconds(15)).ok() && !exited_) Kill();
  }
}

std::string ServiceProcess::address() const { return absl::StrCat("127.0.0.1:", port_); }

std::string ServiceProcess::LogTail(size_t max_bytes) const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string all = ss.str();
  return all.size() > max_bytes ? all.substr(all.size() - max_bytes) : all;
}

absl::StatusOr<int> ServiceProcess::WaitExit(absl::Duration timeout) {
  const absl::Time give_up = absl::Now() + timeout;
  while (true) {
    int wstatus = 0;
    pid_t r = ::waitpid(pid_, &wstatus, WNOHANG);
    if (r == pid_) {
      exited_ = true;
      return wstatus;
    }
    if (r < 0 && errno == ECHILD) {
      exited_ = true;
      return 0;
    }
    if (absl::Now() > give_up) return absl::DeadlineExceededError("process did not exit");
    absl::SleepFor(absl::Milliseconds(20));
  }
}

absl::Status ServiceProcess::Stop(absl::Duration timeout) {
  if (exited_) return absl::OkStatus();
  ::kill(pid_, SIGTERM);
  absl::StatusOr<int> wstatus = WaitExit(timeout);
  if (!wstatus.ok()) return wstatus.status();
  if (!WIFEXITED(*wstatus) || WEXITSTATUS(*wstatus) != 0) {
    return absl::InternalError(absl::StrCat("exit status ", *wstatus, "; log:\n", LogTail()));
  }
  return absl::OkStatus();
}

void ServiceProcess::Kill() {
  if (exited_) return;
  ::kill(pid_, SIGKILL);
  (void)WaitExit(absl::Seconds(10));
}

}  // namespace loyalty::testing
