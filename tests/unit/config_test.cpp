// The configuration file (daemon/config.hpp): corosync.conf syntax in, Options or one error
// line "PATH:LINE: problem" out; the choice of the local node; the --check-config summary.
// Each test writes its files into a fresh folder under /tmp and asserts the exact outcome.
#include "daemon/config.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace rcpg::daemon {
namespace {

// Passes when `error` starts with "PATH:LINE: " (or "PATH: " for line 0) and contains `word`.
// A status's problem text ("PATH:LINE: problem"), empty when it is fine.
std::string problem(const rcpg::base::Status& status) { return status.ok() ? std::string() : status.context(); }

::testing::AssertionResult ErrorAt(const std::string& error, const std::string& path, int line, std::string_view word)
{
    const std::string prefix = line == 0 ? path + ": " : path + ":" + std::to_string(line) + ": ";
    if (error.rfind(prefix, 0) != 0) {
        return ::testing::AssertionFailure() << "error '" << error << "' does not start with '" << prefix << "'";
    }
    if (error.find(word) == std::string::npos) {
        return ::testing::AssertionFailure() << "error '" << error << "' does not mention '" << word << "'";
    }
    if (error.find('\n') != std::string::npos) {
        return ::testing::AssertionFailure() << "error '" << error << "' is more than one line";
    }
    return ::testing::AssertionSuccess();
}

// A key whose bytes are easy to spot in text, so describe() can be checked for leaks.
const std::string kKeyText = "SeCrEtKeYbYtEs-0123456789abcdef!";  // 32 bytes

// A corosync.conf as Debian's corosync package and pcs write them, for three nodes.
constexpr std::string_view kCorosyncConf = R"(# Please read the corosync.conf.5 manual page
totem {
	version: 2
	cluster_name: debian
	crypto_cipher: none
	crypto_hash: none
	transport: knet
	interface {
		linknumber: 0
		knet_link_priority: 1
	}
}

logging {
	fileline: off
	to_stderr: yes
	to_logfile: yes
	logfile: /var/log/corosync/corosync.log
	to_syslog: yes
	debug: off
	logger_subsys {
		subsys: QUORUM
		debug: off
	}
}

quorum {
	provider: corosync_votequorum
}

nodelist {
	node {
		name: alpha
		nodeid: 1
		ring0_addr: 192.0.2.11
	}
	node {
		name: gamma
		nodeid: 3
		ring0_addr: 192.0.2.13
	}
	node {
		name: beta
		nodeid: 2
		ring0_addr: 192.0.2.12
		ring1_addr: 198.51.100.12
	}
}
)";

class ConfigTest : public ::testing::Test {
protected:
    void SetUp() override
    {
        char folder[] = "/tmp/rcpg-config-test-XXXXXX";
        ASSERT_NE(::mkdtemp(folder), nullptr);
        dir_ = folder;
        path_ = dir_ + "/rcpg.conf";
    }

    void TearDown() override { std::filesystem::remove_all(dir_); }

    // Writes `text` to `name` in the test's folder with `mode` (umask does not apply).
    std::string write(const std::string& name, std::string_view text, mode_t mode = 0600)
    {
        const std::string file = name.front() == '/' ? name : dir_ + "/" + name;
        std::ofstream(file, std::ios::binary | std::ios::trunc) << text;
        EXPECT_EQ(::chmod(file.c_str(), mode), 0);
        return file;
    }

    // Writes the configuration file and loads it over `options_`.
    std::string load(std::string_view text)
    {
        write("rcpg.conf", text, 0644);
        return problem(load_config(path_, options_));
    }

    // A nodelist of nodes 1..3 on three addresses, then `rcpg_section` (with the key file).
    std::string three_nodes(std::string_view rcpg_body)
    {
        write("authkey", kKeyText);
        return std::string(R"(nodelist {
  node {
    nodeid: 1
    ring0_addr: 10.0.0.1
  }
  node {
    nodeid: 2
    ring0_addr: 10.0.0.2
  }
  node {
    nodeid: 3
    ring0_addr: 10.0.0.3
  }
}
rcpg {
  cluster_key_file: authkey
)") + std::string(rcpg_body) +
               "}\n";
    }
    // three_nodes() puts the first line of `rcpg_body` here.
    static constexpr int kRcpgBodyLine = 17;

    std::string dir_;
    std::string path_;
    Options options_;
};

std::vector<uint32_t> ids_of(const std::vector<ClusterNode>& nodes)
{
    std::vector<uint32_t> ids;
    for (const ClusterNode& node : nodes) {
        ids.push_back(node.nodeid);
    }
    return ids;
}

// --- Files corosync users already have --------------------------------------------------

