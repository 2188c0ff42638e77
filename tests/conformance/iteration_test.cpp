// The iteration API: cpg_iteration_initialize (NAME_ONLY with nodeid = pid = 0 and one
// entry per group, ONE_GROUP, ALL; a snapshot; no join needed; argument checks before
// the handle check), cpg_iteration_next (wraps around after CS_ERR_NO_SECTIONS, NULL
// description first) and cpg_iteration_finalize, and iteration handles dying with
// cpg_iteration_finalize and with their parent handle.
#include "tests/conformance/conformance.hpp"

#include <map>
#include <set>
#include <tuple>

namespace rcpg::conformance {
namespace {

struct Row {
    std::string group;
    uint32_t nodeid;
    uint32_t pid;
    bool operator<(const Row& other) const
    {
        return std::tie(group, nodeid, pid) < std::tie(other.group, other.nodeid, other.pid);
    }
    bool operator==(const Row& other) const = default;
};

// Every row until CS_ERR_NO_SECTIONS; `end` gets the terminating result.
std::vector<Row> drain(cpg_iteration_handle_t iteration, cs_error_t* end = nullptr)
{
    std::vector<Row> rows;
    cpg_iteration_description_t description{};
    cs_error_t result;
    while ((result = cpg_iteration_next(iteration, &description)) == CS_OK && rows.size() < 10000) {
        rows.push_back({name_text(description.group), description.nodeid, description.pid});
    }
    if (end != nullptr) {
        *end = result;
    }
    return rows;
}

// A parent with three groups on three handles, and a child that is a member of
// "it-alpha" too.
class Iteration : public Conformance {
protected:
    void SetUp() override
    {
        child_ = std::make_unique<ChildProcess>([this]() -> int {
            ready_.close_read();
            release_.close_write();
            Client child(Client::Options{.retry_init = true});
            if (!child.ok() || child.join("it-alpha") != CS_OK) {
                return 2;
            }
            ready_.write_byte('j');
            release_.wait_eof(kHoldTimeout);
            return 0;
        });
        ASSERT_TRUE(child_->started());
        ready_.close_write();
        release_.close_read();
        ASSERT_EQ(ready_.read_byte(), 'j');
        for (size_t i = 0; i < 3; ++i) {
            clients_.push_back(std::make_unique<Client>());
            ASSERT_TRUE(clients_.back()->ok());
        }
        ASSERT_EQ(clients_[0]->join("it-alpha"), CS_OK);
        ASSERT_EQ(clients_[1]->join("it-beta"), CS_OK);
        ASSERT_EQ(clients_[2]->join(std::string("it-gamma\0", 9)), CS_OK);
        for (auto& client : clients_) {
            ASSERT_TRUE(client->pump_until_count(Event::confchg, 1));
        }
    }
    void TearDown() override
    {
        release_.close_write();
        if (child_) {
            EXPECT_EQ(child_->wait(), 0);
        }
    }

    cpg_handle_t handle() const { return clients_[0]->handle; }
    uint32_t child_pid() const { return static_cast<uint32_t>(child_->pid()); }

