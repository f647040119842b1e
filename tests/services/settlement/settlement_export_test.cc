// ExportPeriod against the layout the README documents ("Settlement",
// "Export files"), field by field, for both formats and both files: a
// period closed from a scripted journal on the real MariaDB store, then
// finalised and exported.
//
// The README is the contract partners' accounting imports rely on, so every
// expected value below is written out by hand from the README's table and
// the contracts' prices, not taken from the code under test.

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/civil_time.h"
#include "common/crypto/sha256.h"
#include "common/db/migrations.h"
#include "common/testing/test_db.h"
#include "common/time/proto_time.h"
#include "gtest/gtest.h"
#include "services/settlement/mysql_settlement_store.h"
#include "services/settlement/settlement.h"

namespace loyalty::settlement {
const std::vector<db::MigrationFile>& Migrations();

namespace {

namespace lv1 = ::loyalty::ledger::v1;
using auth::Principal;
using Row = std::vector<std::string>;

const Principal kBackoffice = Principal::Of("bo-key", common::v1::ROLE_BACKOFFICE);
const Principal kFinance = Principal::Of("fin-key", common::v1::ROLE_FINANCE);

absl::Time Day(int year, int month, int day) {
  return absl::FromCivil(absl::CivilDay(year, month, day), absl::UTCTimeZone());
}

// The period: October 2026. Its name needs CSV quoting (comma, quotes) and
// JSON escaping (quotes).
const char kPeriodName[] = "Oct \"26\", EU";
const char kPeriodNameCsv[] = "\"Oct \"\"26\"\", EU\"";
const absl::Time kStart = Day(2026, 10, 1);
const absl::Time kEnd = Day(2026, 11, 1);
const absl::Time kDuring = Day(2026, 10, 15);
// The chain hash of the cut-off transfer (sequence 4): the H record's last field.
const char kCutoffHash[] = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

lv1::Transfer TransferOf(int64_t sequence, lv1::TransferCode code, const std::string& partner, int64_t points,
                         absl::Time at) {
  lv1::Transfer t;
  t.set_transfer_id(absl::StrCat("tr_", sequence));
  t.set_sequence(sequence);
  t.set_code(code);
  t.set_partner_id(partner);
  t.set_member_id(absl::StrCat("m", sequence));
  t.set_points(points);
  *t.mutable_created_at() = ToProtoTime(at);
  *t.mutable_occurred_at() = ToProtoTime(at);
  t.set_prev_hash(std::string(64, static_cast<char>('0' + sequence - 1)));
  t.set_hash(std::string(64, static_cast<char>('0' + sequence)));
  return t;
}

// The journal, sequences 1..5; the period is closed at 4.
//   1 EARN   vet  250 points
//   2 EARN   vet  100 points
//   3 REDEEM food 120 points, all from a lot the vet issued
//   4 EARN   zoo   10 points (CHF)
//   5 EARN   vet  999 points, after the cut-off: must not count
class ScriptedLedger final : public LedgerClient {
 public:
  ScriptedLedger() {
    journal_.push_back(TransferOf(1, lv1::TRANSFER_CODE_EARN, "vet", 250, kDuring));
    journal_.push_back(TransferOf(2, lv1::TRANSFER_CODE_EARN, "vet", 100, kDuring));
    lv1::Transfer redeem = TransferOf(3, lv1::TRANSFER_CODE_REDEEM, "food", 120, kDuring);
    lv1::Allocation* a = redeem.add_allocations();
    a->set_lot_id("lot_1");
    a->set_issuer_partner_id("vet");
    a->set_points(120);
    journal_.push_back(redeem);
    journal_.push_back(TransferOf(4, lv1::TRANSFER_CODE_EARN, "zoo", 10, kDuring));
    journal_.back().set_hash(kCutoffHash);
    journal_.push_back(TransferOf(5, lv1::TRANSFER_CODE_EARN, "vet", 999, kDuring));
  }
  absl::StatusOr<JournalPage> ReadJournal(int64_t after, int64_t up_to, int page_size) override {
    JournalPage page;
    page.head_sequence = static_cast<int64_t>(journal_.size());
    page.last_sequence = after;
    for (const lv1::Transfer& t : journal_) {
      if (t.sequence() <= after || (up_to != 0 && t.sequence() > up_to)) continue;
      if (static_cast<int>(page.transfers.size()) >= page_size) break;
      page.transfers.push_back(t);
      page.last_sequence = t.sequence();
    }
    return page;
  }
  absl::StatusOr<lv1::VerifyChainResponse> VerifyChain(int64_t, int64_t) override {
    return lv1::VerifyChainResponse();
  }
  absl::StatusOr<lv1::GetPointsLiabilityResponse> GetPointsLiability() override {
    return lv1::GetPointsLiabilityResponse();
  }

