import ContentAddressing
import Foundation
import HummingbirdWebSocket
import Logging
import Models
import StateStore
import Wire

extension Orchestrator {
    /// Serves one compute node's WebSocket: handshake, replay of unacknowledged messages,
    /// then inbound reports and outbound work until the connection closes.
    func serveNode(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async throws {
        var nodeID: String?
        let connectionID = UUID()
        let (stream, continuation) = AsyncStream<String>.makeStream()
        defer { continuation.finish() }
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for try await message in inbound.messages(maxSize: NodeMessage.maxFrameBytes) {
                    guard case .text(let text) = message else { continue }
                    if let nodeID {
                        try await self.receive(text, from: nodeID)
                        continue
                    }
                    // Before the token is checked, a stranger gets no more than a hello's worth.
                    guard text.utf8.count <= NodeMessage.maxHelloBytes else {
                        try await outbound.write(.text(NodeHub.encode(Envelope(message: .reject(.init(
                            reason: "the hello is larger than \(NodeMessage.maxHelloBytes) bytes"))))))
                        break
                    }
                    // The first message is the handshake; nothing else is accepted before it.
                    guard let hello = try await self.handshake(text, outbound: outbound, connectionID: connectionID, continuation: continuation)
                    else { break }
                    nodeID = hello
                    group.addTask {
                        for await text in stream { try await outbound.write(.text(text)) }
                        // The hub ended the stream (the node was rejected, deleted or replaced
                        // by a newer connection): close the socket too.
                        try? await outbound.close(.normalClosure, reason: "closed by the orchestrator")
                    }
                }
                group.cancelAll()
            }
        } catch {
            logger.debug("node connection ended: \(error)")
        }
        if let nodeID {
            await hub.unregister(nodeID: nodeID, connection: connectionID)
            logger.info("compute node \(shortID(nodeID)) disconnected")
        }
    }

    /// The node's info with its price list's CID computed here (a node's own claim of it is
    /// not taken): the raw CID of the list's canonical JSON.
    static func naming(_ info: NodeInfo) -> NodeInfo {
        var info = info
        info.computeNodeInfo.priceListCID = info.computeNodeInfo.priceList.flatMap { list in
            (try? CanonicalJSON.encode(list)).map { CID(v1: CID.raw, multihash: .sha256(Array($0))).description }
        }
        return info
    }

    /// Checks the hello, records the node, sends the welcome and any unacknowledged messages.
    /// Returns the node ID, or nil when the node was refused.
    private func handshake(
        _ first: String, outbound: WebSocketOutboundWriter, connectionID: UUID, continuation: AsyncStream<String>.Continuation
    ) async throws -> String? {
        let parts = first.split(separator: "\u{0}", maxSplits: 1).map(String.init)
        guard let helloData = parts.first?.data(using: .utf8),
            let envelope = try? JSONDecoder().decode(Envelope.self, from: helloData),
            case .hello(let hello) = envelope.message, !hello.info.nodeID.isEmpty
        else {
            try await outbound.write(.text(NodeHub.encode(Envelope(message: .reject(.init(reason: "expected a hello message"))))))
            return nil
        }
        guard let versions = hello.versionRange, let version = NodeMessage.negotiate(versions) else {
            let spoken = hello.protocolVersions.map { "\($0)" } ?? "?"
            let reason = "node protocol mismatch: the node speaks versions \(spoken), this orchestrator \(supportedNodeProtocolVersions.lowerBound)-\(supportedNodeProtocolVersions.upperBound); run the same cod release on both (cod version)"
            logger.warning("refused node \(hello.info.nodeID): \(reason)")
            try await outbound.write(.text(NodeHub.encode(Envelope(message: .reject(.init(reason: reason))))))
            return nil
        }
        let session = parts.count > 1 ? parts[1] : UUID().uuidString
        let nodeID = hello.info.nodeID
        if let refusal = try await verifyIdentity(hello, session: session) {
            logger.warning("refused node \(nodeID): \(refusal)")
            try await outbound.write(.text(NodeHub.encode(Envelope(message: .reject(.init(reason: refusal))))))
            return nil
        }
        let handshake = try await database.handshake(
            info: Self.naming(hello.info), session: session, lastOrchestratorSeq: hello.lastOrchestratorSeq,
            activeExecutions: Set(hello.activeExecutions), now: nowNanos(),
            newMembership: config.manualApproval ? .pending : .approved, resumed: hello.resumed ?? false,
            reportedExecutions: Set(hello.reportedExecutions ?? []))
        if handshake.membership == .rejected {
            logger.warning("refused node \(shortID(nodeID)): rejected by an administrator")
            let reason = "this node (\(nodeID)) was rejected by the cluster's administrator; they can approve it with cod node approve \(shortID(nodeID))"
            try await outbound.write(.text(NodeHub.encode(Envelope(message: .reject(.init(reason: reason))))))
            return nil
        }
        if handshake.membership == .pending {
            logger.notice("node \(shortID(nodeID)) is waiting for approval: cod node approve \(shortID(nodeID))")
        }
        logger.info("compute node \(shortID(nodeID)) connected (engines: \(hello.info.computeNodeInfo.executionEngines.joined(separator: ",")))")
        var welcome = NodeMessage.Welcome(
            nodeID: nodeID, lastComputeSeq: handshake.lastComputeSeq,
            heartbeatIntervalMillis: Int(Self.nanos(config.heartbeatInterval) / 1_000_000), protocolVersion: version)
        // Signed, so the node knows it talks to the orchestrator it enrolled with.
        welcome.orchestratorKey = identity.publicKey
        welcome.signature = try identity.sign(NodeIdentity.welcomePayload(nonce: hello.welcomeNonce ?? "", nodeID: nodeID, session: session))
        try await outbound.write(.text(NodeHub.encode(Envelope(message: .welcome(welcome)))))
        for message in handshake.replay {
            try await outbound.write(.text(NodeHub.encode(Envelope(seq: message.seq, message: message.message))))
        }
        await hub.resetAcknowledgement(nodeID: nodeID)
        await hub.register(nodeID: nodeID, connection: connectionID, continuation: continuation)
        if !handshake.affectedJobs.isEmpty { await evaluate(jobIDs: handshake.affectedJobs, trigger: .nodeJoin) }
        // Waiting jobs may fit on the new node, and daemon jobs extend to it.
        let waiting = await waitlist.all + ((try? await database.unfinishedJobIDs(type: .daemon)) ?? [])
        if !waiting.isEmpty { await evaluate(jobIDs: Array(Set(waiting)), trigger: .nodeJoin) }
        return nodeID
    }

    /// Why a hello may not speak for its NodeID, or nil when it may: it must sign a challenge
    /// this orchestrator issued with its key; a NodeID already enrolled takes only the key it
    /// enrolled with; a new one needs the join token and is enrolled with its key.
    private func verifyIdentity(_ hello: NodeMessage.Hello, session: String) async throws -> String? {
        let nodeID = hello.info.nodeID
        guard let keyText = hello.publicKey, let key = NodeIdentity.publicKey(keyText), let challenge = hello.challenge,
              let signature = hello.signature
        else { return "the hello carries no node key: the node runs an older cod; run the same cod release on both (cod version)" }
        guard await challenges.consume(challenge) else { return "the hello's challenge is unknown, used or expired; the node reconnects with a new one" }
        guard NodeIdentity.verify(signature: signature, of: NodeIdentity.helloPayload(challenge: challenge, nodeID: nodeID, session: session), by: key)
        else { return "the hello's signature does not match its key" }
        if let enrolled = try await database.nodeKey(nodeID: nodeID) {
            guard enrolled == keyText else {
                let reason = "a hello named node \(nodeID) but was signed by another key (\(keyText.prefix(12))…) than the one it enrolled with: refused"
                try await database.recordRefusal(nodeID: nodeID, reason: "\(RFC3339.format(nanos: nowNanos())): \(reason)", now: nowNanos())
                return reason
            }
            return nil
        }
        let token: JoinTokenInfo
        switch try await joinTokens.admit(hello.token, now: nowNanos()) {
        case .refused(let reason): return reason
        case .admitted(let admitted): token = admitted
        }
        // A new node's ID is its key's; an ID made before nodes had keys is enrolled with the
        // first key that speaks for it, if the store knows the node.
        let known = try await database.hasNode(nodeID)
        guard nodeID == NodeIdentity.nodeID(publicKey: key) || known else {
            return "node ID \(nodeID) is not derived from the node's key (expected \(NodeIdentity.nodeID(publicKey: key)))"
        }
        let holder = try await database.enroll(nodeID: nodeID, publicKey: keyText, now: nowNanos())
        guard holder == keyText else { return "node \(nodeID) was enrolled by another key a moment ago: refused" }
        try await database.recordJoinTokenUse(id: token.id, now: nowNanos())
        logger.info("node \(shortID(nodeID)) enrolled with join token \(token.id) (\(token.name))")
        return nil
    }

    private func receive(_ text: String, from nodeID: String) async throws {
        let envelope: Envelope
        do {
            envelope = try JSONDecoder().decode(Envelope.self, from: Data(text.utf8))
        } catch {
            logger.warning("undecodable message from node \(shortID(nodeID)): \(error)")
            return
        }
        if envelope.ack > 0, await hub.advanceAcknowledgement(nodeID: nodeID, to: envelope.ack) {
            try await database.acknowledge(nodeID: nodeID, upTo: envelope.ack)
        }
        switch envelope.message {
        case .heartbeat(let heartbeat):
            let before = try await database.heartbeat(
                nodeID: nodeID, capacity: heartbeat.availableCapacity, running: heartbeat.runningExecutions,
                heldRoots: heartbeat.heldRoots, now: nowNanos())
            if before == .suspect {
                logger.notice("node \(shortID(nodeID)) is healthy again")
                // Work that waited while it was suspect may go there now.
                let waiting = await waitlist.all
                if !waiting.isEmpty { await evaluate(jobIDs: waiting, trigger: .nodeJoin) }
            }
        case .ack:
            break
        case .logChunk(let chunk):
            // Only the node running an execution writes its live log.
            guard try await liveLogs.node(of: chunk.executionID, lookup: { try await self.database.execution(id: $0) }) == nodeID else {
                logger.warning("node \(shortID(nodeID)) sent log lines for execution \(chunk.executionID.prefix(40)), which is not its own: dropped")
                return
            }
            if let jobID = await liveLogs.append(chunk) { await watchers.notify(jobID: jobID) }
        case .bidResult, .executionProgress, .runResult, .computeError:
            try await handle(nodeID: nodeID, envelope: envelope)
            // Acknowledge only after the report is committed.
            if envelope.seq > 0 {
                await hub.send(raw: try NodeHub.encode(Envelope(ack: envelope.seq, message: .ack)), to: nodeID)
            }
        case .hello, .welcome, .runExecution, .cancelExecution, .reject:
            logger.warning("unexpected message from node \(shortID(nodeID))")
        }
    }
}
