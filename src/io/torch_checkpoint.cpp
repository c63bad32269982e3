// torch.save's zip archive and its pickle (protocol 2, as torch writes it), read by a pickle machine that
// builds values instead of calling anything: the only callables it accepts are the ones a state dict
// needs, and it evaluates them itself.
#include "io/torch_checkpoint.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <set>

#include "core/log.hpp"

namespace mmx {
namespace {

struct Mapping {
  const unsigned char* data = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (data) ::munmap(const_cast<unsigned char*>(data), size);
  }
};

uint64_t le(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// The stored (uncompressed) entries of a zip archive, with zip64 sizes and offsets: name → [begin, end).
std::map<std::string, std::pair<uint64_t, uint64_t>> zip_entries(const std::string& path, const Mapping& m) {
  const unsigned char* d = m.data;
  const size_t n = m.size;
  if (n < 22) fail(path, ": not a zip archive (", n, " bytes)");
  size_t eocd = std::string::npos;
  for (size_t i = n - 22 + 1; i-- > (n > 22 + 65535 ? n - 22 - 65535 : 0);)
    if (le(d + i, 4) == 0x06054b50) {
      eocd = i;
      break;
    }
  if (eocd == std::string::npos) {
    if (n >= 2 && d[0] == 0x80) fail(path, ": a torch.save file of the legacy (pre-1.6, non-zip) format; re-save it with a current torch");
    fail(path, ": not a zip archive (no end-of-central-directory record): not a torch.save file, or truncated");
  }
  uint64_t count = le(d + eocd + 10, 2), cd_size = le(d + eocd + 12, 4), cd_offset = le(d + eocd + 16, 4);
  if (eocd >= 20 && le(d + eocd - 20, 4) == 0x07064b50) {  // zip64 locator → zip64 end record
    const uint64_t z = le(d + eocd - 20 + 8, 8);
    if (z + 56 > n || le(d + z, 4) != 0x06064b50) fail(path, ": damaged zip64 end record");
    count = le(d + z + 32, 8);
    cd_size = le(d + z + 40, 8);
    cd_offset = le(d + z + 48, 8);
  }
  if (cd_offset + cd_size > n) fail(path, ": the zip directory runs past the end of the file: truncated?");
  std::map<std::string, std::pair<uint64_t, uint64_t>> entries;
  uint64_t p = cd_offset;
  for (uint64_t e = 0; e < count; ++e) {
    if (p + 46 > n || le(d + p, 4) != 0x02014b50) fail(path, ": damaged zip directory entry ", e);
    const uint64_t method = le(d + p + 10, 2), name_len = le(d + p + 28, 2), extra_len = le(d + p + 30, 2),
                   comment_len = le(d + p + 32, 2);
    uint64_t size = le(d + p + 20, 4), compressed = le(d + p + 24, 4), local = le(d + p + 42, 4);
    if (p + 46 + name_len + extra_len > n) fail(path, ": damaged zip directory entry ", e);
    const std::string name(reinterpret_cast<const char*>(d + p + 46), name_len);
    for (uint64_t x = p + 46 + name_len; x + 4 <= p + 46 + name_len + extra_len;) {  // zip64 extra field
      const uint64_t id = le(d + x, 2), len = le(d + x + 2, 2);
      if (id == 0x0001) {
        uint64_t q = x + 4;
        if (size == 0xffffffff) size = le(d + q, 8), q += 8;
        if (compressed == 0xffffffff) compressed = le(d + q, 8), q += 8;
        if (local == 0xffffffff) local = le(d + q, 8);
      }
      x += 4 + len;
    }
    if (method != 0) fail(path, ": zip entry '", name, "' is compressed (method ", method, "); torch.save stores entries");
    if (local + 30 > n || le(d + local, 4) != 0x04034b50) fail(path, ": damaged local header of '", name, "'");
    const uint64_t begin = local + 30 + le(d + local + 26, 2) + le(d + local + 28, 2);
    if (begin + size > n) fail(path, ": zip entry '", name, "' runs past the end of the file: truncated?");
    entries[name] = {begin, begin + size};
    p += 46 + name_len + extra_len + comment_len;
  }
  return entries;
}

// A value of the restricted pickle machine.
struct Value;
using Ref = std::shared_ptr<Value>;
struct Value {
  enum Kind { None, Bool, Int, Float, Str, Tuple, List, Dict, Global, Storage, TensorValue } kind = None;
  int64_t i = 0;
  double f = 0;
  std::string s;                           // Str; Global: "module.name"; Storage: its key
  std::vector<Ref> items;                  // Tuple, List
  std::vector<std::pair<Ref, Ref>> dict;   // Dict, in insertion order
  DType dtype = DType::F32;                // Storage
  int64_t numel = 0;                       // Storage
  Tensor tensor;
};

Ref make(Value::Kind k) {
  auto v = std::make_shared<Value>();
  v->kind = k;
  return v;
}

const std::map<std::string, DType>& storage_types() {
  static const std::map<std::string, DType> types = {
      {"torch.FloatStorage", DType::F32},  {"torch.HalfStorage", DType::F16}, {"torch.BFloat16Storage", DType::BF16},
      {"torch.DoubleStorage", DType::F64}, {"torch.LongStorage", DType::I64}, {"torch.IntStorage", DType::I32},
      {"torch.ByteStorage", DType::U8},    {"torch.BoolStorage", DType::Bool}};
  return types;
}

class Unpickler {
 public:
  Unpickler(std::string path, const unsigned char* data, size_t size, std::shared_ptr<Mapping> mapping,
            const std::map<std::string, std::pair<uint64_t, uint64_t>>& entries, std::string prefix)
      : path_(std::move(path)), d_(data), n_(size), mapping_(std::move(mapping)), entries_(entries),
        prefix_(std::move(prefix)) {}

  Ref run() {
    while (true) {
      const unsigned char op = byte();
      switch (op) {
        case 0x80: byte(); break;                         // PROTO
        case 0x95: take(8); break;                        // FRAME
        case '.': return pop();                           // STOP
        case '(': marks_.push_back(stack_.size()); break; // MARK
        case 'N': stack_.push_back(make(Value::None)); break;
        case 0x88: case 0x89: { auto v = make(Value::Bool); v->i = op == 0x88; stack_.push_back(v); break; }
        case 'K': push_int(le(take(1), 1)); break;        // BININT1
        case 'M': push_int(le(take(2), 2)); break;        // BININT2
        case 'J': push_int(static_cast<int32_t>(le(take(4), 4))); break;  // BININT
        case 0x8a: {                                      // LONG1: little-endian two's complement
          const int len = byte();
          if (len > 8) bad("an integer longer than 8 bytes");
          const unsigned char* p = take(len);
          uint64_t v = le(p, len);
          if (len > 0 && len < 8 && (p[len - 1] & 0x80)) v |= ~uint64_t(0) << (8 * len);
          push_int(static_cast<int64_t>(v));
          break;
        }
        case 'G': {                                       // BINFLOAT, big-endian double
          const unsigned char* p = take(8);
          uint64_t bits = 0;
          for (int k = 0; k < 8; ++k) bits = (bits << 8) | p[k];
          auto v = make(Value::Float);
          std::memcpy(&v->f, &bits, 8);
          stack_.push_back(v);
          break;
        }
        case 'X': push_str(le(take(4), 4)); break;        // BINUNICODE
        case 0x8c: push_str(byte()); break;               // SHORT_BINUNICODE
        case ')': stack_.push_back(make(Value::Tuple)); break;
        case ']': stack_.push_back(make(Value::List)); break;
        case '}': stack_.push_back(make(Value::Dict)); break;
        case 't': { auto v = make(Value::Tuple); v->items = pop_to_mark(); stack_.push_back(v); break; }
        case 0x85: case 0x86: case 0x87: {                // TUPLE1..3
          auto v = make(Value::Tuple);
          v->items.resize(op - 0x84);
          for (size_t k = v->items.size(); k-- > 0;) v->items[k] = pop();
          stack_.push_back(v);
          break;
        }
        case 'a': { Ref x = pop(); list_of(top())->items.push_back(x); break; }  // APPEND
        case 'e': { auto xs = pop_to_mark(); auto& l = list_of(top())->items; l.insert(l.end(), xs.begin(), xs.end()); break; }
        case 's': { Ref v = pop(), k = pop(); dict_of(top())->dict.emplace_back(k, v); break; }  // SETITEM
        case 'u': {                                       // SETITEMS
          auto xs = pop_to_mark();
          if (xs.size() % 2) bad("SETITEMS with an odd number of values");
          for (size_t k = 0; k < xs.size(); k += 2) dict_of(top())->dict.emplace_back(xs[k], xs[k + 1]);
          break;
        }
        case 'q': memo_[byte()] = top(); break;           // BINPUT
        case 'r': memo_[le(take(4), 4)] = top(); break;   // LONG_BINPUT
        case 0x94: memo_[memo_.size()] = top(); break;    // MEMOIZE
        case 'h': stack_.push_back(memo(byte())); break;  // BINGET
        case 'j': stack_.push_back(memo(le(take(4), 4))); break;
        case 'c': {                                       // GLOBAL "module\nname\n"
          const std::string module = line(), name = line();
          stack_.push_back(global(module + "." + name));
          break;
        }
        case 0x93: {                                      // STACK_GLOBAL
          Ref name = pop(), module = pop();
          if (name->kind != Value::Str || module->kind != Value::Str) bad("STACK_GLOBAL without names");
          stack_.push_back(global(module->s + "." + name->s));
          break;
        }
        case 'Q': stack_.push_back(persistent(pop())); break;  // BINPERSID
        case 'R': { Ref args = pop(), fn = pop(); stack_.push_back(call(fn, args)); break; }  // REDUCE
        case 'b': {                                       // BUILD: state for an OrderedDict (its _metadata) or a tensor
          Ref state = pop();
          const Ref& obj = top();
          if ((obj->kind != Value::Dict && obj->kind != Value::TensorValue) ||
              (state->kind != Value::Dict && state->kind != Value::None && state->kind != Value::Tuple))
            bad("BUILD on something that is not part of a state dict");
          break;
        }
        default: bad("opcode 0x" + hex(op) + ", which a state dict does not use");
      }
    }
  }

 private:
  [[noreturn]] void bad(const std::string& what) const {
    throw Error(ErrorKind::Runtime, path_ + ": refusing to run code from a pickle: " + what,
                "only state dicts (tensors in an OrderedDict) are read from .bin files; prefer safetensors");
  }
  static std::string hex(unsigned v) {
    char b[8];
    std::snprintf(b, sizeof b, "%02x", v);
    return b;
  }
  unsigned char byte() { return *take(1); }
  const unsigned char* take(size_t k) {
    if (pos_ + k > n_) fail(path_, ": data.pkl ends early: truncated or corrupt");
    const unsigned char* p = d_ + pos_;
    pos_ += k;
    return p;
  }
  std::string line() {
    std::string s;
    for (char c; (c = static_cast<char>(byte())) != '\n';) s += c;
    return s;
  }
  void push_int(int64_t v) { auto x = make(Value::Int); x->i = v; stack_.push_back(x); }
  void push_str(uint64_t len) {
    auto x = make(Value::Str);
    const unsigned char* p = take(len);
    x->s.assign(reinterpret_cast<const char*>(p), len);
    stack_.push_back(x);
  }
  Ref pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) fail(path_, ": data.pkl: stack underflow");
    Ref v = stack_.back();
    stack_.pop_back();
    return v;
  }
  const Ref& top() const {
    if (stack_.empty()) fail(path_, ": data.pkl: stack underflow");
    return stack_.back();
  }
  std::vector<Ref> pop_to_mark() {
    if (marks_.empty()) fail(path_, ": data.pkl: no MARK");
    std::vector<Ref> xs(stack_.begin() + static_cast<std::ptrdiff_t>(marks_.back()), stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return xs;
  }
  Ref memo(uint64_t k) const {
    auto it = memo_.find(k);
    if (it == memo_.end()) fail(path_, ": data.pkl: memo ", k, " read before it was written");
    return it->second;
  }
  Value* list_of(const Ref& r) const {
    if (r->kind != Value::List) bad("APPEND to something that is not a list");
    return r.get();
  }
  Value* dict_of(const Ref& r) const {
    if (r->kind != Value::Dict) bad("SETITEM on something that is not a dict");
    return r.get();
  }

  Ref global(const std::string& name) const {
    static const std::set<std::string> allowed = {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
                                                  "torch._utils._rebuild_parameter"};
    if (!allowed.count(name) && !storage_types().count(name))
      bad("global '" + name + "' is not part of a state dict");
    auto v = make(Value::Global);
    v->s = name;
    return v;
  }

  // ('storage', torch.<Type>Storage, key, location, numel) → the bytes of <prefix>data/<key>.
  Ref persistent(const Ref& pid) const {
    if (pid->kind != Value::Tuple || pid->items.size() != 5 || pid->items[0]->kind != Value::Str ||
        pid->items[0]->s != "storage" || pid->items[1]->kind != Value::Global || pid->items[2]->kind != Value::Str ||
        pid->items[4]->kind != Value::Int)
      bad("a persistent id that is not a storage");
    auto v = make(Value::Storage);
    v->dtype = storage_types().at(pid->items[1]->s);
    v->s = pid->items[2]->s;
    v->numel = pid->items[4]->i;
    auto it = entries_.find(prefix_ + "data/" + v->s);
    if (it == entries_.end()) fail(path_, ": storage '", v->s, "' has no data/", v->s, " entry in the archive");
    if (v->numel < 0 || it->second.second - it->second.first < static_cast<uint64_t>(v->numel) * dtype_size(v->dtype))
      fail(path_, ": storage '", v->s, "' holds ", it->second.second - it->second.first, " bytes, fewer than its ",
           v->numel, " values");
    return v;
  }

  static std::vector<int64_t> ints(const Ref& t, const char* what, const std::string& path) {
    if (t->kind != Value::Tuple) fail(path, ": tensor ", what, " is not a tuple");
    std::vector<int64_t> out;
    for (const auto& x : t->items) {
      if (x->kind != Value::Int || x->i < 0) fail(path, ": tensor ", what, " holds a non-integer or negative value");
      out.push_back(x->i);
    }
    return out;
  }

  Ref call(const Ref& fn, const Ref& args) const {
    if (fn->kind != Value::Global || args->kind != Value::Tuple) bad("REDUCE of something that is not an allowed global");
    if (fn->s == "collections.OrderedDict") {
      if (!args->items.empty()) bad("OrderedDict built from arguments");
      return make(Value::Dict);
    }
    if (fn->s == "torch._utils._rebuild_parameter") {  // (data, requires_grad, backward_hooks)
      if (args->items.empty() || args->items[0]->kind != Value::TensorValue) bad("_rebuild_parameter without a tensor");
      return args->items[0];
    }
    if (fn->s != "torch._utils._rebuild_tensor_v2") bad("calling '" + fn->s + "'");
    // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    if (args->items.size() < 4 || args->items[0]->kind != Value::Storage || args->items[1]->kind != Value::Int)
      bad("_rebuild_tensor_v2 with unexpected arguments");
    const Value& storage = *args->items[0];
    const int64_t offset = args->items[1]->i;
    const std::vector<int64_t> size = ints(args->items[2], "size", path_), stride = ints(args->items[3], "stride", path_);
    if (size.size() != stride.size()) fail(path_, ": tensor size and stride differ in length");
    int64_t last = offset, numel = 1;
    bool contiguous = true;
    int64_t expected = 1;
    for (size_t k = size.size(); k-- > 0;) {
      numel *= size[k];
      if (size[k] > 0) last += (size[k] - 1) * stride[k];
      if (size[k] != 1 && stride[k] != expected) contiguous = false;
      expected *= size[k];
    }
    if (offset < 0 || (numel > 0 && last >= storage.numel))
      fail(path_, ": a tensor reaches past the end of its storage '", storage.s, "'");
    const auto& range = entries_.at(prefix_ + "data/" + storage.s);
    const size_t item = dtype_size(storage.dtype);
    const unsigned char* base = mapping_->data + range.first;
    auto v = make(Value::TensorValue);
    const Shape shape(size.begin(), size.end());
    const unsigned char* first = base + offset * item;
    if (contiguous && reinterpret_cast<uintptr_t>(first) % item == 0) {
      v->tensor = Tensor::from_external(first, shape, storage.dtype, mapping_);
    } else {  // a strided view (rare in a state dict): gathered element by element
      v->tensor = Tensor::empty(shape, storage.dtype);
      auto* out = static_cast<unsigned char*>(v->tensor.raw_mutable());
      std::vector<int64_t> index(size.size(), 0);
      for (int64_t e = 0; e < numel; ++e) {
        int64_t src = offset;
        for (size_t k = 0; k < size.size(); ++k) src += index[k] * stride[k];
        std::memcpy(out + e * item, base + src * item, item);
        for (size_t k = size.size(); k-- > 0;) {
          if (++index[k] < size[k]) break;
          index[k] = 0;
        }
      }
    }
    return v;
  }

  std::string path_;
  const unsigned char* d_;
  size_t n_, pos_ = 0;
  std::shared_ptr<Mapping> mapping_;
  const std::map<std::string, std::pair<uint64_t, uint64_t>>& entries_;
  std::string prefix_;
  std::vector<Ref> stack_;
  std::vector<size_t> marks_;
  std::map<uint64_t, Ref> memo_;
};

}  // namespace

