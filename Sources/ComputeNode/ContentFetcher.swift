import APIClient
import AsyncHTTPClient
import BlockStore
import ContentAddressing
import Foundation
import Models
import NIOCore
import NIOFoundationCompat

/// Makes `ipfs` inputs available to executions: from this node's own store when it holds the
/// whole DAG, else fetched as a CAR from a peer that announced holding it, else from the
/// orchestrator's gateway; every block verified against its CID before it is stored or used.
final class ContentFetcher: Sendable {
    let store: FileBlockStore
    let source: String
    /// Which certificate the orchestrator (`source`) may show over https.
    let sourceTLS: ClientTLS?
    /// External trustless gateways, tried last.
    let gateways: [String]
    let http: HTTPClient
    /// Verified plain copies of dataset files this node laid out before, by CID: a later
    /// partition reading the same file into a sandbox that mounts its inputs read-only gets a
    /// hard link instead of every block read, hashed and written again. Nil: no cache.
    let plainFiles: URL?

    init(
        store: FileBlockStore, source: String, sourceTLS: ClientTLS? = nil, gateways: [String] = [], http: HTTPClient, plainFiles: URL? = nil
    ) {
        self.store = store
        self.source = Self.base(source)
        self.sourceTLS = sourceTLS
        self.gateways = gateways.map(Self.base)
        self.http = http
        self.plainFiles = plainFiles
        if let plainFiles {
            // Started afresh: what was cached may have been collected since.
            try? FileManager.default.removeItem(at: plainFiles)
            try? FileManager.default.createDirectory(at: plainFiles, withIntermediateDirectories: true)
        }
    }

    static func base(_ url: String) -> String {
        var base = url.hasPrefix("http") ? url : "http://" + url
        while base.hasSuffix("/") { base.removeLast() }
        return base
    }

    /// Writes the input's tree (a file or a folder) at its target inside `root`, and says how
    /// many bytes came from this node's store and how many over the network. A partition of a
    /// dataset (`Params.Slice`) gets only its files, at their paths under the target; with
    /// `Locality: local` (the default) a file this node does not hold fails the execution
    /// (retryable, so it runs on a node that holds it) instead of being fetched.
    /// `readOnly`: the engine mounts the input read-only, so a dataset file may be a hard link
    /// to the node's verified plain copy.
    func materialize(_ input: InputSource, root: URL, sources: [String: [String]] = [:], readOnly: Bool = false) async throws -> InputStats {
        guard let text = input.source.params["CID"]?.stringValue, !text.isEmpty else {
            throw CodError(.executionFailed, "ipfs input for \(input.target) has no CID")
        }
        let cid = try Self.parse(text, target: input.target)
        guard let target = GuestPath.clean(input.target), target != "/" else {
            throw CodError(.executionFailed, "input target \(input.target) is invalid")
        }
        let destination = root.appendingPathComponent(String(target.dropFirst()))
        guard let slice = DatasetPartitioner.sliceFiles(of: input.source) else {
            return try await place(cid, at: destination, localOnly: false, peers: sources[text] ?? [], what: "ipfs input \(cid)")
        }
        let localOnly = PartitionSpec.of(input.source)?.locality != .any
        var stats = InputStats()
        for entry in slice {
            guard let path = GuestPath.clean("/" + entry.file.path), path != "/" else {
                throw CodError(.executionFailed, "dataset file path \(entry.file.path) is invalid")
            }
            let file = try Self.parse(entry.file.cid, target: input.target + "/" + entry.file.path)
            let at = destination.appendingPathComponent(String(path.dropFirst()))
            if readOnly, let bytes = linkPlainCopy(of: file, at: at) {
                stats = stats + InputStats(localBytes: bytes, files: 1)
                continue
            }
            stats = stats + (try await place(
                file, at: at, localOnly: localOnly, peers: sources[entry.file.cid] ?? [], what: "dataset file \(entry.file.path) (shard \(entry.shard))"))
            if readOnly { keepPlainCopy(of: file, from: at) }
        }
        return stats
    }