TEST_F(ConfigTest, CorosyncConfOfThreeNodesPlusAKeyReadsWithRcpgDefaults)
{
    // corosync's sections are ignored; the nodelist becomes the cluster, sorted by nodeid.
    write("authkey", kKeyText);
    const std::string text = std::string(kCorosyncConf) + "rcpg {\n  cluster_key_file: authkey\n}\n";
    ASSERT_EQ(load(text), "");
    EXPECT_EQ(options_.config_path, path_);
    ASSERT_EQ(options_.cluster.nodes.size(), 3u);
    EXPECT_EQ(ids_of(options_.cluster.nodes), (std::vector<uint32_t>{1, 2, 3}));
    EXPECT_EQ(options_.cluster.nodes[0].name, "alpha");
    EXPECT_EQ(options_.cluster.nodes[1].name, "beta");
    EXPECT_EQ(options_.cluster.nodes[2].name, "gamma");
    EXPECT_EQ(options_.cluster.nodes[0].address, "192.0.2.11");
    EXPECT_EQ(options_.cluster.nodes[1].address, "192.0.2.12");
    EXPECT_EQ(options_.cluster.nodes[2].address, "192.0.2.13");
    for (const ClusterNode& node : options_.cluster.nodes) {
        EXPECT_EQ(node.port, kDefaultRdmaPort);
    }
    EXPECT_TRUE(options_.cluster.multi_node());
    EXPECT_EQ(options_.cluster.sequencer_order, (std::vector<uint32_t>{1, 2, 3}));
    EXPECT_EQ(options_.cluster.device, "");
    EXPECT_EQ(options_.cluster.cluster_key.size(), kKeyText.size());
    // Everything the file does not set keeps Options' defaults.
    const Options defaults;
    EXPECT_EQ(options_.ring_bytes, defaults.ring_bytes);
    EXPECT_EQ(options_.busy_poll_us, defaults.busy_poll_us);
    EXPECT_EQ(options_.cluster.inbound_ring_bytes, defaults.cluster.inbound_ring_bytes);
    EXPECT_EQ(options_.cluster.connect_timeout_ms, defaults.cluster.connect_timeout_ms);
    EXPECT_EQ(options_.cluster.sequencer_copy, SequencerCopy::automatic);
    EXPECT_EQ(options_.ipc_name, defaults.ipc_name);
    EXPECT_EQ(options_.nodeid, defaults.nodeid);
    EXPECT_TRUE(options_.allowed_uids.empty());
    EXPECT_TRUE(options_.allowed_gids.empty());
}

TEST_F(ConfigTest, CorosyncConfOfThreeNodesWithoutAKeyIsRefusedForTheWholeFile)
{
    // Unchanged corosync.conf, three nodes, no rcpg section → file-level error asking for a key.
    const std::string error = load(kCorosyncConf);
    EXPECT_TRUE(ErrorAt(error, path_, 0, "a cluster of 3 nodes needs a shared key"));
    EXPECT_TRUE(ErrorAt(error, path_, 0, "cluster_key_file"));
    EXPECT_TRUE(options_.cluster.nodes.empty()) << "a failed load leaves Options as they were";
}

TEST_F(ConfigTest, OneNodeCorosyncConfReadsUnchanged)
{
    // The one-node file corosync's package installs: no key is needed.
    ASSERT_EQ(load(R"(totem {
	version: 2
	cluster_name: debian
}
nodelist {
	node {
		name: node1
		nodeid: 1
		ring0_addr: 127.0.0.1
	}
}
)"),
              "");
    ASSERT_EQ(options_.cluster.nodes.size(), 1u);
    EXPECT_FALSE(options_.cluster.multi_node());
    EXPECT_EQ(options_.cluster.nodes[0].address, "127.0.0.1");
    EXPECT_EQ(options_.cluster.sequencer_order, (std::vector<uint32_t>{1}));
    EXPECT_TRUE(options_.cluster.cluster_key.empty());
}

TEST_F(ConfigTest, BlanksCommentsTabsAndCrlfAreSyntaxOnly)
{
    // Indented comments, CRLF line ends, tabs, a value with spaces and a '#' inside a value.
    ASSERT_EQ(load("# comment\r\n"
                   "\r\n"
                   "   # indented comment\r\n"
                   "nodelist\t{\r\n"
                   "\tnode {\r\n"
                   "\t\tnodeid:\t7  \r\n"
                   "\t\tring0_addr:127.0.0.1\r\n"
                   "\t\tname:  rack 2 # left  \r\n"
                   "\t}\r\n"
                   "}"),  // and no newline at the end
              "");
    ASSERT_EQ(options_.cluster.nodes.size(), 1u);
    EXPECT_EQ(options_.cluster.nodes[0].nodeid, 7u);
    EXPECT_EQ(options_.cluster.nodes[0].name, "rack 2 # left");
}

TEST_F(ConfigTest, SeveralNodelistSectionsAddUpAsInCorosync)
{
    write("authkey", kKeyText);
    ASSERT_EQ(load(R"(nodelist {
  node {
    nodeid: 2
    ring0_addr: 10.0.0.2
  }
}
nodelist {
  node {
    nodeid: 1
    ring0_addr: 10.0.0.1
  }
}
rcpg {
  cluster_key_file: authkey
}
)"),
              "");
    EXPECT_EQ(ids_of(options_.cluster.nodes), (std::vector<uint32_t>{1, 2}));
}

TEST_F(ConfigTest, HostNameRing0AddrResolvesToIpv4)
{
    // "localhost" comes from /etc/hosts: no DNS is asked.
    ASSERT_EQ(load("nodelist {\n node {\n  nodeid: 1\n  ring0_addr: localhost\n }\n}\n"), "");
    ASSERT_EQ(options_.cluster.nodes.size(), 1u);
    EXPECT_EQ(options_.cluster.nodes[0].address, "127.0.0.1");
}

TEST_F(ConfigTest, EmptyFileIsTheOneNodeDefault)
{
    ASSERT_EQ(load(""), "");
    EXPECT_TRUE(options_.cluster.nodes.empty());
    EXPECT_TRUE(options_.cluster.sequencer_order.empty());
    EXPECT_EQ(options_.config_path, path_);
}

// --- rcpg's own section ------------------------------------------------------------------

