// The configuration file's syntax layer: corosync.conf's lines (the syntax of corosync
// 3.x's coroparse, config.hpp describes it) as a tree of sections and keys, knowing nothing
// of their meaning. The semantic layer (config.cpp) reads the tree. Errors are one line,
// "PATH:LINE: problem" or "PATH: problem" for the file as a whole. The text is anything
// the file holds: a fuzz target (tests/fuzz/fuzz_config_syntax.cpp) feeds it garbage.
#pragma once

#include "base/status.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace rcpg::daemon::config_syntax {

struct Entry {
    std::string key;
    std::string value;  // the rest of the line after the first ':', trimmed
    int line = 0;
};

struct Section {
    std::string name;
    int line = 0;  // the line of `name {`; 0 for the file itself
    std::vector<Entry> entries;
    std::vector<Section> sections;
};

// Parses `text`, the contents of the file at `path` (named in errors), into `root`.
base::Status parse_syntax(const std::string& path, std::string_view text, Section& root);
// Reads the file at `path` and parses it into `root`.
base::Status parse_file(const std::string& path, Section& root);

// A problem with what the file says, at the line it is about: "PATH:LINE: problem".
base::Status at_line(const std::string& path, int line, std::string_view problem);
// A problem with the file as a whole: "PATH: problem".
base::Status at_file(const std::string& path, std::string_view problem, base::Errc code = base::Errc::malformed);

}  // namespace rcpg::daemon::config_syntax
