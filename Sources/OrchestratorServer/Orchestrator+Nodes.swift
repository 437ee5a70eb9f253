import BlockStore
import ContentAddressing
import Foundation
import Logging
import Models
import Scheduler
import StateStore
import Wire

/// What nodes send, their liveness, and the periodic clean-ups.
extension Orchestrator {
    /// Handles a reliable compute message; returns once it is durably recorded. A report that
    /// ends an execution is stored together with the evaluation of its job.
    func handle(nodeID: String, envelope: Envelope) async throws {
        let now = nowNanos()
        let receiptCID = await keepReceipt(of: envelope.message, from: nodeID)
        let outcome = try await database.recordComputeMessage(
            nodeID: nodeID, seq: envelope.seq, message: envelope.message, now: now, receiptCID: receiptCID
        ) { job in
            var ids = Self.newIDs()
            return Self.evaluation(of: job, trigger: .execUpdate, now: now, ids: &ids)
        }
        if let text = outcome.discardedResultCID, let cid = try? CID(text), case .runResult(let result) = envelope.message {
            // The node finished work that was already given up: drop the pin its upload took.
            if (try? store.unpin(cid, holder: PinHolder.result(of: result.executionID))) != nil { _ = try? store.release([cid]) }
        }
        guard outcome.changed, let jobID = outcome.jobID else { return }
        guard let evaluation = outcome.evaluation else {
            await watchers.notify(jobID: jobID)
            return
        }
        await broker.enqueue(evaluation)
        // Capacity freed up: the longest-waiting jobs may fit now.
        let waiting = await waitlist.first(2).filter { $0 != jobID }
        if !waiting.isEmpty { await evaluate(jobIDs: waiting, trigger: .execUpdate) }
    }

    /// Removes ended jobs past the retention limits, with their result bundles, and releases
    /// their result pins (freeing the blocks nothing else holds). Returns what it did.
    @discardableResult
    func collectGarbage() async throws -> GarbageCollectionResponse {
        let retention = config.retention
        let cutoff = retention.maxAge.map { nowNanos() - Self.nanos($0) }
        let pruned = try await database.pruneEndedJobs(createdBefore: cutoff, keepNewest: retention.keepJobs, now: nowNanos())
        var report = GarbageCollectionResponse(jobs: pruned.jobIDs.count, executions: pruned.executionIDs.count)
        guard !pruned.jobIDs.isEmpty else { return report }
        try await releaseFiles(of: pruned, into: &report)
        logger.info(
            "garbage collection: removed \(report.jobs) ended jobs (\(report.executions) executions), \(report.bundleBytes) bytes of result bundles, \(report.blocks) result blocks (\(report.blockBytes) bytes)")
        return report
    }

    /// Removes pruned jobs' result bundles and the result blocks nothing else pins.
    func releaseFiles(of pruned: PrunedJobs, into report: inout GarbageCollectionResponse) async throws {
        var holders: [CID: [String]] = [:]
        for executionID in pruned.executionIDs {
            let bundle = config.resultsDirectory.appendingPathComponent(executionID + ".tar.gz")
            if let size = (try? FileManager.default.attributesOfItem(atPath: bundle.path)[.size] as? NSNumber)?.int64Value,
                (try? FileManager.default.removeItem(at: bundle)) != nil
            {
                report.bundleBytes += size
            }
            guard let text = pruned.resultCIDs[executionID], let cid = try? CID(text) else { continue }
            holders[cid, default: []].append(PinHolder.result(of: executionID))
        }
        for (jobID, text) in pruned.mergedCIDs {
            if let cid = try? CID(text) { holders[cid, default: []].append(PinHolder.result(of: jobID)) }
        }
        // Many executions can share one result (the same output): each DAG is unpinned once.
        var released: [CID] = []
        for (cid, names) in holders {
            let held = Set(store.pinHolders(cid))
            let mine = names.filter(held.contains)
            guard !mine.isEmpty, (try? store.unpin(cid, holders: mine)) != nil else { continue }
            released.append(cid)
        }
        (report.blocks, report.blockBytes) = try store.release(released)
        for jobID in pruned.jobIDs { await watchers.forget(jobID: jobID) }
    }

    /// Drops live output of executions that ended: their stored results hold it now.
    func pruneLiveLogs() async {
        if let running = try? await database.activeExecutionIDs() { await liveLogs.retain(running) }
    }

    /// Steps every connected node's liveness by how long it has been silent: suspect nodes get
    /// no new work; lost ones have their executions rescheduled and their connection closed,
    /// so they must say hello again (and be told to stop what was given up).
    func checkLiveness() async {
        do {
            let now = nowNanos()
            let policy = LivenessPolicy(
                heartbeatInterval: Self.nanos(config.heartbeatInterval), lostAfter: Self.nanos(config.nodeTimeout))
            var lost: [String] = []
            for node in try await database.nodes() where node.connection == .connected {
                let quiet = now - node.lastHeartbeat
                let (next, effect) = NodeLivenessMachine.step(node.liveness, .silence(quiet), policy: policy)
                let id = node.info.nodeID
                switch effect {
                case .suspected:
                    logger.warning("node \(shortID(id)) is suspect: no heartbeat for \(String(format: "%.1f", Double(quiet) / 1e9)) s; no new work goes there")
                    try await database.setLiveness(nodeID: id, to: next)
                case .lost:
                    logger.warning("node \(shortID(id)) is lost: no heartbeat for \(config.nodeTimeout); its executions run elsewhere")
                    lost.append(id)
                case .none, .recovered, .rejoined:
                    break
                }
            }
            guard !lost.isEmpty else { return }
            let jobs = try await database.disconnect(nodeIDs: lost, now: now)
            for id in lost { await hub.disconnect(nodeID: id) }
            await evaluate(jobIDs: jobs, trigger: .nodeLeave)
        } catch {
            logger.error("liveness check failed: \(error)")
        }
    }
}
