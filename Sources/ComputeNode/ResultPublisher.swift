import APIClient
import BlockStore
import ContentAddressing
import Foundation
import Models
import Wire

/// Sends an execution's results to the orchestrator, which keeps them so clients never need
/// to reach this node: a result DAG as a CAR it verifies and pins, or a result bundle.
/// Retries while the orchestrator is unreachable or failing; an answer that says the request
/// itself is wrong is final.
struct ResultPublisher: Sendable {
    let client: CodClient
    let nodeID: String

    /// Uploads the DAG and checks the orchestrator stored that very root.
    func publish(dag car: URL, expecting cid: CID, executionID: String) async throws {
        try await retryingWhileUnreachable {
            // Pinned as this execution's result: released when its job is garbage-collected.
            let stored = try await client.uploadCAR(car, pin: true, holder: PinHolder.result(of: executionID), timeout: .seconds(300))
            guard stored.roots.first == cid.description else {
                throw CodError(.internalError, "orchestrator stored \(stored.roots) instead of \(cid)")
            }
        }
    }

    func publish(bundle data: Data, executionID: String, sha256: String) async throws {
        try await retryingWhileUnreachable {
            try await client.uploadResultBundle(data, executionID: executionID, sha256: sha256)
        }
    }

    /// Runs `body` with exponential backoff (8 tries) while the failure may pass.
    private func retryingWhileUnreachable(_ body: () async throws -> Void) async throws {
        var attempt = 0
        while true {
            attempt += 1
            do {
                try await body()
                return
            } catch let error as CodError where error.code.httpStatus < 500 {
                throw error
            } catch {
                if attempt >= 8 { throw error }
                try await Task.sleep(for: .milliseconds(200 * (1 << min(attempt, 5))))
            }
        }
    }
}
