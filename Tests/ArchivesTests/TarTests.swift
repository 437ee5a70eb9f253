import Archives
import Foundation
import Testing

@Suite("tar and gzip")
struct TarTests {
    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("cod-tar-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func roundTripsATree() throws {
        let source = try temporaryDirectory()
        try FileManager.default.createDirectory(at: source.appendingPathComponent("a/b"), withIntermediateDirectories: true)
        try Data("one".utf8).write(to: source.appendingPathComponent("a/one.txt"))
        try Data(repeating: 7, count: 100_000).write(to: source.appendingPathComponent("a/b/big.bin"))
        let long = String(repeating: "x", count: 150) + ".txt"
        try Data("long".utf8).write(to: source.appendingPathComponent(long))
        let archive = try Gzip.compress(try Tar.archive(directory: source))
        #expect(Gzip.isGzip(archive))
        let target = try temporaryDirectory()
        try Tar.extract(try Gzip.decompress(archive), into: target)
        #expect(try String(contentsOf: target.appendingPathComponent("a/one.txt"), encoding: .utf8) == "one")
        #expect(try Data(contentsOf: target.appendingPathComponent("a/b/big.bin")) == Data(repeating: 7, count: 100_000))
        #expect(try String(contentsOf: target.appendingPathComponent(long), encoding: .utf8) == "long")
        // Same tree, same bytes.
        #expect(try Tar.archive(directory: source) == Tar.archive(directory: target))
    }

    @Test func refusesEntriesThatEscape() throws {
        var archive: [UInt8] = []
        for name in ["../escape.txt"] {
            var header = [UInt8](repeating: 0, count: 512)
            for (i, b) in Array(name.utf8).enumerated() { header[i] = b }
            let octal = { (v: Int, w: Int) -> [UInt8] in
                let d = String(v, radix: 8)
                return Array((String(repeating: "0", count: w - 1 - d.count) + d).utf8) + [0]
            }
            for (i, b) in octal(0o644, 8).enumerated() { header[100 + i] = b }
            for (i, b) in octal(1, 12).enumerated() { header[124 + i] = b }
            header[156] = UInt8(ascii: "0")
            for i in 148..<156 { header[i] = 0x20 }
            let sum = header.reduce(0) { $0 + Int($1) }
            for (i, b) in octal(sum, 7).enumerated() { header[148 + i] = b }
            archive += header + [UInt8(ascii: "x")] + [UInt8](repeating: 0, count: 511)
        }
        archive += [UInt8](repeating: 0, count: 1024)
        let target = try temporaryDirectory()
        #expect(throws: Tar.Error.self) { try Tar.extract(archive, into: target) }
        #expect(!FileManager.default.fileExists(atPath: target.deletingLastPathComponent().appendingPathComponent("escape.txt").path))
    }

    @Test func detectsCorruption() throws {
        let source = try temporaryDirectory()
        try Data("content".utf8).write(to: source.appendingPathComponent("f.txt"))
        var archive = try Tar.archive(directory: source)
        archive[10] ^= 0xFF  // corrupt the header
        #expect(throws: Tar.Error.self) { try Tar.entries(archive) }
        try Data(repeating: 1, count: 2000).write(to: source.appendingPathComponent("g.bin"))
        let truncated = Array(try Tar.archive(directory: source).prefix(1200))
        #expect(throws: Tar.Error.self) { try Tar.entries(truncated) }
    }

    @Test func gzipRefusesBombs() throws {
        let big = [UInt8](repeating: 0, count: 10_000_000)
        let compressed = try Gzip.compress(big)
        #expect(compressed.count < 100_000)
        #expect(throws: (any Error).self) { try Gzip.decompress(compressed, maxSize: 1_000_000) }
        #expect(try Gzip.decompress(compressed).count == big.count)
    }
}
