// ByteWriter / ByteReader: the little binary format of learner state (parameters,
// optimizer slots, embedding rows). Values are written as raw little-endian bytes
// (x86-64 only, like the rest of the CPU backend), so a round trip is bit-identical.
// The reader checks bounds and reports truncation as DataLoss instead of reading
// past the end.
//
// Thread-safety: values; one thread each.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

#include "common/status.h"

namespace freshet::cpu {

class ByteWriter {
 public:
  template <typename V>
  void Put(const V& v) {
    static_assert(std::is_trivially_copyable_v<V>);
    out_.append(reinterpret_cast<const char*>(&v), sizeof(V));
  }
  template <typename V>
  void PutArray(const V* data, size_t count) {
    static_assert(std::is_trivially_copyable_v<V>);
    Put<uint64_t>(count);
    out_.append(reinterpret_cast<const char*>(data), count * sizeof(V));
  }
  void PutString(std::string_view s) { PutArray(s.data(), s.size()); }
  std::string Release() { return std::move(out_); }
  const std::string& str() const { return out_; }

 private:
  std::string out_;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}

  template <typename V>
  [[nodiscard]] Status Get(V* v) {
    static_assert(std::is_trivially_copyable_v<V>);
    if (in_.size() - pos_ < sizeof(V)) return DataLossError("learner state truncated");
    std::memcpy(v, in_.data() + pos_, sizeof(V));
    pos_ += sizeof(V);
    return Status::Ok();
  }
  // Reads an array written by PutArray whose length must equal `count`.
  template <typename V>
  [[nodiscard]] Status GetArray(V* data, size_t count) {
    uint64_t n = 0;
    RETURN_IF_ERROR(Get(&n));
    if (n != count)
      return DataLossError("learner state: array of " + std::to_string(n) + " values where " +
                           std::to_string(count) + " expected");
    if ((in_.size() - pos_) / sizeof(V) < count) return DataLossError("learner state truncated");
    std::memcpy(data, in_.data() + pos_, count * sizeof(V));
    pos_ += count * sizeof(V);
    return Status::Ok();
  }
  [[nodiscard]] Status GetString(std::string* s) {
    uint64_t n = 0;
    RETURN_IF_ERROR(Get(&n));
    if (in_.size() - pos_ < n) return DataLossError("learner state truncated");
    s->assign(in_.data() + pos_, n);
    pos_ += n;
    return Status::Ok();
  }
  bool done() const { return pos_ == in_.size(); }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

}  // namespace freshet::cpu
