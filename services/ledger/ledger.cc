#include "services/ledger/ledger.h"

#include <utility>
#include <variant>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/idempotency/idempotency.h"
#include "common/paging/page_token.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "common/validation/ids.h"
#include "common/validation/text.h"
#include "services/ledger/account_names.h"

namespace loyalty::ledger {
namespace {


int PageSize(int requested, int default_size, int max_size) {
  if (requested <= 0) return default_size;
  return std::min(requested, max_size);
}

absl::StatusOr<int64_t> ParseSequenceToken(const std::string& token) {
  if (token.empty()) return 0;
  int64_t seq = 0;
  if (!absl::StartsWith(token, "s") || !absl::SimpleAtoi(token.substr(1), &seq) || seq <= 0) {
    return absl::InvalidArgumentError("page_token: malformed");
  }
  return seq;
}

absl::Status ValidateEarnShape(const v1::EarnRequest& r) {
  RETURN_IF_ERROR(ValidateId("partner_id", r.partner_id()));
  RETURN_IF_ERROR(ValidateId("member_id", r.member_id()));
  if (!r.has_amount()) return absl::InvalidArgumentError("amount: required");
  // Required: a receipt earns once per partner, whatever key it comes with,
  // so a till that retries with a new key cannot earn twice.
  RETURN_IF_ERROR(ValidateText("receipt_reference", r.receipt_reference(), 1, kMaxReferenceLength));
  RETURN_IF_ERROR(ValidatePurchaseLines(r.lines()));
  return ValidateMetadata(r.metadata());
}

absl::Status PartnerAccountsOnly(const Caller& caller, absl::string_view field) {
  return absl::PermissionDeniedError(absl::StrCat(
      field, ": a partner reads only its own issuance, redemption and breakage accounts (", caller.partner_id, ")"));
}

// Purchases may be reported late, but not from the future or the distant past.
absl::StatusOr<absl::Time> OccurredAt(const google::protobuf::Timestamp* ts, bool has) {
  const absl::Time now = absl::Now();
  if (!has) return now;
  const absl::Time t = FromProtoTime(*ts);
  if (t > now + absl::Minutes(5)) return absl::InvalidArgumentError("occurred_at: in the future");
  if (t < now - absl::Hours(24 * 7)) {
    return absl::InvalidArgumentError("occurred_at: more than 7 days ago");
  }
  return t;
}

}  // namespace

template <typename Body>
absl::StatusOr<typename Body::Response> Ledger::Run(std::shared_ptr<Command> command) {
  RETURN_IF_ERROR(writer_.Execute(command));
  if (!command->status.ok()) return command->status;
  auto* response = std::get_if<typename Body::Response>(&command->response);
  if (response == nullptr) return absl::InternalError(absl::StrCat(Body::kMethod, " was answered with no response"));
  return std::move(*response);
}

template <typename Body>
absl::StatusOr<typename Body::Response> Ledger::Submit(const Caller& caller, Body body) {
  RETURN_IF_ERROR(idempotency::ValidateKey(body.request.idempotency_key()));
  auto command = std::make_shared<Command>();
  command->caller = caller;
  command->idempotency_key = body.request.idempotency_key();
  command->body = std::move(body);
  return Run<Body>(std::move(command));
}

template <typename Body>
absl::StatusOr<typename Body::Response> Ledger::RunHousekeeping(const std::string& principal, Body body) {
  auto command = std::make_shared<Command>();
  command->caller.principal = principal;
  command->record_idempotency = false;
  command->body = std::move(body);
  return Run<Body>(std::move(command));
}

absl::Status Ledger::CheckMemberIssued(const std::string& member_id) {
  RETURN_IF_ERROR(ValidateId("member_id", member_id));
  return members_.CheckIssued(*rules_.Current(), "member_id", member_id);
}

absl::StatusOr<v1::EarnResponse> Ledger::Earn(const Caller& caller, const v1::EarnRequest& request) {
  RETURN_IF_ERROR(ValidateEarnShape(request));
  RETURN_IF_ERROR(CheckOwnPartner(caller, "partner_id", request.partner_id()));
  RETURN_IF_ERROR(CheckRulesReady(*rules_.Current()));
  RETURN_IF_ERROR(CheckMemberIssued(request.member_id()));
  EarnCommand command;
  command.request = request;
  // Computed here, on the caller's thread, from the cached rules, so the
  // writer only posts. A refusal here still goes through the writer and is
  // recorded under the key, so that a replay of a stored key gets its
  // original answer (even past the occurred_at window).
  absl::StatusOr<absl::Time> at = OccurredAt(&request.occurred_at(), request.has_occurred_at());
  if (at.ok()) {
    RulesSnapshotPtr rules = rules_.Current();
    command.computed = ComputeEarn(*rules, request.partner_id(), request.member_id(), request.amount(),
                                   request.lines(), *at);
  } else {
    command.computed = at.status();
  }
  return Submit(caller, std::move(command));
}

absl::StatusOr<v1::QuoteEarnResponse> Ledger::QuoteEarn(const Caller& caller,
                                                        const v1::QuoteEarnRequest& request) {
  RETURN_IF_ERROR(ValidateId("partner_id", request.partner_id()));
  RETURN_IF_ERROR(CheckOwnPartner(caller, "partner_id", request.partner_id()));
  // No member: a member at the base tier, with no member-specific campaign.
  const bool anonymous = request.member_id().empty();
  ASSIGN_OR_RETURN(absl::Time at, OccurredAt(&request.occurred_at(), request.has_occurred_at()));
  RulesSnapshotPtr rules = rules_.Current();
  RETURN_IF_ERROR(CheckRulesReady(*rules));
  if (!anonymous) RETURN_IF_ERROR(CheckMemberIssued(request.member_id()));
  ASSIGN_OR_RETURN(EarnComputation comp, ComputeEarn(*rules, request.partner_id(), request.member_id(),
                                                     request.amount(), request.lines(), at));
  // As the writer would decide now; an earn may still differ (another earn
  // at the partner, or the budget running out, in between).
  if (HasFirstPurchaseBonus(comp)) {  // one primary-key read, only for such a campaign
    bool earned_before = true;  // anonymous: a first purchase is member-specific
    if (!anonymous) {
      ASSIGN_OR_RETURN(earned_before, store_.HasEarnedAt(request.member_id(), request.partner_id()));
    }
    if (earned_before) DropFirstPurchaseBonuses(comp);
  }
  DropUnfundedBonuses(*rules, comp);
  v1::QuoteEarnResponse response;
  response.set_points(comp.points);
  *response.mutable_breakdown() = comp.breakdown;
  return response;
}

absl::StatusOr<v1::AuthorizeResponse> Ledger::Authorize(const Caller& caller,
                                                        const v1::AuthorizeRequest& request) {
  RETURN_IF_ERROR(ValidateId("member_id", request.member_id()));
  RETURN_IF_ERROR(ValidateId("partner_id", request.partner_id()));
  RETURN_IF_ERROR(CheckOwnPartner(caller, "partner_id", request.partner_id()));
  RETURN_IF_ERROR(ValidateText("reference", request.reference(), 0, kMaxReferenceLength));
  RETURN_IF_ERROR(ValidateMetadata(request.metadata()));
  RETURN_IF_ERROR(CheckRulesReady(*rules_.Current()));
  return Submit(caller, AuthorizeCommand{.request = request});
}

absl::StatusOr<v1::CaptureResponse> Ledger::Capture(const Caller& caller, const v1::CaptureRequest& request) {
  // Capture checks the partner is still active, so it needs the rules too.
  RETURN_IF_ERROR(CheckRulesReady(*rules_.Current()));
  return Submit(caller, CaptureCommand{.request = request});
}

absl::StatusOr<v1::VoidResponse> Ledger::Void(const Caller& caller, const v1::VoidRequest& request) {
  return Submit(caller, VoidCommand{.request = request});
}

absl::StatusOr<v1::ReverseResponse> Ledger::Reverse(const Caller& caller, const v1::ReverseRequest& request) {
  return Submit(caller, ReverseCommand{.request = request});
}

absl::StatusOr<v1::AdjustResponse> Ledger::Adjust(const Caller& caller, const v1::AdjustRequest& request) {
  // A partner-funded credit needs the partner's status and prepaid blocks.
  RETURN_IF_ERROR(CheckRulesReady(*rules_.Current()));
  if (request.direction() == v1::ADJUST_DIRECTION_CREDIT) RETURN_IF_ERROR(CheckMemberIssued(request.member_id()));
  return Submit(caller, AdjustCommand{.request = request});
}

absl::StatusOr<v1::GrantBonusResponse> Ledger::GrantBonus(const Caller& caller,
                                                          const v1::GrantBonusRequest& request) {
  // A bonus checks the member's status and the funding partner's.
  RETURN_IF_ERROR(CheckRulesReady(*rules_.Current()));
  RETURN_IF_ERROR(CheckMemberIssued(request.member_id()));
  return Submit(caller, GrantBonusCommand{.request = request});
}

absl::StatusOr<v1::RunExpiryResponse> Ledger::RunExpiry(const Caller& caller,
                                                        const v1::RunExpiryRequest& request) {
  return Submit(caller, RunExpiryCommand{.request = request});
}

absl::StatusOr<v1::RunHoldExpiryResponse> Ledger::RunHoldExpiry(
    const Caller& caller, const v1::RunHoldExpiryRequest& request) {
  return Submit(caller, RunHoldExpiryCommand{.request = request});
}

absl::StatusOr<v1::RunHoldExpiryResponse> Ledger::SweepExpiredHolds(int max_holds) {
  v1::RunHoldExpiryRequest request;
  request.set_max_holds(max_holds);
  return RunHousekeeping("system:sweeper", RunHoldExpiryCommand{.request = std::move(request)});
}

absl::StatusOr<v1::RunExpiryResponse> Ledger::ExpireLots(int max_lots) {
  v1::RunExpiryRequest request;
  request.set_max_lots(max_lots);
  return RunHousekeeping("system:expiry", RunExpiryCommand{.request = std::move(request)});
}

absl::StatusOr<v1::GetBalanceResponse> Ledger::GetBalance(const v1::GetBalanceRequest& request) {
  RETURN_IF_ERROR(ValidateId("member_id", request.member_id()));
  ASSIGN_OR_RETURN(std::optional<AccountRow> row, store_.GetAccount(MemberAccount(request.member_id())));
  if (!row.has_value()) {
    // A member with no account yet (enrolled, never earned) has nothing.
    if (members_.checks_ids()) {
      RETURN_IF_ERROR(members_.CheckIssued(*rules_.Current(), "member_id", request.member_id()));
    } else if (!rules_.Current()->members.contains(request.member_id())) {
      return absl::NotFoundError(absl::StrCat("member_id: no account for member '", request.member_id(), "'"));
    }
    row = AccountRow{.account = MemberAccount(request.member_id())};
  }
  v1::GetBalanceResponse response;
  response.set_member_id(request.member_id());
  ASSIGN_OR_RETURN(int64_t head, store_.HeadSequence());
  BalanceToProto(*row, head, response.mutable_balance());
  LotQuery next;
  next.member_id = request.member_id();
  next.limit = 1;
  ASSIGN_OR_RETURN(std::vector<LotRow> lots, store_.ListLots(next));
  if (!lots.empty()) {
    *response.mutable_next_expiry_at() = ToProtoTime(lots[0].expires_at);
    response.set_next_expiry_points(lots[0].remaining_points);
  }
  return response;
}

absl::StatusOr<v1::GetTransferResponse> Ledger::GetTransfer(const Caller& caller,
                                                            const v1::GetTransferRequest& request) {
  RETURN_IF_ERROR(ValidateId("transfer_id", request.transfer_id()));
  ASSIGN_OR_RETURN(std::optional<TransferRow> row, store_.GetTransfer(request.transfer_id()));
  if (!row.has_value()) {
    return absl::NotFoundError(absl::StrCat("transfer_id: no transfer '", request.transfer_id(), "'"));
  }
  RETURN_IF_ERROR(CheckOwnedByCaller(caller, "transfer_id",
                                     absl::StrCat("transfer '", request.transfer_id(), "'"),
                                     row->transfer.partner_id()));
  v1::GetTransferResponse response;
  *response.mutable_transfer() = std::move(row->transfer);
  response.set_reversed_points(row->reversed_points);
  return response;
}

absl::StatusOr<v1::ListTransfersResponse> Ledger::ListTransfers(const Caller& caller,
                                                                const v1::ListTransfersRequest& request) {
  if (request.member_id().empty() && request.account().empty() && request.partner_id().empty()) {
    return absl::InvalidArgumentError("member_id, account or partner_id: one is required");
  }
  if (!request.member_id().empty()) RETURN_IF_ERROR(ValidateId("member_id", request.member_id()));
  if (!request.partner_id().empty()) RETURN_IF_ERROR(ValidateId("partner_id", request.partner_id()));
  if (!caller.partner_id.empty() && request.partner_id() != caller.partner_id) {
    // The partner filter is what keeps the answer to this partner's own
    // transfers, whatever the member or account filter.
    return absl::PermissionDeniedError(absl::StrCat(
        "partner_id: a partner lists only its own transfers; set partner_id to '",
        caller.partner_id, "'"));
  }
  if (request.has_start_time() && request.has_end_time() &&
      FromProtoTime(request.end_time()) < FromProtoTime(request.start_time())) {
    return absl::InvalidArgumentError("end_time: before start_time");
  }
  TransferQuery q;
  q.member_id = request.member_id();
  q.account = request.account();
  q.partner_id = request.partner_id();
  // An account's transfers all carry its owner: member:M -> member_id M;
  // issuance:P, redemption:P, breakage:P -> partner_id P; operator:* ->
  // partner_id "" except partner-funded adjustments. Filtering on the owner
  // lets the query use the member or partner index.
  if (!q.account.empty()) {
    const size_t colon = q.account.find(':');
    if (colon == std::string::npos) return absl::InvalidArgumentError("account: expected kind:id");
    const std::string kind = q.account.substr(0, colon);
    const std::string owner = q.account.substr(colon + 1);
    if (kind == "member") {
      if (!q.member_id.empty() && q.member_id != owner) {
        return absl::InvalidArgumentError("account: does not belong to member_id");
      }
      q.member_id = owner;
    } else if (kind == "issuance" || kind == "redemption" || kind == "breakage") {
      if (!q.partner_id.empty() && q.partner_id != owner) {
        return absl::InvalidArgumentError("account: does not belong to partner_id");
      }
      q.partner_id = owner;
    } else if (kind != "operator") {
      return absl::InvalidArgumentError(absl::StrCat("account: unknown kind '", kind, "'"));
    }
  }
  for (int code : request.codes()) q.codes.push_back(code);
  if (request.has_start_time()) q.start_time = FromProtoTime(request.start_time());
  if (request.has_end_time()) q.end_time = FromProtoTime(request.end_time());
  q.reference = request.reference();
  q.oldest_first = request.oldest_first();
  ASSIGN_OR_RETURN(q.after_sequence, ParseSequenceToken(request.page_token()));
  q.limit = PageSize(request.page_size(), 50, kMaxTransfersPage);
  ASSIGN_OR_RETURN(std::vector<v1::Transfer> transfers, store_.ListTransfers(q));
  v1::ListTransfersResponse response;
  for (auto& t : transfers) *response.add_transfers() = std::move(t);
  if (response.transfers_size() == q.limit) {
    response.set_next_page_token(absl::StrCat("s", response.transfers().rbegin()->sequence()));
  }
  return response;
}

absl::StatusOr<v1::GetHoldResponse> Ledger::GetHold(const Caller& caller, const v1::GetHoldRequest& request) {
  RETURN_IF_ERROR(ValidateId("hold_id", request.hold_id()));
  ASSIGN_OR_RETURN(std::optional<HoldRow> hold, store_.GetHold(request.hold_id()));
  if (!hold.has_value()) return absl::NotFoundError(absl::StrCat("hold_id: no hold '", request.hold_id(), "'"));
  RETURN_IF_ERROR(CheckOwnedByCaller(caller, "hold_id", absl::StrCat("hold '", request.hold_id(), "'"),
                                     hold->partner_id));
  v1::GetHoldResponse response;
  HoldToProto(*hold, response.mutable_hold());
  if (hold->state == v1::HOLD_STATE_PENDING && absl::Now() >= hold->expires_at) {
    // Past its limit but not yet swept: it can no longer be captured.
    response.mutable_hold()->set_state(v1::HOLD_STATE_EXPIRED);
  }
  return response;
}

absl::StatusOr<v1::ListLotsResponse> Ledger::ListLots(const v1::ListLotsRequest& request) {
  RETURN_IF_ERROR(ValidateId("member_id", request.member_id()));
  if (!request.issuer_partner_id().empty()) {
    RETURN_IF_ERROR(ValidateId("issuer_partner_id", request.issuer_partner_id()));
  }
  LotQuery q;
  q.member_id = request.member_id();
  q.include_depleted = request.include_depleted();
  q.issuer_partner_id = request.issuer_partner_id();
  q.limit = PageSize(request.page_size(), 100, kMaxLotsPage);
  if (!request.page_token().empty()) {
    std::vector<std::string> parts = absl::StrSplit(request.page_token(), absl::MaxSplits('/', 1));
    int64_t micros = 0;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &micros)) {
      return absl::InvalidArgumentError("page_token: malformed");
    }
    q.after = std::make_pair(absl::FromUnixMicros(micros), parts[1]);
  }
  ASSIGN_OR_RETURN(std::vector<LotRow> lots, store_.ListLots(q));
  v1::ListLotsResponse response;
  for (const LotRow& lot : lots) LotToProto(lot, response.add_lots());
  if (static_cast<int>(lots.size()) == q.limit) {
    response.set_next_page_token(
        absl::StrCat(absl::ToUnixMicros(lots.back().expires_at), "/", lots.back().lot_id));
  }
  return response;
}

