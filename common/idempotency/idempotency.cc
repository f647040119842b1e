#include "common/idempotency/idempotency.h"

#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/sha256.h"
#include "common/log/log.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/message_differencer.h"

namespace loyalty::idempotency {
namespace {

using google::protobuf::util::MessageDifferencer;

// Records the first difference as a field path.
class FirstDifference final : public MessageDifferencer::Reporter {
 public:
  void ReportAdded(const google::protobuf::Message&, const google::protobuf::Message&,
                   const std::vector<MessageDifferencer::SpecificField>& path) override {
    Record(path);
  }
  void ReportDeleted(const google::protobuf::Message&, const google::protobuf::Message&,
                     const std::vector<MessageDifferencer::SpecificField>& path) override {
    Record(path);
  }
  void ReportModified(const google::protobuf::Message&, const google::protobuf::Message&,
                      const std::vector<MessageDifferencer::SpecificField>& path) override {
    Record(path);
  }
  const std::string& field() const { return field_; }

 private:
  void Record(const std::vector<MessageDifferencer::SpecificField>& path) {
    if (!field_.empty()) return;
    for (const auto& part : path) {
      if (!field_.empty()) field_.push_back('.');
      field_.append(part.field != nullptr ? part.field->name() : "?");
      if (part.field != nullptr && part.field->is_repeated() && part.index >= 0) {
        absl::StrAppend(&field_, "[", part.index, "]");
      }
    }
  }
  std::string field_;
};

}  // namespace

absl::Status ValidateKey(absl::string_view key) {
  if (key.empty()) return absl::InvalidArgumentError("idempotency_key: required");
  if (key.size() > kMaxKeyLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("idempotency_key: longer than ", kMaxKeyLength, " characters"));
  }
  for (char c : key) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != ':' && c != '-') {
      return absl::InvalidArgumentError(
          "idempotency_key: only letters, digits and . _ : - are allowed");
    }
  }
  return absl::OkStatus();
}

std::string Fingerprint(const google::protobuf::Message& request) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream out(&bytes);
    google::protobuf::io::CodedOutputStream coded(&out);
    coded.SetSerializationDeterministic(true);
    request.SerializeToCodedStream(&coded);
  }
  return crypto::Sha256Hex(bytes);
}

std::string FirstDifferingField(const google::protobuf::Message& original,
                                const google::protobuf::Message& retried) {
  FirstDifference reporter;
  MessageDifferencer differencer;
  differencer.ReportDifferencesTo(&reporter);
  if (differencer.Compare(original, retried)) return "";
  return reporter.field().empty() ? std::string("request") : reporter.field();
}

absl::Status KeyReusedError(absl::string_view key, absl::string_view field) {
  return absl::AlreadyExistsError(absl::StrCat("idempotency_key '", key,
                                               "' was already used with a different request (",
                                               field, " differs)"));
}

absl::Status CheckSameRequest(absl::string_view key, absl::string_view stored_method,
                              absl::string_view stored_fingerprint, const std::string& stored_request,
                              absl::string_view method, absl::string_view fingerprint,
                              const google::protobuf::Message& request) {
  if (stored_method != method) return KeyReusedError(key, "method");
  if (stored_fingerprint == fingerprint) return absl::OkStatus();
  std::string field;
  if (!stored_request.empty()) {
    std::unique_ptr<google::protobuf::Message> original(request.New());
    if (original->ParseFromString(stored_request)) field = FirstDifferingField(*original, request);
  }
  return KeyReusedError(key, field.empty() ? "request" : field);
}

absl::Status StoredAnswer(int status_code, const std::string& status_message, const std::string& stored_response,
                          google::protobuf::Message& response) {
  if (status_code != 0) return absl::Status(static_cast<absl::StatusCode>(status_code), status_message);
  if (!response.ParseFromString(stored_response)) return absl::InternalError("stored response unreadable");
  return absl::OkStatus();
}

absl::Status RefusalNotRecorded(const absl::Status& refusal, const absl::Status& failure) {
  if (!absl::IsUnavailable(failure) && !absl::IsAborted(failure) && !absl::IsDeadlineExceeded(failure)) {
    log::Error("idempotency_record_failed", {{"refusal", absl::StatusCodeToString(refusal.code())},
                                             {"error", failure.ToString()}});
    return refusal;
  }
  return absl::UnavailableError(absl::StrCat(absl::StatusCodeToString(refusal.code()), " (", refusal.message(),
                                             ") could not be recorded under the idempotency key (",
                                             absl::StatusCodeToString(failure.code()),
                                             "); retry with the same key"));
}

bool IsFinalOutcome(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kResourceExhausted:
      return false;
    default:
      return true;
  }
}

bool ShouldRemember(const absl::Status& status) {
  return IsFinalOutcome(status) && !absl::IsInvalidArgument(status) && !absl::IsPermissionDenied(status) &&
         !absl::IsUnauthenticated(status);
}

}  // namespace loyalty::idempotency
