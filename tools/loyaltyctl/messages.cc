#include "tools/loyaltyctl/messages.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/money/currency.h"
#include "common/text/table.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"

namespace loyalty::ctl {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

absl::Status Bad(absl::string_view path, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("--", path, ": ", why));
}

const google::protobuf::EnumValueDescriptor* FindEnum(const google::protobuf::EnumDescriptor& e,
                                                      absl::string_view text) {
  if (const auto* v = e.FindValueByName(std::string(text)); v != nullptr) return v;
  // The last part of the name, if exactly one value ends with it
  // ("discount" matches two reward types: refused, not guessed).
  const std::string suffix = absl::StrCat("_", absl::AsciiStrToUpper(text));
  const google::protobuf::EnumValueDescriptor* found = nullptr;
  for (int i = 0; i < e.value_count(); ++i) {
    if (absl::EndsWith(e.value(i)->name(), suffix)) {
      if (found != nullptr) return nullptr;
      found = e.value(i);
    }
  }
  return found;
}

constexpr size_t kMaxCell = 40;

bool IsTimestamp(const Descriptor& d) { return d.full_name() == "google.protobuf.Timestamp"; }
bool IsMoney(const Descriptor& d) { return d.full_name() == "loyalty.common.v1.Money"; }
bool IsDate(const Descriptor& d) { return d.full_name() == "loyalty.common.v1.Date"; }

