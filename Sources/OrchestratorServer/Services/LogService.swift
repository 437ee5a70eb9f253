import Archives
import BlockStore
import ContentAddressing
import Crypto
import Foundation
import Hummingbird
import Models
import NIOCore
import StateStore
import Wire

/// A job's logs as NDJSON `ExecutionLog` lines: live from what running executions' nodes
/// stream, then from each ended execution's stored logs.
struct LogService: Sendable {
    let database: AppDatabase
    let watchers: JobWatchers
    let liveLogs: LiveLogs
    let store: FileBlockStore
    let resultsDirectory: URL

    /// Streams each execution's stdout and stderr as NDJSON `ExecutionLog` lines. Running
    /// executions' output comes live from what their nodes stream (whole lines only); when an
    /// execution ends, the rest comes from its stored logs. Should the live view ever differ
    /// from the stored log (a daemon whose live stream skipped output), a notice says so and
    /// the whole stored log follows, so no line is ever missing. Without `follow`, it prints
    /// what there is now and returns.
    func streamLogs(jobID: String, follow: Bool, executionFilter: String, writer: inout any ResponseBodyWriter) async throws {
        var sent: [String: [Int: LiveProgress]] = [:]
        var finished = Set<String>()
        while true {
            let seen = await watchers.generation(of: jobID)
            let executions = try await database.executions(jobID: jobID)
                .filter { executionFilter.isEmpty || $0.id.hasPrefix(executionFilter) }
            for execution in executions where !finished.contains(execution.id) {
                if execution.computeState.stateType.isTerminal {
                    finished.insert(execution.id)
                    for stream in [1, 2] {
                        try await sendStoredLog(
                            of: execution, stream: stream, after: sent[execution.id]?[stream] ?? LiveProgress(), to: &writer)
                    }
                    sent[execution.id] = nil
                } else {
                    for stream in [1, 2] {
                        var progress = sent[execution.id]?[stream] ?? LiveProgress()
                        let live = await liveLogs.bytes(executionID: execution.id, stream: stream, from: progress.count)
                        // Whole lines only: a partial one is completed by a later chunk or the stored log.
                        guard let lastNewline = live.lastIndex(of: 0x0A) else { continue }
                        let lines = live[..<(lastNewline + 1)]
                        try await Self.write(lines: lines, stream: stream, executionID: execution.id, to: &writer)
                        progress.add(lines)
                        sent[execution.id, default: [:]][stream] = progress
                    }
                }
            }
            guard follow, let job = try await database.job(id: jobID) else { return }
            if job.state.stateType.isTerminal && executions.allSatisfy({ finished.contains($0.id) }) { return }
            // Woken by state changes and by new live output.
            await watchers.wait(jobID: jobID, seen: seen, timeout: .seconds(2))
        }
    }

    /// Writes text as one `ExecutionLog` line per line (a final line without a newline too).
    static func write(lines bytes: ArraySlice<UInt8>, stream: Int, executionID: String, to writer: inout any ResponseBodyWriter) async throws {
        guard !bytes.isEmpty else { return }
        var out = ByteBuffer()
        let encoder = JSONEncoder()
        var lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
        if bytes.last == 0x0A { lines.removeLast() }
        for line in lines {
            var data = try encoder.encode(ExecutionLog(type: stream, line: String(decoding: line, as: UTF8.self), executionID: executionID))
            data.append(0x0A)
            out.writeBytes(data)
            if out.readableBytes > 1 << 16 {
                try await writer.write(out)
                out.clear()
            }
        }
        if out.readableBytes > 0 { try await writer.write(out) }
    }

