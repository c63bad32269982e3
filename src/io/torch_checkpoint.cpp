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
#include <deque>
#include <map>
#include <memory>
#include <set>

#include "core/checked.hpp"
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

// The archive's bytes. Offsets come from the archive itself (zip64 fields are 64-bit and can hold
// anything), so every range is checked against the size without computing an end that could wrap.
struct ZipBytes {
  const unsigned char* d;
  uint64_t n;
  bool fits(uint64_t at, uint64_t len) const { return at <= n && len <= n - at; }
};

// The stored (uncompressed) entries of a zip archive, with zip64 sizes and offsets: name → [begin, end).
std::map<std::string, std::pair<uint64_t, uint64_t>> zip_entries(const std::string& path, const Mapping& m) {
  const ZipBytes z{m.data, m.size};
  const uint64_t n = m.size;
  if (n < 22) fail(path, ": not a zip archive (", n, " bytes)");
  uint64_t eocd = UINT64_MAX;
  for (uint64_t i = n - 22 + 1; i-- > (n > 22 + 65535 ? n - 22 - 65535 : 0);)
    if (le(z.d + i, 4) == 0x06054b50) {
      eocd = i;
      break;
    }
  if (eocd == UINT64_MAX) {
    if (n >= 2 && z.d[0] == 0x80) fail(path, ": a torch.save file of the legacy (pre-1.6, non-zip) format; re-save it with a current torch");
    fail(path, ": not a zip archive (no end-of-central-directory record): not a torch.save file, or truncated");
  }
  uint64_t count = le(z.d + eocd + 10, 2), cd_size = le(z.d + eocd + 12, 4), cd_offset = le(z.d + eocd + 16, 4);
  if (eocd >= 20 && le(z.d + eocd - 20, 4) == 0x07064b50) {  // zip64 locator → zip64 end record
    const uint64_t record = le(z.d + eocd - 20 + 8, 8);
    if (!z.fits(record, 56) || le(z.d + record, 4) != 0x06064b50) fail(path, ": damaged zip64 end record");
    count = le(z.d + record + 32, 8);
    cd_size = le(z.d + record + 40, 8);
    cd_offset = le(z.d + record + 48, 8);
  }
  if (!z.fits(cd_offset, cd_size)) fail(path, ": the zip directory runs past the end of the file: truncated?");
  // Each directory entry takes at least 46 bytes: a count larger than the directory can hold is a lie.
  if (count > cd_size / 46) fail(path, ": the zip directory claims ", count, " entries in ", cd_size, " bytes");
  std::map<std::string, std::pair<uint64_t, uint64_t>> entries;
  uint64_t p = cd_offset;
  for (uint64_t e = 0; e < count; ++e) {
    if (!z.fits(p, 46) || le(z.d + p, 4) != 0x02014b50) fail(path, ": damaged zip directory entry ", e);
    const uint64_t method = le(z.d + p + 10, 2), name_len = le(z.d + p + 28, 2), extra_len = le(z.d + p + 30, 2),
                   comment_len = le(z.d + p + 32, 2);
    uint64_t size = le(z.d + p + 20, 4), compressed = le(z.d + p + 24, 4), local = le(z.d + p + 42, 4);
    if (!z.fits(p + 46, name_len + extra_len + comment_len)) fail(path, ": damaged zip directory entry ", e);
    const std::string name(reinterpret_cast<const char*>(z.d + p + 46), name_len);
    const uint64_t extra_end = p + 46 + name_len + extra_len;
    for (uint64_t x = p + 46 + name_len; x + 4 <= extra_end;) {  // zip64 extra field
      const uint64_t id = le(z.d + x, 2), len = le(z.d + x + 2, 2);
      if (len > extra_end - x - 4) fail(path, ": zip entry '", name, "': an extra field runs past its entry");
      if (id == 0x0001) {
        uint64_t q = x + 4;
        const uint64_t field_end = q + len;
        auto next = [&](const char* what) {
          if (field_end - q < 8) fail(path, ": zip entry '", name, "': the zip64 field has no ", what);
          const uint64_t v = le(z.d + q, 8);
          q += 8;
          return v;
        };
        if (size == 0xffffffff) size = next("size");
        if (compressed == 0xffffffff) compressed = next("compressed size");
        if (local == 0xffffffff) local = next("header offset");
      }
      x += 4 + len;
    }
    if (method != 0) fail(path, ": zip entry '", name, "' is compressed (method ", method, "); torch.save stores entries");
    if (!z.fits(local, 30) || le(z.d + local, 4) != 0x04034b50) fail(path, ": damaged local header of '", name, "'");
    const uint64_t begin = local + 30 + le(z.d + local + 26, 2) + le(z.d + local + 28, 2);  // ≤ n + 2¹⁷: no wrap
    if (!z.fits(begin, size)) fail(path, ": zip entry '", name, "' runs past the end of the file: truncated?");
    entries[name] = {begin, begin + size};
    p += 46 + name_len + extra_len + comment_len;
  }
  return entries;
}

