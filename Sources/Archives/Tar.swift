import Foundation

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
            default:
                let data = try Data(contentsOf: URL(fileURLWithPath: full))
                appendHeader(&out, name: relative, size: data.count, mode: mode, type: UInt8(ascii: "0"))
                out.append(contentsOf: data)
                let padding = (512 - data.count % 512) % 512
                out.append(contentsOf: [UInt8](repeating: 0, count: padding))
            }
        }
        out.append(contentsOf: [UInt8](repeating: 0, count: 1024))
        return out
    }

    /// One entry of an archive.
    public struct Entry: Sendable {
        public enum Kind: Sendable { case file, directory, symlink(String) }
        public var path: String
        public var kind: Kind
        public var mode: Int
        public var contents: [UInt8]
    }

    /// Reads every entry. Names are cleaned: leading `/` and `./` are dropped; `..` is refused.
    public static func entries(_ bytes: [UInt8]) throws -> [Entry] {
        var entries: [Entry] = []
        var offset = 0
        var longName: String?
        var paxPath: String?
        while offset < bytes.count {
            guard offset + 512 <= bytes.count else {
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
            guard size >= 0, dataStart + size <= bytes.count else {
                throw Error("truncated tar: entry \(name) needs \(size) bytes past byte \(dataStart)")
            }
            let data = Array(bytes[dataStart..<dataStart + size])
            offset = dataStart + (size + 511) / 512 * 512
            switch type {
            case UInt8(ascii: "L"):  // GNU long name for the next entry
                longName = string(data[...])
                continue
            case UInt8(ascii: "x"):  // PAX extended header
                paxPath = parsePax(data)["path"] ?? paxPath
                continue
            case UInt8(ascii: "g"):  // PAX global header: nothing we need
                continue
            default: break
            }
            if let override = paxPath ?? longName { name = override }
            paxPath = nil
            longName = nil
            guard let clean = cleanName(name) else {
                throw Error("refusing archive entry \"\(name)\": it points outside the extraction folder")
            }
            if clean.isEmpty { continue }
            switch type {
            case UInt8(ascii: "0"), 0, UInt8(ascii: "7"):
                entries.append(Entry(path: clean, kind: .file, mode: mode, contents: data))
            case UInt8(ascii: "5"):
                entries.append(Entry(path: clean, kind: .directory, mode: mode, contents: []))
            case UInt8(ascii: "2"):
                entries.append(Entry(path: clean, kind: .symlink(string(header[157..<257])), mode: mode, contents: []))
            default:
                throw Error("unsupported tar entry type '\(Character(UnicodeScalar(type)))' for \(clean)")
            }
        }
        return entries
    }

    /// Extracts `bytes` below `directory`, refusing entries that would escape it (through `..`
    /// or through a symlink written earlier).
    public static func extract(_ bytes: [UInt8], into directory: URL) throws {
        let fm = FileManager.default
        try fm.createDirectory(at: directory, withIntermediateDirectories: true)
        let root = directory.standardizedFileURL
        for entry in try entries(bytes) {
            let destination = root.appendingPathComponent(entry.path)
            try ensureNoSymlinkParents(entry.path, root: root)
            switch entry.kind {
            case .directory:
                try fm.createDirectory(at: destination, withIntermediateDirectories: true)
            case .file:
                try fm.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
                try Data(entry.contents).write(to: destination)
                try? fm.setAttributes([.posixPermissions: entry.mode & 0o777], ofItemAtPath: destination.path)
            case .symlink(let target):
                // Only links that stay inside the tree are recreated.
                let resolved = target.hasPrefix("/")
                    ? nil : cleanName((entry.path as NSString).deletingLastPathComponent + "/" + target)
                guard resolved != nil else {
                    throw Error("refusing symlink \(entry.path) -> \(target): it points outside the extraction folder")
                }
                try fm.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
                try fm.createSymbolicLink(atPath: destination.path, withDestinationPath: target)
            }
        }
    }

    static func ensureNoSymlinkParents(_ path: String, root: URL) throws {
        var current = root
        let components = path.split(separator: "/")
        for component in components.dropLast() {
            current.appendPathComponent(String(component))
            if let type = try? FileManager.default.attributesOfItem(atPath: current.path)[.type] as? FileAttributeType,
                type == .typeSymbolicLink
            {
                throw Error("refusing archive entry \(path): its parent \(component) is a symlink")
            }
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
            // Base-256 encoding for large sizes.
            var value = 0
            for byte in field.dropFirst() { value = value << 8 | Int(byte) }
            return value
        }
        var value = 0
        var seen = false
        for byte in field {
            if byte == 0 || byte == 0x20 {
                if seen { break } else { continue }
            }
            guard byte >= 48, byte <= 55 else { throw Error("corrupt tar header: \(name) is not octal") }
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
            guard let space = data[index...].firstIndex(of: 0x20),
                let length = Int(String(decoding: data[index..<space], as: UTF8.self)), length > 0,
                index + length <= data.count
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
