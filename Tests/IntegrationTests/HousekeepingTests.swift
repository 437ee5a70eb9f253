@testable import CodTestKit
import Foundation
import Models
import Testing
import Wire

@Suite("Garbage collection of ended jobs (separate processes)")
struct HousekeepingTests {
    @Test func oldJobsGoWithTheirResultsButUserPinsStay() async throws {
        let stack = try await DevstackProcess.start(
            // Only the explicit `job gc` below collects: a timed pass on a loaded machine could
            // take the first job before the user pins its result.
            dataDirectory: try Paths.temporaryDirectory("cod-gc"), computes: 1, extraArguments: ["--keep-jobs", "2", "--gc-interval", "86400"])
        defer { stack.stop() }
        var jobs: [(id: String, cid: String)] = []
        for index in 0..<4 {
            let (id, result) = try await runJob(stack, ["wasm", "run", try Paths.fixture("echo_env"), "-e", "GREETING=job-\(index)"])
            #expect(result.status == 0, "\(result.stderr)")
            let execution = try #require(try await describe(stack, id).executions?.items.first)
            let cid = try #require(execution.publishedResult.params["CID"]?.stringValue, "results are published by CID")
            jobs.append((id, cid))
        }
        // The user pins the first job's result themselves.
        #expect(try await stack.cod("data", "pin", jobs[0].cid).status == 0)
        // A user cannot unpin a result the orchestrator holds for a job.
        let refused = try await stack.cod("data", "unpin", jobs[2].cid)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("result of execution"), "\(refused.stderr)")

        let gc = try await stack.cod("job", "gc", "--output", "json")
        #expect(gc.status == 0, "\(gc.stderr)")
        let report = try JSONDecoder().decode(GarbageCollectionResponse.self, from: Data(gc.stdout.utf8))
        #expect(report.jobs == 2 && report.executions == 2, "\(gc.stdout)")
        #expect(report.blocks > 0)

        // The two oldest jobs are gone; asking for them says so.
        for old in jobs.prefix(2) {
            let gone = try await stack.cod("job", "describe", old.id)
            #expect(gone.status != 0 && gone.stderr.contains("not found"), "\(gone.stderr)")
        }
        // Job 0's result stays (the user's pin); job 1's is gone from the store.
        let folder = try Paths.temporaryDirectory("cod-gc-get")
        let kept = try await stack.cod("data", "get", jobs[0].cid, "-o", folder.appendingPathComponent("kept").path)
        #expect(kept.status == 0, "\(kept.stderr)")
        #expect(text(folder.appendingPathComponent("kept"), "stdout").contains("GREETING=job-0"))
        let stat = try await stack.cod("data", "stat", "--output", "json")
        #expect(!stat.stdout.contains(jobs[1].cid) && stat.stdout.contains(jobs[0].cid), "\(stat.stdout)")
        let missing = try await stack.cod("data", "get", jobs[1].cid, "-o", folder.appendingPathComponent("missing").path)
        #expect(missing.status != 0)
        // The newest two are untouched, results and all.
        for recent in jobs.suffix(2) {
            let output = try await results(stack, recent.id)
            #expect(text(output, "stdout").contains("GREETING=job-\(jobs.firstIndex { $0.id == recent.id }!)"))
        }
        // A second pass has nothing left to do.
        let again = try await stack.cod("job", "gc")
        #expect(again.stdout.contains("removed 0 ended jobs"), "\(again.stdout)")
    }
}
