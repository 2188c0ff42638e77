// rcpgd's configuration file, in the syntax of corosync.conf (corosync 3.x's coroparse), so
// that an existing /etc/corosync/corosync.conf is read unchanged and its nodelist describes
// the rcpg cluster too. rcpg's own settings live in an optional `rcpg { }` section that
// corosync ignores.
//
// Syntax, line by line (leading and trailing spaces, tabs and \r do not matter):
//   - empty lines, and lines whose first non-blank character is '#', are ignored
//     ('#' later in a line is part of the value, as in corosync);
//   - `name {` opens a section (the '{' ends the line); sections nest;
//   - `}` alone closes the innermost open section;
//   - `key: value` sets a key: the value is the rest of the line after the first ':',
//     trimmed, and may contain spaces.
// Sections other than `nodelist`, `uidgid`, `totem` and `rcpg` (logging, quorum, ...) are
// checked for syntax and otherwise ignored.
//
// Semantics:
//   nodelist {                  repeatable, as in corosync; the nodes add up
//     node {                    one per node; keys other than these are ignored
//       nodeid: 1               required, 1..4294967295, unique
//       ring0_addr: 10.0.0.1    required; IPv4 dotted, or a host name resolved to IPv4
//       name: alpha             optional
//     }
//   }
//   uidgid {                    repeatable, as in corosync: who may connect besides root
//     uid: hacluster            a user name or uid; repeatable
//     gid: haclient             a group name or gid (the client's primary group); repeatable
//   }                           (other keys, and sections inside, are errors)
//   and every regular file of the directory uidgid.d beside this file, as corosync reads
//   the one beside corosync.conf: uidgid sections only.
//   totem {                     of corosync's keys, only what asks for crypto is read:
//     crypto_cipher: aes256     none, aes256, aes192, aes128
//     crypto_hash: sha256       none, md5, sha1, sha256, sha384, sha512
//     secauth: on               on implies aes256 and sha256 unless those are set
//   }                           with more than one node, crypto asked for is an error at
//                               its line unless rcpg's wire_security accepts plaintext
//   rcpg {                      optional; an unknown key or section is an error
//     device: rxe0              RDMA device (default: rdma_cm's choice)
//     port: 7405                rdma_cm port of every node (default 7405)
//     sequencer_order: 1 3 2    node ids, spaces or commas; unlisted nodes follow by id
//     ring_mib: 64              delivery ring, a power of two from 8 to 2048
//     inbound_ring_mib: 16      per sending node at the sequencer, power of two 1..1024
//     cluster_key_file: authkey 32..1024 secret bytes (corosync's authkey is fine);
//                               relative to this file's folder; a regular file, no
//                               symbolic link, owned by root or rcpgd's user, no group
//                               or other permission bits; required with more than one node
//     wire_security: plaintext  the only value: connections authenticated, data in clear;
//                               needed when totem asks for crypto
//     allowed_users: alice 1001 names or ids, spaces or commas; repeatable, adds up
//     allowed_groups: wheel     likewise
//     busy_poll_us: 50          0..1000000
//     stuck_client_timeout_ms: 10000  0..3600000; 0: never disconnect a stuck client
//     max_clients: 1024         1..1000000: connections at once (clients, operator tools);
//                               more get CS_ERR_NO_RESOURCES
//     max_clients_per_uid: 256  1..1000000: likewise, per user
//     max_pinned_mib: 4096      32..16777216: client send memory a cluster node pins for
//                               its device (32 MiB a client, counted from its init); more
//                               clients get CS_ERR_NO_RESOURCES
//     connect_timeout_ms: 5000  100..600000
//     failure_timeout_ms: 3000  20..600000: a node silent this long is taken for failed
//     node {                    repeatable: a port for one node, for nodes that share an
//       nodeid: 2               address (one Soft-RoCE VM runs every node on one address)
//       port: 7406
//     }
//   }
// The keys above appear at most once per section, but for allowed_users and allowed_groups.
// No two nodes may share address and port.
//
// Errors are one line, "PATH:LINE: problem", or "PATH: problem" for the file as a whole.
#pragma once

#include "daemon/options.hpp"

#include <sys/types.h>

#include <cstdint>
#include "base/status.hpp"

#include <optional>
#include <string>
#include <vector>

namespace rcpg::daemon {

// The default file when neither --config nor $RCPG_CONFIG names one.
inline constexpr const char* kDefaultConfigPath = "/etc/rcpg/rcpg.conf";

// Reads the configuration file at `path` and applies it over `options` (cluster, ring size,
// users...); sets options.config_path. On error (Errc::malformed) the status's context is
// one line "PATH:LINE: problem" (LINE omitted only for file-level problems such as "cannot
// open: No such file or directory"), and `options` is left unchanged.
base::Status load_config(const std::string& path, Options& options);

// Picks this node among options.cluster.nodes: `nodeid_flag` if nonzero (must be in the
// nodelist), else the node whose ring0_addr is an address of this host (getifaddrs); a
// nodelist of one node is that node wherever it is. Sets options.nodeid. The error's
// context names the config path. With an empty nodelist does nothing.
base::Status resolve_local_node(Options& options, uint32_t nodeid_flag);

// The same, with this host's IPv4 addresses (dotted) given instead of read from the system.
base::Status resolve_local_node(Options& options, uint32_t nodeid_flag, const std::vector<std::string>& host_addresses);

// A user or group given by name or number (the configuration's and the flags' rule);
// nullopt when there is no such one.
std::optional<uid_t> user_id(const std::string& text);
std::optional<gid_t> group_id(const std::string& text);

// This host's IPv4 addresses, dotted, from getifaddrs (loopback included).
std::vector<std::string> host_ipv4_addresses();

// A human summary for --check-config: nodes (id, name, address:port), which is local,
// sequencer order, device, ring sizes, key file and key length (never the key), allowed
// users/groups. Options keeps the key's bytes but not its file, so the key file's name is
// read again from options.config_path (syntax only) when there is one.
std::string describe(const Options& options);

}  // namespace rcpg::daemon