TEST_F(ConfigTest, RcpgSectionValuesLandInOptions)
{
    ASSERT_EQ(load(three_nodes(R"(  device: rxe0
  port: 7500
  sequencer_order: 3, 1
  ring_mib: 128
  inbound_ring_mib: 32
  allowed_users: root 1001
  allowed_users: 1002
  allowed_groups: root,4242
  busy_poll_us: 0
  connect_timeout_ms: 2000
  sequencer_copy: device
)")),
              "");
    EXPECT_EQ(options_.cluster.device, "rxe0");
    for (const ClusterNode& node : options_.cluster.nodes) {
        EXPECT_EQ(node.port, 7500) << "node " << node.nodeid;
    }
    EXPECT_EQ(options_.cluster.sequencer_order, (std::vector<uint32_t>{3, 1, 2})) << "unlisted nodes follow by id";
    EXPECT_EQ(options_.ring_bytes, 128ull << 20);
    EXPECT_EQ(options_.cluster.inbound_ring_bytes, 32ull << 20);
    EXPECT_EQ(options_.allowed_uids, (std::vector<uid_t>{0, 1001, 1002}));
    EXPECT_EQ(options_.allowed_gids, (std::vector<gid_t>{0, 4242}));
    EXPECT_EQ(options_.busy_poll_us, 0u);
    EXPECT_EQ(options_.cluster.connect_timeout_ms, 2000u);
    EXPECT_EQ(options_.cluster.sequencer_copy, SequencerCopy::device);
    const std::vector<std::byte> expected_key(reinterpret_cast<const std::byte*>(kKeyText.data()),
                                              reinterpret_cast<const std::byte*>(kKeyText.data()) + kKeyText.size());
    EXPECT_EQ(options_.cluster.cluster_key, expected_key);
}

TEST_F(ConfigTest, PerNodePortsLetNodesShareOneAddress)
{
    // The Soft-RoCE VM: every node on one address, told apart by port.
    write("authkey", kKeyText);
    ASSERT_EQ(load(R"(nodelist {
  node {
    nodeid: 1
    ring0_addr: 127.0.0.1
  }
  node {
    nodeid: 2
    ring0_addr: 127.0.0.1
  }
  node {
    nodeid: 3
    ring0_addr: 127.0.0.1
  }
}
rcpg {
  cluster_key_file: authkey
  port: 7500
  node {
    nodeid: 2
    port: 7501
  }
  node {
    nodeid: 3
    port: 7502
  }
}
)"),
              "");
    ASSERT_EQ(options_.cluster.nodes.size(), 3u);
    EXPECT_EQ(options_.cluster.nodes[0].port, 7500);
    EXPECT_EQ(options_.cluster.nodes[1].port, 7501);
    EXPECT_EQ(options_.cluster.nodes[2].port, 7502);
}

TEST_F(ConfigTest, TwoNodesOnOneAddressAndPortAreRefused)
{
    // Node 2 at line 6 repeats node 1's 127.0.0.1:7405 → error at node 2's section.
    write("authkey", kKeyText);
    EXPECT_TRUE(ErrorAt(load(R"(nodelist {
  node {
    nodeid: 1
    ring0_addr: 127.0.0.1
  }
  node {
    nodeid: 2
    ring0_addr: 127.0.0.1
  }
}
rcpg {
  cluster_key_file: authkey
}
)"),
                        path_, 6, "same address and port 127.0.0.1:7405 as node 1 (line 2)"));
}

TEST_F(ConfigTest, PortOverrideForANodeOutsideTheNodelistIsRefused)
{
    EXPECT_TRUE(ErrorAt(load(three_nodes("  node {\n    nodeid: 9\n    port: 7501\n  }\n")), path_, kRcpgBodyLine + 1,
                        "node 9 is not in the nodelist"));
}

TEST_F(ConfigTest, PortOverrideWithoutPortIsRefused)
{
    EXPECT_TRUE(ErrorAt(load(three_nodes("  node {\n    nodeid: 2\n  }\n")), path_, kRcpgBodyLine, "has no 'port'"));
}

TEST_F(ConfigTest, TwoPortOverridesForOneNodeAreRefused)
{
    EXPECT_TRUE(ErrorAt(load(three_nodes("  node {\n    nodeid: 2\n    port: 7501\n  }\n"
                                         "  node {\n    nodeid: 2\n    port: 7502\n  }\n")),
                        path_, kRcpgBodyLine + 5, "already has a port"));
}

TEST_F(ConfigTest, SequencerOrderNamingANodeOutsideTheNodelistIsRefused)
{
    EXPECT_TRUE(ErrorAt(load(three_nodes("  sequencer_order: 2 4 1\n")), path_, kRcpgBodyLine,
                        "names node 4, which is not in the nodelist"));
}

TEST_F(ConfigTest, SequencerOrderNamingANodeTwiceIsRefused)
{
    EXPECT_TRUE(ErrorAt(load(three_nodes("  sequencer_order: 2, 1, 2\n")), path_, kRcpgBodyLine, "names node 2 twice"));
}

TEST_F(ConfigTest, SequencerOrderWithAWordIsRefused)
{
    EXPECT_TRUE(ErrorAt(load(three_nodes("  sequencer_order: 2 first\n")), path_, kRcpgBodyLine,
                        "needs node ids, not 'first'"));
}

TEST_F(ConfigTest, UnknownRcpgKeyIsATypoAndListsTheKnownKeys)
{
    const std::string error = load(three_nodes("  ring_mb: 64\n"));
    EXPECT_TRUE(ErrorAt(error, path_, kRcpgBodyLine, "unknown key 'ring_mb' in rcpg"));
    EXPECT_NE(error.find("known: device, port, sequencer_order, ring_mib"), std::string::npos) << error;
}

