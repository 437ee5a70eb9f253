/// The four kinds of job Bacalhau defines. On the wire and in stored jobs the type stays the
/// lower-case string (`Job.type`); code reads it through ``Job/jobType``.
public enum JobType: String, Sendable, Hashable, CaseIterable {
    /// Runs `Count` partitions to completion.
    case batch
    /// Runs `Count` replicas until stopped, replacing any that end.
    case service
    /// Runs once on every matching node; done when all of them complete.
    case ops
    /// Runs on every matching node, including nodes that join later, until stopped.
    case daemon

    /// Types that run until stopped: no default execution timeout, never "completed".
    public var isLongRunning: Bool { self == .service || self == .daemon }

    /// Types that run one execution per matching node rather than per partition.
    public var runsOnEveryNode: Bool { self == .ops || self == .daemon }

    /// Parses a job's type as users write it (any case); nil for anything else.
    public init?(spec: String) {
        self.init(rawValue: spec.lowercased())
    }
}

extension Job {
    /// The job's type; a stored job always has a valid one (the validator sees to it), and
    /// anything else reads as batch.
    public var jobType: JobType { JobType(spec: type) ?? .batch }
}
