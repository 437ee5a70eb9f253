import Archives
import Foundation
import SafeFS
import Testing

/// Builds tar archives entry by entry, including the kinds and numbers a hostile client sends.
struct TarCrafter {
    private(set) var bytes: [UInt8] = []

    enum Kind: UInt8 {
        case file = 48, hardLink = 49, symlink = 50, character = 51, block = 52, directory = 53, fifo = 54
    }

    mutating func add(_ name: String, _ kind: Kind = .file, contents: [UInt8] = [], link: String = "", size: [UInt8]? = nil) {
        var header = [UInt8](repeating: 0, count: 512)
        put(Array(name.utf8), at: 0, into: &header)
        put(Self.octal(0o644, width: 8), at: 100, into: &header)
        put(size ?? Self.octal(contents.count, width: 12), at: 124, into: &header)
        header[156] = kind.rawValue
        put(Array(link.utf8), at: 157, into: &header)
        put(Array("ustar".utf8) + [0], at: 257, into: &header)
        put(Array("00".utf8), at: 263, into: &header)
        for index in 148..<156 { header[index] = 0x20 }
        put(Self.octal(header.reduce(0) { $0 + Int($1) }, width: 7) + [0x20], at: 148, into: &header)
        bytes += header + contents + [UInt8](repeating: 0, count: (512 - contents.count % 512) % 512)
    }

    var archive: [UInt8] { bytes + [UInt8](repeating: 0, count: 1024) }

    static func octal(_ value: Int, width: Int) -> [UInt8] {
        let digits = String(value, radix: 8)
        return Array((String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits).utf8) + [0]
    }

    /// A 12-byte base-256 size field holding `value`.
    static func base256(_ value: UInt64, negative: Bool = false) -> [UInt8] {
        var field = [UInt8](repeating: negative ? 0xff : 0, count: 12)
        field[0] = negative ? 0xff : 0x80
        for index in 0..<8 { field[11 - index] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(index))) }
        return field
    }

    private func put(_ value: [UInt8], at offset: Int, into header: inout [UInt8]) {
        for (index, byte) in value.enumerated() where offset + index < header.count { header[offset + index] = byte }
    }
}

/// What an extraction left outside its folder: the test's sandbox holds the target folder and
/// a sibling that no entry may reach.
struct ExtractionSandbox {
    let base: URL
    let target: URL
    let outside: URL

    init() throws {
        base = FileManager.default.temporaryDirectory.appendingPathComponent("cod-hostile-\(UUID().uuidString.prefix(8))")
        target = base.appendingPathComponent("a/b/target")
        outside = base.appendingPathComponent("outside")
        try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
    }

    /// Every file anywhere under the sandbox but inside the target.
    func filesOutsideTarget() -> [String] {
        let all = FileManager.default.enumerator(atPath: base.path)?.allObjects as? [String] ?? []
        return all.filter { !$0.hasPrefix("a/b/target") && $0 != "a" && $0 != "a/b" && $0 != "outside" }
    }
}

@Suite("hostile tar archives")
struct HostileTarTests {
    @Test func aSymlinkChainThatOnlyEscapesPhysicallyWritesNothingOutside() throws {
        let box = try ExtractionSandbox()
        var tar = TarCrafter()
        // Checked as text, ll/ll/../../.. stays inside; on disk ll is ".", so it climbs out.
        tar.add("ll", .symlink, link: ".")
        tar.add("xx", .symlink, link: "ll/ll/../../../..")
        tar.add("xx/outside/pwned", contents: Array("owned".utf8))
        #expect(throws: Tar.Error.self) { try Tar.extract(tar.archive, into: box.target) }
        #expect(box.filesOutsideTarget().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: box.outside.appendingPathComponent("pwned").path))
    }

    @Test func aLinkAddedLaterCannotTurnAnEarlierOneOutward() throws {
        let box = try ExtractionSandbox()
        var tar = TarCrafter()
        // x/y/../.. is "." while x is a folder; once x is a link to ".", it is "..".
        tar.add("y", .directory)
        tar.add("a", .symlink, link: "x/y/../..")
        tar.add("x", .symlink, link: ".")
        #expect(throws: Tar.Error.self) { try Tar.extract(tar.archive, into: box.target) }
        #expect(!FileManager.default.fileExists(atPath: box.target.path), "a refused archive leaves nothing behind")
    }

    @Test func writesNeverPassThroughALink() throws {
        let box = try ExtractionSandbox()
        var tar = TarCrafter()
        tar.add("d", .symlink, link: "inner")
        tar.add("inner", .directory)
        tar.add("d/file", contents: [1])
        #expect(throws: Tar.Error.self) { try Tar.extract(tar.archive, into: box.target) }
        #expect(box.filesOutsideTarget().isEmpty)
    }

    @Test(arguments: [
        ("dup", TarCrafter.Kind.file), ("dup", TarCrafter.Kind.symlink),
    ])
    func refusesANameGivenTwice(name: String, second: TarCrafter.Kind) throws {
        let box = try ExtractionSandbox()
        var tar = TarCrafter()
        tar.add(name, contents: [1])
        tar.add(name, second, contents: second == .file ? [2] : [], link: second == .symlink ? "." : "")
        #expect(throws: Tar.Error.self) { try Tar.entries(tar.archive) }
        #expect(throws: Tar.Error.self) { try Tar.extract(tar.archive, into: box.target) }
    }

