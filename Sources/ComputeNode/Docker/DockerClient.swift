import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// A client for the Docker Engine HTTP API over a Unix socket. It speaks API version 1.41,
/// which both dockerd and podman's compatible service answer.
struct DockerClient: Sendable {
    /// The socket path.
    let socketPath: String
    let http: HTTPClient
    /// Set after ``ping`` finds podman: its compatible `/wait` polls every 250 ms, so waits use
    /// podman's own endpoint with a short interval instead.
    var isPodman = false
    static let apiVersion = "v1.41"

    /// Where the Docker socket is: `DOCKER_HOST` (a `unix://` URL) when set, as docker's own CLI
    /// reads it, else `/var/run/docker.sock`.
    static func defaultSocket(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let host = environment["DOCKER_HOST"], !host.isEmpty { return socketPath(fromHost: host) }
        return "/var/run/docker.sock"
    }

    /// The socket path in a `unix:///path` URL or a bare path.
    static func socketPath(fromHost host: String) -> String {
        host.hasPrefix("unix://") ? String(host.dropFirst("unix://".count)) : host
    }

    struct APIError: Error, CustomStringConvertible {
        let status: Int
        let message: String
        var description: String { "Docker API answered \(status): \(message)" }
    }

    private func url(_ path: String, query: [(String, String)] = []) throws -> String {
        var uri = path.hasPrefix("/v") ? path : "/\(Self.apiVersion)\(path)"
        if !query.isEmpty {
            var components = URLComponents()
            components.queryItems = query.map { URLQueryItem(name: $0.0, value: $0.1) }
            // `+` is literal in URLComponents but a space to servers; encode it.
            uri += "?" + (components.percentEncodedQuery ?? "").replacingOccurrences(of: "+", with: "%2B")
        }
        guard let url = URL(httpURLWithSocketPath: socketPath, uri: uri) else {
            throw APIError(status: 0, message: "socket path \(socketPath) cannot be addressed")
        }
        return url.absoluteString
    }

    /// A request to the API; the Host header is required by HTTP/1.1 servers even on a socket.
    private func request(_ method: HTTPMethod, _ path: String, query: [(String, String)] = []) throws -> HTTPClientRequest {
        var request = HTTPClientRequest(url: try url(path, query: query))
        request.method = method
        request.headers.replaceOrAdd(name: "Host", value: "docker")
        return request
    }

