#include "services/settlement/statement.h"

#include <algorithm>
#include <limits>
#include <tuple>

#include "absl/numeric/int128.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"

namespace loyalty::settlement {
namespace {

namespace lv1 = ::loyalty::ledger::v1;

constexpr int64_t kPerThousand = 1000;
constexpr int64_t kBasisPoints = 10'000;

auto Key(const PointsCount& r) {
  return std::tie(r.partner_id, r.line_type, r.transfer_code, r.counterparty_partner_id, r.contract_id);
}

absl::Time OccurredAt(const lv1::Transfer& t) {
  return FromProtoTime(t.has_occurred_at() ? t.occurred_at() : t.created_at());
}

const v1::Contract* Find(const ContractHistory& contracts, const std::string& contract_id) {
  for (const auto& c : contracts) {
    if (c.contract_id() == contract_id) return &c;
  }
  return nullptr;
}

common::v1::Money MoneyOf(int64_t amount_minor, const std::string& currency) {
  common::v1::Money m;
  m.set_amount_minor(amount_minor);
  m.set_currency(currency);
  return m;
}

absl::StatusOr<int64_t> Narrow(absl::int128 value) {
  if (value > std::numeric_limits<int64_t>::max() || value < std::numeric_limits<int64_t>::min()) {
    return absl::InvalidArgumentError("amount overflows int64 minor units");
  }
  return static_cast<int64_t>(value);
}

absl::StatusOr<int64_t> Add(int64_t a, int64_t b) { return Narrow(static_cast<absl::int128>(a) + b); }

std::string LineDescription(const v1::StatementLine& l) {
  switch (l.line_type()) {
    case v1::STATEMENT_LINE_TYPE_ISSUED:
      return absl::StrCat("points issued (", lv1::TransferCode_Name(l.transfer_code()), ")");
    case v1::STATEMENT_LINE_TYPE_ISSUE_REVERSED:
      return "points issued, reversed";
    case v1::STATEMENT_LINE_TYPE_HONOURED:
      return absl::StrCat("points honoured, issued by ",
                          l.counterparty_partner_id().empty() ? "the operator" : l.counterparty_partner_id());
    case v1::STATEMENT_LINE_TYPE_HONOUR_REVERSED:
      return absl::StrCat("points honoured, reversed, issued by ",
                          l.counterparty_partner_id().empty() ? "the operator" : l.counterparty_partner_id());
    case v1::STATEMENT_LINE_TYPE_BREAKAGE_SHARE:
      return "share of the breakage of expired points";
    case v1::STATEMENT_LINE_TYPE_PLATFORM_FEE:
      return "monthly platform fee, pro rata";
    default:
      return "";
  }
}

}  // namespace

const v1::Contract* ContractAt(const ContractHistory& contracts, absl::Time t) {
  if (contracts.empty()) return nullptr;
  const v1::Contract* best = &contracts.front();
  for (const auto& c : contracts) {
    if (FromProtoTime(c.effective_from()) <= t) best = &c;
  }
  return best;
}

void CountTransfer(const lv1::Transfer& transfer, const std::map<std::string, ContractHistory>& contracts,
                   std::vector<PointsCount>& points, std::vector<MatrixCount>& matrix) {
  const std::string& partner = transfer.partner_id();
  if (partner.empty()) return;  // operator-only: no partner is charged or paid
  std::string contract_id;
  if (auto it = contracts.find(partner); it != contracts.end()) {
    if (const v1::Contract* c = ContractAt(it->second, OccurredAt(transfer)); c != nullptr) {
      contract_id = c->contract_id();
    }
  }
  auto add = [&](v1::StatementLineType type, const std::string& counterparty, int64_t n) {
    PointsCount r;
    r.partner_id = partner;
    r.line_type = type;
    r.transfer_code = transfer.code();
    r.counterparty_partner_id = counterparty;
    r.contract_id = contract_id;
    r.points = n;
    r.transfer_count = 1;
    points.push_back(std::move(r));
  };
  // Honoured points split by issuer (one line per issuer), and the matrix.
  auto split_by_issuer = [&](v1::StatementLineType type, bool reversal) {
    std::map<std::string, int64_t> by_issuer;
    int64_t allocated = 0;
    for (const auto& a : transfer.allocations()) {
      by_issuer[a.issuer_partner_id()] += a.points();
      allocated += a.points();
    }
    if (allocated < transfer.points()) by_issuer[""] += transfer.points() - allocated;
    for (const auto& [issuer, n] : by_issuer) {
      add(type, issuer, n);
      MatrixCount m;
      m.issuer_partner_id = issuer;
      m.redeemer_partner_id = partner;
      (reversal ? m.reversed_points : m.honoured_points) = n;
      matrix.push_back(std::move(m));
    }
  };
  switch (transfer.code()) {
    case lv1::TRANSFER_CODE_EARN:
    case lv1::TRANSFER_CODE_BONUS:
      add(v1::STATEMENT_LINE_TYPE_ISSUED, "", transfer.points());
      break;
    case lv1::TRANSFER_CODE_ADJUST:
      // Partner-funded credits issue points; debits are the operator's.
      if (absl::StartsWith(transfer.credit_account(), "member:")) {
        add(v1::STATEMENT_LINE_TYPE_ISSUED, "", transfer.points());
      }
      break;
    case lv1::TRANSFER_CODE_REVERSE_EARN:
      add(v1::STATEMENT_LINE_TYPE_ISSUE_REVERSED, "", transfer.points());
      break;
    case lv1::TRANSFER_CODE_REDEEM:
      split_by_issuer(v1::STATEMENT_LINE_TYPE_HONOURED, false);
      break;
    case lv1::TRANSFER_CODE_REVERSE_REDEEM:
      split_by_issuer(v1::STATEMENT_LINE_TYPE_HONOUR_REVERSED, true);
      break;
    case lv1::TRANSFER_CODE_EXPIRE:
      add(v1::STATEMENT_LINE_TYPE_BREAKAGE_SHARE, "", transfer.points());
      break;
    default:
      break;  // holds move no posted points
  }
}

std::vector<PointsCount> MergePoints(std::vector<PointsCount> rows) {
  std::sort(rows.begin(), rows.end(), [](const PointsCount& a, const PointsCount& b) { return Key(a) < Key(b); });
  std::vector<PointsCount> out;
  for (auto& r : rows) {
    if (!out.empty() && Key(out.back()) == Key(r)) {
      out.back().points += r.points;
      out.back().transfer_count += r.transfer_count;
    } else {
      out.push_back(std::move(r));
    }
  }
  return out;
}

std::vector<MatrixCount> MergeMatrix(std::vector<MatrixCount> rows) {
  auto key = [](const MatrixCount& m) { return std::tie(m.issuer_partner_id, m.redeemer_partner_id); };
  std::sort(rows.begin(), rows.end(), [&](const MatrixCount& a, const MatrixCount& b) { return key(a) < key(b); });
  std::vector<MatrixCount> out;
  for (auto& r : rows) {
    if (!out.empty() && key(out.back()) == key(r)) {
      out.back().honoured_points += r.honoured_points;
      out.back().reversed_points += r.reversed_points;
    } else {
      out.push_back(std::move(r));
    }
  }
  return out;
}

absl::StatusOr<int64_t> PriceFloor(int64_t points, int64_t price_minor, int64_t divisor) {
  if (points < 0 || price_minor < 0 || divisor <= 0) {
    return absl::InvalidArgumentError("pricing needs non-negative points and price");
  }
  return Narrow(static_cast<absl::int128>(points) * price_minor / divisor);
}

namespace {

// The running totals of a statement being built, and the contracts its
// lines used (in first-use order).
struct Totals {
  int64_t issue = 0, reimbursement = 0, breakage = 0, fee = 0, adjustment = 0;
  std::vector<std::string> used_contracts;