    @Test(arguments: [TarCrafter.Kind.hardLink, .character, .block, .fifo])
    func refusesHardLinksDevicesAndFIFOs(kind: TarCrafter.Kind) throws {
        let box = try ExtractionSandbox()
        var tar = TarCrafter()
        tar.add("special", kind, link: kind == .hardLink ? "/etc/passwd" : "")
        #expect(throws: Tar.Error.self) { try Tar.extract(tar.archive, into: box.target) }
        #expect(!FileManager.default.fileExists(atPath: box.target.appendingPathComponent("special").path))
    }

    @Test(arguments: ["/etc", "../outside", "../../../../../../../../tmp"])
    func refusesLinksThatPointOut(target: String) throws {
        let box = try ExtractionSandbox()
        var tar = TarCrafter()
        tar.add("link", .symlink, link: target)
        #expect(throws: Tar.Error.self) { try Tar.extract(tar.archive, into: box.target) }
        #expect(box.filesOutsideTarget().isEmpty)
    }

    @Test func keepsLinksThatStayInside() throws {
        let box = try ExtractionSandbox()
        var tar = TarCrafter()
        tar.add("data/real.txt", contents: Array("hello".utf8))
        tar.add("l", .symlink, link: "data/real.txt")
        tar.add("data/up", .symlink, link: "../l")
        tar.add("s", .symlink, link: "x")  // one-character names and dangling links are fine
        try Tar.extract(tar.archive, into: box.target)
        #expect(try String(contentsOf: box.target.appendingPathComponent("data/up"), encoding: .utf8) == "hello")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: box.target.appendingPathComponent("s").path) == "x")
    }

    @Test(arguments: [UInt64(Int64.max), UInt64.max, 1 << 62, 1 << 40])
    func hugeBase256SizesAreErrorsNotTraps(size: UInt64) throws {
        var tar = TarCrafter()
        tar.add("big", size: TarCrafter.base256(size))
        #expect(throws: Tar.Error.self) { try Tar.entries(tar.archive) }
        var negative = TarCrafter()
        negative.add("neg", size: TarCrafter.base256(1, negative: true))
        #expect(throws: Tar.Error.self) { try Tar.entries(negative.archive) }
    }

    @Test func setIDBitsAreNeverExtracted() throws {
        let box = try ExtractionSandbox()
        var tar = TarCrafter()
        tar.add("tool", contents: [0x7f])
        // Patch the mode to 4755 (set-user-ID) and fix the checksum.
        var bytes = tar.archive
        for (index, byte) in TarCrafter.octal(0o4755, width: 8).enumerated() { bytes[100 + index] = byte }
        for index in 148..<156 { bytes[index] = 0x20 }
        for (index, byte) in (TarCrafter.octal(bytes[0..<512].reduce(0) { $0 + Int($1) }, width: 7) + [0x20]).enumerated() {
            bytes[148 + index] = byte
        }
        try Tar.extract(bytes, into: box.target)
        let mode = try FileManager.default.attributesOfItem(atPath: box.target.appendingPathComponent("tool").path)[.posixPermissions] as? Int
        #expect(mode == 0o755)
    }

    @Test func specialFilesAreNeverArchived() throws {
        let box = try ExtractionSandbox()
        try FileManager.default.createDirectory(at: box.target, withIntermediateDirectories: true)
        #expect(mkfifo(box.target.appendingPathComponent("pipe").path, 0o644) == 0)
        // Reading the FIFO would block forever; archiving refuses it at once.
        #expect(throws: Tar.Error.self) { try Tar.archive(directory: box.target) }
    }

    @Test func confinedTreeRefusesNamesThatClimb() throws {
        #expect(throws: ConfinedTree.Error.self) { try ConfinedTree.components("a/../../b") }
        #expect(try ConfinedTree.components("./a//b/") == ["a", "b"])
        #expect(!ConfinedTree.isPlainName(".."))
        #expect(!ConfinedTree.isPlainName("a/b"))
    }
}

@Suite("gzip limits")
struct GzipLimitTests {
    @Test func aBombStopsAtTheLimit() throws {
        let bomb = try Gzip.compress([UInt8](repeating: 0, count: 64 << 20))
        #expect(bomb.count < 1 << 20)
        #expect(throws: Gzip.TooLarge.self) { _ = try Gzip.decompress(bomb, maxSize: 48 << 20) }
        #expect(throws: Gzip.TooLarge.self) { _ = try Gzip.decompress(bomb, maxSize: (64 << 20) - 1) }
        let exact = try Gzip.decompress(bomb, maxSize: 64 << 20)
        #expect(exact.count == 64 << 20 && exact.allSatisfy { $0 == 0 })
        let text = Array("hello, small world\n".utf8)
        #expect(try Gzip.decompress(try Gzip.compress(text), maxSize: text.count) == text)
    }
}
