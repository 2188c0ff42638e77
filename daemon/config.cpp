// The configuration file's semantic layer: reads the `nodelist`, `uidgid`, `totem` and
// `rcpg` sections of the tree the syntax layer (config_syntax.hpp) made of the file into
// Options. Every error carries the line it is about: "PATH:LINE: problem".
#include "daemon/config.hpp"
#include "daemon/config_syntax.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <string_view>

namespace rcpg::daemon {
namespace {

using config_syntax::at_file;
using config_syntax::at_line;
using config_syntax::Entry;
using config_syntax::parse_file;
using config_syntax::Section;

// A problem of a value, placed at its line by the caller.
base::Status problem(std::string text) { return {base::Errc::malformed, base::Layer::config, std::move(text)}; }

// The key file is a shared secret: corosync's authkey (128 bytes) or 32 random bytes and
// up (HKDF makes the handshake key of either, transport/crypto.hpp); the upper bound keeps
// a mistaken path (a log, a disk image) from being read whole.
constexpr size_t kMinKeyBytes = 32;
constexpr size_t kMaxKeyBytes = 1024;

constexpr uint64_t kMinRingMib = 8;
constexpr uint64_t kMaxRingMib = 2048;
constexpr uint64_t kMinInboundRingMib = 1;
constexpr uint64_t kMaxInboundRingMib = 1024;
constexpr uint64_t kMaxBusyPollUs = 1'000'000;
constexpr uint64_t kMinConnectTimeoutMs = 100;
constexpr uint64_t kMaxConnectTimeoutMs = 600'000;
constexpr uint64_t kMinFailureTimeoutMs = 20;
constexpr uint64_t kMaxFailureTimeoutMs = 600'000;
constexpr uint64_t kMaxStuckClientTimeoutMs = 3'600'000;
constexpr uint64_t kMaxClientsLimit = 1'000'000;
constexpr uint64_t kMaxPinnedMib = 1ull << 24;  // 16 TiB

// ---------------------------------------------------------------------------------------
// Semantic layer.

bool parse_number(std::string_view text, uint64_t& value)
{
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    return !text.empty() && error == std::errc() && end == text.data() + text.size();
}

bool parse_in_range(std::string_view text, uint64_t min, uint64_t max, uint64_t& value)
{
    return parse_number(text, value) && value >= min && value <= max;
}

bool is_power_of_two(uint64_t value) { return value != 0 && (value & (value - 1)) == 0; }

bool parse_nodeid(std::string_view text, uint32_t& nodeid)
{
    uint64_t value = 0;
    if (!parse_in_range(text, 1, std::numeric_limits<uint32_t>::max(), value)) {
        return false;
    }
    nodeid = static_cast<uint32_t>(value);
    return true;
}

// A list value: words separated by spaces, tabs or commas.
std::vector<std::string> split_list(std::string_view text)
{
    std::vector<std::string> words;
    size_t start = 0;
    while (start < text.size()) {
        const size_t first = text.find_first_not_of(" \t,", start);
        if (first == std::string_view::npos) {
            break;
        }
        const size_t last = text.find_first_of(" \t,", first);
        words.emplace_back(text.substr(first, last == std::string_view::npos ? std::string_view::npos : last - first));
        start = last == std::string_view::npos ? text.size() : last;
    }
    return words;
}

// ring0_addr as rdma_cm wants it: IPv4 dotted (a problem without its line).
base::Result<std::string> resolve_ipv4(const std::string& name)
{
    char text[INET_ADDRSTRLEN];
    in_addr address{};
    if (::inet_pton(AF_INET, name.c_str(), &address) == 1) {
        return std::string(::inet_ntop(AF_INET, &address, text, sizeof text));
    }
    in6_addr address6{};
    if (::inet_pton(AF_INET6, name.c_str(), &address6) == 1) {
        return problem(fmt::format("ring0_addr '{}' is an IPv6 address; rcpg needs an IPv4 address", name));
    }
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const int rc = ::getaddrinfo(name.c_str(), nullptr, &hints, &found);
    if (rc != 0 || found == nullptr) {
        return problem(fmt::format("cannot resolve ring0_addr '{}' to an IPv4 address: {}", name,
                                   rc != 0 ? ::gai_strerror(rc) : "no address"));
    }
    const auto* socket_address = reinterpret_cast<const sockaddr_in*>(found->ai_addr);
    std::string dotted = ::inet_ntop(AF_INET, &socket_address->sin_addr, text, sizeof text);
    ::freeaddrinfo(found);
    return dotted;
}

// A relative key file is relative to the configuration file's folder, so a configuration
// and its key can move together.
std::string key_file_path(const std::string& config_path, const std::string& value)
{
    const std::filesystem::path key(value);
    if (key.is_absolute()) {
        return value;
    }
    const std::filesystem::path folder = std::filesystem::path(config_path).parent_path();
    return folder.empty() ? value : (folder / key).string();
}

// The key's bytes, or a problem without its line. The file must be the secret of rcpgd's
// user alone: a regular file (not reached through a symbolic link, which another user
// might re-point), owned by root or by the user rcpgd runs as, with no group or other
// permission bits at all (corosync asks the same of its authkey).
base::Result<std::vector<std::byte>> read_key_file(const std::string& file)
{
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ELOOP) {
            return problem(fmt::format("key file {} is a symbolic link; name the file itself", file));
        }
        return problem(fmt::format("cannot open key file {}: {}", file, std::strerror(errno)));
    }
    struct stat status = {};
    if (::fstat(fd, &status) != 0) {
        const int saved_errno = errno;
        ::close(fd);
        return problem(fmt::format("cannot stat key file {}: {}", file, std::strerror(saved_errno)));
    }
    if (!S_ISREG(status.st_mode)) {
        ::close(fd);
        return problem(fmt::format("key file {} is not a regular file", file));
    }
    if (status.st_uid != 0 && status.st_uid != ::geteuid()) {
        ::close(fd);
        return problem(fmt::format("key file {} is owned by uid {}, not by root or rcpgd's user (uid {}); chown it",
                                   file, status.st_uid, ::geteuid()));
    }
    // A secret others can read, or write (and so replace), is no secret.
    if ((status.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        ::close(fd);
        return problem(fmt::format("key file {} gives permissions to {} (mode {:04o}); chmod 600 it", file,
                                   (status.st_mode & S_IRWXO) != 0 ? "others" : "its group", status.st_mode & 07777));
    }
    std::vector<std::byte> bytes(kMaxKeyBytes + 1);
    size_t length = 0;
    while (length < bytes.size()) {
        const ssize_t count = ::read(fd, bytes.data() + length, bytes.size() - length);
        if (count < 0 && errno == EINTR) {
            continue;
        }
        if (count < 0) {
            const int saved_errno = errno;
            ::close(fd);
            return problem(fmt::format("cannot read key file {}: {}", file, std::strerror(saved_errno)));
        }
        if (count == 0) {
            break;
        }
        length += static_cast<size_t>(count);
    }
    ::close(fd);
    if (length < kMinKeyBytes) {
        return problem(fmt::format("key file {} has {} bytes; at least {} are needed", file, length, kMinKeyBytes));
    }
    if (length > kMaxKeyBytes) {
        return problem(fmt::format("key file {} has {} bytes; at most {} are allowed", file,
                                   std::max<uint64_t>(status.st_size, length), kMaxKeyBytes));
    }
    bytes.resize(length);
    return bytes;
}

// A node of the nodelist with the lines its errors point at.
struct ParsedNode {
    ClusterNode node;
    int section_line = 0;
    int nodeid_line = 0;
};

// Keys of one section, each at most once; returns a problem naming the second one.
base::Status collect_once(const std::string& path, const Section& section, const std::vector<std::string_view>& keys,
                         std::string_view where, std::map<std::string, const Entry*>& found)
{
    for (const Entry& entry : section.entries) {
        if (std::find(keys.begin(), keys.end(), entry.key) == keys.end()) {
            continue;
        }
        auto [slot, inserted] = found.emplace(entry.key, &entry);
        if (!inserted) {
            return at_line(
                path, entry.line,
                fmt::format("'{}' is set twice in {} (first at line {})", entry.key, where, slot->second->line));
        }
    }
    return {};
}

}  // namespace

