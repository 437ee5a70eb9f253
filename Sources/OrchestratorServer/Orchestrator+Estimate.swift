import Foundation
import Models
import Scheduler
import StateStore
import Wire

extension Orchestrator {
    /// What `submitted` would use and cost if it were submitted now: the scheduler places it
    /// without storing anything, and each partition's usage comes from the program's history
    /// (or, with `sampleJobID`, from that sample run), priced at the node it would run on.
    public func estimate(_ submitted: Job, owner: Principal?, sampleJobID: String? = nil, before: Int64 = .max) async throws -> JobEstimate {
        var job = try Self.validator.prepare(submitted, normalizer: normalizer)
        job.owner = owner?.name ?? ""
        if let owner, !owner.allows(.readJob, namespace: job.namespace) {
            throw CodError(.forbidden, "user \(owner.name) may not estimate jobs in namespace \(job.namespace)")
        }
        if let partitions = try await database.partitionCount(of: job) { job.count = partitions }
        let now = nowNanos()
        // Never a stored job's ID: the scheduler must see none of its executions.
        job.id = "j-estimate"
        job.state = JobState(.pending)
        job.version = 1
        job.revision = 1
        job.createTime = now
        job.modifyTime = now
        let evaluation = Evaluation(
            id: "v-estimate", namespace: job.namespace, jobID: job.id, triggeredBy: .jobRegister, type: job.type, createTime: now, modifyTime: now)
        let input = try await database.schedulingInput(proposed: job, evaluation: evaluation, now: now)
        let plan = scheduler.schedule(input)
        var placed: [Int: String] = [:]
        for execution in plan.newExecutions where !execution.isReduce && placed[execution.partitionIndex] == nil {
            placed[execution.partitionIndex] = execution.nodeID
        }
        let nodes = Dictionary(input.nodes.map { ($0.id, $0.state.info.computeNodeInfo) }, uniquingKeysWith: { first, _ in first })
        let requested = config.scheduler.requestedResources(job)
        // Where the scheduler would not place a partition now (no room), the dearest node prices it.
        let dearest = input.nodes.map { ($0.id, Pricing.referenceCost(of: $0.state.info.computeNodeInfo.priceList, requested: requested)) }
            .max { $0.1 < $1.1 }?.0
        let attempts = config.scheduler.maxRetries + 1
        let replicas = job.isVerified ? max(job.verification?.replicas ?? 1, 1) : 1

        var basis = JobEstimate.Basis.history
        var detail: String
        let program = ProgramIdentity.of(job.task)
        var samples: [ProgramSample]
        var sampleID: String?
        var sampleRuns: [ProgramSample] = []
        if let sampleJobID {
            let id = try await database.resolveJobID(sampleJobID)
            sampleID = id
            // Another's job is not the caller's to learn from.
            if let owner, let sampleJob = try await database.job(id: id), !owner.allows(.readJob, namespace: sampleJob.namespace) {
                throw CodError(.forbidden, "user \(owner.name) may not read job \(shortID(id)), so cannot estimate from it")
            }
            sampleRuns = try await database.samples(ofJob: id)
            samples = sampleRuns.filter { $0.program == program }
            guard !samples.isEmpty else {
                throw CodError(
                    .badRequest, "sample job \(shortID(id)) has no completed run of this program to estimate from",
                    hint: "see why with cod job describe \(shortID(id)); the sample must run the same task as the job")
            }
            basis = .sample
            detail = "a sample run of partition 0 (job \(shortID(id)))"
        } else {
            samples = try await database.programHistory(program, before: before)
            detail = samples.isEmpty
                ? "no earlier run of this program: the request alone (its resources for its whole timeout)"
                : "\(samples.count) earlier run\(samples.count == 1 ? "" : "s") of this program (\(job.task.engine.normalizedType), \(program.prefix(19))...)"
        }
        let sampleBytes = samples.first?.inputBytes
        var parts: [JobEstimate.Part] = []
        for partition in 0..<max(job.partitionCount, placed.count) {
            let nodeID = placed[partition] ?? dearest
            let info = nodeID.flatMap { nodes[$0] }
            var inputBytes: UInt64?
            if let slices = input.partitioning?.slices, slices.indices.contains(partition) { inputBytes = slices[partition].bytes }
            // A sample of partition 0 of a job whose partitions' sizes are unknown stands for each.
            if basis == .sample, inputBytes == nil { inputBytes = sampleBytes }
            let worst = WorstCase.execution(of: job, requested: requested, list: info?.priceList, capacity: info?.maxCapacity ?? Resources()) ?? 0
            parts.append(Estimator.part(
                partition: partition, nodeID: placed[partition], inputBytes: inputBytes, samples: samples, basis: basis, list: info?.priceList,
                replicas: replicas, worstPerExecution: worst, executionsPerPartition: WorstCase.executionsPerPartition(of: job, attempts: attempts)))
        }
        if let reduce = job.reduceTask {
            var reduceJob = job
            reduceJob.tasks = [reduce]
            let reduceProgram = ProgramIdentity.of(reduce)
            // A sample's reduce read one partition's results; the job's reads every partition's.
            let sampled = sampleRuns.filter { $0.program == reduceProgram }
            let reduceSamples = sampleID != nil ? sampled : try await database.programHistory(reduceProgram, before: before)
            let reduceBytes = sampled.first.map { $0.inputBytes * UInt64(max(job.partitionCount, 1)) }
            let info = dearest.flatMap { nodes[$0] }
            let worst = WorstCase.execution(
                of: reduceJob, requested: config.scheduler.requestedResources(reduceJob), list: info?.priceList, capacity: info?.maxCapacity ?? Resources()) ?? 0
            parts.append(Estimator.part(
                partition: -1, nodeID: nil, inputBytes: reduceBytes, samples: reduceSamples,
                basis: reduceSamples.isEmpty ? .request : (sampleID != nil ? .sample : .history),
                list: info?.priceList, replicas: 1, worstPerExecution: worst, executionsPerPartition: attempts))
        }
        if parts.allSatisfy({ $0.basis == .request }) { basis = .request }
        var unbounded = job
        unbounded.budget = nil
        let known = input.nodes.map(\.state)
        return JobEstimate(
            basis: basis, basisDetail: detail, parts: parts, worstCase: try await hold(for: unbounded, nodes: known),
            hold: try await hold(for: job, nodes: known), sampleJobID: sampleID)
    }

    /// Submits the first partition of `job` as a job of its own, the sample an estimate
    /// scales from (`cod job estimate --sample`); a reduce task reduces that one partition. It
    /// is a job like any: it holds and pays from the owner's account.
    public func submitSample(of submitted: Job, owner: Principal?) async throws -> String {
        var sample = submitted
        sample.name = ""
        sample.meta["cod.sample"] = "partition 0"
        return try await submit(sample, owner: owner, onlyFirstPartition: true).jobID
    }
}

extension Orchestrator {
    /// Charges long-running jobs for the periods their executions held resources, and stops
    /// those whose hold cannot pay the next period (each second, from the ticker).
    func chargeLongRunningJobs() async {
        do {
            for (jobID, reason) in try await database.longRunningJobsOutOfCredit(now: nowNanos()) {
                logger.info("stopping job \(jobID): \(reason)")
                _ = try? await stop(jobReference: jobID, reason: reason)
            }
        } catch {
            logger.warning("charging long-running jobs failed: \(error)")
        }
    }
}
