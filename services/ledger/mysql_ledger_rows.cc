#include "services/ledger/mysql_ledger_rows.h"

#include "common/db/sql_values.h"

namespace loyalty::ledger::store_internal {

using db::ParseSqlTime;
using db::Str;

std::string EncodeMetadata(const std::map<std::string, std::string>& m) {
  v1::Hold carrier;
  carrier.mutable_metadata()->insert(m.begin(), m.end());
  std::string out;
  carrier.SerializeToString(&out);
  return out;
}

std::map<std::string, std::string> DecodeMetadata(const std::string& bytes) {
  v1::Hold carrier;
  carrier.ParseFromString(bytes);
  return {carrier.metadata().begin(), carrier.metadata().end()};
}

AccountRow ReadAccount(sql::ResultSet& rs) {
  AccountRow a;
  a.account = Str(rs, 1);
  a.debits_posted = rs.getInt64(2);
  a.credits_posted = rs.getInt64(3);
  a.debits_pending = rs.getInt64(4);
  a.credits_pending = rs.getInt64(5);
  a.exists = true;
  return a;
}

LotRow ReadLot(sql::ResultSet& rs) {
  LotRow l;
  l.lot_id = Str(rs, 1);
  l.member_id = Str(rs, 2);
  l.issuer_partner_id = Str(rs, 3);
  l.source_transfer_id = Str(rs, 4);
  l.original_points = rs.getInt64(5);
  l.remaining_points = rs.getInt64(6);
  l.earned_at = ParseSqlTime(Str(rs, 7));
  l.expires_at = ParseSqlTime(Str(rs, 8));
  return l;
}

HoldRow ReadHold(sql::ResultSet& rs) {
  HoldRow h;
  h.hold_id = Str(rs, 1);
  h.member_id = Str(rs, 2);
  h.partner_id = Str(rs, 3);
  h.points = rs.getInt64(4);
  h.captured_points = rs.getInt64(5);
  h.state = static_cast<v1::HoldState>(rs.getInt(6));
  h.reference = Str(rs, 7);
  h.metadata = DecodeMetadata(Str(rs, 8));
  h.created_at = ParseSqlTime(Str(rs, 9));
  h.expires_at = ParseSqlTime(Str(rs, 10));
  if (!rs.isNull(11)) h.closed_at = ParseSqlTime(Str(rs, 11));
  h.hold_transfer_id = Str(rs, 12);
  h.closing_transfer_id = Str(rs, 13);
  return h;
}

absl::StatusOr<v1::Transfer> ReadTransferBody(sql::ResultSet& rs, int first_column) {
  v1::Transfer t;
  if (!t.ParseFromString(Str(rs, first_column))) return absl::DataLossError("unreadable transfer body");
  t.set_prev_hash(Str(rs, first_column + 1));
  t.set_hash(Str(rs, first_column + 2));
  return t;
}

}  // namespace loyalty::ledger::store_internal
