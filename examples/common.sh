# Shared by the examples' run.sh: strict mode, the cod binary, a work folder, and adding a
# folder as a dataset.
set -euo pipefail
COD=${COD:-cod}
work=${WORK:-$(mktemp -d)}
mkdir -p "$work"

# add_dataset DIR NAME: (step 2 of each example) adds DIR as a dataset of $SHARDS shards (3) with $REPLICATION copies
# (1), shows where the shards went, and sets $cid to the dataset's root CID.
add_dataset() {
    echo "2. adding $1 as a dataset of ${SHARDS:-3} shards"
    cid=$($COD data add "$1" --cid-version 1 --shards "${SHARDS:-3}" --replication "${REPLICATION:-1}" --name "$2" --quiet)
    $COD data where "$cid"
}
