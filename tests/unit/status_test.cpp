// The error convention: a Status says what failed, where and why, keeps its code and layer
// when a caller adds what it was doing, and maps to one documented cs_error_t at the C edge.
#include "base/status.hpp"
#include "daemon/cs_error.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <set>

namespace {

using rcpg::base::Errc;
using rcpg::base::Layer;
using rcpg::base::Result;
using rcpg::base::Status;

TEST(Status, AnErrorSaysItsLayerCodeAndContext)
{
    const Status ok;
    EXPECT_TRUE(ok.ok());
    EXPECT_EQ(ok.message(), "ok");
    const Status refused{Errc::refused, Layer::protocol, "its hello names node 9"};
    EXPECT_FALSE(refused.ok());
    EXPECT_EQ(refused.message(), "protocol: refused: its hello names node 9");
}

TEST(Status, WhatTheCallerWasDoingGoesInFrontAndTheCodeStays)
{
    const Status inner{Errc::device_error, Layer::memory, "ibv_reg_mr: Cannot allocate memory"};
    const Status outer = inner.in("cannot register the delivery ring");
    EXPECT_EQ(outer.code(), Errc::device_error);
    EXPECT_EQ(outer.layer(), Layer::memory);
    EXPECT_EQ(outer.context(), "cannot register the delivery ring: ibv_reg_mr: Cannot allocate memory");
    EXPECT_TRUE(Status{}.in("anything").ok()) << "no error gains none by being described";
}

TEST(Status, AResultHoldsAValueOrWhyNot)
{
    const Result<int> value = 7;
    ASSERT_TRUE(value.ok());
    EXPECT_EQ(*value, 7);
    EXPECT_TRUE(value.status().ok());
    const Result<int> failed = rcpg::base::errno_status(Errc::io_error, Layer::system, "cannot read /x", ENOENT);
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.status().code(), Errc::io_error);
    EXPECT_EQ(failed.status().context(), "cannot read /x: No such file or directory");
}

TEST(Status, EveryCodeMapsToADocumentedCsErrorAndOnlyOkToCsOk)
{
    using rcpg::daemon::to_cs_error;
    const std::set<cs_error_t> documented{CS_OK, CS_ERR_INVALID_PARAM, CS_ERR_NOT_EXIST, CS_ERR_TRY_AGAIN, CS_ERR_ACCESS,
                                          CS_ERR_MESSAGE_ERROR, CS_ERR_NO_RESOURCES};
    for (Errc code : {Errc::ok, Errc::invalid_argument, Errc::not_found, Errc::not_connected, Errc::try_again,
                      Errc::refused, Errc::device_error, Errc::malformed, Errc::io_error}) {
        const cs_error_t mapped = to_cs_error(code);
        EXPECT_TRUE(documented.contains(mapped)) << rcpg::base::to_string(code) << " -> " << mapped;
        EXPECT_EQ(mapped == CS_OK, code == Errc::ok) << rcpg::base::to_string(code);
    }
    EXPECT_EQ(to_cs_error(Status{Errc::try_again, Layer::ring, "full"}), CS_ERR_TRY_AGAIN);
    EXPECT_EQ(to_cs_error(Status{Errc::device_error, Layer::memory, "pinning"}), CS_ERR_NO_RESOURCES);
}

}  // namespace
