#include "transport/crypto.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/kdf.h>
#include <sys/random.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string_view>

namespace rcpg::transport {
namespace {

// HKDF's salt and info: fixed labels, so that the same key file used by another program
// (corosync's authkey is) gives rcpg a key of its own.
constexpr std::string_view kHkdfSalt = "rcpg cluster key v2";
constexpr std::string_view kHkdfInfo = "rcpg fabric handshake";

struct PkeyCtxFree {
    void operator()(EVP_PKEY_CTX* ctx) const { EVP_PKEY_CTX_free(ctx); }
};
struct MacCtxFree {
    void operator()(EVP_MAC_CTX* ctx) const { EVP_MAC_CTX_free(ctx); }
};

const unsigned char* bytes_of(std::span<const std::byte> bytes) { return reinterpret_cast<const unsigned char*>(bytes.data()); }

}  // namespace

Status hkdf_sha256(std::span<const std::byte> input_key, std::span<const std::byte> salt,
                   std::span<const std::byte> info, std::span<std::byte> out)
{
    std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr));
    size_t length = out.size();
    if (!ctx || EVP_PKEY_derive_init(ctx.get()) <= 0 || EVP_PKEY_CTX_set_hkdf_md(ctx.get(), EVP_sha256()) <= 0 ||
        EVP_PKEY_CTX_set1_hkdf_salt(ctx.get(), bytes_of(salt), static_cast<int>(salt.size())) <= 0 ||
        EVP_PKEY_CTX_set1_hkdf_key(ctx.get(), bytes_of(input_key), static_cast<int>(input_key.size())) <= 0 ||
        EVP_PKEY_CTX_add1_hkdf_info(ctx.get(), bytes_of(info), static_cast<int>(info.size())) <= 0 ||
        EVP_PKEY_derive(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &length) <= 0 || length != out.size()) {
        return {Errc::device_error, Layer::api, "HKDF-SHA-256 failed (libcrypto)"};
    }
    return {};
}

Result<HandshakeKey> derive_handshake_key(std::span<const std::byte> key_file_bytes)
{
    if (key_file_bytes.empty()) {
        return Status{Errc::invalid_argument, Layer::api, "empty cluster key"};
    }
    HandshakeKey key;
    if (Status status = hkdf_sha256(key_file_bytes, std::as_bytes(std::span(kHkdfSalt)), std::as_bytes(std::span(kHkdfInfo)),
                                    key.bytes);
        !status) {
        return status;
    }
    return key;
}

Mac hmac_sha256(const HandshakeKey& key, std::initializer_list<std::span<const std::byte>> parts)
{
    // libcrypto keeps the fetched algorithm for the process; fetching is the costly part.
    static EVP_MAC* const hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    std::unique_ptr<EVP_MAC_CTX, MacCtxFree> ctx(hmac != nullptr ? EVP_MAC_CTX_new(hmac) : nullptr);
    char digest[] = "SHA256";
    const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
    bool ok = ctx && EVP_MAC_init(ctx.get(), reinterpret_cast<const unsigned char*>(key.bytes.data()), key.bytes.size(), params) == 1;
    for (std::span<const std::byte> part : parts) {
        ok = ok && EVP_MAC_update(ctx.get(), bytes_of(part), part.size()) == 1;
    }
    Mac mac{};
    size_t length = 0;
    ok = ok && EVP_MAC_final(ctx.get(), reinterpret_cast<unsigned char*>(mac.data()), &length, mac.size()) == 1 &&
         length == mac.size();
    if (!ok) {
        // HMAC-SHA-256 is part of libcrypto's default provider: failing here means a broken
        // installation, and a proof that cannot be computed must not be taken for one.
        std::abort();
    }
    return mac;
}

bool equal_constant_time(std::span<const std::byte> a, std::span<const std::byte> b)
{
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Status fill_random(std::span<std::byte> out)
{
    size_t done = 0;
    while (done < out.size()) {
        const ssize_t got = ::getrandom(out.data() + done, out.size() - done, 0);
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno_status(Errc::device_error, Layer::api, "getrandom", errno);
        }
        done += static_cast<size_t>(got);
    }
    return {};
}

}  // namespace rcpg::transport
