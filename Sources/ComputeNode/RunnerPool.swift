import Foundation

/// Starts child processes from one dedicated thread that lives as long as the node.
///
/// Runners ask Linux to kill them when their parent *thread* exits (PR_SET_PDEATHSIG). Swift's
/// task threads can be retired when idle, which would kill a runner mid-execution; this thread
/// never is, so runners die only with the node itself.
final class ProcessSpawner: @unchecked Sendable {
    static let shared = ProcessSpawner()

    private let condition = NSCondition()
    private var queue: [() -> Void] = []

    private init() {
        let thread = Thread { [unowned self] in self.loop() }
        thread.name = "cod-process-spawner"
        thread.start()
    }

    private func loop() {
        while true {
            condition.lock()
            while queue.isEmpty { condition.wait() }
            let work = queue.removeFirst()
            condition.unlock()
            work()
        }
    }

    /// Launches `process` on the spawner thread.
    func run(_ process: Process) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            condition.lock()
            queue.append {
                do {
                    try process.run()
                    continuation.resume()
                } catch {
                    continuation.resume(throwing: error)
                }
            }
            condition.signal()
            condition.unlock()
        }
    }
}

/// A runner process started ahead of time, waiting on its standard input for the path of an
/// execution spec. Starting the process is then off the job's critical path, and each
/// execution still gets its own process, killable at its deadline.
final class SpareRunner: @unchecked Sendable {
    let process = Process()
    private let input = Pipe()
    private let lock = NSLock()
    private var exit: (Process.TerminationReason, Int32)?
    private var onExit: (@Sendable (Process.TerminationReason, Int32) -> Void)?

    init(command: [String], log: URL) throws {
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst()) + ["-"]
        process.standardInput = input
        process.standardOutput = FileHandle.nullDevice
        if !FileManager.default.fileExists(atPath: log.path) { _ = FileManager.default.createFile(atPath: log.path, contents: nil) }
        let handle = try FileHandle(forWritingTo: log)
        handle.seekToEndOfFile()
        process.standardError = handle
        process.terminationHandler = { [weak self] process in
            self?.finished(process.terminationReason, process.terminationStatus)
        }
    }

    private func finished(_ reason: Process.TerminationReason, _ status: Int32) {
        lock.lock()
        exit = (reason, status)
        let handler = onExit
        lock.unlock()
        handler?(reason, status)
    }

    /// Calls `handler` once the process has exited (at once if it already has).
    func whenExited(_ handler: @escaping @Sendable (Process.TerminationReason, Int32) -> Void) {
        lock.lock()
        if let exit {
            lock.unlock()
            handler(exit.0, exit.1)
            return
        }
        onExit = handler
        lock.unlock()
    }

    /// Hands the runner its spec; it starts at once.
    func start(specPath: String) throws {
        try input.fileHandleForWriting.write(contentsOf: Data((specPath + "\n").utf8))
        try input.fileHandleForWriting.close()
    }

    func kill() {
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
    }
}

/// Keeps a few spare runners ready.
actor RunnerPool {
    let command: [String]
    let log: URL
    let size: Int
    private var spares: [SpareRunner] = []
    private var refilling = false

    init(command: [String], log: URL, size: Int = 2) {
        self.command = command
        self.log = log
        self.size = size
    }

    /// A started runner, waiting for its spec.
    func take() async throws -> SpareRunner {
        while !spares.isEmpty {
            let spare = spares.removeFirst()
            if spare.process.isRunning {
                scheduleRefill()
                return spare
            }
        }
        let runner = try SpareRunner(command: command, log: log)
        try await ProcessSpawner.shared.run(runner.process)
        scheduleRefill()
        return runner
    }

    /// Starts the pool's first spares.
    func warmUp() async {
        await refill()
    }

    private func scheduleRefill() {
        guard !refilling else { return }
        refilling = true
        Task { await self.refill() }
    }

    private func refill() async {
        while spares.count < size {
            guard let runner = try? SpareRunner(command: command, log: log) else { break }
            do {
                try await ProcessSpawner.shared.run(runner.process)
            } catch {
                break
            }
            spares.append(runner)
        }
        refilling = false
    }

    /// Stops the spares (the node is shutting down).
    func drain() {
        for spare in spares { spare.kill() }
        spares.removeAll()
    }
}
