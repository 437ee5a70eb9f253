import BlockStore
import ContentAddressing
import Foundation
import Testing

func temporaryDirectory(_ prefix: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

@Suite("Block store, exporter, disk import, CAR transfer")
struct BlockStoreTests {
    func pattern(_ count: Int) -> [UInt8] { (0..<count).map { UInt8($0 % 251) } }

    @Test func putGetHasAndCorruption() throws {
        let store = try FileBlockStore(root: try temporaryDirectory("cod-store"))
        let block = Array("hello world\n".utf8)
        let cid = CID(v1: CID.raw, multihash: Multihash.sha256(block))
        #expect(!store.has(cid))
        try store.put(cid, block)
        #expect(store.has(cid))
        #expect(try store.get(cid) == block)
        // The same bytes under CIDv0/v1 of another codec share the file (keyed by multihash).
        #expect(store.has(CID(v1: CID.dagPB, multihash: cid.multihash)))
        // Bytes that do not match the CID are refused.
        #expect(throws: ContentError.self) { try store.put(cid, Array("other".utf8)) }
        // Corrupt the file on disk: detected, reported, moved aside, never served.
        let keyed = try FileManager.default.subpathsOfDirectory(atPath: store.root.appendingPathComponent("blocks").path)
            .first { !$0.contains("/.") && $0.contains("/") }!
        try Data("tampered".utf8).write(to: store.root.appendingPathComponent("blocks").appendingPathComponent(keyed))
        #expect(throws: ContentError.self) { try store.get(cid) }
        #expect(try store.get(cid) == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.root.appendingPathComponent("corrupt").path).count == 1)
    }

    @Test func diskImportMatchesInMemoryImportAndExportsBack() throws {
        let source = try temporaryDirectory("cod-src")
        try FileManager.default.createDirectory(at: source.appendingPathComponent("sub/deeper"), withIntermediateDirectories: true)
        try Data("top\n".utf8).write(to: source.appendingPathComponent("top.txt"))
        try Data("inner\n".utf8).write(to: source.appendingPathComponent("sub/inner.txt"))
        try Data("leaf\n".utf8).write(to: source.appendingPathComponent("sub/deeper/leaf.txt"))
        try Data("hidden".utf8).write(to: source.appendingPathComponent(".hidden"))
        // The reference vector for this tree (CIDv1) — hidden files are skipped as kubo does.
        let store = try FileBlockStore(root: try temporaryDirectory("cod-store"))
        var importer = DiskImporter(options: .cidV1, sink: store.put)
        let root = try importer.add(source)
        #expect(root.cid.description == "bafybeidcclyz24mrl4furbaf4ecb3ks52dbfer7r6dxqavd4wrqg7bp7lu")
        let exporter = Exporter(store: store)
        #expect(try exporter.list(root.cid).map(\.name) == ["sub", "top.txt"])
        let leaf = try exporter.resolve(root.cid, path: "sub/deeper/leaf.txt")
        var text: [UInt8] = []
        try exporter.read(leaf) { text += $0 }
        #expect(text == Array("leaf\n".utf8))
        let out = try temporaryDirectory("cod-out").appendingPathComponent("tree")
        try exporter.extract(root.cid, to: out)
        #expect(try String(contentsOf: out.appendingPathComponent("sub/deeper/leaf.txt"), encoding: .utf8) == "leaf\n")
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent(".hidden").path))
        #expect(throws: ContentError.self) { try exporter.resolve(root.cid, path: "sub/missing.txt") }
    }

    @Test func byteRangesSkipWhatIsNotAsked() throws {
        let store = try FileBlockStore(root: try temporaryDirectory("cod-store"))
        let input = pattern(1_000_000)
        let root = try FileImporter.importBytes(input, options: ImportOptions(chunkSize: 1000, maxLinks: 10), sink: store.put)
        let exporter = Exporter(store: store)
        for range: Range<UInt64> in [0..<1, 999..<1001, 123_456..<654_321, 999_999..<1_000_000, 0..<1_000_000, 500_000..<2_000_000] {
            var out: [UInt8] = []
            try exporter.read(root.cid, range: range) { out += $0 }
            let clamped = range.clamped(to: 0..<1_000_000)
            #expect(out == Array(input[Int(clamped.lowerBound)..<Int(clamped.upperBound)]), "\(range)")
        }
        #expect(try exporter.kind(root.cid) == .file(size: 1_000_000))
    }

    @Test func hamtListingAndLookup() throws {
        let store = try FileBlockStore(root: try temporaryDirectory("cod-store"))
        var entries: [DirectoryEntry] = []
        for index in 0..<600 {
            let node = try FileImporter.importBytes(Array("\(index)\n".utf8), options: .cidV1, sink: store.put)
            entries.append(DirectoryEntry(name: "file-\(index).txt", node: node))
        }
        let root = try DirectoryBuilder.build(entries, options: ImportOptions(cidVersion: 1, hamtThreshold: 1), sink: store.put)
        let exporter = Exporter(store: store)
        #expect(try exporter.kind(root.cid) == .hamtDirectory)
        #expect(Set(try exporter.list(root.cid).map(\.name)) == Set((0..<600).map { "file-\($0).txt" }))
        var out: [UInt8] = []
        try exporter.read(try exporter.resolve(root.cid, path: "file-457.txt")) { out += $0 }
        #expect(out == Array("457\n".utf8))
        #expect(throws: ContentError.self) { try exporter.resolve(root.cid, path: "file-600.txt") }
    }

    @Test func carExportIsDFSWithoutDuplicatesAndReimports() throws {
        let store = try FileBlockStore(root: try temporaryDirectory("cod-store"))
        // 1 MiB of zeros: four identical leaves, exported once.
        let zeros = try FileImporter.importBytes([UInt8](repeating: 0, count: 1 << 20), options: .kuboDefault, sink: store.put)
        var car: [UInt8] = []
        try CARTransfer.export(zeros.cid, from: store) { car += $0 }
        let archive = try CAR.read(car)
        #expect(archive.roots == [zeros.cid])
        #expect(archive.blocks.count == 2)
        #expect(archive.blocks.first?.cid == zeros.cid)
        let other = try FileBlockStore(root: try temporaryDirectory("cod-store"))
        let imported = try CARTransfer.importCAR(car, into: other)
        #expect(imported.roots == [zeros.cid])
        var again: [UInt8] = []
        try CARTransfer.export(zeros.cid, from: other) { again += $0 }
        #expect(again == car)
    }

    @Test func pinsSurviveGarbageCollection() throws {
        let store = try FileBlockStore(root: try temporaryDirectory("cod-store"))
        let kept = try FileImporter.importBytes(pattern(5000), options: ImportOptions(chunkSize: 1000), sink: store.put)
        let dropped = try FileImporter.importBytes(Array("temporary".utf8), options: .kuboDefault, sink: store.put)
        try store.pin(kept.cid)
        #expect(store.isPinned(kept.cid))
        let before = try store.stat()
        let freed = try store.garbageCollect()
        #expect(freed.blocks == 1)
        #expect(!store.has(dropped.cid))
        #expect(store.has(kept.cid))
        #expect(try store.stat().blocks == before.blocks - 1)
        try store.unpin(kept.cid)
        _ = try store.garbageCollect()
        #expect(try store.stat().blocks == 0)
        // Pinning something absent says so.
        #expect(throws: ContentError.self) { try store.pin(dropped.cid) }
    }

    @Test func pinsHaveHoldersAndReleasingAResultFreesOnlyWhatNobodyHolds() throws {
        let store = try FileBlockStore(root: try temporaryDirectory("cod-store"))
        // Two results sharing their first 1000-byte chunk; the user also pins the first.
        var otherBytes = pattern(3000)
        otherBytes[2999] ^= 0xFF
        let first = try FileImporter.importBytes(pattern(3000), options: ImportOptions(chunkSize: 1000), sink: store.put)
        let second = try FileImporter.importBytes(otherBytes, options: ImportOptions(chunkSize: 1000), sink: store.put)
        let loose = try FileImporter.importBytes(Array("not pinned by anyone".utf8), options: .kuboDefault, sink: store.put)
        try store.pin(first.cid, holder: PinHolder.result(of: "e-1"))
        try store.pin(first.cid)
        try store.pin(second.cid, holder: PinHolder.result(of: "e-2"))
        #expect(store.pinHolders(first.cid) == ["result:e-1", "user"])

        // The job of e-1 is collected: the user's pin keeps its DAG.
        try store.unpin(first.cid, holder: PinHolder.result(of: "e-1"))
        #expect(try store.release([first.cid]).blocks == 0)
        #expect(store.isPinned(first.cid))
        // A user cannot drop a result's pin by mistake, and is told who holds it.
        #expect(throws: ContentError.self) { try store.unpin(second.cid) }
        // e-2 is collected: its root and its last chunk go; the shared chunk and the unrelated
        // unpinned block stay.
        let before = try store.stat().blocks
        try store.unpin(second.cid, holder: PinHolder.result(of: "e-2"))
        #expect(!store.isPinned(second.cid))
        #expect(try store.release([second.cid]).blocks == 2)
        #expect(try store.stat().blocks == before - 2)
        #expect(store.has(loose.cid) && store.has(first.cid) && !store.has(second.cid))
        #expect(try store.pinned() == [first.cid])
        // A pin file from before holders existed belongs to the user, and converts on the next pin.
        let legacy = store.root.appendingPathComponent("pins").appendingPathComponent(first.cid.toV1.description)
        try FileManager.default.removeItem(at: legacy)
        try Data(first.cid.description.utf8).write(to: legacy)
        #expect(store.pinHolders(first.cid) == ["user"])
        #expect(try store.pinned() == [first.cid])
        try store.pin(first.cid, holder: PinHolder.result(of: "e-3"))
        #expect(store.pinHolders(first.cid) == ["result:e-3", "user"])
        try store.unpin(first.cid, holders: ["result:e-3", "user"])
        #expect(!store.isPinned(first.cid))
        #expect(PinHolder.isValid("result:e-1") && !PinHolder.isValid("result:../x") && !PinHolder.isValid("someone"))
    }

    @Test func garbageCollectionNeverTakesBlocksAddedForAPin() throws {
        let store = try FileBlockStore(root: try temporaryDirectory("cod-store"))
        let done = ManagedAtomicFlag()
        // One thread collects garbage in a loop while another adds DAGs and pins them.
        let collector = Thread {
            while !done.value { _ = try? store.garbageCollect() }
        }
        collector.start()
        var roots: [CID] = []
        for index in 0..<40 {
            let root = try store.guardingFromGC {
                let file = try FileImporter.importBytes(pattern(3000 + index), options: ImportOptions(chunkSize: 256), sink: store.put)
                try store.pinUnguarded(file.cid)
                return file.cid
            }
            roots.append(root)
        }
        done.value = true
        for root in roots {
            #expect(throws: Never.self) { try DAGWalker(store: store).walk(root) { _, _ in } }
        }
    }

    @Test func symlinksRoundTrip() throws {
        let source = try temporaryDirectory("cod-links")
        try Data("content\n".utf8).write(to: source.appendingPathComponent("foo"))
        try FileManager.default.createSymbolicLink(atPath: source.appendingPathComponent("bar").path, withDestinationPath: "foo")
        let store = try FileBlockStore(root: try temporaryDirectory("cod-store"))
        var importer = DiskImporter(options: .kuboDefault, sink: store.put)
        let root = try importer.add(source)
        // gateway-conformance symlink.car: CIDv0, foo = "content\n", bar -> foo.
        #expect(root.cid.description == "QmWvY6FaqFMS89YAQ9NAPjVP4WZKA1qbHbicc9HeSKQTgt")
        let out = try temporaryDirectory("cod-out").appendingPathComponent("t")
        try Exporter(store: store).extract(root.cid, to: out)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: out.appendingPathComponent("bar").path) == "foo")
    }
}

final class ManagedAtomicFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    var value: Bool {
        get { lock.withLock { flag } }
        set { lock.withLock { flag = newValue } }
    }
}