absl::StatusOr<v1::GetQualifyingPointsResponse> Ledger::GetQualifyingPoints(
    const v1::GetQualifyingPointsRequest& request) {
  if (request.member_ids_size() == 0 || request.member_ids_size() > kMaxQualifyingMembers) {
    return absl::InvalidArgumentError(
        absl::StrCat("member_ids: between 1 and ", kMaxQualifyingMembers, " required"));
  }
  if (!request.has_start_time() || !request.has_end_time()) {
    return absl::InvalidArgumentError("start_time and end_time: required");
  }
  const absl::Time start = FromProtoTime(request.start_time());
  const absl::Time end = FromProtoTime(request.end_time());
  if (end <= start) return absl::InvalidArgumentError("end_time: must be after start_time");
  std::vector<std::string> members(request.member_ids().begin(), request.member_ids().end());
  absl::flat_hash_set<absl::string_view> distinct;
  for (size_t i = 0; i < members.size(); ++i) {
    const std::string field = absl::StrCat("member_ids[", i, "]");
    RETURN_IF_ERROR(ValidateId(field, members[i]));
    if (!distinct.insert(members[i]).second) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": '", members[i], "' is listed twice"));
    }
  }
  ASSIGN_OR_RETURN(int64_t head, store_.HeadSequence());
  ASSIGN_OR_RETURN(auto points, store_.QualifyingPoints(members, start, end));
  v1::GetQualifyingPointsResponse response;
  for (const std::string& m : members) {
    auto* entry = response.add_members();
    entry->set_member_id(m);
    entry->set_qualifying_points(points[m]);
  }
  response.set_as_of_sequence(head);
  return response;
}

