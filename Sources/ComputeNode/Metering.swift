import Foundation
import Models

/// What an engine measured of one execution's CPU and memory (nil: it could not measure).
struct EngineUsage: Sendable, Equatable {
    var cpuSeconds: Double?
    var peakMemoryBytes: UInt64?
    var memoryGiBSeconds: Double?
    /// How: `cgroup v1`, `container cgroup v2`, `wasm runner`, ...
    var meteredBy: String
}

/// Where an engine leaves what it measured; the runner reads it into the execution's usage.
final class UsageMeter: @unchecked Sendable {
    private let lock = NSLock()
    private var measured: EngineUsage?

    func record(_ usage: EngineUsage) { lock.withLock { measured = usage } }
    var value: EngineUsage? { lock.withLock { measured } }
}

/// Samples a memory reading while a program runs (every 10 ms for the first 2 s, then every
/// `interval`): the largest value seen, and the integral of the readings over time
/// (GiB-seconds), each reading held until the next.
final class MemorySampler: @unchecked Sendable {
    private let read: @Sendable () -> UInt64?
    /// A high-water mark the kernel keeps, read with each sample (it catches peaks between them).
    private let watermark: (@Sendable () -> UInt64?)?
    private let interval: Duration
    private let lock = NSLock()
    private var peak: UInt64?
    private var gibSeconds: Double = 0
    private var last: (bytes: UInt64, at: ContinuousClock.Instant)?
    private var task: Task<Void, Never>?

    init(interval: Duration = .milliseconds(100), read: @escaping @Sendable () -> UInt64?, watermark: (@Sendable () -> UInt64?)? = nil) {
        self.read = read
        self.watermark = watermark
        self.interval = interval
    }

    func start() {
        sample()
        let interval = self.interval
        let started = ContinuousClock.now
        task = Task.detached { [weak self] in
            while !Task.isCancelled {
                // Short programs are most of them: sampled finely at first, so that memory
                // held for a moment still counts.
                try? await Task.sleep(for: ContinuousClock.now - started < .seconds(2) ? .milliseconds(10) : interval)
                guard let self else { return }
                self.sample()
            }
        }
    }

    private func sample() {
        let bytes = read()
        let mark = watermark?()
        let now = ContinuousClock.now
        lock.withLock {
            if let mark { peak = max(peak ?? 0, mark) }
            if let last {
                let seconds = Double((now - last.at).components.attoseconds) / 1e18 + Double((now - last.at).components.seconds)
                gibSeconds += Double(last.bytes) / Double(1 << 30) * seconds
            }
            if let bytes {
                peak = max(peak ?? 0, bytes)
                last = (bytes, now)
            } else {
                last = nil
            }
        }
    }

    /// Takes a last reading and stops: the peak seen and the GiB-seconds (nil if no reading
    /// ever succeeded).
    func stop() -> (peak: UInt64?, gibSeconds: Double?) {
        task?.cancel()
        sample()
        return lock.withLock { (peak, peak == nil ? nil : gibSeconds) }
    }
}

extension Cgroup {
    /// Meters the group while `body` runs: CPU from the kernel's counter, memory sampled for
    /// GiB-seconds and taken from the kernel's high-water mark where it keeps one.
    func metering<T>(_ label: String, into meter: UsageMeter, _ body: () async throws -> T) async rethrows -> T {
        let sampler = MemorySampler { [self] in memoryBytes() }
        sampler.start()
        defer {
            let (sampledPeak, gibSeconds) = sampler.stop()
            let peak = [sampledPeak, peakMemoryBytes()].compactMap { $0 }.max()
            meter.record(EngineUsage(cpuSeconds: cpuSeconds(), peakMemoryBytes: peak, memoryGiBSeconds: gibSeconds, meteredBy: label))
        }
        return try await body()
    }
}