TEST_F(ConfigTest, UnknownRcpgSubsectionIsRefused)
{
    EXPECT_TRUE(
        ErrorAt(load(three_nodes("  nodes {\n  }\n")), path_, kRcpgBodyLine, "unknown section 'nodes' in rcpg"));
}

TEST_F(ConfigTest, RcpgKeySetTwiceIsRefused)
{
    EXPECT_TRUE(ErrorAt(load(three_nodes("  port: 7500\n  port: 7600\n")), path_, kRcpgBodyLine + 1,
                        "'port' is set twice in rcpg (first at line 17)"));
}

TEST_F(ConfigTest, NumbersOutOfRangeOrNotNumbersAreRefused)
{
    // Each bad value → an error at its line naming the range.
    EXPECT_TRUE(ErrorAt(load(three_nodes("  ring_mib: 100\n")), path_, kRcpgBodyLine, "power of two from 8 to 2048"));
    EXPECT_TRUE(ErrorAt(load(three_nodes("  ring_mib: 4\n")), path_, kRcpgBodyLine, "power of two from 8 to 2048"));
    EXPECT_TRUE(ErrorAt(load(three_nodes("  inbound_ring_mib: 2048\n")), path_, kRcpgBodyLine, "from 1 to 1024"));
    EXPECT_TRUE(ErrorAt(load(three_nodes("  port: 70000\n")), path_, kRcpgBodyLine, "from 1 to 65535, not '70000'"));
    EXPECT_TRUE(ErrorAt(load(three_nodes("  port: 0\n")), path_, kRcpgBodyLine, "from 1 to 65535"));
    EXPECT_TRUE(ErrorAt(load(three_nodes("  busy_poll_us: -1\n")), path_, kRcpgBodyLine, "from 0 to 1000000"));
    EXPECT_TRUE(ErrorAt(load(three_nodes("  busy_poll_us: 10us\n")), path_, kRcpgBodyLine, "not '10us'"));
    EXPECT_TRUE(ErrorAt(load(three_nodes("  sequencer_copy: dma\n")), path_, kRcpgBodyLine,
                        "sequencer_copy needs auto, device or cpu, not 'dma'"));
    EXPECT_TRUE(ErrorAt(load(three_nodes("  connect_timeout_ms: 99\n")), path_, kRcpgBodyLine, "from 100 to 600000"));
    EXPECT_TRUE(ErrorAt(load(three_nodes("  device:\n")), path_, kRcpgBodyLine, "device name"));
}

TEST_F(ConfigTest, UnknownUserOrGroupIsRefusedAtItsLine)
{
    EXPECT_TRUE(ErrorAt(load(three_nodes("  allowed_users: root rcpg-no-such-user\n")), path_, kRcpgBodyLine,
                        "no such user 'rcpg-no-such-user'"));
    EXPECT_TRUE(ErrorAt(load(three_nodes("  allowed_groups: rcpg-no-such-group\n")), path_, kRcpgBodyLine,
                        "no such group 'rcpg-no-such-group'"));
}

// --- The cluster key -----------------------------------------------------------------------

TEST_F(ConfigTest, KeyFileIsRequiredByAnRcpgSectionOfSeveralNodes)
{
    // three_nodes() with its cluster_key_file line dropped: the error names the rcpg section.
    std::string text = three_nodes("");
    text.erase(text.find("  cluster_key_file: authkey\n"), std::string_view("  cluster_key_file: authkey\n").size());
    EXPECT_TRUE(ErrorAt(load(text), path_, 15, "needs a shared key: set 'cluster_key_file'"));
}

TEST_F(ConfigTest, MissingKeyFileIsRefused)
{
    std::string text = three_nodes("");
    text.replace(text.find("authkey"), 7, "no-such-key");
    EXPECT_TRUE(
        ErrorAt(load(text), path_, 16, "cannot open key file " + dir_ + "/no-such-key: No such file or directory"));
}

TEST_F(ConfigTest, ShortKeyFileIsRefused)
{
    const std::string text = three_nodes("");
    write("authkey", "only 31 bytes, a guessable key.");
    EXPECT_TRUE(ErrorAt(load(text), path_, 16, "key file " + dir_ + "/authkey has 31 bytes; at least 32 are needed"));
}

TEST_F(ConfigTest, HugeKeyFileIsRefused)
{
    const std::string text = three_nodes("");
    write("authkey", std::string(1025, 'k'));
    EXPECT_TRUE(ErrorAt(load(text), path_, 16, "has 1025 bytes; at most 1024 are allowed"));
}

TEST_F(ConfigTest, KeyFileWithGroupOrOtherPermissionsIsRefused)
{
    const std::string text = three_nodes("");
    write("authkey", kKeyText, 0644);
    EXPECT_TRUE(ErrorAt(load(text), path_, 16,
                        "key file " + dir_ + "/authkey gives permissions to others (mode 0644); chmod 600 it"));
    write("authkey", kKeyText, 0640);
    EXPECT_TRUE(ErrorAt(load(text), path_, 16, "gives permissions to its group (mode 0640)"));
    // Write alone is enough: whoever can write the key can replace it with one they know.
    write("authkey", kKeyText, 0620);
    EXPECT_TRUE(ErrorAt(load(text), path_, 16, "gives permissions to its group (mode 0620)"));
    write("authkey", kKeyText, 0602);
    EXPECT_TRUE(ErrorAt(load(text), path_, 16, "gives permissions to others (mode 0602)"));
    write("authkey", kKeyText, 0400);
    EXPECT_EQ(load(text), "");
}