    Pipe ready_;
    Pipe release_;
    std::unique_ptr<ChildProcess> child_;
    std::vector<std::unique_ptr<Client>> clients_;
};

const std::string kGamma("it-gamma\0", 9);

TEST_F(Iteration, NameOnlyGivesOneEntryPerGroupWithZeroIds)
{
    cpg_iteration_handle_t iteration = 0;
    ASSERT_EQ(cpg_iteration_initialize(handle(), CPG_ITERATION_NAME_ONLY, nullptr, &iteration), CS_OK);
    EXPECT_NE(iteration, 0u);
    cs_error_t end = CS_OK;
    const auto rows = drain(iteration, &end);
    EXPECT_EQ(end, CS_ERR_NO_SECTIONS);
    std::multiset<std::string> names;
    for (const Row& row : rows) {
        names.insert(row.group);
        EXPECT_EQ(row.nodeid, 0u) << row.group;
        EXPECT_EQ(row.pid, 0u) << row.group;
    }
    EXPECT_EQ(names, (std::multiset<std::string>{"it-alpha", "it-beta", kGamma}));
    EXPECT_EQ(cpg_iteration_finalize(iteration), CS_OK);
}

TEST_F(Iteration, OneGroupListsTheMembersOfThatGroup)
{
    const cpg_name alpha = group_named("it-alpha");
    cpg_iteration_handle_t iteration = 0;
    ASSERT_EQ(cpg_iteration_initialize(handle(), CPG_ITERATION_ONE_GROUP, &alpha, &iteration), CS_OK);
    auto rows = drain(iteration);
    std::sort(rows.begin(), rows.end());
    std::vector<Row> expected = {{"it-alpha", 1, self_pid()}, {"it-alpha", 1, child_pid()}};
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(rows, expected);
    EXPECT_EQ(cpg_iteration_finalize(iteration), CS_OK);

    const cpg_name gamma = group_named(kGamma);
    ASSERT_EQ(cpg_iteration_initialize(handle(), CPG_ITERATION_ONE_GROUP, &gamma, &iteration), CS_OK);
    EXPECT_EQ(drain(iteration), (std::vector<Row>{{kGamma, 1, self_pid()}}));
    EXPECT_EQ(cpg_iteration_finalize(iteration), CS_OK);
}

TEST_F(Iteration, AllListsEveryMemberGroupedByName)
{
    cpg_iteration_handle_t iteration = 0;
    ASSERT_EQ(cpg_iteration_initialize(handle(), CPG_ITERATION_ALL, nullptr, &iteration), CS_OK);
    const auto rows = drain(iteration);
    std::vector<Row> sorted = rows;
    std::sort(sorted.begin(), sorted.end());
    std::vector<Row> expected = {{"it-alpha", 1, self_pid()},
                                 {"it-alpha", 1, child_pid()},
                                 {"it-beta", 1, self_pid()},
                                 {kGamma, 1, self_pid()}};
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(sorted, expected);
    // Entries of one group are contiguous.
    std::set<std::string> finished;
    for (size_t i = 0; i < rows.size(); ++i) {
        EXPECT_FALSE(finished.count(rows[i].group)) << rows[i].group << " appears in two runs";
        if (i + 1 == rows.size() || rows[i + 1].group != rows[i].group) {
            finished.insert(rows[i].group);
        }
    }
    EXPECT_EQ(cpg_iteration_finalize(iteration), CS_OK);
}

TEST_F(Iteration, NextWrapsAroundAfterNoSections)
{
    cpg_iteration_handle_t iteration = 0;
    ASSERT_EQ(cpg_iteration_initialize(handle(), CPG_ITERATION_ALL, nullptr, &iteration), CS_OK);
    cs_error_t end = CS_OK;
    const auto first_pass = drain(iteration, &end);
    ASSERT_EQ(end, CS_ERR_NO_SECTIONS);
    ASSERT_EQ(first_pass.size(), 4u);
    const auto second_pass = drain(iteration, &end);
    EXPECT_EQ(end, CS_ERR_NO_SECTIONS);
    EXPECT_EQ(second_pass, first_pass) << "after NO_SECTIONS the next call starts over";
    EXPECT_EQ(cpg_iteration_finalize(iteration), CS_OK);
}

TEST_F(Iteration, IterationIsASnapshot)
{
    cpg_iteration_handle_t iteration = 0;
    ASSERT_EQ(cpg_iteration_initialize(handle(), CPG_ITERATION_ALL, nullptr, &iteration), CS_OK);
    Client late;
    ASSERT_TRUE(late.ok());
    ASSERT_EQ(late.join("it-late"), CS_OK);
    ASSERT_EQ(clients_[1]->leave("it-beta"), CS_OK);
    ASSERT_TRUE(clients_[1]->pump_until_count(Event::confchg, 2));
    std::vector<Row> rows = drain(iteration);
    std::sort(rows.begin(), rows.end());
    std::vector<Row> expected = {{"it-alpha", 1, self_pid()},
                                 {"it-alpha", 1, child_pid()},
                                 {"it-beta", 1, self_pid()},
                                 {kGamma, 1, self_pid()}};
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(rows, expected);
    EXPECT_EQ(cpg_iteration_finalize(iteration), CS_OK);
    // A new iteration sees the change.
    ASSERT_EQ(cpg_iteration_initialize(handle(), CPG_ITERATION_NAME_ONLY, nullptr, &iteration), CS_OK);
    std::set<std::string> names;
    for (const Row& row : drain(iteration)) {
        names.insert(row.group);
    }
    EXPECT_EQ(names, (std::set<std::string>{"it-alpha", "it-late", kGamma}));
    EXPECT_EQ(cpg_iteration_finalize(iteration), CS_OK);
}

TEST_F(Iteration, WorksOnAHandleThatNeverJoined)
{
    Client outsider;
    ASSERT_TRUE(outsider.ok());
    cpg_iteration_handle_t iteration = 0;
    ASSERT_EQ(cpg_iteration_initialize(outsider.handle, CPG_ITERATION_ALL, nullptr, &iteration), CS_OK);
    EXPECT_EQ(drain(iteration).size(), 4u);
    EXPECT_EQ(cpg_iteration_finalize(iteration), CS_OK);
}

TEST_F(Iteration, NonExistentGroupGivesNoSectionsAtOnce)
{
    const cpg_name nothing = group_named("it-nothing");
    cpg_iteration_handle_t iteration = 0;
    ASSERT_EQ(cpg_iteration_initialize(handle(), CPG_ITERATION_ONE_GROUP, &nothing, &iteration), CS_OK);
    cpg_iteration_description_t description{};
    EXPECT_EQ(cpg_iteration_next(iteration, &description), CS_ERR_NO_SECTIONS);
    EXPECT_EQ(cpg_iteration_next(iteration, &description), CS_ERR_NO_SECTIONS);
    EXPECT_EQ(cpg_iteration_finalize(iteration), CS_OK);
}

TEST_F(Iteration, NullDescriptionGivesInvalidParamBeforeTheHandleCheck)
{
    cpg_iteration_handle_t iteration = 0;
    ASSERT_EQ(cpg_iteration_initialize(handle(), CPG_ITERATION_ALL, nullptr, &iteration), CS_OK);
    EXPECT_EQ(cpg_iteration_next(iteration, nullptr), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(cpg_iteration_next(0, nullptr), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(cpg_iteration_next(0xdeadbeef, nullptr), CS_ERR_INVALID_PARAM);
    // The refused call did not consume an entry.
    EXPECT_EQ(drain(iteration).size(), 4u);
    EXPECT_EQ(cpg_iteration_finalize(iteration), CS_OK);
    EXPECT_EQ(cpg_iteration_next(iteration, nullptr), CS_ERR_INVALID_PARAM);
}

TEST_F(Iteration, BadTypeOrGroupCombinationGivesInvalidParam)
{
    const cpg_name alpha = group_named("it-alpha");
    cpg_iteration_handle_t iteration = 0x77;
    for (int type : {0, 4, 99, -1}) {
        EXPECT_EQ(cpg_iteration_initialize(handle(), static_cast<cpg_iteration_type_t>(type), nullptr, &iteration),
                  CS_ERR_INVALID_PARAM)
            << type;
        EXPECT_EQ(cpg_iteration_initialize(handle(), static_cast<cpg_iteration_type_t>(type), &alpha, &iteration),
                  CS_ERR_INVALID_PARAM)
            << type;
    }
    EXPECT_EQ(cpg_iteration_initialize(handle(), CPG_ITERATION_ONE_GROUP, nullptr, &iteration), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(cpg_iteration_initialize(handle(), CPG_ITERATION_NAME_ONLY, &alpha, &iteration), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(cpg_iteration_initialize(handle(), CPG_ITERATION_ALL, &alpha, &iteration), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(cpg_iteration_initialize(handle(), CPG_ITERATION_ALL, nullptr, nullptr), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(iteration, 0x77u) << "written on failure";
    // The same checks come before the handle check.
    EXPECT_EQ(cpg_iteration_initialize(0, CPG_ITERATION_ONE_GROUP, nullptr, &iteration), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(cpg_iteration_initialize(0, static_cast<cpg_iteration_type_t>(9), nullptr, &iteration),
              CS_ERR_INVALID_PARAM);
    cpg_name long_name = group_named("x");
    long_name.length = 129;
    EXPECT_EQ(cpg_iteration_initialize(handle(), CPG_ITERATION_ONE_GROUP, &long_name, &iteration),
              CS_ERR_NAME_TOO_LONG);
}

TEST_F(Iteration, HandleIsInvalidAfterIterationFinalize)
{
    cpg_iteration_handle_t iteration = 0;
    ASSERT_EQ(cpg_iteration_initialize(handle(), CPG_ITERATION_ALL, nullptr, &iteration), CS_OK);
    cpg_iteration_description_t description{};
    ASSERT_EQ(cpg_iteration_next(iteration, &description), CS_OK);
    EXPECT_EQ(cpg_iteration_finalize(iteration), CS_OK);
    EXPECT_EQ(cpg_iteration_next(iteration, &description), CS_ERR_BAD_HANDLE);
    EXPECT_EQ(cpg_iteration_finalize(iteration), CS_ERR_BAD_HANDLE);
    // A new iteration is a different handle.
    cpg_iteration_handle_t again = 0;
    ASSERT_EQ(cpg_iteration_initialize(handle(), CPG_ITERATION_ALL, nullptr, &again), CS_OK);
    EXPECT_NE(again, iteration);
    EXPECT_EQ(cpg_iteration_next(iteration, &description), CS_ERR_BAD_HANDLE);
    EXPECT_EQ(cpg_iteration_finalize(again), CS_OK);
}

TEST_F(Iteration, HandlesDieWithTheirParentOnly)
{
    Client parent;
    ASSERT_TRUE(parent.ok());
    cpg_iteration_handle_t first = 0;
    cpg_iteration_handle_t second = 0;
    cpg_iteration_handle_t other_parent = 0;
    ASSERT_EQ(cpg_iteration_initialize(parent.handle, CPG_ITERATION_ALL, nullptr, &first), CS_OK);
    ASSERT_EQ(cpg_iteration_initialize(parent.handle, CPG_ITERATION_NAME_ONLY, nullptr, &second), CS_OK);
    ASSERT_EQ(cpg_iteration_initialize(handle(), CPG_ITERATION_ALL, nullptr, &other_parent), CS_OK);
    EXPECT_NE(first, second);
    cpg_iteration_description_t description{};
    ASSERT_EQ(cpg_iteration_next(first, &description), CS_OK);
    ASSERT_EQ(parent.finalize(), CS_OK);
    EXPECT_EQ(cpg_iteration_next(first, &description), CS_ERR_BAD_HANDLE);
    EXPECT_EQ(cpg_iteration_next(second, &description), CS_ERR_BAD_HANDLE);
    EXPECT_EQ(cpg_iteration_finalize(first), CS_ERR_BAD_HANDLE);
    EXPECT_EQ(cpg_iteration_finalize(second), CS_ERR_BAD_HANDLE);
    // Another parent's iteration is untouched.
    EXPECT_EQ(drain(other_parent).size(), 4u);
    EXPECT_EQ(cpg_iteration_finalize(other_parent), CS_OK);
}

}  // namespace
}  // namespace rcpg::conformance
