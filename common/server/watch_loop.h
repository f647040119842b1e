#pragma once
// The one loop behind every server-streaming "watch" RPC (the ledger's
// StreamJournal, the catalog's WatchEarnRules): poll for news, send it as it
// comes, send a heartbeat when idle, end cleanly.
//
//   return server::RunWatch<v1::WatchResponse>(*context, *writer, options, &stop_,
//       "server shutting down; reconnect with the last version received",
//       [&]() -> absl::StatusOr<server::WatchPoll<v1::WatchResponse>> { ... });
//
// Each round calls `poll`:
//   - news: the message is sent, and the next poll follows at once;
//   - no news: the message (a heartbeat) is sent only when nothing was sent
//     for `heartbeat`; then the loop waits `poll_interval`;
//   - done: after the message is sent as above, the call ends OK;
//   - a failed poll ends the call with its status.
// The call ends CANCELLED when the client goes away, and UNAVAILABLE with
// `shutdown_message` once `stop` (may be null) is notified. One handler
// thread per open stream: the sync server's bounded pool caps them.

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/status/grpc_status.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/sync_stream.h"

namespace loyalty::server {

struct WatchOptions {
  absl::Duration poll_interval = absl::Seconds(1);
  absl::Duration heartbeat = absl::Seconds(30);
};

template <typename Message>
struct WatchPoll {
  Message message;     // the news, or the heartbeat to send when idle
  bool news = false;   // sent at once; polled again at once
  bool done = false;   // the watch reached its end: OK once the message is handled
};

template <typename Message>
grpc::Status RunWatch(grpc::ServerContext& context, grpc::ServerWriterInterface<Message>& writer,
                      const WatchOptions& options, const absl::Notification* stop,
                      const std::string& shutdown_message,
                      const std::function<absl::StatusOr<WatchPoll<Message>>()>& poll) {
  absl::Time last_sent = absl::Now();
  while (!context.IsCancelled()) {
    if (stop != nullptr && stop->HasBeenNotified()) {
      return ToGrpcStatus(absl::UnavailableError(shutdown_message));
    }
    absl::StatusOr<WatchPoll<Message>> round = poll();
    if (!round.ok()) return ToGrpcStatus(round.status());
    const absl::Time now = absl::Now();
    if (round->news || now - last_sent >= options.heartbeat) {
      if (!writer.Write(round->message)) break;  // the client went away
      last_sent = now;
    }
    if (round->done) return grpc::Status::OK;
    if (round->news) continue;
    if (stop != nullptr) {
      stop->WaitForNotificationWithTimeout(options.poll_interval);
    } else {
      absl::SleepFor(options.poll_interval);
    }
  }
  return grpc::Status(grpc::StatusCode::CANCELLED, "watch ended by the client");
}

}  // namespace loyalty::server
