import Foundation
public import Models
import Yams

/// Reads a compute node's price list (YAML or JSON): a mapping of `Currency` and rates in
/// micro-credits. Rates are read from the text as written, never through floating point, and
/// every problem is reported at once.
///
/// ```yaml
/// Currency: credit
/// Start: 1000          # per execution
/// PerCPUSecond: 50
/// PerGiBSecond: 16.6667
/// Minimum: 1000
/// ```
public enum PriceListParser {
    public static func parse(_ text: String, source: String = "the price list") throws -> PriceList {
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            throw CodError(.badRequest, "\(source) is not valid YAML or JSON: \(JobSpecParser.describeYAMLError(error))")
        }
        guard case .mapping(let mapping)? = node else {
            throw CodError(.badRequest, "\(source) must be a mapping of Currency and rates, e.g. PerCPUSecond: 50")
        }
        var problems: [String] = []
        var list = PriceList()
        var seen = Set<String>()
        for (key, value) in mapping {
            guard case .scalar(let name) = key else {
                problems.append("a key that is not a plain name")
                continue
            }
            guard seen.insert(name.string).inserted else {
                problems.append("\(name.string) is given twice")
                continue
            }
            guard case .scalar(let scalar) = value else {
                problems.append("\(name.string) must be a single value")
                continue
            }
            if name.string == "Currency" {
                list.currency = scalar.string
                continue
            }
            var problem: String?
            let rate = Rate.parse(scalar.string, problem: &problem)
            switch name.string {
            case "Start": list.start = rate ?? list.start
            case "PerCPUSecond": list.perCPUSecond = rate ?? list.perCPUSecond
            case "PerGiBSecond": list.perGiBSecond = rate ?? list.perGiBSecond
            case "PerGPUSecond": list.perGPUSecond = rate ?? list.perGPUSecond
            case "PerGiBFetched": list.perGiBFetched = rate ?? list.perGiBFetched
            case "Minimum": list.minimum = rate ?? list.minimum
            default:
                problems.append("\(name.string) is not a price list field (\(PriceList.keys.joined(separator: ", ")))")
                continue
            }
            if let problem { problems.append("\(name.string) \(problem)") }
        }
        if let problem = list.problem { problems.append(problem) }
        guard problems.isEmpty else {
            throw CodError(.badRequest, "\(source) is not valid: " + problems.joined(separator: "; "))
        }
        return list
    }
}
