#include "services/settlement/netting.h"

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/crypto/sha256.h"
#include "common/status/status_macros.h"
#include "loyalty/ledger/v1/ledger.pb.h"

namespace loyalty::settlement {
namespace {

absl::StatusOr<int64_t> Add(int64_t a, int64_t b) {
  int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) return absl::InvalidArgumentError("netting total overflows int64 minor units");
  return sum;
}

common::v1::Money MoneyOf(int64_t amount_minor, const std::string& currency) {
  common::v1::Money m;
  m.set_amount_minor(amount_minor);
  m.set_currency(currency);
  return m;
}

struct Party {
  std::string id;
  int64_t amount;  // > 0: what it still pays (payers) or receives (receivers)
};

// Largest first, then by id.
void SortParties(std::vector<Party>& parties) {
  std::sort(parties.begin(), parties.end(), [](const Party& a, const Party& b) {
    return a.amount != b.amount ? a.amount > b.amount : a.id < b.id;
  });
}

void Pay(v1::NettingResult& r, const std::string& payer, const std::string& payee, int64_t amount) {
  v1::NettingPayment* p = r.add_payments();
  p->set_payer_id(payer);
  p->set_payee_id(payee);
  *p->mutable_amount() = MoneyOf(amount, r.currency());
}

// ---- export encoding ----------------------------------------------------------

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

// A field of a record: a string or an integer (JSON numbers, CSV digits).
struct Field {
  std::string name;
  std::string text;
  bool number = false;
};
using Record = std::vector<Field>;

Field S(std::string name, std::string text) { return Field{std::move(name), std::move(text), false}; }
Field N(std::string name, int64_t value) { return Field{std::move(name), absl::StrCat(value), true}; }

struct FileSpec {
  v1::ExportFileKind kind;
  std::string base_name;           // "statement_lines"
  std::vector<std::string> columns;  // data record columns, after record_type
  std::vector<Record> records;
  std::map<std::string, int64_t> totals;  // per currency
};

// H, file kind, period name, period id, first sequence, last sequence,
// chain hash (README, "Export files").
constexpr size_t kHeaderFields = 7;

std::string Encode(const v1::Period& period, const FileSpec& f, v1::ExportFormat format) {
  const std::string kind = v1::ExportFileKind_Name(f.kind);
  std::string totals_text;
  for (const auto& [currency, amount] : f.totals) {
    if (!totals_text.empty()) totals_text += ';';
    absl::StrAppend(&totals_text, currency, ":", amount);
  }
  if (format == v1::EXPORT_FORMAT_CSV) {
    // Every row has the same number of fields (RFC 4180): the widest of the
    // column-name row and the H record, which has kHeaderFields whatever the
    // file (the payments file has fewer data columns than that). Shorter
    // rows are padded with empty fields, never cut.
    const size_t width = std::max(f.columns.size() + 1, kHeaderFields);
    auto row = [&](std::vector<std::string> fields) {
      fields.resize(width);
      std::vector<std::string> escaped;
      for (const auto& x : fields) escaped.push_back(CsvField(x));
      return absl::StrCat(absl::StrJoin(escaped, ","), "\r\n");
    };
    std::vector<std::string> names = {"record_type"};
    names.insert(names.end(), f.columns.begin(), f.columns.end());
    std::string out = row(names);
    out += row({"H", kind, period.name(), period.period_id(), absl::StrCat(period.first_sequence()),
                absl::StrCat(period.cutoff_sequence()), period.end_hash()});
    for (const Record& r : f.records) {
      std::vector<std::string> fields = {"D"};
      for (const Field& x : r) fields.push_back(x.text);
      out += row(fields);
    }
    out += row({"T", absl::StrCat(f.records.size()), totals_text});
    return out;
  }
  std::string out = absl::StrCat(
      "{\"header\":{\"file_kind\":", JsonString(kind), ",\"period_name\":", JsonString(period.name()),
      ",\"period_id\":", JsonString(period.period_id()), ",\"first_sequence\":", period.first_sequence(),
      ",\"last_sequence\":", period.cutoff_sequence(), ",\"end_hash\":", JsonString(period.end_hash()),
      "},\n\"records\":[");
  for (size_t i = 0; i < f.records.size(); ++i) {
    out += i == 0 ? "\n{" : ",\n{";
    for (size_t j = 0; j < f.records[i].size(); ++j) {
      const Field& x = f.records[i][j];
      absl::StrAppend(&out, j == 0 ? "" : ",", JsonString(x.name), ":", x.number ? x.text : JsonString(x.text));
    }
    out += "}";
  }
  absl::StrAppend(&out, "],\n\"trailer\":{\"record_count\":", f.records.size(), ",\"control_totals\":[");
  bool first = true;
  for (const auto& [currency, amount] : f.totals) {
    absl::StrAppend(&out, first ? "" : ",", "{\"currency\":", JsonString(currency), ",\"amount_minor\":", amount,
                    "}");
    first = false;
  }
  out += "]}}\n";
  return out;
}

}  // namespace