 private:
  std::vector<lv1::Transfer> journal_;
};

common::v1::Money MoneyOf(int64_t minor, const std::string& currency) {
  common::v1::Money m;
  m.set_amount_minor(minor);
  m.set_currency(currency);
  return m;
}

// RFC 4180: fields separated by commas, records by CRLF; a field holding a
// comma, quote or line break is quoted, with quotes doubled. Returns the
// records; `error` says what is malformed.
std::vector<Row> ParseCsv(const std::string& text, std::string* error) {
  std::vector<Row> rows;
  Row row;
  std::string field;
  size_t i = 0;
  bool quoted = false;
  while (i < text.size()) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        i += 2;
      } else if (c == '"') {
        quoted = false;
        ++i;
      } else {
        field += c;
        ++i;
      }
      continue;
    }
    if (c == '"' && field.empty()) {
      quoted = true;
      ++i;
    } else if (c == ',') {
      row.push_back(field);
      field.clear();
      ++i;
    } else if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      row.push_back(field);
      field.clear();
      rows.push_back(row);
      row.clear();
      i += 2;
    } else if (c == '\r' || c == '\n' || c == '"') {
      *error = absl::StrCat("bare ", c == '"' ? "quote" : "line break", " at byte ", i);
      return rows;
    } else {
      field += c;
      ++i;
    }
  }
  if (quoted || !field.empty() || !row.empty()) *error = "the last record does not end with CRLF";
  return rows;
}

// `n` empty fields.
Row Empty(size_t n) { return Row(n, ""); }