absl::StatusOr<v1::GetPointsLiabilityResponse> Ledger::GetPointsLiability() {
  ASSIGN_OR_RETURN(Liability l, store_.PointsLiability());
  v1::GetPointsLiabilityResponse response;
  response.set_member_balance_points(l.member_balance_points);
  response.set_lot_remaining_points(l.lot_remaining_points);
  response.set_as_of_sequence(l.as_of_sequence);
  for (const auto& [issuer, figures] : l.issuers) {
    auto* entry = response.add_issuers();
    entry->set_issuer_partner_id(issuer);
    entry->set_outstanding_points(figures.first);
    entry->set_open_lots(figures.second);
  }
  return response;
}

absl::StatusOr<v1::GetAccountResponse> Ledger::GetAccount(const Caller& caller,
                                                          const v1::GetAccountRequest& request) {
  const std::string& name = request.account();
  const size_t colon = name.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= name.size() || name.size() > 80) {
    return absl::InvalidArgumentError("account: expected kind:id, e.g. issuance:vet-1");
  }
  const v1::AccountKind kind = AccountKindOf(name);
  if (kind == v1::ACCOUNT_KIND_UNSPECIFIED) {
    return absl::InvalidArgumentError(absl::StrCat("account: unknown kind '", name.substr(0, colon), "'"));
  }
  const std::string id = name.substr(colon + 1);
  RETURN_IF_ERROR(ValidateId("account", id));
  if (!caller.partner_id.empty() && (!IsPartnerAccountKind(kind) || id != caller.partner_id)) {
    return PartnerAccountsOnly(caller, "account");
  }
  ASSIGN_OR_RETURN(std::optional<AccountRow> row, store_.GetAccount(name));
  if (!row.has_value()) return absl::NotFoundError(absl::StrCat("account: no account '", name, "'"));
  ASSIGN_OR_RETURN(int64_t head, store_.HeadSequence());
  v1::GetAccountResponse response;
  AccountToProto(*row, head, response.mutable_account());
  return response;
}

