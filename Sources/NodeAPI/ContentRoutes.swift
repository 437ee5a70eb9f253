public import ContentAddressing
import Foundation
public import BlockStore
public import Hummingbird
import Hummingbird
import Models
import Wire
import NIOCore

/// Content errors as API errors: missing content is 404, the store's own disk trouble 500,
/// anything malformed or corrupt 400.
public func contentError(_ error: ContentError) -> CodError {
    switch error.code {
    case .missingBlock, .pathNotFound, .notPinned: return CodError(.notFound, error.description)
    case .storage: return CodError(.internalError, error.description)
    case .malformed, .corrupt: return CodError(.badRequest, error.description)
    }
}

public func withContent<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as ContentError {
        throw contentError(error)
    }
}

/// What the data API needs to know about its caller: whose pins it makes and removes.
public protocol DataAccessContext: RequestContext {
    /// The holder a pin made or removed by this request is recorded under, given the `holder`
    /// the request named (nil: the caller's own). Throws when the caller may not act for it.
    func pinHolder(requested: String?) throws -> String

    /// The most bytes this caller may upload in one CAR; nil for the route's own limit.
    var uploadLimit: Int? { get }

    /// Throws unless this caller may store a CAR with these roots, pinned (or not) for
    /// `holder`. Called after the header is read and before any block is stored.
    func authorizeUpload(roots: [CID], pin: Bool, holder: String) throws
}

extension DataAccessContext {
    public var uploadLimit: Int? { nil }
    public func authorizeUpload(roots: [CID], pin: Bool, holder: String) throws {}
}

/// The trustless gateway (`/ipfs/{cid}[/path]`) and the data API (`/api/v1/data/...`) over a
/// node's block store. Every node (orchestrator or compute) mounts them.
public struct ContentRoutes: Sendable {
    public let store: FileBlockStore
    /// Where uploads are staged before their blocks are verified and stored.
    public let scratchDirectory: URL
    public let maxUploadBytes: Int

    public init(store: FileBlockStore, scratchDirectory: URL, maxUploadBytes: Int) {
        self.store = store
        self.scratchDirectory = scratchDirectory
        self.maxUploadBytes = maxUploadBytes
    }

    public func add<Context: DataAccessContext>(to router: Router<Context>) {
        let gateway: @Sendable (Request, Context) async throws -> Response = { request, context in
            try await self.serveGateway(request, context: context)
        }
        for path: RouterPath in ["/ipfs/:cid", "/ipfs/:cid/**"] {
            router.get(path, use: gateway)
            router.head(path, use: gateway)
        }

        // Adds a CAR: every block is verified as it is stored; roots can be pinned.
        router.put("/api/v1/data/car") { request, context in
            let temporary = self.scratchDirectory.appendingPathComponent(".car-\(UUID().uuidString)")
            FileManager.default.createFile(atPath: temporary.path, contents: nil)
            defer { try? FileManager.default.removeItem(at: temporary) }
            let handle = try FileHandle(forWritingTo: temporary)
            var total = 0
            let limit = min(context.uploadLimit ?? self.maxUploadBytes, self.maxUploadBytes)
            do {
                for try await buffer in request.body {
                    total += buffer.readableBytes
                    guard total <= limit else {
                        throw CodError(.payloadTooLarge, "the CAR exceeds \(limit) bytes\(limit < self.maxUploadBytes ? ", the most this upload may hold" : "")")
                    }
                    try handle.write(contentsOf: Data(buffer: buffer))
                }
                try handle.close()
            } catch {
                try? handle.close()
                throw error
            }
            let pin = request.uri.queryParameters.get("pin") == "true"
            let holder = try context.pinHolder(requested: request.uri.queryParameters.get("holder"))
            // Import and pin as one step as far as garbage collection is concerned.
            let (roots, blocks) = try withContent {
                try self.store.guardingFromGC {
                    let imported = try CARStream.importFile(temporary, into: self.store) { roots in
                        try context.authorizeUpload(roots: roots, pin: pin, holder: holder)
                    }
                    if pin { for root in imported.roots { try self.store.pinUnguarded(root, holder: holder) } }
                    return imported
                }
            }
            return try APIResponse.json(DataImportResponse(roots: roots.map(\.description), blocks: blocks))
        }

        router.get("/api/v1/data/ls/:cid/**") { _, context in try self.list(context) }
        router.get("/api/v1/data/ls/:cid") { _, context in try self.list(context) }

        router.get("/api/v1/data/stat") { _, _ in
            let (blocks, bytes) = try self.store.stat()
            return try APIResponse.json(DataStatResponse(blocks: blocks, bytes: bytes, pins: try self.store.pinned().map(\.description)))
        }
        router.put("/api/v1/data/pin/:cid") { request, context in
            let cid = try Self.parseCID(try context.parameters.require("cid"))
            let holder = try context.pinHolder(requested: request.uri.queryParameters.get("holder"))
            try withContent { try self.store.pin(cid, holder: holder) }
            return try APIResponse.json(["Pinned": cid.description, "Holder": holder])
        }
        // Removes the caller's own pin (or, for whoever may, the named holder's): the data
        // stays pinned while anyone else holds it.
        router.delete("/api/v1/data/pin/:cid") { request, context in
            let cid = try Self.parseCID(try context.parameters.require("cid"))
            let holder = try context.pinHolder(requested: request.uri.queryParameters.get("holder"))
            let holders = self.store.pinHolders(cid)
            guard holders.contains(holder) || holders.isEmpty else {
                let others = holders.prefix(3).map(PinHolder.describe).joined(separator: ", ")
                throw CodError(
                    .forbidden,
                    "\(cid) is not pinned by \(holder); it stays pinned for \(others)\(holders.count > 3 ? " and \(holders.count - 3) more" : "")",
                    hint: "only a pin's holder (or an admin naming ?holder=) removes it")
            }
            try withContent { try self.store.unpin(cid, holder: holder) }
            return try APIResponse.json(["Unpinned": cid.description, "Holder": holder])
        }
        router.post("/api/v1/data/gc") { _, _ in
            let (blocks, bytes) = try self.store.garbageCollect()
            return try APIResponse.json(DataGCResponse(removedBlocks: blocks, freedBytes: bytes))
        }
    }