Row Concat(Row a, const Row& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

class SettlementExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = loyalty::testing::TestDatabase::Create("export");
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
    ASSERT_TRUE(db::ApplyMigrations(db_->pool(), Migrations()).ok());
    store_ = NewMysqlSettlementStore(db_->pool());
    SettlementOptions options;
    options.now = [] { return Day(2026, 11, 2); };  // the period has ended
    settlement_ = std::make_unique<Settlement>(*store_, ledger_, options);

    // Contracts in force since September, so the monthly fee is due for
    // the whole period.
    //   vet:  issues at 10.50 EUR per 1000 points
    //   food: issues at 9.00, reimbursed 8.50 per 1000; fee 20.00 a month
    //   zoo:  issues at 20.00 CHF per 1000 points
    AddPartner("vet", "DE", "EUR", 1050, 800, 0);
    AddPartner("food", "DE", "EUR", 900, 850, 2000);
    AddPartner("zoo", "CH", "CHF", 2000, 1000, 0);

    v1::CreatePeriodRequest cp;
    cp.set_idempotency_key("period-oct");
    cp.set_name(kPeriodName);
    *cp.mutable_start_time() = ToProtoTime(kStart);
    *cp.mutable_end_time() = ToProtoTime(kEnd);
    auto period = settlement_->period_close().CreatePeriod(kFinance, cp);
    ASSERT_TRUE(period.ok()) << period.status();
    period_id_ = period->period().period_id();

    v1::ClosePeriodRequest close;
    close.set_idempotency_key("close-oct");
    close.set_period_id(period_id_);
    close.set_cutoff_sequence(4);
    auto closed = settlement_->period_close().ClosePeriod(kFinance, close);
    ASSERT_TRUE(closed.ok()) << closed.status();
    ASSERT_EQ(closed->statements_created(), 3);
    v1::FinalizePeriodRequest fin;
    fin.set_idempotency_key("finalize-oct");
    fin.set_period_id(period_id_);
    auto finalized = settlement_->period_close().FinalizePeriod(kFinance, fin);
    ASSERT_TRUE(finalized.ok()) << finalized.status();

    v1::ListStatementsRequest ls;
    ls.set_period_id(period_id_);
    auto statements = settlement_->statement_queries().ListStatements(kFinance, ls);
    ASSERT_TRUE(statements.ok()) << statements.status();
    for (const auto& s : statements->statements()) statement_ids_[s.partner_id()] = s.statement_id();
    ASSERT_EQ(statement_ids_.size(), 3u);
  }

  void AddPartner(const std::string& id, const std::string& country, const std::string& currency,
                  int64_t issue_price, int64_t reimbursement, int64_t fee) {
    v1::CreatePartnerRequest r;
    r.set_idempotency_key("create-" + id);
    v1::Partner* p = r.mutable_partner();
    p->set_partner_id(id);
    p->set_legal_name(id + " AG");
    p->set_display_name(id);
    p->set_business_category(v1::BUSINESS_CATEGORY_VET_CLINIC);
    p->set_country(country);
    p->set_settlement_currency(currency);
    p->mutable_billing_contact()->set_name("Accounts");
    p->mutable_billing_contact()->set_email("accounts@" + id + ".example");
    auto created = settlement_->partners().CreatePartner(kBackoffice, r);
    ASSERT_TRUE(created.ok()) << created.status();

    v1::CreateContractVersionRequest c;
    c.set_idempotency_key("contract-" + id);
    v1::Contract* k = c.mutable_contract();
    k->set_partner_id(id);
    *k->mutable_effective_from() = ToProtoTime(Day(2026, 9, 1));
    k->set_earn_currency(currency);
    k->set_earn_rate_milli_points_per_unit(1000);
    *k->mutable_issue_price_per_1000_points() = MoneyOf(issue_price, currency);
    *k->mutable_reimbursement_per_1000_points() = MoneyOf(reimbursement, currency);
    k->set_breakage_share_bp(0);
    *k->mutable_monthly_fee() = MoneyOf(fee, currency);
    k->set_funding_model(v1::FUNDING_MODEL_POSTPAID);
    auto contract = settlement_->contracts().CreateContractVersion(kBackoffice, c);
    ASSERT_TRUE(contract.ok()) << contract.status();
    contract_ids_[id] = contract->contract().contract_id();
  }

  absl::StatusOr<v1::ExportPeriodResponse> Export(v1::ExportFormat format) {
    v1::ExportPeriodRequest r;
    r.set_period_id(period_id_);
    r.set_format(format);
    return settlement_->statement_queries().ExportPeriod(kFinance, r);
  }

  // The D records of the statement-lines file, worked out by hand. Lines
  // are numbered per statement; statements come by partner id. Amount =
  // floor(points x price / 1000), positive when the partner owes the
  // operator.
  // food (one REDEEM of 120 points the vet issued; a fee of 20.00):
  //   L001 HONOURED REDEEM, issuer vet: 120 x 850 / 1000 = 102 -> -102
  //   L002 PLATFORM_FEE: the whole month of 2000 -> 2000 (no points, no
  //        price, no transfer)
  // vet (two EARNs, 250 + 100 = 350 points):
  //   L001 ISSUED EARN: 350 x 1050 / 1000 = 367.5 -> 367, 2 transfers
  // zoo (one EARN of 10 points, CHF):
  //   L001 ISSUED EARN: 10 x 2000 / 1000 = 20
  // Control totals: CHF 20; EUR -102 + 2000 + 367 = 2265.
  std::vector<Row> ExpectedLineRecords() {
    const std::string& food = statement_ids_["food"];
    const std::string& vet = statement_ids_["vet"];
    const std::string& zoo = statement_ids_["zoo"];
    return {
        {"D", kPeriodName, food, "food", "L001", "STATEMENT_LINE_TYPE_HONOURED", "TRANSFER_CODE_REDEEM", "vet",
         contract_ids_["food"], "120", "850", "EUR", "-102", "1"},
        {"D", kPeriodName, food, "food", "L002", "STATEMENT_LINE_TYPE_PLATFORM_FEE", "", "", contract_ids_["food"],
         "0", "0", "EUR", "2000", "0"},
        {"D", kPeriodName, vet, "vet", "L001", "STATEMENT_LINE_TYPE_ISSUED", "TRANSFER_CODE_EARN", "",
         contract_ids_["vet"], "350", "1050", "EUR", "367", "2"},
        {"D", kPeriodName, zoo, "zoo", "L001", "STATEMENT_LINE_TYPE_ISSUED", "TRANSFER_CODE_EARN", "",
         contract_ids_["zoo"], "10", "2000", "CHF", "20", "1"},
    };
  }

  // Netting, by hand. CHF: zoo owes 20, the operator is owed 20: zoo pays
  // the operator 20. EUR: food owes -102 + 2000 = 1898, vet owes 367, the
  // operator is owed 2265; no exact pair, so the largest payer first: food
  // pays the operator 1898, then vet pays 367. Results come by currency.
  // Control totals: CHF 20; EUR 1898 + 367 = 2265.
  std::vector<Row> ExpectedPaymentRecords() {
    return {
        {"D", kPeriodName, "zoo", "operator", "CHF", "20"},
        {"D", kPeriodName, "food", "operator", "EUR", "1898"},
        {"D", kPeriodName, "vet", "operator", "EUR", "367"},
    };
  }

  ScriptedLedger ledger_;
  std::unique_ptr<loyalty::testing::TestDatabase> db_;
  SettlementStorePtr store_;
  std::unique_ptr<Settlement> settlement_;
  std::string period_id_;
  std::map<std::string, std::string> contract_ids_;
  std::map<std::string, std::string> statement_ids_;
};