// Sets one scalar (or Timestamp) value on a singular or repeated field.
absl::Status SetLeaf(Message& m, const FieldDescriptor& f, absl::string_view path, absl::string_view text) {
  const Reflection& r = *m.GetReflection();
  const bool rep = f.is_repeated();
  switch (f.cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      rep ? r.AddString(&m, &f, std::string(text)) : r.SetString(&m, &f, std::string(text));
      return absl::OkStatus();
    case FieldDescriptor::CPPTYPE_INT64: {
      int64_t v = 0;
      if (!absl::SimpleAtoi(text, &v)) return Bad(path, "want a whole number");
      rep ? r.AddInt64(&m, &f, v) : r.SetInt64(&m, &f, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_INT32: {
      int32_t v = 0;
      if (!absl::SimpleAtoi(text, &v)) return Bad(path, "want a whole number");
      rep ? r.AddInt32(&m, &f, v) : r.SetInt32(&m, &f, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT64: {
      uint64_t v = 0;
      if (!absl::SimpleAtoi(text, &v)) return Bad(path, "want a whole number");
      rep ? r.AddUInt64(&m, &f, v) : r.SetUInt64(&m, &f, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT32: {
      uint32_t v = 0;
      if (!absl::SimpleAtoi(text, &v)) return Bad(path, "want a whole number");
      rep ? r.AddUInt32(&m, &f, v) : r.SetUInt32(&m, &f, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_BOOL: {
      bool v = false;
      if (!absl::SimpleAtob(text, &v)) return Bad(path, "want true or false");
      rep ? r.AddBool(&m, &f, v) : r.SetBool(&m, &f, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT:
      return Bad(path, "floating-point fields are not settable");
    case FieldDescriptor::CPPTYPE_ENUM: {
      const auto* v = FindEnum(*f.enum_type(), text);
      if (v == nullptr) {
        std::vector<std::string> names;
        for (int i = 0; i < f.enum_type()->value_count(); ++i) names.push_back(f.enum_type()->value(i)->name());
        return Bad(path, absl::StrCat("want one of ", absl::StrJoin(names, ", ")));
      }
      rep ? r.AddEnum(&m, &f, v) : r.SetEnum(&m, &f, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_MESSAGE: {
      if (!IsTimestamp(*f.message_type())) {
        return Bad(path, absl::StrCat("is a ", f.message_type()->name(), ": set its fields (--", path,
                                      ".<field>) or use --json"));
      }
      google::protobuf::Timestamp ts;
      if (!google::protobuf::util::TimeUtil::FromString(std::string(text), &ts)) {
        return Bad(path, "want an RFC 3339 time, e.g. 2026-11-01T00:00:00Z");
      }
      Message* target = rep ? r.AddMessage(&m, &f) : r.MutableMessage(&m, &f);
      target->CopyFrom(ts);
      return absl::OkStatus();
    }
  }
  return Bad(path, "unsupported field type");
}

std::string FormatMoney(const Message& money) {
  const Reflection& r = *money.GetReflection();
  const Descriptor& d = *money.GetDescriptor();
  return money::FormatMinor(r.GetInt64(money, d.FindFieldByName("amount_minor")),
                            r.GetString(money, d.FindFieldByName("currency")));
}

// One value as text; nested messages other than the known ones are not
// leaves (the caller flattens them).
std::string Scalar(const Message& m, const FieldDescriptor& f, int index) {
  const Reflection& r = *m.GetReflection();
  const bool rep = index >= 0;
  switch (f.cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string value = rep ? r.GetRepeatedString(m, &f, index) : r.GetString(m, &f);
      // File contents (ExportFile.content) are not for a table: --out writes
      // them, --output=json has them in base64.
      if (f.type() == FieldDescriptor::TYPE_BYTES && !value.empty()) return absl::StrCat("(", value.size(), " bytes)");
      return value;
    }
    case FieldDescriptor::CPPTYPE_INT64:
      return absl::StrCat(rep ? r.GetRepeatedInt64(m, &f, index) : r.GetInt64(m, &f));
    case FieldDescriptor::CPPTYPE_INT32:
      return absl::StrCat(rep ? r.GetRepeatedInt32(m, &f, index) : r.GetInt32(m, &f));
    case FieldDescriptor::CPPTYPE_UINT64:
      return absl::StrCat(rep ? r.GetRepeatedUInt64(m, &f, index) : r.GetUInt64(m, &f));
    case FieldDescriptor::CPPTYPE_UINT32:
      return absl::StrCat(rep ? r.GetRepeatedUInt32(m, &f, index) : r.GetUInt32(m, &f));
    case FieldDescriptor::CPPTYPE_BOOL:
      return (rep ? r.GetRepeatedBool(m, &f, index) : r.GetBool(m, &f)) ? "true" : "false";
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return absl::StrCat(rep ? r.GetRepeatedDouble(m, &f, index) : r.GetDouble(m, &f));
    case FieldDescriptor::CPPTYPE_FLOAT:
      return absl::StrCat(rep ? r.GetRepeatedFloat(m, &f, index) : r.GetFloat(m, &f));
    case FieldDescriptor::CPPTYPE_ENUM: {
      const auto* v = rep ? r.GetRepeatedEnum(m, &f, index) : r.GetEnum(m, &f);
      return v->number() == 0 ? "" : v->name();  // *_UNSPECIFIED reads as unset
    }
    case FieldDescriptor::CPPTYPE_MESSAGE: {
      const Message& sub = rep ? r.GetRepeatedMessage(m, &f, index) : r.GetMessage(m, &f);
      if (IsTimestamp(*f.message_type())) {
        google::protobuf::Timestamp ts;
        ts.CopyFrom(sub);
        return ts.seconds() == 0 && ts.nanos() == 0 ? "" : google::protobuf::util::TimeUtil::ToString(ts);
      }
      if (IsMoney(*f.message_type())) return sub.ByteSizeLong() == 0 ? "" : FormatMoney(sub);
      if (IsDate(*f.message_type())) {
        const Reflection& dr = *sub.GetReflection();
        const Descriptor& dd = *sub.GetDescriptor();
        const int y = dr.GetInt32(sub, dd.FindFieldByName("year"));
        if (y == 0) return "";
        return absl::StrCat(y, "-", absl::StrFormat("%02d-%02d", dr.GetInt32(sub, dd.FindFieldByName("month")),
                                                    dr.GetInt32(sub, dd.FindFieldByName("day"))));
      }
      return absl::StrCat("{", sub.ShortDebugString(), "}");
    }
  }
  return "";
}

bool IsLeaf(const FieldDescriptor& f) {
  return f.cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || IsTimestamp(*f.message_type()) ||
         IsMoney(*f.message_type()) || IsDate(*f.message_type());
}

// A repeated message field found while flattening: it becomes a table of
// its own rather than a cell.
struct ListRef {
  std::string path;  // "mismatches", "statement.lines"
  const Message* owner;
  const FieldDescriptor* field;
};

using Cells = std::vector<std::pair<std::string, std::string>>;

// name -> text for every leaf, nested messages flattened with dots down to
// `depth` levels; repeated scalars joined with commas. Repeated messages go
// to `lists` (a table each); without `lists` they show as a count.
void Flatten(const Message& m, const std::string& prefix, int depth, Cells& out, std::vector<ListRef>* lists) {
  const Descriptor& d = *m.GetDescriptor();
  const Reflection& r = *m.GetReflection();
  for (int i = 0; i < d.field_count(); ++i) {
    const FieldDescriptor& f = *d.field(i);
    const std::string name = prefix + f.name();
    if (f.is_map()) {
      out.emplace_back(name, r.FieldSize(m, &f) == 0 ? "" : absl::StrCat("[", r.FieldSize(m, &f), " entries]"));
    } else if (f.is_repeated()) {
      const int n = r.FieldSize(m, &f);
      if (IsLeaf(f)) {
        std::vector<std::string> values;
        for (int k = 0; k < n; ++k) values.push_back(Scalar(m, f, k));
        out.emplace_back(name, absl::StrJoin(values, ","));
      } else if (lists != nullptr) {
        lists->push_back(ListRef{name, &m, &f});
      } else {
        out.emplace_back(name, n == 0 ? "" : absl::StrCat("[", n, " items]"));
      }
    } else if (IsLeaf(f)) {
      out.emplace_back(name, Scalar(m, f, -1));
    } else if (!r.HasField(m, &f)) {
      continue;  // an unset message has nothing to show
    } else if (depth > 0) {
      Flatten(r.GetMessage(m, &f), name + ".", depth - 1, out, lists);
    } else {
      out.emplace_back(name, absl::StrCat("{", r.GetMessage(m, &f).ShortDebugString(), "}"));
    }
  }
}

// Rows of one table. Rows can flatten to different columns (unset nested
// messages are skipped): they are lined up by name, in first-seen order.
class Rows {
 public:
  void Add(const Cells& cells) {
    std::vector<std::string> row(header_.size());
    for (const auto& [name, value] : cells) {
      auto [it, added] = column_.emplace(name, header_.size());
      if (added) header_.push_back(name);
      if (row.size() < header_.size()) row.resize(header_.size());
      row[it->second] = value;
    }
    rows_.push_back(std::move(row));
  }

  // Columns empty or zero in every row are left out; long cells (hashes)
  // are cut, --output=json has them whole.
  std::string Text() const {
    std::vector<size_t> keep;
    for (size_t c = 0; c < header_.size(); ++c) {
      if (std::any_of(rows_.begin(), rows_.end(),
                      [&](const auto& row) { return c < row.size() && !row[c].empty() && row[c] != "0"; })) {
        keep.push_back(c);
      }
    }
    std::vector<std::string> header;
    for (size_t c : keep) header.push_back(absl::AsciiStrToUpper(header_[c]));
    std::vector<std::vector<std::string>> rows;
    for (const auto& row : rows_) {
      std::vector<std::string> kept;
      for (size_t c : keep) {
        const std::string cell = c < row.size() ? row[c] : "";
        kept.push_back(cell.size() > kMaxCell ? cell.substr(0, kMaxCell - 3) + "..." : cell);
      }
      rows.push_back(std::move(kept));
    }
    return text::Table(header, rows);
  }

 private:
  std::vector<std::string> header_;
  std::map<std::string, size_t> column_;
  std::vector<std::vector<std::string>> rows_;
};

// Lists inside lists become tables too, this many levels down; deeper ones
// show as a count.
constexpr int kMaxListDepth = 3;

// One element of a list to show, led by the cell that names its parent row
// (none for the outermost list).
struct Element {
  Cells lead;
  const Message* message;
};

// Appends a table of `elements` (titled "title:" unless the title is empty),
// then one table per list inside them, each row led by its parent row's
// first column, named "<list>.<column>".
void RenderList(const std::string& title, const std::string& name, const std::vector<Element>& elements,
                int depth, std::string& out) {
  Rows table;
  std::vector<std::string> nested_order;
  std::map<std::string, std::vector<Element>> nested;
  for (const Element& e : elements) {
    Cells cells = e.lead;
    std::vector<ListRef> lists;
    Flatten(*e.message, "", 1, cells, depth > 1 ? &lists : nullptr);
    table.Add(cells);
    if (lists.empty()) continue;
    Cells key;
    if (cells.size() > e.lead.size()) {
      key.emplace_back(absl::StrCat(name, ".", cells[e.lead.size()].first), cells[e.lead.size()].second);
    }
    for (const ListRef& l : lists) {
      auto [it, added] = nested.try_emplace(l.path);
      if (added) nested_order.push_back(l.path);
      const Reflection& r = *l.owner->GetReflection();
      for (int k = 0; k < r.FieldSize(*l.owner, l.field); ++k) {
        it->second.push_back(Element{key, &r.GetRepeatedMessage(*l.owner, l.field, k)});
      }
    }
  }
  if (!title.empty()) absl::StrAppend(&out, "\n", title, ":\n");
  if (elements.empty()) {
    absl::StrAppend(&out, "(no ", name, ")\n");
  } else {
    out += table.Text();
  }
  for (const std::string& path : nested_order) {
    const std::vector<Element>& children = nested[path];
    if (children.empty()) continue;
    const std::string child_title = absl::StrCat(title.empty() ? name : title, ".", path);
    RenderList(child_title, path, children, depth - 1, out);
  }
}

std::vector<Element> ElementsOf(const ListRef& list) {
  std::vector<Element> elements;
  const Reflection& r = *list.owner->GetReflection();
  for (int k = 0; k < r.FieldSize(*list.owner, list.field); ++k) {
    elements.push_back(Element{{}, &r.GetRepeatedMessage(*list.owner, list.field, k)});
  }
  return elements;
}

}  // namespace

absl::Status SetField(Message& message, absl::string_view path, absl::string_view text) {
  Message* m = &message;
  const std::vector<std::string> parts = absl::StrSplit(path, '.');
  for (size_t i = 0; i < parts.size(); ++i) {
    const FieldDescriptor* f = m->GetDescriptor()->FindFieldByName(parts[i]);
    if (f == nullptr) {
      return Bad(path, absl::StrCat("no field '", parts[i], "' in ", m->GetDescriptor()->full_name(),
                                    " (see --help)"));
    }
    if (i + 1 == parts.size()) return SetLeaf(*m, *f, path, text);
    if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || f->is_repeated()) {
      return Bad(path, absl::StrCat("'", parts[i], "' has no fields to set (use --json)"));
    }
    m = m->GetReflection()->MutableMessage(m, f);
  }
  return Bad(path, "empty field name");
}

absl::Status MergeJson(Message& message, absl::string_view json) {
  auto parsed = message.New();
  auto status = google::protobuf::util::JsonStringToMessage(std::string(json), parsed);
  if (!status.ok()) {
    delete parsed;
    return absl::InvalidArgumentError(absl::StrCat("--json: ", std::string(status.message())));
  }
  message.MergeFrom(*parsed);
  delete parsed;
  return absl::OkStatus();
}

std::string DescribeFields(const Descriptor& descriptor) {
  std::string out;
  for (int i = 0; i < descriptor.field_count(); ++i) {
    const FieldDescriptor& f = *descriptor.field(i);
    std::string type = f.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE ? f.message_type()->name()
                       : f.cpp_type() == FieldDescriptor::CPPTYPE_ENUM  ? f.enum_type()->name()
                                                                        : f.cpp_type_name();
    if (f.is_map()) type = "map (use --json)";
    absl::StrAppend(&out, "  --", f.name(), "  ", f.is_repeated() && !f.is_map() ? "repeated " : "", type, "\n");
  }
  return out;
}

std::string RenderTable(const Message& message) {
  Cells rest;
  std::vector<ListRef> lists;
  Flatten(message, "", 2, rest, &lists);
  // The message's own first list is the main table, shown first and
  // untitled; every other list (later ones, lists inside nested messages)
  // follows the other fields under its name.
  auto main = std::find_if(lists.begin(), lists.end(), [&](const ListRef& l) { return l.owner == &message; });
  std::string out;
  if (main != lists.end()) RenderList("", main->field->name(), ElementsOf(*main), kMaxListDepth, out);
  for (const auto& [name, value] : rest) {
    if (!value.empty()) absl::StrAppend(&out, name, ": ", value, "\n");
  }
  for (auto it = lists.begin(); it != lists.end(); ++it) {
    if (it == main) continue;
    std::vector<Element> elements = ElementsOf(*it);
    if (!elements.empty()) RenderList(it->path, it->field->name(), elements, kMaxListDepth, out);
  }
  if (out.empty()) out = "(empty response)\n";
  return out;
}

std::string RenderJson(const Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;  // a zero is an answer too
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

}  // namespace loyalty::ctl
