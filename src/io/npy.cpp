// NumPy's .npy (format version 1.0) and .npz (numpy.savez: a zip archive of .npy members, stored
// uncompressed), written atomically.
#include "mmx/npy.hpp"

#include <zlib.h>

#include <cstdint>
#include <set>

#include "mmx/error.hpp"
#include "mmx/files.hpp"

namespace mmx {
namespace {

void put16(std::string& out, uint32_t v) {
  out += static_cast<char>(v & 0xff);
  out += static_cast<char>((v >> 8) & 0xff);
}
void put32(std::string& out, uint32_t v) {
  put16(out, v & 0xffff);
  put16(out, v >> 16);
}

}  // namespace

std::string npy_bytes(const Tensor& t) {
  const char* descr = nullptr;
  switch (t.dtype()) {
    case DType::F32: descr = "<f4"; break;
    case DType::F64: descr = "<f8"; break;
    case DType::I64: descr = "<i8"; break;
    case DType::I32: descr = "<i4"; break;
    case DType::U8: descr = "|u1"; break;
    case DType::I8: descr = "|i1"; break;
    default: fail(".npy: dtype ", dtype_name(t.dtype()), " has no .npy form here");
  }
  std::string shape = "(";  // Python's tuple repr: (), (8,), (8, 32)
  for (size_t i = 0; i < t.shape().size(); ++i) shape += (i ? ", " : "") + std::to_string(t.shape()[i]);
  shape += t.ndim() == 1 ? ",)" : ")";
  std::string header = str("{'descr': '", descr, "', 'fortran_order': False, 'shape': ", shape, ", }");
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string bytes = "\x93NUMPY";
  bytes += '\x01';
  bytes += '\x00';
  bytes += static_cast<char>(header.size() & 0xff);
  bytes += static_cast<char>((header.size() >> 8) & 0xff);
  bytes += header;
  bytes.append(static_cast<const char*>(t.raw()), t.nbytes());
  return bytes;
}


void write_npy(const std::string& path, const Tensor& tensor) { write_file_atomically(path, npy_bytes(tensor)); }

void write_npz(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& arrays) {
  if (arrays.empty()) fail(path, ": an .npz needs at least one array");
  std::string zip, directory;
  std::set<std::string> names;
  for (const auto& [name, tensor] : arrays) {
    if (name.empty() || name.find('/') != std::string::npos || !names.insert(name).second)
      fail(path, ": array name '", name, "' is empty, holds a '/', or is given twice");
    const std::string member = name + ".npy", data = npy_bytes(tensor);
    // The classic zip format counts in 32 bits; embeddings stay far below (zip64 would be needed past 4 GiB).
    if (data.size() >= 0xffffffffu || zip.size() + data.size() + 4096 >= 0xffffffffu)
      fail(path, ": more than 4 GiB of arrays; write .safetensors instead");
    const uint32_t crc = static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
    const uint32_t offset = static_cast<uint32_t>(zip.size());
    auto header = [&](std::string& out, bool central) {  // the fields both headers share, from "version needed"
      put16(out, 20);      // version needed: 2.0
      put16(out, 0);       // flags
      put16(out, 0);       // method: stored
      put16(out, 0);       // time 00:00:00
      put16(out, 0x21);    // date 1980-01-01
      put32(out, crc);
      put32(out, static_cast<uint32_t>(data.size()));  // compressed size
      put32(out, static_cast<uint32_t>(data.size()));  // uncompressed size
      put16(out, static_cast<uint32_t>(member.size()));
      put16(out, 0);  // extra field length
      if (central) {
        put16(out, 0);  // comment length
        put16(out, 0);  // disk number
        put16(out, 0);  // internal attributes
        put32(out, 0);  // external attributes
        put32(out, offset);
      }
      out += member;
    };
    put32(zip, 0x04034b50);  // local file header
    header(zip, false);
    zip += data;
    put32(directory, 0x02014b50);  // central directory entry
    put16(directory, 20);          // version made by: 2.0
    header(directory, true);
  }
  const uint32_t directory_offset = static_cast<uint32_t>(zip.size());
  zip += directory;
  put32(zip, 0x06054b50);  // end of central directory
  put16(zip, 0);
  put16(zip, 0);
  put16(zip, static_cast<uint32_t>(arrays.size()));
  put16(zip, static_cast<uint32_t>(arrays.size()));
  put32(zip, static_cast<uint32_t>(directory.size()));
  put32(zip, directory_offset);
  put16(zip, 0);  // comment length
  write_file_atomically(path, zip);
}

}  // namespace mmx