std::optional<uid_t> user_id(const std::string& text)
{
    uid_t uid = 0;
    if (auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), uid);
        error == std::errc() && end == text.data() + text.size()) {
        return uid;
    }
    const passwd* account = ::getpwnam(text.c_str());
    return account != nullptr ? std::optional(account->pw_uid) : std::nullopt;
}

std::optional<gid_t> group_id(const std::string& text)
{
    gid_t gid = 0;
    if (auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), gid);
        error == std::errc() && end == text.data() + text.size()) {
        return gid;
    }
    const group* entry = ::getgrnam(text.c_str());
    return entry != nullptr ? std::optional(entry->gr_gid) : std::nullopt;
}

namespace {

// corosync's `uidgid { uid: NAME  gid: NAME }` sections: each uid and gid given may
// connect, as with allowed_users and allowed_groups; names or numbers; nothing else may
// appear in them. With `only_uidgid` (a file of uidgid.d/), no other section may either.
base::Status read_uidgid(const std::string& path, const Section& root, bool only_uidgid, Options& options)
{
    for (const Section& section : root.sections) {
        if (section.name != "uidgid") {
            if (only_uidgid) {
                return at_line(path, section.line,
                               fmt::format("only uidgid sections belong in a uidgid.d file, not '{}'", section.name));
            }
            continue;
        }
        if (!section.sections.empty()) {
            return at_line(path, section.sections.front().line, "uidgid: only uid and gid are allowed, not a section");
        }
        for (const Entry& entry : section.entries) {
            if (entry.key == "uid") {
                const std::optional<uid_t> uid = user_id(entry.value);
                if (!uid) {
                    return at_line(path, entry.line, fmt::format("uidgid: no such user '{}'", entry.value));
                }
                options.allowed_uids.push_back(*uid);
            } else if (entry.key == "gid") {
                const std::optional<gid_t> gid = group_id(entry.value);
                if (!gid) {
                    return at_line(path, entry.line, fmt::format("uidgid: no such group '{}'", entry.value));
                }
                options.allowed_gids.push_back(*gid);
            } else {
                return at_line(path, entry.line, fmt::format("uidgid: only uid and gid are allowed, not '{}'", entry.key));
            }
        }
    }
    if (only_uidgid && !root.entries.empty()) {
        return at_line(path, root.entries.front().line, "only uidgid sections belong in a uidgid.d file");
    }
    return {};
}

// The uidgid.d directory beside the configuration file, as corosync reads the one beside
// corosync.conf: every regular file in it (in name order, for stable messages), each
// with uidgid sections only. No directory: nothing to read.
base::Status read_uidgid_directory(const std::string& config_path, Options& options)
{
    const std::filesystem::path directory = std::filesystem::path(config_path).parent_path() / "uidgid.d";
    std::error_code error;
    if (!std::filesystem::is_directory(directory, error)) {
        return {};
    }
    std::vector<std::filesystem::path> files;
    for (const auto& item : std::filesystem::directory_iterator(directory, error)) {
        if (item.is_regular_file(error)) {
            files.push_back(item.path());
        }
    }
    if (error) {
        return at_file(directory.string(), fmt::format("cannot read: {}", error.message()));
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
        Section root;
        if (base::Status status = parse_file(file.string(), root); !status) {
            return status;
        }
        if (base::Status status = read_uidgid(file.string(), root, true, options); !status) {
            return status;
        }
    }
    return {};
}

base::Status read_nodelist(const std::string& path, const Section& root, std::vector<ParsedNode>& nodes)
{
    for (const Section& nodelist : root.sections) {
        if (nodelist.name != "nodelist") {
            continue;
        }
        for (const Section& section : nodelist.sections) {
            if (section.name != "node") {
                continue;  // corosync has none; ignored like its other unknown sections
            }
            // ring1_addr, link priorities and the like are corosync's business: ignored.
            std::map<std::string, const Entry*> keys;
            if (base::Status status = collect_once(path, section, {"nodeid", "ring0_addr", "name"}, "this node section", keys); !status) {
                return status;
            }
            ParsedNode parsed;
            parsed.section_line = section.line;
            const auto nodeid = keys.find("nodeid");
            if (nodeid == keys.end()) {
                return at_line(path, section.line, "node section has no 'nodeid' (a number from 1 to 4294967295)");
            }
            parsed.nodeid_line = nodeid->second->line;
            if (!parse_nodeid(nodeid->second->value, parsed.node.nodeid)) {
                return at_line(
                    path, parsed.nodeid_line,
                    fmt::format("nodeid needs a number from 1 to 4294967295, not '{}'", nodeid->second->value));
            }
            for (const ParsedNode& earlier : nodes) {
                if (earlier.node.nodeid == parsed.node.nodeid) {
                    return at_line(path, parsed.nodeid_line,
                                   fmt::format("nodeid {} is already used by the node at line {}", parsed.node.nodeid,
                                               earlier.section_line));
                }
            }
            const auto address = keys.find("ring0_addr");
            if (address == keys.end()) {
                return at_line(path, section.line,
                               fmt::format("node {} has no 'ring0_addr' (its IPv4 address)", parsed.node.nodeid));
            }
            auto dotted = resolve_ipv4(address->second->value);
            if (!dotted) {
                return at_line(path, address->second->line, dotted.status().context());
            }
            parsed.node.address = std::move(*dotted);
            if (const auto name = keys.find("name"); name != keys.end()) {
                parsed.node.name = name->second->value;
            }
            nodes.push_back(std::move(parsed));
        }
    }
    return {};
}

const std::vector<std::string_view> kRcpgKeys = {
    "device",           "port",          "sequencer_order", "ring_mib",     "inbound_ring_mib",
    "cluster_key_file", "allowed_users", "allowed_groups",  "busy_poll_us", "connect_timeout_ms", "failure_timeout_ms", "stuck_client_timeout_ms",
    "max_clients", "max_clients_per_uid", "max_pinned_mib",
    "sequencer_copy", "wire_security", "state_dir", "client_backlog_mib"};

std::string join(const std::vector<std::string_view>& words)
{
    std::string text;
    for (std::string_view word : words) {
        if (!text.empty()) {
            text += ", ";
        }
        text += word;
    }
    return text;
}

bool has_node(const std::vector<ParsedNode>& nodes, uint32_t nodeid)
{
    return std::any_of(nodes.begin(), nodes.end(), [&](const ParsedNode& node) { return node.node.nodeid == nodeid; });
}

// A per-node port from `rcpg { node { nodeid: N  port: P } }`.
struct PortOverride {
    uint16_t port = 0;
    int line = 0;
};

base::Status read_port_override(const std::string& path, const Section& section, const std::vector<ParsedNode>& nodes,
                               std::map<uint32_t, PortOverride>& overrides)
{
    static const std::vector<std::string_view> kKeys = {"nodeid", "port"};
    for (const Entry& entry : section.entries) {
        if (std::find(kKeys.begin(), kKeys.end(), entry.key) == kKeys.end()) {
            return at_line(path, entry.line,
                           fmt::format("unknown key '{}' in rcpg's node section; known: {}", entry.key, join(kKeys)));
        }
    }
    if (!section.sections.empty()) {
        return at_line(path, section.sections.front().line,
                       fmt::format("unknown section '{}' in rcpg's node section", section.sections.front().name));
    }
    std::map<std::string, const Entry*> keys;
    if (base::Status status = collect_once(path, section, kKeys, "this node section", keys); !status) {
        return status;
    }
    const auto nodeid_entry = keys.find("nodeid");
    if (nodeid_entry == keys.end()) {
        return at_line(path, section.line, "rcpg's node section has no 'nodeid'");
    }
    uint32_t nodeid = 0;
    if (!parse_nodeid(nodeid_entry->second->value, nodeid)) {
        return at_line(
            path, nodeid_entry->second->line,
            fmt::format("nodeid needs a number from 1 to 4294967295, not '{}'", nodeid_entry->second->value));
    }
    if (!has_node(nodes, nodeid)) {
        return at_line(path, nodeid_entry->second->line, fmt::format("node {} is not in the nodelist", nodeid));
    }
    const auto port_entry = keys.find("port");
    if (port_entry == keys.end()) {
        return at_line(path, section.line, fmt::format("rcpg's node section for node {} has no 'port'", nodeid));
    }
    uint64_t port = 0;
    if (!parse_in_range(port_entry->second->value, 1, 65535, port)) {
        return at_line(path, port_entry->second->line,
                       fmt::format("port needs a number from 1 to 65535, not '{}'", port_entry->second->value));
    }
    auto [slot, inserted] = overrides.emplace(nodeid, PortOverride{static_cast<uint16_t>(port), section.line});
    if (!inserted) {
        return at_line(
            path, nodeid_entry->second->line,
            fmt::format("node {} already has a port in the node section at line {}", nodeid, slot->second.line));
    }
    return {};
}

// What of the rcpg sections applies to the nodes rather than to Options directly.
struct RcpgSettings {
    int first_line = 0;  // of the first rcpg section; 0 without one
    uint16_t default_port = kDefaultRdmaPort;
    std::map<uint32_t, PortOverride> port_overrides;
    const Entry* sequencer_order = nullptr;
    const Entry* cluster_key_file = nullptr;
};

// Applies the rcpg sections (there may be several; their keys add up) over `options`.
base::Status read_rcpg(const std::string& path, const Section& root, const std::vector<ParsedNode>& nodes,
                      Options& options, RcpgSettings& settings)
{
    // Lists may be given over several lines; every other key once.
    static const std::vector<std::string_view> kRepeatable = {"allowed_users", "allowed_groups"};
    std::map<std::string, const Entry*> seen;
    std::vector<const Entry*> entries;
    std::vector<const Section*> node_sections;
    for (const Section& section : root.sections) {
        if (section.name != "rcpg") {
            continue;
        }
        if (settings.first_line == 0) {
            settings.first_line = section.line;
        }
        for (const Entry& entry : section.entries) {
            if (std::find(kRcpgKeys.begin(), kRcpgKeys.end(), entry.key) == kRcpgKeys.end()) {
                return at_line(path, entry.line,
                               fmt::format("unknown key '{}' in rcpg; known: {}", entry.key, join(kRcpgKeys)));
            }
            const bool repeatable = std::find(kRepeatable.begin(), kRepeatable.end(), entry.key) != kRepeatable.end();
            auto [slot, inserted] = seen.emplace(entry.key, &entry);
            if (!inserted && !repeatable) {
                return at_line(
                    path, entry.line,
                    fmt::format("'{}' is set twice in rcpg (first at line {})", entry.key, slot->second->line));
            }
            entries.push_back(&entry);
        }
        for (const Section& child : section.sections) {
            if (child.name != "node") {
                return at_line(path, child.line, fmt::format("unknown section '{}' in rcpg; known: node", child.name));
            }
            node_sections.push_back(&child);
        }
    }

    uint64_t number = 0;
    for (const Entry* entry : entries) {
        const std::string& key = entry->key;
        const std::string& value = entry->value;
        const auto here = [&](std::string_view text) { return at_line(path, entry->line, text); };
        if (key == "client_backlog_mib") {
            if (!parse_in_range(value, 0, 16384, number) || (number != 0 && (number < 8 || (number & (number - 1)) != 0))) {
                return here(
                    fmt::format("client_backlog_mib needs 0 or a power of two from 8 to 16384, not '{}'", value));
            }
            options.client_backlog_bytes = number << 20;
        } else if (key == "state_dir") {
            if (value.empty() || value.front() != '/') {
                return here(fmt::format("state_dir needs an absolute directory path, not '{}'", value));
            }
            options.state_dir = value;
        } else if (key == "device") {
            if (value.empty()) {
                return here("device needs an RDMA device name, such as rxe0");
            }
            options.cluster.device = value;
        } else if (key == "port") {
            if (!parse_in_range(value, 1, 65535, number)) {
                return here(fmt::format("port needs a number from 1 to 65535, not '{}'", value));
            }
            settings.default_port = static_cast<uint16_t>(number);
        } else if (key == "sequencer_order") {
            settings.sequencer_order = entry;  // read by the caller, once the nodes are complete
        } else if (key == "cluster_key_file") {
            settings.cluster_key_file = entry;
        } else if (key == "wire_security") {
            if (value != "plaintext") {
                return here(fmt::format("wire_security accepts only 'plaintext' (connections authenticated with "
                                           "the cluster key, data in clear), not '{}'",
                                           value));
            }
            options.cluster.plaintext_accepted = true;
        } else if (key == "ring_mib") {
            if (!parse_in_range(value, kMinRingMib, kMaxRingMib, number) || !is_power_of_two(number)) {
                return here(fmt::format("ring_mib needs a power of two from {} to {}, not '{}'", kMinRingMib,
                                           kMaxRingMib, value));
            }
            options.ring_bytes = number << 20;
        } else if (key == "inbound_ring_mib") {
            if (!parse_in_range(value, kMinInboundRingMib, kMaxInboundRingMib, number) || !is_power_of_two(number)) {
                return here(fmt::format("inbound_ring_mib needs a power of two from {} to {}, not '{}'",
                                           kMinInboundRingMib, kMaxInboundRingMib, value));
            }
            options.cluster.inbound_ring_bytes = number << 20;
        } else if (key == "sequencer_copy") {
            if (value == "auto") {
                options.cluster.sequencer_copy = SequencerCopy::automatic;
            } else if (value == "device") {
                options.cluster.sequencer_copy = SequencerCopy::device;
            } else if (value == "cpu") {
                options.cluster.sequencer_copy = SequencerCopy::cpu;
            } else {
                return here(fmt::format("sequencer_copy needs auto, device or cpu, not '{}'", value));
            }
        } else if (key == "busy_poll_us") {
            if (!parse_in_range(value, 0, kMaxBusyPollUs, number)) {
                return here(
                    fmt::format("busy_poll_us needs a number from 0 to {}, not '{}'", kMaxBusyPollUs, value));
            }
            options.busy_poll_us = static_cast<uint32_t>(number);
        } else if (key == "stuck_client_timeout_ms") {
            if (!parse_in_range(value, 0, kMaxStuckClientTimeoutMs, number)) {
                return here(fmt::format("stuck_client_timeout_ms needs a number from 0 to {}, not '{}'",
                                           kMaxStuckClientTimeoutMs, value));
            }
            options.stuck_client_timeout_ms = static_cast<uint32_t>(number);
        } else if (key == "max_pinned_mib") {
            if (!parse_in_range(value, 32, kMaxPinnedMib, number)) {
                return here(fmt::format("max_pinned_mib needs a number from 32 to {}, not '{}'", kMaxPinnedMib, value));
            }
            options.max_pinned_bytes = number << 20;
        } else if (key == "max_clients" || key == "max_clients_per_uid") {
            if (!parse_in_range(value, 1, kMaxClientsLimit, number)) {
                return here(fmt::format("{} needs a number from 1 to {}, not '{}'", key, kMaxClientsLimit, value));
            }
            (key == "max_clients" ? options.max_clients : options.max_clients_per_uid) = static_cast<uint32_t>(number);
        } else if (key == "connect_timeout_ms") {
            if (!parse_in_range(value, kMinConnectTimeoutMs, kMaxConnectTimeoutMs, number)) {
                return here(fmt::format("connect_timeout_ms needs a number from {} to {}, not '{}'",
                                           kMinConnectTimeoutMs, kMaxConnectTimeoutMs, value));
            }
            options.cluster.connect_timeout_ms = static_cast<uint32_t>(number);
        } else if (key == "failure_timeout_ms") {
            if (!parse_in_range(value, kMinFailureTimeoutMs, kMaxFailureTimeoutMs, number)) {
                return here(fmt::format("failure_timeout_ms needs a number from {} to {}, not '{}'",
                                           kMinFailureTimeoutMs, kMaxFailureTimeoutMs, value));
            }
            options.cluster.failure_timeout_ms = static_cast<uint32_t>(number);
        } else if (key == "allowed_users") {
            const std::vector<std::string> users = split_list(value);
            if (users.empty()) {
                return here("allowed_users needs user names or uids");
            }
            for (const std::string& user : users) {
                const std::optional<uid_t> uid = user_id(user);
                if (!uid) {
                    return here(fmt::format("allowed_users: no such user '{}'", user));
                }
                options.allowed_uids.push_back(*uid);
            }
        } else if (key == "allowed_groups") {
            const std::vector<std::string> groups = split_list(value);
            if (groups.empty()) {
                return here("allowed_groups needs group names or gids");
            }
            for (const std::string& name : groups) {
                const std::optional<gid_t> gid = group_id(name);
                if (!gid) {
                    return here(fmt::format("allowed_groups: no such group '{}'", name));
                }
                options.allowed_gids.push_back(*gid);
            }
        }
    }
    for (const Section* section : node_sections) {
        if (base::Status status = read_port_override(path, *section, nodes, settings.port_overrides); !status) {
            return status;
        }
    }
    return {};
}

base::Status read_sequencer_order(const std::string& path, const Entry& entry, const std::vector<ParsedNode>& nodes,
                                 std::vector<uint32_t>& order)
{
    const std::vector<std::string> words = split_list(entry.value);
    if (words.empty()) {
        return at_line(path, entry.line, "sequencer_order needs node ids");
    }
    for (const std::string& word : words) {
        uint32_t nodeid = 0;
        if (!parse_nodeid(word, nodeid)) {
            return at_line(path, entry.line, fmt::format("sequencer_order needs node ids, not '{}'", word));
        }
        if (!has_node(nodes, nodeid)) {
            return at_line(path, entry.line,
                           fmt::format("sequencer_order names node {}, which is not in the nodelist", nodeid));
        }
        if (std::find(order.begin(), order.end(), nodeid) != order.end()) {
            return at_line(path, entry.line, fmt::format("sequencer_order names node {} twice", nodeid));
        }
        order.push_back(nodeid);
    }
    return {};
}

// The last value of rcpg's `key` in the tree, if any.
const Entry* find_rcpg_entry(const Section& root, std::string_view key)
{
    const Entry* found = nullptr;
    for (const Section& section : root.sections) {
        if (section.name != "rcpg") {
            continue;
        }
        for (const Entry& entry : section.entries) {
            if (entry.key == key) {
                found = &entry;
            }
        }
    }
    return found;
}

std::string nodeid_list(const std::vector<ClusterNode>& nodes)
{
    std::string text;
    for (const ClusterNode& node : nodes) {
        text += text.empty() ? "" : ", ";
        text += std::to_string(node.nodeid);
    }
    return text;
}

}  // namespace

