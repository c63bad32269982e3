// Hand-made torch.save archives for the hostile-input tests: a pickle written opcode by opcode (protocol
// 2, the opcodes torch.save uses) and a stored zip around it, with room to lie in any field.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mmx::test {

inline void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

struct Pickle {
  std::string bytes = std::string("\x80\x02", 2);  // PROTO 2
  Pickle& op(char c) { bytes += c; return *this; }
  Pickle& text(const std::string& s) {              // BINUNICODE
    bytes += 'X';
    put_le(bytes, s.size(), 4);
    bytes += s;
    return *this;
  }
  Pickle& integer(int64_t v) {                       // LONG1 with 8 bytes: any 64-bit value
    bytes += '\x8a';
    bytes += '\x08';
    put_le(bytes, static_cast<uint64_t>(v), 8);
    return *this;
  }
  Pickle& global(const std::string& module, const std::string& name) {
    bytes += 'c' + module + '\n' + name + '\n';
    return *this;
  }
  Pickle& tuple_of_ints(const std::vector<int64_t>& v) {
    op('(');
    for (int64_t x : v) integer(x);
    return op('t');
  }
  // {name: _rebuild_tensor_v2(storage(key, numel), offset, size, stride)} as torch.save writes a state dict.
  static Pickle state_dict(const std::string& name, const std::string& storage_type, int64_t storage_numel,
                           int64_t offset, const std::vector<int64_t>& size, const std::vector<int64_t>& stride) {
    Pickle p;
    p.global("collections", "OrderedDict").op(')').op('R');
    p.op('(').text(name);
    p.global("torch._utils", "_rebuild_tensor_v2");
    p.op('(');
    p.op('(').text("storage").global("torch", storage_type).text("0").text("cpu").integer(storage_numel).op('t').op('Q');
    p.integer(offset).tuple_of_ints(size).tuple_of_ints(stride).op('\x89');
    p.global("collections", "OrderedDict").op(')').op('R');
    p.op('t').op('R');
    p.op('u').op('.');
    return p;
  }
};

struct ZipEntry {
  std::string name, data;
  std::optional<uint64_t> zip64_size;    // a zip64 extra field with this size (the 32-bit field says 0xffffffff)
  std::optional<uint64_t> zip64_offset;  // ... and/or this local header offset
};

// A stored zip archive; `zip64_end` writes a zip64 end record locator pointing at that offset instead.
inline std::string zip_archive(const std::vector<ZipEntry>& entries, std::optional<uint64_t> zip64_end = {}) {
  std::string out, directory;
  for (const auto& e : entries) {
    const uint64_t local = out.size();
    put_le(out, 0x04034b50, 4);
    put_le(out, 20, 2), put_le(out, 0, 2), put_le(out, 0, 2), put_le(out, 0, 4), put_le(out, 0, 4);  // ver, flags, method, time/date, crc
    put_le(out, e.data.size(), 4), put_le(out, e.data.size(), 4), put_le(out, e.name.size(), 2), put_le(out, 0, 2);
    out += e.name + e.data;
    std::string extra;
    if (e.zip64_size || e.zip64_offset) {
      put_le(extra, 0x0001, 2);
      put_le(extra, 8 * ((e.zip64_size ? 2 : 0) + (e.zip64_offset ? 1 : 0)), 2);
      if (e.zip64_size) put_le(extra, *e.zip64_size, 8), put_le(extra, *e.zip64_size, 8);  // size, compressed
      if (e.zip64_offset) put_le(extra, *e.zip64_offset, 8);
    }
    put_le(directory, 0x02014b50, 4);
    put_le(directory, 20, 2), put_le(directory, 20, 2), put_le(directory, 0, 2), put_le(directory, 0, 2);
    put_le(directory, 0, 4), put_le(directory, 0, 4);                                               // time/date, crc
    put_le(directory, e.zip64_size ? 0xffffffff : e.data.size(), 4);                                 // compressed
    put_le(directory, e.zip64_size ? 0xffffffff : e.data.size(), 4);                                 // size
    put_le(directory, e.name.size(), 2), put_le(directory, extra.size(), 2), put_le(directory, 0, 2);
    put_le(directory, 0, 2), put_le(directory, 0, 2), put_le(directory, 0, 4);
    put_le(directory, e.zip64_offset ? 0xffffffff : local, 4);
    directory += e.name + extra;
  }
  const uint64_t cd_offset = out.size();
  out += directory;
  if (zip64_end) {  // the locator: signature, disk, offset of the zip64 end record, disks
    put_le(out, 0x07064b50, 4), put_le(out, 0, 4), put_le(out, *zip64_end, 8), put_le(out, 1, 4);
  }
  put_le(out, 0x06054b50, 4), put_le(out, 0, 2), put_le(out, 0, 2);
  put_le(out, entries.size(), 2), put_le(out, entries.size(), 2);
  put_le(out, directory.size(), 4), put_le(out, cd_offset, 4), put_le(out, 0, 2);
  return out;
}

// archive/data.pkl with `pickle`, and archive/data/0 holding `storage` bytes.
inline std::string torch_archive(const Pickle& pickle, const std::string& storage) {
  return zip_archive({{"archive/data.pkl", pickle.bytes, {}, {}}, {"archive/data/0", storage, {}, {}}});
}

}  // namespace mmx::test
