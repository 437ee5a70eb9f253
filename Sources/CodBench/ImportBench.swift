import BlockStore
import ContentAddressing
import Crypto
import Foundation
import Models

/// `cod bench import`: import throughput next to plain SHA-256 over the same bytes
/// (the floor), for one large file and for many small files, and the importer's peak memory.
struct ImportBench {
    let size: Int
    let smallFiles: Int

    func run() throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("cod-import-bench-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        print("cod bench import: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory >> 30) GiB\n")

        // The large file, written in 1 MiB pieces of pseudo-random bytes (never held whole).
        let big = work.appendingPathComponent("big.bin")
        var rng = SystemRandomNumberGenerator()
        _ = FileManager.default.createFile(atPath: big.path, contents: nil)
        let writer = try FileHandle(forWritingTo: big)
        var piece = [UInt8](repeating: 0, count: 1 << 20)
        var written = 0
        while written < size {
            for index in stride(from: 0, to: piece.count, by: 8) {
                let word = rng.next()
                for byte in 0..<8 where index + byte < piece.count { piece[index + byte] = UInt8(truncatingIfNeeded: word >> (8 * UInt64(byte))) }
            }
            let count = min(piece.count, size - written)
            try writer.write(contentsOf: piece[0..<count])
            written += count
        }
        try writer.close()
        let megabytes = Double(size) / 1_000_000
        print("Large file: \(ResourceParsing.formatBytes(UInt64(size)))")
        let baseRSS = Self.peakRSS()
        let floor = try time { try Self.sha256(files: [big]) }
        print(String(format: "  SHA-256 of the bytes (floor):       %7.1f MB/s", megabytes / floor))
        let onlyHash = try time { try Self.importFiles(big, store: nil) }
        print(String(format: "  import, CIDs only (kubo --only-hash): %6.1f MB/s  (%.2fx the floor)", megabytes / onlyHash, onlyHash / floor))
        let store = try FileBlockStore(root: work.appendingPathComponent("store"))
        let stored = try time { try Self.importFiles(big, store: store) }
        print(String(format: "  import into the block store:         %6.1f MB/s  (%.2fx the floor)", megabytes / stored, stored / floor))
        print(String(format: "  peak memory growth during import:    %6.1f MiB", Double(Self.peakRSS() - baseRSS) / 1024))
        try? FileManager.default.removeItem(at: big)
        try? FileManager.default.removeItem(at: work.appendingPathComponent("store"))

        // Many small files.
        let folder = work.appendingPathComponent("small")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var small: [URL] = []
        var total = 0
        for index in 0..<smallFiles {
            let url = folder.appendingPathComponent(String(format: "file-%06d.txt", index))
            let bytes = (0..<(100 + index % 4000)).map { _ in UInt8.random(in: 32...126, using: &rng) }
            try Data(bytes).write(to: url)
            small.append(url)
            total += bytes.count
        }
        let smallMB = Double(total) / 1_000_000
        print("\n\(smallFiles) small files: \(ResourceParsing.formatBytes(UInt64(total))) in total")
        let smallFloor = try time { try Self.sha256(files: small) }
        print(String(format: "  read + SHA-256 of each file (floor): %7.1f files/s, %6.1f MB/s", Double(smallFiles) / smallFloor, smallMB / smallFloor))
        let smallStore = try FileBlockStore(root: work.appendingPathComponent("store2"))
        let smallImport = try time { try Self.importFiles(folder, store: smallStore) }
        print(String(format: "  import the folder into the store:    %7.1f files/s, %6.1f MB/s  (%.2fx the floor)",
            Double(smallFiles) / smallImport, smallMB / smallImport, smallImport / smallFloor))
    }

    func time(_ body: () throws -> Void) throws -> Double {
        let start = ContinuousClock.now
        try body()
        let elapsed = ContinuousClock.now - start
        return elapsed.inSeconds
    }

    static func sha256(files: [URL]) throws {
        for file in files {
            let handle = try FileHandle(forReadingFrom: file)
            var hasher = SHA256()
            while let data = try handle.read(upToCount: 1 << 20), !data.isEmpty { hasher.update(data: data) }
            _ = hasher.finalize()
            try handle.close()
        }
    }

    static func importFiles(_ url: URL, store: FileBlockStore?) throws {
        var importer = DiskImporter(options: .kuboDefault, includeHidden: true) { cid, block in try store?.put(cid, block) }
        _ = try importer.add(url)
    }

    /// Peak resident set size of this process, in KiB.
    static func peakRSS() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss
    }
}