// corosync's totem crypto settings: what its documentation says they ask for (secauth
// on implies crypto_cipher aes256 and crypto_hash sha256 unless those are set).
base::Status read_totem_crypto(const std::string& path, const Section& root, WireSecurity& asked)
{
    const Entry* cipher = nullptr;
    const Entry* hash = nullptr;
    const Entry* secauth = nullptr;
    for (const Section& section : root.sections) {
        if (section.name != "totem") {
            continue;
        }
        for (const Entry& entry : section.entries) {
            const Entry** slot = entry.key == "crypto_cipher" ? &cipher
                                 : entry.key == "crypto_hash" ? &hash
                                 : entry.key == "secauth"     ? &secauth
                                                              : nullptr;
            if (slot != nullptr) {
                *slot = &entry;  // corosync takes the last one
            }
        }
    }
    static const std::vector<std::string_view> kCiphers = {"none", "aes256", "aes192", "aes128"};
    static const std::vector<std::string_view> kHashes = {"none", "md5", "sha1", "sha256", "sha384", "sha512"};
    if (cipher != nullptr && std::find(kCiphers.begin(), kCiphers.end(), cipher->value) == kCiphers.end()) {
        return at_line(path, cipher->line, fmt::format("crypto_cipher must be one of {}, not '{}'", join(kCiphers), cipher->value));
    }
    if (hash != nullptr && std::find(kHashes.begin(), kHashes.end(), hash->value) == kHashes.end()) {
        return at_line(path, hash->line, fmt::format("crypto_hash must be one of {}, not '{}'", join(kHashes), hash->value));
    }
    if (secauth != nullptr && secauth->value != "on" && secauth->value != "off") {
        return at_line(path, secauth->line, fmt::format("secauth must be on or off, not '{}'", secauth->value));
    }
    const bool secauth_on = secauth != nullptr && secauth->value == "on";
    asked = {};
    asked.cipher = cipher != nullptr ? cipher->value : secauth_on ? "aes256" : "none";
    asked.hash = hash != nullptr ? hash->value : secauth_on ? "sha256" : "none";
    const Entry* asking = cipher != nullptr && cipher->value != "none" ? cipher
                          : hash != nullptr && hash->value != "none"   ? hash
                          : secauth_on && (cipher == nullptr || hash == nullptr) ? secauth
                                                                                 : nullptr;
    if (asking != nullptr) {
        asked.asked_line = asking->line;
        asked.asked_key = asking->key;
    }
    return {};
}

