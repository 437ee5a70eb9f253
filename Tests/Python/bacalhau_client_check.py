"""Drives a Cod orchestrator with Bacalhau's published Python API client (bacalhau-apiclient),
unchanged, and checks every call it makes deserialises: submit, get, list, executions, history,
results, nodes, stop and the agent endpoints.

Usage: BACALHAU_API_KEY=KEY python3 bacalhau_client_check.py PORT ECHO_WASM_PATH
Prints 'N passed, N failed' and exits non-zero on any failure.
"""
import base64
import os
import sys
import time

import bacalhau_apiclient as api
from bacalhau_apiclient.api import ops_api, orchestrator_api
from bacalhau_apiclient.models.api_put_job_request import ApiPutJobRequest
from bacalhau_apiclient.models.input_source import InputSource
from bacalhau_apiclient.models.job import Job
from bacalhau_apiclient.models.spec_config import SpecConfig
from bacalhau_apiclient.models.task import Task

port, module_path = int(sys.argv[1]), sys.argv[2]
configuration = api.Configuration()
configuration.host = f"http://127.0.0.1:{port}"
# The API key travels as Bacalhau's clients send it: Authorization: Bearer <key>.
api_key = os.environ["BACALHAU_API_KEY"]
client = api.ApiClient(configuration, header_name="Authorization", header_value=f"Bearer {api_key}")
orchestrator = orchestrator_api.OrchestratorApi(client)
ops = ops_api.OpsApi(client)

passed, failed = 0, 0


def check(name, condition, detail=""):
    global passed, failed
    if condition:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


module = base64.b64encode(open(module_path, "rb").read()).decode()
job = Job(
    name="from-python",
    type="batch",
    count=1,
    tasks=[
        Task(
            name="main",
            engine=SpecConfig(type="wasm", params={"EntryModule": "/app/echo.wasm", "Parameters": ["from-python"]}),
            input_sources=[
                InputSource(
                    target="/app/echo.wasm",
                    source=SpecConfig(type="inline", params={"URL": f"data:application/wasm;base64,{module}"}),
                )
            ],
        )
    ],
)
put = orchestrator.orchestratorput_job(ApiPutJobRequest(job=job))
check("put job returns an ID", put.job_id and put.job_id.startswith("j-"), put)
check("put job returns an evaluation ID", bool(put.evaluation_id), put)

state = None
for _ in range(200):
    got = orchestrator.orchestratorget_job(put.job_id)
    state = got.job.state.state_type
    if state in ("Completed", "Failed", "Stopped"):
        break
    time.sleep(0.05)
check("job completes", state == "Completed", state)
check("job name round-trips", got.job.name == "from-python", got.job.name)
check("task engine round-trips", got.job.tasks[0].engine.type == "wasm")

full = orchestrator.orchestratorget_job(put.job_id, include="executions,history")
check("get job includes executions", full.executions is not None and len(full.executions.items) == 1)
check("get job includes history", full.history is not None and len(full.history.items) > 0)

executions = orchestrator.orchestratorjob_executions(put.job_id, order_by="create_time")
execution = executions.items[0]
check("execution run output", "argv[1]=from-python" in execution.run_output.stdout, execution.run_output)
check("execution exit code", execution.run_output.exit_code == 0)
check("execution belongs to the job", execution.job_id == put.job_id)

history = orchestrator.orchestratorjob_history(put.job_id)
check("history lists events", len(history.items) >= 3, len(history.items))

results = orchestrator.orchestratorjob_results(put.job_id)
check("results list the result", len(results.items) == 1 and results.items[0].type in ("ipfs", "urlDownload")
      and (results.items[0].type != "ipfs" or results.items[0].params["CID"].startswith("bafy")), results)

jobs = orchestrator.orchestratorlist_jobs(limit=100)
check("list jobs contains the job", any(j.id == put.job_id for j in jobs.items))

nodes = orchestrator.orchestratorlist_nodes()
check("list nodes", len(nodes.nodes) >= 1, nodes)
node = orchestrator.orchestratorget_node(nodes.nodes[0].info.node_id)
check("get node", node.node.info.node_id == nodes.nodes[0].info.node_id)

check("agent alive", ops.agentalive() is not None)
version = ops.agentversion()
check("agent version", bool(version.git_version), version)

stopped = orchestrator.orchestratorput_job(ApiPutJobRequest(job=job))
try:
    orchestrator.orchestratorstop_job(stopped.job_id, reason="python stop")
    check("stop job", True)
except api.rest.ApiException as error:
    # The job may already have finished; Cod answers 409 with a JSON reason then.
    check("stop job", error.status == 409 and b"already ended" in error.body, error)

try:
    orchestrator.orchestratorget_job("j-does-not-exist")
    check("unknown job is 404", False)
except api.rest.ApiException as error:
    check("unknown job is 404", error.status == 404 and b"not found" in error.body, error)

# Without the key: the open routes answer, the rest is 401 with a JSON code.
anonymous = api.ApiClient(configuration)
check("alive needs no key", ops_api.OpsApi(anonymous).agentalive() is not None)
try:
    orchestrator_api.OrchestratorApi(anonymous).orchestratorlist_jobs(limit=1)
    check("no key is 401", False)
except api.rest.ApiException as error:
    check("no key is 401", error.status == 401 and b'"Code":"Unauthorized"' in error.body.replace(b" ", b""), error)

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
