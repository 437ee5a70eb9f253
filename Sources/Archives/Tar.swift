import Foundation
import SafeFS

/// A POSIX (ustar) tar writer and a defensive reader, enough for result bundles and for the
/// gzip tarballs Bacalhau clients put in `inline` inputs.
public enum Tar {
    /// An error reading or writing an archive, with what was wrong.
    public struct Error: Swift.Error, CustomStringConvertible, Sendable {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    /// Archives the contents of `directory` (not the directory itself), sorted by path, so the
    /// same tree always gives the same bytes.
    public static func archive(directory: URL) throws -> [UInt8] {
        var out: [UInt8] = []
        let fm = FileManager.default
        let base = directory.standardizedFileURL.path
        guard let enumerator = fm.enumerator(atPath: base) else { throw Error("cannot read \(base)") }
        var paths: [String] = []
        while let relative = enumerator.nextObject() as? String { paths.append(relative) }
        for relative in paths.sorted() {
            let full = base + "/" + relative
            let attributes = try fm.attributesOfItem(atPath: full)
            let type = attributes[.type] as? FileAttributeType
            let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue ?? 0o644
            switch type {
            case .typeDirectory?:
                appendHeader(&out, name: relative + "/", size: 0, mode: mode, type: UInt8(ascii: "5"))
            case .typeSymbolicLink?:
                let destination = try fm.destinationOfSymbolicLink(atPath: full)
                appendHeader(&out, name: relative, size: 0, mode: 0o777, type: UInt8(ascii: "2"), link: destination)
            case .typeRegular?:
                let data = try Data(contentsOf: URL(fileURLWithPath: full))
                appendHeader(&out, name: relative, size: data.count, mode: mode, type: UInt8(ascii: "0"))
                out.append(contentsOf: data)
                let padding = (512 - data.count % 512) % 512
                out.append(contentsOf: [UInt8](repeating: 0, count: padding))
            default:
                // Reading a FIFO would block, a device would read the host: never archived.
                throw Error("refusing to archive \(relative): it is a \(type?.rawValue ?? "special file"), not a file, folder or symlink")
            }
        }
        out.append(contentsOf: [UInt8](repeating: 0, count: 1024))
        return out
    }

    /// One entry of an archive.
    public struct Entry: Sendable {
        public enum Kind: Sendable {
            case file, directory, symlink(String)
            var isFile: Bool { if case .file = self { return true } else { return false } }
            var isDirectory: Bool { if case .directory = self { return true } else { return false } }
        }
        public var path: String
        public var kind: Kind
        public var mode: Int
        public var contents: [UInt8]
    }