namespace {

base::Status load_config_at(const std::string& path, Options& options)
{
    Section root;
    if (base::Status status = parse_file(path, root); !status) {
        return status;
    }

    // Everything lands in a copy first, so a failed load leaves `options` as it was.
    Options loaded = options;
    loaded.config_path = path;

    std::vector<ParsedNode> nodes;
    if (base::Status status = read_nodelist(path, root, nodes); !status) {
        return status;
    }
    RcpgSettings rcpg;
    loaded.cluster.plaintext_accepted = false;
    if (base::Status status = read_rcpg(path, root, nodes, loaded, rcpg); !status) {
        return status;
    }
    if (base::Status status = read_totem_crypto(path, root, loaded.cluster.totem_crypto); !status) {
        return status;
    }
    if (base::Status status = read_uidgid(path, root, false, loaded); !status) {
        return status;
    }
    if (base::Status status = read_uidgid_directory(path, loaded); !status) {
        return status;
    }

    for (size_t index = 0; index < nodes.size(); ++index) {
        ParsedNode& parsed = nodes[index];
        const auto override_port = rcpg.port_overrides.find(parsed.node.nodeid);
        parsed.node.port = override_port != rcpg.port_overrides.end() ? override_port->second.port : rcpg.default_port;
        // Two nodes on one address:port would connect to the same listener.
        for (size_t earlier = 0; earlier < index; ++earlier) {
            const ClusterNode& other = nodes[earlier].node;
            if (other.address == parsed.node.address && other.port == parsed.node.port) {
                return at_line(path, parsed.section_line,
                               fmt::format("node {} has the same address and port {}:{} as node {} (line {}); give one "
                                           "of them its own port in rcpg {{ node {{ nodeid: N  port: P }} }}",
                                           parsed.node.nodeid, parsed.node.address, parsed.node.port, other.nodeid,
                                           nodes[earlier].section_line));
            }
        }
    }
    std::sort(nodes.begin(), nodes.end(),
              [](const ParsedNode& a, const ParsedNode& b) { return a.node.nodeid < b.node.nodeid; });
    loaded.cluster.nodes.clear();
    for (const ParsedNode& parsed : nodes) {
        loaded.cluster.nodes.push_back(parsed.node);
    }

    loaded.cluster.sequencer_order.clear();
    if (rcpg.sequencer_order != nullptr) {
        if (base::Status status = read_sequencer_order(path, *rcpg.sequencer_order, nodes, loaded.cluster.sequencer_order); !status) {
            return status;
        }
    }
    for (const ClusterNode& node : loaded.cluster.nodes) {
        auto& order = loaded.cluster.sequencer_order;
        if (std::find(order.begin(), order.end(), node.nodeid) == order.end()) {
            order.push_back(node.nodeid);
        }
    }

    if (const Entry* key_file = rcpg.cluster_key_file; key_file != nullptr) {
        if (key_file->value.empty()) {
            return at_line(path, key_file->line, "cluster_key_file needs a file name");
        }
        const std::string file = key_file_path(path, key_file->value);
        auto key = read_key_file(file);
        if (!key) {
            return at_line(path, key_file->line, key.status().context());
        }
        loaded.cluster.cluster_key = std::move(*key);
    } else if (loaded.cluster.multi_node()) {
        // Nodes authenticate each other with the key; without one any host could join.
        const std::string needs = fmt::format(
            "a cluster of {} nodes needs a shared key: set 'cluster_key_file' (a file of {} to {} secret bytes, "
            "mode 0600; corosync's authkey will do) in ",
            loaded.cluster.nodes.size(), kMinKeyBytes, kMaxKeyBytes);
        return rcpg.first_line != 0 ? at_line(path, rcpg.first_line, needs + "this rcpg section")
                                    : at_file(path, needs + "an rcpg { } section");
    }

    // corosync would encrypt and authenticate every message; rcpg authenticates its
    // connections but sends in clear. Never silently: the operator says so.
    const WireSecurity& crypto = loaded.cluster.totem_crypto;
    if (loaded.cluster.multi_node() && crypto.asks_crypto() && !loaded.cluster.plaintext_accepted) {
        return at_line(path, crypto.asked_line,
                       fmt::format("totem asks for encrypted, authenticated traffic ({}: crypto_cipher {}, crypto_hash {}); "
                                   "rcpg authenticates each connection with the cluster key but carries data over RDMA in "
                                   "clear: add 'wire_security: plaintext' to an rcpg section to accept that, or set "
                                   "crypto_cipher and crypto_hash to none",
                                   crypto.asked_key, crypto.cipher, crypto.hash));
    }

    options = std::move(loaded);
    return {};
}

}  // namespace