// Checks the parts of an ExportFile that do not depend on the format.
void ExpectFileMetadata(const v1::ExportFile& f, v1::ExportFileKind kind, const std::string& name,
                        const std::string& content_type, int64_t records, int64_t chf_total, int64_t eur_total) {
  SCOPED_TRACE(name);
  EXPECT_EQ(f.kind(), kind);
  EXPECT_EQ(f.file_name(), name);
  EXPECT_EQ(f.content_type(), content_type);
  EXPECT_EQ(f.sha256(), crypto::Sha256Hex(f.content()));
  EXPECT_EQ(f.record_count(), records);
  ASSERT_EQ(f.control_totals_size(), 2);
  EXPECT_EQ(f.control_totals(0).currency(), "CHF");
  EXPECT_EQ(f.control_totals(0).amount_minor(), chf_total);
  EXPECT_EQ(f.control_totals(1).currency(), "EUR");
  EXPECT_EQ(f.control_totals(1).amount_minor(), eur_total);
}

TEST_F(SettlementExportTest, CsvFilesFollowTheReadmeLayoutFieldByField) {
  auto exported = Export(v1::EXPORT_FORMAT_CSV);
  ASSERT_TRUE(exported.ok()) << exported.status();
  ASSERT_EQ(exported->files_size(), 2);
  const v1::ExportFile& lines = exported->files(0);
  const v1::ExportFile& payments = exported->files(1);
  ExpectFileMetadata(lines, v1::EXPORT_FILE_KIND_STATEMENT_LINES, absl::StrCat(kPeriodName, "_statement_lines.csv"),
                     "text/csv", 4, 20, 2265);
  ExpectFileMetadata(payments, v1::EXPORT_FILE_KIND_PAYMENTS, absl::StrCat(kPeriodName, "_payments.csv"),
                     "text/csv", 3, 20, 2265);

  // Statement lines: record_type and 13 data columns, so 14 fields a row.
  // H (7 fields) and T (3 fields) are padded with empty fields.
  std::vector<Row> want_lines = {
      {"record_type", "period_name", "statement_id", "partner_id", "line_id", "line_type", "transfer_code",
       "counterparty_partner_id", "contract_id", "points", "price_per_1000_points_minor", "currency",
       "amount_minor", "transfer_count"},
      Concat({"H", "EXPORT_FILE_KIND_STATEMENT_LINES", kPeriodName, period_id_, "1", "4", kCutoffHash}, Empty(7)),
  };
  for (const Row& r : ExpectedLineRecords()) want_lines.push_back(r);
  want_lines.push_back(Concat({"T", "4", "CHF:20;EUR:2265"}, Empty(11)));

  // Payments: record_type and 5 data columns, but the H record has 7
  // fields (the chain hash last), so every row has 7: the column names and
  // the D records end with one empty field.
  std::vector<Row> want_payments = {
      {"record_type", "period_name", "payer_id", "payee_id", "currency", "amount_minor", ""},
      {"H", "EXPORT_FILE_KIND_PAYMENTS", kPeriodName, period_id_, "1", "4", kCutoffHash},
  };
  for (const Row& r : ExpectedPaymentRecords()) want_payments.push_back(Concat(r, Empty(1)));
  want_payments.push_back(Concat({"T", "3", "CHF:20;EUR:2265"}, Empty(4)));

  for (const auto& [file, want] : {std::pair{&lines, &want_lines}, std::pair{&payments, &want_payments}}) {
    SCOPED_TRACE(file->file_name());
    std::string error;
    const std::vector<Row> got = ParseCsv(file->content(), &error);
    EXPECT_EQ(error, "") << file->content();
    ASSERT_EQ(got.size(), want->size()) << file->content();
    for (size_t i = 0; i < got.size(); ++i) {
      // Field by field, so a failure names the record and the column.
      EXPECT_EQ(got[i].size(), (*want)[0].size()) << "record " << i << ": " << absl::StrJoin(got[i], "|");
      for (size_t j = 0; j < std::min(got[i].size(), (*want)[i].size()); ++j) {
        EXPECT_EQ(got[i][j], (*want)[i][j]) << "record " << i << " (" << (*want)[i][0] << "), field " << j << " ("
                                            << (*want)[0][j] << ")";
      }
    }
  }
  // The quoting itself (RFC 4180): the period name holds a comma and quotes.
  EXPECT_NE(lines.content().find(absl::StrCat("\r\nH,EXPORT_FILE_KIND_STATEMENT_LINES,", kPeriodNameCsv, ",")),
            std::string::npos)
      << lines.content();

  // The same period always gives the same bytes.
  auto again = Export(v1::EXPORT_FORMAT_CSV);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->files(0).content(), lines.content());
  EXPECT_EQ(again->files(1).content(), payments.content());
}