    /// Reads every entry. Names are cleaned: leading `/` and `./` are dropped; `..` is refused,
    /// and so are hard links, devices, FIFOs and a name given twice. Every number in a header
    /// is bounds-checked against the archive before it is used.
    public static func entries(_ bytes: [UInt8]) throws -> [Entry] {
        var entries: [Entry] = []
        var seen: [String: Bool] = [:]  // each name read so far: whether it was a folder
        var offset = 0
        var longName: String?
        var paxPath: String?
        var paxLink: String?
        while offset < bytes.count {
            guard bytes.count - offset >= 512 else {
                throw Error("truncated tar: \(bytes.count - offset) stray bytes at byte \(offset), where a header should start")
            }
            let header = Array(bytes[offset..<offset + 512])
            if header.allSatisfy({ $0 == 0 }) { break }
            guard verifyChecksum(header) else { throw Error("corrupt tar header at byte \(offset) (bad checksum)") }
            let size = try parseOctal(header[124..<136], field: "size")
            let mode = (try? parseOctal(header[100..<108], field: "mode")) ?? 0o644
            let type = header[156]
            var name = string(header[0..<100])
            let prefix = string(header[345..<500])
            if header[257..<262].elementsEqual("ustar".utf8), !prefix.isEmpty { name = prefix + "/" + name }
            let dataStart = offset + 512
            guard size >= 0, size <= bytes.count - dataStart else {
                throw Error("truncated tar: entry \(name) claims \(size) bytes but \(bytes.count - dataStart) remain")
            }
            let data = Array(bytes[dataStart..<dataStart + size])
            offset = dataStart + (size + 511) / 512 * 512
            switch type {
            case UInt8(ascii: "L"):  // GNU long name for the next entry
                longName = string(data[...])
                continue
            case UInt8(ascii: "K"):  // GNU long link target for the next entry
                paxLink = string(data[...])
                continue
            case UInt8(ascii: "x"):  // PAX extended header
                let records = parsePax(data)
                paxPath = records["path"] ?? paxPath
                paxLink = records["linkpath"] ?? paxLink
                continue
            case UInt8(ascii: "g"):  // PAX global header: nothing we need
                continue
            default: break
            }
            if let override = paxPath ?? longName { name = override }
            let linkTarget = paxLink ?? string(header[157..<257])
            paxPath = nil
            longName = nil
            paxLink = nil
            guard let clean = cleanName(name) else {
                throw Error("refusing archive entry \"\(name)\": it points outside the extraction folder")
            }
            if clean.isEmpty { continue }
            let kind: Entry.Kind
            switch type {
            case UInt8(ascii: "0"), 0, UInt8(ascii: "7"): kind = .file
            case UInt8(ascii: "5"): kind = .directory
            case UInt8(ascii: "2"): kind = .symlink(linkTarget)
            case UInt8(ascii: "1"): throw Error("refusing hard link \(clean) -> \(linkTarget): archives may hold files, folders and symlinks only")
            case UInt8(ascii: "3"), UInt8(ascii: "4"): throw Error("refusing device node \(clean): archives may hold files, folders and symlinks only")
            case UInt8(ascii: "6"): throw Error("refusing FIFO \(clean): archives may hold files, folders and symlinks only")
            default: throw Error("unsupported tar entry type '\(Character(UnicodeScalar(type)))' for \(clean)")
            }
            // A folder may be listed again (tools do); any other repeat could swap what a
            // name is between a check and a write, so it is refused.
            if let wasDirectory = seen[clean] {
                if wasDirectory, kind.isDirectory { continue }
                throw Error("refusing archive entry \(clean): the name is given twice")
            }
            seen[clean] = kind.isDirectory
            entries.append(Entry(path: clean, kind: kind, mode: mode, contents: kind.isFile ? data : []))
        }
        return entries
    }

    /// True when `bytes` start with a tar header (ustar magic, or a valid header checksum).
    public static func looksLikeTar(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 512 else { return false }
        let header = Array(bytes[0..<512])
        return header[257..<262].elementsEqual("ustar".utf8) || verifyChecksum(header)
    }

    /// Extracts `bytes` below `directory`, creating every entry without following links
    /// (see `ConfinedTree`); symlinks must resolve inside the folder once all is written. On
    /// a refusal nothing of the archive is left behind.
    public static func extract(_ bytes: [UInt8], into directory: URL) throws {
        let parsed = try entries(bytes)
        let existed = FileManager.default.fileExists(atPath: directory.path)
        do {
            let tree = try ConfinedTree(creating: directory)
            for entry in parsed {
                let path = try ConfinedTree.components(entry.path)
                switch entry.kind {
                case .directory:
                    try tree.makeDirectory(path, mode: mode_t(entry.mode & 0o777 | 0o700))
                case .file:
                    let handle = try tree.createFile(path, mode: mode_t(entry.mode & 0o777))
                    try handle.write(contentsOf: entry.contents)
                case .symlink(let target):
                    try tree.makeSymlink(path, target: target)
                }
            }
            try tree.finish()
        } catch let error as ConfinedTree.Error {
            if !existed { try? FileManager.default.removeItem(at: directory) }
            throw Error(error.description)
        }
    }

    /// Cleans an entry name; nil when it climbs out with `..`.
    static func cleanName(_ name: String) -> String? {
        var parts: [Substring] = []
        for part in name.split(separator: "/") {
            if part == "." || part.isEmpty { continue }
            if part == ".." {
                guard !parts.isEmpty else { return nil }
                parts.removeLast()
                continue
            }
            parts.append(part)
        }
        return parts.joined(separator: "/")
    }