base::Status load_config(const std::string& path, Options& options) { return load_config_at(path, options); }

std::vector<std::string> host_ipv4_addresses()
{
    std::vector<std::string> addresses;
    ifaddrs* interfaces = nullptr;
    if (::getifaddrs(&interfaces) != 0) {
        return addresses;
    }
    for (const ifaddrs* entry = interfaces; entry != nullptr; entry = entry->ifa_next) {
        if (entry->ifa_addr == nullptr || entry->ifa_addr->sa_family != AF_INET) {
            continue;
        }
        char text[INET_ADDRSTRLEN];
        const auto* address = reinterpret_cast<const sockaddr_in*>(entry->ifa_addr);
        if (::inet_ntop(AF_INET, &address->sin_addr, text, sizeof text) != nullptr) {
            addresses.emplace_back(text);
        }
    }
    ::freeifaddrs(interfaces);
    return addresses;
}

base::Status resolve_local_node(Options& options, uint32_t nodeid_flag)
{
    if (options.cluster.nodes.empty()) {
        return {};
    }
    return resolve_local_node(options, nodeid_flag, host_ipv4_addresses());
}

namespace {

base::Status find_local_node(Options& options, uint32_t nodeid_flag,
                                       const std::vector<std::string>& host_addresses)
{
    const std::vector<ClusterNode>& nodes = options.cluster.nodes;
    if (nodes.empty()) {
        return {};
    }
    const std::string& path = options.config_path;
    if (nodeid_flag != 0) {
        const bool listed = std::any_of(nodes.begin(), nodes.end(),
                                        [&](const ClusterNode& node) { return node.nodeid == nodeid_flag; });
        if (!listed) {
            return at_file(
                path, fmt::format("--nodeid {} is not in the nodelist (nodes {})", nodeid_flag, nodeid_list(nodes)));
        }
        options.nodeid = nodeid_flag;
        return {};
    }
    // A one-node cluster needs no RDMA, so its address need not be this host's: corosync's
    // one-node files often name the host, which Debian resolves to 127.0.1.1, on no interface.
    if (nodes.size() == 1) {
        options.nodeid = nodes.front().nodeid;
        return {};
    }
    std::vector<const ClusterNode*> local;
    for (const ClusterNode& node : nodes) {
        if (std::find(host_addresses.begin(), host_addresses.end(), node.address) != host_addresses.end()) {
            local.push_back(&node);
        }
    }
    if (local.empty()) {
        return at_file(path, fmt::format("no node of the nodelist has an address of this host (nodes {}); pass "
                                         "--nodeid N to say which node this is",
                                         nodeid_list(nodes)));
    }
    if (local.size() > 1) {
        std::string ids;
        for (const ClusterNode* node : local) {
            ids += ids.empty() ? "" : ", ";
            ids += std::to_string(node->nodeid);
        }
        return at_file(path, fmt::format("nodes {} all have addresses of this host; pass --nodeid N to say which "
                                         "node this is",
                                         ids));
    }
    options.nodeid = local.front()->nodeid;
    return {};
}

}  // namespace

