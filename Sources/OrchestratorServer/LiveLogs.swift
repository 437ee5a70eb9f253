import Foundation
import Models
import Wire

/// Output of running executions as compute nodes stream it, for `job logs --follow`.
///
/// Each stream keeps the bytes received so far from offset 0, up to ``liveLogLimit``. A chunk
/// that overlaps what is held extends it; one that would leave a gap is dropped (the node
/// resends from the start after a reconnect, and the stored result has everything anyway).
/// Entries go when their execution ends.
actor LiveLogs {
    private struct Entry {
        var jobID: String
        var streams: [Int: [UInt8]] = [:]
    }

    private var entries: [String: Entry] = [:]
    /// Which node runs each execution with a live log (looked up once per execution).
    private var owners: [String: String] = [:]

    /// The node that runs `executionID`, from the store the first time it is asked.
    func node(of executionID: String, lookup: @Sendable (String) async throws -> Execution?) async throws -> String? {
        if let owner = owners[executionID] { return owner }
        guard let execution = try await lookup(executionID), !execution.computeState.stateType.isTerminal else { return nil }
        owners[executionID] = execution.nodeID
        return execution.nodeID
    }

    /// Adds a chunk; returns the job to wake followers of when something new arrived.
    func append(_ chunk: NodeMessage.LogChunk) -> String? {
        guard chunk.stream == 1 || chunk.stream == 2, chunk.offset >= 0 else { return nil }
        let held = entries[chunk.executionID]?.streams[chunk.stream]?.count ?? 0
        guard chunk.offset <= held, chunk.offset + chunk.data.count > held, held < liveLogLimit else { return nil }
        let fresh = chunk.data.dropFirst(held - chunk.offset).prefix(liveLogLimit - held)
        // Appended in place: copying a stream of up to 16 MiB out and back for each chunk
        // would make a long log quadratic.
        entries[chunk.executionID, default: Entry(jobID: chunk.jobID)].streams[chunk.stream, default: []].append(contentsOf: fresh)
        return entries[chunk.executionID]?.jobID
    }

    /// The bytes of one stream held past `offset`.
    func bytes(executionID: String, stream: Int, from offset: Int) -> ArraySlice<UInt8> {
        guard let held = entries[executionID]?.streams[stream], offset < held.count else { return [] }
        return held[offset...]
    }

    /// Drops executions that are no longer running.
    func retain(_ running: Set<String>) {
        entries = entries.filter { running.contains($0.key) }
        owners = owners.filter { running.contains($0.key) }
    }
}
