/// A request to reconcile one job: created on submit, on every execution update, on stop, and
/// as a delayed follow-up. The scheduler turns one evaluation into one ``Plan``.
public struct Evaluation: Codable, Sendable, Hashable, Identifiable {
    public var id: String
    public var namespace: String
    public var jobID: String
    public var triggeredBy: Trigger
    public var priority: Int
    public var type: String
    public var status: Status
    public var comment: String
    /// Unix nanoseconds before which the evaluation must not run; 0 for "now".
    public var waitUntil: Int64
    public var createTime: Int64
    public var modifyTime: Int64

    public init(
        id: String, namespace: String, jobID: String, triggeredBy: Trigger, priority: Int = 0, type: String = "batch",
        status: Status = .pending, comment: String = "", waitUntil: Int64 = 0, createTime: Int64, modifyTime: Int64
    ) {
        self.id = id
        self.namespace = namespace
        self.jobID = jobID
        self.triggeredBy = triggeredBy
        self.priority = priority
        self.type = type
        self.status = status
        self.comment = comment
        self.waitUntil = waitUntil
        self.createTime = createTime
        self.modifyTime = modifyTime
    }

    enum CodingKeys: String, CodingKey {
        case id = "ID", namespace = "Namespace", jobID = "JobID", triggeredBy = "TriggeredBy"
        case priority = "Priority", type = "Type", status = "Status", comment = "Comment"
        case waitUntil = "WaitUntil", createTime = "CreateTime", modifyTime = "ModifyTime"
    }

    /// Why an evaluation exists.
    public enum Trigger: String, Codable, Sendable, Hashable, CaseIterable {
        case jobRegister = "job-register"
        case jobCancel = "job-cancel"
        case jobQueue = "job-queue"
        case jobTimeout = "job-timeout"
        case execUpdate = "exec-update"
        case execFailure = "exec-failure"
        case execTimeout = "exec-timeout"
        case nodeJoin = "node-join"
        case nodeLeave = "node-leave"
        case restart = "orchestrator-restart"
        /// A node that produced some of the job's results unchecked was caught lying.
        case recheck = "result-recheck"
    }

    /// - `pending`: can transition to complete, failed, cancelled.
    /// - others: terminal.
    public enum Status: String, Codable, Sendable, Hashable, CaseIterable {
        case pending
        case complete
        case failed
        case cancelled = "canceled"
    }
}