// A JSON value: a string, or an integer written as a JSON number.
struct JsonField {
  std::string name;
  std::string text;
  bool number = false;
};
JsonField Str(std::string name, std::string text) { return {std::move(name), std::move(text), false}; }
JsonField Int(std::string name, int64_t value) { return {std::move(name), absl::StrCat(value), true}; }

// Checks that `object` has exactly `fields`, each with its type and value.
void ExpectObject(const google::protobuf::Struct& object, const std::vector<JsonField>& fields,
                  const std::string& where) {
  SCOPED_TRACE(where);
  EXPECT_EQ(static_cast<size_t>(object.fields_size()), fields.size());
  for (const JsonField& f : fields) {
    auto it = object.fields().find(f.name);
    if (it == object.fields().end()) {
      ADD_FAILURE() << "missing " << f.name;
      continue;
    }
    if (f.number) {
      ASSERT_EQ(it->second.kind_case(), google::protobuf::Value::kNumberValue) << f.name << " is not a JSON number";
      EXPECT_EQ(absl::StrCat(static_cast<int64_t>(it->second.number_value())), f.text) << f.name;
    } else {
      ASSERT_EQ(it->second.kind_case(), google::protobuf::Value::kStringValue) << f.name << " is not a JSON string";
      EXPECT_EQ(it->second.string_value(), f.text) << f.name;
    }
  }
}