// Limits of the pickle machine. A state dict nests four deep (dict → tuple of arguments → tuple of
// sizes) and needs about 25 values and a few memo slots per tensor; the limits leave room for 40 000
// tensors (SDXL's UNet has 1 700) and turn a hostile pickle into an error, not a crash. Memory is what
// they bound: a one-byte opcode makes a value, so 5 MB of ']' asked for 5 million values (1 GiB); now
// at most 2^20 values of 88 bytes and 2^20 memo slots, about 160 MB whatever the pickle says.
constexpr size_t kMaxPickleDepth = 64;
constexpr size_t kMaxPickleValues = size_t(1) << 20;
constexpr size_t kMaxPickleMemo = size_t(1) << 20;

// A value of the restricted pickle machine. Values live in the machine's arena and refer to each other
// by plain pointers: a cycle built through the memo leaks nothing, and freeing a deep nest recurses nowhere.
struct Value;
using Ref = Value*;
struct Value {
  enum Kind : uint8_t { None, Bool, Int, Float, Str, Tuple, List, Dict, Global, Storage, TensorValue } kind = None;
  DType dtype = DType::F32;  // Storage
  uint32_t depth = 0;        // containers: 1 + the deepest item's depth
  int64_t i = 0;             // Int, Bool; Storage: its element count
  double f = 0;
  std::string s;             // Str; Global: "module.name"; Storage: its key
  std::vector<Ref> items;    // Tuple, List; Dict: key, value, key, value… in insertion order
  const Tensor* tensor = nullptr;  // TensorValue, in the machine's tensor arena
};

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
        case '(':                                         // MARK
          if (marks_.size() == kMaxPickleDepth) bad("MARKs nested deeper than " + std::to_string(kMaxPickleDepth));
          marks_.push_back(stack_.size());
          break;
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
        case 't': { auto v = make(Value::Tuple); v->items = pop_to_mark(); nest(v, v->items); stack_.push_back(v); break; }
        case 0x85: case 0x86: case 0x87: {                // TUPLE1..3
          auto v = make(Value::Tuple);
          v->items.resize(op - 0x84);
          for (size_t k = v->items.size(); k-- > 0;) v->items[k] = pop();
          nest(v, v->items);
          stack_.push_back(v);
          break;
        }
        case 'a': { Ref x = pop(); nest(list_of(top()), {x}); list_of(top())->items.push_back(x); break; }  // APPEND
        case 'e': {                                       // APPENDS
          auto xs = pop_to_mark();
          Value* l = list_of(top());
          nest(l, xs);
          l->items.insert(l->items.end(), xs.begin(), xs.end());
          break;
        }
        case 's': {                                       // SETITEM
          Ref v = pop(), k = pop();
          Value* d = dict_of(top());
          nest(d, {k, v});
          d->items.push_back(k);
          d->items.push_back(v);
          break;
        }
        case 'u': {                                       // SETITEMS
          auto xs = pop_to_mark();
          if (xs.size() % 2) bad("SETITEMS with an odd number of values");
          Value* d = dict_of(top());
          nest(d, xs);
          d->items.insert(d->items.end(), xs.begin(), xs.end());
          break;
        }
        case 'q': put(byte()); break;                     // BINPUT
        case 'r': put(le(take(4), 4)); break;             // LONG_BINPUT
        case 0x94: put(memo_.size()); break;              // MEMOIZE
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
  Ref make(Value::Kind k) {
    if (values_.size() == kMaxPickleValues) bad("more than " + std::to_string(kMaxPickleValues) + " values");
    values_.emplace_back().kind = k;
    return &values_.back();
  }
  // `container` now holds `items`: its depth grows past theirs (a cycle through the memo grows it on
  // every turn, so it ends at the limit too).
  void nest(Value* container, const std::vector<Ref>& items) {
    for (const Ref& x : items) container->depth = std::max<uint32_t>(container->depth, x->depth + 1);
    if (container->depth > kMaxPickleDepth) bad("values nested deeper than " + std::to_string(kMaxPickleDepth));
  }
  void put(uint64_t key) {
    if (memo_.size() == kMaxPickleMemo && !memo_.count(key)) bad("more than " + std::to_string(kMaxPickleMemo) + " memo slots");
    memo_[key] = top();
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
    return r;
  }
  Value* dict_of(const Ref& r) const {
    if (r->kind != Value::Dict) bad("SETITEM on something that is not a dict");
    return r;
  }

  Ref global(const std::string& name) {
    static const std::set<std::string> allowed = {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
                                                  "torch._utils._rebuild_parameter"};
    if (!allowed.count(name) && !storage_types().count(name))
      bad("global '" + name + "' is not part of a state dict");
    auto v = make(Value::Global);
    v->s = name;
    return v;
  }

  // ('storage', torch.<Type>Storage, key, location, numel) → the bytes of <prefix>data/<key>.
  Ref persistent(const Ref& pid) {
    if (pid->kind != Value::Tuple || pid->items.size() != 5 || pid->items[0]->kind != Value::Str ||
        pid->items[0]->s != "storage" || pid->items[1]->kind != Value::Global || pid->items[2]->kind != Value::Str ||
        pid->items[4]->kind != Value::Int)
      bad("a persistent id that is not a storage");
    const auto type = storage_types().find(pid->items[1]->s);  // another allowed global in a storage's place
    if (type == storage_types().end()) bad("a persistent id whose storage type is '" + pid->items[1]->s + "'");
    auto v = make(Value::Storage);
    v->dtype = type->second;
    v->s = pid->items[2]->s;
    v->i = pid->items[4]->i;
    auto it = entries_.find(prefix_ + "data/" + v->s);
    if (it == entries_.end()) fail(path_, ": storage '", v->s, "' has no data/", v->s, " entry in the archive");
    const uint64_t have = it->second.second - it->second.first;
    if (v->i < 0) fail(path_, ": storage '", v->s, "' has a negative size ", v->i);
    const uint64_t need = checked_mul<uint64_t>(static_cast<uint64_t>(v->i), dtype_size(v->dtype),
                                                path_ + ": storage '" + v->s + "' in bytes");
    if (have < need) fail(path_, ": storage '", v->s, "' holds ", have, " bytes, fewer than its ", v->i, " values");
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

  Ref call(const Ref& fn, const Ref& args) {
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
    const std::string what = path_ + ": a tensor of storage '" + storage.s + "'";
    const int64_t numel = checked_numel(size.begin(), size.end(), what + ": element count");
    int64_t last = offset;
    bool contiguous = true;
    int64_t expected = 1;
    for (size_t k = size.size(); k-- > 0;) {
      if (size[k] > 0) last = checked_add(last, checked_mul(size[k] - 1, stride[k], what), what);
      if (size[k] != 1 && stride[k] != expected) contiguous = false;
      expected = checked_mul(expected, size[k], what);
    }
    if (offset < 0 || (numel > 0 && last >= storage.i))
      fail(path_, ": a tensor reaches past the end of its storage '", storage.s, "'");
    // A view is copied out element by element below; more elements than its storage holds would be an
    // expanded (broadcast) tensor, which save_pretrained never writes and which could ask for any memory.
    if (!contiguous && numel > storage.i)
      fail(what, " has ", numel, " elements, more than its storage's ", storage.i, " (an expanded view)");
    const auto& range = entries_.at(prefix_ + "data/" + storage.s);
    const size_t item = dtype_size(storage.dtype);
    const unsigned char* base = mapping_->data + range.first;
    auto v = make(Value::TensorValue);
    const Shape shape(size.begin(), size.end());
    const unsigned char* first = base + offset * item;
    Tensor& tensor = tensors_.emplace_back();
    v->tensor = &tensor;
    if (contiguous && reinterpret_cast<uintptr_t>(first) % item == 0) {
      tensor = Tensor::from_external(first, shape, storage.dtype, mapping_);
    } else {  // a strided view (rare in a state dict): gathered element by element
      tensor = Tensor::empty(shape, storage.dtype);
      auto* out = static_cast<unsigned char*>(tensor.raw_mutable());
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
  std::deque<Value> values_;  // the arena every Ref points into (a deque: growing moves nothing)
  std::deque<Tensor> tensors_;
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
  for (size_t e = 0; e + 1 < root->items.size(); e += 2) {
    const Ref k = root->items[e], v = root->items[e + 1];
    if (k->kind != Value::Str) fail(path, ": a state dict key that is not a string");
    if (v->kind != Value::TensorValue) {
      log_warn(path, ": entry '", k->s, "' is not a tensor; skipped");
      continue;
    }
    out.emplace_back(k->s, *v->tensor);
  }
  return out;
}

}  // namespace mmx