    static func appendHeader(_ out: inout [UInt8], name: String, size: Int, mode: Int, type: UInt8, link: String = "") {
        var nameBytes = Array(name.utf8)
        if nameBytes.count > 100 {
            // GNU long-name entry carries the full name.
            appendHeader(&out, name: "././@LongLink", size: nameBytes.count + 1, mode: 0, type: UInt8(ascii: "L"))
            out.append(contentsOf: nameBytes + [0])
            out.append(contentsOf: [UInt8](repeating: 0, count: (512 - (nameBytes.count + 1) % 512) % 512))
            nameBytes = Array(nameBytes.prefix(100))
        }
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ bytes: [UInt8], at offset: Int, max: Int) {
            for (index, byte) in bytes.prefix(max).enumerated() { header[offset + index] = byte }
        }
        func octal(_ value: Int, width: Int) -> [UInt8] {
            let digits = String(value, radix: 8)
            return Array((String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits).utf8) + [0]
        }
        put(nameBytes, at: 0, max: 100)
        put(octal(mode & 0o7777, width: 8), at: 100, max: 8)
        put(octal(0, width: 8), at: 108, max: 8)
        put(octal(0, width: 8), at: 116, max: 8)
        put(octal(size, width: 12), at: 124, max: 12)
        put(octal(0, width: 12), at: 136, max: 12)
        header[156] = type
        put(Array(link.utf8), at: 157, max: 100)
        put(Array("ustar".utf8) + [0], at: 257, max: 6)
        put(Array("00".utf8), at: 263, max: 2)
        for index in 148..<156 { header[index] = 0x20 }
        let checksum = header.reduce(0) { $0 + Int($1) }
        put(octal(checksum, width: 7) + [0x20], at: 148, max: 8)
        out.append(contentsOf: header)
    }

    static func verifyChecksum(_ header: [UInt8]) -> Bool {
        guard let stored = try? parseOctal(header[148..<156], field: "checksum") else { return false }
        var sum = 0
        for (index, byte) in header.enumerated() { sum += (148..<156).contains(index) ? 0x20 : Int(byte) }
        return sum == stored
    }

    static func parseOctal(_ field: ArraySlice<UInt8>, field name: String) throws -> Int {
        if let first = field.first, first & 0x80 != 0 {
            // Base-256 encoding for large sizes: a negative number (0xff lead) or one past
            // Int.max is refused.
            guard first == 0x80 else { throw Error("corrupt tar header: \(name) is a negative base-256 number") }
            var value = 0
            for byte in field.dropFirst() {
                guard value <= Int.max >> 8 else { throw Error("corrupt tar header: \(name) does not fit in 63 bits") }
                value = value << 8 | Int(byte)
            }
            return value
        }
        var value = 0
        var seen = false
        for byte in field {
            if byte == 0 || byte == 0x20 {
                if seen { break } else { continue }
            }
            guard byte >= 48, byte <= 55 else { throw Error("corrupt tar header: \(name) is not octal") }
            guard value <= (Int.max - 7) / 8 else { throw Error("corrupt tar header: \(name) is too large") }
            value = value * 8 + Int(byte - 48)
            seen = true
        }
        return value
    }

    static func string(_ bytes: ArraySlice<UInt8>) -> String {
        let end = bytes.firstIndex(of: 0) ?? bytes.endIndex
        return String(decoding: bytes[bytes.startIndex..<end], as: UTF8.self)
    }

    static func parsePax(_ data: [UInt8]) -> [String: String] {
        var result: [String: String] = [:]
        var index = 0
        while index < data.count {
            // "<length> <key>=<value>\n", the length counting the whole record.
            guard let space = data[index...].firstIndex(of: 0x20),
                let length = Int(String(decoding: data[index..<space], as: UTF8.self)),
                length > space - index + 1, length <= data.count - index
            else { break }
            let record = String(decoding: data[(space + 1)..<(index + length - 1)], as: UTF8.self)
            if let equals = record.firstIndex(of: "=") {
                result[String(record[..<equals])] = String(record[record.index(after: equals)...])
            }
            index += length
        }
        return result
    }
}