TEST_F(ConfigTest, KeyFileThroughASymbolicLinkIsRefused)
{
    // Whoever can re-point the link chooses the key.
    write("real-authkey", kKeyText);
    ASSERT_EQ(::symlink((dir_ + "/real-authkey").c_str(), (dir_ + "/link-authkey").c_str()), 0);
    std::string text = three_nodes("");
    text.replace(text.find("authkey"), 7, "link-authkey");
    EXPECT_TRUE(ErrorAt(load(text), path_, 16, "key file " + dir_ + "/link-authkey is a symbolic link; name the file itself"));
}

TEST_F(ConfigTest, KeyFileOwnedByAnotherUserIsRefused)
{
    const std::string text = three_nodes("");
    const std::string file = write("authkey", kKeyText);
    if (::geteuid() != 0) {
        GTEST_SKIP() << "giving a file to another user needs root";
    }
    ASSERT_EQ(::chown(file.c_str(), 65534, static_cast<gid_t>(-1)), 0);  // nobody
    EXPECT_TRUE(ErrorAt(load(text), path_, 16,
                        "key file " + file + " is owned by uid 65534, not by root or rcpgd's user (uid 0); chown it"));
}

TEST_F(ConfigTest, KeyFilePathIsRelativeToTheConfigurationsFolderOrAbsolute)
{
    // A relative path resolves next to rcpg.conf, not in the working directory.
    const std::filesystem::path previous = std::filesystem::current_path();
    ASSERT_EQ(::chdir("/"), 0);
    std::filesystem::create_directory(dir_ + "/keys");
    write("keys/corosync-authkey", std::string(128, '\x5a'));  // corosync-keygen's 128 bytes
    std::string text = three_nodes("");
    text.replace(text.find("authkey"), 7, "keys/corosync-authkey");
    ASSERT_EQ(load(text), "");
    EXPECT_EQ(options_.cluster.cluster_key.size(), 128u);

    text.replace(text.find("keys/corosync-authkey"), 21, dir_ + "/authkey");
    ASSERT_EQ(load(text), "");
    EXPECT_EQ(options_.cluster.cluster_key.size(), kKeyText.size());
    std::filesystem::current_path(previous);
}

// --- corosync's crypto settings ----------------------------------------------------------

TEST_F(ConfigTest, TotemCryptoWithoutAcknowledgementIsRefusedAtItsLine)
{
    // corosync would encrypt and authenticate; rcpg does not say it does, and does not run.
    const std::string totem = "totem {\n  version: 2\n  crypto_cipher: aes256\n  crypto_hash: sha256\n}\n";
    const std::string error = load(totem + three_nodes(""));
    EXPECT_TRUE(ErrorAt(error, path_, 3, "totem asks for encrypted, authenticated traffic (crypto_cipher: crypto_cipher aes256, "
                                         "crypto_hash sha256)"));
    EXPECT_TRUE(ErrorAt(error, path_, 3, "add 'wire_security: plaintext' to an rcpg section"));

    // A hash alone asks for authentication of every message: refused the same way.
    EXPECT_TRUE(ErrorAt(load("totem {\n  crypto_hash: sha1\n}\n" + three_nodes("")), path_, 2, "crypto_hash sha1"));
    // secauth: on implies aes256 and sha256 (corosync.conf(5)).
    EXPECT_TRUE(ErrorAt(load("totem {\n  secauth: on\n}\n" + three_nodes("")), path_, 2,
                        "(secauth: crypto_cipher aes256, crypto_hash sha256)"));
    // Explicit none, and secauth off: nothing is asked.
    EXPECT_EQ(load("totem {\n  secauth: on\n  crypto_cipher: none\n  crypto_hash: none\n}\n" + three_nodes("")), "");
    EXPECT_EQ(load("totem {\n  secauth: off\n}\n" + three_nodes("")), "");
}

TEST_F(ConfigTest, TotemCryptoIsAcceptedOnlyExplicitlyAndCheckConfigSaysSo)
{
    const std::string totem = "totem {\n  crypto_cipher: aes128\n  crypto_hash: sha512\n}\n";
    ASSERT_EQ(load(totem + three_nodes("  wire_security: plaintext\n")), "");
    const std::string text = describe(options_);
    EXPECT_NE(text.find("wire security: connections authenticated (HMAC-SHA-256 challenge and response on the key "
                        "HKDF-SHA-256 makes of the cluster key); data in clear; corosync.conf asks crypto_cipher aes128, "
                        "crypto_hash sha512, accepted by wire_security: plaintext\n"),
              std::string::npos)
        << text;
    // Without crypto asked, the wire security is still printed.
    ASSERT_EQ(load(three_nodes("")), "");
    EXPECT_NE(describe(options_).find("wire security: connections authenticated"), std::string::npos);
    EXPECT_EQ(describe(options_).find("accepted by"), std::string::npos);
}

TEST_F(ConfigTest, BadCryptoValuesAreRefusedAtTheirLine)
{
    EXPECT_TRUE(ErrorAt(load("totem {\n  crypto_cipher: blowfish\n}\n" + three_nodes("")), path_, 2,
                        "crypto_cipher must be one of none, aes256, aes192, aes128, not 'blowfish'"));
    EXPECT_TRUE(ErrorAt(load("totem {\n  crypto_hash: crc32\n}\n" + three_nodes("")), path_, 2, "crypto_hash must be one of"));
    EXPECT_TRUE(ErrorAt(load("totem {\n  secauth: maybe\n}\n" + three_nodes("")), path_, 2, "secauth must be on or off"));
    EXPECT_TRUE(ErrorAt(load(three_nodes("  wire_security: encrypted\n")), path_, kRcpgBodyLine,
                        "wire_security accepts only 'plaintext'"));
}

