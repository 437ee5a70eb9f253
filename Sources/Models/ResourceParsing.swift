/// Parses resource amounts the way Bacalhau users write them.
public enum ResourceParsing {
    /// The most cores or GPUs a spec may ask for: larger numbers are mistakes, and engines turn
    /// these into fixed-width integers (nano-CPUs, device counts) that must not overflow.
    public static let maxCores: Double = 1_000_000
    public static let maxGPUs: UInt64 = 1_024

    /// Kubernetes CPU notation: `500m` is half a core, `2` or `2.5` are cores.
    public static func cpu(_ text: String) -> Double? {
        let trimmed = text.trimmingSpaces()
        if trimmed.isEmpty { return nil }
        let millicores = trimmed.hasSuffix("m")
        guard let number = Double(millicores ? trimmed.dropLast() : Substring(trimmed)), number >= 0, number.isFinite else { return nil }
        let cores = millicores ? number / 1000 : number
        return cores <= maxCores ? cores : nil
    }

    /// Byte sizes in humanize notation: `512Mb` and `512MB` are 512,000,000; `1GiB` is 2^30;
    /// a plain number is bytes. Case-insensitive.
    public static func bytes(_ text: String) -> UInt64? {
        let trimmed = text.trimmingSpaces().lowercased()
        if trimmed.isEmpty { return nil }
        var numberPart = ""
        var unitPart = ""
        for character in trimmed {
            if unitPart.isEmpty, character.isNumber || character == "." {
                numberPart.append(character)
            } else if character != " " {
                unitPart.append(character)
            }
        }
        guard let number = Double(numberPart), number >= 0, number.isFinite else { return nil }
        let multiplier: Double
        switch unitPart {
        case "", "b", "byte", "bytes": multiplier = 1
        case "k", "kb": multiplier = 1e3
        case "ki", "kib": multiplier = 1024
        case "m", "mb": multiplier = 1e6
        case "mi", "mib": multiplier = 1_048_576
        case "g", "gb": multiplier = 1e9
        case "gi", "gib": multiplier = 1_073_741_824
        case "t", "tb": multiplier = 1e12
        case "ti", "tib": multiplier = 1_099_511_627_776
        default: return nil
        }
        let value = number * multiplier
        guard value < 1.8e19 else { return nil }
        return UInt64(value.rounded())
    }

    /// A GPU count: a non-negative integer.
    public static func gpu(_ text: String) -> UInt64? {
        guard let count = UInt64(text.trimmingSpaces()), count <= maxGPUs else { return nil }
        return count
    }

    /// Parses a whole ``ResourcesConfig``; empty fields take `defaults`' values.
    /// Returns nil for a field that does not parse (validation reports which).
    public static func resources(_ config: ResourcesConfig, defaults: Resources) -> Resources? {
        var result = defaults
        if !config.cpu.isEmpty {
            guard let value = cpu(config.cpu) else { return nil }
            result.cpu = value
        }
        if !config.memory.isEmpty {
            guard let value = bytes(config.memory) else { return nil }
            result.memory = value
        }
        if !config.disk.isEmpty {
            guard let value = bytes(config.disk) else { return nil }
            result.disk = value
        }
        if !config.gpu.isEmpty {
            guard let value = gpu(config.gpu) else { return nil }
            result.gpu = value
        }
        return result
    }

    /// Formats bytes for people: `512.0 MB`, `1.0 GB`.
    /// Seconds in a duration like `90`, `90s`, `30m`, `24h`, `7d` or `1h30m`; nil when invalid.
    public static func seconds(_ text: String) -> Int64? {
        let trimmed = text.trimmingSpaces().lowercased()
        guard !trimmed.isEmpty else { return nil }
        if let plain = Int64(trimmed), plain >= 0 { return plain }
        var total: Int64 = 0
        var number = ""
        for character in trimmed {
            if character.isASCII && character.isNumber {
                number.append(character)
                continue
            }
            let unit: Int64
            switch character {
            case "s": unit = 1
            case "m": unit = 60
            case "h": unit = 3600
            case "d": unit = 86_400
            default: return nil
            }
            guard let value = Int64(number), value <= Int64.max / unit / 2 else { return nil }
            total += value * unit
            number = ""
        }
        return number.isEmpty ? total : nil
    }

    public static func formatBytes(_ value: UInt64) -> String {
        let units = ["B", "KB", "MB", "GB", "TB", "PB"]
        var amount = Double(value)
        var index = 0
        while amount >= 1000, index < units.count - 1 {
            amount /= 1000
            index += 1
        }
        if index == 0 { return "\(value) B" }
        let tenths = (amount * 10).rounded() / 10
        return "\(tenths) \(units[index])"
    }
}

extension String {
    /// Trims spaces, tabs and newlines at both ends (Foundation-free).
    public func trimmingSpaces() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let start = firstIndex(where: { !isSpace($0) }) else { return "" }
        let end = lastIndex(where: { !isSpace($0) })!
        return String(self[start...end])
    }
}
