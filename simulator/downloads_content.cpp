// certn-sim's download content: a file's pseudo-random bytes (generate_content), produced at
// any offset without the bytes before it, and the small PDF of a report. Pure; no I/O.
#include <array>
#include <bit>
#include <cstdio>
#include <cstring>
#include <vector>

#include "downloads.hpp"
#include "downloads_detail.hpp"

namespace certn_sim {

using downloads_detail::splitmix64;

namespace downloads_detail {

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace downloads_detail

namespace {

// Word `index` of stream `seed`: each word is independent of the others, so any offset can be
// produced without the bytes before it.
std::uint64_t content_word(std::uint64_t stream_key, std::uint64_t index) {
  return splitmix64(stream_key ^ (index * 0xd1b54a32d192ed03ULL));
}

// A PDF literal string: parentheses and backslashes escaped, anything unprintable as octal.
std::string pdf_string(std::string_view text) {
  std::string out = "(";
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '(' || c == ')' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (byte < 0x20 || byte > 0x7e) {
      char octal[8];
      std::snprintf(octal, sizeof octal, "\\%03o", static_cast<unsigned>(byte));
      out += octal;
    } else {
      out.push_back(c);
    }
  }
  out.push_back(')');
  return out;
}

}  // namespace

void generate_content(std::uint64_t seed, std::uint64_t offset, std::span<char> out) {
  const std::uint64_t stream_key = splitmix64(seed);
  std::size_t done = 0;
  std::uint64_t index = offset / 8;
  // Bytes of each word are taken least significant first, whatever the machine's byte order.
  const auto word_bytes = [&](std::uint64_t word_index) {
    std::uint64_t word = content_word(stream_key, word_index);
    if constexpr (std::endian::native == std::endian::big) {
      word = __builtin_bswap64(word);
    }
    std::array<char, 8> bytes{};
    std::memcpy(bytes.data(), &word, 8);
    return bytes;
  };
  if (const std::size_t skip = offset % 8; skip != 0 && !out.empty()) {
    const auto bytes = word_bytes(index++);
    done = std::min(out.size(), 8 - skip);
    std::memcpy(out.data(), bytes.data() + skip, done);
  }
  for (; out.size() - done >= 8; done += 8) {
    const auto bytes = word_bytes(index++);
    std::memcpy(out.data() + done, bytes.data(), 8);
  }
  if (done < out.size()) {
    const auto bytes = word_bytes(index);
    std::memcpy(out.data() + done, bytes.data(), out.size() - done);
  }
}

std::string make_report_pdf(std::string_view case_id, std::string_view report_file_id) {
  std::string text = "BT /F1 18 Tf 72 720 Td " + pdf_string("Certn background check report") +
                     " Tj ET\nBT /F1 12 Tf 72 690 Td " +
                     pdf_string("Case: " + std::string(case_id)) +
                     " Tj ET\nBT /F1 12 Tf 72 672 Td " +
                     pdf_string("Report file: " + std::string(report_file_id)) + " Tj ET\n";
  const std::vector<std::string> objects = {
      "<< /Type /Catalog /Pages 2 0 R >>",
      "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
      "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> "
      ">> /Contents 4 0 R >>",
      "<< /Length " + std::to_string(text.size()) + " >>\nstream\n" + text + "endstream",
      "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
  };
  // The second line's bytes above 127 mark the file as binary for transfer tools.
  std::string pdf = "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n";
  std::vector<std::size_t> offsets;
  for (std::size_t i = 0; i < objects.size(); ++i) {
    offsets.push_back(pdf.size());
    pdf += std::to_string(i + 1) + " 0 obj\n" + objects[i] + "\nendobj\n";
  }
  const std::size_t xref_at = pdf.size();
  pdf += "xref\n0 " + std::to_string(objects.size() + 1) + "\n0000000000 65535 f \n";
  for (const std::size_t offset : offsets) {
    char entry[64];
    std::snprintf(entry, sizeof entry, "%010zu 00000 n \n", offset);
    pdf += entry;
  }
  pdf += "trailer\n<< /Size " + std::to_string(objects.size() + 1) +
         " /Root 1 0 R >>\nstartxref\n" + std::to_string(xref_at) + "\n%%EOF\n";
  return pdf;
}

}  // namespace certn_sim