absl::StatusOr<std::vector<v1::NettingResult>> ComputeNetting(const std::vector<v1::Statement>& statements) {
  struct Book {
    std::map<std::string, int64_t> positions;
    int64_t gross = 0;
  };
  std::map<std::string, Book> books;  // by currency
  for (const v1::Statement& s : statements) {
    Book& b = books[s.currency()];
    ASSIGN_OR_RETURN(b.positions[s.partner_id()], Add(b.positions[s.partner_id()], s.net_amount().amount_minor()));
    ASSIGN_OR_RETURN(b.positions[kOperatorPartyId],
                     Add(b.positions[kOperatorPartyId], -s.net_amount().amount_minor()));
    for (const auto& l : s.lines()) {
      ASSIGN_OR_RETURN(b.gross, Add(b.gross, std::llabs(l.amount().amount_minor())));
    }
  }
  std::vector<v1::NettingResult> out;
  for (auto& [currency, book] : books) {
    v1::NettingResult r;
    r.set_currency(currency);
    std::vector<Party> payers, receivers;
    for (const auto& [party, amount] : book.positions) {
      v1::NettingPosition* p = r.add_positions();
      p->set_party_id(party);
      *p->mutable_net_amount() = MoneyOf(amount, currency);
      if (amount > 0) payers.push_back({party, amount});
      if (amount < 0) receivers.push_back({party, -amount});
    }
    SortParties(payers);
    SortParties(receivers);
    // Exact pairs first: one payment settles two parties.
    for (Party& payer : payers) {
      for (Party& receiver : receivers) {
        if (receiver.amount != 0 && receiver.amount == payer.amount) {
          Pay(r, payer.id, receiver.id, payer.amount);
          payer.amount = receiver.amount = 0;
          break;
        }
      }
    }
    // Then the largest payer pays the largest receiver.
    for (;;) {
      std::erase_if(payers, [](const Party& p) { return p.amount == 0; });
      std::erase_if(receivers, [](const Party& p) { return p.amount == 0; });
      if (payers.empty() || receivers.empty()) break;
      SortParties(payers);
      SortParties(receivers);
      const int64_t amount = std::min(payers.front().amount, receivers.front().amount);
      Pay(r, payers.front().id, receivers.front().id, amount);
      payers.front().amount -= amount;
      receivers.front().amount -= amount;
    }
    if (!payers.empty() || !receivers.empty()) return absl::InternalError("netting positions do not sum to zero");
    int64_t net = 0;
    for (const auto& p : r.payments()) {
      ASSIGN_OR_RETURN(net, Add(net, p.amount().amount_minor()));
    }
    *r.mutable_gross_total() = MoneyOf(book.gross, currency);
    *r.mutable_net_total() = MoneyOf(net, currency);
    *r.mutable_saving() = MoneyOf(book.gross - net, currency);
    out.push_back(std::move(r));
  }
  return out;
}

absl::StatusOr<std::vector<v1::ExportFile>> ExportFiles(const v1::Period& period,
                                                        const std::vector<v1::Statement>& statements,
                                                        const std::vector<v1::NettingResult>& netting,
                                                        v1::ExportFormat format) {
  if (format != v1::EXPORT_FORMAT_CSV && format != v1::EXPORT_FORMAT_JSON) {
    return absl::InvalidArgumentError("format: CSV or JSON");
  }
  FileSpec lines{v1::EXPORT_FILE_KIND_STATEMENT_LINES, "statement_lines",
                 {"period_name", "statement_id", "partner_id", "line_id", "line_type", "transfer_code",
                  "counterparty_partner_id", "contract_id", "points", "price_per_1000_points_minor", "currency",
                  "amount_minor", "transfer_count"},
                 {}, {}};
  for (const v1::Statement& s : statements) {
    for (const v1::StatementLine& l : s.lines()) {
      lines.records.push_back({S("period_name", period.name()), S("statement_id", s.statement_id()),
                               S("partner_id", s.partner_id()), S("line_id", l.line_id()),
                               S("line_type", v1::StatementLineType_Name(l.line_type())),
                               S("transfer_code", l.transfer_code() == 0
                                                      ? ""
                                                      : ledger::v1::TransferCode_Name(l.transfer_code())),
                               S("counterparty_partner_id", l.counterparty_partner_id()),
                               S("contract_id", l.contract_id()), N("points", l.points()),
                               N("price_per_1000_points_minor", l.price_per_1000_points().amount_minor()),
                               S("currency", s.currency()), N("amount_minor", l.amount().amount_minor()),
                               N("transfer_count", l.transfer_count())});
      ASSIGN_OR_RETURN(lines.totals[s.currency()], Add(lines.totals[s.currency()], l.amount().amount_minor()));
    }
  }
  FileSpec payments{v1::EXPORT_FILE_KIND_PAYMENTS, "payments",
                    {"period_name", "payer_id", "payee_id", "currency", "amount_minor"}, {}, {}};
  for (const v1::NettingResult& r : netting) {
    for (const v1::NettingPayment& p : r.payments()) {
      payments.records.push_back({S("period_name", period.name()), S("payer_id", p.payer_id()),
                                  S("payee_id", p.payee_id()), S("currency", r.currency()),
                                  N("amount_minor", p.amount().amount_minor())});
      ASSIGN_OR_RETURN(payments.totals[r.currency()],
                       Add(payments.totals[r.currency()], p.amount().amount_minor()));
    }
  }
  std::vector<v1::ExportFile> out;
  for (const FileSpec* f : {&lines, &payments}) {
    v1::ExportFile file;
    const bool csv = format == v1::EXPORT_FORMAT_CSV;
    file.set_file_name(absl::StrCat(period.name(), "_", f->base_name, csv ? ".csv" : ".json"));
    file.set_kind(f->kind);
    file.set_content_type(csv ? "text/csv" : "application/json");
    file.set_content(Encode(period, *f, format));
    file.set_sha256(crypto::Sha256Hex(file.content()));
    file.set_record_count(static_cast<int64_t>(f->records.size()));
    for (const auto& [currency, amount] : f->totals) *file.add_control_totals() = MoneyOf(amount, currency);
    out.push_back(std::move(file));
  }
  return out;
}

}  // namespace loyalty::settlement
