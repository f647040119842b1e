#pragma once
// Runs a service binary as a child process for end-to-end tests, on a free
// loopback port, and waits until its gRPC health check answers SERVING.

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace loyalty::testing {

// A TCP port on 127.0.0.1 that was free a moment ago.
int PickFreePort();

// SERVING -> OK; NOT_SERVING -> UNAVAILABLE; transport errors as they come.
absl::Status CheckServing(const std::string& address, const std::string& service,
                          absl::Duration timeout);

// Calls `method` ("/loyalty.ledger.v1.LedgerService/Earn") with the
// serialized `request`, whatever the RPC's shape: responses are read and
// dropped until the call ends or `deadline` passes. Sends
// `authorization: Bearer <api_key>` unless `api_key` is empty. Returns the
// call's final status (the gRPC code as an absl code, message as is).
absl::Status CallRaw(const std::string& address, const std::string& method,
                     const std::string& request, const std::string& api_key,
                     absl::Duration deadline);

class ServiceProcess {
 public:
  using EnvVars = std::vector<std::pair<std::string, std::string>>;

  // Starts `binary args... --listen=127.0.0.1:<port>` with `env` added to
  // this process's environment (args may hold --listen=127.0.0.1:PORT, for
  // a port chosen in advance with PickFreePort). Its stderr goes to a log file (see log_path).
  // `ready` says when the process serves (default: CheckServing over a
  // plaintext channel); a TLS server needs a check that speaks TLS.
  using ReadyCheck = std::function<absl::Status(const std::string& address)>;
  static absl::StatusOr<std::unique_ptr<ServiceProcess>> Start(
      const std::string& binary, const std::vector<std::string>& args, const EnvVars& env,
      absl::Duration ready_timeout = absl::Seconds(60), ReadyCheck ready = nullptr);
  // Stops the process (SIGTERM, then SIGKILL after a while) if still running.
  ~ServiceProcess();

  int port() const { return port_; }
  std::string address() const;
  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }
  // The last `max_bytes` of the log, for failure messages.
  std::string LogTail(size_t max_bytes = 4000) const;

  // SIGTERM, then waits up to `timeout`. OK when the process exited with 0.
  absl::Status Stop(absl::Duration timeout = absl::Seconds(30));
  // SIGKILL, no grace.
  void Kill();

 private:
  ServiceProcess(pid_t pid, int port, std::string log_path)
      : pid_(pid), port_(port), log_path_(std::move(log_path)) {}
  absl::StatusOr<int> WaitExit(absl::Duration timeout);

  pid_t pid_;
  int port_;
  std::string log_path_;
  bool exited_ = false;
};

}  // namespace loyalty::testing
