import AsyncHTTPClient
import Foundation
import Models
import NIOCore

extension CodClient {
    /// A compute node uploads an execution's result bundle (`local` publisher), which the
    /// orchestrator checks against `sha256` and keeps. The client must sign as the node.
    public func uploadResultBundle(_ data: Data, executionID: String, sha256: String) async throws {
        var request = HTTPClientRequest(url: baseURL + "/api/v1/compute/results/\(escape(executionID))")
        request.method = .PUT
        request.headers.add(name: "X-Cod-SHA256", value: sha256)
        request.headers.add(name: "Content-Type", value: "application/gzip")
        request.body = .bytes(ByteBuffer(bytes: data))
        let _: [String: String] = try await decode(try await execute(request, timeout: .seconds(300)))
    }

    /// A single-use challenge for a compute node's hello to sign (open: it proves nothing by
    /// itself, and expires within a minute).
    public func nodeChallenge() async throws -> String {
        let response: [String: String] = try await get("/api/v1/compute/challenge")
        guard let challenge = response["Challenge"], !challenge.isEmpty else {
            throw CodError(.internalError, "the orchestrator sent no challenge")
        }
        return challenge
    }
}
