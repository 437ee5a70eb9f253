import AsyncHTTPClient
import Foundation
public import Models
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL
public import Wire

/// A typed client for Cod's (Bacalhau-compatible) REST API.
///
/// ```swift
/// let client = CodClient(host: "127.0.0.1", port: 1234)
/// let response = try await client.submit(job)
/// ```
public struct CodClient: Sendable {
    public let baseURL: String
    let http: HTTPClient
    let timeout: TimeAmount
    /// The `Authorization` header sent with every request, when set.
    var authorization: String?
    /// A compute node signs each request instead (see `NodeIdentity.requestPayload`).
    var nodeSigner: NodeRequestSigner?
    /// Which certificates an `https://` API may show; nil trusts the system's roots.
    public let tls: ClientTLS?

    public init(host: String, port: Int, timeout: TimeAmount = .seconds(60), credential: ClientCredential? = nil) {
        self.init(baseURL: "\(host):\(port)", timeout: timeout, credential: credential)
    }

    /// A client for the API at `baseURL` (`http://HOST:PORT`; `HOST:PORT` means http). `token`
    /// is sent as a bearer token (a user's API key).
    public init(
        baseURL: String, timeout: TimeAmount = .seconds(60), token: String? = nil, credential: ClientCredential? = nil,
        tls: ClientTLS? = nil, http: HTTPClient? = nil
    ) {
        var base = baseURL.hasPrefix("http://") || baseURL.hasPrefix("https://") ? baseURL : "http://" + baseURL
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base
        self.http = http ?? Self.sharedHTTP
        self.timeout = timeout
        self.authorization = (credential ?? token.map(ClientCredential.apiKey))?.header
        self.tls = tls
    }

    /// One client for the process. Connecting gives up after 5 s, so a server that is not
    /// there is reported at once rather than at the request's deadline.
    static let sharedHTTP: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .seconds(5)
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    // MARK: Agent

    public func alive() async throws -> AliveResponse {
        try await get("/api/v1/agent/alive")
    }

    public func version() async throws -> BuildVersionInfo {
        try await get("/api/v1/agent/version")
    }

    // MARK: Jobs

    public func submit(_ job: Job) async throws -> PutJobResponse {
        try await send(.PUT, "/api/v1/orchestrator/jobs", body: PutJobRequest(job: job))
    }

    public func job(_ id: String, include: [String] = []) async throws -> GetJobResponse {
        let query = include.isEmpty ? "" : "?include=" + include.joined(separator: ",")
        return try await get("/api/v1/orchestrator/jobs/\(escape(id))\(query)")
    }

    /// Long-polls until the job's revision passes `afterRevision` or it ends.
    public func wait(_ id: String, afterRevision: UInt64, timeoutSeconds: Double = 30) async throws -> Job {
        let response: GetJobResponse = try await get(
            "/api/v1/orchestrator/jobs/\(escape(id))/wait?revision=\(afterRevision)&timeout=\(timeoutSeconds)",
            timeout: .seconds(Int64(timeoutSeconds) + 30))
        return response.job
    }

    public func listJobs(limit: Int = 10, nextToken: String = "", reverse: Bool = false) async throws -> ListResponse<Job> {
        var path = "/api/v1/orchestrator/jobs?limit=\(limit)"
        if !nextToken.isEmpty { path += "&next_token=\(escape(nextToken))" }
        if reverse { path += "&reverse=true" }
        return try await get(path)
    }

    public func executions(_ id: String) async throws -> [Execution] {
        let response: ListResponse<Execution> = try await get("/api/v1/orchestrator/jobs/\(escape(id))/executions")
        return response.items
    }

    /// The jobs this job started, oldest first.
    public func children(_ id: String) async throws -> [Job] {
        let response: ListResponse<Job> = try await get("/api/v1/orchestrator/jobs/\(escape(id))/children?limit=10000")
        return response.items
    }

    /// How a verified job's replicas compare, partition by partition.
    public func verification(_ id: String) async throws -> JobVerificationResponse {
        try await get("/api/v1/orchestrator/jobs/\(escape(id))/verification")
    }

    /// The job's signed receipt and its executions'.
    public func receipts(_ id: String) async throws -> JobReceiptsResponse {
        try await get("/api/v1/orchestrator/jobs/\(escape(id))/receipts")
    }

    /// Every receipt a node sent, in order, with its key.
    public func nodeReceipts(_ node: String) async throws -> JobReceiptsResponse {
        try await get("/api/v1/orchestrator/nodes/\(escape(node))/receipts")
    }

    public func history(_ id: String) async throws -> [JobHistory] {
        let response: ListResponse<JobHistory> = try await get("/api/v1/orchestrator/jobs/\(escape(id))/history")
        return response.items
    }

