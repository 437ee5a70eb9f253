import Archives
import NodeAPI
import BlockStore
import ContentAddressing
import Crypto
import Foundation
import Hummingbird
import JobSpec
import Models
import NIOCore
import StateStore
import Wire

extension Orchestrator {
    /// All REST routes, mounted under `/api/v1` with Bacalhau's paths.
    func buildRouter() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: ErrorMiddleware())
        addAgentRoutes(router)
        addJobRoutes(router)
        addNodeRoutes(router)
        addDatasetRoutes(router)
        addComputeRoutes(router)
        ContentRoutes(store: store, scratchDirectory: config.dataDirectory, maxUploadBytes: config.maxResultBytes).add(to: router)
        return router
    }

    func addAgentRoutes(_ router: Router<BasicRequestContext>) {
        AgentRoutes(info: { NodeInfo(nodeID: "orchestrator", nodeType: "Requester") }).add(to: router)
    }

    func addJobRoutes(_ router: Router<BasicRequestContext>) {
        let submit: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
            let body = try await request.body.collect(upTo: self.config.maxJobBytes)
            let request = try JobSpecParser.decode(PutJobRequest.self, json: Data(buffer: body))
            return try APIResponse.json(try await self.submit(request.job))
        }
        router.put("/api/v1/orchestrator/jobs", use: submit)
        router.post("/api/v1/orchestrator/jobs", use: submit)

        router.get("/api/v1/orchestrator/jobs") { request, _ in
            let query = request.uri.queryParameters
            let limit = min(max(Int(query.get("limit") ?? "") ?? 10, 1), 1000)
            let offset = Self.decodeToken(query.get("next_token"))
            let reverse = query.get("reverse") == "true"
            let (jobs, more) = try await self.database.listJobs(
                namespace: query.get("namespace"), limit: limit, offset: offset, newestFirst: !reverse)
            return try APIResponse.json(ListResponse(items: jobs, nextToken: more ? Self.encodeToken(offset + limit) : ""))
        }

        router.get("/api/v1/orchestrator/jobs/:id") { request, context in
            let id = try await self.database.resolveJobID(try context.parameters.require("id"))
            guard let job = try await self.database.job(id: id) else { throw CodError(.notFound, "job \(id) not found") }
            let include = request.uri.queryParameters.get("include") ?? ""
            var response = GetJobResponse(job: job)
            if include.contains("executions") {
                response.executions = ListResponse(items: try await self.database.executions(jobID: id))
            }
            if include.contains("history") {
                response.history = ListResponse(items: try await self.database.history(jobID: id))
            }
            return try APIResponse.json(response)
        }

        // Cod extension: long-poll until the job changes past a revision, or ends.
        router.get("/api/v1/orchestrator/jobs/:id/wait") { request, context in
            let id = try await self.database.resolveJobID(try context.parameters.require("id"))
            let query = request.uri.queryParameters
            let after = UInt64(query.get("revision") ?? "") ?? 0
            let seconds = min(max(Double(query.get("timeout") ?? "") ?? 30, 0), 300)
            let job = try await self.waitForChange(jobID: id, afterRevision: after, timeout: .milliseconds(Int64(seconds * 1000)))
            return try APIResponse.json(GetJobResponse(job: job))
        }

        router.delete("/api/v1/orchestrator/jobs/:id") { request, context in
            let reason = request.uri.queryParameters.get("reason") ?? ""
            let evaluationID = try await self.stop(jobReference: try context.parameters.require("id"), reason: reason)
            return try APIResponse.json(StopJobResponse(evaluationID: evaluationID))
        }

        router.put("/api/v1/orchestrator/jobs/:id/rerun") { request, context in
            let body = try await request.body.collect(upTo: 1 << 16)
            let rerun = body.readableBytes == 0
                ? RerunJobRequest() : try JSONDecoder().decode(RerunJobRequest.self, from: Data(buffer: body))
            let response = try await self.rerun(
                jobReference: try context.parameters.require("id"), expectedVersion: rerun.jobVersion, reason: rerun.reason ?? "")
            return try APIResponse.json(response)
        }

        router.get("/api/v1/orchestrator/jobs/:id/executions") { request, context in
            let id = try await self.database.resolveJobID(try context.parameters.require("id"))
            let all = try await self.database.executions(jobID: id)
            return try APIResponse.json(Self.page(all, request))
        }

        router.get("/api/v1/orchestrator/jobs/:id/history") { request, context in
            let id = try await self.database.resolveJobID(try context.parameters.require("id"))
            var items = try await self.database.history(jobID: id)
            switch request.uri.queryParameters.get("event_type") ?? "all" {
            case "job": items = items.filter { $0.type == .job }
            case "execution": items = items.filter { $0.type == .execution }
            default: break
            }
            if let executionID = request.uri.queryParameters.get("execution_id"), !executionID.isEmpty {
                items = items.filter { $0.executionID.hasPrefix(executionID) }
            }
            return try APIResponse.json(Self.page(items, request))
        }

        router.get("/api/v1/orchestrator/jobs/:id/results") { request, context in
            let id = try await self.database.resolveJobID(try context.parameters.require("id"))
            let base = Self.baseURL(request)
            // The current version's results (a rerun's earlier versions keep theirs in the history).
            guard let job = try await self.database.job(id: id) else { throw CodError(.notFound, "job \(id) not found") }
            let version = job.version
            let executions = try await self.database.executions(jobID: id).filter { $0.jobVersion == version }
            // A job with a reduce task or a partitioned input has one result.
            if let single = try await self.singleResult(of: job, executions: executions) {
                return try APIResponse.json(ListResponse(items: [single]))
            }
            let results = executions
                .filter { $0.computeState.stateType == .completed && ["cod", "ipfs"].contains($0.publishedResult.normalizedType) }
                .sorted { $0.partitionIndex < $1.partitionIndex }
                .map { execution -> SpecConfig in
                    if execution.publishedResult.normalizedType == "ipfs" {
                        // Bacalhau's shape for IPFS results; the CID is fetchable at /ipfs/{cid}.
                        return SpecConfig(type: "ipfs", params: [
                            "CID": execution.publishedResult.params["CID"] ?? .null,
                            "ExecutionID": .string(execution.id),
                            "PartitionIndex": .int(Int64(execution.partitionIndex)),
                        ])
                    }
                    return SpecConfig(type: "urlDownload", params: [
                        "URL": .string("\(base)/api/v1/orchestrator/results/\(execution.id)"),
                        "ExecutionID": .string(execution.id),
                        "PartitionIndex": .int(Int64(execution.partitionIndex)),
                        "SHA256": execution.publishedResult.params["SHA256"] ?? .null,
                    ])
                }
            return try APIResponse.json(ListResponse(items: results))
        }

        router.get("/api/v1/orchestrator/results/:execution") { _, context in
            let executionID = try context.parameters.require("execution")
            guard executionID.hasPrefix("e-"), !executionID.contains("/"), !executionID.contains(".."),
                try await self.database.resultInfo(executionID: executionID) != nil
            else { throw CodError(.notFound, "no stored result for execution \(executionID)") }
            let file = self.config.resultsDirectory.appendingPathComponent(executionID + ".tar.gz")
            let data = try Data(contentsOf: file)
            return Response(
                status: .ok,
                headers: [.contentType: "application/gzip", .contentDisposition: "attachment; filename=\"\(executionID).tar.gz\""],
                body: ResponseBody(byteBuffer: ByteBuffer(data: data)))
        }

        router.get("/api/v1/orchestrator/jobs/:id/logs") { request, context in
            let id = try await self.database.resolveJobID(try context.parameters.require("id"))
            let follow = request.uri.queryParameters.get("follow") == "true"
            let executionFilter = request.uri.queryParameters.get("execution_id") ?? ""
            return Response(
                status: .ok, headers: [.contentType: "application/x-ndjson"],
                body: ResponseBody { writer in
                    try await self.streamLogs(jobID: id, follow: follow, executionFilter: executionFilter, writer: &writer)
                    try await writer.finish(nil)
                })
        }
    }

    func addDatasetRoutes(_ router: Router<BasicRequestContext>) {
        // Where a new dataset's shards should go: healthy, approved nodes with an API address,
        // those holding the fewest shards first.
        router.post("/api/v1/orchestrator/datasets/placement") { request, _ in
            let body = try await request.body.collect(upTo: 1 << 16)
            let wanted = try JSONDecoder().decode(DatasetPlacementRequest.self, from: Data(buffer: body))
            guard (1...100_000).contains(wanted.shards) else { throw CodError(.badRequest, "Shards must be between 1 and 100000") }
            let nodes = try await self.database.nodes().filter {
                $0.connection == .connected && $0.membership == .approved && $0.liveness == .healthy
                    && !$0.info.computeNodeInfo.address.isEmpty
            }
            guard wanted.replication >= 1, wanted.replication <= nodes.count else {
                throw CodError(
                    .badRequest,
                    "replication \(wanted.replication) needs that many healthy compute nodes with an API address; \(nodes.count) are connected",
                    hint: nodes.isEmpty ? "start compute nodes (cod serve --compute) first" : "use --replication \(max(nodes.count, 1)) or fewer")
            }
            let byID = Dictionary(nodes.map { ($0.info.nodeID, $0) }, uniquingKeysWith: { first, _ in first })
            let load = Dictionary(nodes.map { ($0.info.nodeID, $0.info.computeNodeInfo.heldRoots.count) }, uniquingKeysWith: { first, _ in first })
            let candidates = ShardPlanner.candidates(shardCount: wanted.shards, nodes: Array(byID.keys), load: load).map { ids in
                ids.compactMap { byID[$0] }.map { DatasetNode(nodeID: $0.info.nodeID, address: $0.info.computeNodeInfo.address) }
            }
            return try APIResponse.json(DatasetPlacementResponse(candidates: candidates))
        }
        router.put("/api/v1/orchestrator/datasets") { request, _ in
            let body = try await request.body.collect(upTo: self.config.maxManifestBytes)
            var manifest = try JSONDecoder().decode(PutDatasetRequest.self, from: Data(buffer: body)).dataset
            var problems = manifest.problems()
            if (try? CID(manifest.cid)) == nil { problems.append(.init("CID", "\(manifest.cid) is not a CID")) }
            for shard in manifest.shards where (try? CID(shard.cid)) == nil {
                problems.append(.init("Shards[\(shard.index)].CID", "\(shard.cid.prefix(100)) is not a CID"))
            }
            if problems.isEmpty {
                for shard in manifest.shards {
                    for (index, file) in shard.files.enumerated() where (try? CID(file.cid)) == nil {
                        problems.append(.init("Shards[\(shard.index)].Files[\(index)].CID", "\(file.cid.prefix(100)) is not a CID"))
                    }
                }
            }
            guard problems.isEmpty else {
                throw CodError(.badRequest, "the dataset manifest has problems:\n" + problems.map { "  - \($0)" }.joined(separator: "\n"))
            }
            manifest.createTime = nowNanos()
            try await self.database.saveDataset(manifest)
            return try APIResponse.json(try await self.datasetInfo([manifest])[0])
        }
        router.get("/api/v1/orchestrator/datasets") { _, _ in
            try APIResponse.json(ListResponse(items: try await self.datasetInfo(try await self.database.datasets())))
        }
        router.get("/api/v1/orchestrator/datasets/:cid") { _, context in
            let cid = try context.parameters.require("cid")
            guard let manifest = try await self.database.dataset(cid: cid) else {
                throw CodError(.notFound, "no dataset with root \(cid)", hint: "cod data datasets lists them")
            }
            return try APIResponse.json(try await self.datasetInfo([manifest])[0])
        }
        router.delete("/api/v1/orchestrator/datasets/:cid") { _, context in
            let cid = try context.parameters.require("cid")
            guard try await self.database.deleteDataset(cid: cid) else { throw CodError(.notFound, "no dataset with root \(cid)") }
            return try APIResponse.json(["Deleted": cid])
        }
    }

    /// The one result of a job with a reduce task (the reduce's output) or a partitioned input
    /// (the partitions' outputs merged, see ``ResultMerger``), once the job completed; nil for
    /// other jobs, which list a result per partition.
    func singleResult(of job: Job, executions: [Execution]) async throws -> SpecConfig? {
        guard job.state.stateType == .completed else { return nil }
        if job.reduceTask != nil {
            guard let reduce = executions.first(where: { $0.isReduce && $0.computeState.stateType == .completed }),
                let cid = reduce.publishedResult.params["CID"]
            else { return nil }
            return SpecConfig(type: "ipfs", params: [
                "CID": cid, "ExecutionID": .string(reduce.id), "Reduce": .bool(true),
            ])
        }
        guard DatasetPartitioner.partitionedInput(of: job.task) != nil else { return nil }
        var partitions: [(index: Int, root: CID)] = []
        for execution in executions.sorted(by: { $0.createTime < $1.createTime })
        where execution.computeState.stateType == .completed && !partitions.contains(where: { $0.index == execution.partitionIndex }) {
            guard let text = execution.publishedResult.params["CID"]?.stringValue, let cid = try? CID(text) else { return nil }
            partitions.append((execution.partitionIndex, cid))
        }
        let merged: String
        if let known = try await database.mergedResult(jobID: job.id, version: job.version) {
            merged = known
        } else {
            let cid = try withContent { try store.guardingFromGC { () throws -> CID in
                let cid = try ResultMerger(store: store).merge(partitions)
                try store.pinUnguarded(cid, holder: PinHolder.result(of: job.id))
                return cid
            } }
            merged = cid.description
            // A rerun's merged result replaces the previous version's.
            if let previous = try await database.saveMergedResult(jobID: job.id, version: job.version, cid: merged),
                let old = try? CID(previous)
            {
                _ = try? store.unpin(old, holder: PinHolder.result(of: job.id))
            }
        }
        return SpecConfig(type: "ipfs", params: ["CID": .string(merged), "Partitions": .int(Int64(partitions.count))])
    }

    /// Datasets with the connected nodes that announce each shard now (node records read once).
    func datasetInfo(_ manifests: [DatasetManifest]) async throws -> [DatasetInfo] {
        let nodes = try await database.nodes().filter { $0.connection == .connected }
        return manifests.map { manifest in
            let holders = manifest.shards.map { shard in
                let key = CID.v1String(shard.cid)
                return nodes.filter { $0.info.computeNodeInfo.heldRoots.contains(key) }.map(\.info.nodeID).sorted()
            }
            return DatasetInfo(dataset: manifest, holders: holders)
        }
    }

    func addNodeRoutes(_ router: Router<BasicRequestContext>) {
        // Garbage collection of ended jobs now, rather than at the next periodic pass.
        router.post("/api/v1/orchestrator/gc") { _, _ in
            try APIResponse.json(try await self.collectGarbage())
        }
        router.get("/api/v1/orchestrator/nodes") { _, _ in
            try APIResponse.json(ListNodesResponse(nodes: try await self.database.nodes()))
        }
        router.get("/api/v1/orchestrator/nodes/:id") { _, context in
            let id = try context.parameters.require("id")
            return try APIResponse.json(GetNodeResponse(node: try await self.node(matching: id)))
        }
        // An administrator approves, rejects or deletes a node (Bacalhau's shape: the ID in the
        // path, or in the body of a POST to the collection).
        let decide: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, context in
            let body = try await request.body.collect(upTo: 1 << 20)
            let decision = try JobSpecParser.decode(PutNodeRequest.self, json: Data(buffer: body))
            let id = context.parameters.get("id") ?? decision.nodeID
            guard !id.isEmpty else { throw CodError(.badRequest, "say which node: NodeID in the body or /nodes/{id}") }
            let node = try await self.node(matching: id)
            return try APIResponse.json(try await self.decide(decision.action, node: node, message: decision.message))
        }
        router.put("/api/v1/orchestrator/nodes/:id", use: decide)
        router.post("/api/v1/orchestrator/nodes/:id", use: decide)
        router.post("/api/v1/orchestrator/nodes", use: decide)
        router.put("/api/v1/orchestrator/nodes", use: decide)
    }

    /// The one node whose ID starts with `prefix`.
    func node(matching prefix: String) async throws -> NodeState {
        let nodes = try await database.nodes().filter { $0.info.nodeID.hasPrefix(prefix) }
        guard nodes.count == 1 else {
            throw nodes.isEmpty
                ? CodError(.notFound, "node \(prefix) not found", hint: "list nodes with: cod node list")
                : CodError(.ambiguous, "node ID prefix \(prefix) matches \(nodes.count) nodes")
        }
        return nodes[0]
    }

    /// Carries out an administrator's decision about a node.
    func decide(_ action: String, node: NodeState, message: String) async throws -> PutNodeResponse {
        let nodeID = node.info.nodeID
        let note = message.isEmpty ? "" : " (\(message))"
        switch action.lowercased() {
        case "approve":
            _ = try await database.setMembership(nodeID: nodeID, to: .approved)
            logger.info("node \(shortID(nodeID)) approved\(note)")
            // Jobs waiting for a node may fit on this one now, and daemon jobs extend to it.
            let waiting = await waitlist.all + ((try? await database.unfinishedJobIDs(type: "daemon")) ?? [])
            if !waiting.isEmpty { await evaluate(jobIDs: Array(Set(waiting)), trigger: .nodeJoin) }
        case "reject":
            let jobs = try await database.setMembership(nodeID: nodeID, to: .rejected)
            logger.info("node \(shortID(nodeID)) rejected\(note)")
            // It is cut off; its executions are rescheduled elsewhere.
            await hub.disconnect(nodeID: nodeID)
            if !jobs.isEmpty { await evaluate(jobIDs: jobs, trigger: .nodeLeave) }
        case "delete":
            let jobs = try await database.deleteNode(nodeID: nodeID)
            logger.info("node \(shortID(nodeID)) deleted\(note)")
            await hub.disconnect(nodeID: nodeID)
            if !jobs.isEmpty { await evaluate(jobIDs: jobs, trigger: .nodeLeave) }
            return PutNodeResponse(success: true)
        default:
            throw CodError(.badRequest, "unknown node action \"\(action)\"; use approve, reject or delete")
        }
        return PutNodeResponse(success: true, node: try await self.node(matching: nodeID))
    }

    func addComputeRoutes(_ router: Router<BasicRequestContext>) {
        // Compute nodes upload result bundles here before reporting completion.
        router.put("/api/v1/compute/results/:execution") { request, context in
            guard request.headers[.authorization] == "Bearer \(self.config.token)" else {
                throw CodError(.unauthorized, "invalid join token")
            }
            let executionID = try context.parameters.require("execution")
            guard let execution = try await self.database.execution(id: executionID),
                execution.nodeID == request.headers[.init("X-Cod-Node-ID")!]
            else { throw CodError(.notFound, "execution \(executionID) is not assigned to this node") }
            let directory = self.config.resultsDirectory
            let temporary = directory.appendingPathComponent(".upload-\(UUID().uuidString)")
            FileManager.default.createFile(atPath: temporary.path, contents: nil)
            let handle = try FileHandle(forWritingTo: temporary)
            var hasher = SHA256()
            var total = 0
            do {
                for try await buffer in request.body {
                    total += buffer.readableBytes
                    guard total <= self.config.maxResultBytes else {
                        throw CodError(.payloadTooLarge, "result bundle exceeds \(self.config.maxResultBytes) bytes")
                    }
                    let bytes = Data(buffer: buffer)
                    hasher.update(data: bytes)
                    try handle.write(contentsOf: bytes)
                }
                try handle.synchronize()
                try handle.close()
            } catch {
                try? handle.close()
                try? FileManager.default.removeItem(at: temporary)
                throw error
            }
            let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
            if let expected = request.headers[.init("X-Cod-SHA256")!], expected != digest {
                try? FileManager.default.removeItem(at: temporary)
                throw CodError(.badRequest, "result bundle checksum mismatch (sent \(expected), received \(digest))")
            }
            let final = directory.appendingPathComponent(executionID + ".tar.gz")
            _ = try? FileManager.default.removeItem(at: final)
            try FileManager.default.moveItem(at: temporary, to: final)
            // The node drops its copy once this answers: the rename must be on disk too (the
            // file itself was synchronized before it was closed).
            try FileSync.flush(directory.path)
            return try APIResponse.json(["SHA256": digest, "Size": String(total)])
        }
    }

    // MARK: Helpers

    static func page<T: Codable & Sendable>(_ all: [T], _ request: Request) -> ListResponse<T> {
        let query = request.uri.queryParameters
        let limit = min(max(Int(query.get("limit") ?? "") ?? 1000, 1), 10_000)
        let offset = decodeToken(query.get("next_token"))
        let items = Array(all.dropFirst(offset).prefix(limit))
        let more = offset + items.count < all.count
        return ListResponse(items: items, nextToken: more ? encodeToken(offset + limit) : "")
    }

    static func encodeToken(_ offset: Int) -> String {
        Data("offset:\(offset)".utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func decodeToken(_ token: String?) -> Int {
        guard var token, !token.isEmpty else { return 0 }
        token = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while token.count % 4 != 0 { token += "=" }
        guard let data = Data(base64Encoded: token), let text = String(data: data, encoding: .utf8),
            text.hasPrefix("offset:"), let offset = Int(text.dropFirst(7)), offset >= 0
        else { return 0 }
        return offset
    }

    static func baseURL(_ request: Request) -> String {
        let host = request.head.authority ?? "127.0.0.1:1234"
        return "http://\(host)"
    }

    /// Streams each execution's stdout and stderr as NDJSON `ExecutionLog` lines. Running
    /// executions' output comes live from what their nodes stream (whole lines only); when an
    /// execution ends, the rest comes from its stored logs. Should the live view ever differ
    /// from the stored log (a daemon whose live stream skipped output), a notice says so and
    /// the whole stored log follows, so no line is ever missing. Without `follow`, it prints
    /// what there is now and returns.
    func streamLogs(jobID: String, follow: Bool, executionFilter: String, writer: inout any ResponseBodyWriter) async throws {
        var sent: [String: [Int: LiveProgress]] = [:]
        var finished = Set<String>()
        while true {
            let seen = await watchers.generation(of: jobID)
            let executions = try await database.executions(jobID: jobID)
                .filter { executionFilter.isEmpty || $0.id.hasPrefix(executionFilter) }
            for execution in executions where !finished.contains(execution.id) {
                if execution.computeState.stateType.isTerminal {
                    finished.insert(execution.id)
                    for stream in [1, 2] {
                        try await sendStoredLog(
                            of: execution, stream: stream, after: sent[execution.id]?[stream] ?? LiveProgress(), to: &writer)
                    }
                    sent[execution.id] = nil
                } else {
                    for stream in [1, 2] {
                        var progress = sent[execution.id]?[stream] ?? LiveProgress()
                        let live = await liveLogs.bytes(executionID: execution.id, stream: stream, from: progress.count)
                        // Whole lines only: a partial one is completed by a later chunk or the stored log.
                        guard let lastNewline = live.lastIndex(of: 0x0A) else { continue }
                        let lines = live[..<(lastNewline + 1)]
                        try await Self.write(lines: lines, stream: stream, executionID: execution.id, to: &writer)
                        progress.add(lines)
                        sent[execution.id, default: [:]][stream] = progress
                    }
                }
            }
            guard follow, let job = try await database.job(id: jobID) else { return }
            if job.state.stateType.isTerminal && executions.allSatisfy({ finished.contains($0.id) }) { return }
            // Woken by state changes and by new live output.
            await watchers.wait(jobID: jobID, seen: seen, timeout: .seconds(2))
        }
    }

    /// Writes text as one `ExecutionLog` line per line (a final line without a newline too).
    static func write(lines bytes: ArraySlice<UInt8>, stream: Int, executionID: String, to writer: inout any ResponseBodyWriter) async throws {
        guard !bytes.isEmpty else { return }
        var out = ByteBuffer()
        let encoder = JSONEncoder()
        var lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
        if bytes.last == 0x0A { lines.removeLast() }
        for line in lines {
            var data = try encoder.encode(ExecutionLog(type: stream, line: String(decoding: line, as: UTF8.self), executionID: executionID))
            data.append(0x0A)
            out.writeBytes(data)
            if out.readableBytes > 1 << 16 {
                try await writer.write(out)
                out.clear()
            }
        }
        if out.readableBytes > 0 { try await writer.write(out) }
    }

    /// Sends an ended execution's stored log (`stream` 1 is stdout, 2 stderr) in bounded
    /// chunks, whatever its size: the part a follower already had live is skipped when it is a
    /// true prefix of the stored log (checked by digest), otherwise a notice and the whole log.
    func sendStoredLog(of execution: Execution, stream: Int, after progress: LiveProgress, to writer: inout any ResponseBodyWriter) async throws {
        let source = storedLog(of: execution, stream: stream)
        var start: UInt64 = 0
        if progress.count > 0 {
            var hasher = SHA256()
            var offset: UInt64 = 0
            let wanted = UInt64(progress.count)
            while offset < wanted, let chunk = source.read(offset..<min(wanted, offset + Self.logChunkBytes)), !chunk.isEmpty {
                hasher.update(data: chunk)
                offset += UInt64(chunk.count)
            }
            if offset == wanted, progress.matches(hasher.finalize()) {
                start = wanted
            } else {
                let notice = "[cod] the live view of execution \(execution.id) missed output; its complete \(stream == 1 ? "stdout" : "stderr") follows"
                try await Self.write(lines: Array(notice.utf8) + [0x0A], stream: 2, executionID: execution.id, to: &writer)
            }
        }
        // Whole lines per record: what follows the last newline of a chunk waits for the next
        // (a line longer than a chunk is sent in pieces rather than held whole).
        var carry: [UInt8] = []
        var offset = start
        while let chunk = source.read(offset..<offset + Self.logChunkBytes), !chunk.isEmpty {
            offset += UInt64(chunk.count)
            carry += chunk
            if let newline = carry.lastIndex(of: 0x0A) {
                try await Self.write(lines: carry[...newline], stream: stream, executionID: execution.id, to: &writer)
                carry.removeSubrange(...newline)
            } else if carry.count >= Self.logChunkBytes {
                try await Self.write(lines: carry[...], stream: stream, executionID: execution.id, to: &writer)
                carry.removeAll()
            }
        }
        try await Self.write(lines: carry[...], stream: stream, executionID: execution.id, to: &writer)
    }

    /// How much of a stored log is read and sent at a time.
    static let logChunkBytes: UInt64 = 1 << 20
    /// The largest `local` result bundle whose logs are unpacked to serve them.
    static let maxTarballLogBytes = 64 << 20

    /// Where an ended execution's full log is: a file in its result DAG (read by range), a
    /// small tarball's entry, or the execution record's summary when there is none.
    func storedLog(of execution: Execution, stream: Int) -> StoredLog {
        let name = stream == 1 ? "stdout" : "stderr"
        if execution.publishedResult.normalizedType == "ipfs", let text = execution.publishedResult.params["CID"]?.stringValue,
            let root = try? CID(text)
        {
            let exporter = Exporter(store: store)
            guard let cid = try? exporter.resolve(root, path: name) else { return StoredLog(bytes: []) }
            return StoredLog { range in
                var bytes: [UInt8] = []
                guard (try? exporter.read(cid, range: range, write: { bytes += $0 })) != nil else { return nil }
                return bytes
            }
        }
        let file = config.resultsDirectory.appendingPathComponent(execution.id + ".tar.gz")
        if let data = try? Data(contentsOf: file), let tar = try? Gzip.decompress(Array(data), maxSize: Self.maxTarballLogBytes),
            let entries = try? Tar.entries(tar)
        {
            return StoredLog(bytes: entries.first { $0.path == name }.map { Array($0.contents) } ?? [])
        }
        let output = execution.runOutput ?? RunCommandResult()
        return StoredLog(bytes: Array((stream == 1 ? output.stdout : output.stderr).utf8))
    }
}

/// A stored log read by byte range; nil when it cannot be read.
struct StoredLog {
    let read: (Range<UInt64>) -> [UInt8]?

    init(read: @escaping (Range<UInt64>) -> [UInt8]?) { self.read = read }

    init(bytes: [UInt8]) {
        self.read = { range in
            let lower = Int(clamping: min(range.lowerBound, UInt64(bytes.count)))
            let upper = Int(clamping: min(range.upperBound, UInt64(bytes.count)))
            return Array(bytes[lower..<upper])
        }
    }
}

/// What a follower has been sent of one live stream: how much, and its digest, to check
/// against the stored log when the execution ends.
struct LiveProgress {
    private(set) var count = 0
    private var hasher = SHA256()

    mutating func add(_ bytes: ArraySlice<UInt8>) {
        count += bytes.count
        hasher.update(data: Array(bytes))
    }

    func isPrefix(of full: [UInt8]) -> Bool {
        full.count >= count && matches(SHA256.hash(data: Array(full[..<count])))
    }

    /// True when `digest` (of the stored log's first `count` bytes) is what was sent.
    func matches(_ digest: SHA256.Digest) -> Bool {
        digest == hasher.finalize()
    }

}
