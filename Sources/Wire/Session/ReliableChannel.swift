public import Models

/// One side's half of the reliable node link, as a value: numbering, acknowledging, resuming
/// and replaying messages. It does no I/O; each call returns what its owner must do.
///
/// Reliable messages are numbered and kept until the peer acknowledges them, then resent after
/// any reconnect; the peer's numbered messages are acknowledged once handled, and a replay of
/// one already handled is dropped. The state is what a restarted process needs to carry on the
/// same session (``Snapshot``).
public struct ReliableChannel: Sendable {
    /// What the owner does next, in order.
    public enum Directive: Sendable {
        /// Send this envelope on the current connection.
        case write(Envelope)
        /// Save ``snapshot`` (atomically) before going on: reports must outlive the process.
        case persist
    }

    /// What to make of a numbered message from the peer.
    public enum Inbound: Sendable, Equatable {
        /// New: handle it (its acknowledgement is among the directives).
        case handle
        /// A replay of a message already handled: ignore it.
        case drop
    }

    public private(set) var session: String
    public private(set) var nextSeq: UInt64
    /// The last of the peer's numbered messages handled with every one before it: what is
    /// acknowledged.
    public private(set) var lastReceived: UInt64
    /// Messages handled ahead of a gap (the peer's senders can write out of order). They stay
    /// unacknowledged until the gap is filled, and are dropped when replayed.
    public private(set) var receivedAhead: Set<UInt64> = []
    /// The most messages held ahead of a gap.
    static let maxAhead = 10_000
    /// Sent and not yet acknowledged, oldest first.
    public private(set) var pending: [(seq: UInt64, message: NodeMessage)]
    /// The session was resumed from a previous process's saved state and the peer has not
    /// welcomed this process yet.
    public private(set) var resumed: Bool
    /// Whether the peer welcomed the current connection.
    public private(set) var connected = false

    /// A fresh session.
    public init(session: String) {
        self.session = session
        nextSeq = 1
        lastReceived = 0
        pending = []
        resumed = false
    }

    /// Resumes the session a previous process saved.
    public init(resuming saved: Snapshot) {
        session = saved.session
        nextSeq = saved.nextSeq
        lastReceived = saved.lastReceived
        receivedAhead = Set(saved.receivedAhead ?? [])
        pending = saved.pending.map { ($0.seq, $0.message) }
        resumed = true
    }

    /// Numbers and keeps a message that must arrive; written now when connected, else on the
    /// next welcome.
    public mutating func send(_ message: NodeMessage) -> [Directive] {
        let seq = nextSeq
        nextSeq += 1
        pending.append((seq, message))
        return connected ? [.persist, .write(Envelope(seq: seq, ack: lastReceived, message: message))] : [.persist]
    }

    /// An envelope that needs no delivery guarantee (heartbeats, live logs), carrying the ack.
    public func unreliable(_ message: NodeMessage) -> Envelope {
        Envelope(ack: lastReceived, message: message)
    }

    /// The peer acknowledged everything up to `ack`.
    public mutating func acknowledged(_ ack: UInt64) -> [Directive] {
        guard ack > 0, pending.contains(where: { $0.seq <= ack }) else { return [] }
        pending.removeAll { $0.seq <= ack }
        return [.persist]
    }

    /// The peer welcomed this connection, having handled our messages up to `lastHandled`:
    /// the rest is replayed, in order.
    public mutating func welcomed(lastHandled: UInt64) -> [Directive] {
        connected = true
        pending.removeAll { $0.seq <= lastHandled }
        resumed = false
        return [.persist] + pending.map { .write(Envelope(seq: $0.seq, ack: lastReceived, message: $0.message)) }
    }

    /// A numbered message from the peer arrived.
    /// The acknowledgement covers only what arrived without a gap: a message that overtook an
    /// earlier one is handled, but acknowledging it would tell the peer the earlier one arrived
    /// too, and its replay would then be dropped (the orchestrator's writers can send two
    /// numbered messages out of order; that lost a run message and left its job queued).
    public mutating func received(seq: UInt64) -> (Inbound, [Directive]) {
        guard seq > lastReceived, !receivedAhead.contains(seq) else { return (.drop, []) }
        if seq == lastReceived + 1 {
            lastReceived = seq
            while receivedAhead.remove(lastReceived + 1) != nil { lastReceived += 1 }
        } else {
            guard receivedAhead.count < Self.maxAhead else { return (.drop, []) }
            receivedAhead.insert(seq)
        }
        return (.handle, [.persist, .write(Envelope(ack: lastReceived, message: .ack))])
    }

    /// The connection ended; messages wait for the next welcome.
    public mutating func disconnected() {
        connected = false
    }

    /// Executions whose end is among the unacknowledged reports (a resumed process tells the
    /// peer, which would otherwise think them lost).
    public var reportedExecutions: [String] {
        Array(Set(pending.compactMap { Self.endedExecutionID(of: $0.message) })).sorted()
    }

    /// The execution a report ends, if it ends one (a progress report does not: the work it
    /// speaks of died with the process).
    public static func endedExecutionID(of message: NodeMessage) -> String? {
        switch message {
        case .bidResult(let bid) where !bid.accepted: return bid.executionID
        case .runResult(let result): return result.executionID
        case .computeError(let failure): return failure.executionID
        default: return nil
        }
    }

    public var snapshot: Snapshot {
        Snapshot(
            session: session, nextSeq: nextSeq, lastReceived: lastReceived,
            pending: pending.map { Snapshot.Item(seq: $0.seq, message: $0.message) },
            receivedAhead: receivedAhead.isEmpty ? nil : receivedAhead.sorted())
    }

    /// What a process keeps on disk so the next one can finish delivering its reports.
    public struct Snapshot: Codable, Sendable {
        public struct Item: Codable, Sendable {
            public var seq: UInt64
            public var message: NodeMessage
        }

        public var session: String
        public var nextSeq: UInt64
        public var lastReceived: UInt64
        public var pending: [Item]
        public var receivedAhead: [UInt64]?

        enum CodingKeys: String, CodingKey {
            // `lastOrchestratorSeq`: the name files written by earlier versions use.
            case session, nextSeq, lastReceived = "lastOrchestratorSeq", pending, receivedAhead
        }
    }
}
