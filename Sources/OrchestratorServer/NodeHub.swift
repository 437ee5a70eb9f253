import Foundation
import Logging
import Models
import StateStore
import Wire

/// The live WebSocket connections of compute nodes. Messages for a node that is not
/// connected stay in the store's outbox and are replayed when it reconnects.
actor NodeHub {
    private var connections: [String: (id: UUID, continuation: AsyncStream<String>.Continuation)] = [:]
    /// The highest acknowledgement recorded per node, so repeated acks cost no write.
    private var acknowledged: [String: UInt64] = [:]
    let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    func register(nodeID: String, connection: UUID, continuation: AsyncStream<String>.Continuation) {
        connections[nodeID]?.continuation.finish()
        connections[nodeID] = (connection, continuation)
    }

    /// Closes the node's connection (its outbound stream ends and the socket is closed).
    func disconnect(nodeID: String) {
        connections[nodeID]?.continuation.finish()
        connections[nodeID] = nil
    }

    func unregister(nodeID: String, connection: UUID) {
        guard connections[nodeID]?.id == connection else { return }
        connections.removeValue(forKey: nodeID)
    }

    /// True when `seq` acknowledges more than was recorded before; records it.
    func advanceAcknowledgement(nodeID: String, to seq: UInt64) -> Bool {
        guard seq > acknowledged[nodeID, default: 0] else { return false }
        acknowledged[nodeID] = seq
        return true
    }

    /// A new node session starts acknowledging afresh.
    func resetAcknowledgement(nodeID: String) {
        acknowledged[nodeID] = nil
    }

    func send(_ message: OutboxMessage) {
        guard let connection = connections[message.nodeID] else { return }
        guard let text = try? Self.encode(Envelope(seq: message.seq, message: message.message)) else { return }
        connection.continuation.yield(text)
    }

    func send(raw text: String, to nodeID: String) {
        connections[nodeID]?.continuation.yield(text)
    }

    static func encode(_ envelope: Envelope) throws -> String {
        String(decoding: try JSONEncoder().encode(envelope), as: UTF8.self)
    }
}
