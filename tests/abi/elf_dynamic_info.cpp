#include "elf_dynamic_info.h"

#include <elf.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <stdexcept>

namespace rcpg::abi_test {
namespace {

// .gnu.version entries: the low 15 bits index a version, the top bit marks name@VERSION
// (reachable only by explicit version) as opposed to the default name@@VERSION.
constexpr std::uint16_t kVersymIndexMask = 0x7fff;
constexpr std::uint16_t kVersymHiddenBit = 0x8000;

// Reads sections by their type rather than their name: the dynamic linker itself goes by
// types and program headers, and names can be stripped or renamed.
class ElfFile {
public:
    explicit ElfFile(const std::string& path) : path_(path)
    {
        std::ifstream stream(path, std::ios::binary);
        if (!stream) {
            fail("cannot open");
        }
        bytes_.assign(std::istreambuf_iterator<char>(stream), std::istreambuf_iterator<char>());

        const auto header = read<Elf64_Ehdr>(0);
        if (std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0) {
            fail("not an ELF file");
        }
        if (header.e_ident[EI_CLASS] != ELFCLASS64 || header.e_ident[EI_DATA] != ELFDATA2LSB) {
            fail("not 64-bit little-endian ELF");
        }
        if (header.e_type != ET_DYN) {
            fail("not a shared object (ET_DYN)");
        }
        if (header.e_shentsize != sizeof(Elf64_Shdr)) {
            fail("unexpected section header entry size");
        }
        for (std::size_t i = 0; i < header.e_shnum; ++i) {
            sections_.push_back(read<Elf64_Shdr>(header.e_shoff + i * sizeof(Elf64_Shdr)));
        }
    }

    [[noreturn]] void fail(const std::string& problem) const
    {
        throw std::runtime_error(path_ + ": " + problem);
    }

    template <class T> T read(std::uint64_t offset) const
    {
        if (offset > bytes_.size() || bytes_.size() - offset < sizeof(T)) {
            fail("truncated: " + std::to_string(sizeof(T)) + " bytes at offset " +
                 std::to_string(offset) + " are beyond the end of the file");
        }
        T value;
        std::memcpy(&value, bytes_.data() + offset, sizeof(T));
        return value;
    }

    // The only section of a type, or nothing; two of a kind would make the answer ambiguous.
    std::optional<Elf64_Shdr> section_of_type(std::uint32_t type) const
    {
        std::optional<Elf64_Shdr> found;
        for (const auto& section : sections_) {
            if (section.sh_type == type) {
                if (found) {
                    fail("more than one section of type " + std::to_string(type));
                }
                found = section;
            }
        }
        return found;
    }

    const Elf64_Shdr& linked_section(const Elf64_Shdr& section) const
    {
        if (section.sh_link >= sections_.size()) {
            fail("sh_link " + std::to_string(section.sh_link) + " names no section");
        }
        return sections_[section.sh_link];
    }