// --- The nodelist ------------------------------------------------------------------------

TEST_F(ConfigTest, NodeWithoutNodeidIsRefusedAtItsSection)
{
    EXPECT_TRUE(ErrorAt(load("nodelist {\n  node {\n    ring0_addr: 10.0.0.1\n  }\n}\n"), path_, 2,
                        "node section has no 'nodeid'"));
}

TEST_F(ConfigTest, NodeWithoutRing0AddrIsRefusedAtItsSection)
{
    EXPECT_TRUE(ErrorAt(load("nodelist {\n  node {\n    nodeid: 4\n    ring1_addr: 10.0.0.1\n  }\n}\n"), path_, 2,
                        "node 4 has no 'ring0_addr'"));
}

TEST_F(ConfigTest, NodeidOutsideOneTo2Pow32IsRefused)
{
    EXPECT_TRUE(ErrorAt(load("nodelist {\n  node {\n    nodeid: 0\n    ring0_addr: 10.0.0.1\n  }\n}\n"), path_, 3,
                        "nodeid needs a number from 1 to 4294967295, not '0'"));
    EXPECT_TRUE(ErrorAt(load("nodelist {\n  node {\n    nodeid: 4294967296\n    ring0_addr: 10.0.0.1\n  }\n}\n"), path_,
                        3, "not '4294967296'"));
    EXPECT_TRUE(ErrorAt(load("nodelist {\n  node {\n    nodeid: one\n    ring0_addr: 10.0.0.1\n  }\n}\n"), path_, 3,
                        "not 'one'"));
}

TEST_F(ConfigTest, DuplicateNodeidIsRefused)
{
    EXPECT_TRUE(ErrorAt(load(R"(nodelist {
  node {
    nodeid: 5
    ring0_addr: 10.0.0.1
  }
  node {
    nodeid: 5
    ring0_addr: 10.0.0.2
  }
}
)"),
                        path_, 7, "nodeid 5 is already used by the node at line 2"));
}

TEST_F(ConfigTest, NodeKeySetTwiceIsRefused)
{
    EXPECT_TRUE(ErrorAt(load("nodelist {\n  node {\n    nodeid: 1\n    ring0_addr: 10.0.0.1\n    nodeid: 2\n  }\n}\n"),
                        path_, 5, "'nodeid' is set twice in this node section (first at line 3)"));
}

TEST_F(ConfigTest, Ipv6Ring0AddrIsRefused)
{
    EXPECT_TRUE(ErrorAt(load("nodelist {\n  node {\n    nodeid: 1\n    ring0_addr: fd00::1\n  }\n}\n"), path_, 4,
                        "is an IPv6 address; rcpg needs an IPv4 address"));
}

// --- Syntax ------------------------------------------------------------------------------

TEST_F(ConfigTest, UnclosedSectionIsNamedAtTheLineThatOpensIt)
{
    // The node opened at line 3 never closes: the nodelist's '}' closes it, the file ends.
    const std::string error = load("totem {\n}\nnodelist {\n  node {\n    nodeid: 1\n    ring0_addr: 10.0.0.1\n}\n");
    EXPECT_TRUE(ErrorAt(error, path_, 3, "section 'nodelist' is never closed"));
}

TEST_F(ConfigTest, StrayClosingBraceIsNamedAtItsLine)
{
    EXPECT_TRUE(ErrorAt(load("totem {\n  version: 2\n}\n}\n"), path_, 4, "'}' closes no section"));
}

TEST_F(ConfigTest, MalformedLinesAreRefusedEvenInIgnoredSections)
{
    EXPECT_TRUE(ErrorAt(load("totem {\n  version 2\n}\n"), path_, 2, "expected 'key: value', 'section {' or '}'"));
    EXPECT_TRUE(ErrorAt(load("totem {\n  interface { linknumber: 0 }\n}\n"), path_, 2, "expected nothing after '{'"));
    EXPECT_TRUE(ErrorAt(load("{\n}\n"), path_, 1, "expected a section name before '{'"));
    // As in corosync, a '}' after "key:" is part of the value, so the section stays open.
    EXPECT_TRUE(ErrorAt(load("totem {\n  version: 2 }\n"), path_, 1, "section 'totem' is never closed"));
    EXPECT_TRUE(ErrorAt(load("totem {\n  } }\n}\n"), path_, 2, "expected '}' alone on its line"));
    EXPECT_TRUE(ErrorAt(load("totem {\n  : 2\n}\n"), path_, 2, "expected a key name before ':'"));
}

TEST_F(ConfigTest, MissingFileIsAFileLevelError)
{
    EXPECT_EQ(problem(load_config(dir_ + "/absent.conf", options_)),
              dir_ + "/absent.conf: cannot open: No such file or directory");
    EXPECT_EQ(problem(load_config(dir_, options_)), dir_ + ": cannot read: Is a directory");
}

TEST_F(ConfigTest, FailedLoadLeavesOptionsAsTheyWere)
{
    // A valid rcpg key before the error must not leak into Options.
    options_.ring_bytes = 16ull << 20;
    EXPECT_FALSE(load(three_nodes("  ring_mib: 256\n  bogus: 1\n")).empty());
    EXPECT_EQ(options_.ring_bytes, 16ull << 20);
    EXPECT_TRUE(options_.cluster.nodes.empty());
    EXPECT_EQ(options_.config_path, "");
}

// --- The local node ----------------------------------------------------------------------

