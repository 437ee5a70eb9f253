import Models

/// One cron expression: five fields (minute hour day-of-month month day-of-week) with Vixie
/// cron's lists, ranges and steps (`*/15`, `0-23/2`, `1,15`, `MON-FRI`, `3/2` = from 3 to the
/// field's end by 2), `?` for `*`, the macros `@yearly` (`@annually`), `@monthly`, `@weekly`,
/// `@daily` (`@midnight`) and `@hourly`, and `@every 15m`. A sixth, leading seconds field
/// only when the caller allows seconds: six-field cron means different things in different
/// tools (a year in cronexpr, seconds in others), so it is never guessed.
///
/// When both day-of-month and day-of-week restrict, a day matching either fires, as in Vixie
/// cron and croniter; a day field that is `*` (or `?`), or that names every day while the
/// other has a `*` in it (`*/1`), does not restrict, so only the other one does.
///
/// Matching is on the wall clock; ``CronSchedule`` turns wall times into instants in a zone.
public struct CronExpression: Sendable, Hashable, CustomStringConvertible {
    /// The text as written.
    public let description: String
    /// `@every`: a fixed interval in seconds, ticking at its multiples since the Unix epoch (so
    /// every orchestrator, before and after a restart, agrees on the ticks).
    public let interval: Int64?
    let seconds: UInt64
    let minutes: UInt64
    let hours: UInt64
    let days: UInt64
    let months: UInt64
    let weekdays: UInt64
    /// Whether day-of-month or day-of-week were left as `*`.
    let anyDay: Bool
    let anyWeekday: Bool

    /// The smallest `@every` interval.
    public static let minimumInterval: Int64 = 1
    /// How far ahead a next time is looked for: an expression such as `0 0 29 2 1` matches
    /// rarely, one such as `0 0 30 2 *` never (and is refused when parsed).
    static let searchYears = 30

    /// Parses `text`; `allowSeconds` accepts six fields, the first being seconds.
    public init(_ text: String, allowSeconds: Bool = false) throws(CronError) {
        let trimmed = text.trimmingSpaces()
        description = trimmed
        var fields = trimmed.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard let first = fields.first else { throw CronError(trimmed, "is empty: a cron expression has five fields, e.g. \"0 2 * * *\"") }
        if first.hasPrefix("CRON_TZ=") || first.hasPrefix("TZ=") {
            throw CronError(trimmed, "names its zone in the expression; set TimeZone on the schedule instead")
        }
        if first.hasPrefix("@") {
            if first.lowercased() == "@every" {
                guard fields.count == 2, let seconds = ResourceParsing.seconds(fields[1]), seconds >= Self.minimumInterval else {
                    throw CronError(trimmed, "needs one duration of at least 1s after @every, e.g. \"@every 15m\" or \"@every 1h30m\"")
                }
                guard seconds <= 366 * 86_400 else {
                    throw CronError(trimmed, "has an interval over a year; use a cron expression such as \"@yearly\"")
                }
                interval = seconds
                (self.seconds, minutes, hours, days, months, weekdays, anyDay, anyWeekday) = (0, 0, 0, 0, 0, 0, true, true)
                return
            }
            guard fields.count == 1, let expansion = Self.macros[first.lowercased()] else {
                throw CronError(trimmed, "is not a known macro; use @yearly, @monthly, @weekly, @daily, @hourly or @every DURATION")
            }
            fields = expansion.split(separator: " ").map(String.init)
        }
        interval = nil
        switch fields.count {
        case 5:
            seconds = 1
        case 6 where allowSeconds:
            seconds = try Self.field(fields.removeFirst(), .second, in: trimmed)
        case 6:
            throw CronError(
                trimmed, "has 6 fields; a leading seconds field needs CronSeconds: true on the schedule (--seconds for cod schedule next)")
        default:
            throw CronError(trimmed, "has \(fields.count) fields; write minute hour day-of-month month day-of-week, e.g. \"0 2 * * *\"")
        }
        minutes = try Self.field(fields[0], .minute, in: trimmed)
        hours = try Self.field(fields[1], .hour, in: trimmed)
        days = try Self.field(fields[2], .dayOfMonth, in: trimmed)
        months = try Self.field(fields[3], .month, in: trimmed)
        var weekdays = try Self.field(fields[4], .dayOfWeek, in: trimmed)
        // 7 is Sunday too.
        if weekdays & (1 << 7) != 0 { weekdays = (weekdays | 1) & ~(1 << 7) }
        self.weekdays = weekdays
        // A field left as `*`, or naming every day while the other day field has a `*` in it
        // (croniter's reading, which the tests compare with), does not restrict.
        let allDays: UInt64 = (1 << 32) - 2
        let allWeekdays: UInt64 = (1 << 7) - 1
        anyDay = ["*", "?"].contains(fields[2]) || (days == allDays && fields[4].contains("*"))
        anyWeekday = ["*", "?"].contains(fields[4]) || (weekdays == allWeekdays && fields[2].contains("*"))
        // A day that exists in one of the months (29 February counts: leap years have it).
        if anyWeekday, !(1...12).contains(where: { month in months.has(month) && (1...Self.longest(month)).contains(where: days.has) }) {
            throw CronError(trimmed, "names no day that exists in its months (e.g. 30 February), so it would never fire")
        }
    }

