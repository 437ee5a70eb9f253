import Foundation
import WasmRunner

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

/// How a runner's turn at an execution ended.
enum RunnerEvent: Sendable {
    /// The runner finished the execution and reported its outcome; it can take another.
    case finished(WasmOutcome)
    /// The process ended (killed at a deadline, crashed, or retired).
    case exited(Process.TerminationReason, Int32)
}

/// A long-lived runner process: it reads an execution spec (one line of JSON) from standard
/// input, runs it, answers `done` with the outcome on standard output, and waits for the next. Starting processes is then
/// off the jobs' path, and a timeout still kills exactly the process running that execution.
final class RunnerProcess: @unchecked Sendable {
    let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private let lock = NSLock()
    private var buffer = Data()
    private var exit: (Process.TerminationReason, Int32)?
    private var waiting: (@Sendable (RunnerEvent) -> Void)?

    init(command: [String], log: URL) throws {
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst()) + ["-"]
        process.standardInput = input
        process.standardOutput = output
        if !FileManager.default.fileExists(atPath: log.path) { _ = FileManager.default.createFile(atPath: log.path, contents: nil) }
        let handle = try FileHandle(forWritingTo: log)
        handle.seekToEndOfFile()
        process.standardError = handle
        process.terminationHandler = { [weak self] process in
            self?.ended(process.terminationReason, process.terminationStatus)
        }
    }

    /// Reads the runner's answers on a thread of its own, with blocking reads, once the process
    /// has started. (A `readabilityHandler` here crashed the node now and then: libdispatch's
    /// event loop could still watch the pipe when a killed runner's handle closed it.) The
    /// thread holds the read end until end-of-file, so it is never closed under a read.
    func startReading() {
        let handle = output.fileHandleForReading
        let thread = Thread { [weak self] in
            while true {
                let data = handle.availableData
                if data.isEmpty { break }
                self?.received(data)
            }
            try? handle.close()
        }
        thread.name = "cod-runner-output"
        thread.start()
    }

    var isAlive: Bool { lock.withLock { exit == nil } && process.isRunning }

    private func received(_ data: Data) {
        var outcomes: [WasmOutcome] = []
        lock.withLock {
            buffer.append(data)
            while let newline = buffer.firstIndex(of: 0x0A) {
                let line = buffer[buffer.startIndex..<newline]
                buffer = Data(buffer[(newline + 1)...])
                guard line.starts(with: "done ".utf8) else { continue }
                let outcome = (try? JSONDecoder().decode(WasmOutcome.self, from: Data(line.dropFirst(5))))
                    ?? WasmOutcome(kind: .invalid, exitCode: -1, message: "the runner's answer could not be read")
                outcomes.append(outcome)
            }
        }
        for outcome in outcomes { deliver(.finished(outcome)) }
    }

    private func ended(_ reason: Process.TerminationReason, _ status: Int32) {
        lock.withLock { exit = (reason, status) }
        deliver(.exited(reason, status))
    }

    private func deliver(_ event: RunnerEvent) {
        let handler: (@Sendable (RunnerEvent) -> Void)? = lock.withLock {
            defer { waiting = nil }
            return waiting
        }
        handler?(event)
    }

    /// Starts one execution; `completion` is called once, when it finishes or the process ends.
    func run(spec: WasmRunSpec, completion: @escaping @Sendable (RunnerEvent) -> Void) {
        let alreadyEnded: (Process.TerminationReason, Int32)? = lock.withLock {
            if let exit { return exit }
            waiting = completion
            return nil
        }
        if let alreadyEnded {
            completion(.exited(alreadyEnded.0, alreadyEnded.1))
            return
        }
        do {
            // JSON escapes newlines inside strings, so the encoded spec is exactly one line.
            var line = try JSONEncoder().encode(spec)
            line.append(0x0A)
            try input.fileHandleForWriting.write(contentsOf: line)
        } catch {
            // The process is gone; its termination is delivered to `completion`.
            kill()
        }
    }

    func kill() {
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
    }
}

/// Keeps started runner processes and bounds how many run at once (one per core by
/// default): more would only contend for the same cores. Executions beyond that wait here in
/// arrival order.
actor RunnerPool {
    let command: [String]
    let log: URL
    let maxRunning: Int
    /// Where a runner is moved for each execution, to take its CPU limit and count its CPU
    /// time; nil: runners run unlimited and their CPU time is read from `/proc`.
    let cgroups: CgroupController?
    private var idle: [RunnerProcess] = []
    private var running = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private var draining = false

    init(command: [String], log: URL, maxRunning: Int, cgroups: CgroupController? = nil) {
        self.cgroups = cgroups
        self.command = command
        self.log = log
        self.maxRunning = max(maxRunning, 1)
    }

    /// A started runner, waiting for a spec. Waits while `maxRunning` runners are busy.
    func take() async throws -> RunnerProcess {
        while running >= maxRunning {
            await withCheckedContinuation { waiters.append($0) }
        }
        running += 1
        while let runner = idle.popLast() {
            if runner.isAlive { return runner }
        }
        do {
            let runner = try RunnerProcess(command: command, log: log)
            try await ProcessSpawner.shared.run(runner.process)
            runner.startReading()
            return runner
        } catch {
            release()
            throw error
        }
    }

    /// Returns a runner after its execution: kept when it finished cleanly, dropped when its
    /// process ended (it was killed at a deadline, crashed or retired).
    func giveBack(_ runner: RunnerProcess, reusable: Bool) {
        if reusable, !draining, runner.isAlive {
            idle.append(runner)
        } else {
            runner.kill()
        }
        release()
    }

    private func release() {
        running -= 1
        if !waiters.isEmpty { waiters.removeFirst().resume() }
    }

    /// Starts runners ahead of the first executions.
    func warmUp() async {
        while idle.count < maxRunning, !draining {
            guard let runner = try? RunnerProcess(command: command, log: log) else { return }
            do {
                try await ProcessSpawner.shared.run(runner.process)
            } catch {
                return
            }
            runner.startReading()
            idle.append(runner)
        }
    }

    /// Stops the idle runners (the node is shutting down).
    func drain() {
        draining = true
        for runner in idle { runner.kill() }
        idle.removeAll()
    }
}