    /// Sends a request and returns the status and the whole body (bounded).
    func call(
        _ method: HTTPMethod, _ path: String, query: [(String, String)] = [], json: Data? = nil,
        timeout: TimeAmount = .seconds(60), limit: Int = 16 << 20
    ) async throws -> (status: Int, body: Data) {
        var request = try request(method, path, query: query)
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: json))
        }
        let response = try await http.execute(request, timeout: timeout)
        let body = try await response.body.collect(upTo: limit)
        return (Int(response.status.code), Data(buffer: body))
    }

    /// Like ``call`` but throws unless the status is 2xx.
    @discardableResult
    func expect(
        _ method: HTTPMethod, _ path: String, query: [(String, String)] = [], json: Data? = nil,
        timeout: TimeAmount = .seconds(60)
    ) async throws -> Data {
        let (status, body) = try await call(method, path, query: query, json: json, timeout: timeout)
        guard (200..<300).contains(status) else { throw APIError(status: status, message: Self.message(body)) }
        return body
    }

    /// The `message` of a Docker error body, or the body itself.
    static func message(_ body: Data) -> String {
        if let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
            let message = object["message"] as? String
        {
            return message
        }
        return String(decoding: body.prefix(500), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Whether a daemon answers on the socket, and its version.
    func ping() async throws -> String {
        // A busy daemon can take seconds to describe itself.
        let body = try await expect(.GET, "/version", timeout: .seconds(15))
        let object = try JSONSerialization.jsonObject(with: body) as? [String: Any]
        let version = object?["Version"] as? String ?? "unknown"
        let components = (object?["Components"] as? [[String: Any]])?.compactMap { $0["Name"] as? String } ?? []
        let product = components.contains { $0.lowercased().contains("podman") } ? "podman" : "docker"
        return "\(product) \(version)"
    }

    /// Whether the image is present locally.
    func hasImage(_ image: String) async throws -> Bool {
        let (status, body) = try await call(.GET, "/images/\(Self.pathEscape(image))/json")
        if status == 404 { return false }
        guard (200..<300).contains(status) else { throw APIError(status: status, message: Self.message(body)) }
        return true
    }

    /// Pulls an image, reading the progress stream to its end; an error in the stream throws.
    func pull(_ image: String) async throws {
        let (name, tag) = Self.splitReference(image)
        let request = try request(.POST, "/images/create", query: [("fromImage", name), ("tag", tag)])
        let response = try await http.execute(request, timeout: .seconds(1800))
        var lastError: String?
        var pending = Data()
        for try await chunk in response.body {
            pending.append(Data(buffer: chunk))
            while let newline = pending.firstIndex(of: 0x0A) {
                let line = pending[pending.startIndex..<newline]
                pending = Data(pending[(newline + 1)...])
                if let object = try? JSONSerialization.jsonObject(with: line) as? [String: Any] {
                    // Progress lines carry `error`; a refused request is one `message`.
                    if let error = object["error"] as? String ?? (object["errorDetail"] as? [String: Any])?["message"] as? String {
                        lastError = error
                    } else if response.status.code >= 300, let message = object["message"] as? String {
                        lastError = message
                    }
                }
            }
        }
        if let object = try? JSONSerialization.jsonObject(with: pending) as? [String: Any] {
            if let error = object["error"] as? String { lastError = error }
            if response.status.code >= 300, let message = object["message"] as? String { lastError = message }
        }
        if response.status.code >= 300 || lastError != nil {
            throw APIError(status: Int(response.status.code), message: lastError ?? "pull failed")
        }
    }

    /// Creates a container; returns its ID.
    func createContainer(name: String, config: [String: Any]) async throws -> String {
        let json = try JSONSerialization.data(withJSONObject: config)
        let body = try await expect(.POST, "/containers/create", query: [("name", name)], json: json)
        guard let object = try JSONSerialization.jsonObject(with: body) as? [String: Any], let id = object["Id"] as? String else {
            throw APIError(status: 200, message: "container create answered without an Id")
        }
        return id
    }

    func start(_ id: String) async throws {
        try await expect(.POST, "/containers/\(id)/start")
    }

    /// Waits for the container to stop and returns its exit code.
    func wait(_ id: String) async throws -> Int {
        if isPodman {
            let body = try await expect(.POST, "/v4.0.0/libpod/containers/\(id)/wait", query: [("interval", "10ms")], timeout: .hours(24 * 365))
            if let code = Int(String(decoding: body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) { return code }
        }
        let body = try await expect(.POST, "/containers/\(id)/wait", timeout: .hours(24 * 365))
        let object = try JSONSerialization.jsonObject(with: body) as? [String: Any]
        return (object?["StatusCode"] as? NSNumber)?.intValue ?? -1
    }

    /// The container's `State` object.
    func state(_ id: String) async throws -> [String: Any] {
        let body = try await expect(.GET, "/containers/\(id)/json")
        let object = try JSONSerialization.jsonObject(with: body) as? [String: Any]
        return object?["State"] as? [String: Any] ?? [:]
    }

    func kill(_ id: String) async {
        _ = try? await call(.POST, "/containers/\(id)/kill", query: [("signal", "KILL")], timeout: .seconds(30))
    }

    /// Removes a container, running or not, with its anonymous volumes.
    func remove(_ id: String) async throws {
        let (status, body) = try await call(.DELETE, "/containers/\(id)", query: [("force", "true"), ("v", "true")], timeout: .seconds(60))
        guard (200..<300).contains(status) || status == 404 else { throw APIError(status: status, message: Self.message(body)) }
    }

    /// IDs of the containers (running or not) that carry `label=value`.
    func containers(label: String, value: String) async throws -> [String] {
        let filters = try JSONSerialization.data(withJSONObject: ["label": ["\(label)=\(value)"]])
        let body = try await expect(.GET, "/containers/json", query: [("all", "true"), ("filters", String(decoding: filters, as: UTF8.self))])
        let list = try JSONSerialization.jsonObject(with: body) as? [[String: Any]] ?? []
        return list.compactMap { $0["Id"] as? String }
    }

    /// Follows a container's output until it stops (or reads what there is, unless `follow`), demultiplexing Docker's stream framing into
    /// `stdout` and `stderr` as it arrives.
    func followLogs(_ id: String, into sink: LogSink, follow: Bool = true) async throws {
        let request = try request(.GET, "/containers/\(id)/logs", query: [("follow", String(follow)), ("stdout", "true"), ("stderr", "true")])
        let response = try await http.execute(request, timeout: .hours(24 * 365))
        guard response.status.code < 300 else {
            let body = try await response.body.collect(upTo: 1 << 20)
            throw APIError(status: Int(response.status.code), message: Self.message(Data(buffer: body)))
        }
        var demuxer = DockerStreamDemuxer()
        for try await chunk in response.body {
            for frame in demuxer.feed(Array(chunk.readableBytesView)) {
                try sink.write(frame.bytes, toStderr: frame.stream == 2)
            }
        }
        if let rest = demuxer.finish() { try sink.write(rest, toStderr: false) }
    }

    /// `name` and `tag` of an image reference (`tag` is `latest` when none is given; a digest
    /// stays in the name).
    static func splitReference(_ image: String) -> (String, String) {
        if image.contains("@") { return (image, "") }
        let lastSlash = image.lastIndex(of: "/") ?? image.startIndex
        if let colon = image[lastSlash...].lastIndex(of: ":") {
            return (String(image[..<colon]), String(image[image.index(after: colon)...]))
        }
        return (image, "latest")
    }

    /// An image reference as one path segment (slashes kept: the API routes them).
    static func pathEscape(_ image: String) -> String {
        image.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? image
    }
}

/// Splits Docker's multiplexed log stream (8-byte headers: stream, 3 zero bytes, big-endian
/// length) into frames, across chunk boundaries. A stream that does not start with a valid header
/// (a TTY container) is passed through as stdout.
struct DockerStreamDemuxer {
    struct Frame {
        let stream: UInt8
        let bytes: [UInt8]
    }

    private var buffer: [UInt8] = []
    private var raw: Bool?

    mutating func feed(_ bytes: [UInt8]) -> [Frame] {
        buffer += bytes
        if raw == nil, buffer.count >= 4 {
            raw = !(buffer[0] <= 2 && buffer[1] == 0 && buffer[2] == 0 && buffer[3] == 0)
        }
        if raw == true {
            defer { buffer.removeAll() }
            return buffer.isEmpty ? [] : [Frame(stream: 1, bytes: buffer)]
        }
        var frames: [Frame] = []
        var offset = 0
        while buffer.count - offset >= 8 {
            let length = Int(buffer[offset + 4]) << 24 | Int(buffer[offset + 5]) << 16 | Int(buffer[offset + 6]) << 8 | Int(buffer[offset + 7])
            guard buffer.count - offset - 8 >= length else { break }
            frames.append(Frame(stream: buffer[offset], bytes: Array(buffer[(offset + 8)..<(offset + 8 + length)])))
            offset += 8 + length
        }
        buffer.removeFirst(offset)
        return frames
    }

    /// Bytes left over at the end that never formed a frame.
    func finish() -> [UInt8]? {
        buffer.isEmpty ? nil : buffer
    }
}

/// An execution's two log files, written from a log stream until closed; writes after that are
/// dropped, so a stream being torn down cannot touch files another reader has rewritten.
final class LogSink: @unchecked Sendable {
    private let lock = NSLock()
    private let stdout: FileHandle
    private let stderr: FileHandle
    private var closed = false

    init(stdout: URL, stderr: URL, truncate: Bool = false) throws {
        self.stdout = try FileHandle(forWritingTo: stdout)
        self.stderr = try FileHandle(forWritingTo: stderr)
        if truncate {
            try self.stdout.truncate(atOffset: 0)
            try self.stderr.truncate(atOffset: 0)
        }
    }

    func write(_ bytes: [UInt8], toStderr: Bool) throws {
        try lock.withLock {
            guard !closed else { return }
            try (toStderr ? stderr : stdout).write(contentsOf: bytes)
        }
    }

    func close() {
        lock.withLock {
            guard !closed else { return }
            closed = true
            try? stdout.close()
            try? stderr.close()
        }
    }
}
