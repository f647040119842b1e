// loyalty-healthcheck HOST:PORT [SERVICE] [--timeout_ms=N]
// Exits 0 when the gRPC health check answers SERVING, 1 otherwise.
#include <cstdio>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "common/testing/service_process.h"

int main(int argc, char** argv) {
  std::string address;
  std::string service;
  int timeout_ms = 2000;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (absl::StartsWith(arg, "--timeout_ms=")) {
      if (!absl::SimpleAtoi(arg.substr(13), &timeout_ms)) {
        std::fprintf(stderr, "loyalty-healthcheck: bad --timeout_ms\n");
        return 2;
      }
    } else if (address.empty()) {
      address = std::string(arg);
    } else {
      service = std::string(arg);
    }
  }
  if (address.empty()) {
    std::fprintf(stderr, "usage: loyalty-healthcheck HOST:PORT [SERVICE] [--timeout_ms=N]\n");
    return 2;
  }
  absl::Status status =
      loyalty::testing::CheckServing(address, service, absl::Milliseconds(timeout_ms));
  if (!status.ok()) {
    std::fprintf(stderr, "%s: %s\n", address.c_str(), status.ToString().c_str());
    return 1;
  }
  std::printf("%s: SERVING\n", address.c_str());
  return 0;
}