TEST_F(SettlementExportTest, JsonFilesFollowTheReadmeLayoutFieldByField) {
  auto exported = Export(v1::EXPORT_FORMAT_JSON);
  ASSERT_TRUE(exported.ok()) << exported.status();
  ASSERT_EQ(exported->files_size(), 2);
  ExpectFileMetadata(exported->files(0), v1::EXPORT_FILE_KIND_STATEMENT_LINES,
                     absl::StrCat(kPeriodName, "_statement_lines.json"), "application/json", 4, 20, 2265);
  ExpectFileMetadata(exported->files(1), v1::EXPORT_FILE_KIND_PAYMENTS, absl::StrCat(kPeriodName, "_payments.json"),
                     "application/json", 3, 20, 2265);

  // The D columns by name; the numeric ones as JSON integers.
  std::vector<std::vector<JsonField>> want_lines;
  for (const Row& r : ExpectedLineRecords()) {
    want_lines.push_back({Str("period_name", r[1]), Str("statement_id", r[2]), Str("partner_id", r[3]),
                          Str("line_id", r[4]), Str("line_type", r[5]), Str("transfer_code", r[6]),
                          Str("counterparty_partner_id", r[7]), Str("contract_id", r[8]),
                          Int("points", std::stoll(r[9])), Int("price_per_1000_points_minor", std::stoll(r[10])),
                          Str("currency", r[11]), Int("amount_minor", std::stoll(r[12])),
                          Int("transfer_count", std::stoll(r[13]))});
  }
  std::vector<std::vector<JsonField>> want_payments;
  for (const Row& r : ExpectedPaymentRecords()) {
    want_payments.push_back({Str("period_name", r[1]), Str("payer_id", r[2]), Str("payee_id", r[3]),
                             Str("currency", r[4]), Int("amount_minor", std::stoll(r[5]))});
  }
  const std::vector<std::pair<std::string, const std::vector<std::vector<JsonField>>*>> files = {
      {"EXPORT_FILE_KIND_STATEMENT_LINES", &want_lines}, {"EXPORT_FILE_KIND_PAYMENTS", &want_payments}};
  for (size_t n = 0; n < files.size(); ++n) {
    const v1::ExportFile& file = exported->files(static_cast<int>(n));
    SCOPED_TRACE(file.file_name());
    google::protobuf::Struct doc;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(file.content(), &doc).ok()) << file.content();
    // One object {"header", "records", "trailer"}.
    EXPECT_EQ(doc.fields_size(), 3);
    ASSERT_TRUE(doc.fields().contains("header") && doc.fields().contains("records") && doc.fields().contains("trailer"))
        << file.content();
    ExpectObject(doc.fields().at("header").struct_value(),
                 {Str("file_kind", files[n].first), Str("period_name", kPeriodName), Str("period_id", period_id_),
                  Int("first_sequence", 1), Int("last_sequence", 4), Str("end_hash", kCutoffHash)},
                 "header");
    const auto& records = doc.fields().at("records").list_value();
    ASSERT_EQ(static_cast<size_t>(records.values_size()), files[n].second->size()) << file.content();
    for (int i = 0; i < records.values_size(); ++i) {
      ExpectObject(records.values(i).struct_value(), (*files[n].second)[static_cast<size_t>(i)],
                   absl::StrCat("record ", i));
    }
    const google::protobuf::Struct& trailer = doc.fields().at("trailer").struct_value();
    EXPECT_EQ(trailer.fields_size(), 2);
    ASSERT_TRUE(trailer.fields().contains("record_count") && trailer.fields().contains("control_totals"));
    EXPECT_EQ(trailer.fields().at("record_count").number_value(), static_cast<double>(files[n].second->size()));
    const auto& totals = trailer.fields().at("control_totals").list_value();
    ASSERT_EQ(totals.values_size(), 2) << file.content();
    ExpectObject(totals.values(0).struct_value(), {Str("currency", "CHF"), Int("amount_minor", 20)}, "total 0");
    ExpectObject(totals.values(1).struct_value(), {Str("currency", "EUR"), Int("amount_minor", 2265)}, "total 1");
  }
  // Integers are written as integers (no fraction, no exponent).
  EXPECT_NE(exported->files(0).content().find("\"price_per_1000_points_minor\":1050,"), std::string::npos)
      << exported->files(0).content();

  auto again = Export(v1::EXPORT_FORMAT_JSON);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->files(0).content(), exported->files(0).content());
  EXPECT_EQ(again->files(1).content(), exported->files(1).content());
}

}  // namespace
}  // namespace loyalty::settlement
