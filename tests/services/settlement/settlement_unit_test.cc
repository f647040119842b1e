// Settlement's pure parts: statement arithmetic, netting and the export
// files. Every expected number is computed by hand in the comments.

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "common/crypto/sha256.h"
#include "common/time/proto_time.h"
#include "gtest/gtest.h"
#include "services/settlement/netting.h"
#include "services/settlement/statement.h"

namespace loyalty::settlement {
namespace {

namespace lv1 = ::loyalty::ledger::v1;

absl::Time Day(int month, int day) { return absl::FromCivil(absl::CivilDay(2026, month, day), absl::UTCTimeZone()); }

common::v1::Money Eur(int64_t minor) {
  common::v1::Money m;
  m.set_amount_minor(minor);
  m.set_currency("EUR");
  return m;
}

v1::Contract ContractOf(const std::string& id, int version, absl::Time from, int64_t issue, int64_t reimburse,
                        int64_t breakage_bp, int64_t fee) {
  v1::Contract c;
  c.set_contract_id(id);
  c.set_partner_id("groomer");
  c.set_version(version);
  *c.mutable_effective_from() = ToProtoTime(from);
  c.set_earn_currency("EUR");
  c.set_earn_rate_milli_points_per_unit(1000);
  *c.mutable_issue_price_per_1000_points() = Eur(issue);
  *c.mutable_reimbursement_per_1000_points() = Eur(reimburse);
  c.set_breakage_share_bp(breakage_bp);
  *c.mutable_monthly_fee() = Eur(fee);
  c.set_funding_model(v1::FUNDING_MODEL_POSTPAID);
  return c;
}

PointsCount Row(v1::StatementLineType type, lv1::TransferCode code, const std::string& counterparty,
                const std::string& contract, int64_t points, int64_t count = 1) {
  PointsCount r;
  r.partner_id = "groomer";
  r.line_type = type;
  r.transfer_code = code;
  r.counterparty_partner_id = counterparty;
  r.contract_id = contract;
  r.points = points;
  r.transfer_count = count;
  return r;
}

TEST(PriceFloor, FloorsTheMagnitude) {
  // 1234 x 250 / 1000 = 308.5 -> 308.
  EXPECT_EQ(*PriceFloor(1234, 250, 1000), 308);
  EXPECT_EQ(*PriceFloor(999, 1, 1000), 0);
  EXPECT_EQ(*PriceFloor(0, 700, 1000), 0);
  EXPECT_FALSE(PriceFloor(-1, 700, 1000).ok());
  // 9e18 x 10 / 1 does not fit int64.
  EXPECT_FALSE(PriceFloor(9'000'000'000'000'000'000, 10, 1).ok());
}

TEST(ContractAt, PicksTheVersionInForce) {
  ContractHistory h = {ContractOf("c1", 1, Day(10, 1), 800, 600, 0, 0), ContractOf("c2", 2, Day(10, 16), 900, 700, 0, 0)};
  EXPECT_EQ(ContractAt(h, Day(10, 15))->contract_id(), "c1");
  EXPECT_EQ(ContractAt(h, Day(10, 16))->contract_id(), "c2");
  EXPECT_EQ(ContractAt(h, Day(11, 30))->contract_id(), "c2");
  // Before the first version: the first version.
  EXPECT_EQ(ContractAt(h, Day(9, 1))->contract_id(), "c1");
  EXPECT_EQ(ContractAt({}, Day(9, 1)), nullptr);
}

// Groomer, October 2026 (30 days counted from 10-01 to 10-31), contract v1
// until 10-16 then v2.
//   v1: issue 800, reimbursement 600 per 1000 points, breakage 50%, fee 10000
//   v2: issue 900, reimbursement 700 per 1000 points, breakage 50%, fee 20000
TEST(BuildStatement, PricesEachLineOnceAndSumsTheNet) {
  StatementInput in;
  in.partner.set_partner_id("groomer");
  in.partner.set_settlement_currency("EUR");
  in.contracts = {ContractOf("c1", 1, Day(10, 1), 800, 600, 5000, 10000),
                  ContractOf("c2", 2, Day(10, 16), 900, 700, 5000, 20000)};
  in.period.set_period_id("pe_1");
  *in.period.mutable_start_time() = ToProtoTime(Day(10, 1));
  *in.period.mutable_end_time() = ToProtoTime(Day(10, 31));
  in.period.set_first_sequence(11);
  in.period.set_cutoff_sequence(40);
  in.period.set_end_hash(std::string(64, 'a'));
  in.statement_id = "st_1";
  in.created_at = Day(11, 1);
  in.points = {
      Row(v1::STATEMENT_LINE_TYPE_ISSUED, lv1::TRANSFER_CODE_EARN, "", "c1", 1000, 2),
      Row(v1::STATEMENT_LINE_TYPE_ISSUED, lv1::TRANSFER_CODE_EARN, "", "c1", 500, 1),  // merged with the above
      Row(v1::STATEMENT_LINE_TYPE_ISSUED, lv1::TRANSFER_CODE_EARN, "", "c2", 2501, 4),
      Row(v1::STATEMENT_LINE_TYPE_ISSUE_REVERSED, lv1::TRANSFER_CODE_REVERSE_EARN, "", "c2", 100),
      Row(v1::STATEMENT_LINE_TYPE_HONOURED, lv1::TRANSFER_CODE_REDEEM, "vet", "c1", 700, 3),
      Row(v1::STATEMENT_LINE_TYPE_HONOUR_REVERSED, lv1::TRANSFER_CODE_REVERSE_REDEEM, "vet", "c1", 50),
      Row(v1::STATEMENT_LINE_TYPE_BREAKAGE_SHARE, lv1::TRANSFER_CODE_EXPIRE, "", "c2", 333),
  };
  MatrixCount m;
  m.issuer_partner_id = "vet";
  m.redeemer_partner_id = "groomer";
  m.honoured_points = 700;
  m.reversed_points = 50;
  in.matrix = {m};

  absl::StatusOr<v1::Statement> s = BuildStatement(in);
  ASSERT_TRUE(s.ok()) << s.status();
  // Lines in key order, then the fees.
  ASSERT_EQ(s->lines_size(), 8);
  auto amount = [&](int i) { return s->lines(i).amount().amount_minor(); };
  EXPECT_EQ(s->lines(0).points(), 1500);    // merged
  EXPECT_EQ(s->lines(0).transfer_count(), 3);
  EXPECT_EQ(amount(0), 1200);               // 1500 x 800 / 1000
  EXPECT_EQ(amount(1), 2250);               // 2501 x 900 / 1000 = 2250.9
  EXPECT_EQ(amount(2), -90);                // 100 x 900 / 1000, reversed
  EXPECT_EQ(amount(3), -420);               // 700 x 600 / 1000, reimbursed
  EXPECT_EQ(s->lines(3).counterparty_partner_id(), "vet");
  EXPECT_EQ(amount(4), 30);                 // 50 x 600 / 1000, reimbursement reversed
  EXPECT_EQ(amount(5), -149);               // 333 x 900 x 5000 / 10^7 = 149.85
  EXPECT_EQ(s->lines(6).line_type(), v1::STATEMENT_LINE_TYPE_PLATFORM_FEE);
  EXPECT_EQ(amount(6), 5000);               // 10000 x 15 days / 30 days
  EXPECT_EQ(amount(7), 10000);              // 20000 x 15 / 30
  EXPECT_EQ(s->lines(0).line_id(), "L001");
  EXPECT_EQ(s->lines(7).line_id(), "L008");

  EXPECT_EQ(s->issued_points(), 4001);
  EXPECT_EQ(s->issue_reversed_points(), 100);
  EXPECT_EQ(s->honoured_points(), 700);
  EXPECT_EQ(s->honour_reversed_points(), 50);
  EXPECT_EQ(s->expired_points(), 333);
  EXPECT_EQ(s->issue_amount().amount_minor(), 3360);          // 1200 + 2250 - 90
  EXPECT_EQ(s->reimbursement_amount().amount_minor(), -390);  // -420 + 30
  EXPECT_EQ(s->breakage_share_amount().amount_minor(), -149);
  EXPECT_EQ(s->fee_amount().amount_minor(), 15000);
  EXPECT_EQ(s->net_amount().amount_minor(), 17821);  // 3360 - 390 - 149 + 15000
  EXPECT_EQ(s->net_amount().currency(), "EUR");
  EXPECT_EQ(s->first_sequence(), 11);
  EXPECT_EQ(s->last_sequence(), 40);
  EXPECT_EQ(s->status(), v1::STATEMENT_STATUS_DRAFT);
  ASSERT_EQ(s->contract_ids_size(), 2);
  EXPECT_EQ(s->contract_ids(0), "c1");
  ASSERT_EQ(s->issuer_redeemer_size(), 1);
  EXPECT_EQ(s->issuer_redeemer(0).honoured_points(), 700);
}

TEST(BuildStatement, PrepaidIssuanceIsNotInvoiced) {
  StatementInput in;
  in.partner.set_partner_id("groomer");
  in.partner.set_settlement_currency("EUR");
  in.contracts = {ContractOf("c1", 1, Day(10, 1), 800, 600, 0, 0)};
  in.contracts[0].set_funding_model(v1::FUNDING_MODEL_PREPAID);
  *in.period.mutable_start_time() = ToProtoTime(Day(10, 1));
  *in.period.mutable_end_time() = ToProtoTime(Day(10, 31));
  in.points = {Row(v1::STATEMENT_LINE_TYPE_ISSUED, lv1::TRANSFER_CODE_EARN, "", "c1", 1000),
               Row(v1::STATEMENT_LINE_TYPE_HONOURED, lv1::TRANSFER_CODE_REDEEM, "", "c1", 1000)};
  absl::StatusOr<v1::Statement> s = BuildStatement(in);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->lines(0).amount().amount_minor(), 0);
  EXPECT_EQ(s->lines(1).amount().amount_minor(), -600);
  EXPECT_EQ(s->net_amount().amount_minor(), -600);
}

lv1::Transfer TransferOf(lv1::TransferCode code, const std::string& partner, int64_t points, absl::Time at) {
  lv1::Transfer t;
  t.set_code(code);
  t.set_partner_id(partner);
  t.set_points(points);
  *t.mutable_created_at() = ToProtoTime(at);
  *t.mutable_occurred_at() = ToProtoTime(at);
  t.set_credit_account("member:m1");
  return t;
}

TEST(CountTransfer, AttributesEachCodeAndSplitsRedemptionsByIssuer) {
  std::map<std::string, ContractHistory> contracts;
  contracts["vet"] = {ContractOf("v1", 1, Day(10, 1), 800, 600, 0, 0), ContractOf("v2", 2, Day(10, 16), 900, 700, 0, 0)};
  contracts["food"] = {ContractOf("f1", 1, Day(10, 1), 800, 600, 0, 0)};
  std::vector<PointsCount> points;
  std::vector<MatrixCount> matrix;
  CountTransfer(TransferOf(lv1::TRANSFER_CODE_EARN, "vet", 100, Day(10, 10)), contracts, points, matrix);
  CountTransfer(TransferOf(lv1::TRANSFER_CODE_EARN, "vet", 40, Day(10, 20)), contracts, points, matrix);
  lv1::Transfer redeem = TransferOf(lv1::TRANSFER_CODE_REDEEM, "food", 50, Day(10, 21));
  auto* a = redeem.add_allocations();
  a->set_issuer_partner_id("vet");
  a->set_points(30);
  a = redeem.add_allocations();
  a->set_issuer_partner_id("groomer");
  a->set_points(20);
  CountTransfer(redeem, contracts, points, matrix);
  CountTransfer(TransferOf(lv1::TRANSFER_CODE_HOLD, "food", 50, Day(10, 21)), contracts, points, matrix);
  CountTransfer(TransferOf(lv1::TRANSFER_CODE_BONUS, "", 50, Day(10, 21)), contracts, points, matrix);
  CountTransfer(TransferOf(lv1::TRANSFER_CODE_EXPIRE, "vet", 7, Day(10, 22)), contracts, points, matrix);

  std::vector<PointsCount> merged = MergePoints(points);
  ASSERT_EQ(merged.size(), 5u);  // food x2 (by issuer), vet earn v1, vet earn v2, vet breakage
  EXPECT_EQ(merged[0].partner_id, "food");
  EXPECT_EQ(merged[0].counterparty_partner_id, "groomer");
  EXPECT_EQ(merged[0].points, 20);
  EXPECT_EQ(merged[1].counterparty_partner_id, "vet");
  EXPECT_EQ(merged[1].points, 30);
  EXPECT_EQ(merged[1].contract_id, "f1");
  EXPECT_EQ(merged[2].contract_id, "v1");
  EXPECT_EQ(merged[2].points, 100);
  EXPECT_EQ(merged[3].contract_id, "v2");
  EXPECT_EQ(merged[3].points, 40);
  EXPECT_EQ(merged[4].line_type, v1::STATEMENT_LINE_TYPE_BREAKAGE_SHARE);
  EXPECT_EQ(merged[4].points, 7);
  std::vector<MatrixCount> cells = MergeMatrix(matrix);
  ASSERT_EQ(cells.size(), 2u);
  EXPECT_EQ(cells[0].issuer_partner_id, "groomer");
  EXPECT_EQ(cells[0].honoured_points, 20);
  EXPECT_EQ(cells[1].issuer_partner_id, "vet");
  EXPECT_EQ(cells[1].redeemer_partner_id, "food");
}

v1::Statement StatementOf(const std::string& partner, const std::vector<int64_t>& lines,
                          const std::string& currency = "EUR") {
  v1::Statement s;
  s.set_statement_id("st_" + partner);
  s.set_partner_id(partner);
  s.set_currency(currency);
  int64_t net = 0;
  int n = 0;
  for (int64_t amount : lines) {
    auto* l = s.add_lines();
    l->set_line_id("L00" + std::to_string(++n));
    l->set_line_type(v1::STATEMENT_LINE_TYPE_ISSUED);
    l->set_transfer_code(lv1::TRANSFER_CODE_EARN);
    l->set_points(amount > 0 ? amount : -amount);
    l->mutable_amount()->set_amount_minor(amount);
    l->mutable_amount()->set_currency(currency);
    net += amount;
  }
  s.mutable_net_amount()->set_amount_minor(net);
  s.mutable_net_amount()->set_currency(currency);
  return s;
}

TEST(Netting, LargestPayerPaysLargestReceiver) {
  // vet +6000 -1000 = +5000; food -3000; groomer +1000 -3000 = -2000.
  // Operator: -(5000 - 3000 - 2000) = 0.
  auto results = ComputeNetting({StatementOf("vet", {6000, -1000}), StatementOf("food", {-3000}),
                                 StatementOf("groomer", {1000, -3000})});
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_EQ(results->size(), 1u);
  const v1::NettingResult& r = (*results)[0];
  EXPECT_EQ(r.currency(), "EUR");
  ASSERT_EQ(r.payments_size(), 2);
  EXPECT_EQ(r.payments(0).payer_id(), "vet");
  EXPECT_EQ(r.payments(0).payee_id(), "food");
  EXPECT_EQ(r.payments(0).amount().amount_minor(), 3000);
  EXPECT_EQ(r.payments(1).payee_id(), "groomer");
  EXPECT_EQ(r.payments(1).amount().amount_minor(), 2000);
  EXPECT_EQ(r.gross_total().amount_minor(), 14000);  // 6000 + 1000 + 3000 + 1000 + 3000
  EXPECT_EQ(r.net_total().amount_minor(), 5000);
  EXPECT_EQ(r.saving().amount_minor(), 9000);
  // Positions, by party id; the operator is among them.
  ASSERT_EQ(r.positions_size(), 4);
  EXPECT_EQ(r.positions(0).party_id(), "food");
  EXPECT_EQ(r.positions(0).net_amount().amount_minor(), -3000);
  EXPECT_EQ(r.positions(2).party_id(), "operator");
  EXPECT_EQ(r.positions(2).net_amount().amount_minor(), 0);
}

TEST(Netting, ExactPairsFirstAndTheOperatorAsAParty) {
  // a +700, b -700, c +300, d -500: operator = -(700 - 700 + 300 - 500) = +200.
  // Exact pair a->b 700; then payers c 300, operator 200; receiver d 500:
  // c->d 300, operator->d 200. Three payments, not four.
  auto results = ComputeNetting({StatementOf("a", {700}), StatementOf("b", {-700}), StatementOf("c", {300}),
                                 StatementOf("d", {-500})});
  ASSERT_TRUE(results.ok()) << results.status();
  const v1::NettingResult& r = (*results)[0];
  ASSERT_EQ(r.payments_size(), 3);
  EXPECT_EQ(r.payments(0).payer_id(), "a");
  EXPECT_EQ(r.payments(0).payee_id(), "b");
  EXPECT_EQ(r.payments(1).payer_id(), "c");
  EXPECT_EQ(r.payments(1).payee_id(), "d");
  EXPECT_EQ(r.payments(1).amount().amount_minor(), 300);
  EXPECT_EQ(r.payments(2).payer_id(), "operator");
  EXPECT_EQ(r.payments(2).amount().amount_minor(), 200);
  EXPECT_EQ(r.net_total().amount_minor(), 1200);
  EXPECT_EQ(r.gross_total().amount_minor(), 2200);
  EXPECT_EQ(r.saving().amount_minor(), 1000);
}

TEST(Netting, OneResultPerCurrency) {
  auto results = ComputeNetting({StatementOf("vet", {100}), StatementOf("zoo", {-40}, "CHF")});
  ASSERT_TRUE(results.ok());
  ASSERT_EQ(results->size(), 2u);
  EXPECT_EQ((*results)[0].currency(), "CHF");
  ASSERT_EQ((*results)[0].payments_size(), 1);
  EXPECT_EQ((*results)[0].payments(0).payer_id(), "operator");
  EXPECT_EQ((*results)[0].payments(0).payee_id(), "zoo");
  EXPECT_EQ((*results)[1].payments(0).payer_id(), "vet");
  EXPECT_EQ((*results)[1].payments(0).payee_id(), "operator");
  EXPECT_EQ((*results)[1].payments(0).amount().amount_minor(), 100);
}

v1::Period PeriodOf(const std::string& name) {
  v1::Period p;
  p.set_period_id("pe_1");
  p.set_name(name);
  p.set_first_sequence(1);
  p.set_cutoff_sequence(9);
  p.set_end_hash(std::string(64, 'b'));
  return p;
}

TEST(Export, CsvCarriesHeaderRecordsAndControlTotals) {
  std::vector<v1::Statement> statements = {StatementOf("food", {-3000, 250}), StatementOf("vet", {2000, 750})};
  auto netting = ComputeNetting(statements);
  ASSERT_TRUE(netting.ok());
  auto files = ExportFiles(PeriodOf("2026,10"), statements, *netting, v1::EXPORT_FORMAT_CSV);
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 2u);
  const v1::ExportFile& lines = (*files)[0];
  EXPECT_EQ(lines.kind(), v1::EXPORT_FILE_KIND_STATEMENT_LINES);
  EXPECT_EQ(lines.file_name(), "2026,10_statement_lines.csv");
  EXPECT_EQ(lines.record_count(), 4);
  ASSERT_EQ(lines.control_totals_size(), 1);
  EXPECT_EQ(lines.control_totals(0).amount_minor(), 0);  // -3000 + 250 + 2000 + 750
  EXPECT_EQ(lines.sha256(), crypto::Sha256Hex(lines.content()));
  std::vector<std::string> rows = absl::StrSplit(lines.content(), "\r\n", absl::SkipEmpty());
  ASSERT_EQ(rows.size(), 7u);  // column names, H, 4 x D, T
  EXPECT_TRUE(absl::StartsWith(rows[0], "record_type,period_name,statement_id,")) << rows[0];
  EXPECT_TRUE(absl::StartsWith(rows[1], "H,EXPORT_FILE_KIND_STATEMENT_LINES,\"2026,10\",pe_1,1,9,")) << rows[1];
  EXPECT_TRUE(absl::StartsWith(rows[2], "D,\"2026,10\",st_food,food,L001,STATEMENT_LINE_TYPE_ISSUED,")) << rows[2];
  EXPECT_TRUE(absl::StartsWith(rows[6], "T,4,EUR:0,")) << rows[6];
  // Every row has the same number of fields (14 columns; the quoted period
  // name holds one comma).
  for (const auto& row : rows) {
    const size_t commas = std::count(row.begin(), row.end(), ',');
    const size_t quoted = absl::StrContains(row, "\"2026,10\"") ? 1 : 0;
    EXPECT_EQ(commas - quoted, 13u) << row;
  }
  const v1::ExportFile& payments = (*files)[1];
  // food: -2750, vet: +2750 -> one payment vet -> food 2750.
  EXPECT_EQ(payments.record_count(), 1);
  EXPECT_EQ(payments.control_totals(0).amount_minor(), 2750);
  // 5 data columns, but the H record's 7 fields set the width: the chain
  // hash is kept, and the other rows end with empty fields.
  EXPECT_TRUE(absl::StrContains(payments.content(),
                                absl::StrCat("H,EXPORT_FILE_KIND_PAYMENTS,\"2026,10\",pe_1,1,9,", std::string(64, 'b'),
                                             "\r\n")))
      << payments.content();
  EXPECT_TRUE(absl::StrContains(payments.content(), "D,\"2026,10\",vet,food,EUR,2750,\r\n")) << payments.content();
  EXPECT_TRUE(absl::StrContains(payments.content(), "T,1,EUR:2750,,,,\r\n")) << payments.content();

