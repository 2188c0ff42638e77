#include "daemon/config_syntax.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

namespace rcpg::daemon::config_syntax {

namespace {

std::string_view trim(std::string_view text)
{
    // corosync trims spaces and tabs; '\r' too, so files edited on Windows read the same.
    constexpr std::string_view kBlank = " \t\r";
    const size_t first = text.find_first_not_of(kBlank);
    if (first == std::string_view::npos) {
        return {};
    }
    const size_t last = text.find_last_not_of(kBlank);
    return text.substr(first, last - first + 1);
}

}  // namespace

base::Status at_line(const std::string& path, int line, std::string_view problem)
{
    return {base::Errc::malformed, base::Layer::config, fmt::format("{}:{}: {}", path, line, problem)};
}

base::Status at_file(const std::string& path, std::string_view problem, base::Errc code)
{
    return {code, base::Layer::config, fmt::format("{}: {}", path, problem)};
}

namespace {

// Reads the whole file into `text`.
base::Status read_text(const std::string& path, std::string& text)
{
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        return at_file(path, fmt::format("cannot open: {}", std::strerror(errno)), base::Errc::io_error);
    }
    char buffer[4096];
    for (;;) {
        const ssize_t count = ::read(fd, buffer, sizeof buffer);
        if (count < 0 && errno == EINTR) {
            continue;
        }
        if (count < 0) {
            const int saved_errno = errno;
            ::close(fd);
            return at_file(path, fmt::format("cannot read: {}", std::strerror(saved_errno)), base::Errc::io_error);
        }
        if (count == 0) {
            break;
        }
        text.append(buffer, static_cast<size_t>(count));
    }
    ::close(fd);
    return {};
}

}  // namespace

// The order of the checks follows coroparse: a line with '{' opens a section, else a line
// with ':' is a key, else it must be '}'.
base::Status parse_syntax(const std::string& path, std::string_view text, Section& root)
{
    // The open sections, outermost first. Only the innermost one gains children while it
    // is open, so pointers to its ancestors stay valid.
    std::vector<Section*> open{&root};
    int line_number = 0;
    size_t start = 0;
    while (start < text.size()) {
        size_t end = text.find('\n', start);
        if (end == std::string_view::npos) {
            end = text.size();
        }
        const std::string_view line = trim(text.substr(start, end - start));
        start = end + 1;
        ++line_number;

        if (line.empty() || line.front() == '#') {
            continue;
        }
        if (const size_t brace = line.find('{'); brace != std::string_view::npos) {
            if (brace + 1 != line.size()) {
                return at_line(path, line_number, "expected nothing after '{' on a section's line");
            }
            const std::string_view name = trim(line.substr(0, brace));
            if (name.empty()) {
                return at_line(path, line_number, "expected a section name before '{'");
            }
            Section& child = open.back()->sections.emplace_back();
            child.name = name;
            child.line = line_number;
            open.push_back(&child);
            continue;
        }
        if (const size_t colon = line.find(':'); colon != std::string_view::npos) {
            const std::string_view key = trim(line.substr(0, colon));
            if (key.empty()) {
                return at_line(path, line_number, "expected a key name before ':'");
            }
            open.back()->entries.push_back({std::string(key), std::string(trim(line.substr(colon + 1))), line_number});
            continue;
        }
        if (line == "}") {
            if (open.size() == 1) {
                return at_line(path, line_number, "'}' closes no section: there is no open section here");
            }
            open.pop_back();
            continue;
        }
        if (line.find('}') != std::string_view::npos) {
            return at_line(path, line_number, "expected '}' alone on its line");
        }
        return at_line(path, line_number, "expected 'key: value', 'section {' or '}'");
    }
    if (open.size() > 1) {
        const Section& unclosed = *open.back();
        return at_line(
            path, unclosed.line,
            fmt::format("section '{}' is never closed: '}}' missing before the end of the file", unclosed.name));
    }
    return {};
}

base::Status parse_file(const std::string& path, Section& root)
{
    std::string text;
    if (base::Status read = read_text(path, text); !read) {
        return read;
    }
    return parse_syntax(path, text, root);
}

}  // namespace rcpg::daemon::config_syntax
