import APIClient
import Foundation
import SafeFS

/// The credentials `cod auth login` saved, one file per API address in
/// `$COD_CONFIG_DIR` (default `$XDG_CONFIG_HOME/cod`, or `~/.config/cod`) under `credentials/`,
/// each created 0600 in a 0700 folder. `cod devstack` saves its admin key for its own address
/// the same way, so a fresh clone's scripts need no setup.
struct CredentialStore {
    let directory: URL

    static var standard: CredentialStore {
        let environment = ProcessInfo.processInfo.environment
        let base = environment["COD_CONFIG_DIR"].map { URL(fileURLWithPath: $0) }
            ?? environment["XDG_CONFIG_HOME"].map { URL(fileURLWithPath: $0).appendingPathComponent("cod") }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".config/cod")
        return CredentialStore(directory: base.appendingPathComponent("credentials"))
    }

    /// The file for an API address: the address with anything but letters, digits, `.` and `-`
    /// made `_` (`http_127.0.0.1_1234`).
    func file(for baseURL: String) -> URL {
        let name = String(baseURL.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") ? $0 : "_" })
            .replacingOccurrences(of: "___", with: "_")
        return directory.appendingPathComponent(name)
    }

    func credential(for baseURL: String) -> ClientCredential? {
        guard let text = try? SecretFile.read(file(for: baseURL)),
              let saved = try? JSONDecoder().decode(Saved.self, from: Data(text.utf8))
        else { return nil }
        if let key = saved.apiKey { return .apiKey(key) }
        if let user = saved.username, let password = saved.password { return .password(user: user, password: password) }
        return nil
    }

    func save(_ credential: ClientCredential, for baseURL: String) throws {
        let saved: Saved
        switch credential {
        case .apiKey(let key): saved = Saved(apiKey: key)
        case .password(let user, let password): saved = Saved(username: user, password: password)
        }
        try SecretFile.write(String(decoding: try JSONEncoder().encode(saved), as: UTF8.self), to: file(for: baseURL))
    }

    /// Removes the saved credential; with `onlyIf`, only while it is still that one (a devstack
    /// removing its key at exit leaves a newer login alone).
    @discardableResult
    func remove(for baseURL: String, onlyIf expected: ClientCredential? = nil) -> Bool {
        if let expected, credential(for: baseURL) != expected { return false }
        return (try? FileManager.default.removeItem(at: file(for: baseURL))) != nil
    }

    struct Saved: Codable {
        var apiKey: String?
        var username: String?
        var password: String?

        enum CodingKeys: String, CodingKey {
            case apiKey = "APIKey", username = "Username", password = "Password"
        }
    }
}
