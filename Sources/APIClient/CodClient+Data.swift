import AsyncHTTPClient
import BlockStore
import Foundation
public import Models
import NIOCore
import NIOFoundationCompat
public import Wire

extension CodClient {
    /// Uploads a CAR file, streaming it; the node verifies every block. With `pin`, the roots
    /// are pinned for `holder` (the user's by default; `dataset:<root>` for a dataset's shard).
    public func uploadCAR(_ file: URL, pin: Bool, holder: String? = nil, timeout: TimeAmount = .hours(4)) async throws -> DataImportResponse {
        let query = pin ? "?pin=true" + (holder.map { "&holder=" + $0 } ?? "") : ""
        var request = HTTPClientRequest(url: baseURL + "/api/v1/data/car" + query)
        request.method = .PUT
        request.headers.add(name: "Content-Type", value: "application/vnd.ipld.car")
        // Read lazily, one piece per request-body write: the CAR can be far larger than memory.
        let chunks = FileChunks(file)
        request.body = .stream(chunks, length: .known(chunks.length))
        return try await decode(try await execute(request, timeout: timeout))
    }

    /// Downloads `/ipfs/{cid}[/path]?format=car` into a file, streaming.
    public func downloadCAR(_ cidPath: String, to file: URL, scope: String = "all") async throws {
        var request = HTTPClientRequest(url: baseURL + "/ipfs/" + cidPath + "?format=car&dag-scope=" + scope)
        request.method = .GET
        request.headers.add(name: "Accept", value: "application/vnd.ipld.car")
        let response = try await execute(request, timeout: .hours(4))
        guard response.status == .ok else { throw try await Self.error(from: response) }
        _ = FileManager.default.createFile(atPath: file.path, contents: nil)
        let handle = try FileHandle(forWritingTo: file)
        defer { try? handle.close() }
        for try await buffer in response.body { try handle.write(contentsOf: Data(buffer: buffer)) }
    }

    public func listData(_ cidPath: String) async throws -> [DataEntry] {
        let response: DataListResponse = try await get("/api/v1/data/ls/" + cidPath)
        return response.entries
    }

    public func dataStat() async throws -> DataStatResponse {
        try await get("/api/v1/data/stat")
    }

    public func pin(_ cid: String) async throws {
        let _: [String: String] = try await send(.PUT, "/api/v1/data/pin/\(cid)", body: Optional<PutJobRequest>.none)
    }

    public func unpin(_ cid: String) async throws {
        let _: [String: String] = try await send(.DELETE, "/api/v1/data/pin/\(cid)", body: Optional<PutJobRequest>.none)
    }

    public func garbageCollect() async throws -> DataGCResponse {
        try await send(.POST, "/api/v1/data/gc", body: Optional<PutJobRequest>.none)
    }
}

extension CodClient {
    // MARK: Datasets

    public func datasetPlacement(shards: Int, replication: Int) async throws -> DatasetPlacementResponse {
        try await send(.POST, "/api/v1/orchestrator/datasets/placement", body: DatasetPlacementRequest(shards: shards, replication: replication))
    }

    /// A grant to upload one shard (`root`, a CAR of `bytes`) to `nodeID`, pinned for `holder`.
    public func uploadGrant(nodeID: String, root: String, holder: String, bytes: Int, seconds: Int64? = nil) async throws -> UploadGrantResponse {
        try await send(
            .POST, "/api/v1/orchestrator/datasets/grants",
            body: UploadGrantRequest(nodeID: nodeID, root: root, holder: holder, bytes: bytes, seconds: seconds))
    }

    /// Stores a manifest; with `after`, as the next version of the named dataset
    /// `manifest.name`, which must stand at version `after` (a conflict error otherwise).
    public func saveDataset(_ manifest: DatasetManifest, after: Int? = nil) async throws -> DatasetInfo {
        try await send(.PUT, "/api/v1/orchestrator/datasets", body: PutDatasetRequest(dataset: manifest, after: after))
    }

    /// The newest version of the named dataset; nil when there is none.
    public func namedDataset(_ name: String) async throws -> DatasetInfo? {
        do {
            return try await get("/api/v1/orchestrator/datasets/names/\(escape(name))")
        } catch let error as CodError where error.code == .notFound {
            return nil
        }
    }

    public func datasets() async throws -> [DatasetInfo] {
        let response: ListResponse<DatasetInfo> = try await get("/api/v1/orchestrator/datasets")
        return response.items
    }

    /// The dataset with this root CID; a not-found error when there is none.
    public func dataset(_ cid: String) async throws -> DatasetInfo {
        try await get("/api/v1/orchestrator/datasets/\(escape(cid))")
    }

    public func deleteDataset(_ cid: String) async throws {
        let _: [String: String] = try await send(.DELETE, "/api/v1/orchestrator/datasets/\(escape(cid))", body: Optional<PutJobRequest>.none)
    }
}
