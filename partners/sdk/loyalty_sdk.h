#pragma once
// The partner SDK: what a merchant's developer links against to call the
// platform from a till or a web shop.
//
//   loyalty::sdk::ClientOptions options;
//   options.target = "loyalty.example:7102";
//   options.api_key = std::getenv("LOYALTY_API_KEY");
//   loyalty::sdk::LedgerClient ledger(options);
//   loyalty::ledger::v1::EarnRequest earn;            // no idempotency key:
//   earn.set_partner_id("vet-clinic");                // the SDK makes one
//   ...
//   auto result = ledger.Earn(earn);
//   if (!result.ok()) {
//     if (result.error().retryable()) { /* try later with result.idempotency_key() */ }
//     std::cerr << result.error().ToString() << "\n";
//   }
//
// Every call:
// - carries the API key (`authorization: Bearer ...`) and a deadline;
// - is retried on UNAVAILABLE and ABORTED, with exponential backoff and full
//   jitter, up to `max_attempts`;
// - when it changes something, carries an idempotency key: the caller's, or
//   one the SDK generates once and sends on every attempt, so a retry can
//   never post twice. The key used is in the result: keep it with the
//   receipt to retry after a crash. A mutating call is never sent without a
//   key;
// - ends in a Result: the response, or an Error with a code, the gRPC status,
//   the message and, for INVALID_ARGUMENT, the request field at fault.
//
// Thread safety: a client is safe to use from many threads.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/security/credentials.h"
#include "loyalty/catalog/v1/catalog.grpc.pb.h"
#include "loyalty/ledger/v1/ledger.grpc.pb.h"
#include "loyalty/membership/v1/membership.grpc.pb.h"

namespace loyalty::sdk {

struct ClientOptions {
  std::string target;   // "host:port"
  std::string api_key;  // secret; never logged by the SDK
  // Plaintext when null (development on one machine); use
  // grpc::SslCredentials for TLS, with a client certificate for mutual TLS.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  absl::Duration deadline = absl::Seconds(5);  // per attempt
  int max_attempts = 4;                        // 1 = no retries
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(2);
  // How the SDK waits between attempts (tests replace it).
  std::function<void(absl::Duration)> sleep = [](absl::Duration d) { absl::SleepFor(d); };
};

enum class ErrorCode {
  kInvalidArgument,   // the request is wrong; `field` names the culprit
  kNotFound,          // no such member, hold, transfer, reward...
  kAlreadyExists,     // e.g. the idempotency key was used for another request
  kRejected,          // a business rule said no (FAILED_PRECONDITION)
  kUnauthenticated,   // missing, unknown or revoked API key
  kPermissionDenied,  // the key may not do this, or not for this partner
  kRateLimited,       // RESOURCE_EXHAUSTED: slow down, retry later
  kUnavailable,       // the platform could not be reached (after retries)
  kDeadlineExceeded,  // no answer in time: the outcome is unknown, retry with the same key
  kInternal,          // anything else; report it
};

const char* ErrorCodeName(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  grpc::StatusCode grpc_code = grpc::StatusCode::UNKNOWN;
  std::string message;
  std::string field;  // INVALID_ARGUMENT only, when the message names one
  int attempts = 0;

  // Worth retrying later with the same idempotency key.
  bool retryable() const;
  // "REJECTED (FAILED_PRECONDITION): not enough points ..."
  std::string ToString() const;
};

// Maps a gRPC status (not OK) to an Error.
Error ErrorFromStatus(const grpc::Status& status, int attempts);

template <typename T>
class Result {
 public:
  Result(T value, std::string key) : value_(std::move(value)), key_(std::move(key)) {}
  Result(Error error, std::string key) : value_(std::move(error)), key_(std::move(key)) {}

  bool ok() const { return std::holds_alternative<T>(value_); }
  // REQUIRES: ok().
  const T& value() const { return std::get<T>(value_); }
  const T* operator->() const { return &value(); }
  // REQUIRES: !ok().
  const Error& error() const { return std::get<Error>(value_); }
  // The idempotency key the call was sent with; empty for queries.
  const std::string& idempotency_key() const { return key_; }