  void Use(const std::string& id) {
    if (!id.empty() && std::find(used_contracts.begin(), used_contracts.end(), id) == used_contracts.end()) {
      used_contracts.push_back(id);
    }
  }
};

// The statement's identity, range and end hash, without lines.
v1::Statement NewStatement(const StatementInput& in) {
  v1::Statement s;
  s.set_statement_id(in.statement_id);
  s.set_period_id(in.period.period_id());
  s.set_partner_id(in.partner.partner_id());
  s.set_status(v1::STATEMENT_STATUS_DRAFT);
  s.set_currency(in.partner.settlement_currency());
  s.set_first_sequence(in.period.first_sequence());
  s.set_last_sequence(in.period.cutoff_sequence());
  s.set_end_hash(in.period.end_hash());
  *s.mutable_created_at() = ToProtoTime(in.created_at);
  return s;
}

// Prices one counted row under contract `c` (may be null): sets *price and
// *amount, and adds to the statement's point counters and the totals.
absl::Status PriceRow(const PointsCount& r, const v1::Contract* c, v1::Statement& s, Totals& totals,
                      int64_t* price, int64_t* amount) {
  const bool prepaid = c != nullptr && c->funding_model() == v1::FUNDING_MODEL_PREPAID;
  switch (r.line_type) {
    case v1::STATEMENT_LINE_TYPE_ISSUED:
    case v1::STATEMENT_LINE_TYPE_ISSUE_REVERSED: {
      *price = c != nullptr ? c->issue_price_per_1000_points().amount_minor() : 0;
      if (!prepaid) {
        ASSIGN_OR_RETURN(*amount, PriceFloor(r.points, *price, kPerThousand));
      }
      if (r.line_type == v1::STATEMENT_LINE_TYPE_ISSUE_REVERSED) *amount = -*amount;
      ASSIGN_OR_RETURN(totals.issue, Add(totals.issue, *amount));
      if (r.line_type == v1::STATEMENT_LINE_TYPE_ISSUED) {
        s.set_issued_points(s.issued_points() + r.points);
      } else {
        s.set_issue_reversed_points(s.issue_reversed_points() + r.points);
      }
      return absl::OkStatus();
    }
    case v1::STATEMENT_LINE_TYPE_HONOURED:
    case v1::STATEMENT_LINE_TYPE_HONOUR_REVERSED: {
      *price = c != nullptr ? c->reimbursement_per_1000_points().amount_minor() : 0;
      ASSIGN_OR_RETURN(*amount, PriceFloor(r.points, *price, kPerThousand));
      if (r.line_type == v1::STATEMENT_LINE_TYPE_HONOURED) {
        *amount = -*amount;
        s.set_honoured_points(s.honoured_points() + r.points);
      } else {
        s.set_honour_reversed_points(s.honour_reversed_points() + r.points);
      }
      ASSIGN_OR_RETURN(totals.reimbursement, Add(totals.reimbursement, *amount));
      return absl::OkStatus();
    }
    case v1::STATEMENT_LINE_TYPE_BREAKAGE_SHARE: {
      *price = c != nullptr ? c->issue_price_per_1000_points().amount_minor() : 0;
      const int64_t bp = c != nullptr ? c->breakage_share_bp() : 0;
      ASSIGN_OR_RETURN(int64_t price_bp, Narrow(static_cast<absl::int128>(*price) * bp));
      ASSIGN_OR_RETURN(*amount, PriceFloor(r.points, price_bp, kPerThousand * kBasisPoints));
      *amount = -*amount;
      s.set_expired_points(s.expired_points() + r.points);
      ASSIGN_OR_RETURN(totals.breakage, Add(totals.breakage, *amount));
      return absl::OkStatus();
    }
    default:
      return absl::InternalError("unexpected line type in a close");
  }
}

// One priced line per counted row (merged by key).
absl::Status AddPricedLines(const StatementInput& in, v1::Statement& s, Totals& totals) {
  const std::string& currency = in.partner.settlement_currency();
  for (const PointsCount& r : MergePoints(in.points)) {
    const v1::Contract* c = Find(in.contracts, r.contract_id);
    v1::StatementLine* line = s.add_lines();
    line->set_line_type(r.line_type);
    line->set_transfer_code(r.transfer_code);
    line->set_counterparty_partner_id(r.counterparty_partner_id);
    line->set_contract_id(r.contract_id);
    line->set_points(r.points);
    line->set_transfer_count(r.transfer_count);
    totals.Use(r.contract_id);
    int64_t price = 0, amount = 0;
    const bool prepaid = c != nullptr && c->funding_model() == v1::FUNDING_MODEL_PREPAID;
    RETURN_IF_ERROR(PriceRow(r, c, s, totals, &price, &amount));
    *line->mutable_price_per_1000_points() = MoneyOf(price, currency);
    *line->mutable_amount() = MoneyOf(amount, currency);
    if (prepaid && (r.line_type == v1::STATEMENT_LINE_TYPE_ISSUED ||
                    r.line_type == v1::STATEMENT_LINE_TYPE_ISSUE_REVERSED)) {
      line->set_description(absl::StrCat(LineDescription(*line), "; prepaid, paid with the block"));
    } else {
      line->set_description(LineDescription(*line));
    }
  }
  return absl::OkStatus();
}

// Platform fee: each version in force during the period, pro rata.
absl::Status AddFeeLines(const StatementInput& in, v1::Statement& s, Totals& totals) {
  const std::string& currency = in.partner.settlement_currency();
  const absl::Time start = FromProtoTime(in.period.start_time());
  const absl::Time end = FromProtoTime(in.period.end_time());
  const int64_t period_us = absl::ToInt64Microseconds(end - start);
  for (size_t i = 0; i < in.contracts.size() && period_us > 0; ++i) {
    const v1::Contract& c = in.contracts[i];
    const absl::Time from = std::max(start, FromProtoTime(c.effective_from()));
    const absl::Time until =
        i + 1 < in.contracts.size() ? std::min(end, FromProtoTime(in.contracts[i + 1].effective_from())) : end;
    if (until <= from || c.monthly_fee().amount_minor() <= 0) continue;
    ASSIGN_OR_RETURN(int64_t amount,
                     PriceFloor(absl::ToInt64Microseconds(until - from), c.monthly_fee().amount_minor(), period_us));
    v1::StatementLine* line = s.add_lines();
    line->set_line_type(v1::STATEMENT_LINE_TYPE_PLATFORM_FEE);
    line->set_contract_id(c.contract_id());
    *line->mutable_amount() = MoneyOf(amount, currency);
    line->set_description(LineDescription(*line));
    totals.Use(c.contract_id());
    ASSIGN_OR_RETURN(totals.fee, Add(totals.fee, amount));
  }
  return absl::OkStatus();
}

absl::Status AddAdjustmentLines(const StatementInput& in, v1::Statement& s, Totals& totals) {
  const std::string& currency = in.partner.settlement_currency();
  for (const v1::Dispute& d : in.adjustments) {
    if (d.adjustment().currency() != currency) return absl::InternalError("adjustment in another currency");
    v1::StatementLine* line = s.add_lines();
    line->set_line_type(v1::STATEMENT_LINE_TYPE_DISPUTE_ADJUSTMENT);
    *line->mutable_amount() = MoneyOf(d.adjustment().amount_minor(), currency);
    line->set_description(absl::StrCat("adjustment from dispute ", d.dispute_id(), " (statement ", d.statement_id(),
                                       ", line ", d.line_id(), ")"));
    ASSIGN_OR_RETURN(totals.adjustment, Add(totals.adjustment, d.adjustment().amount_minor()));
  }
  return absl::OkStatus();
}

// Line ids, the issuer x redeemer matrix, the contract ids, the totals and
// the net amount.
absl::Status Finish(const StatementInput& in, const Totals& totals, v1::Statement& s) {
  const std::string& currency = in.partner.settlement_currency();
  for (int i = 0; i < s.lines_size(); ++i) s.mutable_lines(i)->set_line_id(absl::StrFormat("L%03d", i + 1));
  for (const MatrixCount& m : MergeMatrix(in.matrix)) {
    v1::IssuerRedeemerPoints* row = s.add_issuer_redeemer();
    row->set_issuer_partner_id(m.issuer_partner_id);
    row->set_redeemer_partner_id(m.redeemer_partner_id);
    row->set_honoured_points(m.honoured_points);
    row->set_reversed_points(m.reversed_points);
  }
  // Contract ids in version order.
  for (const auto& c : in.contracts) {
    const auto& used = totals.used_contracts;
    if (std::find(used.begin(), used.end(), c.contract_id()) != used.end()) s.add_contract_ids(c.contract_id());
  }
  *s.mutable_issue_amount() = MoneyOf(totals.issue, currency);
  *s.mutable_reimbursement_amount() = MoneyOf(totals.reimbursement, currency);
  *s.mutable_breakage_share_amount() = MoneyOf(totals.breakage, currency);
  *s.mutable_fee_amount() = MoneyOf(totals.fee, currency);
  *s.mutable_adjustment_amount() = MoneyOf(totals.adjustment, currency);
  int64_t net = 0;
  for (const auto& l : s.lines()) {
    ASSIGN_OR_RETURN(net, Add(net, l.amount().amount_minor()));
  }
  *s.mutable_net_amount() = MoneyOf(net, currency);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::Statement> BuildStatement(const StatementInput& in) {
  v1::Statement s = NewStatement(in);
  Totals totals;
  RETURN_IF_ERROR(AddPricedLines(in, s, totals));
  RETURN_IF_ERROR(AddFeeLines(in, s, totals));
  RETURN_IF_ERROR(AddAdjustmentLines(in, s, totals));
  RETURN_IF_ERROR(Finish(in, totals, s));
  return s;
}

}  // namespace loyalty::settlement