TEST_F(ConfigTest, NodeidFlagPicksANodeOfTheNodelist)
{
    ASSERT_EQ(load(three_nodes("")), "");
    EXPECT_EQ(problem(resolve_local_node(options_, 3)), "");
    EXPECT_EQ(options_.nodeid, 3u);
}

TEST_F(ConfigTest, NodeidFlagOutsideTheNodelistIsRefusedNamingTheFile)
{
    ASSERT_EQ(load(three_nodes("")), "");
    EXPECT_EQ(problem(resolve_local_node(options_, 4)), path_ + ": --nodeid 4 is not in the nodelist (nodes 1, 2, 3)");
}

TEST_F(ConfigTest, WithoutTheFlagTheNodeWithAnAddressOfThisHostIsLocal)
{
    // 127.0.0.1 is on this host's loopback; 192.0.2.0/24 is TEST-NET, on no host.
    write("authkey", kKeyText);
    ASSERT_EQ(load(R"(nodelist {
  node {
    nodeid: 1
    ring0_addr: 192.0.2.1
  }
  node {
    nodeid: 2
    ring0_addr: 127.0.0.1
  }
}
rcpg {
  cluster_key_file: authkey
}
)"),
              "");
    EXPECT_EQ(problem(resolve_local_node(options_, 0)), "");
    EXPECT_EQ(options_.nodeid, 2u);
}

TEST_F(ConfigTest, WithoutTheFlagNoOrSeveralLocalNodesAreRefused)
{
    ASSERT_EQ(load(three_nodes("")), "");
    EXPECT_TRUE(ErrorAt(problem(resolve_local_node(options_, 0, {"127.0.0.1", "10.9.9.9"})), path_, 0,
                        "no node of the nodelist has an address of this host"));
    EXPECT_TRUE(ErrorAt(problem(resolve_local_node(options_, 0, {"10.0.0.1", "10.0.0.3"})), path_, 0,
                        "nodes 1, 3 all have addresses of this host; pass --nodeid"));
    EXPECT_EQ(problem(resolve_local_node(options_, 0, {"10.0.0.3"})), "");
    EXPECT_EQ(options_.nodeid, 3u);
}

TEST_F(ConfigTest, OneNodeNodelistIsLocalWhateverItsAddress)
{
    ASSERT_EQ(load("nodelist {\n  node {\n    nodeid: 9\n    ring0_addr: 192.0.2.1\n  }\n}\n"), "");
    EXPECT_EQ(problem(resolve_local_node(options_, 0, {})), "");
    EXPECT_EQ(options_.nodeid, 9u);
}

// --- describe() ----------------------------------------------------------------------------

TEST_F(ConfigTest, DescribeNamesEveryNodeTheLocalOneAndTheKeyFileButNeverTheKey)
{
    ASSERT_EQ(load(three_nodes("  sequencer_order: 2\n  device: rxe0\n  node {\n    nodeid: 3\n    port: 7600\n  }\n")),
              "");
    ASSERT_EQ(problem(resolve_local_node(options_, 1)), "");
    const std::string text = describe(options_);
    EXPECT_NE(text.find("configuration file: " + path_), std::string::npos) << text;
    EXPECT_NE(text.find("node 1 at 10.0.0.1:7405, this node\n"), std::string::npos) << text;
    EXPECT_NE(text.find("node 2 at 10.0.0.2:7405\n"), std::string::npos) << text;
    EXPECT_NE(text.find("node 3 at 10.0.0.3:7600\n"), std::string::npos) << text;
    EXPECT_NE(text.find("sequencer order: 2 1 3 (node 2 sequences)"), std::string::npos) << text;
    EXPECT_NE(text.find("RDMA device: rxe0"), std::string::npos) << text;
    EXPECT_NE(text.find("delivery ring: 64 MiB"), std::string::npos) << text;
    EXPECT_NE(text.find("cluster key: " + dir_ + "/authkey, 32 bytes"), std::string::npos) << text;
    EXPECT_EQ(text.find("SeCrEt"), std::string::npos) << "the key's bytes leaked:\n" << text;
    EXPECT_EQ(text.find("5365"), std::string::npos) << "the key's bytes leaked in hex:\n" << text;
}

TEST_F(ConfigTest, DescribeShowsNodeNames)
{
    write("authkey", kKeyText);
    ASSERT_EQ(load(std::string(kCorosyncConf) + "rcpg {\n  cluster_key_file: authkey\n}\n"), "");
    const std::string text = describe(options_);
    EXPECT_NE(text.find("node 1 (alpha) at 192.0.2.11:7405"), std::string::npos) << text;
    EXPECT_NE(text.find("node 2 (beta) at 192.0.2.12:7405"), std::string::npos) << text;
    EXPECT_NE(text.find("node 3 (gamma) at 192.0.2.13:7405"), std::string::npos) << text;
}

