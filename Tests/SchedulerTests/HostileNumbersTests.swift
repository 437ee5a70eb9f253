@testable import CodTestKit
import Models
import Scheduler
import Testing

/// Jobs stored before validation bounded their numbers (or by any other path) must never make
/// the scheduler trap: a trap in a worker would take the orchestrator down on every restart.
@Suite("Scheduler with hostile numbers")
struct HostileNumbersTests {
    @Test(arguments: [Int64.max, Int64.max / 2, 10_000_000_000_000, 9_223_372_036, 1])
    func hugeTimeoutsNeverTrap(seconds: Int64) {
        var job = Fixture.job(queueTimeout: seconds)
        job.tasks[0].timeouts.totalTimeout = seconds
        job.tasks[0].timeouts.executionTimeout = seconds
        let scheduler = BatchScheduler()
        // Placed on a free node, waiting on a full one, and with a rerun's executions.
        _ = scheduler.schedule(Fixture.input(job, nodes: [Fixture.node("n1")]))
        _ = scheduler.schedule(Fixture.input(job, nodes: [Fixture.node("n1", cpu: 0.01)]))
        _ = scheduler.schedule(Fixture.input(job, nodes: []))
        var rerun = job
        rerun.version = 2
        _ = scheduler.schedule(Fixture.input(rerun, [Fixture.execution("e-1", node: "n1", state: .running)], nodes: [Fixture.node("n1")]))
    }

    @Test func deadlinesSaturate() {
        #expect(Deadline.after(Fixture.now, seconds: 10) == Fixture.now + 10_000_000_000)
        #expect(Deadline.after(Fixture.now, seconds: .max) == .max)
        #expect(Deadline.after(Int64.max - 5, seconds: 1) == .max)
        #expect(Deadline.after(0, seconds: -5) == -5_000_000_000)
        #expect(Deadline.after(.min, seconds: .min) == .min)
    }

    @Test func theValidatorBoundsTimeoutsWithTheirFieldPaths() {
        var job = Fixture.job()
        job.tasks[0].timeouts.totalTimeout = 10_000_000_000_000
        job.tasks[0].timeouts.queueTimeout = .max
        job.tasks[0].engine = SpecConfig(type: "noop")
        let problems = JobValidator().validate(job).map(\.path)
        #expect(problems.contains("Tasks[0].Timeouts.TotalTimeout"))
        #expect(problems.contains("Tasks[0].Timeouts.QueueTimeout"))
    }
}