    public func results(_ id: String) async throws -> [SpecConfig] {
        let response: ListResponse<SpecConfig> = try await get("/api/v1/orchestrator/jobs/\(escape(id))/results")
        return response.items
    }

    /// Runs a job again as its next version.
    public func rerun(_ id: String, version: UInt64? = nil, reason: String = "") async throws -> RerunJobResponse {
        try await send(.PUT, "/api/v1/orchestrator/jobs/\(escape(id))/rerun", body: RerunJobRequest(jobVersion: version, reason: reason))
    }

    /// Removes ended jobs past the orchestrator's retention limits now.
    public func collectGarbage() async throws -> GarbageCollectionResponse {
        // A first pass over a large store can take a while.
        try await send(.POST, "/api/v1/orchestrator/gc", body: Optional<PutJobRequest>.none, timeout: .minutes(30))
    }

    public func stop(_ id: String, reason: String = "") async throws -> StopJobResponse {
        let query = reason.isEmpty ? "" : "?reason=\(escape(reason))"
        return try await send(.DELETE, "/api/v1/orchestrator/jobs/\(escape(id))\(query)", body: Optional<PutJobRequest>.none)
    }

    /// Streams log lines, calling `line` for each, until the server ends the stream.
    public func logs(_ id: String, follow: Bool, executionID: String = "", line: @Sendable (ExecutionLog) async throws -> Void) async throws {
        var path = "/api/v1/orchestrator/jobs/\(escape(id))/logs?follow=\(follow)"
        if !executionID.isEmpty { path += "&execution_id=\(escape(executionID))" }
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = .GET
        let response = try await execute(request, timeout: .hours(24))
        guard response.status == .ok else {
            throw try await Self.error(from: response)
        }
        var pending = Data()
        for try await buffer in response.body {
            pending.append(contentsOf: buffer.readableBytesView)
            while let newline = pending.firstIndex(of: 0x0A) {
                let lineData = pending[pending.startIndex..<newline]
                pending = Data(pending[(newline + 1)...])
                if let entry = try? JSONDecoder().decode(ExecutionLog.self, from: lineData) { try await line(entry) }
            }
        }
    }

    // MARK: Nodes

    /// Reputations of one node (an ID or prefix), or of every node.
    public func reputation(node: String? = nil) async throws -> [NodeReputation] {
        let path = node.map { "/api/v1/orchestrator/nodes/\(escape($0))/reputation" } ?? "/api/v1/orchestrator/reputation"
        let response: ListResponse<NodeReputation> = try await get(path)
        return response.items
    }

    public func nodes() async throws -> [NodeState] {
        let response: ListNodesResponse = try await get("/api/v1/orchestrator/nodes")
        return response.nodes
    }

    /// Approves, rejects or deletes a node (`action`), by ID or unique prefix.
    public func decide(node id: String, action: String, message: String = "") async throws -> PutNodeResponse {
        try await send(.PUT, "/api/v1/orchestrator/nodes/\(escape(id))", body: PutNodeRequest(action: action, message: message))
    }

    // MARK: Downloads

    /// Downloads bytes from a URL (a result bundle), up to `limit`.
    public func download(_ url: String, limit: Int = 8 << 30) async throws -> [UInt8] {
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        let response = try await execute(request, timeout: .minutes(30))
        guard response.status == .ok else { throw try await Self.error(from: response) }
        let body = try await response.body.collect(upTo: limit)
        return Array(body.readableBytesView)
    }

    // MARK: Plumbing

    func get<T: Decodable>(_ path: String, timeout: TimeAmount? = nil) async throws -> T {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = .GET
        return try await decode(try await execute(request, timeout: timeout ?? self.timeout))
    }