    public static func parseCID(_ text: String) throws -> CID {
        do {
            return try CID(text)
        } catch let error as ContentError {
            throw CodError(.badRequest, "invalid CID \"\(text.prefix(80))\": \(error)")
        }
    }

    func list<Context: RequestContext>(_ context: Context) throws -> Response {
        let root = try Self.parseCID(try context.parameters.require("cid"))
        let path = context.parameters.getCatchAll().joined(separator: "/")
        let exporter = Exporter(store: store)
        let entries = try withContent {
            let target = try exporter.resolve(root, path: path)
            return try exporter.list(target).map { entry -> DataEntry in
                switch try? exporter.kind(entry.cid) {
                case .file(let size)?: return DataEntry(name: entry.name, cid: entry.cid.description, size: size, type: "file")
                case .directory?, .hamtDirectory?:
                    return DataEntry(name: entry.name, cid: entry.cid.description, size: entry.tsize, type: "directory")
                case .symlink?: return DataEntry(name: entry.name, cid: entry.cid.description, size: entry.tsize, type: "symlink")
                case nil: return DataEntry(name: entry.name, cid: entry.cid.description, size: entry.tsize, type: "unknown")
                }
            }
        }
        return try APIResponse.json(DataListResponse(entries: entries))
    }

    /// `GET|HEAD /ipfs/{cid}[/path]` per the trustless gateway spec: CAR (`?format=car` or
    /// `Accept: application/vnd.ipld.car`), a raw block, or the plain file/directory.
    func serveGateway<Context: RequestContext>(_ request: Request, context: Context) async throws -> Response {
        let root = try Self.parseCID(try context.parameters.require("cid"))
        guard [CID.dagPB, CID.raw].contains(root.codec) else {
            throw CodError(.badRequest, "codec \(root.codecName) is not served; this gateway serves dag-pb and raw data")
        }
        let path = context.parameters.getCatchAll().joined(separator: "/")
        let query = request.uri.queryParameters
        let accept = request.headers[.accept] ?? ""
        let format = query.get("format") ?? (accept.contains("application/vnd.ipld.car") ? "car" : accept.contains("application/vnd.ipld.raw") ? "raw" : "")
        let isHead = request.method == .head
        let store = self.store
        let etagBase = "\"\(root.description)\(path.isEmpty ? "" : "/" + path)"
        switch format {
        case "car":
            guard let scope = DAGScope(rawValue: query.get("dag-scope") ?? "all") else {
                throw CodError(.badRequest, "dag-scope must be all, entity or block")
            }
            let range = try Self.parseEntityBytes(query.get("entity-bytes"))
            let selection = try withContent {
                try CARSelection(store: store).select(root: root, path: path, scope: scope, bytes: range)
            }
            let headers: HTTPFields = [
                .contentType: "application/vnd.ipld.car; version=1; order=dfs; dups=n",
                .init("X-Ipfs-Roots")!: selection.target.description,
                .eTag: etagBase + ".car\"",
                .cacheControl: "public, max-age=29030400, immutable",
            ]
            if isHead { return Response(status: .ok, headers: headers) }
            return Response(status: .ok, headers: headers, body: ResponseBody { writer in
                try await writer.write(ByteBuffer(bytes: CAR.header(roots: [root])))
                for cid in selection.blocks {
                    let block = try store.require(cid)
                    try await writer.write(ByteBuffer(bytes: CAR.section(cid: cid, block: block)))
                }
                try await writer.finish(nil)
            })
        case "raw":
            let target = try withContent { try Exporter(store: store).resolve(root, path: path) }
            let block = try withContent { try store.require(target) }
            let headers: HTTPFields = [.contentType: "application/vnd.ipld.raw", .eTag: etagBase + ".raw\"", .contentLength: String(block.count)]
            return Response(status: .ok, headers: headers, body: isHead ? ResponseBody() : ResponseBody(byteBuffer: ByteBuffer(bytes: block)))
        case "":
            return try servePlain(root: root, path: path, isHead: isHead)
        default:
            throw CodError(.badRequest, "format must be car or raw, got \(format)")
        }
    }

