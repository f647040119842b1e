#pragma once
// Internal to the MySQL ledger store (mysql_ledger_store.cc and the batch,
// mysql_batch_state.h): reading the ledger's rows from result sets, in the
// column orders below, and the statements both the batch and the store run.
// Not part of the store's interface; nothing outside the store includes it.
//
// Thread safety: stateless functions.

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/ledger/ledger_state.h"

namespace loyalty::ledger::store_internal {

// Column lists shared by several statements, in the order ReadLot and
// ReadHold expect them.
#define LOYALTY_LOT_COLUMNS                                                       \
  "lot_id, member_id, issuer_partner_id, source_transfer_id, original_points, " \
  "remaining_points, earned_at, expires_at"
#define LOYALTY_HOLD_COLUMNS                                                                \
  "hold_id, member_id, partner_id, points, captured_points, state, reference, metadata, " \
  "created_at, expires_at, closed_at, hold_transfer_id, closing_transfer_id"

constexpr absl::string_view kSelectMemberPartnerForUpdate =
    "SELECT 1 FROM member_partners WHERE member_id = ? AND partner_id = ? FOR UPDATE";
constexpr absl::string_view kSelectMemberPartner =
    "SELECT 1 FROM member_partners WHERE member_id = ? AND partner_id = ?";

// account, debits_posted, credits_posted, debits_pending, credits_pending.
AccountRow ReadAccount(sql::ResultSet& rs);
// LOYALTY_LOT_COLUMNS.
LotRow ReadLot(sql::ResultSet& rs);
// LOYALTY_HOLD_COLUMNS.
HoldRow ReadHold(sql::ResultSet& rs);
// body, prev_hash, hash from `first_column` on -> the transfer with its
// hashes (DATA_LOSS when the body is unreadable).
absl::StatusOr<v1::Transfer> ReadTransferBody(sql::ResultSet& rs, int first_column);

// Serialises a string map as a small protobuf (a Hold's metadata).
std::string EncodeMetadata(const std::map<std::string, std::string>& m);
std::map<std::string, std::string> DecodeMetadata(const std::string& bytes);

// Whether member_partners holds (member, partner); `conn` is a transaction
// or a pooled connection, `statement` kSelectMemberPartner[ForUpdate].
template <typename Conn>
bool EarnedAt(Conn& conn, absl::string_view statement, const std::string& member_id,
              const std::string& partner_id) {
  sql::PreparedStatement& stmt = conn.Prepare(statement);
  stmt.setString(1, member_id);
  stmt.setString(2, partner_id);
  std::unique_ptr<sql::ResultSet> rs(stmt.executeQuery());
  return rs->next();
}

}  // namespace loyalty::ledger::store_internal