    static let macros: [String: String] = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
    ]

    static func longest(_ month: Int) -> Int { month == 2 ? 29 : CivilTime.daysIn(month: month, year: 2000) }

    enum Field: String {
        case second, minute, hour, dayOfMonth = "day of month", month, dayOfWeek = "day of week"

        var range: ClosedRange<Int> {
            switch self {
            case .second, .minute: 0...59
            case .hour: 0...23
            case .dayOfMonth: 1...31
            case .month: 1...12
            // 7 is accepted as Sunday; a step from a start runs to Saturday.
            case .dayOfWeek: 0...7
            }
        }

        var names: [String] {
            switch self {
            case .month: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
            case .dayOfWeek: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
            default: []
            }
        }

        /// The first name's number.
        var firstName: Int { self == .month ? 1 : 0 }
    }

    /// The set of values `text` names in `field`, as bits.
    static func field(_ text: String, _ field: Field, in expression: String) throws(CronError) -> UInt64 {
        func fail(_ why: String) -> CronError { CronError(expression, "\(field.rawValue) field \"\(text)\": \(why)") }
        func value(_ token: Substring) throws(CronError) -> Int {
            if let number = Int(token) {
                guard field.range.contains(number) else {
                    throw fail("\(number) is outside \(field.range.lowerBound)-\(field.range.upperBound)")
                }
                return number
            }
            if let index = field.names.firstIndex(of: token.uppercased()) { return index + field.firstName }
            throw fail("\"\(token)\" is not a number\(field.names.isEmpty ? "" : " or a name such as \(field.names[0])")")
        }
        var bits: UInt64 = 0
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard !item.isEmpty else { throw fail("has an empty list item") }
            let parts = item.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count <= 2 else { throw fail("has more than one step") }
            var step = 1
            if parts.count == 2 {
                guard let number = Int(parts[1]), number >= 1, number <= field.range.upperBound else {
                    throw fail("step \"\(parts[1])\" must be a number from 1 to \(field.range.upperBound)")
                }
                step = number
            }
            let span = parts[0]
            var low: Int
            var high: Int
            if span == "*" || span == "?" {
                low = field.range.lowerBound
                high = field == .dayOfWeek ? 6 : field.range.upperBound
            } else if let dash = span.firstIndex(of: "-") {
                low = try value(span[..<dash])
                high = try value(span[span.index(after: dash)...])
                guard low <= high else { throw fail("range \(span) runs backwards") }
            } else {
                low = try value(span)
                // `3/2` runs from 3 to the field's end.
                high = parts.count == 2 ? (field == .dayOfWeek ? 6 : field.range.upperBound) : low
            }
            for number in stride(from: low, through: high, by: step) { bits |= 1 << UInt64(number) }
        }
        return bits
    }

    // MARK: Matching wall times

    /// The first wall time at or after `wall` (seconds, the wall clock read as UTC) that the
    /// expression matches, within ``searchYears``; nil when none is.
    func nextWall(atOrAfter wall: Int64) -> Int64? {
        var time = CivilTime(wall)
        let lastYear = time.year + Self.searchYears
        while time.year <= lastYear {
            if !months.has(time.month) {
                time.nextMonth()
                continue
            }
            if time.day > CivilTime.daysIn(month: time.month, year: time.year) {
                time.nextMonth()
                continue
            }
            if !dayMatches(time) {
                time.nextDay()
                continue
            }
            if !hours.has(time.hour) {
                time.nextHour()
                continue
            }
            if !minutes.has(time.minute) {
                time.nextMinute()
                continue
            }
            if !seconds.has(time.second) {
                time.nextSecond()
                continue
            }
            return time.wallSeconds
        }
        return nil
    }

    func dayMatches(_ time: CivilTime) -> Bool {
        let day = days.has(time.day)
        let weekday = weekdays.has(time.weekday)
        if anyDay || anyWeekday { return day && weekday }
        return day || weekday
    }
}

