/// How alive a node looks from its heartbeats.
///
/// - `HEALTHY`: heartbeats arrive; the node gets work.
/// - `SUSPECT`: silent for longer than a few heartbeat intervals; its running work is left
///   alone (it may be a slow network or a busy machine), but no new work is placed there.
/// - `LOST`: silent past the node timeout, or never reconnected; its executions are run
///   elsewhere. Only a new handshake makes it healthy again, and that handshake tells it to stop
///   whatever it still runs that was given up.
public enum NodeLiveness: String, Codable, Sendable, Hashable, CaseIterable {
    case healthy = "HEALTHY"
    case suspect = "SUSPECT"
    case lost = "LOST"
}

/// When silence makes a node suspect, then lost (nanoseconds since its last heartbeat).
public struct LivenessPolicy: Sendable, Hashable {
    public var suspectAfter: Int64
    public var lostAfter: Int64

    public init(suspectAfter: Int64, lostAfter: Int64) {
        self.suspectAfter = min(suspectAfter, lostAfter)
        self.lostAfter = lostAfter
    }

    /// Suspect after three missed heartbeats, or halfway to lost when that comes first, but
    /// never before one and a half intervals (a healthy node is silent for a whole interval).
    public init(heartbeatInterval: Int64, lostAfter: Int64) {
        self.init(suspectAfter: min(3 * heartbeatInterval, max(lostAfter / 2, heartbeatInterval * 3 / 2)), lostAfter: lostAfter)
    }
}

/// The membership state machine: pure, driven by what happened and how long it has been.
public enum NodeLivenessMachine {
    public enum Event: Sendable, Hashable {
        /// The node said hello (connected or reconnected).
        case handshake
        /// A heartbeat or report arrived on its current connection.
        case heartbeat
        /// A periodic check: this long since the last heartbeat.
        case silence(Int64)
    }

    /// What the orchestrator does about a transition.
    public enum Effect: Sendable, Hashable {
        case none
        /// Stop placing new work on it.
        case suspected
        /// Heartbeats came back before it was lost.
        case recovered
        /// Give up its executions (they are rescheduled) and close its connection.
        case lost
        /// A lost node is back through a new handshake.
        case rejoined
    }

    public static func step(_ state: NodeLiveness, _ event: Event, policy: LivenessPolicy) -> (NodeLiveness, Effect) {
        switch (state, event) {
        case (.lost, .handshake):
            return (.healthy, .rejoined)
        case (.suspect, .handshake), (.suspect, .heartbeat):
            return (.healthy, .recovered)
        case (.healthy, .handshake), (.healthy, .heartbeat):
            return (.healthy, .none)
        case (.lost, .heartbeat):
            // A heartbeat from a connection that was given up: only a new handshake counts.
            return (.lost, .none)
        case (.lost, .silence):
            return (.lost, .none)
        case (.healthy, .silence(let quiet)), (.suspect, .silence(let quiet)):
            if quiet > policy.lostAfter { return (.lost, .lost) }
            if quiet > policy.suspectAfter { return state == .suspect ? (.suspect, .none) : (.suspect, .suspected) }
            return (state, .none)
        }
    }
}