absl::StatusOr<v1::ListAccountsResponse> Ledger::ListAccounts(const Caller& caller,
                                                              const v1::ListAccountsRequest& request) {
  const v1::AccountKind kind = request.kind();
  if (!v1::AccountKind_IsValid(kind)) return absl::InvalidArgumentError("kind: unknown account kind");
  std::string partner_id = request.partner_id();
  if (!partner_id.empty()) RETURN_IF_ERROR(ValidateId("partner_id", partner_id));
  if (!caller.partner_id.empty()) {
    // A partner lists only its own accounts, with or without the filter.
    if (kind == v1::ACCOUNT_KIND_MEMBER || kind == v1::ACCOUNT_KIND_OPERATOR) {
      return PartnerAccountsOnly(caller, "kind");
    }
    if (!partner_id.empty() && partner_id != caller.partner_id) return PartnerAccountsOnly(caller, "partner_id");
    partner_id = caller.partner_id;
  }
  if (!partner_id.empty() && kind != v1::ACCOUNT_KIND_UNSPECIFIED && !IsPartnerAccountKind(kind)) {
    return absl::InvalidArgumentError("partner_id: member and operator accounts belong to no partner");
  }
  ASSIGN_OR_RETURN(const int limit, paging::PageSize(request.page_size(), 100, kMaxAccountsPage));
  const std::string scope = absl::StrCat("accounts/", kind, "/", partner_id);
  AccountQuery query;
  if (!request.page_token().empty()) {
    ASSIGN_OR_RETURN(query.after, paging::DecodeKeyPageToken(request.page_token(), scope));
  }
  query.limit = limit + 1;  // one more tells whether there is a next page
  if (!partner_id.empty()) {
    for (v1::AccountKind k : {v1::ACCOUNT_KIND_BREAKAGE, v1::ACCOUNT_KIND_ISSUANCE, v1::ACCOUNT_KIND_REDEMPTION}) {
      if (kind == v1::ACCOUNT_KIND_UNSPECIFIED || kind == k) {
        query.names.push_back(absl::StrCat(AccountKindPrefix(k), partner_id));
      }
    }
  } else if (kind == v1::ACCOUNT_KIND_UNSPECIFIED) {
    query.first = "";
    query.last = "{";  // after every kind: kinds are lower-case words
    query.skip_members = true;
  } else {
    // "kind:" up to "kind;", the character after ':'.
    query.first = std::string(AccountKindPrefix(kind));
    query.last = query.first;
    query.last.back() = ';';
  }
  ASSIGN_OR_RETURN(std::vector<ListedAccount> rows, store_.ListAccounts(query));
  ASSIGN_OR_RETURN(int64_t head, store_.HeadSequence());  // as GetAccount: read after the rows
  v1::ListAccountsResponse response;
  const bool more = static_cast<int>(rows.size()) > limit;
  if (more) rows.resize(limit);
  for (const ListedAccount& listed : rows) {
    v1::Account* account = response.add_accounts();
    AccountToProto(listed.row, head, account);
    *account->mutable_created_at() = ToProtoTime(listed.created_at);
  }
  if (more) response.set_next_page_token(paging::EncodeKeyPageToken(scope, rows.back().row.account));
  return response;
}

