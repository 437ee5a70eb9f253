public import Models

/// Matches job constraints against node labels with Kubernetes label-selector semantics.
public enum LabelSelector {
    /// Whether every requirement holds for `labels`. Returns the first failing requirement's
    /// description as the reason when one does not.
    public static func firstMismatch(_ requirements: [LabelSelectorRequirement], labels: [String: String]) -> String? {
        for requirement in requirements where !matches(requirement, labels: labels) {
            let values = requirement.values.joined(separator: ",")
            let actual = labels[requirement.key].map { "is \"\($0)\"" } ?? "is not set"
            return "label \(requirement.key) \(actual), constraint is \(requirement.operator) \(values)"
                .trimmingSpaces()
        }
        return nil
    }

    public static func matches(_ requirement: LabelSelectorRequirement, labels: [String: String]) -> Bool {
        let value = labels[requirement.key]
        switch requirement.operator.lowercased() {
        case "=", "==", "in": return value.map { requirement.values.contains($0) } ?? false
        case "!=", "notin": return value.map { !requirement.values.contains($0) } ?? true
        case "exists": return value != nil
        case "!": return value == nil
        case "gt":
            guard let value, let actual = Int64(value), let bound = requirement.values.first.flatMap({ Int64($0) })
            else { return false }
            return actual > bound
        case "lt":
            guard let value, let actual = Int64(value), let bound = requirement.values.first.flatMap({ Int64($0) })
            else { return false }
            return actual < bound
        default: return false
        }
    }
}