  // Deterministic: the same inputs give the same bytes.
  auto again = ExportFiles(PeriodOf("2026,10"), statements, *netting, v1::EXPORT_FORMAT_CSV);
  EXPECT_EQ((*again)[0].content(), lines.content());
}

TEST(Export, JsonHasHeaderRecordsTrailer) {
  std::vector<v1::Statement> statements = {StatementOf("vet", {1200, -20})};
  auto netting = ComputeNetting(statements);
  auto files = ExportFiles(PeriodOf("2026-10"), statements, *netting, v1::EXPORT_FORMAT_JSON);
  ASSERT_TRUE(files.ok());
  const std::string& json = (*files)[0].content();
  EXPECT_EQ((*files)[0].content_type(), "application/json");
  EXPECT_TRUE(absl::StartsWith(json, "{\"header\":{\"file_kind\":\"EXPORT_FILE_KIND_STATEMENT_LINES\"")) << json;
  EXPECT_TRUE(absl::StrContains(json, "\"amount_minor\":1200,")) << json;
  EXPECT_TRUE(absl::StrContains(json, "\"trailer\":{\"record_count\":2,\"control_totals\":[{\"currency\":\"EUR\","
                                      "\"amount_minor\":1180}]}"))
      << json;
  EXPECT_FALSE(ExportFiles(PeriodOf("x"), statements, *netting, v1::EXPORT_FORMAT_UNSPECIFIED).ok());
}

}  // namespace
}  // namespace loyalty::settlement
