import APIClient
import Foundation
import HummingbirdWSClient
import Models
import NIOCore
import NIOSSL
import ServiceLifecycle
import Wire

/// The orchestrator link: one WebSocket at a time, renewed with backoff; over it the hello,
/// the channel's replay, heartbeats, live log chunks and what the orchestrator sends.
extension ComputeAgent {
    /// Connects and reconnects until the service shuts down.
    func stayConnected() async {
        var backoff: Duration = .milliseconds(100)
        var lastTLSFailure = ""
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                do {
                    // Shutdown closes the connection; the loop then ends.
                    try await cancelWhenGracefulShutdown { try await self.connectOnce() }
                    backoff = .milliseconds(100)
                } catch let error as CodError where error.code.isTLSFailure {
                    // The operator must act (a wrong fingerprint or authority): said once, loudly.
                    if error.message != lastTLSFailure {
                        logger.error("cannot trust the orchestrator: \(error.message)")
                        lastTLSFailure = error.message
                    }
                } catch {
                    logger.debug("connection to orchestrator ended: \(error)")
                }
                disconnected()
                if Task.isCancelled || Task.isShuttingDownGracefully { break }
                // Exponential backoff with jitter, capped at 5 s.
                try? await Task.sleep(for: backoff * Double.random(in: 0.8...1.2))
                backoff = min(backoff * 2, .seconds(5))
            }
        } onGracefulShutdown: {
            Task { await self.cancelAll(reason: "compute node shutting down") }
        }
    }

    private func disconnected() {
        channel.disconnected()
        outbound?.finish()
        outbound = nil
    }

    /// The hello, with the executions still running and, for a process that resumed an old
    /// session, the work whose end it still has to report; then the session after a NUL.
    private func helloText(challenge: String) throws -> String {
        var hello = NodeMessage.Hello(
            info: info, token: config.token, lastOrchestratorSeq: channel.lastReceived, activeExecutions: Array(runners.keys))
        if channel.resumed {
            hello.resumed = true
            hello.reportedExecutions = channel.reportedExecutions
        }
        hello.publicKey = signer.publicKey
        hello.challenge = challenge
        hello.signature = try signer.sign(NodeIdentity.helloPayload(challenge: challenge, nodeID: nodeID, session: channel.session))
        welcomeNonce = UUID().uuidString
        hello.welcomeNonce = welcomeNonce
        return try Self.encode(channel.unreliable(.hello(hello))) + "\u{0}" + channel.session
    }

    private func connectOnce() async throws {
        var configuration = WebSocketClientConfiguration(maxFrameSize: NodeMessage.maxFrameBytes)
        let (stream, continuation) = AsyncStream<Envelope>.makeStream()
        outbound = continuation
        // The hello signs a fresh challenge: a recorded hello cannot be replayed.
        let hello = try helloText(challenge: try await publisher.client.nodeChallenge())
        let url = Self.webSocketURL(config.orchestratorURL)
        var tls: TLSConfiguration?
        if url.hasPrefix("wss://") {
            let (trust, serverName) = try await TLSTrust.shared.webSocketConfiguration(
                for: config.orchestratorTLS ?? .systemRoots, baseURL: ContentFetcher.base(config.orchestratorURL))
            tls = trust
            configuration.sniHostname = serverName
        }
        try await WebSocketClient.connect(url: url, configuration: configuration, tlsConfiguration: tls, logger: logger) {
            inbound, writer, _ in
            try await writer.write(.text(hello))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await envelope in stream { try await writer.write(.text(try Self.encode(envelope))) }
                }
                group.addTask { try await self.heartbeats() }
                group.addTask {
                    while true {
                        try await Task.sleep(for: .milliseconds(200))
                        await self.sendLiveLogs()
                    }
                }
                group.addTask {
                    for try await message in inbound.messages(maxSize: NodeMessage.maxFrameBytes) {
                        guard case .text(let text) = message else { continue }
                        try await self.receive(text)
                    }
                }
                try await group.next()
                group.cancelAll()
            }
        }
    }

    /// Heartbeats at the interval the orchestrator asked for (in its welcome). Sleeps are at
    /// most a quarter second, so a welcome that shortens the interval (the node's own default
    /// is 5 s) applies at once, not after the first long sleep (an orchestrator with a short
    /// node timeout took every node for lost before its first beat).
    private func heartbeats() async throws {
        var last = ContinuousClock.now
        while true {
            try await Task.sleep(until: min(last + heartbeatInterval, ContinuousClock.now + .milliseconds(250)), clock: .continuous)
            guard ContinuousClock.now - last >= heartbeatInterval else { continue }
            last = ContinuousClock.now
            sendHeartbeat()
        }
    }

    static func webSocketURL(_ base: String) -> String {
        var url = base
        if url.hasPrefix("http://") { url = "ws://" + url.dropFirst(7) }
        if url.hasPrefix("https://") { url = "wss://" + url.dropFirst(8) }
        if !url.hasPrefix("ws://") && !url.hasPrefix("wss://") { url = "ws://" + url }
        while url.hasSuffix("/") { url.removeLast() }
        return url + "/api/v1/compute/connect"
    }

    static func encode(_ envelope: Envelope) throws -> String {
        String(decoding: try JSONEncoder().encode(envelope), as: UTF8.self)
    }

    private func sendHeartbeat() {
        guard channel.connected else { return }
        let heartbeat = NodeMessage.Heartbeat(availableCapacity: capacity - allocated, runningExecutions: runners.count, heldRoots: heldRoots)
        outbound?.yield(channel.unreliable(.heartbeat(heartbeat)))
    }

    /// Sends what running executions wrote since the last call (at most 256 KiB per stream
    /// each time, and ``liveLogLimit`` in all), for `job logs --follow`.
    private func sendLiveLogs() {
        guard channel.connected, protocolVersion >= 2 else { return }
        for (executionID, entry) in liveLogs {
            for (stream, name) in [(1, "stdout"), (2, "stderr")] {
                let offset = entry.sent[stream] ?? 0
                guard offset < liveLogLimit,
                    let file = try? FileHandle(forReadingFrom: entry.directory.appendingPathComponent(name))
                else { continue }
                defer { try? file.close() }
                guard (try? file.seek(toOffset: UInt64(offset))) != nil,
                    let data = try? file.read(upToCount: min(256 << 10, liveLogLimit - offset)), !data.isEmpty
                else { continue }
                let chunk = NodeMessage.LogChunk(executionID: executionID, jobID: entry.jobID, stream: stream, offset: offset, data: data)
                outbound?.yield(channel.unreliable(.logChunk(chunk)))
                liveLogs[executionID]?.sent[stream] = offset + data.count
            }
        }
    }

    private func receive(_ text: String) async throws {
        let envelope = try JSONDecoder().decode(Envelope.self, from: Data(text.utf8))
        perform(channel.acknowledged(envelope.ack))
        switch envelope.message {
        case .welcome(let welcome):
            try verify(welcome)
            protocolVersion = welcome.protocolVersion ?? 1
            // Heartbeat as often as the orchestrator expects (it judges liveness by it).
            if welcome.heartbeatIntervalMillis > 0 { heartbeatInterval = .milliseconds(welcome.heartbeatIntervalMillis) }
            // The orchestrator may have lost live output (it restarted): send it again.
            for id in liveLogs.keys { liveLogs[id]?.sent = [:] }
            logger.info("connected to orchestrator \(config.orchestratorURL)")
            perform(channel.welcomed(lastHandled: welcome.lastComputeSeq))
        case .reject(let reject):
            logger.error("the orchestrator refused this node: \(reject.reason)")
            throw CodError(.unauthorized, reject.reason)
        case .runExecution(let run):
            if handle(envelope.seq) { start(run) }
        case .cancelExecution(let cancel):
            if handle(envelope.seq) { runners[cancel.executionID]?.cancel(reason: cancel.reason) }
        case .ack:
            break
        case .hello, .heartbeat, .bidResult, .executionProgress, .runResult, .computeError, .logChunk:
            logger.warning("unexpected message from orchestrator")
        }
    }

    /// Checks the welcome is signed, for this hello, by the orchestrator this node enrolled
    /// with: its key is kept at the first welcome (`<data>/orchestrator.pub`) and any other key
    /// is refused, so a server that took the orchestrator's address gets no work from it.
    private func verify(_ welcome: NodeMessage.Welcome) throws {
        guard let keyText = welcome.orchestratorKey, let key = NodeIdentity.publicKey(keyText), let signature = welcome.signature,
              NodeIdentity.verify(
                signature: signature, of: NodeIdentity.welcomePayload(nonce: welcomeNonce, nodeID: nodeID, session: channel.session), by: key)
        else {
            logger.error("the orchestrator's welcome is not signed for this hello: disconnecting")
            throw CodError(.unauthorized, "unsigned or wrongly signed welcome")
        }
        let file = config.dataDirectory.appendingPathComponent("orchestrator.pub")
        if let known = try? String(contentsOf: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines), !known.isEmpty {
            guard known == keyText else {
                logger.error("""
                    the welcome was signed by another orchestrator key (\(keyText.prefix(12))…) than the one this node enrolled with \
                    (\(known.prefix(12))…, in \(file.path)): refusing to work for it; remove that file to enroll with a new orchestrator
                    """)
                throw CodError(.unauthorized, "welcome signed by another orchestrator key")
            }
            return
        }
        try Data((keyText + "\n").utf8).write(to: file, options: .atomic)
    }

    /// Acknowledges a numbered message; false for a replay already handled.
    private func handle(_ seq: UInt64) -> Bool {
        let (inbound, directives) = channel.received(seq: seq)
        perform(directives)
        return inbound == .handle
    }
}
