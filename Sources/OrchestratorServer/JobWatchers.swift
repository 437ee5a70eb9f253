import Models

/// Lets API calls wait for a job to change state (the `wait` endpoint, `job run`), instead of
/// polling. Woken by the evaluation workers after each committed plan.
actor JobWatchers {
    private var waiters: [String: [(id: Int, continuation: CheckedContinuation<Void, Never>)]] = [:]
    private var nextID = 0

    /// Waits until `notify(jobID:)` or the timeout, whichever is first. The continuation is
    /// registered synchronously on the actor, so a notification can never slip in between.
    func wait(jobID: String, timeout: Duration) async {
        let id = nextID
        nextID += 1
        let timer = Task {
            try? await Task.sleep(for: timeout)
            self.resume(jobID: jobID, id: id)
        }
        await withCheckedContinuation { continuation in
            waiters[jobID, default: []].append((id, continuation))
        }
        timer.cancel()
    }

    private func resume(jobID: String, id: Int) {
        guard var list = waiters[jobID], let index = list.firstIndex(where: { $0.id == id }) else { return }
        let entry = list.remove(at: index)
        waiters[jobID] = list.isEmpty ? nil : list
        entry.continuation.resume()
    }

    func notify(jobID: String) {
        guard let list = waiters.removeValue(forKey: jobID) else { return }
        for entry in list { entry.continuation.resume() }
    }
}