    /// The plain file (streamed block by block), a directory listing, or a symlink's target.
    func servePlain(root: CID, path: String, isHead: Bool) throws -> Response {
        let store = self.store
        let exporter = Exporter(store: store)
        let target = try withContent { try exporter.resolve(root, path: path) }
        switch try withContent({ try exporter.kind(target) }) {
        case .file(let size):
            // The size is the DAG's own claim: it sizes nothing before it is checked.
            guard let length = Int(exactly: size) else {
                throw CodError(.badRequest, "\(target) claims a file size of \(size) bytes, which no file has; fetch it as a CAR to inspect it")
            }
            let headers: HTTPFields = [.contentType: "application/octet-stream", .contentLength: String(size), .eTag: "\"\(target)\""]
            if isHead { return Response(status: .ok, headers: headers) }
            // A file's blocks in DFS pre-order carry its bytes in order: stream them one
            // block at a time, so memory stays flat whatever the file size.
            let blocks = try withContent {
                try CARSelection(store: store).select(root: target, path: "", scope: .entity, bytes: nil).blocks
            }
            return Response(status: .ok, headers: headers, body: ResponseBody(contentLength: length) { writer in
                for cid in blocks {
                    let block = try store.require(cid)
                    if cid.codec == CID.raw {
                        try await writer.write(ByteBuffer(bytes: block))
                    } else if let data = try UnixFSData.decode(PBNode.decode(block).data ?? []).data, !data.isEmpty {
                        try await writer.write(ByteBuffer(bytes: data))
                    }
                }
                try await writer.finish(nil)
            })
        case .directory, .hamtDirectory:
            let entries = try withContent { try exporter.list(target) }
            let body = "<!DOCTYPE html><html><body><h1>Index of /ipfs/\(root)\(path.isEmpty ? "" : "/" + path)</h1><ul>"
                + entries.map { "<li><a href=\"\(htmlEscape($0.name))\">\(htmlEscape($0.name))</a> \($0.cid)</li>" }.joined()
                + "</ul></body></html>"
            let headers: HTTPFields = [.contentType: "text/html; charset=utf-8", .eTag: "\"\(target).html\""]
            return Response(status: .ok, headers: headers, body: isHead ? ResponseBody() : ResponseBody(byteBuffer: ByteBuffer(string: body)))
        case .symlink(let linkTarget):
            return Response(status: .ok, headers: [.contentType: "text/plain"], body: ResponseBody(byteBuffer: ByteBuffer(string: linkTarget)))
        }
    }

    /// `entity-bytes=from:to` (inclusive, `*` for the end).
    static func parseEntityBytes(_ value: String?) throws -> Range<UInt64>? {
        guard let value, !value.isEmpty else { return nil }
        let parts = value.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let from = UInt64(parts[0]) else {
            throw CodError(.badRequest, "entity-bytes must be from:to with non-negative integers or *")
        }
        if parts[1] == "*" { return from..<UInt64.max }
        guard let to = UInt64(parts[1]), to >= from else { throw CodError(.badRequest, "entity-bytes: to must be >= from") }
        return from..<(to == UInt64.max ? to : to + 1)
    }
}

func htmlEscape(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
}
