import BlockStore
import ContentAddressing
import Foundation
import Testing

@Suite("Merging partition results into one CID")
struct ResultMergerTests {
    /// Writes `files` (relative path -> contents) into a folder and adds it to the store.
    func add(_ files: [String: String], to store: FileBlockStore) throws -> CID {
        let folder = try temporaryDirectory("cod-partition")
        for (path, text) in files {
            let url = folder.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url)
        }
        var importer = DiskImporter(options: .cidV1, sink: store.put)
        return try importer.add(folder).cid
    }

    func text(_ root: CID, _ path: String, in store: FileBlockStore) throws -> String {
        let exporter = Exporter(store: store)
        var bytes: [UInt8] = []
        try exporter.read(try exporter.resolve(root, path: path)) { bytes += $0 }
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func streamsConcatenateFoldersMergeAndConflictsKeepEveryVersion() throws {
        let store = try FileBlockStore(root: try temporaryDirectory("cod-merge"))
        let big = String(repeating: "0123456789", count: 60_000)  // several blocks
        let zero = try add(["stdout": "first\n", "stderr": "", "exitCode": "0",
                            "outputs/same.txt": "equal", "outputs/clash.txt": "from 0", "outputs/sub/a": "a0"], to: store)
        let one = try add(["stdout": big, "stderr": "warn 1\n", "exitCode": "2",
                           "outputs/same.txt": "equal", "outputs/clash.txt": "from 1", "outputs/sub/b": "b1"], to: store)
        let two = try add(["stdout": "last\n", "stderr": "warn 2\n", "exitCode": "3", "outputs/clash.txt": "from 2"], to: store)
        // Given out of order: partition order decides.
        let merged = try ResultMerger(store: store).merge([(2, two), (0, zero), (1, one)])
        #expect(try text(merged, "stdout", in: store) == "first\n" + big + "last\n")
        #expect(try text(merged, "stderr", in: store) == "warn 1\nwarn 2\n")
        #expect(try text(merged, "exitCode", in: store) == "2", "the first non-zero exit code")
        #expect(try text(merged, "outputs/same.txt", in: store) == "equal")
        #expect(try text(merged, "outputs/clash.txt", in: store) == "from 0")
        #expect(try text(merged, "outputs/clash.txt.partition-1", in: store) == "from 1")
        #expect(try text(merged, "outputs/clash.txt.partition-2", in: store) == "from 2")
        #expect(try text(merged, "outputs/sub/a", in: store) == "a0" && text(merged, "outputs/sub/b", in: store) == "b1")
        let names = try Exporter(store: store).list(try Exporter(store: store).resolve(merged, path: "outputs")).map(\.name).sorted()
        #expect(names == ["clash.txt", "clash.txt.partition-1", "clash.txt.partition-2", "same.txt", "sub"])
        // Deterministic: the same partitions merge to the same CID.
        #expect(try ResultMerger(store: store).merge([(0, zero), (1, one), (2, two)]) == merged)
        // The merged DAG is complete and exports like any other.
        let out = try temporaryDirectory("cod-merged").appendingPathComponent("r")
        try Exporter(store: store).extract(merged, to: out)
        #expect(try String(contentsOf: out.appendingPathComponent("stdout"), encoding: .utf8).count == 11 + big.count)
    }
}