// The one test that touches nothing outside the process: no file, no name service, no
// interface list (describe of numeric ids, resolve_local_node with the addresses given).
TEST(ConfigWithoutSystem, DescribeAndLocalNodeOfHandBuiltOptions)
{
    Options options;
    EXPECT_EQ(problem(resolve_local_node(options, 5, {})), "") << "no nodelist: nothing to check";
    EXPECT_EQ(options.nodeid, 1u) << "no nodelist: the nodeid stays";
    std::string text = describe(options);
    EXPECT_NE(text.find("configuration file: none\n"), std::string::npos) << text;
    EXPECT_NE(text.find("one-node cluster of node 1 (this node)"), std::string::npos) << text;
    EXPECT_NE(text.find("cluster key: none\n"), std::string::npos) << text;
    EXPECT_NE(text.find("allowed groups: none\n"), std::string::npos) << text;

    options.cluster.nodes = {{1, "a", "10.0.0.1", 7405}, {2, "", "10.0.0.2", 7406}};
    options.cluster.sequencer_order = {2, 1};
    options.cluster.cluster_key.assign(32, std::byte{0x42});
    EXPECT_EQ(problem(resolve_local_node(options, 0, {"10.0.0.2"})), "");
    EXPECT_EQ(options.nodeid, 2u);
    text = describe(options);
    EXPECT_NE(text.find("nodes: 2\n"), std::string::npos) << text;
    EXPECT_NE(text.find("node 1 (a) at 10.0.0.1:7405\n"), std::string::npos) << text;
    EXPECT_NE(text.find("node 2 at 10.0.0.2:7406, this node\n"), std::string::npos) << text;
    EXPECT_NE(text.find("sequencer order: 2 1 (node 2 sequences)"), std::string::npos) << text;
    EXPECT_NE(text.find("cluster key: 32 bytes\n"), std::string::npos) << text;
}

// --- corosync's access rules: uidgid sections and uidgid.d/ ------------------------------

TEST_F(ConfigTest, UidgidSectionsAndTheUidgidDirectoryAllowUsersAndGroups)
{
    // As Pacemaker's packages leave them: a uidgid section in corosync.conf, and a file in
    // uidgid.d beside it.
    std::filesystem::create_directory(dir_ + "/uidgid.d");
    write("uidgid.d/pacemaker", "uidgid {\n  uid: 1201\n  gid: 1202\n}\n", 0644);
    write("uidgid.d/dlm", "# dlm_controld\nuidgid {\n  gid: daemon\n}\n", 0644);
    ASSERT_EQ(load("totem {\n  version: 2\n}\nuidgid {\n  uid: nobody\n}\nuidgid {\n  gid: 4242\n}\n"), "");
    std::vector<uid_t> uids = options_.allowed_uids;
    std::vector<gid_t> gids = options_.allowed_gids;
    std::sort(uids.begin(), uids.end());
    std::sort(gids.begin(), gids.end());
    EXPECT_EQ(uids, (std::vector<uid_t>{1201, ::getpwnam("nobody")->pw_uid}));
    EXPECT_EQ(gids, (std::vector<gid_t>{::getgrnam("daemon")->gr_gid, 1202, 4242}));
}

TEST_F(ConfigTest, UidgidAcceptsOnlyUidAndGidOfKnownUsersAndGroups)
{
    EXPECT_TRUE(ErrorAt(load("uidgid {\n  user: alice\n}\n"), path_, 2, "only uid and gid"));
    EXPECT_TRUE(ErrorAt(load("uidgid {\n  uid: rcpg-no-such-user\n}\n"), path_, 2, "no such user"));
    EXPECT_TRUE(ErrorAt(load("uidgid {\n  gid: rcpg-no-such-group\n}\n"), path_, 2, "no such group"));
    EXPECT_TRUE(ErrorAt(load("uidgid {\n  inner {\n  }\n}\n"), path_, 2, "only uid and gid"));
    std::filesystem::create_directory(dir_ + "/uidgid.d");
    const std::string stray = write("uidgid.d/stray", "uidgid {\n  uid: 1\n}\nlogging {\n}\n", 0644);
    EXPECT_TRUE(ErrorAt(load("uidgid {\n  uid: 1\n}\n"), stray, 4, "only uidgid sections"));
    EXPECT_TRUE(options_.allowed_uids.empty()) << "a failed load changes nothing";
}

TEST_F(ConfigTest, ClientCapsAreReadAndChecked)
{
    ASSERT_EQ(load(three_nodes("  max_clients: 64\n  max_clients_per_uid: 8\n")), "");
    EXPECT_EQ(options_.max_clients, 64u);
    EXPECT_EQ(options_.max_clients_per_uid, 8u);
    EXPECT_TRUE(ErrorAt(load(three_nodes("  max_clients: 0\n")), path_, kRcpgBodyLine, "max_clients needs a number"));
}

// --- Slow readers' backlogs and the state directory -------------------------------------

TEST_F(ConfigTest, ClientBacklogAndStateDirAreReadAndCheckedWithTheirLine)
{
    ASSERT_EQ(load(three_nodes("  client_backlog_mib: 1024\n  state_dir: /srv/rcpg\n")), "");
    EXPECT_EQ(options_.client_backlog_bytes, 1024ull << 20);
    EXPECT_EQ(options_.state_dir, "/srv/rcpg");
    ASSERT_EQ(load(three_nodes("  client_backlog_mib: 0\n")), "");
    EXPECT_EQ(options_.client_backlog_bytes, 0u) << "0: no backlogs";
    for (const char* bad : {"  client_backlog_mib: 4\n", "  client_backlog_mib: 100\n", "  client_backlog_mib: 32768\n",
                            "  client_backlog_mib: lots\n"}) {
        EXPECT_TRUE(ErrorAt(load(three_nodes(bad)), path_, kRcpgBodyLine, "client_backlog_mib needs 0 or a power of two"))
            << bad;
    }
    EXPECT_TRUE(ErrorAt(load(three_nodes("  state_dir: relative/dir\n")), path_, kRcpgBodyLine,
                        "state_dir needs an absolute directory path"));
}

TEST_F(ConfigTest, DefaultsKeepBacklogsAndTheRingIdInVarLib)
{
    const Options defaults;
    EXPECT_EQ(defaults.client_backlog_bytes, 256ull << 20);
    EXPECT_EQ(defaults.state_dir, "/var/lib/rcpg");
}

}  // namespace
}  // namespace rcpg::daemon
