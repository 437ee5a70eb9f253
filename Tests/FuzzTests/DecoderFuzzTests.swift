import Archives
import BlockStore
import ContentAddressing
import Foundation
import JobSpec
import Models
import Testing
import Wire

/// A seeded fuzz run of every decoder that reads outside input: the corpus in `Corpus/` (seeds
/// and every crashing input found so far) is replayed, then mutated with a fixed seed, with
/// integer edge values (0, -1, max, 2^63, 2^64-1) spliced in as varints, fixed-width integers,
/// octal and decimal text. A decoder must return or throw: a trap kills the test process, a
/// hang trips the time limit, and sizes are bounded by the decoders' own limits.
///
/// `COD_FUZZ_ITERATIONS` raises the number of mutations per decoder (default 3000) for a longer
/// run; `COD_FUZZ_SEED` changes the seed. A failure prints the decoder, seed and iteration.
@Suite("Decoder fuzzing", .serialized, .timeLimit(.minutes(10)))
struct DecoderFuzzTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Corpus")
    static let iterations = Int(ProcessInfo.processInfo.environment["COD_FUZZ_ITERATIONS"] ?? "") ?? 3000
    static let seed = UInt64(ProcessInfo.processInfo.environment["COD_FUZZ_SEED"] ?? "") ?? 0x00C0_D0F0_22

    static func seeds(_ name: String) -> [[UInt8]] {
        let folder = corpus.appendingPathComponent(name)
        let files = (try? FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()) ?? []
        return files.compactMap { FileManager.default.contents(atPath: folder.appendingPathComponent($0).path).map(Array.init) }
    }

    /// Replays the corpus and its mutations through `decode`; returns how many inputs ran.
    @discardableResult
    static func fuzz(_ name: String, extraSeeds: [[UInt8]] = [], iterations: Int = iterations, decode: ([UInt8]) throws -> Void) -> Int {
        let seeds = self.seeds(name) + extraSeeds
        #expect(!seeds.isEmpty, "no corpus for \(name)")
        var ran = 0
        for input in seeds {
            _ = try? decode(input)
            ran += 1
        }
        var random = SplitMix64(seed: seed ^ UInt64(truncatingIfNeeded: name.hashValueStable))
        for _ in 0..<iterations {
            let input = Mutator.mutate(seeds[Int(random.next() % UInt64(seeds.count))], random: &random)
            _ = try? decode(input)
            ran += 1
        }
        return ran
    }

    @Test func varints() {
        Self.fuzz("varint") { bytes in
            var offset = 0
            while offset < bytes.count { _ = try Varint.decode(bytes, at: &offset, multiformats: bytes.first.map { $0 & 1 == 0 } ?? true) }
        }
    }

    @Test func cidsAndMultibase() {
        Self.fuzz("cid-bytes") { _ = try CID(bytes: $0) }
        Self.fuzz("cid-text") { _ = try CID(String(decoding: $0, as: UTF8.self)) }
        Self.fuzz("multibase") { bytes in
            let text = String(decoding: bytes, as: UTF8.self)
            guard let first = text.first, let base = Multibase(rawValue: first) else { return }
            _ = try base.decode(text.dropFirst())
        }
    }

    @Test func dagPBAndUnixFS() {
        Self.fuzz("dag-pb") { bytes in
            let node = try PBNode.decode(bytes)
            if let data = node.data { _ = try UnixFSData.decode(data) }
        }
        Self.fuzz("unixfs") { _ = try UnixFSData.decode($0) }
    }

    @Test func carArchives() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("cod-fuzz-car-\(UUID().uuidString.prefix(8))")
        let store = try FileBlockStore(root: folder.appendingPathComponent("store"))
        let file = folder.appendingPathComponent("input.car")
        Self.fuzz("car") { bytes in
            _ = try CAR.read(bytes)
            try Data(bytes).write(to: file)
            _ = try CARStream.importFile(file, into: store)
        }
    }

    @Test func tarAndGzip() {
        Self.fuzz("tar") { bytes in
            let entries = try Tar.entries(bytes)
            // Extraction of whatever parsed stays inside its folder (the unit tests check where).
            if !entries.isEmpty {
                let target = FileManager.default.temporaryDirectory.appendingPathComponent("cod-fuzz-tar-\(UUID().uuidString.prefix(8))")
                defer { try? FileManager.default.removeItem(at: target) }
                try Tar.extract(bytes, into: target)
            }
        }
        Self.fuzz("gzip", iterations: Self.iterations / 4) { _ = try Gzip.decompress($0, maxSize: 16 << 20) }
    }

    @Test func jobSpecs() throws {
        let valid = try JSONEncoder().encode(PutJobRequest(job: Job(
            name: "j", type: "batch", count: 3,
            tasks: [JobTask(name: "main", engine: ProcessEngineSpec(command: "true").specConfig)])))
        let check = { (bytes: [UInt8]) throws in
            let text = String(decoding: bytes, as: UTF8.self)
            let job = try JobSpecParser.parse(text)
            _ = try JobSpecParser.prepare(job)
        }
        Self.fuzz("job-json", extraSeeds: [Array(valid)], decode: check)
        Self.fuzz("job-yaml", decode: check)
        Self.fuzz("manifest") { bytes in
            _ = try JSONDecoder().decode(DatasetManifest.self, from: Data(bytes)).problems()
        }
    }

    @Test func nodeMessages() throws {
        let encoder = JSONEncoder()
        let samples: [NodeMessage] = [
            .ack,
            .logChunk(.init(executionID: "e-1", jobID: "j-1", stream: 1, offset: 12, data: Data("line\n".utf8))),
            .cancelExecution(.init(executionID: "e-1", reason: "stopped")),
        ]
        let seeds = try samples.map { Array(try encoder.encode(Envelope(seq: 7, ack: 3, message: $0))) }
        Self.fuzz("node-message", extraSeeds: seeds) { _ = try JSONDecoder().decode(Envelope.self, from: Data($0)) }
    }

    @Test func exportOfMutatedDAGs() throws {
        // A small tree whose blocks are mutated one at a time and stored under their new CIDs,
        // then written out through the exporter with tight limits.
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("cod-fuzz-dag-\(UUID().uuidString.prefix(8))")
        let store = try FileBlockStore(root: folder.appendingPathComponent("store"))
        let leaf = try FileImporter.importBytes(Array("hello\n".utf8), options: .cidV1, sink: store.put)
        let big = try FileImporter.importBytes([UInt8](repeating: 1, count: 600_000), options: .cidV1, sink: store.put)
        let directory = try DirectoryBuilder.build(
            [DirectoryEntry(name: "a.txt", node: leaf), DirectoryEntry(name: "big", node: big)], options: .cidV1, sink: store.put)
        let seeds = [try store.require(directory.cid), try store.require(big.cid)]
        let exporter = Exporter(store: store)
        let limits = ExportLimits(maxDepth: 16, maxEntries: 100, maxBytes: 4 << 20)
        var count = 0
        Self.fuzz("dag-pb", extraSeeds: seeds, iterations: Self.iterations / 2) { bytes in
            let cid = CID(v1: CID.dagPB, multihash: Multihash.sha256(bytes))
            try store.put(cid, bytes)
            count += 1
            let target = folder.appendingPathComponent("out-\(count)")
            defer { try? FileManager.default.removeItem(at: target) }
            try exporter.extract(cid, to: target, limits: limits)
            _ = try CARSelection(store: store).select(root: cid, path: "", scope: .entity, bytes: 0..<100)
        }
    }
}

