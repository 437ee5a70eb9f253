/// What a user may do, in Bacalhau's vocabulary (`read:job`, `write:node`, `*`) plus Cod's own
/// data and administration actions.
public enum Action: String, Codable, Sendable, CaseIterable {
    case readJob = "read:job", writeJob = "write:job"
    case readNode = "read:node", writeNode = "write:node"
    case readAgent = "read:agent", writeAgent = "write:agent"
    case readData = "read:data", writeData = "write:data"
    /// Garbage collection, node approval, users, and every job's secrets.
    case admin
    /// Every action but `admin` (Bacalhau's `*`).
    case all = "*"

    /// Whether holding `self` grants `action`.
    func grants(_ action: Action) -> Bool {
        switch self {
        case .admin: return true
        case .all: return action != .admin
        default: return self == action
        }
    }

    /// The action called `name`; a bad request naming the known ones otherwise.
    static func named(_ name: String) throws -> Action {
        guard let action = Action(rawValue: name) else {
            throw CodError(.badRequest, "unknown action \"\(name.prefix(40))\"", hint: "use " + allCases.map(\.rawValue).joined(separator: ", "))
        }
        return action
    }

    /// Whether the action reads or changes jobs, the only resources that live in namespaces.
    public var isJobAction: Bool { self == .readJob || self == .writeJob }
}

/// A set of actions, optionally limited to namespaces (Bacalhau's `Capabilities` entry with
/// Cod's `Namespaces`). The limit applies to job actions; nodes, agents and data have no
/// namespace.
public struct Capability: Codable, Sendable, Hashable {
    public var actions: [Action]
    /// Empty: every namespace.
    public var namespaces: [String]

    public init(actions: [Action], namespaces: [String] = []) {
        self.actions = actions
        self.namespaces = namespaces
    }

    enum CodingKeys: String, CodingKey {
        case actions = "Actions", namespaces = "Namespaces"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        actions = try (c.decodeIfPresent([String].self, forKey: .actions) ?? []).map(Action.named)
        namespaces = try c.decodeIfPresent([String].self, forKey: .namespaces) ?? []
    }

    /// Parses `read:job,write:job@team-a,team-b`: actions, then optionally `@` and namespaces.
    public static func parse(_ text: String) throws -> Capability {
        let parts = text.split(separator: "@", maxSplits: 1).map(String.init)
        let actions = try (parts.first ?? "").split(separator: ",").map { try Action.named(String($0)) }
        guard !actions.isEmpty else { throw CodError(.badRequest, "a capability needs at least one action, as in read:job,write:job@default") }
        let namespaces = parts.count > 1 ? parts[1].split(separator: ",").map(String.init) : []
        return Capability(actions: actions, namespaces: namespaces)
    }

    func grants(_ action: Action, namespace: String?) -> Bool {
        guard actions.contains(where: { $0.grants(action) }) else { return false }
        guard action.isJobAction, !namespaces.isEmpty else { return true }
        // Without a namespace the question is whether the action is held anywhere.
        guard let namespace else { return true }
        return namespaces.contains(namespace)
    }
}

/// Who a request comes from once its credentials are checked.
public struct Principal: Sendable, Hashable {
    public var name: String
    public var capabilities: [Capability]
    /// Set for a running execution's own key: it acts for the job's owner, but only on the
    /// job's tree (submitting children, reading them).
    public var scope: ExecutionScope?

    public init(name: String, capabilities: [Capability], scope: ExecutionScope? = nil) {
        self.name = name
        self.capabilities = capabilities
        self.scope = scope
    }

    /// Whether this principal may do `action` in `namespace` (nil: in some namespace).
    public func allows(_ action: Action, namespace: String? = nil) -> Bool {
        capabilities.contains { $0.grants(action, namespace: namespace) }
    }

    public var isAdmin: Bool { allows(.admin) }

    /// The namespaces in which `action` is allowed; nil when it is allowed in all of them.
    public func namespaces(for action: Action) -> Set<String>? {
        var names = Set<String>()
        for capability in capabilities where capability.actions.contains(where: { $0.grants(action) }) {
            if capability.namespaces.isEmpty { return nil }
            names.formUnion(capability.namespaces)
        }
        return names
    }

    /// Whether `job`'s secrets (its `Env` values and inline inputs) may be shown to this principal.
    public func maySeeSecrets(of job: Job) -> Bool {
        isAdmin || (!job.owner.isEmpty && job.owner == name)
    }
}

/// A user as the API shows it: never the key or password, only what identifies and limits it.
public struct UserInfo: Codable, Sendable, Hashable {
    public var name: String
    public var capabilities: [Capability]
    /// The first characters of the API key (`cod_ab12…`), to tell keys apart; empty for a
    /// password user.
    public var keyPrefix: String
    public var hasPassword: Bool
    /// Unix nanoseconds.
    public var createTime: Int64

    public init(name: String, capabilities: [Capability], keyPrefix: String, hasPassword: Bool, createTime: Int64) {
        self.name = name
        self.capabilities = capabilities
        self.keyPrefix = keyPrefix
        self.hasPassword = hasPassword
        self.createTime = createTime
    }

    enum CodingKeys: String, CodingKey {
        case name = "Name", capabilities = "Capabilities", keyPrefix = "KeyPrefix", hasPassword = "HasPassword"
        case createTime = "CreateTime"
    }

    /// Whether `name` can name a user: 1 to 64 letters, digits, `-`, `_` or `.` (it becomes part
    /// of pin holder names and is shown in tables).
    public static func isValidName(_ name: String) -> Bool {
        (1...64).contains(name.count) && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
    }
}

extension Job {
    /// What someone who is not the job's owner (nor an admin) sees: `Env` values and inline
    /// inputs' contents are replaced, their names kept.
    public func hidingSecrets() -> Job {
        var job = self
        for index in job.tasks.indices {
            job.tasks[index].env = job.tasks[index].env.mapValues { _ in Job.hiddenValue }
            for input in job.tasks[index].inputSources.indices where job.tasks[index].inputSources[input].source.type == "inline" {
                job.tasks[index].inputSources[input].source.params = job.tasks[index].inputSources[input].source.params.mapValues { _ in
                    .string(Job.hiddenValue)
                }
            }
        }
        return job
    }

    public static let hiddenValue = "<hidden: only the job's owner sees it>"
}

/// The execution an API key was minted for (`COD_API_KEY` in a job that may start children).
public struct ExecutionScope: Sendable, Hashable {
    public var jobID: String
    public var executionID: String

    public init(jobID: String, executionID: String) {
        self.jobID = jobID
        self.executionID = executionID
    }
}