    /// Sends an ended execution's stored log (`stream` 1 is stdout, 2 stderr) in bounded
    /// chunks, whatever its size: the part a follower already had live is skipped when it is a
    /// true prefix of the stored log (checked by digest), otherwise a notice and the whole log.
    func sendStoredLog(of execution: Execution, stream: Int, after progress: LiveProgress, to writer: inout any ResponseBodyWriter) async throws {
        let source = storedLog(of: execution, stream: stream)
        var start: UInt64 = 0
        if progress.count > 0 {
            var hasher = SHA256()
            var offset: UInt64 = 0
            let wanted = UInt64(progress.count)
            while offset < wanted, let chunk = source.read(offset..<min(wanted, offset + Self.logChunkBytes)), !chunk.isEmpty {
                hasher.update(data: chunk)
                offset += UInt64(chunk.count)
            }
            if offset == wanted, progress.matches(hasher.finalize()) {
                start = wanted
            } else {
                let notice = "[cod] the live view of execution \(execution.id) missed output; its complete \(stream == 1 ? "stdout" : "stderr") follows"
                try await Self.write(lines: Array(notice.utf8) + [0x0A], stream: 2, executionID: execution.id, to: &writer)
            }
        }
        // Whole lines per record: what follows the last newline of a chunk waits for the next
        // (a line longer than a chunk is sent in pieces rather than held whole).
        var carry: [UInt8] = []
        var offset = start
        while let chunk = source.read(offset..<offset + Self.logChunkBytes), !chunk.isEmpty {
            offset += UInt64(chunk.count)
            carry += chunk
            if let newline = carry.lastIndex(of: 0x0A) {
                try await Self.write(lines: carry[...newline], stream: stream, executionID: execution.id, to: &writer)
                carry.removeSubrange(...newline)
            } else if carry.count >= Self.logChunkBytes {
                try await Self.write(lines: carry[...], stream: stream, executionID: execution.id, to: &writer)
                carry.removeAll()
            }
        }
        try await Self.write(lines: carry[...], stream: stream, executionID: execution.id, to: &writer)
    }

    /// How much of a stored log is read and sent at a time.
    static let logChunkBytes: UInt64 = 1 << 20
    /// The largest `local` result bundle whose logs are unpacked to serve them.
    static let maxTarballLogBytes = 64 << 20

    /// Where an ended execution's full log is: a file in its result DAG (read by range), a
    /// small tarball's entry, or the execution record's summary when there is none.
    func storedLog(of execution: Execution, stream: Int) -> StoredLog {
        let name = stream == 1 ? "stdout" : "stderr"
        if execution.publishedResult.normalizedType == "ipfs", let text = execution.publishedResult.params["CID"]?.stringValue,
            let root = try? CID(text)
        {
            let exporter = Exporter(store: store)
            guard let cid = try? exporter.resolve(root, path: name) else { return StoredLog(bytes: []) }
            return StoredLog { range in
                var bytes: [UInt8] = []
                guard (try? exporter.read(cid, range: range, write: { bytes += $0 })) != nil else { return nil }
                return bytes
            }
        }
        let file = resultsDirectory.appendingPathComponent(execution.id + ".tar.gz")
        if let data = try? Data(contentsOf: file), let tar = try? Gzip.decompress(Array(data), maxSize: Self.maxTarballLogBytes),
            let entries = try? Tar.entries(tar)
        {
            return StoredLog(bytes: entries.first { $0.path == name }.map { Array($0.contents) } ?? [])
        }
        let output = execution.runOutput ?? RunCommandResult()
        return StoredLog(bytes: Array((stream == 1 ? output.stdout : output.stderr).utf8))
    }
}

/// A stored log read by byte range; nil when it cannot be read.
struct StoredLog {
    let read: (Range<UInt64>) -> [UInt8]?

    init(read: @escaping (Range<UInt64>) -> [UInt8]?) { self.read = read }

    init(bytes: [UInt8]) {
        self.read = { range in
            let lower = Int(clamping: min(range.lowerBound, UInt64(bytes.count)))
            let upper = Int(clamping: min(range.upperBound, UInt64(bytes.count)))
            return Array(bytes[lower..<upper])
        }
    }
}

/// What a follower has been sent of one live stream: how much, and its digest, to check
/// against the stored log when the execution ends.
struct LiveProgress {
    private(set) var count = 0
    private var hasher = SHA256()

    mutating func add(_ bytes: ArraySlice<UInt8>) {
        count += bytes.count
        hasher.update(data: Array(bytes))
    }

    func isPrefix(of full: [UInt8]) -> Bool {
        full.count >= count && matches(SHA256.hash(data: Array(full[..<count])))
    }

    /// True when `digest` (of the stored log's first `count` bytes) is what was sent.
    func matches(_ digest: SHA256.Digest) -> Bool {
        digest == hasher.finalize()
    }

}