/// Byte-level mutations with integer edge values mixed in.
enum Mutator {
    static let edges: [UInt64] = [0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x7fff_ffff, 0xffff_ffff, 1 << 62, 1 << 63, .max - 1, .max]

    static func mutate(_ seed: [UInt8], random: inout SplitMix64) -> [UInt8] {
        var bytes = seed
        for _ in 0..<(1 + Int(random.next() % 4)) {
            let position = bytes.isEmpty ? 0 : Int(random.next() % UInt64(bytes.count + 1))
            let edge = edges[Int(random.next() % UInt64(edges.count))]
            switch random.next() % 9 {
            case 0 where !bytes.isEmpty:  // flip a bit
                let index = min(position, bytes.count - 1)
                bytes[index] ^= UInt8(1 << (random.next() % 8))
            case 1:  // a varint edge value
                bytes.insert(contentsOf: Varint.encode(edge), at: position)
            case 2:  // a little-endian 8-byte edge value over what is there
                let value = withUnsafeBytes(of: edge.littleEndian, Array.init)
                bytes.replaceSubrange(position..<min(position + 8, bytes.count), with: value)
            case 3:  // a big-endian one
                let value = withUnsafeBytes(of: edge.bigEndian, Array.init)
                bytes.replaceSubrange(position..<min(position + 8, bytes.count), with: value)
            case 4:  // decimal text, signed or not
                let text = random.next() % 2 == 0 ? String(edge) : String(Int64(bitPattern: edge))
                bytes.insert(contentsOf: Array(text.utf8), at: position)
            case 5:  // octal text (tar headers)
                bytes.replaceSubrange(position..<min(position + 12, bytes.count), with: Array(String(edge, radix: 8).utf8))
            case 6 where !bytes.isEmpty:  // delete a range
                let end = min(bytes.count, position + 1 + Int(random.next() % 64))
                bytes.removeSubrange(min(position, bytes.count - 1)..<end)
            case 7 where !bytes.isEmpty:  // duplicate a range
                let start = min(position, bytes.count - 1)
                let end = min(bytes.count, start + 1 + Int(random.next() % 256))
                bytes.insert(contentsOf: bytes[start..<end], at: start)
            default:  // random bytes
                bytes.insert(contentsOf: (0..<(1 + random.next() % 16)).map { _ in UInt8(truncatingIfNeeded: random.next()) }, at: position)
            }
        }
        return bytes
    }
}

/// A small, fast, seedable generator (Vigna's SplitMix64), so every run mutates the same way.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension String {
    /// A hash that is the same in every process (Swift's `hashValue` is seeded per run).
    var hashValueStable: UInt64 {
        utf8.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
    }
}
