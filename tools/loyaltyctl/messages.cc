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
    case FieldDescriptor::CPPTYPE_STRING:
      return rep ? r.GetRepeatedString(m, &f, index) : r.GetString(m, &f);
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

// name -> text for every leaf, nested messages flattened with dots down to
// `depth` levels; repeated fields joined with commas (messages counted).
void Flatten(const Message& m, const std::string& prefix, int depth,
             std::vector<std::pair<std::string, std::string>>& out) {
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
      } else {
        out.emplace_back(name, n == 0 ? "" : absl::StrCat("[", n, "]"));
      }
    } else if (IsLeaf(f)) {
      out.emplace_back(name, Scalar(m, f, -1));
    } else if (!r.HasField(m, &f)) {
      continue;  // an unset message has nothing to show
    } else if (depth > 0) {
      Flatten(r.GetMessage(m, &f), name + ".", depth - 1, out);
    } else {
      out.emplace_back(name, absl::StrCat("{", r.GetMessage(m, &f).ShortDebugString(), "}"));
    }
  }
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
  const Descriptor& d = *message.GetDescriptor();
  const Reflection& r = *message.GetReflection();
  const FieldDescriptor* list = nullptr;
  for (int i = 0; i < d.field_count() && list == nullptr; ++i) {
    const FieldDescriptor& f = *d.field(i);
    if (f.is_repeated() && !f.is_map() && !IsLeaf(f)) list = &f;
  }
  std::string out;
  if (list != nullptr) {
    const int n = r.FieldSize(message, list);
    std::vector<std::string> header;
    std::vector<std::vector<std::string>> rows;
    std::vector<std::vector<std::pair<std::string, std::string>>> flat(static_cast<size_t>(n));
    std::map<std::string, size_t> column;
    for (int k = 0; k < n; ++k) {
      Flatten(r.GetRepeatedMessage(message, list, k), "", 1, flat[static_cast<size_t>(k)]);
      for (const auto& [name, value] : flat[static_cast<size_t>(k)]) {
        if (column.emplace(name, header.size()).second) header.push_back(name);
      }
    }
    for (const auto& cells : flat) {
      std::vector<std::string> row(header.size());
      for (const auto& [name, value] : cells) row[column[name]] = value;
      rows.push_back(std::move(row));
    }
    if (n == 0) {
      absl::StrAppend(&out, "(no ", list->name(), ")\n");
    } else {
      // Rows of one list can flatten to different columns (unset nested
      // messages are skipped): line them up by name, in first-seen order.
      // Columns empty or zero in every row are left out; long cells (hashes)
      // are cut, --output=json has them whole.
      std::vector<size_t> keep;
      for (size_t c = 0; c < header.size(); ++c) {
        if (std::any_of(rows.begin(), rows.end(), [&](const auto& row) { return !row[c].empty() && row[c] != "0"; })) {
          keep.push_back(c);
        }
      }
      std::vector<std::string> kept_header;
      for (size_t c : keep) kept_header.push_back(absl::AsciiStrToUpper(header[c]));
      std::vector<std::vector<std::string>> kept_rows;
      for (const auto& row : rows) {
        std::vector<std::string> kept;
        for (size_t c : keep) {
          kept.push_back(row[c].size() > kMaxCell ? row[c].substr(0, kMaxCell - 3) + "..." : row[c]);
        }
        kept_rows.push_back(std::move(kept));
      }
      out += text::Table(kept_header, kept_rows);
    }
  }
  std::vector<std::pair<std::string, std::string>> rest;
  Flatten(message, "", 2, rest);
  for (const auto& [name, value] : rest) {
    if (list != nullptr && (name == list->name())) continue;
    if (value.empty()) continue;
    absl::StrAppend(&out, name, ": ", value, "\n");
  }
  if (out.empty()) out = "(empty response)\n";
  return out;
}

std::string RenderJson(const Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

}  // namespace loyalty::ctl
