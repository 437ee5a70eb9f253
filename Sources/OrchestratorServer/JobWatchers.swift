import Models

/// Lets API calls wait for a job to change state (the `wait` endpoint, `job run`), instead of
/// polling. Woken by the evaluation workers after each committed plan.
///
/// Each job has a generation counter bumped by every notification. A waiter reads the
/// generation before it reads the job, and waits only if the generation is still the same, so
/// a change that lands between the read and the wait is never missed.
actor JobWatchers {
    private var waiters: [String: [(id: Int, continuation: CheckedContinuation<Void, Never>)]] = [:]
    private var generations: [String: UInt64] = [:]
    private var nextID = 0

    func generation(of jobID: String) -> UInt64 {
        generations[jobID, default: 0]
    }

    /// Waits until the job's generation passes `seen`, or the timeout.
    func wait(jobID: String, seen: UInt64, timeout: Duration) async {
        guard generations[jobID, default: 0] == seen else { return }
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
        generations[jobID, default: 0] &+= 1
        guard let list = waiters.removeValue(forKey: jobID) else { return }
        for entry in list { entry.continuation.resume() }
    }

    /// Forgets jobs that ended, so the table stays small on a long-running orchestrator.
    func forget(jobID: String) {
        if waiters[jobID] == nil { generations[jobID] = nil }
    }
}
