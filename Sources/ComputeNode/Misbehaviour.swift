import Foundation

/// A deliberately dishonest node, for tests and demos of verification (`cod devstack
/// --bad-nodes N --bad-mode MODE`): it runs the work as usual, then alters the outputs it
/// publishes. Never set on a node that serves real users.
public enum Misbehaviour: String, Sendable, CaseIterable {
    /// One byte of one output file is changed (an output file is added when there is none).
    case corrupt
    /// Every result folder is published empty.
    case empty
    /// Corrupt or empty, chosen at random for each execution.
    case random

    /// Alters the result folders in `bundle` (named `resultNames`) as this mode says.
    func apply(toBundle bundle: URL, resultNames: [String]) throws {
        let fm = FileManager.default
        var mode = self
        if mode == .random { mode = Bool.random() ? .corrupt : .empty }
        let folders = resultNames.sorted().map { bundle.appendingPathComponent($0) }
        switch mode {
        case .empty:
            for folder in folders {
                for name in (try? fm.contentsOfDirectory(atPath: folder.path)) ?? [] {
                    try fm.removeItem(at: folder.appendingPathComponent(name))
                }
            }
        case .corrupt, .random:
            for folder in folders {
                guard let enumerator = fm.enumerator(at: folder, includingPropertiesForKeys: [.isRegularFileKey]) else { continue }
                for case let file as URL in enumerator {
                    guard (try? file.resourceValues(forKeys: [.isRegularFileKey]))?.isRegularFile == true,
                          var bytes = try? Data(contentsOf: file), !bytes.isEmpty
                    else { continue }
                    bytes[bytes.count / 2] ^= 0x01
                    try bytes.write(to: file)
                    return
                }
            }
            guard let first = folders.first else { return }
            try Data("not the program's output\n".utf8).write(to: first.appendingPathComponent("cod-bad-node"))
        }
    }
}