    /// The cached plain copy of a file this node still holds, hard-linked at `destination`;
    /// its size, or nil (no copy, or the node no longer holds the file: the copy goes).
    func linkPlainCopy(of cid: CID, at destination: URL) -> UInt64? {
        guard let plainFiles else { return nil }
        let cached = plainFiles.appendingPathComponent(cid.toV1.description)
        var status = stat()
        guard lstat(cached.path, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else { return nil }
        guard store.has(cid) else {
            unlink(cached.path)
            return nil
        }
        try? FileManager.default.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
        return link(cached.path, destination.path) == 0 ? UInt64(status.st_size) : nil
    }

    /// Keeps the file just laid out (read from verified blocks) as the node's plain copy.
    func keepPlainCopy(of cid: CID, from placed: URL) {
        guard let plainFiles else { return }
        var status = stat()
        guard lstat(placed.path, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else { return }
        _ = link(placed.path, plainFiles.appendingPathComponent(cid.toV1.description).path)
    }

    static func parse(_ text: String, target: String) throws -> CID {
        do {
            return try CID(text)
        } catch {
            throw CodError(.executionFailed, "ipfs input for \(target): \(error)")
        }
    }

    /// Writes one DAG at `destination`, from this node's store when it holds every block (one
    /// pass: the blocks are read and verified as they are written), else fetched first.
    private func place(_ cid: CID, at destination: URL, localOnly: Bool, peers: [String], what: String) async throws -> InputStats {
        let fm = FileManager.default
        try fm.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
        let exporter = Exporter(store: store)
        var written: UInt64 = 0
        do {
            try exporter.extract(cid, to: destination) { written += UInt64($0) }
            return InputStats(localBytes: written, files: 1)
        } catch let error as ContentError where error.code == .missingBlock {
            if localOnly {
                throw ExecutionError(
                    .inputNotLocal, retryable: true, "\(what) is not on this node and the input's Locality is local, so it is not fetched")
            }
        } catch let error as ContentError {
            throw CodError(.executionFailed, "\(what): \(error)")
        }
        try? fm.removeItem(at: destination)
        let (fetched, outside) = try await fetch(cid, peers: peers)
        do {
            try exporter.extract(cid, to: destination)
        } catch let error as ContentError {
            throw CodError(.executionFailed, "\(what): \(error)")
        }
        return InputStats(networkBytes: fetched, outsideBytes: outside ? fetched : 0, files: 1)
    }

    /// Fetches the DAG from the first source that has it: the peers that announced it, the
    /// orchestrator, then any configured external gateways. A source that fails is skipped;
    /// the last failure is reported. Returns the bytes downloaded, and whether they came from
    /// outside the cluster (a gateway).
    func fetch(_ cid: CID, peers: [String]) async throws -> (bytes: UInt64, outside: Bool) {
        var lastError: (any Error)?
        for base in peers + [source] {
            do {
                return (try await fetch(cid, from: base), false)
            } catch {
                lastError = error
            }
        }
        for base in gateways {
            do {
                return (try await fetch(cid, from: base), true)
            } catch {
                lastError = error
            }
        }
        throw lastError ?? CodError(.executionFailed, "no source for \(cid)")
    }

    /// Downloads the DAG as a CAR from one node and stores it, verifying every block. Returns
    /// the CAR's size.
    func fetch(_ cid: CID, from base: String) async throws -> UInt64 {
        let file = store.root.appendingPathComponent(".fetch-\(UUID().uuidString).car")
        defer { try? FileManager.default.removeItem(at: file) }
        var request = HTTPClientRequest(url: "\(base)/ipfs/\(cid)?format=car")
        request.headers.add(name: "Accept", value: "application/vnd.ipld.car")
        let response: HTTPClientResponse
        do {
            if base == source, base.hasPrefix("https://"), let sourceTLS {
                request.tlsConfiguration = try await TLSTrust.shared.configuration(for: sourceTLS, baseURL: base)
            }
            response = try await http.execute(request, timeout: .minutes(30))
        } catch {
            throw ExecutionError(.inputUnavailable, retryable: true, "cannot fetch ipfs input \(cid) from \(base): \(error)")
        }
        guard response.status == .ok else {
            let body = try? await response.body.collect(upTo: 1 << 16)
            let detail = body.map { String(buffer: $0) } ?? ""
            if response.status == .notFound {
                throw ExecutionError(.inputUnavailable, retryable: false, "ipfs input \(cid) is not available on any node this node can reach (add it with cod data add)")
            }
            throw ExecutionError(.inputUnavailable, retryable: true, "fetching ipfs input \(cid) from \(base) failed: \(response.status.code) \(detail)")
        }
        _ = FileManager.default.createFile(atPath: file.path, contents: nil)
        let handle = try FileHandle(forWritingTo: file)
        var received: UInt64 = 0
        do {
            for try await buffer in response.body {
                received += UInt64(buffer.readableBytes)
                try handle.write(contentsOf: Data(buffer: buffer))
            }
            try handle.close()
        } catch {
            try? handle.close()
            throw ExecutionError(.inputUnavailable, retryable: true, "fetching ipfs input \(cid) broke off: \(error)")
        }
        do {
            let (roots, _) = try CARStream.importFile(file, into: store)
            guard roots.first == cid || roots.first?.multihash == cid.multihash else {
                throw CodError(.executionFailed, "the CAR for \(cid) has root \(roots.first?.description ?? "none")")
            }
        } catch let error as ContentError {
            throw CodError(.executionFailed, "ipfs input \(cid) failed verification: \(error)")
        }
        return received
    }
}
