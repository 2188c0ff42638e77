// Handles as corosync makes them: bits 63..32 are a check value drawn from libc random()
// (so a stale or forged handle is refused), bits 31..0 a slot index reused after
// removal. A valid handle is never 0. Lookups hand out shared ownership, so an object
// stays alive while any thread still uses it after another removed it.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace rcpg::libcpg {

template <typename T>
class HandleTable {
public:
    // Returns the new handle, or 0 if the table is full.
    uint64_t insert(std::shared_ptr<T> object)
    {
        std::lock_guard lock(mutex_);
        size_t index = 0;
        while (index < slots_.size() && slots_[index].object) {
            ++index;
        }
        if (index > UINT32_MAX) {
            return 0;
        }
        if (index == slots_.size()) {
            slots_.emplace_back();
        }
        uint32_t check = static_cast<uint32_t>(::random());
        if (check == 0) {
            check = 1;  // keeps handle 0 meaning "no handle"
        }
        slots_[index] = Slot{check, std::move(object)};
        return (uint64_t{check} << 32) | index;
    }

    std::shared_ptr<T> get(uint64_t handle) const
    {
        std::lock_guard lock(mutex_);
        const Slot* slot = find(handle);
        return slot != nullptr ? slot->object : nullptr;
    }

    std::shared_ptr<T> remove(uint64_t handle)
    {
        std::lock_guard lock(mutex_);
        Slot* slot = const_cast<Slot*>(find(handle));
        if (slot == nullptr) {
            return nullptr;
        }
        std::shared_ptr<T> object = std::move(slot->object);
        *slot = Slot{};
        return object;
    }

    void remove_if(const std::function<bool(const T&)>& predicate)
    {
        std::vector<std::shared_ptr<T>> removed;  // destroyed outside the lock
        std::lock_guard lock(mutex_);
        for (Slot& slot : slots_) {
            if (slot.object && predicate(*slot.object)) {
                removed.push_back(std::move(slot.object));
                slot = Slot{};
            }
        }
    }

    // Fork support: the table is locked across fork() so the child never inherits it
    // locked; in the child every handle is forgotten (never destroyed: its connection
    // and mappings belong to the parent), so the child's calls get CS_ERR_BAD_HANDLE.
    void lock_for_fork() { mutex_.lock(); }
    void unlock_after_fork() { mutex_.unlock(); }
    void forget_all_in_child()
    {
        static auto* abandoned = new std::vector<std::shared_ptr<T>>();
        for (Slot& slot : slots_) {
            if (slot.object) {
                abandoned->push_back(std::move(slot.object));
            }
            slot = Slot{};
        }
    }

private:
    struct Slot {
        uint32_t check = 0;
        std::shared_ptr<T> object;
    };

    const Slot* find(uint64_t handle) const
    {
        const auto index = static_cast<uint32_t>(handle);
        const auto check = static_cast<uint32_t>(handle >> 32);
        if (index >= slots_.size() || !slots_[index].object || slots_[index].check != check) {
            return nullptr;
        }
        return &slots_[index];
    }

    mutable std::mutex mutex_;
    std::vector<Slot> slots_;
};

}  // namespace rcpg::libcpg