std::vector<std::pair<std::string, Tensor>> read_torch_state_dict(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, ": cannot open: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    fail(path, ": cannot stat: ", std::strerror(errno));
  }
  if (st.st_size < 22) {
    ::close(fd);
    fail(path, ": not a zip archive (", st.st_size, " bytes): not a torch.save file, or truncated");
  }
  auto mapping = std::make_shared<Mapping>();
  mapping->size = static_cast<size_t>(st.st_size);
  void* address = mapping->size ? ::mmap(nullptr, mapping->size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
  ::close(fd);
  if (address == MAP_FAILED) fail(path, ": cannot map ", mapping->size, " bytes");
  mapping->data = static_cast<const unsigned char*>(address);

  const auto entries = zip_entries(path, *mapping);
  std::string pickle_name;
  for (const auto& [name, range] : entries)
    if (name.size() >= 8 && name.compare(name.size() - 8, 8, "data.pkl") == 0 &&
        name.find('/') == name.size() - 9)  // <archive>/data.pkl
      pickle_name = name;
  if (pickle_name.empty()) fail(path, ": no <name>/data.pkl in the archive: not a torch.save file");
  const auto [begin, end] = entries.at(pickle_name);
  Unpickler unpickler(path, mapping->data + begin, end - begin, mapping, entries,
                      pickle_name.substr(0, pickle_name.size() - 8));
  const Ref root = unpickler.run();
  if (root->kind != Value::Dict) fail(path, ": the pickle holds no dict (not a state dict)");
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& [k, v] : root->dict) {
    if (k->kind != Value::Str) fail(path, ": a state dict key that is not a string");
    if (v->kind != Value::TensorValue) {
      log_warn(path, ": entry '", k->s, "' is not a tensor; skipped");
      continue;
    }
    out.emplace_back(k->s, v->tensor);
  }
  return out;
}

}  // namespace mmx
