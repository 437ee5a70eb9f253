#!/usr/bin/env bash
# Runs every test: installs test dependencies if needed, builds once, then runs the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
# Core modules must stay pure: no clock or randomness reads.
if grep -rnE 'Date\(\)|Date\.now|Clock\.now|\.random\(|SystemRandomNumberGenerator|clock_gettime' \
    Sources/Models Sources/Scheduler Sources/Wire; then
    echo "error: core modules must take time and randomness as inputs" >&2
    exit 1
fi
swift build --build-tests
# The hostile-input suites load the machine on purpose (a loop of attacks, a gzip bomb, 300
# half-open connections); they run after the rest, so timing-sensitive tests never share the
# two cores with them.
hostile='SecurityTests|HostileOutputTests|HostileLoopTests'
# The suites that time a node's liveness (a 4 s timeout, a frozen, cut-off or killed node, a
# node waiting for approval), a server's start or a liar's reputation earned over dozens of runs
# run on their own, so a loaded machine cannot stretch their clocks.
faults='FaultInjectionTests|NetworkFaultTests|VerificationKillTests|AuditEndToEndTests|MembershipTests|JoinTokenHygieneTests'
# The schedule suites keep clusters busy with one- and two-second schedules, the job-tree suite
# runs twenty children at once on one node, and the crash test
# kills and restarts an orchestrator 60 times over 200 s: they run last, on their own, so their
# load never stretches another suite's clock.
crash='ScheduleCrashTests|ScheduleEndToEndTests|ScheduleTriggerTests|DatasetTriggerTests|HostileScheduleTests|JobTreeTests'
if [ $# -gt 0 ]; then
    swift test --skip-build "$@"
else
    swift test --skip-build --skip "$hostile|$faults|$crash"
    swift test --skip-build --filter "$faults"
    swift test --skip-build --filter "$hostile"
    swift test --skip-build --filter "$crash"
fi