    func send<Body: Encodable, T: Decodable>(_ method: HTTPMethod, _ path: String, body: Body?, timeout: TimeAmount? = nil) async throws -> T {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: try JSONEncoder().encode(body)))
        }
        return try await decode(try await execute(request, timeout: timeout ?? self.timeout))
    }

    func execute(_ request: HTTPClientRequest, timeout: TimeAmount) async throws -> HTTPClientResponse {
        var request = request
        if let authorization { request.headers.replaceOrAdd(name: "Authorization", value: authorization) }
        if let nodeSigner {
            let target = String(request.url.dropFirst(baseURL.count))
            request.headers.replaceOrAdd(name: "Authorization", value: try nodeSigner.authorization(method: request.method.rawValue, target: target))
        }
        // The pinned certificate or authority is this API's; other URLs (a result bundle
        // elsewhere) use the system's roots.
        if let tls, baseURL.hasPrefix("https://"), request.url.hasPrefix(baseURL) {
            request.tlsConfiguration = try await TLSTrust.shared.configuration(for: tls, baseURL: baseURL)
        }
        do {
            return try await http.execute(request, timeout: timeout)
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            throw CodError(.timeout, "the Cod API at \(baseURL) did not answer in time")
        } catch let error as CodError {
            throw error
        } catch {
            if let failure = Self.tlsFailure(error, baseURL: baseURL) { throw failure }
            throw CodError(
                .unavailable, "cannot reach the Cod API at \(baseURL): \(Self.describe(error))",
                hint: "start a local cluster with `cod devstack`, or point the CLI elsewhere with --api-host/--api-port or COD_API_HOST/COD_API_PORT")
        }
    }

    func decode<T: Decodable>(_ response: HTTPClientResponse) async throws -> T {
        guard (200..<300).contains(response.status.code) else { throw try await Self.error(from: response) }
        let body = try await response.body.collect(upTo: 1 << 30)
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer: body))
        } catch {
            throw CodError(.internalError, "the server's answer could not be read: \(error)")
        }
    }

    static func error(from response: HTTPClientResponse) async throws -> CodError {
        let body = try await response.body.collect(upTo: 1 << 20)
        if let decoded = try? JSONDecoder().decode(ErrorResponse.self, from: Data(buffer: body)) {
            return CodError(.named(decoded.code, status: Int(response.status.code)), decoded.message, hint: decoded.hint)
        }
        let text = String(buffer: body)
        return CodError(
            .named("HTTP\(response.status.code)", status: Int(response.status.code)),
            "the server answered \(response.status.code)\(text.isEmpty ? "" : ": \(text)")")
    }

    /// What a failed TLS handshake means, in words; nil for other failures.
    static func tlsFailure(_ error: any Error, baseURL: String = "") -> CodError? {
        let text = String(describing: error)
        if text.contains("WRONG_VERSION_NUMBER") || text.contains("HTTP_REQUEST") || text.contains("PACKET_LENGTH_TOO_LONG") {
            return CodError(
                .tlsNotOffered, "the server at \(baseURL) does not speak TLS",
                hint: "use http:// (drop --tls, --tls-ca and --tls-fingerprint), or start the server with --tls-cert/--tls-key or --tls-self-signed")
        }
        if text.contains("CERTIFICATE_VERIFY_FAILED") || text.contains("failedToValidateHostname") || text.contains("unableToValidateCertificate") {
            let which = text.contains("Hostname") ? "does not name the host in \(baseURL)" : "is not one this client trusts"
            return CodError(
                .tlsCertificateRefused, "the TLS certificate of the server at \(baseURL) \(which)",
                hint: "pass --tls-ca FILE (the server's certificate or its authority; env COD_TLS_CA) or --tls-fingerprint SHA256:... (env COD_TLS_FINGERPRINT)")
        }
        guard error is NIOSSLError || error is BoringSSLError else { return nil }
        return CodError(.unavailable, "the TLS handshake with \(baseURL) failed: \(text)")
    }

    static func describe(_ error: any Error) -> String {
        let text = String(describing: error)
        if text.contains("connectTimeout") || text.contains("connectionRefused") || text.contains("Connection refused") {
            return "connection refused"
        }
        return text
    }

    func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+/?#"))) ?? text
    }
}

/// How a client proves who it is: an API key as a bearer token, or a user
/// name and password (HTTP Basic).
public enum ClientCredential: Sendable, Hashable {
    case apiKey(String)
    case password(user: String, password: String)

    public var header: String {
        switch self {
        case .apiKey(let key): return "Bearer \(key)"
        case .password(let user, let password): return "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
        }
    }
}

/// How a compute node signs its HTTP requests to the orchestrator with its key.
public struct NodeRequestSigner: Sendable {
    let nodeID: String
    let sign: @Sendable (Data) throws -> String
    let now: @Sendable () -> Int64

    /// `sign` returns the base64 signature of its argument; `now` the time in Unix seconds.
    public init(nodeID: String, now: @escaping @Sendable () -> Int64, sign: @escaping @Sendable (Data) throws -> String) {
        self.nodeID = nodeID
        self.sign = sign
        self.now = now
    }

    func authorization(method: String, target: String) throws -> String {
        let time = now()
        let signature = try sign(NodeIdentity.requestPayload(method: method, target: target, nodeID: nodeID, time: time))
        return "\(NodeIdentity.requestScheme) \(nodeID):\(time):\(signature)"
    }
}

extension CodClient {
    /// This client, signing every request as a compute node.
    public func signing(as signer: NodeRequestSigner) -> CodClient {
        var client = self
        client.nodeSigner = signer
        return client
    }

    /// This client, presenting a compute node an upload grant from the orchestrator instead of
    /// the user's credentials (which stay between the user and the orchestrator).
    public func presenting(_ grant: UploadGrantResponse) -> CodClient {
        var client = self
        client.authorization = UploadGrant.scheme + " " + grant.token
        return client
    }
}