 private:
  std::variant<T, Error> value_;
  std::string key_;
};

// A fresh idempotency key: "sdk-" and 26 Crockford base32 characters (130
// random bits).
std::string NewIdempotencyKey();

namespace internal {

// The retry, deadline and credential engine shared by the clients.
class Caller {
 public:
  explicit Caller(ClientOptions options);

  std::shared_ptr<grpc::Channel> channel() const { return channel_; }

  template <typename Stub, typename Req, typename Resp>
  Result<Resp> Unary(Stub& stub, grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                     Req request) const {
    std::string key;
    if constexpr (requires { request.mutable_idempotency_key(); }) {
      if (request.idempotency_key().empty()) request.set_idempotency_key(NewIdempotencyKey());
      key = request.idempotency_key();
    }
    Resp response;
    grpc::Status status;
    int attempt = 0;
    while (true) {
      ++attempt;
      response.Clear();
      grpc::ClientContext ctx;
      Prepare(ctx);
      status = (stub.*method)(&ctx, request, &response);
      if (status.ok()) return Result<Resp>(std::move(response), key);
      if (!ShouldRetry(status, attempt)) break;
      options_.sleep(Backoff(attempt));
    }
    return Result<Resp>(ErrorFromStatus(status, attempt), key);
  }

 private:
  void Prepare(grpc::ClientContext& ctx) const;
  bool ShouldRetry(const grpc::Status& status, int attempt) const;
  absl::Duration Backoff(int attempt) const;

  ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
};

}  // namespace internal

// The ledger: earn, holds at the till, returns, balances.
class LedgerClient {
 public:
  explicit LedgerClient(ClientOptions options);

  Result<ledger::v1::EarnResponse> Earn(ledger::v1::EarnRequest request) const;
  Result<ledger::v1::QuoteEarnResponse> QuoteEarn(ledger::v1::QuoteEarnRequest request) const;
  Result<ledger::v1::AuthorizeResponse> Authorize(ledger::v1::AuthorizeRequest request) const;
  Result<ledger::v1::CaptureResponse> Capture(ledger::v1::CaptureRequest request) const;
  Result<ledger::v1::VoidResponse> Void(ledger::v1::VoidRequest request) const;
  Result<ledger::v1::ReverseResponse> Reverse(ledger::v1::ReverseRequest request) const;
  Result<ledger::v1::GetBalanceResponse> GetBalance(const std::string& member_id) const;
  Result<ledger::v1::GetTransferResponse> GetTransfer(const std::string& transfer_id) const;

 private:
  internal::Caller caller_;
  std::unique_ptr<ledger::v1::LedgerService::Stub> stub_;
};

// Membership: look members up at the till, enrol them.
class MembershipClient {
 public:
  explicit MembershipClient(ClientOptions options);

  Result<membership::v1::LookupMemberResponse> LookupByCard(const std::string& card_number) const;
  Result<membership::v1::LookupMemberResponse> LookupByEmail(const std::string& email) const;
  Result<membership::v1::LookupMemberResponse> LookupByPhone(const std::string& phone) const;
  Result<membership::v1::EnrolResponse> Enrol(membership::v1::EnrolRequest request) const;
  Result<membership::v1::GetMemberResponse> GetMember(const std::string& member_id) const;

 private:
  internal::Caller caller_;
  std::unique_ptr<membership::v1::MembershipService::Stub> stub_;
};

// Catalog: rewards for points, vouchers, coupons, earn quotes.
class CatalogClient {
 public:
  explicit CatalogClient(ClientOptions options);

  Result<catalog::v1::ListRedeemableRewardsResponse> ListRedeemableRewards(
      catalog::v1::ListRedeemableRewardsRequest request) const;
  Result<catalog::v1::RedeemResponse> Redeem(catalog::v1::RedeemRequest request) const;
  Result<catalog::v1::HonourVoucherResponse> HonourVoucher(catalog::v1::HonourVoucherRequest request) const;
  Result<catalog::v1::CancelVoucherResponse> CancelVoucher(catalog::v1::CancelVoucherRequest request) const;
  Result<catalog::v1::GetVoucherResponse> GetVoucher(const std::string& code) const;
  Result<catalog::v1::QuoteEarnResponse> QuoteEarn(catalog::v1::QuoteEarnRequest request) const;

 private:
  internal::Caller caller_;
  std::unique_ptr<catalog::v1::CatalogService::Stub> stub_;
};

}  // namespace loyalty::sdk
