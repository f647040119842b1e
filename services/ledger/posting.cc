#include "services/ledger/posting.h"

#include <algorithm>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "common/validation/text.h"
#include "services/ledger/account_names.h"

namespace loyalty::ledger {

absl::Status ValidatePoints(absl::string_view field, int64_t points) {
  if (points <= 0) return absl::InvalidArgumentError(absl::StrCat(field, ": must be positive"));
  if (points > kMaxPointsPerTransfer) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": at most ", kMaxPointsPerTransfer));
  }
  return absl::OkStatus();
}

absl::Status NotEnoughPoints(int64_t available, int64_t requested) {
  return absl::FailedPreconditionError(absl::StrCat(
      "not enough points: available ", available, ", requested ", requested));
}

void Post(AccountRow& from, AccountRow& to, int64_t points) {
  from.debits_posted += points;
  to.credits_posted += points;
  from.dirty = to.dirty = true;
}

absl::Status ConsumeLots(BatchState& state, const std::string& member_id, int64_t points,
                         v1::Transfer& transfer) {
  ASSIGN_OR_RETURN(std::vector<LotRow*> lots, state.OpenLots(member_id));
  int64_t left = points;
  for (LotRow* lot : lots) {
    if (left == 0) break;
    const int64_t take = std::min(left, lot->remaining_points);
    if (take <= 0) continue;
    lot->remaining_points -= take;
    lot->dirty = true;
    left -= take;
    v1::Allocation* a = transfer.add_allocations();
    a->set_lot_id(lot->lot_id);
    a->set_issuer_partner_id(lot->issuer_partner_id);
    a->set_points(take);
  }
  if (left != 0) {
    // The lots always add up to the posted balance; this is a broken
    // invariant, not a business refusal, so the whole batch fails.
    return absl::InternalError(absl::StrCat("lots of member ", member_id, " are short by ", left,
                                            " points"));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> LotsTotal(BatchState& state, const std::string& member_id) {
  ASSIGN_OR_RETURN(std::vector<LotRow*> lots, state.OpenLots(member_id));
  int64_t total = 0;
  for (const LotRow* lot : lots) total += lot->remaining_points;
  return total;
}

int64_t NetIssued(const AccountRow& issuance) { return issuance.debits_posted - issuance.credits_posted; }

std::string NewId(absl::string_view prefix) {
  static constexpr char kAlphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";  // Crockford base32
  thread_local std::mt19937_64 rng{std::random_device{}() ^
                                   (static_cast<uint64_t>(std::random_device{}()) << 32)};
  std::string id = absl::StrCat(prefix, "_");
  uint64_t hi = rng(), lo = rng();
  for (int i = 0; i < 26; ++i) {  // 130 bits of the 128 drawn, 5 at a time
    uint64_t& src = i < 13 ? hi : lo;
    id.push_back(kAlphabet[src & 31]);
    src >>= 5;
  }
  return id;
}

void BalanceToProto(const AccountRow& row, int64_t as_of_sequence, v1::AccountBalance* out) {
  out->set_account(row.account);
  out->set_credits_posted(row.credits_posted);
  out->set_debits_posted(row.debits_posted);
  out->set_credits_pending(row.credits_pending);
  out->set_debits_pending(row.debits_pending);
  out->set_posted_points(row.posted());
  out->set_pending_points(row.debits_pending);  // points held by open holds
  out->set_available_points(row.available());
  out->set_as_of_sequence(as_of_sequence);
}

void AccountToProto(const AccountRow& row, int64_t as_of_sequence, v1::Account* out) {
  out->set_account(row.account);
  const v1::AccountKind kind = AccountKindOf(row.account);
  out->set_kind(kind);
  const std::string id = row.account.substr(AccountKindPrefix(kind).size());
  if (kind == v1::ACCOUNT_KIND_MEMBER) {
    out->set_member_id(id);
  } else if (IsPartnerAccountKind(kind)) {
    out->set_partner_id(id);
  }
  BalanceToProto(row, as_of_sequence, out->mutable_balance());
}

void LotToProto(const LotRow& lot, v1::Lot* out) {
  out->set_lot_id(lot.lot_id);
  out->set_member_id(lot.member_id);
  out->set_issuer_partner_id(lot.issuer_partner_id);
  out->set_source_transfer_id(lot.source_transfer_id);
  out->set_original_points(lot.original_points);
  out->set_remaining_points(lot.remaining_points);
  *out->mutable_earned_at() = ToProtoTime(lot.earned_at);
  *out->mutable_expires_at() = ToProtoTime(lot.expires_at);
}

void HoldToProto(const HoldRow& hold, v1::Hold* out) {
  out->set_hold_id(hold.hold_id);
  out->set_member_id(hold.member_id);
  out->set_partner_id(hold.partner_id);
  out->set_points(hold.points);
  out->set_captured_points(hold.captured_points);
  out->set_state(hold.state);
  *out->mutable_created_at() = ToProtoTime(hold.created_at);
  *out->mutable_expires_at() = ToProtoTime(hold.expires_at);
  if (hold.closed_at.has_value()) *out->mutable_closed_at() = ToProtoTime(*hold.closed_at);
  out->set_reference(hold.reference);
  out->set_hold_transfer_id(hold.hold_transfer_id);
  out->set_closing_transfer_id(hold.closing_transfer_id);
  out->mutable_metadata()->insert(hold.metadata.begin(), hold.metadata.end());
}

absl::Status ValidateMetadata(const google::protobuf::Map<std::string, std::string>& metadata) {
  if (metadata.size() > static_cast<size_t>(kMaxMetadataEntries)) {
    return absl::InvalidArgumentError(absl::StrCat("metadata: more than ", kMaxMetadataEntries, " entries"));
  }
  for (const auto& [k, v] : metadata) {
    bool key_ok = !k.empty() && k.size() <= kMaxMetadataKeyLength;
    for (char c : k) {
      key_ok = key_ok && (absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_' || c == '.' || c == '-');
    }
    if (!key_ok) {
      return absl::InvalidArgumentError(absl::StrCat("metadata: key '", absl::CHexEscape(k), "' must match [a-z0-9_.-]{1,",
                                                     kMaxMetadataKeyLength, "}"));
    }
    RETURN_IF_ERROR(ValidateText(absl::StrCat("metadata[", k, "]"), v, 0, kMaxMetadataValueLength));
  }
  return absl::OkStatus();
}

}  // namespace loyalty::ledger