absl::StatusOr<v1::ReadJournalResponse> Ledger::ReadJournal(const v1::ReadJournalRequest& request) {
  if (request.after_sequence() < 0) return absl::InvalidArgumentError("after_sequence: must be >= 0");
  if (request.up_to_sequence() != 0 && request.up_to_sequence() < request.after_sequence()) {
    return absl::InvalidArgumentError("up_to_sequence: before after_sequence");
  }
  const int limit = PageSize(request.page_size(), 1000, kMaxJournalPage);
  ASSIGN_OR_RETURN(int64_t head, store_.HeadSequence());
  ASSIGN_OR_RETURN(std::vector<v1::Transfer> transfers,
                   store_.ReadJournal(request.after_sequence(), request.up_to_sequence(), limit));
  v1::ReadJournalResponse response;
  response.set_head_sequence(head);
  response.set_last_sequence(transfers.empty() ? request.after_sequence() : transfers.back().sequence());
  for (auto& t : transfers) *response.add_transfers() = std::move(t);
  return response;
}

absl::StatusOr<v1::VerifyChainResponse> Ledger::VerifyChain(const v1::VerifyChainRequest& request) {
  ASSIGN_OR_RETURN(int64_t head, store_.HeadSequence());
  const int64_t from = request.from_sequence() == 0 ? 1 : request.from_sequence();
  const int64_t to = request.to_sequence() == 0 ? head : request.to_sequence();
  if (from < 1) return absl::InvalidArgumentError("from_sequence: must be >= 1");
  if (head == 0 && request.to_sequence() == 0 && request.from_sequence() <= 1) {
    v1::VerifyChainResponse empty;  // nothing committed yet
    empty.set_last_hash(std::string(kGenesisHash));
    return empty;
  }
  if (to < from) return absl::InvalidArgumentError("to_sequence: before from_sequence");
  if (to > head) return absl::OutOfRangeError(absl::StrCat("to_sequence: beyond the head ", head));
  v1::VerifyChainResponse response;
  response.set_from_sequence(from);
  response.set_to_sequence(to);
  ASSIGN_OR_RETURN(std::string prev, store_.HashAt(from - 1));
  // In bounded slices, so a long range never loads everything at once.
  for (int64_t start = from; start <= to; start += 10'000) {
    const int64_t end = std::min(to, start + 9'999);
    ASSIGN_OR_RETURN(std::vector<JournalRow> rows, store_.JournalRows(start, end));
    ChainVerification v = VerifyChainRows(prev, start, rows);
    response.set_verified_count(response.verified_count() + v.verified_count);
    if (v.first_bad_sequence == 0 && static_cast<int64_t>(rows.size()) != end - start + 1) {
      v.first_bad_sequence = start + static_cast<int64_t>(rows.size());
      v.detail = "transfer missing from the journal";
    }
    if (v.first_bad_sequence != 0) {
      response.set_first_bad_sequence(v.first_bad_sequence);
      response.set_expected_hash(v.expected_hash);
      response.set_stored_hash(v.stored_hash);
      response.set_detail(v.detail);
      return response;
    }
    prev = v.last_hash;
  }
  response.set_last_hash(prev);
  return response;
}

}  // namespace loyalty::ledger
