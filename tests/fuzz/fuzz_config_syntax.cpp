// The configuration file's syntax layer on arbitrary text: it either builds a tree or
// names one line (or the file) as the problem; it never crashes, hangs or reads past the
// text. Whatever it accepted, every entry and section it made carries a line of the text.
#include "daemon/config_syntax.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

using rcpg::daemon::config_syntax::Section;

void check_lines(const Section& section, int lines)
{
    for (const auto& entry : section.entries) {
        if (entry.line < 1 || entry.line > lines || entry.key.empty()) {
            std::abort();
        }
    }
    for (const Section& child : section.sections) {
        if (child.line < 1 || child.line > lines || child.name.empty()) {
            std::abort();
        }
        check_lines(child, lines);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    Section root;
    const rcpg::base::Status status = rcpg::daemon::config_syntax::parse_syntax("fuzz.conf", text, root);
    if (status.ok()) {
        int lines = 1;
        for (char c : text) {
            lines += c == '\n' ? 1 : 0;
        }
        check_lines(root, lines);
    } else if (status.context().rfind("fuzz.conf:", 0) != 0) {
        std::abort();  // every problem names the file (and its line)
    }
    return 0;
}
