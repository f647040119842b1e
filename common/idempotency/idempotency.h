#pragma once
// Helpers for idempotent mutating RPCs.
//
// Contract (ARCHITECTURE.md, "Rules for every service"): every mutating
// request carries an idempotency key, scoped to the caller. The same key with
// the same request returns the original answer, a business failure included.
// The same key with a different request is ALREADY_EXISTS naming the field
// that differs. Services store the original request (to name that field),
// its fingerprint and the answer, permanently.

#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/status/status_macros.h"
#include "google/protobuf/message.h"

namespace loyalty::idempotency {

inline constexpr size_t kMaxKeyLength = 128;

// What a service stores under a key (catalog and settlement; membership's
// records carry more). See common/db/idempotency_rows.h for the table.
struct Record {
  std::string scope;        // "key:<key_id>"
  std::string key;
  std::string method;
  std::string fingerprint;
  std::string request;      // serialized request (names the differing field)
  int status_code = 0;      // absl::StatusCode; 0 = OK
  std::string status_message;
  std::string response;     // serialized response when OK
};

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

// The one rule, in every service, for which answers are stored under a key:
// final outcomes (IsFinalOutcome) except INVALID_ARGUMENT, PERMISSION_DENIED
// and UNAUTHENTICATED, so that a caller can correct the request or its
// credential and reuse the key (resending the same bad request gets the same
// refusal anyway). A service that must leave out more (the ledger: a refusal
// for a state expected to change soon, such as a prepaid partner out of
// blocks) checks that in addition, at the one place it stores answers.
bool ShouldRemember(const absl::Status& status);

// The answer when a refusal (`refusal`) could not be stored under its key
// (`failure`). A refusal is only final once it is durable, like any other
// answer: when the store failed for a passing reason (UNAVAILABLE, ABORTED,
// DEADLINE_EXCEEDED), UNAVAILABLE, so that the caller retries with the same
// key. A failure that would recur on every retry (a bug) gives the refusal
// itself, logged, rather than UNAVAILABLE for ever.
absl::Status RefusalNotRecorded(const absl::Status& refusal, const absl::Status& failure);

// What a service adds to RunOnce, when its records carry more than Record's
// fields (membership: the member a record concerns, so that an erasure can
// wipe it, and the member id a duplicate names). Both are optional.
template <typename StoredRecord>
struct RunOnceHooks {
  // Called on every record before it is saved, with the outcome it records
  // (OK, or the refusal being remembered).
  std::function<void(StoredRecord&, const absl::Status& outcome)> annotate;
  // Turns a record found under the key into this call's answer (filling
  // `response` when OK); `claim` is this call's (scope, key, method,
  // fingerprint, request). Default: Replay().
  std::function<absl::Status(const StoredRecord& stored, const StoredRecord& claim,
                             google::protobuf::Message& response)>
      replay;
};

// The one idempotency mechanism of the services' mutating calls: runs a call
// once per (scope, key), for a store with
//   absl::Status Run(absl::string_view context, fn(Tx&))        one transaction
// whose Tx has
//   absl::StatusOr<std::optional<Record>> ClaimKey(const Record&)  claims the
//       key, or returns the record already under it
//   absl::Status SaveOutcome(const Record&)
// and a Record as Replay() wants, plus scope and key. `body` runs in the
// claiming transaction, and the answer is saved in it. A refusal that
// ShouldRemember() keeps is stored in a second transaction (the body's writes
// were rolled back), unless a concurrent request with the key got there
// first; then that one's answer is returned. Transient failures are returned
// and not stored. A refusal that cannot be stored is UNAVAILABLE
// (RefusalNotRecorded). (The ledger records its answers in its group-commit
// batch instead, with the same rule: ledger_engine.cc.)
template <typename Tx, typename Record, typename Store, typename Response>
absl::StatusOr<Response> RunOnce(Store& store, absl::string_view method, const std::string& scope,
                                 const std::string& key, const google::protobuf::Message& request,
                                 const std::function<absl::Status(Tx&, Response&)>& body,
                                 const RunOnceHooks<Record>& hooks = {}) {
  RETURN_IF_ERROR(ValidateKey(key));
  Record claim;
  claim.scope = scope;
  claim.key = key;
  claim.method = std::string(method);
  claim.fingerprint = Fingerprint(request);
  request.SerializeToString(&claim.request);

  Response response;
  std::optional<absl::Status> replayed;  // set when a stored answer was found
  auto replay = [&](const Record& stored) -> absl::Status {
    if (hooks.replay) return hooks.replay(stored, claim, response);
    return Replay(key, stored, claim.method, claim.fingerprint, request, response);
  };
  auto run_claimed = [&](const std::function<absl::Status(Tx&)>& fresh) {
    return store.Run(method, [&](Tx& tx) -> absl::Status {
      response.Clear();
      replayed.reset();
      ASSIGN_OR_RETURN(std::optional<Record> existing, tx.ClaimKey(claim));
      if (existing.has_value()) {
        replayed = replay(*existing);
        return absl::OkStatus();
      }
      return fresh(tx);
    });
  };
  auto answer = [&](const absl::Status& status) -> absl::StatusOr<Response> {
    if (replayed.has_value()) {
      if (!replayed->ok()) return *replayed;
      return response;
    }
    if (!status.ok()) return status;
    return response;
  };

  absl::Status status = run_claimed([&](Tx& tx) -> absl::Status {
    RETURN_IF_ERROR(body(tx, response));
    Record done = claim;
    response.SerializeToString(&done.response);
    if (hooks.annotate) hooks.annotate(done, absl::OkStatus());
    return tx.SaveOutcome(done);
  });
  if (replayed.has_value() || status.ok() || !ShouldRemember(status)) return answer(status);

  Record failed = claim;
  failed.status_code = static_cast<int>(status.code());
  failed.status_message = std::string(status.message());
  if (hooks.annotate) hooks.annotate(failed, status);
  absl::Status stored = run_claimed([&](Tx& tx) { return tx.SaveOutcome(failed); });
  if (!stored.ok() && !replayed.has_value()) return RefusalNotRecorded(status, stored);
  return answer(status);
}

}  // namespace loyalty::idempotency
