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
    /// External trustless gateways, tried last.
    let gateways: [String]
    let http: HTTPClient

    init(store: FileBlockStore, source: String, gateways: [String] = [], http: HTTPClient) {
        self.store = store
        self.source = Self.base(source)
        self.gateways = gateways.map(Self.base)
        self.http = http
    }

    static func base(_ url: String) -> String {
        var base = url.hasPrefix("http") ? url : "http://" + url
        while base.hasSuffix("/") { base.removeLast() }
        return base
    }

    /// Writes the input's tree (a file or a folder) at its target inside `root`.
    func materialize(_ input: InputSource, root: URL, peers: [String] = []) async throws {
        guard let text = input.source.params["CID"]?.stringValue, !text.isEmpty else {
            throw CodError(.executionFailed, "ipfs input for \(input.target) has no CID")
        }
        let cid: CID
        do {
            cid = try CID(text)
        } catch {
            throw CodError(.executionFailed, "ipfs input for \(input.target): \(error)")
        }
        guard let target = GuestPath.clean(input.target), target != "/" else {
            throw CodError(.executionFailed, "input target \(input.target) is invalid")
        }
        if !holdsWholeDAG(cid) { try await fetch(cid, peers: peers) }
        let destination = root.appendingPathComponent(String(target.dropFirst()))
        try FileManager.default.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
        do {
            try Exporter(store: store).extract(cid, to: destination)
        } catch let error as ContentError {
            throw CodError(.executionFailed, "ipfs input \(cid): \(error)")
        }
    }

    func holdsWholeDAG(_ cid: CID) -> Bool {
        (try? DAGWalker(store: store).walk(cid) { _, _ in }) != nil
    }

    /// Fetches the DAG from the first source that has it: the peers that announced it, the
    /// orchestrator, then any configured external gateways. A source that fails is skipped;
    /// the last failure is reported.
    func fetch(_ cid: CID, peers: [String]) async throws {
        var lastError: (any Error)?
        for base in peers + [source] + gateways {
            do {
                try await fetch(cid, from: base)
                return
            } catch {
                lastError = error
            }
        }
        throw lastError ?? CodError(.executionFailed, "no source for \(cid)")
    }

    /// Downloads the DAG as a CAR from one node and stores it, verifying every block.
    func fetch(_ cid: CID, from base: String) async throws {
        let file = store.root.appendingPathComponent(".fetch-\(UUID().uuidString).car")
        defer { try? FileManager.default.removeItem(at: file) }
        var request = HTTPClientRequest(url: "\(base)/ipfs/\(cid)?format=car")
        request.headers.add(name: "Accept", value: "application/vnd.ipld.car")
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: .minutes(30))
        } catch {
            throw CodError(.executionFailed, BatchRetry.marker + "cannot fetch ipfs input \(cid) from \(base): \(error)")
        }
        guard response.status == .ok else {
            let body = try? await response.body.collect(upTo: 1 << 16)
            let detail = body.map { String(buffer: $0) } ?? ""
            if response.status == .notFound {
                throw CodError(.executionFailed, "ipfs input \(cid) is not available on any node this node can reach (add it with cod data add)")
            }
            throw CodError(.executionFailed, BatchRetry.marker + "fetching ipfs input \(cid) from \(base) failed: \(response.status.code) \(detail)")
        }
        _ = FileManager.default.createFile(atPath: file.path, contents: nil)
        let handle = try FileHandle(forWritingTo: file)
        do {
            for try await buffer in response.body { try handle.write(contentsOf: Data(buffer: buffer)) }
            try handle.close()
        } catch {
            try? handle.close()
            throw CodError(.executionFailed, BatchRetry.marker + "fetching ipfs input \(cid) broke off: \(error)")
        }
        do {
            let (roots, _) = try CARStream.importFile(file, into: store)
            guard roots.first == cid || roots.first?.multihash == cid.multihash else {
                throw CodError(.executionFailed, "the CAR for \(cid) has root \(roots.first?.description ?? "none")")
            }
        } catch let error as ContentError {
            throw CodError(.executionFailed, "ipfs input \(cid) failed verification: \(error)")
        }
    }
}
