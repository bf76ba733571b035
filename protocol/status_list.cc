#include "protocol/status_list.h"

#include <zlib.h>

#include <limits>
#include <optional>

#include "protocol/encoding.h"

namespace backpack::protocol {
namespace {

// Standard base64 and base64url share all but two characters.
std::optional<std::string> DecodeAnyBase64(std::string_view text) {
  std::string url(text);
  for (char& c : url) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return Base64UrlDecode(url);
}

class Inflater {
 public:
  Inflater() { ok_ = inflateInit2(&stream_, 16 + MAX_WBITS) == Z_OK; }  // 16+: a gzip wrapper only
  ~Inflater() {
    if (ok_) inflateEnd(&stream_);
  }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;

  Result<std::string> Run(std::string_view input, size_t max_bytes) {
    if (!ok_) return Internal("zlib could not start inflating");
    std::string out;
    stream_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
    stream_.avail_in = static_cast<uInt>(input.size());
    char buffer[16384];
    for (;;) {
      stream_.next_out = reinterpret_cast<Bytef*>(buffer);
      stream_.avail_out = sizeof(buffer);
      const int rc = inflate(&stream_, Z_NO_FLUSH);
      const size_t produced = sizeof(buffer) - stream_.avail_out;
      if (out.size() + produced > max_bytes) {
        return InvalidArgument("the status list inflates to more than " + std::to_string(max_bytes) + " bytes");
      }
      out.append(buffer, produced);
      if (rc == Z_STREAM_END) break;
      if (rc == Z_OK) continue;
      if (rc == Z_BUF_ERROR && stream_.avail_in == 0) {
        return InvalidArgument("the status list's gzip data is truncated");
      }
      return InvalidArgument(std::string("the status list is not valid gzip data") +
                             (stream_.msg != nullptr ? std::string(" (") + stream_.msg + ")" : ""));
    }
    if (stream_.avail_in != 0) return InvalidArgument("the status list has bytes after its gzip data");
    return out;
  }

 private:
  z_stream stream_{};
  bool ok_ = false;
};

}  // namespace

Result<std::string> DecodeStatusList(std::string_view encoded_list, size_t max_bytes) {
  if (encoded_list.empty()) return InvalidArgument("the encoded status list is empty");
  std::string_view text = encoded_list;
  // A gzip stream starts with 0x1f, so its base64 starts with 'H': a leading
  // 'u' can only be the multibase prefix.
  if (text.front() == 'u') text.remove_prefix(1);
  std::optional<std::string> gzip = DecodeAnyBase64(text);
  if (!gzip) return InvalidArgument("the encoded status list is not base64 or base64url");
  if (gzip->size() < 18 || static_cast<unsigned char>((*gzip)[0]) != 0x1f ||
      static_cast<unsigned char>((*gzip)[1]) != 0x8b) {
    return InvalidArgument("the encoded status list is not gzip data");
  }
  if (gzip->size() > std::numeric_limits<uInt>::max()) return InvalidArgument("the encoded status list is too large");
  Inflater inflater;
  return inflater.Run(*gzip, max_bytes);
}

Result<uint32_t> StatusListEntry(std::string_view bitstring, uint64_t index, int size) {
  if (size < 1 || size > 8) return InvalidArgument("a status entry size must be 1 to 8 bits");
  const uint64_t bits = static_cast<uint64_t>(bitstring.size()) * 8;
  const uint64_t width = static_cast<uint64_t>(size);
  if (index >= bits / width) {
    return InvalidArgument("status list index " + std::to_string(index) + " is outside the list of " +
                           std::to_string(bits / width) + " entries");
  }
  uint32_t value = 0;
  for (uint64_t bit = index * width; bit < index * width + width; ++bit) {
    const auto byte = static_cast<unsigned char>(bitstring[bit / 8]);
    value = (value << 1) | ((byte >> (7 - bit % 8)) & 1u);
  }
  return value;
}

}  // namespace backpack::protocol