    std::string string_at(const Elf64_Shdr& string_table, std::uint64_t offset) const
    {
        if (string_table.sh_type != SHT_STRTAB || offset >= string_table.sh_size ||
            string_table.sh_offset + string_table.sh_size > bytes_.size()) {
            fail("string offset " + std::to_string(offset) + " outside its string table");
        }
        const char* begin = reinterpret_cast<const char*>(bytes_.data()) + string_table.sh_offset;
        const std::size_t limit = string_table.sh_size - offset;
        const std::size_t length = strnlen(begin + offset, limit);
        if (length == limit) {
            fail("unterminated string at offset " + std::to_string(offset));
        }
        return std::string(begin + offset, length);
    }

private:
    std::string path_;
    std::vector<unsigned char> bytes_;
    std::vector<Elf64_Shdr> sections_;
};

void read_dynamic_section(const ElfFile& elf, ElfDynamicInfo& info)
{
    const auto dynamic = elf.section_of_type(SHT_DYNAMIC);
    if (!dynamic) {
        elf.fail("no dynamic section");
    }
    const Elf64_Shdr& strings = elf.linked_section(*dynamic);
    for (std::uint64_t offset = 0; offset + sizeof(Elf64_Dyn) <= dynamic->sh_size;
         offset += sizeof(Elf64_Dyn)) {
        const auto entry = elf.read<Elf64_Dyn>(dynamic->sh_offset + offset);
        if (entry.d_tag == DT_NULL) {
            break;
        }
        if (entry.d_tag == DT_SONAME) {
            info.soname = elf.string_at(strings, entry.d_un.d_val);
        } else if (entry.d_tag == DT_NEEDED) {
            info.needed.push_back(elf.string_at(strings, entry.d_un.d_val));
        }
    }
}

void read_version_definitions(const ElfFile& elf, ElfDynamicInfo& info)
{
    const auto verdef = elf.section_of_type(SHT_GNU_verdef);
    if (!verdef) {
        return;
    }
    const Elf64_Shdr& strings = elf.linked_section(*verdef);
    std::uint64_t offset = verdef->sh_offset;
    // sh_info holds the number of entries; vd_next chains them.
    for (std::uint32_t entry = 0; entry < verdef->sh_info; ++entry) {
        const auto definition = elf.read<Elf64_Verdef>(offset);
        if (definition.vd_version != VER_DEF_CURRENT || definition.vd_cnt == 0) {
            elf.fail("malformed version definition " + std::to_string(entry));
        }
        // The first auxiliary entry names the version; later ones name its parents.
        const auto name = elf.read<Elf64_Verdaux>(offset + definition.vd_aux);
        info.version_definitions.push_back(
            {definition.vd_ndx, definition.vd_flags, elf.string_at(strings, name.vda_name)});
        if (definition.vd_next == 0) {
            break;
        }
        offset += definition.vd_next;
    }
}

void read_exported_symbols(const ElfFile& elf, ElfDynamicInfo& info)
{
    const auto dynsym = elf.section_of_type(SHT_DYNSYM);
    if (!dynsym) {
        elf.fail("no dynamic symbol table");
    }
    if (dynsym->sh_entsize != sizeof(Elf64_Sym)) {
        elf.fail("unexpected dynamic symbol entry size");
    }
    const Elf64_Shdr& strings = elf.linked_section(*dynsym);
    const std::uint64_t symbol_count = dynsym->sh_size / sizeof(Elf64_Sym);

    const auto versym = elf.section_of_type(SHT_GNU_versym);
    if (versym && versym->sh_size / sizeof(Elf64_Half) != symbol_count) {
        elf.fail(".gnu.version does not have one entry per dynamic symbol");
    }
    std::map<std::uint16_t, std::string> version_names;
    for (const auto& definition : info.version_definitions) {
        version_names[definition.index] = definition.name;
    }

    // Entry 0 is the reserved null symbol.
    for (std::uint64_t index = 1; index < symbol_count; ++index) {
        const auto symbol = elf.read<Elf64_Sym>(dynsym->sh_offset + index * sizeof(Elf64_Sym));
        const unsigned binding = ELF64_ST_BIND(symbol.st_info);
        const unsigned visibility = ELF64_ST_VISIBILITY(symbol.st_other);
        const bool binds_outside = binding == STB_GLOBAL || binding == STB_WEAK ||
                                   binding == STB_GNU_UNIQUE;
        const bool visible = visibility == STV_DEFAULT || visibility == STV_PROTECTED;
        if (symbol.st_shndx == SHN_UNDEF || !binds_outside || !visible) {
            continue;
        }

        ExportedSymbol exported;
        exported.name = elf.string_at(strings, symbol.st_name);
        exported.type = ELF64_ST_TYPE(symbol.st_info);
        exported.binding = binding;
        exported.is_absolute = symbol.st_shndx == SHN_ABS;
        exported.version = kBaseVersion;
        if (versym) {
            const auto entry = elf.read<Elf64_Half>(versym->sh_offset + index * sizeof(Elf64_Half));
            const std::uint16_t version_index = entry & kVersymIndexMask;
            exported.is_default_version = (entry & kVersymHiddenBit) == 0;
            if (version_index == VER_NDX_LOCAL) {
                continue; // the version script made it local after all
            }
            if (version_index != VER_NDX_GLOBAL) {
                const auto name = version_names.find(version_index);
                if (name == version_names.end()) {
                    elf.fail("symbol " + exported.name + " has version index " +
                             std::to_string(version_index) + " with no version definition");
                }
                exported.version = name->second;
            }
        }
        info.exported_symbols.push_back(std::move(exported));
    }
}

} // namespace

ElfDynamicInfo read_elf_dynamic_info(const std::string& path)
{
    const ElfFile elf(path);
    ElfDynamicInfo info;
    read_dynamic_section(elf, info);
    read_version_definitions(elf, info);
    read_exported_symbols(elf, info);
    return info;
}

} // namespace rcpg::abi_test
