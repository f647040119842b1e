#pragma once
// Helpers for idempotent mutating RPCs.
//
// Contract (ARCHITECTURE.md, "Rules for every service"): every mutating
// request carries an idempotency key, scoped to the caller. The same key with
// the same request returns the original answer, a business failure included.
// The same key with a different request is ALREADY_EXISTS naming the field
// that differs. Services store the original request (to name that field),
// its fingerprint and the answer, permanently.

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace loyalty::idempotency {

inline constexpr size_t kMaxKeyLength = 128;

// INVALID_ARGUMENT naming `idempotency_key` when the key is empty, longer
// than kMaxKeyLength, or contains characters outside [A-Za-z0-9._:-].
absl::Status ValidateKey(absl::string_view key);

// SHA-256 (hex) of the deterministic serialization of `request`.
std::string Fingerprint(const google::protobuf::Message& request);

// The path of the first field that differs between two messages of the same
// type ("amount.amount_minor", "lines[1].category"), or "" when equal.
std::string FirstDifferingField(const google::protobuf::Message& original,
                                const google::protobuf::Message& retried);

// The ALREADY_EXISTS status for a reused key.
absl::Status KeyReusedError(absl::string_view key, absl::string_view field);

// A stored outcome met again: OK when the new call under the same key is the
// same method with the same request (by fingerprint), else ALREADY_EXISTS
// naming the first differing field (or "request" when `stored_request` is
// empty, e.g. wiped by an erasure).
absl::Status CheckSameRequest(absl::string_view key, absl::string_view stored_method,
                              absl::string_view stored_fingerprint, const std::string& stored_request,
                              absl::string_view method, absl::string_view fingerprint,
                              const google::protobuf::Message& request);

// The stored answer: the recorded refusal, or the recorded response parsed
// into `response` (INTERNAL when unreadable).
absl::Status StoredAnswer(int status_code, const std::string& status_message, const std::string& stored_response,
                          google::protobuf::Message& response);

// Both, for a record type with the fields method, fingerprint, request,
// status_code, status_message and response (each service's store row).
template <typename Stored>
absl::Status Replay(absl::string_view key, const Stored& stored, absl::string_view method,
                    absl::string_view fingerprint, const google::protobuf::Message& request,
                    google::protobuf::Message& response) {
  absl::Status same = CheckSameRequest(key, stored.method, stored.fingerprint, stored.request, method,
                                       fingerprint, request);
  if (!same.ok()) return same;
  return StoredAnswer(stored.status_code, stored.status_message, stored.response, response);
}

// Statuses worth remembering under a key: answers the business gave
// (OK, INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, ...). Transient ones
// (UNAVAILABLE, ABORTED, INTERNAL, DEADLINE_EXCEEDED...) are not stored, so a
// retry can still succeed.
bool IsFinalOutcome(const absl::Status& status);

}  // namespace loyalty::idempotency
