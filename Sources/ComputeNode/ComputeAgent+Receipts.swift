import ContentAddressing
import Foundation
import Models
import Wire

/// Signed receipts: for every execution it ran, the node signs (with its key, in a DSSE
/// envelope) what ran, on what, what came out and what it used, chained to its previous
/// receipt. The receipt travels in the report, so the outbox delivers it exactly as signed,
/// once, across restarts.
extension ComputeAgent {
    /// Where the CID of the newest receipt is kept.
    var receiptHeadFile: URL { config.dataDirectory.appendingPathComponent("receipt-head") }

    /// The newest receipt's CID: the head file, moved on past any receipts the outbox holds
    /// that were saved but not yet recorded there (the process died between the two).
    static func loadReceiptHead(file: URL, outbox: ReliableChannel.Snapshot?) -> String {
        var head = (try? String(contentsOf: file, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        let receipts = (outbox?.pending ?? []).sorted { $0.seq < $1.seq }.compactMap { Self.receipt(in: $0.message) }
        var moved = true
        while moved {
            moved = false
            for text in receipts {
                guard let bytes = Data(base64Encoded: text), let envelope = try? DSSEEnvelope.decode(bytes),
                      let payload = Data(base64Encoded: envelope.payload),
                      let receipt = try? JSONDecoder().decode(ExecutionReceipt.self, from: payload), receipt.prev == head
                else { continue }
                head = Self.cid(of: bytes)
                moved = true
            }
        }
        return head
    }

    static func receipt(in message: NodeMessage) -> String? {
        switch message {
        case .runResult(let result): return result.receipt
        case .computeError(let error): return error.receipt
        default: return nil
        }
    }

    /// The raw CID of `bytes` (how receipts and task specs are named).
    static func cid(of bytes: Data) -> String {
        CID(v1: CID.raw, multihash: .sha256(Array(bytes))).description
    }

    /// `report` with this node's signed receipt for the execution, chained to the last one.
    func signed(_ report: NodeMessage, execution: Execution, job: Job, started: Date, finished: Date, usage: Usage) -> NodeMessage {
        let outcome: ExecutionReceipt.Outcome
        switch report {
        case .runResult(let result):
            outcome = .init(state: "Completed", exitCode: result.output.exitCode, resultCID: result.resultCID, error: nil)
        case .computeError(let error):
            outcome = .init(state: "Failed", exitCode: error.output?.exitCode, resultCID: nil, error: String(error.message.prefix(1000)))
        default:
            return report
        }
        do {
            let (engine, artifact) = ArtifactIdentity.of(job.task)
            let inputs = job.task.inputSources.map { input in
                ExecutionReceipt.Input(target: input.target, cid: input.source.params["CID"]?.stringValue ?? input.source.normalizedType)
            }
            let receipt = ExecutionReceipt(
                executionID: execution.id, jobID: execution.jobID, jobVersion: execution.jobVersion, partitionIndex: execution.partitionIndex,
                nodeID: nodeID, ran: Self.cid(of: try CanonicalJSON.encode(job.task)), inputs: inputs,
                engine: .init(type: engine, artifact: artifact), out: outcome,
                usage: .init(usage),
                startedAt: RFC3339.format(nanos: Int64(started.timeIntervalSince1970 * 1e9)),
                finishedAt: RFC3339.format(nanos: Int64(finished.timeIntervalSince1970 * 1e9)), prev: receiptHead)
            let bytes = try DSSEEnvelope.sign(payload: try receipt.payload(), type: ExecutionReceipt.payloadType, keyid: nodeID, sign: signer.sign)
                .encoded()
            pendingReceiptHead = Self.cid(of: bytes)
            switch report {
            case .runResult(var result):
                result.receipt = bytes.base64EncodedString()
                return .runResult(result)
            case .computeError(var error):
                error.receipt = bytes.base64EncodedString()
                return .computeError(error)
            default:
                return report
            }
        } catch {
            logger.error("cannot sign the receipt of execution \(execution.id): \(error); it is reported without one")
            return report
        }
    }

    /// Moves the chain on once the report holding the new receipt is in the saved outbox.
    func commitReceiptHead() {
        guard let next = pendingReceiptHead else { return }
        pendingReceiptHead = nil
        receiptHead = next
        do {
            try Data((next + "\n").utf8).write(to: receiptHeadFile, options: .atomic)
        } catch {
            logger.error("cannot record the newest receipt in \(receiptHeadFile.path): \(error)")
        }
    }
}
