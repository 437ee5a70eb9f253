import Foundation
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

    /// Adds a chunk; returns the job to wake followers of when something new arrived.
    func append(_ chunk: NodeMessage.LogChunk) -> String? {
        guard chunk.stream == 1 || chunk.stream == 2, chunk.offset >= 0 else { return nil }
        var entry = entries[chunk.executionID] ?? Entry(jobID: chunk.jobID)
        var held = entry.streams[chunk.stream] ?? []
        let end = chunk.offset + chunk.data.count
        guard chunk.offset <= held.count, end > held.count, held.count < liveLogLimit else { return nil }
        let fresh = chunk.data.dropFirst(held.count - chunk.offset).prefix(liveLogLimit - held.count)
        held.append(contentsOf: fresh)
        entry.streams[chunk.stream] = held
        entries[chunk.executionID] = entry
        return entry.jobID
    }

    /// The bytes of one stream held past `offset`.
    func bytes(executionID: String, stream: Int, from offset: Int) -> ArraySlice<UInt8> {
        guard let held = entries[executionID]?.streams[stream], offset < held.count else { return [] }
        return held[offset...]
    }

    /// Drops executions that are no longer running.
    func retain(_ running: Set<String>) {
        entries = entries.filter { running.contains($0.key) }
    }

    func forget(executionID: String) {
        entries[executionID] = nil
    }
}