/// Why a cron expression was refused, naming it.
public struct CronError: Error, Sendable, Equatable, CustomStringConvertible {
    public let expression: String
    public let reason: String

    init(_ expression: String, _ reason: String) {
        self.expression = expression
        self.reason = reason
    }

    public var description: String { "cron expression \"\(expression)\" \(reason)" }
}

extension UInt64 {
    func has(_ value: Int) -> Bool { value >= 0 && value < 64 && self & (1 << UInt64(value)) != 0 }
}

/// A wall-clock time broken into fields, with the calendar arithmetic of ``RFC3339`` (no
/// calendar library, no zone).
struct CivilTime: Equatable {
    var year: Int
    var month: Int
    var day: Int
    var hour: Int
    var minute: Int
    var second: Int

    init(year: Int, month: Int, day: Int, hour: Int = 0, minute: Int = 0, second: Int = 0) {
        (self.year, self.month, self.day, self.hour, self.minute, self.second) = (year, month, day, hour, minute, second)
    }

    init(_ wall: Int64) {
        let days = wall.floorDivided(by: 86_400)
        let rest = Int(wall - days * 86_400)
        let (year, month, day) = RFC3339.civilFromDays(days)
        self.init(year: Int(year), month: Int(month), day: Int(day), hour: rest / 3600, minute: rest % 3600 / 60, second: rest % 60)
    }

    /// Days since 1970-01-01.
    static func days(year: Int, month: Int, day: Int) -> Int {
        Int(RFC3339.daysFromCivil(Int64(year), Int64(month), Int64(day)))
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    var wallSeconds: Int64 {
        Int64(Self.days(year: year, month: month, day: day)) * 86_400 + Int64(hour * 3600 + minute * 60 + second)
    }

    /// 0 is Sunday.
    var weekday: Int {
        let days = Self.days(year: year, month: month, day: day)
        return ((days % 7) + 11) % 7  // 1970-01-01 was a Thursday (4)
    }

    mutating func nextMonth() {
        (hour, minute, second, day) = (0, 0, 0, 1)
        if month == 12 {
            month = 1
            year += 1
        } else {
            month += 1
        }
    }

    mutating func nextDay() {
        (hour, minute, second) = (0, 0, 0)
        day += 1
        if day > Self.daysIn(month: month, year: year) { nextMonth() }
    }

    mutating func nextHour() {
        (minute, second) = (0, 0)
        hour += 1
        if hour > 23 { nextDay() }
    }

    mutating func nextMinute() {
        second = 0
        minute += 1
        if minute > 59 { nextHour() }
    }

    mutating func nextSecond() {
        second += 1
        if second > 59 { nextMinute() }
    }
}
