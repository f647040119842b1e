#include "partners/sdk/loyalty_sdk.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/random.h"
#include "common/rpc/client_call.h"
#include "grpcpp/create_channel.h"

namespace loyalty::sdk {
namespace {

ErrorCode CodeOf(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
      return ErrorCode::kInvalidArgument;
    case grpc::StatusCode::NOT_FOUND:
      return ErrorCode::kNotFound;
    case grpc::StatusCode::ALREADY_EXISTS:
      return ErrorCode::kAlreadyExists;
    case grpc::StatusCode::FAILED_PRECONDITION:
      return ErrorCode::kRejected;
    case grpc::StatusCode::UNAUTHENTICATED:
      return ErrorCode::kUnauthenticated;
    case grpc::StatusCode::PERMISSION_DENIED:
      return ErrorCode::kPermissionDenied;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return ErrorCode::kRateLimited;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::ABORTED:
      return ErrorCode::kUnavailable;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return ErrorCode::kDeadlineExceeded;
    default:
      return ErrorCode::kInternal;
  }
}

// The platform's INVALID_ARGUMENT messages start with the field path:
// "amount.amount_minor: must be positive", "lines[2].category: ...".
std::string FieldOf(const std::string& message) {
  const size_t colon = message.find(':');
  if (colon == std::string::npos || colon == 0) return "";
  for (char c : message.substr(0, colon)) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '[' && c != ']') {
      return "";
    }
  }
  return message.substr(0, colon);
}

}  // namespace

const char* ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return "INVALID_ARGUMENT";
    case ErrorCode::kNotFound: return "NOT_FOUND";
    case ErrorCode::kAlreadyExists: return "ALREADY_EXISTS";
    case ErrorCode::kRejected: return "REJECTED";
    case ErrorCode::kUnauthenticated: return "UNAUTHENTICATED";
    case ErrorCode::kPermissionDenied: return "PERMISSION_DENIED";
    case ErrorCode::kRateLimited: return "RATE_LIMITED";
    case ErrorCode::kUnavailable: return "UNAVAILABLE";
    case ErrorCode::kDeadlineExceeded: return "DEADLINE_EXCEEDED";
    case ErrorCode::kInternal: return "INTERNAL";
  }
  return "INTERNAL";
}

bool Error::retryable() const {
  return code == ErrorCode::kUnavailable || code == ErrorCode::kRateLimited ||
         code == ErrorCode::kDeadlineExceeded;
}

std::string Error::ToString() const {
  std::string out = absl::StrCat(ErrorCodeName(code), ": ", message);
  if (attempts > 1) absl::StrAppend(&out, " (after ", attempts, " attempts)");
  return out;
}

Error ErrorFromStatus(const grpc::Status& status, int attempts) {
  Error e;
  e.grpc_code = status.error_code();
  e.code = CodeOf(status.error_code());
  e.message = status.error_message();
  if (e.code == ErrorCode::kInvalidArgument) e.field = FieldOf(e.message);
  e.attempts = attempts;
  return e;
}

std::string NewIdempotencyKey() { return absl::StrCat("sdk-", crypto::RandomString(crypto::kCrockfordBase32, 26)); }

namespace internal {

Caller::Caller(ClientOptions options)
    : options_(std::move(options)),
      channel_(grpc::CreateChannel(options_.target, options_.credentials != nullptr
                                                        ? options_.credentials
                                                        : grpc::InsecureChannelCredentials())) {}

void Caller::Prepare(grpc::ClientContext& ctx) const {
  rpc::CallOptions call;
  call.api_key = options_.api_key;
  call.deadline = options_.deadline;
  rpc::Prepare(ctx, call);
}

// UNAVAILABLE (not reached, or the platform's database is down) and ABORTED
// (a conflict the platform asks to retry) are retried. Every mutating call
// carries its idempotency key, so a retry of one that did commit gets the
// original answer. DEADLINE_EXCEEDED is not retried here: the caller decides,
// with the key in the result.
bool Caller::ShouldRetry(const grpc::Status& status, int attempt) const {
  if (attempt >= options_.max_attempts) return false;
  return status.error_code() == grpc::StatusCode::UNAVAILABLE ||
         status.error_code() == grpc::StatusCode::ABORTED;
}

// Full jitter: uniform in [0, min(max_backoff, initial * 2^(attempt-1))].
absl::Duration Caller::Backoff(int attempt) const {
  absl::Duration cap = options_.initial_backoff;
  for (int i = 1; i < attempt && cap < options_.max_backoff; ++i) cap *= 2;
  cap = std::min(cap, options_.max_backoff);
  const int64_t cap_us = std::max<int64_t>(absl::ToInt64Microseconds(cap), 1);
  return absl::Microseconds(static_cast<int64_t>(crypto::RandomBelow(static_cast<uint64_t>(cap_us) + 1)));
}

}  // namespace internal

// ---------------------------------------------------------------- ledger

namespace lv1 = ::loyalty::ledger::v1;

LedgerClient::LedgerClient(ClientOptions options)
    : caller_(std::move(options)), stub_(lv1::LedgerService::NewStub(caller_.channel())) {}

