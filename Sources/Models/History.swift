/// One line of a job's history: a job-level or execution-level event.
public struct JobHistory: Codable, Sendable, Hashable {
    public var seqNum: Int64
    public var type: Level
    public var jobID: String
    public var jobVersion: UInt64
    public var executionID: String
    public var nodeID: String
    public var event: Event
    /// Unix nanoseconds.
    public var time: Int64

    public init(
        seqNum: Int64 = 0, type: Level, jobID: String, jobVersion: UInt64, executionID: String = "", nodeID: String = "",
        event: Event, time: Int64
    ) {
        self.seqNum = seqNum
        self.type = type
        self.jobID = jobID
        self.jobVersion = jobVersion
        self.executionID = executionID
        self.nodeID = nodeID
        self.event = event
        self.time = time
    }

    public enum Level: String, Codable, Sendable, Hashable {
        case job = "JobLevel"
        case execution = "ExecutionLevel"
    }

    enum CodingKeys: String, CodingKey {
        case seqNum = "SeqNum", type = "Type", jobID = "JobID", jobVersion = "JobVersion"
        case executionID = "ExecutionID", nodeID = "NodeID", event = "Event", time = "Time"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        seqNum = try c.decodeIfPresent(Int64.self, forKey: .seqNum) ?? 0
        type = try c.decode(Level.self, forKey: .type)
        jobID = try c.decode(String.self, forKey: .jobID)
        jobVersion = try c.decodeIfPresent(UInt64.self, forKey: .jobVersion) ?? 0
        executionID = try c.decodeIfPresent(String.self, forKey: .executionID) ?? ""
        nodeID = try c.decodeIfPresent(String.self, forKey: .nodeID) ?? ""
        event = try c.decode(Event.self, forKey: .event)
        time = try RFC3339.parse(try c.decode(String.self, forKey: .time)) ?? 0
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(seqNum, forKey: .seqNum)
        try c.encode(type, forKey: .type)
        try c.encode(jobID, forKey: .jobID)
        try c.encode(jobVersion, forKey: .jobVersion)
        try c.encode(executionID, forKey: .executionID)
        try c.encode(nodeID, forKey: .nodeID)
        try c.encode(event, forKey: .event)
        try c.encode(RFC3339.format(nanos: time), forKey: .time)
    }
}

/// Something that happened, with a topic (`Scheduling`, `Execution`, `Exec Timeout`) and
/// free-form details such as `NewState`, `IsError`, `Hint`.
public struct Event: Codable, Sendable, Hashable {
    public var message: String
    public var topic: String
    public var timestamp: Int64
    public var details: [String: String]

    public init(message: String, topic: String, timestamp: Int64, details: [String: String] = [:]) {
        self.message = message
        self.topic = topic
        self.timestamp = timestamp
        self.details = details
    }

    enum CodingKeys: String, CodingKey {
        case message = "Message", topic = "Topic", timestamp = "Timestamp", details = "Details"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        message = try c.decodeIfPresent(String.self, forKey: .message) ?? ""
        topic = try c.decodeIfPresent(String.self, forKey: .topic) ?? ""
        timestamp = try RFC3339.parse(try c.decodeIfPresent(String.self, forKey: .timestamp) ?? "") ?? 0
        details = try c.decodeIfPresent([String: String].self, forKey: .details) ?? [:]
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(message, forKey: .message)
        try c.encode(topic, forKey: .topic)
        try c.encode(RFC3339.format(nanos: timestamp), forKey: .timestamp)
        try c.encode(details, forKey: .details)
    }

    /// True when the event reports an error.
    public var isError: Bool { details["IsError"] == "true" }
}

/// RFC 3339 timestamps (UTC, nanosecond precision), computed without reading any clock.
public enum RFC3339 {
    /// Formats Unix nanoseconds as `2026-11-21T08:44:57.123456789Z`.
    public static func format(nanos: Int64) -> String {
        let seconds = nanos >= 0 ? nanos / 1_000_000_000 : (nanos - 999_999_999) / 1_000_000_000
        let fraction = nanos - seconds * 1_000_000_000
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let secondOfDay = seconds - days * 86400
        let (year, month, day) = civilFromDays(days)
        func pad(_ value: Int64, _ width: Int) -> String {
            let string = String(value)
            return String(repeating: "0", count: max(0, width - string.count)) + string
        }
        var text = "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T"
        text += "\(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay % 3600 / 60, 2)):\(pad(secondOfDay % 60, 2))"
        if fraction != 0 { text += "." + pad(fraction, 9) }
        return text + "Z"
    }

    /// Parses the forms ``format(nanos:)`` writes, plus numeric offsets (`+01:00`).
    public static func parse(_ text: String) -> Int64? {
        let chars = Array(text.utf8)
        guard chars.count >= 20 else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            var value: Int64 = 0
            for index in range {
                guard index < chars.count, chars[index] >= 48, chars[index] <= 57 else { return nil }
                value = value * 10 + Int64(chars[index] - 48)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19)
        else { return nil }
        var index = 19
        var fraction: Int64 = 0
        if index < chars.count, chars[index] == UInt8(ascii: ".") {
            index += 1
            var digits = 0
            while index < chars.count, chars[index] >= 48, chars[index] <= 57 {
                if digits < 9 {
                    fraction = fraction * 10 + Int64(chars[index] - 48)
                    digits += 1
                }
                index += 1
            }
            while digits < 9 {
                fraction *= 10
                digits += 1
            }
        }
        var offset: Int64 = 0
        if index < chars.count, chars[index] == UInt8(ascii: "+") || chars[index] == UInt8(ascii: "-") {
            guard let oh = number(index + 1..<index + 3), let om = number(index + 4..<index + 6) else { return nil }
            offset = (oh * 3600 + om * 60) * (chars[index] == UInt8(ascii: "+") ? 1 : -1)
        } else if index >= chars.count || (chars[index] != UInt8(ascii: "Z") && chars[index] != UInt8(ascii: "z")) {
            return nil
        }
        let days = daysFromCivil(year, month, day)
        let seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset
        return seconds * 1_000_000_000 + fraction
    }

    // Howard Hinnant's civil calendar algorithms (the proleptic Gregorian calendar, no zone):
    // days since 1970-01-01 to (year, month, day) and back. Cron matching uses them too.
    public static func civilFromDays(_ z: Int64) -> (Int64, Int64, Int64) {
        let z = z + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }

    public static func daysFromCivil(_ y: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y - 1 : y
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }
}