base::Status resolve_local_node(Options& options, uint32_t nodeid_flag, const std::vector<std::string>& host_addresses)
{
    // Not the file's fault: this host, or the --nodeid given, does not match it.
    if (base::Status status = find_local_node(options, nodeid_flag, host_addresses); !status) {
        return {base::Errc::invalid_argument, base::Layer::config, status.context()};
    }
    return {};
}

std::string describe(const Options& options)
{
    const ClusterOptions& cluster = options.cluster;
    std::string text;
    const auto line = [&](std::string_view content) {
        text += content;
        text += '\n';
    };
    line(fmt::format("configuration file: {}", options.config_path.empty() ? "none" : options.config_path));
    line(fmt::format("IPC name: {}", options.ipc_name));
    if (cluster.nodes.empty()) {
        line(fmt::format("nodes: no nodelist; a one-node cluster of node {} (this node), no RDMA device needed",
                         options.nodeid));
    } else {
        line(fmt::format("nodes: {}{}", cluster.nodes.size(),
                         cluster.multi_node() ? "" : " (a one-node cluster: no RDMA device needed)"));
        for (const ClusterNode& node : cluster.nodes) {
            line(fmt::format("  node {}{} at {}:{}{}", node.nodeid, node.name.empty() ? "" : " (" + node.name + ")",
                             node.address, node.port, node.nodeid == options.nodeid ? ", this node" : ""));
        }
        std::string order;
        for (uint32_t nodeid : cluster.sequencer_order) {
            order += order.empty() ? "" : " ";
            order += std::to_string(nodeid);
        }
        line(fmt::format("sequencer order: {}{}", order,
                         cluster.sequencer_order.empty()
                             ? ""
                             : fmt::format(" (node {} sequences)", cluster.sequencer_order.front())));
    }
    line(fmt::format("RDMA device: {}", cluster.device.empty() ? "rdma_cm's choice" : cluster.device));
    line(fmt::format("delivery ring: {} MiB", options.ring_bytes >> 20));
    line(fmt::format("inbound ring per sending node: {} MiB", cluster.inbound_ring_bytes >> 20));
    line(fmt::format("connect timeout: {} ms", cluster.connect_timeout_ms));
    line(fmt::format("failure timeout: {} ms", cluster.failure_timeout_ms));
    line(fmt::format("busy poll: {} us", options.busy_poll_us));
    line(fmt::format("state directory (ring id): {}", options.state_dir));
    line(options.client_backlog_bytes == 0
             ? std::string("slow readers' backlogs: none (a slow reader holds senders back)")
             : fmt::format("slow readers' backlogs: at most {} MiB a client", options.client_backlog_bytes >> 20));
    line(fmt::format("clients: at most {} connections, {} per user; {} MiB of their memory pinned", options.max_clients,
                     options.max_clients_per_uid, options.max_pinned_bytes >> 20));
    line(options.stuck_client_timeout_ms == 0
             ? std::string("stuck clients: never disconnected")
             : fmt::format("stuck clients: disconnected after {} ms", options.stuck_client_timeout_ms));
    line(fmt::format("sequencer copies payloads by: {}",
                     cluster.sequencer_copy == SequencerCopy::device ? "device"
                     : cluster.sequencer_copy == SequencerCopy::cpu  ? "cpu"
                                                                     : "auto (the device, unless it is rxe or siw)"));

    if (cluster.cluster_key.empty()) {
        line("cluster key: none");
    } else {
        // Only the file and the length: the bytes are the cluster's secret.
        std::string file;
        Section root;
        if (!options.config_path.empty() && parse_file(options.config_path, root).ok()) {
            if (const Entry* entry = find_rcpg_entry(root, "cluster_key_file"); entry != nullptr) {
                file = key_file_path(options.config_path, entry->value) + ", ";
            }
        }
        line(fmt::format("cluster key: {}{} bytes", file, cluster.cluster_key.size()));
    }

    const WireSecurity& crypto = cluster.totem_crypto;
    const std::string asked =
        crypto.asks_crypto() ? fmt::format("; corosync.conf asks crypto_cipher {}, crypto_hash {}", crypto.cipher, crypto.hash)
                             : std::string();
    if (!cluster.multi_node()) {
        line("wire security: nothing goes on the wire (one node)" + asked);
    } else {
        line(fmt::format("wire security: connections authenticated (HMAC-SHA-256 challenge and response on the key "
                         "HKDF-SHA-256 makes of the cluster key); data in clear{}{}",
                         asked, cluster.plaintext_accepted ? ", accepted by wire_security: plaintext" : ""));
    }

    std::string users = "root";
    for (uid_t uid : options.allowed_uids) {
        const passwd* account = ::getpwuid(uid);
        users +=
            account != nullptr ? fmt::format(", {} (uid {})", account->pw_name, uid) : fmt::format(", uid {}", uid);
    }
    line(fmt::format("allowed users: {}", users));
    std::string groups;
    for (gid_t gid : options.allowed_gids) {
        const group* entry = ::getgrgid(gid);
        groups += groups.empty() ? "" : ", ";
        groups += entry != nullptr ? fmt::format("{} (gid {})", entry->gr_name, gid) : fmt::format("gid {}", gid);
    }
    line(fmt::format("allowed groups: {}", groups.empty() ? "none" : groups));
    return text;
}

}  // namespace rcpg::daemon