Result<lv1::EarnResponse> LedgerClient::Earn(lv1::EarnRequest request) const {
  return caller_.Unary(*stub_, &lv1::LedgerService::Stub::Earn, std::move(request));
}
Result<lv1::QuoteEarnResponse> LedgerClient::QuoteEarn(lv1::QuoteEarnRequest request) const {
  return caller_.Unary(*stub_, &lv1::LedgerService::Stub::QuoteEarn, std::move(request));
}
Result<lv1::AuthorizeResponse> LedgerClient::Authorize(lv1::AuthorizeRequest request) const {
  return caller_.Unary(*stub_, &lv1::LedgerService::Stub::Authorize, std::move(request));
}
Result<lv1::CaptureResponse> LedgerClient::Capture(lv1::CaptureRequest request) const {
  return caller_.Unary(*stub_, &lv1::LedgerService::Stub::Capture, std::move(request));
}
Result<lv1::VoidResponse> LedgerClient::Void(lv1::VoidRequest request) const {
  return caller_.Unary(*stub_, &lv1::LedgerService::Stub::Void, std::move(request));
}
Result<lv1::ReverseResponse> LedgerClient::Reverse(lv1::ReverseRequest request) const {
  return caller_.Unary(*stub_, &lv1::LedgerService::Stub::Reverse, std::move(request));
}
Result<lv1::GetBalanceResponse> LedgerClient::GetBalance(const std::string& member_id) const {
  lv1::GetBalanceRequest request;
  request.set_member_id(member_id);
  return caller_.Unary(*stub_, &lv1::LedgerService::Stub::GetBalance, std::move(request));
}
Result<lv1::GetTransferResponse> LedgerClient::GetTransfer(const std::string& transfer_id) const {
  lv1::GetTransferRequest request;
  request.set_transfer_id(transfer_id);
  return caller_.Unary(*stub_, &lv1::LedgerService::Stub::GetTransfer, std::move(request));
}

// ---------------------------------------------------------------- membership

namespace mv1 = ::loyalty::membership::v1;

MembershipClient::MembershipClient(ClientOptions options)
    : caller_(std::move(options)), stub_(mv1::MembershipService::NewStub(caller_.channel())) {}

Result<mv1::LookupMemberResponse> MembershipClient::LookupByCard(const std::string& card_number) const {
  mv1::LookupMemberRequest request;
  request.set_card_number(card_number);
  return caller_.Unary(*stub_, &mv1::MembershipService::Stub::LookupMember, std::move(request));
}
Result<mv1::LookupMemberResponse> MembershipClient::LookupByEmail(const std::string& email) const {
  mv1::LookupMemberRequest request;
  request.set_email(email);
  return caller_.Unary(*stub_, &mv1::MembershipService::Stub::LookupMember, std::move(request));
}
Result<mv1::LookupMemberResponse> MembershipClient::LookupByPhone(const std::string& phone) const {
  mv1::LookupMemberRequest request;
  request.set_phone(phone);
  return caller_.Unary(*stub_, &mv1::MembershipService::Stub::LookupMember, std::move(request));
}
Result<mv1::EnrolResponse> MembershipClient::Enrol(mv1::EnrolRequest request) const {
  return caller_.Unary(*stub_, &mv1::MembershipService::Stub::Enrol, std::move(request));
}
Result<mv1::GetMemberResponse> MembershipClient::GetMember(const std::string& member_id) const {
  mv1::GetMemberRequest request;
  request.set_member_id(member_id);
  return caller_.Unary(*stub_, &mv1::MembershipService::Stub::GetMember, std::move(request));
}

// ---------------------------------------------------------------- catalog

namespace cv1 = ::loyalty::catalog::v1;

CatalogClient::CatalogClient(ClientOptions options)
    : caller_(std::move(options)), stub_(cv1::CatalogService::NewStub(caller_.channel())) {}

Result<cv1::ListRedeemableRewardsResponse> CatalogClient::ListRedeemableRewards(
    cv1::ListRedeemableRewardsRequest request) const {
  return caller_.Unary(*stub_, &cv1::CatalogService::Stub::ListRedeemableRewards, std::move(request));
}
Result<cv1::RedeemResponse> CatalogClient::Redeem(cv1::RedeemRequest request) const {
  return caller_.Unary(*stub_, &cv1::CatalogService::Stub::Redeem, std::move(request));
}
Result<cv1::HonourVoucherResponse> CatalogClient::HonourVoucher(cv1::HonourVoucherRequest request) const {
  return caller_.Unary(*stub_, &cv1::CatalogService::Stub::HonourVoucher, std::move(request));
}
Result<cv1::CancelVoucherResponse> CatalogClient::CancelVoucher(cv1::CancelVoucherRequest request) const {
  return caller_.Unary(*stub_, &cv1::CatalogService::Stub::CancelVoucher, std::move(request));
}
Result<cv1::GetVoucherResponse> CatalogClient::GetVoucher(const std::string& code) const {
  cv1::GetVoucherRequest request;
  request.set_voucher_code(code);
  return caller_.Unary(*stub_, &cv1::CatalogService::Stub::GetVoucher, std::move(request));
}
Result<cv1::QuoteEarnResponse> CatalogClient::QuoteEarn(cv1::QuoteEarnRequest request) const {
  return caller_.Unary(*stub_, &cv1::CatalogService::Stub::QuoteEarn, std::move(request));
}

}  // namespace loyalty::sdk
